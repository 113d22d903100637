//! The client scenario: 200 small packages pushed until hosts can install them, by
//! `packyard push --jobs 8 --wait` against the request sequence of the `package_cloud` 0.3.05
//! CLI, replayed: the distributions and the repository, then one multipart post per file, one
//! after the other, each on a new connection as its HTTP library makes them, and since it
//! cannot wait, a poll of every pushed package's `indexed` every 100 ms until all are. Twice:
//! as one invocation with every file, and as one invocation per file (a release job's loop),
//! which fetches the distributions and the repository again for each. Ruby's start-up, half a
//! second per invocation, is not counted.

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
    let looped = dir.join("package_cloud_loop");
    std::fs::create_dir_all(&looped)?;
    for index in 0..FILES {
        inputs::write_deb(&ours, index)?;
        inputs::write_deb(&theirs, FILES + index)?;
        inputs::write_deb(&looped, 2 * FILES + index)?;
    }
    let (server, _) = Server::start(&dir.join("data"))?;
    let token = server.with_repository()?;
    for name in ["replay", "replay-loop"] {
        curl(&[
            "-u",
            &format!("{token}:"),
            "-d",
            &format!("repository[name]={name}"),
            &server.url("/api/v1/repos.json"),
        ])?;
    }

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
    replay(&server.url(""), &token, "replay", &theirs, false).await?;
    let replayed = started.elapsed().as_secs_f64();
    let started = Instant::now();
    replay(&server.url(""), &token, "replay-loop", &looped, true).await?;
    let replayed_per_file = started.elapsed().as_secs_f64();
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
        .against("package_cloud 0.3.05 requests, one invocation", replayed)
        .against(
            "package_cloud 0.3.05 requests, one invocation per file",
            replayed_per_file,
        ),
    ])
}

/// What `package_cloud push bench/REPO/debian/bookworm FILES...` sends (`per_file`: what
/// one such command per file sends), then polling.
async fn replay(base: &str, token: &str, repo: &str, dir: &Path, per_file: bool) -> Result<()> {
    // No connection is reused: each request opens its own, as package_cloud's does.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let get = |path: String| {
        http.get(format!("{base}{path}"))
            .basic_auth(token, Some(""))
            .send()
    };
    let start_command = async || -> Result<()> {
        get("/api/v1/distributions.json".into())
            .await?
            .error_for_status()?;
        get(format!("/api/v1/repos/bench/{repo}.json"))
            .await?
            .error_for_status()?;
        Ok(())
    };
    start_command().await?;
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    let mut pushed = Vec::new();
    for (i, file) in files.iter().enumerate() {
        if per_file && i > 0 {
            start_command().await?;
        }
        let part = reqwest::multipart::Part::bytes(std::fs::read(file)?)
            .file_name(file.file_name().unwrap().to_string_lossy().into_owned());
        let form = reqwest::multipart::Form::new()
            .text("package[distro_version_id]", "12")
            .part("package[package_file]", part);
        let package: api::Package = http
            .post(format!("{base}/api/v1/repos/bench/{repo}/packages.json"))
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
