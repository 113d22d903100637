//! The publish a release job sees: a package pushed over HTTP to a running `packyard serve`
//! (this binary, its default configuration, the repository signed with the default RSA-4096
//! key) until the served `InRelease` or `repomd.xml` names an index that lists it, polled over
//! a keep-alive connection. The server's log (JSON, `info`) gives the split of each push: the
//! request ("push request", "pushed package"), the worker's claim ("job done") and the publish
//! ("published apt index", "published yum repodata").

use packyard_formats::chunked;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::memory::{memory_kib, reset_peak_memory};
use super::service::{Server, push_form};
use super::{Row, Unit, median};
use crate::db::generations::Target;
use crate::distros::Distro;
use crate::formats::PackageFormat;
use crate::sign::KeyAlgorithm;

/// What one run of pushes measured: medians.
pub(super) struct EndToEnd {
    /// Until the push answered 201.
    pub pushed: Duration,
    /// Until the served signed index listed the package.
    pub visible: Duration,
    /// Where the time went, from the server's log: (what, milliseconds).
    pub split: Vec<(&'static str, f64)>,
    /// The server's peak resident memory while it took the pushes and published them, MiB.
    pub peak_mib: f64,
    /// A reindex of the target (every chunk compressed again from the stored entries) asked
    /// over the API, until the served signed index changed.
    pub rebuild: Duration,
    /// The server's peak resident memory during that reindex, MiB.
    pub rebuild_peak_mib: f64,
    /// Start-up until ready and resident memory when idle, on the same data folder.
    pub footprint: Vec<Row>,
}

impl EndToEnd {
    /// The rows of a run at `n` packages; the reference goes beside the first.
    pub(super) fn rows(&self, format: &str, n: usize) -> Vec<Row> {
        let mut rows = vec![
            Row::seconds(
                "end to end: push over HTTP until served",
                format,
                n,
                self.visible,
            ),
            Row::seconds(
                "end to end: push over HTTP until its 201",
                format,
                n,
                self.pushed,
            ),
        ];
        rows.push(
            Row::seconds(
                "full rebuild over the running server",
                format,
                n,
                self.rebuild,
            )
            .against("target", 20.0),
        );
        rows.push(
            Row {
                scenario: "server peak memory while pushed to and publishing".into(),
                format: format.into(),
                packages: n,
                packyard: self.peak_mib,
                unit: Unit::Mib,
                reference: Vec::new(),
            }
            .against("target", 100.0),
        );
        rows.push(
            Row {
                scenario: "server peak memory during the full rebuild".into(),
                format: format.into(),
                packages: n,
                packyard: self.rebuild_peak_mib,
                unit: Unit::Mib,
                reference: Vec::new(),
            }
            .against("target", 100.0),
        );
        rows.extend(self.footprint.iter().map(|row| Row {
            format: format.into(),
            ..row.clone()
        }));
        rows.extend(self.split.iter().map(|(what, ms)| Row {
            scenario: format!("end to end, of which {what}"),
            format: format.into(),
            packages: n,
            packyard: *ms,
            unit: Unit::Milliseconds,
            reference: Vec::new(),
        }));
        rows
    }
}

/// Seeds a repository of `base` in `dir` with the default key, serves it, and pushes each of
/// `extras` in turn until it is served.
pub(super) async fn measure(
    dir: &Path,
    format: PackageFormat,
    distro: &Distro,
    base: &[PathBuf],
    extras: &[PathBuf],
) -> Result<EndToEnd> {
    let data = dir.join("packyard-end-to-end");
    let (app, repo) = super::packyard(&data, KeyAlgorithm::Rsa4096, distro, base).await?;
    let (index, listing) = match format {
        PackageFormat::Deb => {
            super::publish(&app, &Target::apt(repo.id, distro.id), format).await?;
            let dist = format!("/bench/repo/{}/dists/{}", distro.os, distro.dist);
            (
                format!("{dist}/InRelease"),
                Listing::Fixed(format!("{dist}/main/binary-amd64/Packages.gz")),
            )
        }
        _ => {
            let target = Target {
                repository_id: repo.id,
                distro_version_id: distro.id,
                arch: "x86_64".into(),
            };
            super::publish(&app, &target, format).await?;
            let base = format!("/bench/repo/{}/{}/x86_64", distro.os, distro.dist);
            (
                format!("{base}/repodata/repomd.xml"),
                Listing::Primary(base),
            )
        }
    };
    // The server starts as after a graceful stop, which saves the hash states kept by its
    // workers: the first push after the start resumes hashing as the others do.
    crate::jobs::saved_states::save(&app.hash_states, &data)?;
    drop(app);

    let log = dir.join("end-to-end.log");
    let (server, _) = Server::start_logged(&data, &log)?;
    let token = server.token()?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .build()?;
    let get = |path: String| {
        let request = client.get(server.url(&path));
        async move {
            let response = request.send().await?.error_for_status()?;
            anyhow::Ok(response.bytes().await?)
        }
    };

    let mut pushed = Vec::new();
    let mut visible = Vec::new();
    reset_peak_memory(server.pid())?;
    for extra in extras {
        let file_name = extra
            .file_name()
            .context("a file name")?
            .to_string_lossy()
            .into_owned();
        let bytes = std::fs::read(extra)?;
        let mut current = get(index.clone()).await?;
        let form = push_form(distro.id, file_name.clone(), bytes);
        let started = Instant::now();
        let response = client
            .post(server.url("/api/v1/repos/bench/repo/packages.json"))
            .basic_auth(&token, Some(""))
            .multipart(form)
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == 201,
            "push: {} {}",
            response.status(),
            response.text().await?
        );
        pushed.push(started.elapsed());
        loop {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(120),
                "{file_name} was not served within two minutes"
            );
            let served = get(index.clone()).await?;
            let at = started.elapsed();
            if served != current {
                // Checked after the clock stopped: the index this document names lists it.
                let listed = listing.path(&served)?;
                // The server's memory before the listing is fetched, so a peak can be placed.
                let (rss, peak) = memory_kib(server.pid())?;
                if chunked::gunzip_text(&get(listed).await?)?.contains(&file_name) {
                    visible.push(at);
                    let (_, fetched) = memory_kib(server.pid())?;
                    eprintln!(
                        "bench: {file_name} served after {at:?}; server RSS {:.1} MiB, peak {:.1} \
                         MiB, {:.1} MiB after fetching the listing",
                        rss as f64 / 1024.0,
                        peak as f64 / 1024.0,
                        fetched as f64 / 1024.0
                    );
                    break;
                }
                current = served;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let (_, peak) = memory_kib(server.pid())?;

    let before = get(index.clone()).await?;
    let (os, dist) = (distro.os.to_string(), distro.dist.to_string());
    reset_peak_memory(server.pid())?;
    let started = Instant::now();
    let response = client
        .post(server.url("/api/v1/repos/bench/repo/reindex.json"))
        .basic_auth(&token, Some(""))
        .form(&[("os", os), ("dist", dist)])
        .send()
        .await?;
    anyhow::ensure!(response.status() == 202, "reindex: {}", response.status());
    while get(index.clone()).await? == before {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "the reindex did not publish within ten minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rebuild = started.elapsed();
    let (_, rebuild_peak) = memory_kib(server.pid())?;
    // The reindex queued every target of the distribution; the one measured is served, and the
    // others finish here, so the footprint below is measured on a server with nothing to do.
    let db = crate::db::Db::open_sqlite(&data.join("packyard.db")).await?;
    while crate::db::jobs::depths(&db)
        .await?
        .iter()
        .any(|(_, queued, running, _)| queued + running > 0)
    {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "the reindex's other targets did not publish within half an hour"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);

    let split = split(
        &std::fs::read_to_string(&log)?,
        extras.len(),
        median(visible.clone()),
    )?;
    Ok(EndToEnd {
        pushed: median(pushed),
        visible: median(visible),
        split,
        peak_mib: peak as f64 / 1024.0,
        rebuild,
        rebuild_peak_mib: rebuild_peak as f64 / 1024.0,
        footprint: super::service::footprint(&data, base.len() + extras.len())?,
    })
}

/// Where the index that lists packages is, given the served signed document.
enum Listing {
    /// At a fixed path (APT's `Packages.gz`, which the new `InRelease` describes).
    Fixed(String),
    /// Named by `repomd.xml` (YUM's `primary`), under this base.
    Primary(String),
}

impl Listing {
    fn path(&self, document: &[u8]) -> Result<String> {
        match self {
            Listing::Fixed(path) => Ok(path.clone()),
            Listing::Primary(base) => {
                let repomd = std::str::from_utf8(document)?;
                let end = repomd
                    .find("-primary.xml")
                    .context("primary in repomd.xml")?;
                let start = repomd[..end].rfind("href=\"").context("its href")? + 6;
                let href = &repomd[start..end + "-primary.xml.gz".len()];
                Ok(format!("{base}/{href}"))
            }
        }
    }
}

/// The medians of the last `samples` log lines of each kind, as the steps of a push; what the
/// log does not account for (the worker's wake-up, the client's polling and the requests
/// themselves) is the rest of `visible`.
fn split(log: &str, samples: usize, visible: Duration) -> Result<Vec<(&'static str, f64)>> {
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let field = |messages: &[&str], name: &str| -> Result<f64> {
        let values: Vec<f64> = lines
            .iter()
            .map(|line| &line["fields"])
            .filter(|fields| {
                fields["message"]
                    .as_str()
                    .is_some_and(|m| messages.contains(&m))
            })
            .filter_map(|fields| fields[name].as_f64())
            .collect();
        anyhow::ensure!(
            values.len() >= samples,
            "the server logged {} {name} of {messages:?}, not {samples}",
            values.len()
        );
        Ok(median(values[values.len() - samples..].to_vec()))
    };
    let published = ["published apt index", "published yum repodata"];
    let auth = field(&["push request"], "auth_ms")?;
    let upload = field(&["push request"], "upload_ms")?;
    let store = field(&["push request"], "store_ms")?;
    let parse = field(&["pushed package"], "parse_ms")?;
    let blobs = field(&["pushed package"], "blobs_ms")?;
    let commit = field(&["pushed package"], "commit_ms")?;
    let claim = field(&["job done"], "claim_ms")?;
    let job = field(&["job done"], "duration_ms")?;
    let list = field(&published, "list_ms")?;
    let read = field(&published, "read_ms")?;
    let build = field(&published, "build_ms")?;
    let sign = field(&published, "sign_ms")?;
    let write = field(&published, "write_ms")?;
    let steps = [
        ("authentication", auth),
        ("upload and hashing", upload),
        ("parse", parse),
        ("blob write and sync", blobs),
        ("push commit", commit),
        ("audit record", (store - parse - blobs - commit).max(0.0)),
        ("claim", claim),
        ("listing", list),
        ("reading entries and chunks", read - list),
        ("index build (hashing, compression)", build - sign),
        ("signing", sign),
        ("publish commit and cache drop", write),
        ("job bookkeeping", (job - read - build - write).max(0.0)),
    ];
    let accounted: f64 = steps.iter().map(|(_, ms)| ms).sum();
    let mut split = steps.to_vec();
    split.push((
        "wake-up, polling and requests",
        (visible.as_secs_f64() * 1000.0 - accounted).max(0.0),
    ));
    Ok(split)
}
