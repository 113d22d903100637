//! `packyard bench`: publish times measured side by side with the reference tools on the same
//! generated packages, in one run, reported as ratios.
//!
//! Scenarios, for .deb and .rpm at each repository size N:
//! - incremental publish: one more package pushed into a repository of N, until the signed
//!   index that lists it is written (Packyard: ingest + publish in process; apt-ftparchive:
//!   `packages` with a warm `--db` cache, gzip, `release`, a gpg clearsign; reprepro
//!   `includedeb`; aptly `repo add` and `publish update -skip-contents`; createrepo_c:
//!   `--update` and a detached gpg signature of `repomd.xml`);
//! - full rebuild: the signed index of N packages built from nothing (Packyard: with its chunk
//!   cache emptied; apt-ftparchive with a cold cache; createrepo_c without `--update`).
//!
//! Then, on a running server (`service.rs`): upload ingest of a large package against
//! `sha256sum` plus `cp`, serving against nginx with wrk, and start-up time and idle memory.

mod chart;
mod client;
mod end_to_end;
mod images;
pub mod inputs;
pub mod load;
pub mod memory;
mod reference;
mod registries;
mod service;
mod throughput;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use packyard_formats::digest::MultiHasher;
use serde::Serialize;

use crate::app::App;
use crate::config::Config;
use crate::db::{self, generations::Target};
use crate::distros::{self, Distro};
use crate::formats::PackageFormat;
use crate::ingest::{self, Staged};
use crate::sign::KeyAlgorithm;

pub struct Options {
    pub sizes: Vec<usize>,
    /// Size of the package pushed in the upload ingest scenario.
    pub ingest_bytes: u64,
    /// Only Packyard's publish times, without reference tools or server scenarios: for
    /// profiling.
    pub packyard_only: bool,
    /// Incremental publishes measured per repository size and tool quick enough to repeat;
    /// the median is reported.
    pub samples: usize,
    pub out: PathBuf,
    pub work: PathBuf,
}

/// One measured figure and the reference figures beside it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Row {
    pub scenario: String,
    pub format: String,
    pub packages: usize,
    pub packyard: f64,
    pub unit: Unit,
    pub reference: Vec<(String, f64)>,
}

/// What a figure counts, and so which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Seconds,
    MibPerSecond,
    RequestsPerSecond,
    PackagesPerSecond,
    Mib,
    Milliseconds,
}

impl Unit {
    fn format(self, value: f64) -> String {
        match self {
            Unit::Seconds => format!("{value:.3} s"),
            Unit::MibPerSecond => format!("{value:.0} MiB/s"),
            Unit::RequestsPerSecond => format!("{value:.0} req/s"),
            Unit::PackagesPerSecond => format!("{value:.0} packages/s"),
            Unit::Mib => format!("{value:.1} MiB"),
            Unit::Milliseconds => format!("{value:.1} ms"),
        }
    }

    /// How many times better the first figure is than the second.
    fn advantage(self, packyard: f64, reference: f64) -> f64 {
        match self {
            Unit::Seconds | Unit::Mib | Unit::Milliseconds => reference / packyard,
            Unit::MibPerSecond | Unit::RequestsPerSecond | Unit::PackagesPerSecond => {
                packyard / reference
            }
        }
    }
}

impl Row {
    fn seconds(scenario: &str, format: &str, packages: usize, packyard: Duration) -> Row {
        Row {
            scenario: scenario.into(),
            format: format.into(),
            packages,
            packyard: secs(packyard),
            unit: Unit::Seconds,
            reference: Vec::new(),
        }
    }

    fn against(mut self, tool: impl Into<String>, figure: f64) -> Row {
        self.reference.push((tool.into(), figure));
        self
    }
}

pub async fn run(options: Options) -> Result<()> {
    std::fs::create_dir_all(&options.out)?;
    let gpg = reference::Gpg::new(&options.work)?;
    let mut rows = Vec::new();
    for &n in &options.sizes {
        eprintln!("bench: {n} packages");
        rows.extend(deb(&options, n, &gpg).await?);
        rows.extend(rpm(&options, n, &gpg).await?);
        write_report(&options.out, &rows)?;
    }
    if options.packyard_only {
        println!("{}", markdown(&rows));
        return Ok(());
    }
    eprintln!("bench: upload ingest");
    rows.extend(service::ingest(&options.work, options.ingest_bytes)?);
    eprintln!("bench: serving");
    rows.extend(service::serving(&options.work)?);
    rows.extend(registries_rows(&options.work, REGISTRY_FILES)?);
    eprintln!("bench: push throughput");
    rows.extend(throughput::throughput(&options.work, &gpg).await?);
    eprintln!("bench: client push against package_cloud's requests");
    rows.extend(client::push(&options.work).await?);
    eprintln!("bench: container images against docker-registry");
    rows.extend(images::images(&options.work)?);
    if let Some(&largest) = options.sizes.iter().max() {
        eprintln!("bench: footprint");
        let data = options.work.join(format!("deb-{largest}/packyard"));
        rows.extend(service::footprint(&data, largest)?);
    }
    write_report(&options.out, &rows)?;
    println!("{}", markdown(&rows));
    Ok(())
}

