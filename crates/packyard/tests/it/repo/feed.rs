//! `/OWNER/REPO/feed.atom`, read by Python's feedparser; private repositories need a read
//! token like their files.

use serde_json::Value;

use crate::python_client::tool;
use crate::support::TestApp;

/// What feedparser makes of a document: whether it complained, the title, entry titles and
/// links.
fn parse(xml: &str) -> Value {
    use std::io::Write;
    let script = "import feedparser, json, sys\n\
                  d = feedparser.parse(sys.stdin.read())\n\
                  print(json.dumps({'bozo': bool(d.bozo), 'version': d.version, 'title': d.feed.get('title'), \
                  'updated': d.feed.get('updated'), \
                  'entries': [{'title': e.title, 'link': e.link, 'id': e.id, 'updated': e.updated} for e in d.entries]}))";
    let mut child = std::process::Command::new(tool("python"))
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(xml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn the_feed_lists_the_newest_packages_and_parses() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    app.push_deb("stable", "hello", "1.0", "amd64").await;
    app.push_deb("stable", "hello", "2.0", "amd64").await;
    let response = app.get("/admin/stable/feed.atom").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/atom+xml")
    );
    let feed = parse(&response.text().await.unwrap());
    assert_eq!(feed["bozo"], false, "{feed}");
    assert_eq!(feed["version"], "atom10");
    assert_eq!(feed["title"], "admin/stable packages");
    let titles: Vec<&str> = feed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["title"].as_str().unwrap())
        .collect();
    // Newest first; the keyring package the first push brought is a package too.
    assert_eq!(titles[0], "hello 2.0 (amd64) in debian/bookworm");
    assert!(
        titles.contains(&"hello 1.0 (amd64) in debian/bookworm"),
        "{titles:?}"
    );
    let link = feed["entries"][0]["link"].as_str().unwrap();
    assert_eq!(
        link,
        app.url("/admin/stable/packages/debian/bookworm/hello_2.0_amd64.deb")
    );
    assert_eq!(
        reqwest::get(link).await.unwrap().status(),
        200,
        "the link is the package's page"
    );
}

#[tokio::test]
async fn a_private_feed_needs_a_read_token() {
    let app = TestApp::new().await;
    app.create_repo("secret", true).await;
    app.push_deb("secret", "hello", "1.0", "amd64").await;
    assert_eq!(app.status("/admin/secret/feed.atom").await, 404);
    let read = app.read_token("secret", "feed-reader").await;
    let response = app
        .get("/admin/secret/feed.atom")
        .basic_auth(read["value"].as_str().unwrap(), Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let feed = parse(&response.text().await.unwrap());
    assert_eq!(feed["bozo"], false);
    assert!(!feed["entries"].as_array().unwrap().is_empty());
}
