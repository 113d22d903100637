//! The real binary, stopped with SIGTERM while pushes are in flight and started again: every
//! push that got a 2xx is served and indexed afterwards.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::process::{Child, Command};

use crate::fixtures::{BOOKWORM, deb, deb_filename};

const BIN: &str = env!("CARGO_BIN_EXE_packyard");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(data: &std::path::Path, port: u16) -> Child {
    let child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data)
        .env("PACKYARD_SIGNING_KEY_ALGORITHM", "ed25519")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_acknowledged_before_sigterm_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start(&data, port).await;

    let token = Command::new(BIN)
        .args(["admin", "create-token", "--data-dir"])
        .arg(&data)
        .output()
        .await
        .unwrap();
    assert!(
        token.status.success(),
        "admin create-token works while the server runs"
    );
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    assert!(token.len() >= 48, "tokens are at least 48 characters");
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{base}/api/v1/repos.json"))
        .basic_auth(&token, Some(""))
        .form(&[("repository[name]", "stable")])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    let pushes: Vec<_> = (0..40)
        .map(|i| {
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(i * 5)).await;
                let name = format!("pkg{i:02}");
                let form = reqwest::multipart::Form::new()
                    .text("package[distro_version_id]", BOOKWORM.to_string())
                    .part(
                        "package[package_file]",
                        reqwest::multipart::Part::bytes(deb(&name, "1.0", "amd64"))
                            .file_name(deb_filename(&name, "1.0", "amd64")),
                    );
                let response = client
                    .post(format!("{base}/api/v1/repos/admin/stable/packages.json"))
                    .basic_auth(&token, Some(""))
                    .multipart(form)
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().is_success() => Some(name),
                    _ => None,
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let pid = server.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let mut acknowledged = Vec::new();
    for push in pushes {
        if let Some(name) = push.await.unwrap() {
            acknowledged.push(name);
        }
    }
    let status = tokio::time::timeout(Duration::from_secs(30), server.wait())
        .await
        .expect("the server stops after SIGTERM")
        .unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    assert!(
        !acknowledged.is_empty(),
        "some pushes were acknowledged before the shutdown"
    );

    let _server = start(&data, port).await;
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
        let missing: Vec<_> = acknowledged
            .iter()
            .filter(|n| !packages.contains(&format!("Package: {n}\n")))
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
    for name in &acknowledged {
        let url = format!(
            "{base}/admin/stable/debian/pool/bookworm/main/p/{name}/{}",
            deb_filename(name, "1.0", "amd64")
        );
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        let show: Value = client
            .get(format!(
                "{base}/api/v1/repos/admin/stable/package/deb/debian/bookworm/{name}/amd64/1.0.json"
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(show["indexed"], true, "{name}");
    }
}
