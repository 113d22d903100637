//! Who may do what: for a public and a private repository, every kind of credential against
//! every kind of endpoint, with the status each must get. A stranger never learns that a
//! private repository exists: 404, never 403.

use reqwest::Method;

use crate::support::TestApp;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Credential {
    None,
    Wrong,
    OtherRepoReadToken,
    RevokedReadToken,
    ReadToken,
    MasterToken,
    OtherUsersApiToken,
    OwnersApiToken,
}

#[derive(Clone, Copy, Debug)]
enum Endpoint {
    Metadata,
    PackageFile,
    Key,
    ApiRead,
    ApiWrite,
}

/// The status each credential gets from each endpoint kind.
fn expected(private: bool, endpoint: Endpoint, credential: Credential) -> u16 {
    use Credential::*;
    use Endpoint::*;
    let api_token = matches!(credential, OtherUsersApiToken | OwnersApiToken);
    match endpoint {
        Metadata | PackageFile | Key => match (private, credential) {
            // Public files ignore credentials: a stale token on a host must not break it.
            (false, _) => 200,
            (true, ReadToken | OwnersApiToken) => 200,
            (true, _) => 404,
        },
        ApiRead => match credential {
            None => {
                if private {
                    404
                } else {
                    200
                }
            }
            OtherUsersApiToken if private => 404,
            _ if api_token => 200,
            _ => 401,
        },
        ApiWrite => match credential {
            OwnersApiToken => 201,
            OtherUsersApiToken if private => 404,
            OtherUsersApiToken => 403,
            _ => 401,
        },
    }
}

struct Tokens {
    other_read: String,
    revoked_read: String,
    read: String,
    master: String,
    stranger: String,
}

async fn tokens_for(app: &TestApp, repo: &str) -> Tokens {
    let other_read = app.read_token("elsewhere", "other-host").await["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = app.read_token(repo, "revoked-host").await;
    let path = format!(
        "/api/v1/repos/admin/{repo}/master_tokens/default/read_tokens/{}",
        revoked["id"]
    );
    assert_eq!(
        app.authed(Method::DELETE, &path)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    Tokens {
        other_read,
        revoked_read: revoked["value"].as_str().unwrap().to_owned(),
        read: app.read_token(repo, "host").await["value"]
            .as_str()
            .unwrap()
            .to_owned(),
        master: app.master_token(repo, "default").await,
        stranger: app.stranger_token().await,
    }
}

async fn status(
    app: &TestApp,
    repo: &str,
    endpoint: Endpoint,
    token: Option<&str>,
    attempt: usize,
) -> u16 {
    let client = reqwest::Client::new();
    let request = match endpoint {
        Endpoint::Metadata => {
            client.get(app.url(&format!("/admin/{repo}/debian/dists/bookworm/InRelease")))
        }
        Endpoint::PackageFile => client.get(app.url(&format!(
            "/admin/{repo}/debian/pool/bookworm/main/h/hello/hello_1.0_amd64.deb"
        ))),
        Endpoint::Key => client.get(app.url(&format!("/admin/{repo}/gpgkey"))),
        Endpoint::ApiRead => client.get(app.url(&format!("/api/v1/repos/admin/{repo}.json"))),
        Endpoint::ApiWrite => client
            .post(app.url(&format!("/api/v1/repos/admin/{repo}/master_tokens")))
            .form(&[("master_token[name]", format!("matrix-{attempt}"))]),
    };
    let request = match token {
        Some(token) => request.basic_auth(token, Some("")),
        None => request,
    };
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn every_credential_against_every_endpoint() {
    let app = TestApp::new().await;
    app.create_repo("elsewhere", true).await;
    let mut failures = Vec::new();
    let mut attempt = 0;
    for (repo, private) in [("open", false), ("internal", true)] {
        app.create_repo(repo, private).await;
        app.push_deb(repo, "hello", "1.0", "amd64").await;
        app.wait_for_jobs().await;
        let tokens = tokens_for(&app, repo).await;
        let credentials = [
            (Credential::None, None),
            (
                Credential::Wrong,
                Some("not-a-token-not-a-token-not-a-token-not-a-token"),
            ),
            (
                Credential::OtherRepoReadToken,
                Some(tokens.other_read.as_str()),
            ),
            (
                Credential::RevokedReadToken,
                Some(tokens.revoked_read.as_str()),
            ),
            (Credential::ReadToken, Some(tokens.read.as_str())),
            (Credential::MasterToken, Some(tokens.master.as_str())),
            (
                Credential::OtherUsersApiToken,
                Some(tokens.stranger.as_str()),
            ),
            (Credential::OwnersApiToken, Some(app.token.as_str())),
        ];
        for endpoint in [
            Endpoint::Metadata,
            Endpoint::PackageFile,
            Endpoint::Key,
            Endpoint::ApiRead,
            Endpoint::ApiWrite,
        ] {
            for (credential, token) in credentials {
                attempt += 1;
                let got = status(&app, repo, endpoint, token, attempt).await;
                let want = expected(private, endpoint, credential);
                if got != want {
                    failures.push(format!(
                        "{repo} {endpoint:?} with {credential:?}: got {got}, want {want}"
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "authorization matrix mismatches:\n{}",
        failures.join("\n")
    );
}
