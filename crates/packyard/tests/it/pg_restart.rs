//! PostgreSQL restarted under a running Packyard: a cluster of the test's own (the shared
//! server is never touched) stopped with `pg_ctl -m immediate` (connections cut, crash
//! recovery at the next start) in the middle of pushes and the publishes they queue, and started
//! again. Packyard is not restarted. While the database is down `/readyz` answers 503 at once;
//! every push is answered 2xx or 503 with `Retry-After` (never a 500); a push sent while it is
//! down waits for it and succeeds; and once it is back every acknowledged push is served and
//! indexed, `packyard fsck` passes, and apt and dnf read the repository.
//!
//! It runs the same on both passes of the suite: the cluster is its own, with the local data
//! folder beside it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command as StdCommand;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use tempfile::TempDir;
use tokio::process::Command;

use crate::apt_client::combined;
use crate::crash_loop::{ENV, Push, Pushed, Refused, Stable, converged, env_number, listed, push};
use crate::deployment::{BIN, Server, create_token};
use crate::support::free_port;

/// A PostgreSQL cluster of this test's own, in a temporary folder, run by `pg_ctl` (as the
/// `postgres` user when the tests run as root, since PostgreSQL refuses to).
struct Cluster {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
}

impl Cluster {
    fn create() -> Cluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect(
                "PostgreSQL's server programs in /usr/lib/postgresql (scripts/test installs them)",
            )
            .flatten()
            .map(|entry| entry.path().join("bin"))
            .filter(|bin| bin.join("initdb").exists())
            .max()
            .expect("initdb in /usr/lib/postgresql/VERSION/bin");
        let dir = tempfile::tempdir().unwrap();
        let cluster = Cluster {
            dir,
            bin,
            port: free_port(),
        };
        if Cluster::as_root() {
            let id = |flag: &str| -> u32 {
                let out = StdCommand::new("id")
                    .args([flag, "postgres"])
                    .output()
                    .unwrap();
                String::from_utf8(out.stdout)
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap()
            };
            std::os::unix::fs::chown(cluster.dir.path(), Some(id("-u")), Some(id("-g"))).unwrap();
        }
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.data(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        cluster.start();
        cluster
    }

    fn as_root() -> bool {
        let out = StdCommand::new("id").arg("-u").output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "0"
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut command = if Cluster::as_root() {
            let mut command = StdCommand::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            StdCommand::new(&program)
        };
        let out = command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} {args:?}: {}{}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
    }

    /// Stops at once: every connection cut, no checkpoint, crash recovery at the next start.
    fn stop_immediately(&self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| self.stop_immediately());
    }
}

/// A push's outcome, asserted clear: the push (2xx) or 503 with `Retry-After`, whose message
/// it returns.
fn clear_outcome(outcome: Result<Pushed, Refused>) -> Result<Pushed, String> {
    outcome.map_err(|refused| {
        assert!(
            refused.status == Some(reqwest::StatusCode::SERVICE_UNAVAILABLE) && refused.retry_after,
            "a push while the database restarted: {refused:?}"
        );
        refused.body["error"].to_string()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_and_publishes_ride_out_a_postgresql_restart() {
    let seed = env_number("PACKYARD_PG_RESTART_SEED").unwrap_or_else(rand::random);
    eprintln!("postgresql restart: PACKYARD_PG_RESTART_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let cluster = Cluster::create();
    let data = tempfile::tempdir().unwrap();
    let packyard = || {
        let mut command = Command::new(BIN);
        command
            .env("PACKYARD_DATA_DIR", data.path())
            .env("PACKYARD_DATABASE_URL", cluster.url())
            .env("PACKYARD_SIGNING_KEY_ALGORITHM", "ed25519")
            .env_remove("PACKYARD_STORAGE")
            .envs(ENV.iter().copied());
        command
    };
    let port = free_port();
    let mut serve = packyard();
    serve
        .args(["serve", "--listen"])
        .arg(format!("127.0.0.1:{port}"));
    let server = Server::launch("server", serve, port, data.path());
    assert!(
        server.ready_within(Duration::from_secs(30)).await,
        "{}",
        server.log()
    );
    let token = create_token(packyard()).await;
    let client = reqwest::Client::new();
    let mut stable = Stable::create(&client, &server, &token).await;
    let mut acknowledged = std::mem::take(&mut stable.first);

    for round in 0..3 {
        let stop_after = Duration::from_millis(rng.gen_range(50..400));
        eprintln!("round {round}: PostgreSQL stopped after {stop_after:?}");
        let pushes = stable.spawn_pushes(&mut rng, round, 500, &client, &server, &token);
        tokio::time::sleep(stop_after).await;
        cluster.stop_immediately();
        // Down: readiness says so at once, and a push waits for the database.
        let ready = client.get(server.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 503, "/readyz while PostgreSQL is down");
        let (client2, base, token2) = (client.clone(), server.base.clone(), token.clone());
        let waiting = Push::deb(&format!("r{round}down"));
        let while_down =
            tokio::spawn(
                async move { clear_outcome(push(&client2, &base, &token2, waiting).await) },
            );
        tokio::time::sleep(Duration::from_secs(1)).await;
        cluster.start();
        match while_down.await.unwrap() {
            Ok(pushed) => acknowledged.push(pushed),
            Err(refused) => panic!(
                "a push sent while the database was down waits for it and succeeds: {refused}"
            ),
        }
        let mut refused = Vec::new();
        for pushed in pushes {
            match clear_outcome(pushed.await.unwrap()) {
                Ok(pushed) => acknowledged.push(pushed),
                Err(message) => refused.push(message),
            }
        }
        eprintln!("round {round}: refused with 503 and Retry-After: {refused:?}");

        assert!(
            server.ready_within(Duration::from_secs(30)).await,
            "{}",
            server.log()
        );
        for pushed in &acknowledged {
            let response = client.get(&pushed.download_url).send().await.unwrap();
            assert_eq!(response.status(), 200, "{} after the restart", pushed.name);
            let bytes = response.bytes().await.unwrap();
            assert_eq!(packyard_formats::digest::sha256_hex(&bytes), pushed.sha256);
        }
        if let Err(problem) =
            converged(&client, &server, &listed(&acknowledged), &BTreeSet::new()).await
        {
            panic!("round {round} (seed {seed}): {problem}");
        }
        let fsck = packyard().arg("fsck").output().await.unwrap();
        assert!(
            fsck.status.success(),
            "round {round}: fsck\n{}",
            combined(&fsck)
        );
        stable.apt.update().await;
        stable.dnf.ok(&["makecache", "--refresh"]).await;
    }
}
