//! `packyard push OWNER/REPO[/OS/DIST] FILES...`: each file streamed to the push endpoint
//! (several at once with `--jobs`), with a progress bar per file and a total on a terminal,
//! JSON lines with `--json`, and with `--wait` until every package is in the served, signed
//! index.
//!
//! Every request is one package_cloud would make (distributions, the repository, a multipart
//! post per file) plus `show` with `?wait=`, which Packyard answers once the package is
//! published and other servers answer at once (the client then polls with a back-off).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::TryStreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use packyard_api as api;
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::Exit;
use super::http::{Api, Refused, Retry};

pub struct Options {
    pub jobs: usize,
    /// How long to wait until every package is visible; `None` returns once they are stored.
    pub wait: Option<Duration>,
    pub skip_errors: bool,
    pub dry_run: bool,
    pub json: bool,
    /// Progress bars (on a terminal unless `--no-progress`).
    pub progress: bool,
}

/// What happened to the files of one push.
#[derive(Debug, Default)]
pub struct Report {
    pub stored: usize,
    pub visible: usize,
    pub failed: usize,
    /// Stored, but not visible when `--wait` ran out.
    pub waiting: usize,
    /// Not tried after an earlier failure (without `--skip-errors`).
    pub skipped: usize,
}

impl Report {
    /// 0 when all is well, 1 on a failure, 3 for failures under `--skip-errors`, 4 when
    /// everything is stored but `--wait` ran out first.
    pub fn exit_code(&self, skip_errors: bool) -> u8 {
        match (self.failed > 0, skip_errors, self.waiting > 0) {
            (true, false, _) => 1,
            (true, true, _) => 3,
            (false, _, true) => 4,
            (false, _, false) => 0,
        }
    }
}

/// `OWNER/REPO[/OS[/DIST]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub owner: String,
    pub repo: String,
    pub os: Option<String>,
    pub dist: Option<String>,
}

impl Destination {
    pub fn parse(text: &str) -> Result<Destination> {
        let parts: Vec<&str> = text.trim_matches('/').split('/').collect();
        let bad = || {
            Exit::usage(format!(
                "{text:?} is not OWNER/REPO, OWNER/REPO/OS or OWNER/REPO/OS/DIST"
            ))
        };
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad().into());
        }
        let owned = |i: usize| parts.get(i).map(|s| s.to_string());
        match parts.len() {
            2..=4 => Ok(Destination {
                owner: parts[0].into(),
                repo: parts[1].into(),
                os: owned(2),
                dist: owned(3),
            }),
            _ => Err(bad().into()),
        }
    }

    pub fn repository(&self) -> String {
        format!("{}/{}", self.owner, self.repo)
    }
}

/// The package type (`distributions.json`'s key) a file's name says it is, when it says.
fn kind_of(filename: &str) -> Option<&'static str> {
    let lower = filename.to_ascii_lowercase();
    let ends = |suffixes: &[&str]| suffixes.iter().any(|s| lower.ends_with(s));
    if ends(&[".deb", ".udeb", ".ddeb"]) {
        Some("deb")
    } else if ends(&[".dsc"]) {
        Some("dsc")
    } else if ends(&[".rpm"]) {
        Some("rpm")
    } else if ends(&[".whl", ".egg"]) {
        Some("py")
    } else {
        None
    }
}

