//! What a push acknowledges is on disk first: the real binary on SQLite and a local data
//! folder, traced with strace, syncs the package's blob and the directories naming it before
//! the database commit that refers to it syncs its write-ahead log. (The local backend on
//! both passes of the suite: S3 and PostgreSQL have durability of their own.)

use std::time::{Duration, Instant};

use tokio::process::Command;

use crate::deployment::{BIN, create_repository};
use crate::fixtures::{BOOKWORM, deb, deb_filename};
use crate::support::free_port;

#[tokio::test]
async fn a_pushed_blob_and_its_directories_are_synced_before_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let trace = dir.path().join("trace");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = Command::new("strace")
        .args([
            "-f",
            "-y",
            "-qq",
            "-e",
            "trace=fsync,fdatasync,link,linkat,rename,renameat,renameat2",
            "-o",
        ])
        .arg(&trace)
        .arg(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&data)
        .env("PACKYARD_SIGNING_KEY_ALGORITHM", "ed25519")
        .env_remove("PACKYARD_DATABASE_URL")
        .env_remove("PACKYARD_STORAGE")
        // strace and the server in a group of their own, killed whole: killing strace alone
        // would leave the server running, detached.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("strace runs (scripts/test installs it)");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reqwest::get(format!("{base}/readyz"))
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(
            Instant::now() < deadline,
            "the traced server did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = Command::new(BIN)
        .args(["admin", "create-token", "--data-dir"])
        .arg(&data)
        .output()
        .await
        .unwrap();
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let client = reqwest::Client::new();
    create_repository(&base, &token, "stable").await;
    let bytes = deb("durable", "1.0", "amd64");
    let sha256 = packyard_formats::digest::sha256_hex(&bytes);
    let part =
        reqwest::multipart::Part::bytes(bytes).file_name(deb_filename("durable", "1.0", "amd64"));
    let form = reqwest::multipart::Form::new()
        .text("package[distro_version_id]", BOOKWORM.to_string())
        .part("package[package_file]", part);
    let pushed = client
        .post(format!("{base}/api/v1/repos/admin/stable/packages.json"))
        .basic_auth(&token, Some(""))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 201);
    let group = format!("-{}", server.id().unwrap());
    let killed = Command::new("kill")
        .args(["-KILL", "--", &group])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let _ = server.wait().await;

    let trace = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = trace.lines().collect();
    let position = |what: &dyn Fn(&str) -> bool, after: usize| {
        lines
            .iter()
            .enumerate()
            .skip(after)
            .find(|(_, l)| what(l))
            .map(|(i, _)| i)
    };
    let blob = format!("blobs/{}/{}/{sha256}", &sha256[..2], &sha256[2..4]);
    let linked = position(&|l| l.contains("link") && l.contains(&blob), 0)
        .unwrap_or_else(|| panic!("the staged upload is linked into place:\n{trace}"));
    let synced = position(
        &|l| l.starts_with_fsync() && l.contains(&format!("{blob}>")),
        linked,
    )
    .unwrap_or_else(|| panic!("the blob is fsynced after it is linked:\n{trace}"));
    let parent = format!("blobs/{}/{}>", &sha256[..2], &sha256[2..4]);
    let dir_synced = position(&|l| l.starts_with_fsync() && l.contains(&parent), synced)
        .unwrap_or_else(|| panic!("its directory is fsynced after it:\n{trace}"));
    position(
        &|l| l.starts_with_fsync() && l.contains("packyard.db-wal>"),
        dir_synced,
    )
    .unwrap_or_else(|| panic!("the commit syncs the WAL after the blob is durable:\n{trace}"));
}

trait TraceLine {
    fn starts_with_fsync(&self) -> bool;
}

impl TraceLine for &str {
    /// `PID fsync(FD</path>) = 0` or `fdatasync`.
    fn starts_with_fsync(&self) -> bool {
        self.split_whitespace()
            .nth(1)
            .is_some_and(|call| call.starts_with("fsync(") || call.starts_with("fdatasync("))
    }
}
