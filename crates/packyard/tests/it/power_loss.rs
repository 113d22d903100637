//! Power loss: the real binary on SQLite and a local data folder kept on an ext4 file system of
//! its own (a loop-mounted image), whose power is cut at a random moment while pushes and
//! publishes run. The cut is xfs_io's `shutdown` without a log flush, the ioctl the kernel's
//! file system tests use to simulate a power failure on ext4 and XFS alike: the file system stops
//! at once and, mounted again, holds only what was synced. It is mounted with a 60 s journal
//! commit interval and without ext4's flush on replace-by-rename, so within a round nothing
//! reaches the disk unless the server syncs it.
//!
//! After each cut every push acknowledged before it is downloadable with its bytes and indexed,
//! `packyard fsck` passes, and apt and dnf, holding the signing key from before, read the
//! repository. The same run under `eatmydata`, which turns every sync into a no-op, must fail
//! that check: that is what shows the check sees what a power loss takes.
//!
//! `PACKYARD_POWER_ROUNDS` (2 by default) and `PACKYARD_POWER_SEED` (printed) replay a run.
//! The local backend on both passes of the suite: PostgreSQL and S3 have durability of their own.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command as StdCommand;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use tempfile::TempDir;
use tokio::process::Command;

use crate::apt_client::{Apt, combined};
use crate::crash_loop::{ENV, Pushed, Stable, converged, env_number, listed};
use crate::deployment::{BIN, Server, create_token};
use crate::dnf_client::Dnf;
use crate::support::{free_port, run_ok};

/// A file system of its own, on a sparse image in a temporary folder that also keeps the logs.
struct Disk {
    dir: TempDir,
    image: PathBuf,
    mount: PathBuf,
    mounted: bool,
}

impl Disk {
    fn new() -> Disk {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(1 << 30)
            .unwrap();
        run_ok::<&OsStr>("mkfs.ext4", &["-q".as_ref(), "-F".as_ref(), image.as_ref()]);
        let mount = dir.path().join("mnt");
        std::fs::create_dir(&mount).unwrap();
        let mut disk = Disk {
            dir,
            image,
            mount,
            mounted: false,
        };
        disk.mount();
        disk
    }

    fn mount(&mut self) {
        run_ok::<&OsStr>(
            "mount",
            &[
                "-o".as_ref(),
                "loop,commit=60,noauto_da_alloc".as_ref(),
                self.image.as_ref(),
                self.mount.as_ref(),
            ],
        );
        self.mounted = true;
    }

    /// The power goes: the file system stops without writing its journal.
    fn cut_power(&self) {
        run_ok::<&OsStr>(
            "xfs_io",
            &[
                "-x".as_ref(),
                "-c".as_ref(),
                "shutdown".as_ref(),
                self.mount.as_ref(),
            ],
        );
    }

    fn unmount(&mut self) {
        run_ok::<&OsStr>("umount", &[self.mount.as_ref()]);
        self.mounted = false;
    }

