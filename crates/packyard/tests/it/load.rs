//! Load while publishing: concurrent clients read `InRelease`, the `by-hash` files it names and
//! pool files, over and over, while a push lands every 100 ms. Every answer must be complete
//! and consistent: each `by-hash` file hashes to its name, each pool file to the digest its
//! `Packages` entry gives, and nothing fails. `PACKYARD_LOAD_SECS` (5 by default) and
//! `PACKYARD_LOAD_CLIENTS` (50) set the size.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::support::TestApp;

const DIST: &str = "/admin/stable/debian/dists/bookworm";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `SHA256:` entries of a Release text: (digest, size, path).
fn sha256_entries(release: &str) -> Vec<(String, String)> {
    release
        .split("SHA256:\n")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .take_while(|l| l.starts_with(' '))
        .filter_map(|l| {
            let mut fields = l.split_whitespace();
            let digest = fields.next()?.to_owned();
            let _size = fields.next()?;
            Some((digest, fields.next()?.to_owned()))
        })
        .collect()
}

/// One client's loop: InRelease, a by-hash Packages file it names, and a pool file that file
/// lists, each checked against its digest. Returns the number of rounds.
async fn reader(
    client: reqwest::Client,
    base: String,
    until: Instant,
    failures: Arc<AtomicUsize>,
) -> usize {
    let mut rounds = 0;
    let fail = |what: String| {
        failures.fetch_add(1, Ordering::SeqCst);
        eprintln!("load: {what}");
    };
    while Instant::now() < until {
        rounds += 1;
        let get = |path: String| {
            let client = client.clone();
            let url = format!("{base}{path}");
            async move {
                let response = client
                    .get(&url)
                    .send()
                    .await
                    .map_err(|e| format!("{url}: {e}"))?;
                if !response.status().is_success() {
                    return Err(format!("{url}: {}", response.status()));
                }
                response.bytes().await.map_err(|e| format!("{url}: {e}"))
            }
        };
        let release = match get(format!("{DIST}/InRelease")).await {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => {
                fail(e);
                continue;
            }
        };
        let Some((digest, path)) = sha256_entries(&release)
            .into_iter()
            .find(|(_, p)| p == "main/binary-amd64/Packages")
        else {
            fail("InRelease lists no Packages".into());
            continue;
        };
        let packages = match get(format!("{DIST}/main/binary-amd64/by-hash/SHA256/{digest}")).await
        {
            Ok(bytes) => bytes,
            Err(e) => {
                fail(e);
                continue;
            }
        };
        if hex::encode(Sha256::digest(&packages)) != digest {
            fail(format!("by-hash {path} does not hash to {digest}"));
            continue;
        }
        let text = String::from_utf8_lossy(&packages);
        let stanzas: Vec<&str> = text
            .split("\n\n")
            .filter(|s| s.contains("Filename: "))
            .collect();
        let Some(stanza) = stanzas.get(rounds % stanzas.len().max(1)) else {
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
        match get(format!("/admin/stable/debian/{}", field("Filename:"))).await {
            Ok(bytes) if hex::encode(Sha256::digest(&bytes)) == field("SHA256:") => {}
            Ok(_) => fail(format!("{} does not match its SHA256", field("Filename:"))),
            Err(e) => fail(e),
        }
    }
    rounds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_see_complete_consistent_indexes_while_pushes_land() {
    let secs = env_number("PACKYARD_LOAD_SECS", 5);
    let clients = env_number("PACKYARD_LOAD_CLIENTS", 50);
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    app.push_deb("stable", "seed", "1.0", "amd64").await;
    app.wait_for_jobs().await;

    let until = Instant::now() + Duration::from_secs(secs);
    let failures = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..clients)
        .map(|_| {
            tokio::spawn(reader(
                reqwest::Client::new(),
                app.base.clone(),
                until,
                failures.clone(),
            ))
        })
        .collect();
    let mut pushed = 0;
    while Instant::now() < until {
        app.push_deb("stable", &format!("load{pushed}"), "1.0", "amd64")
            .await;
        pushed += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut rounds = 0;
    for reader in readers {
        rounds += reader.await.unwrap();
    }
    eprintln!(
        "load: {clients} clients, {rounds} rounds of three reads in {secs} s, {pushed} pushes"
    );
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "failed or inconsistent reads"
    );
    assert!(
        rounds > clients as usize,
        "every client read more than once"
    );
    // Every push that landed during the load is in the index once the workers are done.
    app.wait_for_jobs().await;
    let packages = app
        .text(&format!("{DIST}/main/binary-amd64/Packages"))
        .await;
    for n in 0..pushed {
        assert!(packages.contains(&format!("Package: load{n}\n")), "load{n}");
    }
}
