//! The real binary, stopped with SIGTERM while pushes are in flight and started again: every
//! push that got a 2xx is served and indexed afterwards.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::apt_client::apt_trusting;
use crate::deployment::{Deployment, create_repository, push_deb};
use crate::fixtures::{BOOKWORM, deb, deb_filename};
use crate::rpm_fixtures::{EL9, file_name, rpmbuild, simple_spec};
use crate::support::free_port;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_acknowledged_before_sigterm_survive_a_restart() {
    let deployment = Deployment::new().await;
    let port = free_port();
    let server = deployment.serve_on("server", "all", port, &[]).await;
    let base = server.base.clone();
    let token = deployment.create_token().await;
    assert!(token.len() >= 48, "tokens are at least 48 characters");
    let client = reqwest::Client::new();
    create_repository(&base, &token, "stable").await;

    // Debs and rpms, interleaved.
    let work = tempfile::tempdir().unwrap();
    let uploads: Vec<Upload> = (0..40)
        .map(|i| {
            let name = format!("pkg{i:02}");
            if i % 4 == 3 {
                let spec = simple_spec(&name, "1.0", "1", "x86_64");
                let path = &rpmbuild(work.path(), &spec, "x86_64", false)[0];
                Upload {
                    distro: EL9,
                    filename: file_name(path),
                    bytes: std::fs::read(path).unwrap(),
                    name,
                }
            } else {
                let filename = deb_filename(&name, "1.0", "amd64");
                Upload {
                    distro: BOOKWORM,
                    filename,
                    bytes: deb(&name, "1.0", "amd64"),
                    name,
                }
            }
        })
        .collect();
    let pushes: Vec<_> = uploads
        .into_iter()
        .enumerate()
        .map(|(i, upload)| {
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(i as u64 * 5)).await;
                let form = reqwest::multipart::Form::new()
                    .text("package[distro_version_id]", upload.distro.to_string())
                    .part(
                        "package[package_file]",
                        reqwest::multipart::Part::bytes(upload.bytes).file_name(upload.filename),
                    );
                let response = client
                    .post(format!("{base}/api/v1/repos/admin/stable/packages.json"))
                    .basic_auth(&token, Some(""))
                    .multipart(form)
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().is_success() => {
                        let body: Value = r.json().await.unwrap();
                        Some((upload.name, upload.distro, body))
                    }
                    _ => None,
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(60)).await;
    server.signal("-TERM").await;
    let mut server = server;
    let mut acknowledged = Vec::new();
    for push in pushes {
        if let Some(pushed) = push.await.unwrap() {
            acknowledged.push(pushed);
        }
    }
    let status = tokio::time::timeout(Duration::from_secs(30), server.child.wait())
        .await
        .expect("the server stops after SIGTERM")
        .unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    assert!(
        !acknowledged.is_empty(),
        "some pushes were acknowledged before the shutdown"
    );

    let _server = deployment.serve_on("server", "all", port, &[]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let packages = client
            .get(format!(
                "{base}/admin/stable/debian/dists/bookworm/main/binary-amd64/Packages"
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let primary = primary_xml(&client, &format!("{base}/admin/stable/el/9/x86_64")).await;
        let missing: Vec<_> = acknowledged
            .iter()
            .filter(|(name, distro, _)| match *distro {
                BOOKWORM => !packages.contains(&format!("Package: {name}\n")),
                _ => !primary.contains(&format!("<name>{name}</name>")),
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "acknowledged pushes missing from the index after restart: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (name, _, pushed) in &acknowledged {
        let url = pushed["download_url"].as_str().unwrap();
        let response = client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        let show: Value = client
            .get(format!("{base}{}", pushed["self_url"].as_str().unwrap()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(show["indexed"], true, "{name}");
    }
}

struct Upload {
    distro: i64,
    filename: String,
    bytes: Vec<u8>,
    name: String,
}

/// The decompressed primary.xml that a repository's current repomd.xml names, or "".
pub(crate) async fn primary_xml(client: &reqwest::Client, base: &str) -> String {
    use std::io::Read;
    let response = client
        .get(format!("{base}/repodata/repomd.xml"))
        .send()
        .await
        .unwrap();
    if !response.status().is_success() {
        return String::new();
    }
    let repomd = response.text().await.unwrap();
    let href = repomd
        .split("<location href=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .find(|h| h.ends_with("-primary.xml.gz"))
        .unwrap()
        .to_owned();
    let gz = client
        .get(format!("{base}/{href}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut xml = String::new();
    flate2::read::MultiGzDecoder::new(&gz[..])
        .read_to_string(&mut xml)
        .unwrap();
    xml
}

/// A stop saves the hash states the workers kept, and the next start takes them back: its
/// first publish hashes only the new package's entry, not the index's text before it, and apt
/// accepts the digests it publishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_states_saved_at_a_stop_resume_the_first_publish_after_the_start() {
    let deployment = Deployment::new().await;
    let port = free_port();
    // A JSON log, whose fields the test reads.
    let json = [("PACKYARD_LOG_FORMAT", "json")];
    let server = deployment.serve_on("server", "all", port, &json).await;
    let base = server.base.clone();
    let token = deployment.create_token().await;
    let client = reqwest::Client::new();
    create_repository(&base, &token, "stable").await;
    let packages_url =
        format!("{base}/admin/stable/debian/dists/bookworm/main/binary-amd64/Packages");
    let until_listed = |name: String| {
        let (client, url) = (client.clone(), packages_url.clone());
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let packages = client.get(&url).send().await.unwrap().text().await.unwrap();
                if packages.contains(&format!("Package: {name}\n")) {
                    return packages;
                }
                assert!(Instant::now() < deadline, "{name} never listed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    for i in 0..12 {
        assert_eq!(
            push_deb(&client, &base, &token, &format!("early{i:02}"))
                .await
                .unwrap()
                .status(),
            201
        );
    }
    let before = until_listed("early11".into()).await;

    server.signal("-TERM").await;
    let mut server = server;
    let status = tokio::time::timeout(Duration::from_secs(30), server.child.wait())
        .await
        .expect("the server stops after SIGTERM")
        .unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    let saved = deployment.data_dir("server").join("index-hash-states.json");
    assert!(saved.exists(), "the stop saved the hash states");

    let server = deployment.serve_on("server", "all", port, &json).await;
    assert_eq!(
        push_deb(&client, &base, &token, "late")
            .await
            .unwrap()
            .status(),
        201
    );
    let after = until_listed("late".into()).await;
    assert!(!saved.exists(), "the start took the file");
    let log = server.log();
    let restart = log
        .rfind("took back the hash states saved at the last stop")
        .expect("the start took back the saved states");
    // The first publish after the start resumed after the text it had hashed before the stop:
    // it hashed the new stanza (and the index's tail), not the twelve before it.
    let hashed = published_hashed_bytes(&log[restart..]);
    let stanza = after.len() - before.len();
    assert!(
        !hashed.is_empty() && hashed.iter().all(|&h| h < stanza as u64 * 3),
        "hashed {hashed:?} bytes of text; the new stanza is {stanza}, the index {}",
        after.len()
    );
    // Without the saved states it hashes every stanza again: the check can fail.
    assert!(before.len() as u64 > stanza as u64 * 3);

    // And apt accepts what it published.
    let apt = apt_trusting(&format!("{base}/admin/stable"), "debian", "bookworm").await;
    apt.update().await;
    assert_eq!(apt.versions("late").await, ["1.0"]);
    assert_eq!(apt.versions("early00").await, ["1.0"]);
}

/// `hashed_bytes` of every `published apt index` line of a JSON log.
fn published_hashed_bytes(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["fields"]["message"] == "published apt index")
        .map(|line| {
            line["fields"]["hashed_bytes"]
                .as_u64()
                .expect("hashed_bytes")
        })
        .collect()
}