/// Files (PyPI) and versions (npm) in the project the registry scenarios publish into.
const REGISTRY_FILES: usize = 1000;

fn registries_rows(work: &Path, files: usize) -> Result<Vec<Row>> {
    eprintln!("bench: PyPI against pypiserver");
    let mut rows = registries::pypi(work, files)?;
    eprintln!("bench: npm against verdaccio");
    rows.extend(registries::npm(work, files)?);
    Ok(rows)
}

/// The registry scenarios alone (PyPI and npm against their peers) on a project of `files`,
/// printed and not recorded.
pub fn registries_only(work: &Path, files: usize) -> Result<()> {
    let rows = registries_rows(work, files)?;
    println!("{}", markdown(&rows));
    Ok(())
}

/// The end-to-end scenarios alone at each of `sizes`, beside `reprepro includedeb` and
/// `createrepo_c --update` on the same packages, printed and not recorded.
/// With `packyard_only`, without the references.
pub async fn end_to_end_only(
    work: &Path,
    sizes: &[usize],
    formats: &[String],
    samples: usize,
    packyard_only: bool,
) -> Result<()> {
    let gpg = reference::Gpg::new(work)?;
    let samples = samples.max(1);
    let mut rows = Vec::new();
    for &n in sizes.iter().filter(|_| formats.iter().any(|f| f == "deb")) {
        let dir = work.join(format!("deb-{n}"));
        let files = generate(&dir.join("pool"), n + samples, inputs::write_deb)?;
        let (base, extras) = files.split_at(n);
        let distro = distros::by_os_dist("debian", "bookworm").context("debian/bookworm")?;
        eprintln!("bench: end to end, {n} debs");
        let mut served = end_to_end::measure(&dir, PackageFormat::Deb, distro, base, extras)
            .await?
            .rows("deb", n);
        if !packyard_only {
            eprintln!("bench: seeding reprepro with {n} packages");
            let reprepro = reference::Reprepro::seeded(&dir, &gpg, base)?;
            let included = extras
                .iter()
                .map(|extra| reprepro.include(extra))
                .collect::<Result<Vec<_>>>()?;
            let first = served
                .remove(0)
                .against("reprepro includedeb", median(included));
            served.insert(0, first);
        }
        eprintln!("{}", markdown(&served));
        rows.extend(served);
    }
    for &n in sizes.iter().filter(|_| formats.iter().any(|f| f == "rpm")) {
        let dir = work.join(format!("rpm-{n}"));
        let files = generate(&dir.join("repo"), n + samples, inputs::write_rpm)?;
        let (base, extras) = files.split_at(n);
        let distro = distros::by_os_dist("el", "9").context("el/9")?;
        eprintln!("bench: end to end, {n} rpms");
        let mut served = end_to_end::measure(&dir, PackageFormat::Rpm, distro, base, extras)
            .await?
            .rows("rpm", n);
        if !packyard_only {
            let createrepo = reference::Createrepo::new(&dir.join("repo"), &gpg);
            let moved = set_aside(extras, &dir.join("extras"))?;
            createrepo.run(false)?;
            put_back(moved)?;
            let updated = createrepo.run(true)?;
            let first = served
                .remove(0)
                .against(format!("{} --update + gpg", createrepo.describe()), updated);
            served.insert(0, first);
        }
        rows.extend(served);
        println!("{}", markdown(&rows));
    }
    Ok(())
}

/// The push throughput scenario alone, printed and not recorded.
pub async fn throughput_only(work: &Path) -> Result<()> {
    let gpg = reference::Gpg::new(work)?;
    let rows = throughput::throughput(work, &gpg).await?;
    println!("{}", markdown(&rows));
    Ok(())
}

/// The client scenario alone, printed and not recorded.
pub async fn client_only(work: &Path) -> Result<()> {
    let rows = client::push(work).await?;
    println!("{}", markdown(&rows));
    Ok(())
}