/// The distribution version a file goes to: what the destination names, or for a format
/// with a single one (Python, npm, raw files) that one.
pub fn route(
    distributions: &api::Distributions,
    dest: &Destination,
    filename: &str,
) -> Result<(i64, String)> {
    let kind = kind_of(filename);
    let families = |key: &str| {
        distributions
            .get(key)
            .map(Vec::as_slice)
            .unwrap_or_default()
    };
    let family = match dest.os.as_deref() {
        Some(os) => {
            let keys: Vec<&str> = match kind {
                Some(kind) => vec![kind],
                None => distributions.keys().map(String::as_str).collect(),
            };
            keys.iter()
                .flat_map(|key| families(key))
                .find(|f| f.index_name == os)
                .ok_or_else(|| match kind {
                    Some(kind) => {
                        anyhow::anyhow!("{filename} is a {kind} package, which {os} does not take")
                    }
                    None => anyhow::anyhow!(
                        "the server knows no distribution {os} (`packyard distro list`)"
                    ),
                })?
        }
        None => {
            let key = match kind {
                Some(kind @ ("deb" | "dsc" | "rpm")) => anyhow::bail!(
                    "{filename} is a {kind} package: push it to {}/OS/DIST (`packyard distro list {kind}`)",
                    dest.repository()
                ),
                Some(kind) => kind,
                None if filename.ends_with(".tgz") => "node",
                None => "anyfile",
            };
            match families(key) {
                [family] => family,
                _ => anyhow::bail!(
                    "the server has no single distribution for {filename}; push it to {}/OS/DIST",
                    dest.repository()
                ),
            }
        }
    };
    let version = match dest.dist.as_deref() {
        Some(dist) => family
            .versions
            .iter()
            .find(|v| {
                v.index_name == dist || (!v.version_number.is_empty() && v.version_number == dist)
            })
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{} has no version {dist} (`packyard distro list`)",
                    family.index_name
                )
            })?,
        None => match family.versions.as_slice() {
            [only] => only,
            _ => anyhow::bail!(
                "{} has several versions: push to {}/{}/DIST",
                family.index_name,
                dest.repository(),
                family.index_name
            ),
        },
    };
    Ok((
        version.id,
        format!("{}/{}", family.index_name, version.index_name),
    ))
}

/// The files the arguments name, globs expanded here (also when the shell did not).
pub fn expand(patterns: &[String]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for pattern in patterns {
        if pattern.contains(['*', '?', '[']) {
            let mut matched: Vec<PathBuf> = glob::glob(pattern)
                .map_err(|e| Exit::usage(format!("{pattern:?} is not a valid pattern: {e}")))?
                .filter_map(|entry| entry.ok())
                .filter(|path| path.is_file())
                .collect();
            if matched.is_empty() {
                return Err(Exit::usage(format!("no file matches {pattern:?}")).into());
            }
            matched.sort();
            files.extend(matched);
        } else {
            let path = PathBuf::from(pattern);
            if !path.is_file() {
                return Err(Exit::usage(format!("{pattern}: no such file")).into());
            }
            files.push(path);
        }
    }
    files.dedup();
    Ok(files)
}

/// One file, ready to go.
struct Planned {
    path: PathBuf,
    filename: String,
    size: u64,
    distro_id: i64,
    distro: String,
}

/// Where events go: JSON lines, progress bars, or plain lines.
struct Reporter {
    json: bool,
    bars: Option<MultiProgress>,
    total: Option<ProgressBar>,
    stdout: Mutex<()>,
}

impl Reporter {
    fn event(&self, file: &str, phase: &str, status: &str, bytes: u64, error: Option<&str>) {
        if !self.json {
            return;
        }
        let line = json!({ "file": file, "phase": phase, "bytes": bytes, "status": status, "error": error });
        let _guard = self.stdout.lock();
        println!("{line}");
    }

    /// A line for people (not with `--json`), above the bars when there are some.
    fn say(&self, text: String) {
        if self.json {
            return;
        }
        match &self.bars {
            Some(bars) => bars.suspend(|| println!("{text}")),
            None => {
                let _guard = self.stdout.lock();
                println!("{text}");
            }
        }
    }

    fn file_bar(&self, planned: &Planned) -> ProgressBar {
        let Some(bars) = &self.bars else {
            return ProgressBar::hidden();
        };
        let bar = bars.add(ProgressBar::new(planned.size));
        bar.set_style(bar_style());
        bar.set_prefix(planned.filename.clone());
        bar.set_message("uploading");
        bar
    }
}

