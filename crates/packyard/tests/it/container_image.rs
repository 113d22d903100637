//! Packyard's container image (`scripts/image`, buildah from scratch), around the test build of
//! the binary: inspected with skopeo (user, entrypoint, command, port, volume, health check,
//! labels), then unpacked with umoci and run from its root filesystem as the image's user,
//! until `/readyz` answers and the image's own health check passes. (podman cannot start
//! containers on the test machines: its runtime is refused `setrlimit`.)

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::deployment::{BIN, ready_within};
use crate::support::{KillGroup, free_port, run_ok as run};

#[tokio::test]
async fn the_image_runs_packyard_as_its_own_user_with_a_health_check() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("image");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/image");
    let built = run(
        script.to_str().unwrap(),
        &[
            "--binary",
            BIN,
            "--tag",
            "test",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let layout = format!("oci:{}/oci:test", out.display());
    assert_eq!(built.trim(), layout);
    let archive = format!("docker-archive:{}/packyard-image.tar", out.display());

    // What the image says about itself (the archive keeps Docker's format, health check
    // included).
    let config: Value =
        serde_json::from_str(&run("skopeo", &["inspect", "--config", "--raw", &archive])).unwrap();
    let c = &config["config"];
    assert_eq!(c["User"], "10001:10001");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/usr/bin/packyard"]));
    assert_eq!(
        c["Cmd"],
        serde_json::json!(["serve", "--listen", "0.0.0.0:8080"])
    );
    assert!(c["ExposedPorts"]["8080/tcp"].is_object());
    assert!(c["Volumes"]["/var/lib/packyard"].is_object());
    assert_eq!(
        c["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "/usr/bin/packyard", "healthcheck"])
    );
    let labels = &c["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    let commit = run("git", &["rev-parse", "HEAD"]);
    assert_eq!(labels["org.opencontainers.image.revision"], commit.trim());
    let inspected: Value = serde_json::from_str(&run("skopeo", &["inspect", &layout])).unwrap();
    assert_eq!(inspected["Labels"], *labels);

    // Its root filesystem, run as its user.
    let bundle = dir.path().join("bundle");
    run(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}/oci:test", out.display()),
            bundle.to_str().unwrap(),
        ],
    );
    let rootfs = bundle.join("rootfs");
    let owner = std::os::unix::fs::MetadataExt::uid(
        &std::fs::metadata(rootfs.join("var/lib/packyard")).unwrap(),
    );
    assert_eq!(owner, 10001);
    let port = free_port();
    let server = tokio::process::Command::new("/usr/sbin/chroot")
        .args(["--userspec=10001:10001"])
        .arg(&rootfs)
        .args(["/usr/bin/packyard", "serve", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .env_clear()
        .env("PACKYARD_DATA_DIR", "/var/lib/packyard")
        .env("PACKYARD_SIGNING_KEY_ALGORITHM", "ed25519")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let _group = KillGroup(server.id().unwrap());
    assert!(
        ready_within(&format!("http://127.0.0.1:{port}"), Duration::from_secs(60)).await,
        "the image's packyard did not become ready"
    );
    let url = format!("--url=http://127.0.0.1:{port}/readyz");
    let check = |url: &str| {
        Command::new("/usr/sbin/chroot")
            .args(["--userspec=10001:10001"])
            .arg(&rootfs)
            .args(["/usr/bin/packyard", "healthcheck", url])
            .env_clear()
            .status()
            .unwrap()
            .success()
    };
    assert!(
        check(&url),
        "the health check passes against a ready server"
    );
    let closed = format!("--url=http://127.0.0.1:{}/readyz", free_port());
    assert!(!check(&closed), "and fails where nothing answers");
    let secret = rootfs.join("var/lib/packyard/secret.key");
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(secret).unwrap()),
        10001
    );
}
