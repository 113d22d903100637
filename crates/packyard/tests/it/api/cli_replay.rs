//! A replay of the requests the `package_cloud` CLI (0.3.x) sends, in the order it sends
//! them, asserting every field it reads from each answer (PACKAGECLOUD-API.md).

use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::Value;

use crate::fixtures::deb;
use crate::support::TestApp;

async fn json(response: reqwest::Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(got, status, "{text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    }
}

#[tokio::test]
async fn package_cloud_cli_requests() {
    let app = TestApp::new().await;
    assert!(
        app.token.len() >= 48,
        "the CLI rejects tokens shorter than 48 characters"
    );
    let call = |method: Method, path: &str| app.authed(method, path);

    // repository create, repository list
    let created = json(
        call(Method::POST, "/api/v1/repos.json")
            .form(&[("repository[name]", "stable"), ("repository[private]", "0")])
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    assert!(created["url"].is_string());
    json(
        call(Method::POST, "/api/v1/repos.json")
            .form(&[("repository[name]", "staging")])
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let repos = json(
        call(Method::GET, "/api/v1/repos.json")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    for repo in repos.as_array().unwrap() {
        for field in [
            "name",
            "fqname",
            "package_count_human",
            "last_push_human",
            "created_at",
            "url",
        ] {
            assert!(repo[field].is_string(), "repository list: {field}");
        }
        assert!(repo["private"].is_boolean());
    }

    // distro list deb; push resolves `debian/bookworm` by index_name, then reads the repository
    let distributions = json(
        call(Method::GET, "/api/v1/distributions.json")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let debian = distributions["deb"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["index_name"] == "debian")
        .unwrap();
    assert!(debian["display_name"].is_string());
    let bookworm = debian["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["index_name"] == "bookworm")
        .unwrap();
    let distro_id = bookworm["id"].as_i64().unwrap();
    let repo = json(
        call(Method::GET, "/api/v1/repos/admin/stable.json")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let create_package = repo["paths"]["create_package"].as_str().unwrap().to_owned();
    let form = || {
        Form::new()
            .text("package[distro_version_id]", distro_id.to_string())
            .part(
                "package[package_file]",
                Part::bytes(deb("hello", "1.0", "amd64")).file_name("hello_1.0_amd64.deb"),
            )
    };
    let pushed = json(
        call(Method::POST, &create_package)
            .multipart(form())
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    assert_eq!(pushed["filename"], "hello_1.0_amd64.deb");
    // --skip-errors skips 422s; their body maps fields to lists of messages.
    let other = Form::new()
        .text("package[distro_version_id]", distro_id.to_string())
        .part(
            "package[package_file]",
            Part::bytes(
                deb("hello", "1.0", "amd64")
                    .into_iter()
                    .rev()
                    .collect::<Vec<u8>>(),
            )
            .file_name("hello_1.0_amd64.deb"),
        );
    let rejected = json(
        call(Method::POST, &create_package)
            .multipart(other)
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    assert!(rejected.as_object().unwrap().values().all(|v| v.is_array()));

    // promote, then yank
    let promoted = call(
        Method::POST,
        "/api/v1/repos/admin/stable/debian/bookworm/hello_1.0_amd64.deb/promote.json",
    )
    .form(&[("destination", "admin/staging")])
    .send()
    .await
    .unwrap();
    json(promoted, 200).await;
    let yank = format!(
        "{}/debian/bookworm/hello_1.0_amd64.deb",
        repo["paths"]["self"]
            .as_str()
            .unwrap()
            .replace("stable", "staging")
    );
    assert_eq!(
        json(call(Method::DELETE, &yank).send().await.unwrap(), 200).await,
        serde_json::json!({})
    );
    json(call(Method::DELETE, &yank).send().await.unwrap(), 404).await;

    // master_token create, list, destroy; read_token destroy
    let master_tokens = repo["paths"]["master_tokens"].as_str().unwrap().to_owned();
    let create_master = repo["paths"]["create_master_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let master = json(
        call(Method::POST, &create_master)
            .form(&[("master_token[name]", "ci")])
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    assert_eq!(master["name"], "ci");
    assert!(master["value"].as_str().unwrap().len() >= 48);
    let masters = json(call(Method::GET, &master_tokens).send().await.unwrap(), 200).await;
    let ci = masters
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "ci")
        .unwrap();
    for field in ["name", "value"] {
        assert!(ci[field].is_string(), "master token list: {field}");
    }
    assert!(ci["read_tokens"].is_array());
    let master_self = ci["paths"]["self"].as_str().unwrap().to_owned();
    let read = json(
        call(Method::POST, &format!("{master_self}/read_tokens.json"))
            .form(&[("read_token[name]", "web-1")])
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let listed = json(call(Method::GET, &master_tokens).send().await.unwrap(), 200).await;
    let ci = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "ci")
        .unwrap();
    let read_entry = &ci["read_tokens"][0];
    for field in ["name", "value"] {
        assert!(read_entry[field].is_string(), "read token: {field}");
    }
    assert!(read_entry["id"].is_i64());
    assert_eq!(read_entry["value"], read["value"]);
    json(
        call(
            Method::DELETE,
            &format!("{master_self}/read_tokens/{}", read_entry["id"]),
        )
        .send()
        .await
        .unwrap(),
        204,
    )
    .await;
    json(
        call(Method::DELETE, &master_self).send().await.unwrap(),
        204,
    )
    .await;

    // gpg_key list, create, destroy
    let gpg_keys = repo["paths"]["gpg_keys"].as_str().unwrap().to_owned();
    let work = tempfile::tempdir().unwrap();
    let (_, armored) = crate::rpm_fixtures::signing_key(work.path());
    let uploaded = json(
        call(Method::POST, &gpg_keys)
            .multipart(Form::new().text("gpg_key[keydata]", armored))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let keys = json(call(Method::GET, &gpg_keys).send().await.unwrap(), 200).await;
    for key in keys["gpg_keys"].as_array().unwrap() {
        for field in [
            "name",
            "fingerprint",
            "keytype",
            "self",
            "destroy_url",
            "download_url",
        ] {
            assert!(key[field].is_string(), "gpg key list: {field}");
        }
    }
    json(
        call(Method::DELETE, uploaded["destroy_url"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
        204,
    )
    .await;
}

/// `package_cloud push OWNER/REPO/anyfile tool-1.0.tar.gz` and `yank OWNER/REPO/anyfile/1 FILE`:
/// the CLI takes `distributions["anyfile"]`'s family `anyfile` and its first version's id.
#[tokio::test]
async fn package_cloud_pushes_and_yanks_a_raw_file() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let call = |method: Method, path: &str| app.authed(method, path);
    let distributions = json(
        call(Method::GET, "/api/v1/distributions.json")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let family = distributions["anyfile"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["index_name"] == "anyfile")
        .unwrap();
    let id = family["versions"][0]["id"].as_i64().unwrap();
    let form = Form::new()
        .text("package[distro_version_id]", id.to_string())
        .part(
            "package[package_file]",
            Part::bytes(b"#!/bin/sh\necho tool\n".to_vec()).file_name("tool-1.0.tar.gz"),
        );
    let pushed = json(
        call(Method::POST, "/api/v1/repos/admin/stable/packages.json")
            .multipart(form)
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    assert_eq!(pushed["filename"], "tool-1.0.tar.gz");
    assert_eq!(
        pushed["destroy_url"],
        "/api/v1/repos/admin/stable/anyfile/1/tool-1.0.tar.gz"
    );
    let shown = json(
        call(Method::GET, pushed["package_url"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(shown["version"], "1.0");
    json(
        call(Method::DELETE, pushed["destroy_url"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
}