/// File name, bar, bytes, rate, time left and phase.
fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix:30!} {bar:25} {bytes:>10}/{total_bytes:10} {binary_bytes_per_sec:>11} {eta:>4} {msg}",
    )
    .expect("a valid template")
    .progress_chars("=> ")
}

/// Pushes every file; the report says how each went.
pub async fn push(
    api: &Api,
    dest: &Destination,
    files: &[PathBuf],
    options: &Options,
) -> Result<Report> {
    let distributions: api::Distributions = api.get("/api/v1/distributions.json").await?;
    let repository: api::Repository = api
        .get(&format!("/api/v1/repos/{}/{}.json", dest.owner, dest.repo))
        .await
        .with_context(|| format!("looking up {}", dest.repository()))?;
    let mut planned = Vec::new();
    let mut unplanned = Vec::new();
    for path in files {
        let filename = file_name(path)?;
        let size = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        match route(&distributions, dest, &filename) {
            Ok((distro_id, distro)) => planned.push(Planned {
                path: path.clone(),
                filename,
                size,
                distro_id,
                distro,
            }),
            Err(e) => unplanned.push((filename, size, e)),
        }
    }
    let bars = (options.progress && !options.dry_run).then(MultiProgress::new);
    let total = bars.as_ref().map(|bars| {
        let total_bytes = planned.iter().map(|p| p.size).sum();
        let total = bars.add(ProgressBar::new(total_bytes));
        total.set_style(bar_style());
        total.set_prefix("total");
        total.set_message(format!("0 of {} visible", planned.len()));
        total
    });
    let reporter = Arc::new(Reporter {
        json: options.json,
        bars,
        total,
        stdout: Mutex::new(()),
    });
    let mut report = Report::default();
    for (filename, size, e) in &unplanned {
        report.failed += 1;
        reporter.event(filename, "planning", "error", *size, Some(&e.to_string()));
        reporter.say(format!("{filename}: {e}"));
    }
    if report.failed > 0 && !options.skip_errors {
        report.skipped = planned.len();
        return Ok(report);
    }
    if options.dry_run {
        for p in &planned {
            reporter.event(&p.filename, "planning", "planned", p.size, None);
            reporter.say(format!(
                "would push {} ({} bytes) to {} {} (distribution version {})",
                p.path.display(),
                p.size,
                dest.repository(),
                p.distro,
                p.distro_id
            ));
        }
        return Ok(report);
    }

    let started = Instant::now();
    let deadline = options.wait.map(|wait| started + wait);
    let uploads = Arc::new(Semaphore::new(options.jobs.max(1)));
    let stop = Arc::new(AtomicBool::new(false));
    let create_path = repository.paths.create_package.clone();
    let counts = Arc::new(Mutex::new(Report::default()));
    let tasks = planned.into_iter().map(|planned| {
        let (api, reporter, uploads, stop, counts) = (
            api.clone(),
            reporter.clone(),
            uploads.clone(),
            stop.clone(),
            counts.clone(),
        );
        let create_path = create_path.clone();
        let skip_errors = options.skip_errors;
        async move {
            let permit = uploads.acquire_owned().await.expect("never closed");
            if stop.load(Ordering::Acquire) {
                counts.lock().unwrap().skipped += 1;
                reporter.event(
                    &planned.filename,
                    "uploading",
                    "skipped",
                    planned.size,
                    None,
                );
                return;
            }
            let bar = reporter.file_bar(&planned);
            let stored = upload(&api, &reporter, &bar, &create_path, &planned).await;
            drop(permit);
            let package = match stored {
                Ok(package) => package,
                Err(e) => {
                    let message = format!("{e:#}");
                    counts.lock().unwrap().failed += 1;
                    if !skip_errors {
                        stop.store(true, Ordering::Release);
                    }
                    reporter.event(
                        &planned.filename,
                        "uploading",
                        "error",
                        planned.size,
                        Some(&message),
                    );
                    reporter.say(format!("{}: {message}", planned.filename));
                    return;
                }
            };
            counts.lock().unwrap().stored += 1;
            reporter.event(&planned.filename, "indexing", "stored", planned.size, None);
            let Some(deadline) = deadline else {
                bar.finish_with_message("stored");
                reporter.say(format!(
                    "pushed {} to {} ({} {} {})",
                    planned.filename,
                    planned.distro,
                    package.name,
                    package.version,
                    package.architecture
                ));
                return;
            };
            match wait_visible(&api, &package, deadline).await {
                Ok(true) => {
                    bar.finish_with_message("visible");
                    let mut counts = counts.lock().unwrap();
                    counts.visible += 1;
                    if let Some(total) = &reporter.total {
                        total.set_message(format!("{} visible", counts.visible));
                    }
                    drop(counts);
                    reporter.event(&planned.filename, "visible", "visible", planned.size, None);
                    reporter.say(format!(
                        "{} is in the signed index of {} ({:.1} s)",
                        planned.filename,
                        planned.distro,
                        started.elapsed().as_secs_f64()
                    ));
                }
                Ok(false) => {
                    bar.abandon_with_message("not yet visible");
                    counts.lock().unwrap().waiting += 1;
                    reporter.event(
                        &planned.filename,
                        "indexing",
                        "timeout",
                        planned.size,
                        Some("not in the index when --wait ran out"),
                    );
                    reporter.say(format!(
                        "{}: stored, but not yet in the index when --wait ran out",
                        planned.filename
                    ));
                }
                Err(e) => {
                    bar.abandon_with_message("stored; waiting failed");
                    let message = format!("{e:#}");
                    counts.lock().unwrap().waiting += 1;
                    reporter.event(
                        &planned.filename,
                        "indexing",
                        "error",
                        planned.size,
                        Some(&message),
                    );
                    reporter.say(format!(
                        "{}: stored, but waiting for the index failed: {message}",
                        planned.filename
                    ));
                }
            }
        }
    });
    futures::future::join_all(tasks).await;
    if let Some(total) = &reporter.total {
        total.finish();
    }
    let counts = std::mem::take(&mut *counts.lock().unwrap());
    report.stored += counts.stored;
    report.visible += counts.visible;
    report.failed += counts.failed;
    report.waiting += counts.waiting;
    report.skipped += counts.skipped;
    if !options.json {
        let mut line = format!(
            "{} of {} file(s) stored",
            report.stored,
            report.stored + report.failed + report.skipped
        );
        if options.wait.is_some() {
            line.push_str(&format!(", {} in the signed index", report.visible));
        }
        line.push_str(&format!(" in {:.1} s", started.elapsed().as_secs_f64()));
        if report.failed > 0 {
            line.push_str(&format!("; {} failed", report.failed));
        }
        if report.skipped > 0 {
            line.push_str(&format!(
                "; {} not tried after a failure (--skip-errors goes on)",
                report.skipped
            ));
        }
        eprintln!("{line}");
    }
    Ok(report)
}

