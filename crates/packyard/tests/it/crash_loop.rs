//! The crash loop: the real binary killed with SIGKILL at a random moment while pushes,
//! destroys, publishes and the collector run, and started again, round after round. After each
//! restart every push that got a 2xx is served and indexed, every destroy that got a 2xx is
//! gone from the index, `packyard fsck` passes, and real apt and dnf read the repository.
//!
//! `PACKYARD_CRASH_ROUNDS` (3 by default here; `scripts/crash-loop` runs 50) and
//! `PACKYARD_CRASH_SEED` (printed at the start, and each round's) replay a run.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::apt_client::{Apt, combined, dearmor};
use crate::deployment::{Deployment, Server};
use crate::dnf_client::Dnf;
use crate::fixtures::{BOOKWORM, deb, deb_filename};
use crate::restart::primary_xml;
use crate::rpm_fixtures::{EL9, file_name, rpmbuild, simple_spec};
use crate::support::free_port;

/// What the servers must keep: settings that make crashes matter within seconds (the collector
/// every second, leases of a killed worker taken over after 3).
pub const ENV: &[(&str, &str)] = &[
    ("PACKYARD_INDEX_GRACE_SECS", "2"),
    ("PACKYARD_JOB_LEASE_SECS", "3"),
];

pub struct Push {
    pub name: String,
    pub distro: i64,
    pub filename: String,
    pub bytes: Vec<u8>,
}

impl Push {
    /// A Debian package `NAME 1.0` for bookworm.
    pub fn deb(name: &str) -> Push {
        Push {
            name: name.to_owned(),
            distro: BOOKWORM,
            filename: deb_filename(name, "1.0", "amd64"),
            bytes: deb(name, "1.0", "amd64"),
        }
    }

    /// An rpm `NAME-1.0-1.x86_64` for EL 9, built in `work`.
    pub fn rpm(work: &std::path::Path, name: &str) -> Push {
        let spec = simple_spec(name, "1.0", "1", "x86_64");
        let path = rpmbuild(work, &spec, "x86_64", false).remove(0);
        Push {
            name: name.to_owned(),
            distro: EL9,
            filename: file_name(&path),
            bytes: std::fs::read(&path).unwrap(),
        }
    }
}

/// A push the server acknowledged.
pub struct Pushed {
    pub name: String,
    pub distro: i64,
    /// As stored, and named in the package's path.
    pub filename: String,
    pub download_url: String,
    pub sha256: String,
}

/// A number from the environment, for the long variants of a test.
pub fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// A push the server did not acknowledge: its answer, if one came.
#[derive(Debug)]
pub struct Refused {
    pub status: Option<reqwest::StatusCode>,
    pub retry_after: bool,
    pub body: Value,
}

/// Pushes into `admin/stable`.
pub async fn push(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    push: Push,
) -> Result<Pushed, Refused> {
    let sha256 = packyard_formats::digest::sha256_hex(&push.bytes);
    let form = reqwest::multipart::Form::new()
        .text("package[distro_version_id]", push.distro.to_string())
        .part(
            "package[package_file]",
            reqwest::multipart::Part::bytes(push.bytes).file_name(push.filename.clone()),
        );
    let unanswered = |_| Refused {
        status: None,
        retry_after: false,
        body: Value::Null,
    };
    let response = client
        .post(format!("{base}/api/v1/repos/admin/stable/packages.json"))
        .basic_auth(token, Some(""))
        .multipart(form)
        .send()
        .await
        .map_err(unanswered)?;
    let status = response.status();
    let retry_after = response
        .headers()
        .contains_key(reqwest::header::RETRY_AFTER);
    let body: Value = response.json().await.map_err(unanswered)?;
    if !status.is_success() {
        return Err(Refused {
            status: Some(status),
            retry_after,
            body,
        });
    }
    let text = |field: &str| body[field].as_str().unwrap_or_default().to_owned();
    Ok(Pushed {
        name: push.name,
        distro: push.distro,
        filename: text("filename"),
        download_url: text("download_url"),
        sha256,
    })
}

