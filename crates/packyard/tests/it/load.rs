//! Load while publishing: concurrent clients read `InRelease`, the `by-hash` files it names and
//! pool files, over and over, while a push lands every 100 ms. Every answer must be complete
//! and consistent: each `by-hash` file hashes to its name, each pool file to the digest its
//! `Packages` entry gives, and nothing fails. `PACKYARD_LOAD_SECS` (5 by default) and
//! `PACKYARD_LOAD_CLIENTS` (50) set the size.

use std::time::{Duration, Instant};

use packyard::bench::load::read_load;

use crate::support::TestApp;

const DIST: &str = "/admin/stable/debian/dists/bookworm";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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
    let source = app.url("/admin/stable/debian");
    let readers =
        tokio::spawn(async move { read_load(&source, "bookworm", clients as usize, until).await });
    let mut pushed = 0;
    while Instant::now() < until {
        app.push_deb("stable", &format!("load{pushed}"), "1.0", "amd64")
            .await;
        pushed += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reads = readers.await.unwrap();
    eprintln!(
        "load: {clients} clients, {} rounds of three reads in {secs} s, {pushed} pushes",
        reads.rounds
    );
    assert_eq!(
        reads.failures, 0,
        "failed or inconsistent reads: {:?}",
        reads.first_failures
    );
    assert!(
        reads.rounds > clients as usize && reads.pool.len() > clients as usize,
        "every client read more than once, down to the pool"
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