fn file_name(path: &Path) -> Result<String> {
    Ok(path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Exit::usage(format!("{}: not a file name in UTF-8", path.display())))?
        .to_owned())
}

/// Streams one file to the push endpoint (again from the start on each retry), hashing
/// what it sends; an identical file already there counts as stored.
async fn upload(
    api: &Api,
    reporter: &Reporter,
    bar: &ProgressBar,
    create_path: &str,
    planned: &Planned,
) -> Result<api::Package> {
    reporter.event(
        &planned.filename,
        "uploading",
        "started",
        planned.size,
        None,
    );
    let sha256 = Arc::new(Mutex::new(Sha256::new()));
    let sources = source_files(api, create_path, planned).await?;
    let sent = api
        .send(Method::POST, create_path, Retry::Always, |request| {
            // A retry starts over: the bar, the total and the digest.
            if let Some(total) = &reporter.total {
                total.dec(bar.position());
            }
            bar.set_position(0);
            *sha256.lock().unwrap() = Sha256::new();
            let (bar, total, sha256) = (bar.clone(), reporter.total.clone(), sha256.clone());
            let size = planned.size;
            let stream = futures::stream::once(tokio::fs::File::open(planned.path.clone()))
                .map_ok(|file| tokio_util::io::ReaderStream::with_capacity(file, 256 << 10))
                .try_flatten()
                .inspect_ok(move |chunk| {
                    sha256.lock().unwrap().update(chunk);
                    bar.inc(chunk.len() as u64);
                    if let Some(total) = &total {
                        total.inc(chunk.len() as u64);
                    }
                    if bar.position() >= size {
                        bar.set_message("storing");
                    }
                });
            let part = Part::stream_with_length(reqwest::Body::wrap_stream(stream), planned.size)
                .file_name(planned.filename.clone())
                .mime_str("application/octet-stream")
                .expect("a valid media type");
            let mut form = Form::new()
                .text("package[distro_version_id]", planned.distro_id.to_string())
                .part("package[package_file]", part);
            for (name, bytes) in &sources {
                form = form.part(
                    "package[source_files][]",
                    Part::bytes(bytes.clone()).file_name(name.clone()),
                );
            }
            request.multipart(form)
        })
        .await;
    let package = match sent {
        Ok(response) => super::http::json::<api::Package>(response).await,
        Err(e) => match e.downcast_ref::<Refused>() {
            // packagecloud refuses a file name it has; the same bytes there are a success.
            Some(refused)
                if refused.status == 422 && refused.message.contains("already been taken") =>
            {
                let digest = hex::encode(sha256.lock().unwrap().clone().finalize());
                match existing(api, create_path, planned, &digest).await? {
                    Some(package) => Ok(package),
                    None => Err(e),
                }
            }
            _ => Err(e),
        },
    };
    match &package {
        Ok(_) => bar.set_message("indexing"),
        Err(_) => bar.abandon_with_message("failed"),
    }
    package
}