async fn destroy(client: &reqwest::Client, base: &str, token: &str, filename: &str) -> bool {
    client
        .delete(format!(
            "{base}/api/v1/repos/admin/stable/debian/bookworm/{filename}"
        ))
        .basic_auth(token, Some(""))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// Waits (up to a minute) until the served indexes list every package in `present` and none
/// in `gone`.
pub async fn converged(
    client: &reqwest::Client,
    server: &Server,
    present: &BTreeMap<String, i64>,
    gone: &BTreeSet<String>,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let packages = client
            .get(server.url("/admin/stable/debian/dists/bookworm/main/binary-amd64/Packages"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let primary = primary_xml(client, &server.url("/admin/stable/el/9/x86_64")).await;
        let listed = |name: &str, distro: i64| match distro {
            BOOKWORM => packages.contains(&format!("Package: {name}\n")),
            _ => primary.contains(&format!("<name>{name}</name>")),
        };
        let missing: Vec<&String> = present
            .iter()
            .filter(|(n, d)| !listed(n, **d))
            .map(|(n, _)| n)
            .collect();
        let kept: Vec<&String> = gone.iter().filter(|n| listed(n, BOOKWORM)).collect();
        if missing.is_empty() && kept.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "acknowledged pushes missing {missing:?}, acknowledged destroys still listed {kept:?}\n{}",
                server.log()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The names and distributions of `pushed`, as `converged` takes them.
pub fn listed(pushed: &[Pushed]) -> BTreeMap<String, i64> {
    pushed.iter().map(|p| (p.name.clone(), p.distro)).collect()
}

/// `admin/stable` made on a fresh server, with a first deb and rpm indexed, and an apt and a
/// dnf that trust its key: what the fault tests start from.
pub struct Stable {
    /// Where `Push::rpm` builds.
    pub work: tempfile::TempDir,
    pub first: Vec<Pushed>,
    pub apt: Apt,
    pub dnf: Dnf,
}

impl Stable {
    pub async fn create(client: &reqwest::Client, server: &Server, token: &str) -> Stable {
        let created = client
            .post(server.url("/api/v1/repos.json"))
            .basic_auth(token, Some(""))
            .form(&[("repository[name]", "stable")])
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let work = tempfile::tempdir().unwrap();
        let mut first = Vec::new();
        for upload in [Push::deb("base"), Push::rpm(work.path(), "baserpm")] {
            first.push(
                push(client, &server.base, token, upload)
                    .await
                    .expect("the first pushes"),
            );
        }
        converged(client, server, &listed(&first), &BTreeSet::new())
            .await
            .unwrap();
        let armored = client
            .get(server.url("/admin/stable/gpgkey"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let apt = Apt::new(
            &server.url("/admin/stable/debian/"),
            "bookworm",
            &dearmor(&armored).await,
        );
        let dnf = Dnf::new(
            &[("stable", &server.url("/admin/stable/el/9/x86_64"))],
            Some(&armored),
            "x86_64",
        );
        Stable {
            work,
            first,
            apt,
            dnf,
        }
    }

    /// Ten pushes of round `round` (`rROUNDpI`, every fifth an rpm), each after a random delay
    /// below `spread_ms`.
    pub fn spawn_pushes(
        &self,
        rng: &mut impl Rng,
        round: u64,
        spread_ms: u64,
        client: &reqwest::Client,
        server: &Server,
        token: &str,
    ) -> Vec<tokio::task::JoinHandle<Result<Pushed, Refused>>> {
        (0..10)
            .map(|i| {
                let name = format!("r{round}p{i}");
                let upload = if i % 5 == 4 {
                    Push::rpm(self.work.path(), &name)
                } else {
                    Push::deb(&name)
                };
                let delay = Duration::from_millis(rng.gen_range(0..spread_ms));
                let (client, base, token) = (client.clone(), server.base.clone(), token.to_owned());
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    push(&client, &base, &token, upload).await
                })
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_work_survives_sigkill_at_random_moments() {
    let rounds = env_number("PACKYARD_CRASH_ROUNDS").unwrap_or(3);
    let seed = env_number("PACKYARD_CRASH_SEED").unwrap_or_else(rand::random);
    eprintln!("crash loop: {rounds} rounds, PACKYARD_CRASH_SEED={seed}");
    let deployment = Deployment::new().await;
    let port = free_port();
    let mut server = deployment.serve_on("server", "all", port, ENV).await;
    let token = deployment.create_token().await;
    let client = reqwest::Client::new();
    // A first deb and rpm, indexed before anything is killed, so apt and dnf have a repository.
    let stable = Stable::create(&client, &server, &token).await;
    let (apt, dnf) = (&stable.apt, &stable.dnf);
    let mut present = listed(&stable.first);
    let mut debs: Vec<(String, String)> = stable
        .first
        .iter()
        .filter(|p| p.distro == BOOKWORM)
        .map(|p| (p.name.clone(), p.filename.clone()))
        .collect();
    let mut gone = BTreeSet::new();

    for round in 0..rounds {
        let round_seed = seed.wrapping_add(round);
        let mut rng = rand::rngs::StdRng::seed_from_u64(round_seed);
        let kill_after = Duration::from_millis(rng.gen_range(0..400));
        eprintln!("crash loop round {round}: seed {round_seed}, SIGKILL after {kill_after:?}");
        let mut tasks: Vec<_> = stable
            .spawn_pushes(&mut rng, round, 300, &client, &server, &token)
            .into_iter()
            .map(|pushed| tokio::spawn(async move { (pushed.await.unwrap().ok(), None) }))
            .collect();
        // Destroys of packages pushed in earlier rounds.
        for _ in 0..2 {
            if debs.len() < 3 {
                break;
            }
            let (name, filename) = debs.remove(rng.gen_range(1..debs.len()));
            present.remove(&name);
            let delay = Duration::from_millis(rng.gen_range(0..300));
            let (client, base, token) = (client.clone(), server.base.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let destroyed = destroy(&client, &base, &token, &filename).await;
                (None, Some((name, destroyed)))
            }));
        }
        tokio::time::sleep(kill_after).await;
        server.signal("-KILL").await;
        let _ = server.child.wait().await;
        for task in tasks {
            match task.await.unwrap() {
                (Some(pushed), _) => {
                    if pushed.distro == BOOKWORM {
                        debs.push((pushed.name.clone(), pushed.filename));
                    }
                    present.insert(pushed.name, pushed.distro);
                }
                // A destroy acknowledged must show; one cut short may or may not have happened.
                (None, Some((name, true))) => {
                    gone.insert(name);
                }
                _ => {}
            }
        }

        server = deployment.serve_on("server", "all", port, ENV).await;
        if let Err(problem) = converged(&client, &server, &present, &gone).await {
            panic!("round {round} (seed {round_seed}): {problem}");
        }
        let fsck = deployment
            .command(&deployment.data_dir("server"))
            .arg("fsck")
            .output()
            .await
            .unwrap();
        assert!(
            fsck.status.success(),
            "round {round} (seed {round_seed}): fsck\n{}",
            combined(&fsck)
        );
        apt.update().await;
        dnf.ok(&["makecache", "--refresh"]).await;
    }
}
