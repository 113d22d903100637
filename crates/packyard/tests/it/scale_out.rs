//! A scaled-out deployment of separate processes: API processes taking pushes, worker
//! processes building indexes, a web process serving them, on one database and one bucket.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};

use packyard::bench::memory::{memory_kib, reset_peak_memory};

use crate::apt_client::{Apt, apt_trusting};
use crate::deployment::{Deployment, Server};
use crate::fixtures::{BOOKWORM, JAMMY, deb, deb_filename};
use crate::support::{TestDatabase, TestStorage};

const CLIENTS: usize = 10;
const PUSHES_PER_CLIENT: usize = 100;

/// Pushes one package file; the status the API process answered.
async fn push(
    client: &reqwest::Client,
    api: &str,
    token: &str,
    distro: i64,
    filename: String,
    bytes: Vec<u8>,
) -> StatusCode {
    let form = Form::new()
        .text("package[distro_version_id]", distro.to_string())
        .part(
            "package[package_file]",
            Part::bytes(bytes).file_name(filename),
        );
    client
        .post(format!("{api}/api/v1/repos/admin/fleet/packages.json"))
        .basic_auth(token, Some(""))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .status()
}

async fn create_repo(api: &Server, token: &str) {
    let created = reqwest::Client::new()
        .post(api.url("/api/v1/repos.json"))
        .basic_auth(token, Some(""))
        .form(&[("repository[name]", "fleet")])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
}

/// A real apt for `admin/fleet` at `OS/DIST`, trusting the repository's key.
async fn apt_for(web: &Server, os_dist: &str) -> Apt {
    let (os, dist) = os_dist.split_once('/').unwrap();
    apt_trusting(&web.url("/admin/fleet"), os, dist).await
}

/// The package names in the Packages files apt downloaded and verified, with their counts.
/// The pushed packages in the indexes apt read (the repository's keyring package aside).
fn indexed_names(apt: &Apt) -> BTreeMap<String, usize> {
    let mut names = BTreeMap::new();
    for entry in std::fs::read_dir(apt.lists()).unwrap().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if !file.ends_with("_Packages") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let pushed = text
            .lines()
            .filter_map(|l| l.strip_prefix("Package: "))
            .filter(|name| !name.ends_with("-archive-keyring"));
        for name in pushed {
            *names.entry(name.to_owned()).or_default() += 1;
        }
    }
    names
}