/// For a `.dsc`, the files it names, read from beside it (package_cloud asks the server which
/// they are, as here).
async fn source_files(
    api: &Api,
    create_path: &str,
    planned: &Planned,
) -> Result<Vec<(String, Vec<u8>)>> {
    if kind_of(&planned.filename) != Some("dsc") {
        return Ok(Vec::new());
    }
    let dsc = tokio::fs::read(&planned.path).await?;
    let contents_path = create_path.replace("packages.json", "packages/contents.json");
    let response = api
        .send(Method::POST, &contents_path, Retry::Always, |request| {
            let part = Part::bytes(dsc.clone()).file_name(planned.filename.clone());
            request.multipart(Form::new().part("package[package_file]", part))
        })
        .await?;
    let contents: serde_json::Value = super::http::json(response).await?;
    let dir = planned.path.parent().unwrap_or(Path::new("."));
    let mut files = Vec::new();
    for file in contents["files"].as_array().into_iter().flatten() {
        let name = file["filename"].as_str().unwrap_or_default();
        anyhow::ensure!(
            !name.is_empty() && !name.contains('/') && name != "..",
            "the server named a source file {name:?}"
        );
        let bytes = tokio::fs::read(dir.join(name)).await.with_context(|| {
            format!("{} names {name}, which is not beside it", planned.filename)
        })?;
        files.push((name.to_owned(), bytes));
    }
    Ok(files)
}

/// The package the repository already holds under this file name, if it has these bytes.
async fn existing(
    api: &Api,
    create_path: &str,
    planned: &Planned,
    sha256: &str,
) -> Result<Option<api::Package>> {
    let search = create_path.replace("packages.json", "search.json");
    let query = serde_urlencoded::to_string([
        ("q", planned.filename.as_str()),
        ("dist", planned.distro.as_str()),
    ])?;
    let found: Vec<api::Package> = api.get(&format!("{search}?{query}")).await?;
    Ok(found
        .into_iter()
        .find(|p| p.filename == planned.filename && p.sha256sum == sha256))
}

