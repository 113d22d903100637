//! A signed-in conversation with the web UI over plain HTTP: the cookies a browser would keep
//! and the form token of the last page, for the tests that check what browsers cannot show
//! (status codes, headers, cookie flags, forged posts).

use reqwest::header::{COOKIE, HeaderMap, SET_COOKIE};
use reqwest::redirect::Policy;

use crate::support::TestApp;

pub const PASSWORD: &str = "correct horse battery staple";

/// Gives the admin user of `app` an email and [`PASSWORD`], and makes them an administrator.
pub async fn with_password(app: &TestApp) {
    let user = packyard::db::users::set_login(&app.app.db, "admin", "admin@example.com", PASSWORD)
        .await
        .unwrap();
    packyard::db::users::set_admin(&app.app.db, user.id, true)
        .await
        .unwrap();
}

/// A user who may sign in but owns nothing.
pub async fn stranger(app: &TestApp) {
    packyard::db::users::set_login(&app.app.db, "stranger", "stranger@example.com", PASSWORD)
        .await
        .unwrap();
}

/// Gives the packages called `name` the size `size` in place, as big packages have: a list
/// must order by the bytes, not by the figures it shows.
pub async fn set_sizes(app: &TestApp, sizes: &[(&str, i64)]) {
    for (name, size) in sizes {
        let sql = format!("UPDATE packages SET size = {size} WHERE name = '{name}'");
        app.app.db.execute_sql(&sql).await.unwrap();
    }
}

pub struct Site {
    pub base: String,
    client: reqwest::Client,
    /// `name=value` of each cookie set so far.
    cookies: Vec<(String, String)>,
}

/// The `csrf` value of the first form in `html`.
pub fn form_token(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("the page has a form token") + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

impl Site {
    pub fn new(app: &TestApp) -> Site {
        Site {
            base: app.base.clone(),
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            cookies: Vec::new(),
        }
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.cookies.retain(|(n, _)| n != name);
        if !value.is_empty() {
            self.cookies.push((name.to_owned(), value.to_owned()));
        }
    }

    fn keep_cookies(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.set_cookie(name, value);
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn get(&mut self, path: &str) -> reqwest::Response {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        self.keep_cookies(response.headers());
        response
    }

    /// The page at `path` and its form token.
    pub async fn page(&mut self, path: &str) -> (reqwest::StatusCode, String) {
        let response = self.get(path).await;
        let status = response.status();
        (status, response.text().await.unwrap())
    }

    /// Posts `form` as a browser on this site would (its own `Origin`), plus `headers`.
    pub async fn post_with(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .form(form);
        let mut origin = Some(self.base.clone());
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("origin") {
                origin = (!value.is_empty()).then(|| (*value).to_owned());
            } else {
                request = request.header(*name, *value);
            }
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let response = request.send().await.unwrap();
        self.keep_cookies(response.headers());
        response
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.post_with(path, form, &[]).await
    }

    /// Signs in through the form; panics unless it works.
    pub async fn sign_in(&mut self, login: &str, password: &str) {
        let (_, html) = self.page("/login").await;
        let token = form_token(&html);
        let response = self
            .post(
                "/login",
                &[("csrf", &token), ("login", login), ("password", password)],
            )
            .await;
        assert_eq!(response.status(), 303, "signing in as {login}");
        assert!(self.cookie("packyard_session").is_some());
    }
}