async fn wait_for_jobs(db: &packyard::db::Db, within: Duration) {
    let deadline = Instant::now() + within;
    while packyard::db::jobs::pending(db).await.unwrap() > 0 {
        assert!(
            Instant::now() < deadline,
            "jobs did not drain within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_api_and_two_worker_processes_index_a_thousand_concurrent_pushes_exactly_once() {
    if TestDatabase::wanted().is_none() {
        eprintln!("skipped: runs in the PostgreSQL pass (PACKYARD_TEST_BACKEND=postgres)");
        return;
    }
    let mut deployment = Deployment::new().await;
    if deployment.storage.is_none() {
        deployment.storage = Some(TestStorage::start().await);
    }
    let lease = [("PACKYARD_JOB_LEASE_SECS", "5")];
    let apis = [
        deployment.serve("api-1", "api", &[]).await,
        deployment.serve("api-2", "api", &[]).await,
    ];
    let workers = [
        deployment.serve("worker-1", "worker", &lease).await,
        deployment.serve("worker-2", "worker", &lease).await,
    ];
    let web = deployment.serve("web", "web", &[]).await;
    let token = deployment.create_token().await;
    create_repo(&apis[0], &token).await;
    // Roles serve only their own routes.
    let client = reqwest::Client::new();
    let status = |url: String| {
        let client = client.clone();
        async move { client.get(url).send().await.unwrap().status() }
    };
    assert_eq!(status(web.url("/api/v1/distributions.json")).await, 404);
    assert_eq!(status(apis[0].url("/admin/fleet/gpgkey")).await, 404);
    assert_eq!(status(workers[0].url("/readyz")).await, 200);
    assert_eq!(
        status(workers[0].url("/api/v1/distributions.json")).await,
        404
    );

    // A seed package, so apt has an index to update from the start.
    let seeded = push(
        &client,
        &apis[0].base,
        &token,
        BOOKWORM,
        deb_filename("seed", "1.0", "amd64"),
        deb("seed", "1.0", "amd64"),
    )
    .await;
    assert_eq!(seeded, 201);
    let db = packyard::db::Db::open(&deployment.database.as_ref().unwrap().url)
        .await
        .unwrap();
    wait_for_jobs(&db, Duration::from_secs(30)).await;
    let apt = apt_for(&web, "debian/bookworm").await;
    apt.update().await;

    // Ten clients, alternating between the API processes, into two targets (bookworm, jammy).
    let pushing = futures::future::join_all((0..CLIENTS).map(|c| {
        let (client, token) = (client.clone(), token.clone());
        let api = apis[c % 2].base.clone();
        tokio::spawn(async move {
            let mut failures = Vec::new();
            for n in 0..PUSHES_PER_CLIENT {
                let name = format!("c{c}-p{n:03}");
                let distro = if n % 2 == 0 { BOOKWORM } else { JAMMY };
                let bytes = deb(&name, "1.0", "amd64");
                let status = push(
                    &client,
                    &api,
                    &token,
                    distro,
                    deb_filename(&name, "1.0", "amd64"),
                    bytes,
                )
                .await;
                if status != 201 {
                    failures.push(format!("{name}: {status}"));
                }
            }
            failures
        })
    }));
    let updating = async {
        let mut runs = 0;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(600) {
            apt.update_while_publishing().await;
            runs += 1;
            // Until every bookworm package (half of them, and the seed) is listed.
            if indexed_names(&apt).len() == CLIENTS * PUSHES_PER_CLIENT / 2 + 1 {
                break;
            }
        }
        runs
    };
    let (pushed, runs) = tokio::join!(pushing, updating);
    let failures: Vec<String> = pushed.into_iter().flat_map(|r| r.unwrap()).collect();
    assert!(failures.is_empty(), "pushes failed: {failures:?}");
    assert!(runs >= 3, "apt-get update ran only {runs} times meanwhile");
    wait_for_jobs(&db, Duration::from_secs(120)).await;

    // Every package in its signed index exactly once, as apt verified and read it.
    for (dist, parity) in [("debian/bookworm", 0), ("ubuntu/jammy", 1)] {
        let apt = apt_for(&web, dist).await;
        apt.update().await;
        let names = indexed_names(&apt);
        let mut expected: BTreeSet<String> = (0..CLIENTS)
            .flat_map(|c| {
                (0..PUSHES_PER_CLIENT)
                    .filter(move |n| n % 2 == parity)
                    .map(move |n| format!("c{c}-p{n:03}"))
            })
            .collect();
        if dist == "debian/bookworm" {
            expected.insert("seed".into());
        }
        let twice: Vec<_> = names.iter().filter(|(_, count)| **count != 1).collect();
        assert!(twice.is_empty(), "{dist}: listed more than once: {twice:?}");
        let listed: BTreeSet<String> = names.into_keys().collect();
        let missing: Vec<_> = expected.difference(&listed).collect();
        let extra: Vec<_> = listed.difference(&expected).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{dist}: missing {missing:?}, unexpected {extra:?}"
        );
    }

    // One worker at a time per target: each build of a target started after the previous
    // one committed. Both worker processes took part.
    let builds: Vec<(i64, String, i64, i64)> = match &db {
        packyard::db::Db::Postgres(pool) => sqlx::query_as(
            "SELECT distro_version_id, built_by, build_started_ms, committed_ms FROM generations
             ORDER BY distro_version_id, committed_ms",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
        packyard::db::Db::Sqlite(..) => unreachable!("this test runs on PostgreSQL"),
    };
    for pair in builds.windows(2) {
        let (previous, next) = (&pair[0], &pair[1]);
        if previous.0 == next.0 {
            assert!(
                next.2 >= previous.3,
                "two builds of distribution {} overlapped: {previous:?} and {next:?}",
                next.0
            );
        }
    }
    let builders: BTreeSet<&str> = builds.iter().map(|b| b.1.as_str()).collect();
    let worker_pids: BTreeSet<String> = workers.iter().map(|w| w.pid().to_string()).collect();
    assert!(
        builders
            .iter()
            .all(|b| worker_pids.contains(b.rsplit(':').next().unwrap())),
        "only worker processes build: {builders:?}"
    );
    assert_eq!(
        builders.len(),
        2,
        "both workers built indexes: {builders:?}"
    );
    eprintln!(
        "{} pushes, {} generations built by {builders:?}, {runs} apt-get updates meanwhile",
        CLIENTS * PUSHES_PER_CLIENT,
        builds.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_in_the_middle_of_a_publish_is_taken_over_after_its_lease() {
    let deployment = Deployment::new().await;
    let lease = ("PACKYARD_JOB_LEASE_SECS", "3");
    let api = deployment.serve("api", "api", &[]).await;
    let web = deployment.serve("web", "web", &[]).await;
    let token = deployment.create_token().await;
    create_repo(&api, &token).await;
    let client = reqwest::Client::new();

    // A first index, built by a worker that then stops gracefully.
    let first = deployment.serve("worker-0", "worker", &[lease]).await;
    let pushed = push(
        &client,
        &api.base,
        &token,
        BOOKWORM,
        deb_filename("before", "1.0", "amd64"),
        deb("before", "1.0", "amd64"),
    )
    .await;
    assert_eq!(pushed, 201);
    let apt = apt_for(&web, "debian/bookworm").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(web.url("/admin/fleet/debian/dists/bookworm/InRelease"))
        .await
        .unwrap()
        .status()
        != 200
    {
        assert!(Instant::now() < deadline, "the first index was not built");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.signal("-TERM").await;

    // A worker that stops between writing its index files and committing them, killed there.
    let doomed = deployment
        .serve(
            "worker-doomed",
            "worker",
            &[lease, ("PACKYARD_FAILPOINT_COMMIT_PAUSE_MS", "600000")],
        )
        .await;
    let pushed = push(
        &client,
        &api.base,
        &token,
        BOOKWORM,
        deb_filename("after", "1.0", "amd64"),
        deb("after", "1.0", "amd64"),
    )
    .await;
    assert_eq!(pushed, 201);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !doomed.log().contains("failpoint: pausing before commit") {
        assert!(
            Instant::now() < deadline,
            "the worker never reached its commit:\n{}",
            doomed.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    doomed.signal("-KILL").await;

    // The published index is the previous one, whole: apt accepts it and sees no new package.
    apt.update().await;
    assert_eq!(apt.versions("before").await, ["1.0"]);
    assert!(apt.versions("after").await.is_empty());

    // Another worker takes the job over once the dead worker's lease runs out.
    let taken_over = Instant::now();
    let rescuer = deployment.serve("worker-rescuer", "worker", &[lease]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        apt.update().await;
        if apt.versions("after").await == ["1.0"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no worker finished the dead worker's publish:\n{}",
            rescuer.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        rescuer.log().contains("job done"),
        "the rescuer built the index:\n{}",
        rescuer.log()
    );
    eprintln!(
        "the job was finished {:?} after the rescuer started",
        taken_over.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushing_a_1_gib_package_grows_an_api_process_by_less_than_64_mib() {
    const SIZE: u64 = 1 << 30;
    let deployment = Deployment::new().await;
    let api = deployment.serve("api", "api", &[]).await;
    let token = deployment.create_token().await;
    create_repo(&api, &token).await;
    let file = deployment.dir.path().join("big_1.0_amd64.deb");
    packyard::bench::inputs::write_large_deb(&file, "big", SIZE).unwrap();
    let length = std::fs::metadata(&file).unwrap().len();

    let pid = api.pid();
    let (before, _) = memory_kib(pid).unwrap();
    // Resets the peak, so the peak read afterwards is the upload's.
    reset_peak_memory(pid).unwrap();
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(
        tokio::fs::File::open(&file).await.unwrap(),
    ));
    let form = Form::new()
        .text("package[distro_version_id]", BOOKWORM.to_string())
        .part(
            "package[package_file]",
            Part::stream_with_length(body, length).file_name("big_1.0_amd64.deb"),
        );
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(api.url("/api/v1/repos/admin/fleet/packages.json"))
        .basic_auth(&token, Some(""))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    let (_, peak) = memory_kib(pid).unwrap();
    let growth_mib = peak.saturating_sub(before) / 1024;
    eprintln!(
        "1 GiB push in {elapsed:?}; resident memory {} MiB before, peak {} MiB during",
        before / 1024,
        peak / 1024
    );
    assert!(
        growth_mib < 64,
        "pushing 1 GiB grew the API process by {growth_mib} MiB"
    );
    // The stored blob is the whole file.
    let sha256 = body["sha256sum"].as_str().unwrap();
    let blobs = packyard::storage::Blobs::open(&server_config(&deployment)).unwrap();
    let key = packyard::storage::BlobKey::from_sha256(sha256).unwrap();
    assert_eq!(blobs.size(&key).await.unwrap(), Some(length));
}

/// The settings of the deployment's processes, to open its storage from the test.
fn server_config(deployment: &Deployment) -> packyard::config::Config {
    let mut config = packyard::config::Config {
        data_dir: deployment.data_dir("test"),
        ..packyard::config::Config::default()
    };
    if let Some(storage) = &deployment.storage {
        storage.configure(&mut config);
    }
    config
}
