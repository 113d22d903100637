//! The client scenario: 200 small packages pushed until hosts can install them, by
//! `packyard push --jobs 8 --wait` against the request sequence of the `package_cloud` 0.3.05
//! CLI, replayed: the distributions and the repository once, then one multipart post per file,
//! one after the other, each on a new connection as its HTTP library makes them, and since it
//! cannot wait, a poll of every pushed package's `indexed` every 100 ms until all are.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use packyard_api as api;

use super::service::{Server, curl};
use super::{Row, Unit, inputs};

pub const FILES: usize = 200;

pub async fn push(work: &Path) -> Result<Vec<Row>> {
    let dir = work.join("client");
    let _ = std::fs::remove_dir_all(&dir);
    let (ours, theirs) = (dir.join("packyard"), dir.join("package_cloud"));
    std::fs::create_dir_all(&ours)?;
    std::fs::create_dir_all(&theirs)?;
    for index in 0..FILES {
        inputs::write_deb(&ours, index)?;
        inputs::write_deb(&theirs, FILES + index)?;
    }
    let (server, _) = Server::start(&dir.join("data"))?;
    let token = server.with_repository()?;
    curl(&[
        "-u",
        &format!("{token}:"),
        "-d",
        "repository[name]=replay",
        &server.url("/api/v1/repos.json"),
    ])?;

    let started = Instant::now();
    let out = Command::new(std::env::current_exe()?)
        .args(["push", "bench/bench/debian/bookworm"])
        .arg(format!("{}/*.deb", ours.display()))
        .args(["--jobs", "8", "--wait=10m", "--no-progress"])
        .env("HOME", &dir)
        .env("PACKYARD_URL", server.url(""))
        .env("PACKYARD_TOKEN", &token)
        .output()
        .context("running packyard push")?;
    let packyard = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        out.status.success(),
        "packyard push failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let started = Instant::now();
    replay(&server.url(""), &token, &theirs).await?;
    let replayed = started.elapsed().as_secs_f64();
    std::fs::remove_dir_all(&dir)?;
    Ok(vec![
        Row {
            scenario: format!("{FILES} pushes until all are in the signed index (client)"),
            format: "deb".into(),
            packages: FILES,
            packyard,
            unit: Unit::Seconds,
            reference: Vec::new(),
        }
        .against(
            "package_cloud 0.3.05 requests, one file at a time",
            replayed,
        ),
    ])
}

/// What `package_cloud push bench/replay/debian/bookworm FILES...` sends, then polling.
async fn replay(base: &str, token: &str, dir: &Path) -> Result<()> {
    // No connection is reused: each request opens its own, as package_cloud's does.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let get = |path: String| {
        http.get(format!("{base}{path}"))
            .basic_auth(token, Some(""))
            .send()
    };
    get("/api/v1/distributions.json".into())
        .await?
        .error_for_status()?;
    get("/api/v1/repos/bench/replay.json".into())
        .await?
        .error_for_status()?;
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    let mut pushed = Vec::new();
    for file in &files {
        let part = reqwest::multipart::Part::bytes(std::fs::read(file)?)
            .file_name(file.file_name().unwrap().to_string_lossy().into_owned());
        let form = reqwest::multipart::Form::new()
            .text("package[distro_version_id]", "12")
            .part("package[package_file]", part);
        let package: api::Package = http
            .post(format!("{base}/api/v1/repos/bench/replay/packages.json"))
            .basic_auth(token, Some(""))
            .multipart(form)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        pushed.push(package.self_url);
    }
    loop {
        let mut waiting = Vec::new();
        for url in pushed {
            let shown: api::Package = get(url.clone()).await?.error_for_status()?.json().await?;
            if !shown.indexed {
                waiting.push(url);
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        pushed = waiting;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
