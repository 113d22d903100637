//! Push throughput: 1,000 packages pushed by 16 concurrent clients into one repository of a
//! running `packyard serve` (its default configuration and key) until the served, signed index
//! lists every one; against `reprepro includedeb` of the same files in one call and `aptly repo
//! add` of them plus `aptly publish update`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::reference::{Aptly, Gpg, Reprepro};
use super::service::{Server, push_form};
use super::{Row, Unit, generate, inputs};

/// Packages pushed, and clients pushing them.
const PACKAGES: usize = 1000;
const CLIENTS: usize = 16;

pub(super) async fn throughput(work: &Path, gpg: &Gpg) -> Result<Vec<Row>> {
    let dir = work.join("throughput");
    let _ = std::fs::remove_dir_all(&dir);
    // One more than measured: aptly cannot publish an empty repository, so both references
    // start from a repository holding it.
    let mut files = generate(&dir.join("pool"), PACKAGES + 1, inputs::write_deb)?;
    let first = files.remove(0);

    let packyard = packyard(&dir, &files).await?;
    let reprepro =
        Reprepro::seeded(&dir, gpg, std::slice::from_ref(&first))?.include_all(&files)?;
    let aptly = Aptly::seeded(&dir, gpg, std::slice::from_ref(&first))?.add_and_publish(&files)?;
    // The folder stays, with the server's log (`server.log`) for the split of its time.
    let rate = |secs: f64| PACKAGES as f64 / secs;
    Ok(vec![
        Row {
            scenario: format!(
                "push throughput: {PACKAGES} debs from {CLIENTS} clients until served"
            ),
            format: "deb".into(),
            packages: PACKAGES,
            packyard: rate(packyard.as_secs_f64()),
            unit: Unit::PackagesPerSecond,
            reference: Vec::new(),
        }
        .against("reprepro includedeb (one call)", rate(reprepro))
        .against(
            "aptly repo add + publish update -skip-contents",
            rate(aptly),
        ),
    ])
}

/// The time from the first push until the served index lists every file.
async fn packyard(dir: &Path, files: &[PathBuf]) -> Result<Duration> {
    let (server, _) = Server::start_logged(&dir.join("data"), &dir.join("server.log"))?;
    let token = server.with_repository()?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()?;
    let files: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|path| {
            let name = path.file_name().context("a file name")?;
            Ok((name.to_string_lossy().into_owned(), std::fs::read(path)?))
        })
        .collect::<Result<_>>()?;
    let push_url = server.url("/api/v1/repos/bench/bench/packages.json");
    let started = Instant::now();
    let pushes: Vec<_> = (0..CLIENTS)
        .map(|client_no| {
            let mine: Vec<(String, Vec<u8>)> = files
                .iter()
                .skip(client_no)
                .step_by(CLIENTS)
                .cloned()
                .collect();
            let (client, url, token) = (client.clone(), push_url.clone(), token.clone());
            tokio::spawn(async move {
                for (name, bytes) in mine {
                    let form = push_form(12, name, bytes);
                    let response = client
                        .post(&url)
                        .basic_auth(&token, Some(""))
                        .multipart(form)
                        .send()
                        .await?;
                    anyhow::ensure!(response.status() == 201, "push: {}", response.status());
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for push in pushes {
        push.await??;
    }
    let packages = server.url("/bench/bench/debian/dists/bookworm/main/binary-amd64/Packages.gz");
    loop {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "the pushes were not all served within five minutes"
        );
        let served = client.get(&packages).send().await?;
        if served.status() == 200 {
            let at = started.elapsed();
            let text = packyard_formats::chunked::gunzip_text(&served.bytes().await?)?;
            let listed = text
                .lines()
                .filter(|line| line.starts_with("Package: bench-pkg"))
                .count();
            if listed == files.len() {
                return Ok(at);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