/// The sustained load scenario, printed and not recorded (docs/TESTING.md keeps its figures).
pub async fn load_only(work: &Path, secs: u64, clients: usize) -> Result<()> {
    load::load(work, secs, clients, 1000).await
}

/// The container image scenario alone (skopeo against docker-registry), printed and not
/// recorded.
pub fn images_only(work: &Path) -> Result<()> {
    let rows = images::images(work)?;
    println!("{}", markdown(&rows));
    Ok(())
}

/// The serving scenario alone, for profiling the request path.
pub fn serving_only(work: &Path) -> Result<()> {
    let rows = service::serving(work)?;
    println!("{}", markdown(&rows));
    Ok(())
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Generates packages `0..n` (and `n`, the one pushed incrementally) with `write`, in parallel.
fn generate(
    dir: &Path,
    n: usize,
    write: fn(&Path, usize) -> Result<PathBuf>,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let threads = std::thread::available_parallelism().map_or(2, |p| p.get());
    let chunks: Vec<Vec<usize>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(n.div_ceil(threads).max(1))
        .map(<[usize]>::to_vec)
        .collect();
    let mut paths = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|i| write(dir, i))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("generator thread"))
            .collect::<Result<Vec<Vec<_>>>>()
    })?
    .concat();
    paths.sort();
    Ok(paths)
}

fn stage(path: &Path) -> Result<Staged> {
    let bytes = std::fs::read(path)?;
    let mut hasher = MultiHasher::default();
    hasher.update(&bytes);
    let filename = path.file_name().context("a file name")?;
    Ok(Staged::new(
        path.to_path_buf(),
        filename.to_string_lossy().into_owned(),
        hasher.finish(),
    ))
}

