//! Scenarios measured on a running `packyard serve` (this very binary, release build): upload
//! ingest against `sha256sum` plus `cp`, serving against nginx with wrk, and the footprint of
//! an idle server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::memory::{memory_kib, reset_peak_memory};
use super::reference::timed;
use super::{Row, Unit, inputs};

const MIB: f64 = 1024.0 * 1024.0;

pub(super) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A `packyard serve` process on a data folder of its own, killed when dropped.
pub(super) struct Server {
    child: Child,
    port: u16,
    data: PathBuf,
}

impl Server {
    /// Starts the server (new keys Ed25519, warnings only); returns it and the time until it
    /// answered `/readyz` with 200.
    pub(super) fn start(data: &Path) -> Result<(Server, Duration)> {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .env("PACKYARD_SIGNING_KEY_ALGORITHM", "ed25519")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
        Server::spawn(command, data)
    }

    /// Starts the server on its default configuration, its log (JSON, `info`) in `log`.
    pub(super) fn start_logged(data: &Path, log: &Path) -> Result<(Server, Duration)> {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .env("PACKYARD_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(std::fs::File::create(log)?);
        Server::spawn(command, data)
    }

    fn spawn(mut command: Command, data: &Path) -> Result<(Server, Duration)> {
        let port = free_port()?;
        let started = Instant::now();
        let child = command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data)
            .spawn()
            .context("starting packyard serve")?;
        let server = Server {
            child,
            port,
            data: data.to_path_buf(),
        };
        loop {
            if server.status("/readyz") == Some(200) {
                return Ok((server, started.elapsed()));
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "the server did not become ready"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The status of a GET, by hand: the only client this needs is one request.
    fn status(&self, path: &str) -> Option<u16> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n").ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).ok()?;
        std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An API token of the user `bench`.
    pub(super) fn token(&self) -> Result<String> {
        let out = Command::new(std::env::current_exe()?)
            .args(["admin", "create-token", "--user", "bench", "--data-dir"])
            .arg(&self.data)
            .output()?;
        anyhow::ensure!(out.status.success(), "admin create-token failed");
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    }

    /// An API token, a repository `bench/bench`, and the token.
    pub(super) fn with_repository(&self) -> Result<String> {
        let token = self.token()?;
        curl(&[
            "-u",
            &format!("{token}:"),
            "-d",
            "repository[name]=bench",
            &self.url("/api/v1/repos.json"),
        ])?;
        Ok(token)
    }

    pub(super) fn push(&self, token: &str, file: &Path) -> Result<()> {
        curl(&[
            "-u",
            &format!("{token}:"),
            "-F",
            "package[distro_version_id]=12",
            "-F",
            &format!("package[package_file]=@{}", file.display()),
            &self.url("/api/v1/repos/bench/bench/packages.json"),
        ])
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The multipart form of packagecloud's push of `bytes` as `name` to a distribution version.
pub(super) fn push_form(
    distro_version_id: i64,
    name: String,
    bytes: Vec<u8>,
) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .text("package[distro_version_id]", distro_version_id.to_string())
        .part(
            "package[package_file]",
            reqwest::multipart::Part::bytes(bytes).file_name(name),
        )
}

pub(super) fn curl(args: &[&str]) -> Result<()> {
    let out = Command::new("curl")
        .args(["-sS", "--fail-with-body", "-o", "/dev/null"])
        .args(args)
        .output()
        .context("running curl")?;
    anyhow::ensure!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A push of a `size`-byte package through HTTP, against `sha256sum` plus `cp` of the file.
pub fn ingest(work: &Path, size: u64) -> Result<Vec<Row>> {
    let dir = work.join("ingest");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("large_1.0_amd64.deb");
    inputs::write_large_deb(&file, "large", size)?;
    let bytes = std::fs::metadata(&file)?.len() as f64;

    let reference = timed(|| {
        let sum = Command::new("sha256sum")
            .arg(&file)
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(sum.success(), "sha256sum failed");
        let copy = Command::new("cp")
            .arg(&file)
            .arg(dir.join("copy"))
            .status()?;
        anyhow::ensure!(copy.success(), "cp failed");
        Ok(())
    })?;
    std::fs::remove_file(dir.join("copy"))?;

    let (server, _) = Server::start(&dir.join("data"))?;
    let token = server.with_repository()?;
    let (before, _) = memory_kib(server.pid())?;
    reset_peak_memory(server.pid())?;
    let pushed = timed(|| server.push(&token, &file))?;
    let (_, peak) = memory_kib(server.pid())?;
    drop(server);
    std::fs::remove_dir_all(&dir)?;

    let label = format!("upload ingest of {} MiB", size >> 20);
    Ok(vec![
        Row {
            scenario: label.clone(),
            format: "deb".into(),
            packages: 1,
            packyard: bytes / MIB / pushed,
            unit: Unit::MibPerSecond,
            reference: Vec::new(),
        }
        .against("sha256sum + cp", bytes / MIB / reference),
        Row {
            scenario: format!("{label}: peak memory growth"),
            format: "deb".into(),
            packages: 1,
            packyard: peak.saturating_sub(before) as f64 / 1024.0,
            unit: Unit::Mib,
            reference: Vec::new(),
        }
        .against("target (DESIGN.md)", 64.0),
    ])
}

/// nginx serving a folder on a free port, stopped when dropped.
struct Nginx {
    child: Child,
    port: u16,
}

impl Nginx {
    fn start(root: &Path, dir: &Path) -> Result<Nginx> {
        let port = free_port()?;
        let conf = dir.join("nginx.conf");
        // A `user` line makes nginx's workers keep root's access to the files.
        let user = if running_as_root() {
            "user root;\n"
        } else {
            ""
        };
        std::fs::write(
            &conf,
            format!(
                "{user}daemon off;\nworker_processes auto;\npid {pid};\nerror_log {log} warn;\n\
                 events {{ worker_connections 1024; }}\n\
                 http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 100000;\n\
                 client_body_temp_path {tmp};\n  proxy_temp_path {tmp};\n  fastcgi_temp_path {tmp};\n\
                 uwsgi_temp_path {tmp};\n  scgi_temp_path {tmp};\n\
                 server {{ listen 127.0.0.1:{port}; root {root}; }}\n}}\n",
                pid = dir.join("nginx.pid").display(),
                log = dir.join("nginx.log").display(),
                tmp = dir.display(),
                root = root.display(),
            ),
        )?;
        let child = Command::new("nginx")
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(dir)
            .stderr(Stdio::null())
            .spawn()
            .context("starting nginx (scripts/bench installs it)")?;
        let nginx = Nginx { child, port };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(10),
                "nginx did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(nginx)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM, so the master stops its workers too.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().next())
            == Some("0")
    })
}

/// Requests and bytes per second that `wrk` measured for `url`.
pub(super) fn wrk(url: &str, connections: u32) -> Result<(f64, f64)> {
    let out = Command::new("wrk")
        .args(["-t2", &format!("-c{connections}"), "-d5s", url])
        .output()
        .context("running wrk (scripts/bench installs it)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(out.status.success(), "wrk failed: {text}");
    anyhow::ensure!(
        !text.contains("Non-2xx"),
        "{url} answered errors under load: {text}"
    );
    let value = |label: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .map(str::trim)
            .with_context(|| format!("{label} in wrk's output: {text}"))
    };
    let requests: f64 = value("Requests/sec:")?.parse()?;
    let transfer = value("Transfer/sec:")?;
    let (number, unit) = transfer.split_at(transfer.find(|c: char| c.is_alphabetic()).unwrap_or(0));
    let scale = match unit {
        "B" => 1.0 / MIB,
        "KB" => 1.0 / 1024.0,
        "MB" => 1.0,
        "GB" => 1024.0,
        other => anyhow::bail!("unknown unit {other:?} in wrk's output"),
    };
    Ok((requests, number.parse::<f64>()? * scale))
}

/// `wrk` runs per server and file.
const SERVING_ROUNDS: usize = 3;

/// Pool files of 4 KiB and 50 MiB and `InRelease`, from Packyard and from nginx serving the
/// same bytes from disk at the same paths.
pub fn serving(work: &Path) -> Result<Vec<Row>> {
    // What earlier scenarios wrote (gigabytes, for the upload) is flushed first, so the
    // kernel's writeback does not compete with either server for the two cores.
    anyhow::ensure!(Command::new("sync").status()?.success(), "sync failed");
    let dir = work.join("serving");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    // nginx resolves relative paths against its prefix.
    let dir = std::fs::canonicalize(&dir)?;
    let (server, _) = Server::start(&dir.join("data"))?;
    let token = server.with_repository()?;
    let pool = "/bench/bench/debian/pool/bookworm/main";
    let files = [
        ("4 KiB pool file", "small", 4u64 << 10),
        ("50 MiB pool file", "large", 50 << 20),
    ];
    let root = dir.join("www");
    let mut paths = Vec::new();
    for (label, name, size) in files {
        let file = dir.join(format!("{name}_1.0_amd64.deb"));
        inputs::write_large_deb(&file, name, size - 512)?;
        server.push(&token, &file)?;
        let path = format!("{pool}/{}/{name}/{name}_1.0_amd64.deb", &name[..1]);
        std::fs::create_dir_all(root.join(&path[1..]).parent().context("a parent")?)?;
        std::fs::rename(&file, root.join(&path[1..]))?;
        paths.push((label, path));
    }
    let in_release = "/bench/bench/debian/dists/bookworm/InRelease";
    let started = Instant::now();
    while server.status(in_release) != Some(200) {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "the index was not published"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = Command::new("curl")
        .args(["-sSf", "-o"])
        .arg(root.join(&in_release[1..]))
        .arg("--create-dirs")
        .arg(server.url(in_release))
        .status()?;
    anyhow::ensure!(out.success(), "fetching InRelease failed");
    paths.push(("InRelease", in_release.to_owned()));

    let nginx = Nginx::start(&root, &dir)?;
    let mut rows = Vec::new();
    for (label, path) in &paths {
        let connections = if label.starts_with("50 MiB") { 4 } else { 32 };
        // Rounds alternate between the two servers, so a slow spell of the machine weighs
        // on both; each figure is the median of its rounds.
        let (mut packyard_runs, mut nginx_runs) = (Vec::new(), Vec::new());
        for _ in 0..SERVING_ROUNDS {
            packyard_runs.push(wrk(&server.url(path), connections)?);
            nginx_runs.push(wrk(
                &format!("http://127.0.0.1:{}{path}", nginx.port),
                connections,
            )?);
        }
        let medians = |runs: &[(f64, f64)]| {
            (
                super::median(runs.iter().map(|r| r.0).collect()),
                super::median(runs.iter().map(|r| r.1).collect()),
            )
        };
        let (packyard_rps, packyard_mib) = medians(&packyard_runs);
        let (nginx_rps, nginx_mib) = medians(&nginx_runs);
        for (unit, packyard, reference) in [
            (Unit::RequestsPerSecond, packyard_rps, nginx_rps),
            (Unit::MibPerSecond, packyard_mib, nginx_mib),
        ] {
            rows.push(
                Row {
                    scenario: format!("serving {label}"),
                    format: "deb".into(),
                    packages: 2,
                    packyard,
                    unit,
                    reference: Vec::new(),
                }
                .against("nginx 1.22 (same files from disk)", reference),
            );
        }
    }
    drop(nginx);
    drop(server);
    std::fs::remove_dir_all(&dir)?;
    Ok(rows)
}

/// Start-up time and idle memory of a server on the data folder the publish benchmark left.
pub fn footprint(data: &Path, packages: usize) -> Result<Vec<Row>> {
    let (server, startup) = Server::start(data)?;
    std::thread::sleep(Duration::from_secs(2));
    let (idle, _) = memory_kib(server.pid())?;
    Ok(vec![
        Row::seconds("start-up until ready", "deb", packages, startup)
            .against("target (DESIGN.md)", 1.0),
        Row {
            scenario: "resident memory when idle".into(),
            format: "deb".into(),
            packages,
            packyard: idle as f64 / 1024.0,
            unit: Unit::Mib,
            reference: Vec::new(),
        }
        .against("target (DESIGN.md)", 50.0),
    ])
}
