//! The package registries beside their usual self-hosted peers, on one project of `files`
//! files: PyPI against pypiserver, npm against verdaccio. Each side gets the same uploads over
//! HTTP; "publish" is the time from starting one more upload (with curl) until the project
//! page (PyPI) or the packument (npm) served lists it, polled in process over HTTP/1.0
//! every millisecond;
//! "serving" is wrk against that page.
//! The peers come from `target/bench-tools` (scripts/bench installs them).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use base64::Engine as _;
use packyard_formats::{npm, pypi};

use super::service::{Server, curl, free_port, wrk};
use super::{Row, Unit};

/// Uploads measured after seeding; the median is reported.
const SAMPLES: usize = 3;

fn tools() -> PathBuf {
    PathBuf::from("target/bench-tools")
}

/// A peer registry process, killed when dropped.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A GET of `url` (`http://127.0.0.1:PORT/PATH`) as HTTP/1.0, so every server closes the
/// connection after the response: the response read to its end, empty on any failure. In
/// process, so polling costs no process start.
fn body(url: &str) -> String {
    use std::io::{Read, Write};
    let Some((authority, path)) = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split_once('/'))
    else {
        return String::new();
    };
    let Ok(mut stream) = std::net::TcpStream::connect(authority) else {
        return String::new();
    };
    let request = format!("GET /{path} HTTP/1.0\r\nHost: {authority}\r\nAccept: */*\r\n\r\n");
    let mut response = Vec::new();
    if stream.write_all(request.as_bytes()).is_err() || stream.read_to_end(&mut response).is_err() {
        return String::new();
    }
    String::from_utf8_lossy(&response).into_owned()
}

/// Waits until `url` answers a body containing `needle`; the time it took.
fn until_listed(url: &str, needle: &str, started: Instant) -> Result<Duration> {
    loop {
        if body(url).contains(needle) {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "{url} did not list {needle}"
        );
        // A pause between polls, so the poller does not take the cores the server publishes
        // with (two here): the same for every server measured.
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The median time of `SAMPLES` uploads of `push(i)` until `url` lists `needle(i)`.
fn publish_times(
    url: &str,
    first: usize,
    push: impl Fn(usize) -> Result<()>,
    needle: impl Fn(usize) -> String,
) -> Result<Duration> {
    let mut times = Vec::new();
    for i in first..first + SAMPLES {
        let started = Instant::now();
        push(i)?;
        times.push(until_listed(url, &needle(i), started)?);
    }
    Ok(super::median(times))
}

fn serving_rows(
    scenario: &str,
    format: &str,
    files: usize,
    packyard: &str,
    peer: &str,
    tool: &str,
) -> Result<Vec<Row>> {
    let (ours, theirs) = (wrk(packyard, 32)?.0, wrk(peer, 32)?.0);
    Ok(vec![
        Row {
            scenario: scenario.into(),
            format: format.into(),
            packages: files,
            packyard: ours,
            unit: Unit::RequestsPerSecond,
            reference: Vec::new(),
        }
        .against(tool, theirs),
    ])
}

fn wheel(dir: &Path, i: usize) -> Result<(String, PathBuf)> {
    let (filename, bytes) = pypi::build_wheel("benchpkg", &format!("1.0.{i}"));
    let path = dir.join(&filename);
    std::fs::write(&path, bytes)?;
    Ok((filename, path))
}

fn twine_form(token: Option<&str>, file: &Path, url: &str) -> Result<()> {
    let auth = token.map(|t| format!("__token__:{t}"));
    let content = format!("content=@{}", file.display());
    let mut args = vec![
        "-F",
        ":action=file_upload",
        "-F",
        "protocol_version=1",
        "-F",
        &content,
    ];
    if let Some(auth) = &auth {
        args.extend(["-u", auth.as_str()]);
    }
    args.push(url);
    curl(&args)
}

/// One more wheel into a project of `files`, until pip's page lists it; and that page's
/// requests per second; against pypiserver serving the same files.
pub fn pypi(work: &Path, files: usize) -> Result<Vec<Row>> {
    let dir = work.join("pypi");
    let _ = std::fs::remove_dir_all(&dir);
    let wheels = dir.join("wheels");
    std::fs::create_dir_all(&wheels)?;
    let seeded: Vec<(String, PathBuf)> = (0..files)
        .map(|i| wheel(&wheels, i))
        .collect::<Result<_>>()?;

    let (server, _) = Server::start(&dir.join("packyard"))?;
    let token = server.with_repository()?;
    let upload = server.url("/bench/bench/pypi/");
    for (_, path) in &seeded {
        twine_form(Some(&token), path, &upload)?;
    }
    let page = server.url("/bench/bench/pypi/simple/benchpkg/");
    until_listed(&page, &seeded[files - 1].0, Instant::now())?;
    let ours = publish_times(
        &page,
        files,
        |i| twine_form(Some(&token), &wheel(&wheels, i)?.1, &upload),
        |i| format!("benchpkg-1.0.{i}-py3"),
    )?;

    let packages = dir.join("pypiserver");
    std::fs::create_dir_all(&packages)?;
    for (name, path) in &seeded {
        std::fs::copy(path, packages.join(name))?;
    }
    let port = free_port()?;
    let peer = Peer(
        Command::new(tools().join("pypiserver/bin/pypi-server"))
            .args([
                "run",
                "-p",
                &port.to_string(),
                "-a",
                ".",
                "-P",
                ".",
                "--disable-fallback",
            ])
            .arg(&packages)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting pypi-server (scripts/bench installs it)")?,
    );
    let peer_page = format!("http://127.0.0.1:{port}/simple/benchpkg/");
    until_listed(&peer_page, &seeded[files - 1].0, Instant::now())?;
    let peer_upload = format!("http://127.0.0.1:{port}/");
    let theirs = publish_times(
        &peer_page,
        files + SAMPLES,
        |i| twine_form(None, &wheel(&wheels, i)?.1, &peer_upload),
        |i| format!("benchpkg-1.0.{i}-py3"),
    )?;
    let mut rows = vec![
        Row::seconds(
            "publish one more file until the page lists it",
            "python",
            files,
            ours,
        )
        .against("pypiserver 2 (upload, then its page)", super::secs(theirs)),
    ];
    rows.extend(serving_rows(
        "serving the project page",
        "python",
        files,
        &page,
        &peer_page,
        "pypiserver 2",
    )?);
    drop(peer);
    drop(server);
    Ok(rows)
}

/// The body `npm publish` sends for `benchnpm` at `version`.
fn publish_body(version: &str) -> String {
    let tarball = npm::build_tarball("benchnpm", version);
    let digests = packyard_formats::digest::FileDigests::of(&tarball);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&tarball);
    serde_json::json!({
        "_id": "benchnpm",
        "name": "benchnpm",
        "dist-tags": { "latest": version },
        "versions": { version: {
            "name": "benchnpm", "version": version, "main": "index.js",
            "dist": { "shasum": digests.sha1, "tarball": format!("http://localhost/benchnpm/-/benchnpm-{version}.tgz") },
        }},
        "_attachments": { format!("benchnpm-{version}.tgz"): {
            "content_type": "application/octet-stream", "data": encoded, "length": tarball.len(),
        }},
    })
    .to_string()
}

fn npm_publish(dir: &Path, auth: &str, url: &str, i: usize) -> Result<()> {
    let path = dir.join(format!("publish-{i}.json"));
    std::fs::write(&path, publish_body(&format!("1.0.{i}")))?;
    curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/json",
        "-H",
        auth,
        "--data-binary",
        &format!("@{}", path.display()),
        url,
    ])
}

