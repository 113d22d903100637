//! A real Chromium driven over WebDriver: Debian's `chromium` and `chromium-driver` (which
//! scripts/test installs), one headless browser per test, one test at a time (two cores
//! cannot run several browsers and a server well). Helpers sign in, check a page with
//! axe-core, and keep screenshots of it at desktop and phone widths under
//! `target/ui-screenshots/`.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{LazyLock, Mutex as StdMutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::sync::{Mutex, MutexGuard};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Browsers run one at a time.
static ONE_AT_A_TIME: LazyLock<Mutex<()>> = LazyLock::new(|| Mutex::new(()));

pub struct Browser {
    pub client: Client,
    /// The server's base URL, `http://127.0.0.1:PORT`.
    pub base: String,
    driver: Child,
    _profile: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

fn require(path: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: the browser tests need Debian's Chromium and its driver \
         (apt-get install chromium chromium-driver; scripts/test installs them)"
    );
}

impl Browser {
    pub async fn open(base: &str) -> Browser {
        require(CHROMIUM);
        require(CHROMEDRIVER);
        let turn = ONE_AT_A_TIME.lock().await;
        let port = crate::support::free_port();
        // A process group of its own, so the browsers it starts end with it.
        let driver = Command::new(CHROMEDRIVER)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().unwrap();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,800",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let webdriver = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&webdriver)
                .await
            {
                Ok(client) => break client,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("chromedriver did not start a session: {e}"),
            }
        };
        Browser {
            client,
            base: base.to_owned(),
            driver,
            _profile: profile,
            _turn: turn,
        }
    }

    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("opening {path}: {e}"));
    }

    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        let found = self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(element) => element,
            Err(e) => panic!("no {css} on {}: {e}", self.path().await),
        }
    }

    /// The text of `css`; found again if the page was replaced in between (a form's answer
    /// still loading).
    pub async fn text(&self, css: &str) -> String {
        for _ in 0..50 {
            match self.find(css).await.text().await {
                Ok(text) => return text,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        panic!("{css} kept going stale on {}", self.path().await)
    }

    /// The page's visible text.
    pub async fn body(&self) -> String {
        self.text("body").await
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Clicks the button whose text is `label` (buttons are found by what people read).
    pub async fn press(&self, label: &str) {
        let xpath = format!("//button[normalize-space(.)={}]", xpath_string(label));
        let found = self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::XPath(&xpath))
            .await;
        match found {
            Ok(button) => button.click().await.unwrap(),
            Err(e) => panic!("no button {label:?} on {}: {e}", self.path().await),
        }
    }

    pub async fn script(&self, script: &str) -> Value {
        self.client.execute(script, Vec::new()).await.unwrap()
    }

    /// Signs in through the form.
    pub async fn sign_in(&self, login: &str, password: &str) {
        self.goto("/login").await;
        self.fill("#login", login).await;
        self.fill("#password", password).await;
        self.press("Sign in").await;
        // Wait for the answer: another page, or this one again with its error.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let refused = self
                .script("return document.getElementById('login-error') !== null")
                .await;
            if !self.path().await.starts_with("/login") || refused == true {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "signing in as {login} got no answer"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs axe-core on the current page and fails on serious or critical violations; then
    /// keeps screenshots of it at 1280×800 and 390×844 named `name`.
    pub async fn check_page(&self, name: &str) {
        // The content policy forbids inline script and style; the page must not need them.
        let inline = self
            .script("return document.querySelectorAll('script:not([src]), [style]').length")
            .await;
        assert_eq!(inline, 0, "inline script or style on {name}");
        self.script(axe_source()).await;
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] })
                    .then(r => done(r.violations.map(v => ({
                        id: v.id, impact: v.impact, help: v.help,
                        nodes: v.nodes.map(n => n.html).slice(0, 3) }))))
                    .catch(e => done([{ id: 'axe-error', impact: 'critical', help: String(e), nodes: [] }]));",
                Vec::new(),
            )
            .await
            .unwrap();
        let serious: Vec<&Value> = result
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect();
        assert!(
            serious.is_empty(),
            "axe found serious problems on {name} ({}): {serious:#?}",
            self.path().await
        );
        self.screenshots(name).await;
    }

    async fn screenshots(&self, name: &str) {
        let dir = screenshot_dir();
        for (width, height, label) in [(1280, 800, "desktop"), (390, 844, "phone")] {
            self.client.set_window_size(width, height).await.unwrap();
            let png = self.client.screenshot().await.unwrap();
            assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
            std::fs::write(dir.join(format!("{name}-{label}.png")), png).unwrap();
        }
        self.client.set_window_size(1280, 800).await.unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn xpath_string(text: &str) -> String {
    if text.contains('\'') {
        format!("\"{text}\"")
    } else {
        format!("'{text}'")
    }
}

fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// axe-core's script, from the npm registry into `target/test-tools/node` on first use
/// (scripts/test installs it up front).
fn axe_source() -> &'static str {
    static SOURCE: StdMutex<Option<&'static str>> = StdMutex::new(None);
    let mut source = SOURCE.lock().unwrap();
    if let Some(source) = *source {
        return source;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-tools/node");
    let file = dir.join("node_modules/axe-core/axe.min.js");
    if !file.exists() {
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg("axe-core@4")
            .status()
            .expect("npm runs");
        assert!(status.success(), "npm install axe-core");
    }
    let text: &'static str = Box::leak(std::fs::read_to_string(file).unwrap().into_boxed_str());
    *source = Some(text);
    text
}