    fn data_dir(&self) -> PathBuf {
        self.mount.join("data")
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        if self.mounted {
            let _ = StdCommand::new("umount")
                .arg("-l")
                .arg(&self.mount)
                .status();
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Syncs {
    /// As the server makes them.
    Made,
    /// Turned into no-ops by `eatmydata`.
    Dropped,
}

/// `packyard ARGS` on the disk's data folder, under `eatmydata` when syncs are dropped.
fn packyard(disk: &Disk, syncs: Syncs) -> Command {
    let mut command = match syncs {
        Syncs::Made => Command::new(BIN),
        Syncs::Dropped => {
            let mut command = Command::new("eatmydata");
            command.arg(BIN);
            command
        }
    };
    // The embedded default: its secret in the data folder, SQLite and blobs beside it.
    command
        .env("PACKYARD_DATA_DIR", disk.data_dir())
        .env("PACKYARD_SIGNING_KEY_ALGORITHM", "ed25519")
        .env_remove("PACKYARD_SECRET_KEY")
        .env_remove("PACKYARD_DATABASE_URL")
        .env_remove("PACKYARD_STORAGE")
        .envs(ENV.iter().copied());
    command
}

fn serve(disk: &Disk, syncs: Syncs, port: u16) -> Server {
    let mut command = packyard(disk, syncs);
    command
        .args(["serve", "--listen"])
        .arg(format!("127.0.0.1:{port}"));
    Server::launch("server", command, port, disk.dir.path())
}

/// What the repository must still hold after a power cut, checked the way its users would see
/// it; the first thing missing, as an error.
async fn check(
    client: &reqwest::Client,
    server: &Server,
    disk: &Disk,
    acknowledged: &[Pushed],
    apt: &Apt,
    dnf: &Dnf,
) -> Result<(), String> {
    if !server.ready_within(Duration::from_secs(30)).await {
        return Err(format!("the server did not start again:\n{}", server.log()));
    }
    let mut lost = Vec::new();
    for pushed in acknowledged {
        let response = client.get(&pushed.download_url).send().await.unwrap();
        let status = response.status();
        let bytes = response.bytes().await.unwrap_or_default();
        if status != 200 || packyard_formats::digest::sha256_hex(&bytes) != pushed.sha256 {
            lost.push(format!("{} ({status}, {} bytes)", pushed.name, bytes.len()));
        }
    }
    if !lost.is_empty() {
        return Err(format!("acknowledged pushes lost: {}", lost.join(", ")));
    }
    converged(client, server, &listed(acknowledged), &BTreeSet::new()).await?;
    let fsck = packyard(disk, Syncs::Made)
        .arg("fsck")
        .output()
        .await
        .unwrap();
    if !fsck.status.success() {
        return Err(format!("fsck:\n{}", combined(&fsck)));
    }
    let update = apt.run("apt-get", &["update"]).await;
    let text = combined(&update);
    if !update.status.success() || text.contains("W: ") || text.contains("E: ") {
        return Err(format!("apt-get update:\n{text}"));
    }
    let makecache = dnf.run(&["makecache", "--refresh"]).await;
    if !makecache.status.success() {
        return Err(format!("dnf makecache:\n{}", combined(&makecache)));
    }
    Ok(())
}

/// `rounds` power cuts, each at a random moment among ten pushes; the first check that fails.
async fn power_cuts(syncs: Syncs, rounds: u64, seed: u64) -> Result<(), String> {
    let mut disk = Disk::new();
    let port = free_port();
    let client = reqwest::Client::new();
    let mut server = serve(&disk, syncs, port);
    assert!(
        server.ready_within(Duration::from_secs(30)).await,
        "{}",
        server.log()
    );
    let token = create_token(packyard(&disk, syncs)).await;
    // A first deb and rpm, indexed, so apt and dnf hold a repository and its key before the
    // first cut.
    let mut stable = Stable::create(&client, &server, &token).await;
    let mut acknowledged = std::mem::take(&mut stable.first);

    for round in 0..rounds {
        let round_seed = seed.wrapping_add(round);
        let mut rng = rand::rngs::StdRng::seed_from_u64(round_seed);
        let cut_after = Duration::from_millis(rng.gen_range(100..500));
        eprintln!("power loss round {round}: seed {round_seed}, power cut after {cut_after:?}");
        let pushes = stable.spawn_pushes(&mut rng, round, 400, &client, &server, &token);
        tokio::time::sleep(cut_after).await;
        disk.cut_power();
        server.signal("-KILL").await;
        let _ = server.child.wait().await;
        for pushed in pushes {
            acknowledged.extend(pushed.await.unwrap().ok());
        }
        disk.unmount();
        disk.mount();
        server = serve(&disk, syncs, port);
        check(
            &client,
            &server,
            &disk,
            &acknowledged,
            &stable.apt,
            &stable.dnf,
        )
        .await
        .map_err(|problem| format!("round {round} (seed {round_seed}): {problem}"))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_pushes_survive_a_power_cut() {
    let rounds = env_number("PACKYARD_POWER_ROUNDS").unwrap_or(2);
    let seed = env_number("PACKYARD_POWER_SEED").unwrap_or_else(rand::random);
    eprintln!("power loss: {rounds} rounds, PACKYARD_POWER_SEED={seed}");
    if let Err(problem) = power_cuts(Syncs::Made, rounds, seed).await {
        panic!("{problem}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_syncs_the_same_power_cut_loses_acknowledged_pushes() {
    let seed = env_number("PACKYARD_POWER_SEED").unwrap_or_else(rand::random);
    eprintln!("power loss without syncs: PACKYARD_POWER_SEED={seed}");
    let outcome = power_cuts(Syncs::Dropped, 1, seed).await;
    eprintln!("without syncs: {outcome:?}");
    assert!(
        outcome.is_err(),
        "a power cut under eatmydata lost nothing: the check cannot see a power loss"
    );
}