/// A fresh Packyard in `data` with one repository `bench/repo` signed with a key of
/// `algorithm`, and `files` imported.
async fn packyard(
    data: &Path,
    algorithm: KeyAlgorithm,
    distro: &Distro,
    files: &[PathBuf],
) -> Result<(App, db::repos::Repo)> {
    let _ = std::fs::remove_dir_all(data);
    let config = Config {
        data_dir: data.to_path_buf(),
        signing_key_algorithm: algorithm,
        ..Config::default()
    };
    let app = App::open(config).await?;
    let user = db::users::find_or_create(&app.db, "bench").await?;
    let key = crate::keys::generate_for(&app, "bench", "repo", None, None).await?;
    let new = db::repos::NewRepo {
        owner_id: user.id,
        name: "repo",
        private: false,
        index_zstd: false,
        index_xz: false,
    };
    db::repos::create(&app.db, &new, &key).await?;
    let repo = db::repos::by_owner_and_name(&app.db, "bench", "repo")
        .await?
        .context("the bench repository")?;
    for batch in files.chunks(2000) {
        let staged = batch.iter().map(|p| stage(p)).collect::<Result<Vec<_>>>()?;
        ingest::import(&app, &repo, distro, &staged)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok((app, repo))
}

/// Drops every cached chunk, hash state and package list, so the next publish starts from
/// the stored entries alone.
async fn forget(app: &App, target: &Target) -> Result<()> {
    app.db.execute_sql("DELETE FROM index_chunks").await?;
    app.hash_states.forget(target);
    app.listings.forget(target);
    Ok(())
}

async fn publish(app: &App, target: &Target, format: PackageFormat) -> Result<()> {
    // The jobs the pushes queued are replaced by this direct run.
    app.db.execute_sql("DELETE FROM jobs").await?;
    let build = crate::db::generations::Build::new(&app.instance, None);
    format.publish(app, target, &build).await
}

fn median<T: PartialOrd + Copy>(mut samples: Vec<T>) -> T {
    samples.sort_by(|a, b| a.partial_cmp(b).expect("timings are comparable"));
    samples[samples.len() / 2]
}

/// The median of timed pushes of each of `extras` into a published repository, each followed
/// by a publish.
async fn incremental(
    app: &App,
    repo: &db::repos::Repo,
    distro: &Distro,
    target: &Target,
    extras: &[PathBuf],
) -> Result<Duration> {
    let mut samples = Vec::new();
    for extra in extras {
        let staged = stage(extra)?;
        samples.push(
            timed(async {
                ingest::push(app, repo, distro, &staged)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                publish(app, target, distro.format).await
            })
            .await?,
        );
    }
    Ok(median(samples))
}

/// Moves `files` into `dir` and back, so a reference tool can index the folder without them.
fn set_aside(files: &[PathBuf], dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    std::fs::create_dir_all(dir)?;
    files
        .iter()
        .map(|file| {
            let aside = dir.join(file.file_name().context("a file name")?);
            std::fs::rename(file, &aside)?;
            Ok((aside, file.clone()))
        })
        .collect()
}

fn put_back(moved: Vec<(PathBuf, PathBuf)>) -> Result<()> {
    for (aside, file) in moved {
        std::fs::rename(aside, file)?;
    }
    Ok(())
}

async fn timed<F: std::future::Future<Output = Result<()>>>(f: F) -> Result<Duration> {
    let started = Instant::now();
    f.await?;
    Ok(started.elapsed())
}

async fn deb(options: &Options, n: usize, gpg: &reference::Gpg) -> Result<Vec<Row>> {
    let dir = options.work.join(format!("deb-{n}"));
    let files = generate(
        &dir.join("pool"),
        n + options.samples.max(1),
        inputs::write_deb,
    )?;
    let (base, extras) = files.split_at(n);
    let distro = distros::by_os_dist("debian", "bookworm").context("debian/bookworm")?;

    let data = dir.join("packyard");
    let (app, repo) = packyard(&data, KeyAlgorithm::Ed25519, distro, base).await?;
    let target = Target::apt(repo.id, distro.id);
    publish(&app, &target, PackageFormat::Deb).await?;
    let incremental = incremental(&app, &repo, distro, &target, extras).await?;
    forget(&app, &target).await?;
    let full = timed(publish(&app, &target, PackageFormat::Deb)).await?;
    let pages = ui_pages(&app, n).await?;
    drop(app);
    eprintln!("bench: end to end, {n} debs");
    let end_to_end = end_to_end::measure(&dir, PackageFormat::Deb, distro, base, extras).await?;
    let mut served = end_to_end.rows("deb", n);

    if options.packyard_only {
        let mut rows = vec![
            Row::seconds("incremental publish", "deb", n, incremental),
            Row::seconds("full rebuild", "deb", n, full),
        ];
        rows.extend(served);
        rows.extend(pages);
        return Ok(rows);
    }
    let ftparchive = reference::FtpArchive::new(&dir, gpg);
    let moved = set_aside(extras, &dir.join("extras"))?;
    let ftp_cold = ftparchive.publish()?;
    put_back(moved)?;
    let ftp_incremental = ftparchive.publish()?;
    eprintln!("bench: seeding reprepro and aptly with {n} packages");
    // Seeding is not measured and takes most of a run at 100,000: both at once, one a core.
    let (reprepro, aptly) = std::thread::scope(|scope| {
        let aptly = scope.spawn(|| reference::Aptly::seeded(&dir, gpg, base));
        let reprepro = reference::Reprepro::seeded(&dir, gpg, base);
        (reprepro, aptly.join().expect("the aptly seeding thread"))
    });
    let (reprepro, aptly) = (reprepro?, aptly?);
    let reprepro = median(
        extras
            .iter()
            .map(|extra| reprepro.include(extra))
            .collect::<Result<Vec<_>>>()?,
    );
    let aptly = aptly.add_and_publish(&extras[..1])?;
    let first = served.remove(0).against("reprepro includedeb", reprepro);
    served.insert(0, first);
    let ftp_warm = "apt-ftparchive (warm cache) + gzip + gpg";
    let rows = vec![
        Row::seconds("incremental publish", "deb", n, incremental)
            .against(ftp_warm, ftp_incremental)
            .against("reprepro includedeb", reprepro)
            .against("aptly repo add + publish update -skip-contents", aptly),
        Row::seconds("full rebuild", "deb", n, full)
            .against("apt-ftparchive (cold cache) + gzip + gpg", ftp_cold)
            .against(ftp_warm, ftp_incremental),
    ];
    Ok(rows.into_iter().chain(served).chain(pages).collect())
}

/// The longest a web UI page may take to render on the server.
const PAGE_TARGET_SECS: f64 = 0.050;

/// Server-side render times of the web UI's heaviest pages on a repository of `n` packages,
/// through the whole router: the median of five renders each, with the read cache emptied
/// before every one (the first visitor after a publish pays for the counts).
async fn ui_pages(app: &App, n: usize) -> Result<Vec<Row>> {
    use tower::ServiceExt as _;
    let router = crate::http::router(app.clone());
    let pages = [
        ("repository page", "/bench/repo"),
        ("package list, newest first", "/bench/repo/packages"),
        ("package list by name", "/bench/repo/packages?sort=name"),
        ("package list by size", "/bench/repo/packages?sort=size"),
        (
            "package list by downloads",
            "/bench/repo/packages?sort=downloads",
        ),
        (
            "package list by version",
            "/bench/repo/packages?sort=version",
        ),
        (
            "package list, last page",
            "/bench/repo/packages?page=100000",
        ),
        ("package list searched", "/bench/repo/packages?q=00042"),
        (
            "package list searched, by size",
            "/bench/repo/packages?q=00042&sort=size",
        ),
        (
            "package list of pending packages",
            "/bench/repo/packages?status=pending",
        ),
    ];
    let mut rows = Vec::new();
    for (label, path) in pages {
        let mut samples = Vec::new();
        for _ in 0..5 {
            app.cache.invalidate();
            let request = axum::http::Request::get(path)
                .header(axum::http::header::ACCEPT, "text/html")
                .body(axum::body::Body::empty())?;
            let started = Instant::now();
            let response = router.clone().oneshot(request).await?;
            anyhow::ensure!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
            axum::body::to_bytes(response.into_body(), usize::MAX).await?;
            samples.push(started.elapsed());
        }
        rows.push(
            Row::seconds(&format!("web UI: {label}"), "deb", n, median(samples))
                .against("target", PAGE_TARGET_SECS),
        );
    }
    Ok(rows)
}

async fn rpm(options: &Options, n: usize, gpg: &reference::Gpg) -> Result<Vec<Row>> {
    let dir = options.work.join(format!("rpm-{n}"));
    let files = generate(
        &dir.join("repo"),
        n + options.samples.max(1),
        inputs::write_rpm,
    )?;
    let (base, extras) = files.split_at(n);
    let distro = distros::by_os_dist("el", "9").context("el/9")?;

    let data = dir.join("packyard");
    let (app, repo) = packyard(&data, KeyAlgorithm::Ed25519, distro, base).await?;
    let target = Target {
        repository_id: repo.id,
        distro_version_id: distro.id,
        arch: "x86_64".into(),
    };
    publish(&app, &target, PackageFormat::Rpm).await?;
    let incremental = incremental(&app, &repo, distro, &target, extras).await?;
    forget(&app, &target).await?;
    let full = timed(publish(&app, &target, PackageFormat::Rpm)).await?;
    drop(app);
    eprintln!("bench: end to end, {n} rpms");
    let end_to_end = end_to_end::measure(&dir, PackageFormat::Rpm, distro, base, extras).await?;
    let mut served = end_to_end.rows("rpm", n);

    if options.packyard_only {
        let mut rows = vec![
            Row::seconds("incremental publish", "rpm", n, incremental),
            Row::seconds("full rebuild", "rpm", n, full),
        ];
        rows.extend(served);
        return Ok(rows);
    }
    let createrepo = reference::Createrepo::new(&dir.join("repo"), gpg);
    let moved = set_aside(extras, &dir.join("extras"))?;
    let full_reference = createrepo.run(false)?;
    put_back(moved)?;
    let update_reference = createrepo.run(true)?;
    let tool = createrepo.describe();
    let first = served
        .remove(0)
        .against(format!("{tool} --update + gpg"), update_reference);
    served.insert(0, first);
    let rows = vec![
        Row::seconds("incremental publish", "rpm", n, incremental)
            .against(format!("{tool} --update + gpg"), update_reference),
        Row::seconds("full rebuild", "rpm", n, full)
            .against(format!("{tool} + gpg"), full_reference),
    ];
    Ok(rows.into_iter().chain(served).collect())
}

fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | format | packages | Packyard | reference | reference figure | Packyard's advantage |\n|---|---|---:|---:|---|---:|---:|\n",
    );
    for row in rows {
        if row.reference.is_empty() {
            out.push_str(&format!(
                "| {} | {} | {} | {} | | | |\n",
                row.scenario,
                row.format,
                row.packages,
                row.unit.format(row.packyard)
            ));
        }
        for (tool, figure) in &row.reference {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {:.2}x |\n",
                row.scenario,
                row.format,
                row.packages,
                row.unit.format(row.packyard),
                tool,
                row.unit.format(*figure),
                row.unit.advantage(row.packyard, *figure)
            ));
        }
    }
    out
}

fn write_report(out: &Path, rows: &[Row]) -> Result<()> {
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(rows)?,
    )?;
    std::fs::write(out.join("results.md"), markdown(rows))?;
    std::fs::write(out.join("incremental.svg"), chart::incremental(rows))?;
    Ok(())
}

/// Writes `results.md` and the chart again from `results.json`, without measuring.
pub fn render(out: &Path) -> Result<()> {
    let rows: Vec<Row> = serde_json::from_slice(&std::fs::read(out.join("results.json"))?)?;
    write_report(out, &rows)?;
    println!("{}", markdown(&rows));
    Ok(())
}
