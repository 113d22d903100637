//! Sustained load on a running `packyard serve`: readers fetch `InRelease`, the `by-hash`
//! `Packages` file it names and a pool file that file lists, over and over on keep-alive
//! connections, checking each against its digest; meanwhile a push lands every 100 ms and
//! a real `apt-get update` runs in a loop, and the server's memory is sampled every second.
//! What counts is that nothing fails, no digest mismatches and memory stays flat; the
//! latencies and the request rate are reported beside.
//!
//! `read_load` is also what the integration test `load.rs` drives against an in-process
//! server, briefly.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Result;
use packyard_formats::digest::sha256_hex;

use super::memory::memory_kib;
use super::service::Server;

/// What the readers saw.
#[derive(Debug, Default)]
pub struct ReadLoad {
    /// Rounds of three reads.
    pub rounds: usize,
    pub failures: usize,
    /// The first failures, described.
    pub first_failures: Vec<String>,
    pub in_release: Vec<Duration>,
    pub by_hash: Vec<Duration>,
    pub pool: Vec<Duration>,
}

impl ReadLoad {
    fn fail(&mut self, what: String) {
        self.failures += 1;
        if self.first_failures.len() < 10 {
            self.first_failures.push(what);
        }
    }

    fn merge(&mut self, other: ReadLoad) {
        self.rounds += other.rounds;
        self.failures += other.failures;
        let room = 10usize.saturating_sub(self.first_failures.len());
        self.first_failures
            .extend(other.first_failures.into_iter().take(room));
        self.in_release.extend(other.in_release);
        self.by_hash.extend(other.by_hash);
        self.pool.extend(other.pool);
    }

    pub fn requests(&self) -> usize {
        self.in_release.len() + self.by_hash.len() + self.pool.len()
    }
}

/// The `p`th percentile (0 to 100) of `samples`, in milliseconds.
pub fn percentile_ms(samples: &[Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank].as_secs_f64() * 1000.0
}

/// The `SHA256:` entries of a Release file: (digest, path).
fn sha256_entries(release: &str) -> impl Iterator<Item = (&str, &str)> {
    release
        .split("SHA256:\n")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .take_while(|l| l.starts_with(' '))
        .filter_map(|l| {
            let mut fields = l.split_whitespace();
            let digest = fields.next()?;
            let _size = fields.next()?;
            Some((digest, fields.next()?))
        })
}

/// `clients` readers of the APT repository at `source` (`http://HOST/OWNER/REPO/debian`),
/// distribution `dist`, until `until`.
pub async fn read_load(source: &str, dist: &str, clients: usize, until: Instant) -> ReadLoad {
    let readers: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(reader(source.to_owned(), dist.to_owned(), until)))
        .collect();
    let mut load = ReadLoad::default();
    for reader in readers {
        match reader.await {
            Ok(one) => load.merge(one),
            Err(e) => load.fail(format!("a reader failed: {e}")),
        }
    }
    load
}

async fn get(client: &reqwest::Client, url: &str) -> Result<(bytes::Bytes, Duration), String> {
    let started = Instant::now();
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url}: {}", response.status()));
    }
    let body = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
    Ok((body, started.elapsed()))
}

/// One reader's loop, on a connection of its own.
async fn reader(source: String, dist: String, until: Instant) -> ReadLoad {
    let client = reqwest::Client::new();
    let dists = format!("{source}/dists/{dist}");
    let mut load = ReadLoad::default();
    while Instant::now() < until {
        load.rounds += 1;
        let release = match get(&client, &format!("{dists}/InRelease")).await {
            Ok((body, took)) => {
                load.in_release.push(took);
                String::from_utf8_lossy(&body).into_owned()
            }
            Err(e) => {
                load.fail(e);
                continue;
            }
        };
        let Some((digest, _)) =
            sha256_entries(&release).find(|(_, path)| *path == "main/binary-amd64/Packages")
        else {
            load.fail("InRelease lists no main/binary-amd64/Packages".into());
            continue;
        };
        let url = format!("{dists}/main/binary-amd64/by-hash/SHA256/{digest}");
        let packages = match get(&client, &url).await {
            Ok((body, took)) => {
                load.by_hash.push(took);
                body
            }
            Err(e) => {
                load.fail(e);
                continue;
            }
        };
        if sha256_hex(&packages) != digest {
            load.fail(format!("{url} does not hash to its name"));
            continue;
        }
        let text = String::from_utf8_lossy(&packages);
        let stanzas: Vec<&str> = text
            .split("\n\n")
            .filter(|s| s.contains("\nFilename: "))
            .collect();
        let Some(stanza) = stanzas.get(load.rounds % stanzas.len().max(1)) else {
            continue;
        };
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or_default()
                .to_owned()
        };
        let (filename, sha256) = (field("Filename:"), field("SHA256:"));
        match get(&client, &format!("{source}/{filename}")).await {
            Ok((body, took)) => {
                load.pool.push(took);
                if sha256_hex(&body) != sha256 {
                    load.fail(format!("{filename} does not match its SHA256 in Packages"));
                }
            }
            Err(e) => load.fail(e),
        }
    }
    load
}

