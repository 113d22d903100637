//! `GET /api/v1/distributions.json`.

use serde_json::Value;

use crate::support::TestApp;

#[tokio::test]
async fn lists_distributions_with_stable_ids() {
    let app = TestApp::new().await;
    let body: Value = app.json("/api/v1/distributions.json").await;
    // The ids are a contract with every client that stored one: the snapshot must never change
    // for existing entries, only grow.
    insta::assert_json_snapshot!("distributions", body);
    let debian = body["deb"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["index_name"] == "debian")
        .unwrap();
    let bookworm = debian["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["index_name"] == "bookworm")
        .unwrap();
    assert_eq!(bookworm["id"], 12);
    assert_eq!(bookworm["version_number"], "12");
    let el = body["rpm"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["index_name"] == "el")
        .unwrap();
    let el9 = el["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["index_name"] == "9")
        .unwrap();
    assert_eq!(el9["id"], 309);
}