/// Asks until the package is in its target's published index or the deadline passes: with
/// `?wait=` Packyard answers as soon as it is; other servers answer at once, and the client
/// polls with a back-off from 100 ms to 2 s.
async fn wait_visible(api: &Api, package: &api::Package, deadline: Instant) -> Result<bool> {
    if package.indexed {
        return Ok(true);
    }
    let mut pause = Duration::from_millis(100);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let asked = Instant::now();
        let secs = left.as_secs().clamp(1, 30);
        let shown: api::Package = api
            .get(&format!("{}?wait={secs}", package.self_url))
            .await?;
        if shown.indexed {
            return Ok(true);
        }
        if asked.elapsed() < Duration::from_millis(500) {
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distributions() -> api::Distributions {
        let family = |name: &str, versions: &[(i64, &str, &str)]| api::DistributionFamily {
            display_name: name.into(),
            index_name: name.into(),
            versions: versions
                .iter()
                .map(|(id, index, number)| api::DistributionVersion {
                    id: *id,
                    display_name: index.to_string(),
                    index_name: index.to_string(),
                    version_number: number.to_string(),
                })
                .collect(),
        };
        [
            (
                "deb",
                vec![family(
                    "debian",
                    &[(12, "bookworm", "12"), (13, "trixie", "13")],
                )],
            ),
            ("dsc", vec![family("debian", &[(12, "bookworm", "12")])]),
            ("rpm", vec![family("el", &[(309, "9", "9")])]),
            ("py", vec![family("python", &[(6, "1", "1")])]),
            ("node", vec![family("node", &[(7, "1", "1")])]),
            ("anyfile", vec![family("anyfile", &[(5, "1", "1")])]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    #[test]
    fn files_go_to_the_distribution_their_kind_and_the_destination_name() {
        let all = distributions();
        let to = |dest: &str, file: &str| {
            route(&all, &Destination::parse(dest).unwrap(), file).map(|(id, _)| id)
        };
        assert_eq!(to("a/r/debian/bookworm", "x_1_amd64.deb").unwrap(), 12);
        assert_eq!(to("a/r/debian/13", "x_1_amd64.deb").unwrap(), 13);
        assert_eq!(to("a/r/debian/bookworm", "x_1.dsc").unwrap(), 12);
        assert_eq!(to("a/r/el/9", "x-1-1.x86_64.rpm").unwrap(), 309);
        assert_eq!(to("a/r", "x-1-py3-none-any.whl").unwrap(), 6);
        assert_eq!(to("a/r", "x-1.0.0.tgz").unwrap(), 7);
        assert_eq!(to("a/r/python", "x-1.0.tar.gz").unwrap(), 6);
        assert_eq!(to("a/r", "tool.bin").unwrap(), 5);
        assert!(
            to("a/r", "x_1_amd64.deb")
                .unwrap_err()
                .to_string()
                .contains("OS/DIST")
        );
        assert!(to("a/r/el/9", "x_1_amd64.deb").is_err());
        assert!(
            to("a/r/debian", "x_1_amd64.deb").is_err(),
            "debian has two versions"
        );
        assert!(to("a/r/debian/hamm", "x_1_amd64.deb").is_err());
    }

    #[test]
    fn destinations_are_owner_repo_and_an_optional_distribution() {
        let d = Destination::parse("acme/stable/ubuntu/noble").unwrap();
        assert_eq!(
            (d.os.as_deref(), d.dist.as_deref()),
            (Some("ubuntu"), Some("noble"))
        );
        assert!(Destination::parse("acme").is_err());
        assert!(Destination::parse("acme//x").is_err());
        assert!(Destination::parse("a/b/c/d/e").is_err());
    }

    #[test]
    fn exit_codes_say_what_went_wrong() {
        let report = |failed, waiting| Report {
            failed,
            waiting,
            ..Report::default()
        };
        assert_eq!(report(0, 0).exit_code(false), 0);
        assert_eq!(report(1, 0).exit_code(false), 1);
        assert_eq!(report(1, 0).exit_code(true), 3);
        assert_eq!(report(0, 2).exit_code(false), 4);
    }
}