/// One more version into a package of `files` versions, until the packument lists it; and
/// the packument's requests per second; against verdaccio.
pub fn npm(work: &Path, files: usize) -> Result<Vec<Row>> {
    let dir = work.join("npm");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;

    let (server, _) = Server::start(&dir.join("packyard"))?;
    let token = server.with_repository()?;
    let auth = format!("Authorization: Bearer {token}");
    let url = server.url("/bench/bench/npm/benchnpm");
    for i in 0..files {
        npm_publish(&dir, &auth, &url, i)?;
    }
    until_listed(&url, &format!("\"1.0.{}\"", files - 1), Instant::now())?;
    let ours = publish_times(
        &url,
        files,
        |i| npm_publish(&dir, &auth, &url, i),
        |i| format!("\"1.0.{i}\""),
    )?;

    let port = free_port()?;
    let storage = dir.join("verdaccio-storage");
    let config = dir.join("verdaccio.yaml");
    std::fs::write(
        &config,
        format!(
            "storage: {}\nauth:\n  htpasswd:\n    file: {}\n    max_users: -1\nuplinks: {{}}\npackages:\n  '**':\n    access: $all\n    publish: $all\nlog: {{ type: stdout, format: pretty, level: error }}\nmax_body_size: 100mb\n",
            storage.display(),
            dir.join("htpasswd").display()
        ),
    )?;
    let peer = Peer(
        Command::new(tools().join("verdaccio/node_modules/.bin/verdaccio"))
            .args(["--config"])
            .arg(&config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting verdaccio (scripts/bench installs it)")?,
    );
    let peer_url = format!("http://127.0.0.1:{port}/benchnpm");
    let started = Instant::now();
    while Command::new("curl")
        .args([
            "-sf",
            "-o",
            "/dev/null",
            &format!("http://127.0.0.1:{port}/-/ping"),
        ])
        .status()?
        .code()
        != Some(0)
    {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "verdaccio did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let anonymous = "X-Bench: anonymous";
    for i in 0..files {
        npm_publish(&dir, anonymous, &peer_url, i)?;
    }
    until_listed(&peer_url, &format!("\"1.0.{}\"", files - 1), Instant::now())?;
    let theirs = publish_times(
        &peer_url,
        files + SAMPLES,
        |i| npm_publish(&dir, anonymous, &peer_url, i),
        |i| format!("\"1.0.{i}\""),
    )?;
    let mut rows = vec![
        Row::seconds(
            "publish one more version until the packument lists it",
            "npm",
            files,
            ours,
        )
        .against(
            "verdaccio 6 (publish, then its packument)",
            super::secs(theirs),
        ),
    ];
    rows.extend(serving_rows(
        "serving the packument",
        "npm",
        files,
        &url,
        &peer_url,
        "verdaccio 6",
    )?);
    drop(peer);
    drop(server);
    Ok(rows)
}