/// Pushes one deb for bookworm, as package_cloud does; fails unless the answer is 201.
async fn push_deb(client: &reqwest::Client, url: &str, token: &str, file: &Path) -> Result<()> {
    let name = file
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let form = super::service::push_form(12, name, tokio::fs::read(file).await?);
    let response = client
        .post(url)
        .basic_auth(token, Some(""))
        .multipart(form)
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == reqwest::StatusCode::CREATED,
        "{}: {}",
        response.status(),
        response.text().await.unwrap_or_default()
    );
    Ok(())
}

/// An apt of its own in `dir`, reading `source` (signed by the armored `key`).
fn apt_config(dir: &Path, source: &str, key: &str) -> Result<std::path::PathBuf> {
    for sub in ["state/lists/partial", "cache/archives/partial", "parts"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    std::fs::write(dir.join("status"), "")?;
    std::fs::write(dir.join("key.asc"), key)?;
    let d = dir.display();
    std::fs::write(
        dir.join("sources.list"),
        format!("deb [signed-by={d}/key.asc] {source} bookworm main\n"),
    )?;
    let config = dir.join("apt.conf");
    std::fs::write(
        &config,
        format!(
            "Dir::Etc::sourcelist \"{d}/sources.list\";\nDir::Etc::sourceparts \"{d}/parts\";\n\
             Dir::Etc::parts \"{d}/parts\";\nDir::Etc::trustedparts \"{d}/parts\";\n\
             Dir::State \"{d}/state\";\nDir::State::status \"{d}/status\";\nDir::Cache \"{d}/cache\";\n\
             APT::Architecture \"amd64\";\nAPT::Sandbox::User \"root\";\nDebug::NoLocking \"true\";\n\
             Acquire::Retries \"0\";\nAPT::Update::Error-Mode \"any\";\n"
        ),
    )?;
    Ok(config)
}

/// `apt-get update` over and over until `until`: (runs, failures described).
fn apt_loop(config: &Path, until: Instant) -> (usize, Vec<String>) {
    let (mut runs, mut failures) = (0, Vec::new());
    while Instant::now() < until {
        runs += 1;
        match Command::new("apt-get")
            .arg("update")
            .env("APT_CONFIG", config)
            .output()
        {
            Ok(out) => {
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                if !out.status.success() || text.contains("W: ") || text.contains("E: ") {
                    failures.push(text);
                }
            }
            Err(e) => failures.push(format!("apt-get: {e}")),
        }
    }
    (runs, failures)
}

/// The load scenario: `clients` readers and the rest for `secs` seconds against a fresh
/// server holding `initial` packages. Prints the report; fails if anything failed.
pub async fn load(work: &Path, secs: u64, clients: usize, initial: usize) -> Result<()> {
    // Absolute: apt reads relative paths in its configuration from /etc/apt.
    let root = std::path::absolute(work.join("load"))?;
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let debs = super::generate(
        &root.join("debs"),
        initial + secs as usize * 10 + 10,
        super::inputs::write_deb,
    )?;
    let (server, _) = Server::start(&root.join("data"))?;
    let token = server.with_repository()?;
    for deb in &debs[..initial] {
        server.push(&token, deb)?;
    }
    let source = server.url("/bench/bench/debian");
    // The first pushes listed, so apt and the readers find a repository.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reqwest::get(format!(
        "{source}/dists/bookworm/main/binary-amd64/Packages"
    ))
    .await
    .is_ok_and(|r| r.status().is_success())
    {
        anyhow::ensure!(Instant::now() < deadline, "the first index never appeared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let key = reqwest::get(server.url("/bench/bench/gpgkey"))
        .await?
        .text()
        .await?;
    let apt = apt_config(&root.join("apt"), &source, &key)?;

    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let pid = server.pid();
    let readers = tokio::spawn({
        let source = source.clone();
        async move { read_load(&source, "bookworm", clients, until).await }
    });
    let apt_runs = tokio::task::spawn_blocking(move || apt_loop(&apt, until));
    let (mut pushed, mut push_failures, mut push_times) = (0usize, Vec::new(), Vec::new());
    let mut memory = Vec::new();
    let mut next_sample = Instant::now();
    // A push every 100 ms on the dot, each on its own task (a slow one does not delay the
    // next), timed until its 201.
    let push_url = server.url("/api/v1/repos/bench/bench/packages.json");
    let pusher = reqwest::Client::new();
    let mut pushes = Vec::new();
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    for deb in &debs[initial..] {
        ticks.tick().await;
        if Instant::now() >= until {
            break;
        }
        if Instant::now() >= next_sample {
            memory.push((started.elapsed(), memory_kib(pid)?.0));
            next_sample += Duration::from_secs(1);
        }
        let (client, url, token, file) =
            (pusher.clone(), push_url.clone(), token.clone(), deb.clone());
        pushes.push(tokio::spawn(async move {
            let at = Instant::now();
            push_deb(&client, &url, &token, &file)
                .await
                .map(|()| at.elapsed())
                .map_err(|e| format!("{}: {e:#}", file.display()))
        }));
    }
    for push in pushes {
        match push.await? {
            Ok(took) => {
                pushed += 1;
                push_times.push(took);
            }
            Err(e) => push_failures.push(e),
        }
    }
    let reads = readers.await?;
    let (apt_count, apt_failures) = apt_runs.await?;
    memory.push((started.elapsed(), memory_kib(pid)?.0));
    let elapsed = started.elapsed().as_secs_f64();

    let mib = |kib: u64| kib as f64 / 1024.0;
    let early: Vec<u64> = memory
        .iter()
        .filter(|(at, _)| *at >= Duration::from_secs(5) && *at < Duration::from_secs(15))
        .map(|(_, kib)| *kib)
        .collect();
    let settled = early.iter().copied().max().unwrap_or(memory[0].1);
    let last = memory.last().map_or(0, |(_, kib)| *kib);
    let peak = memory.iter().map(|(_, kib)| *kib).max().unwrap_or(0);
    println!(
        "Load: {clients} readers for {secs} s against {initial} packages, a push every 100 ms, apt-get update in a loop\n"
    );
    println!("| what | count | rate | p50 | p99 | max |\n|---|---:|---:|---:|---:|---:|");
    for (what, samples) in [
        ("InRelease", &reads.in_release),
        ("by-hash Packages", &reads.by_hash),
        ("pool file", &reads.pool),
        ("push (201)", &push_times),
    ] {
        println!(
            "| {what} | {} | {:.0}/s | {:.1} ms | {:.1} ms | {:.1} ms |",
            samples.len(),
            samples.len() as f64 / elapsed,
            percentile_ms(samples, 50.0),
            percentile_ms(samples, 99.0),
            percentile_ms(samples, 100.0)
        );
    }
    println!(
        "\nall reads: {} requests, {:.0} req/s; failures or digest mismatches: {}; pushes: {pushed} ({} failed); \
         apt-get update: {apt_count} runs ({} failed); server RSS: {:.1} MiB settled (5-15 s), {:.1} MiB at the end, {:.1} MiB peak",
        reads.requests(),
        reads.requests() as f64 / elapsed,
        reads.failures,
        push_failures.len(),
        apt_failures.len(),
        mib(settled),
        mib(last),
        mib(peak)
    );
    for failure in reads
        .first_failures
        .iter()
        .chain(&push_failures)
        .chain(apt_failures.iter().take(3))
    {
        eprintln!("failure: {failure}");
    }
    anyhow::ensure!(
        reads.failures == 0 && push_failures.is_empty() && apt_failures.is_empty(),
        "the load run had failures"
    );
    // The read cache fills as the repository grows, up to `cache_mib` (64 MiB by default);
    // past that, growth is a leak.
    let quarters: Vec<String> = (1..=4)
        .map(|q| {
            let at = memory.len() * q / 4;
            format!("{:.1}", mib(memory[at.saturating_sub(1)].1))
        })
        .collect();
    println!(
        "server RSS at each quarter of the run, MiB: {}",
        quarters.join(", ")
    );
    anyhow::ensure!(
        last <= settled + (64 + 16) * 1024,
        "memory grew from {:.1} MiB to {:.1} MiB under steady load, past the read cache's cap",
        mib(settled),
        mib(last)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_ranked_sample() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&samples, 50.0), 51.0);
        assert_eq!(percentile_ms(&samples, 99.0), 99.0);
        assert_eq!(percentile_ms(&samples, 100.0), 100.0);
        assert_eq!(percentile_ms(&[], 50.0), 0.0);
    }

    #[test]
    fn release_entries_are_read_from_the_sha256_section() {
        let release = "Origin: x\nMD5Sum:\n 00 1 main/binary-amd64/Packages\nSHA256:\n ab 10 main/binary-amd64/Packages\n cd 5 main/binary-amd64/Packages.gz\nAcquire-By-Hash: yes\n";
        let entries: Vec<_> = sha256_entries(release).collect();
        assert_eq!(
            entries,
            vec![
                ("ab", "main/binary-amd64/Packages"),
                ("cd", "main/binary-amd64/Packages.gz")
            ]
        );
    }
}
