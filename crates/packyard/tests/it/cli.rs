//! The operator's commands, run as the real binary on a data folder of their own (SQLite, the
//! embedded default, on both passes of the suite).

use std::process::Output;

use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_packyard");

async fn packyard(data: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("PACKYARD_SIGNING_KEY_ALGORITHM", "ed25519");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().await.unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn migrate_check_config_users_and_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    for _ in 0..2 {
        let out = packyard(&data, &["migrate"], &[]).await;
        assert!(
            out.status.success(),
            "migrate is safe to run twice: {}",
            stderr(&out)
        );
        assert!(stdout(&out).contains("schema is up to date"));
    }
    let out = packyard(&data, &["check-config"], &[]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("configuration is valid"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "listen = \"127.0.0.1:8080\"\ngrace = 5\n").unwrap();
    let out = packyard(
        &data,
        &["check-config", "--config", bad.to_str().unwrap()],
        &[],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("grace"),
        "the error names the unknown setting: {}",
        stderr(&out)
    );

    let out = packyard(
        &data,
        &[
            "admin",
            "create-user",
            "alice",
            "--email",
            "alice@example.invalid",
        ],
        &[("PACKYARD_PASSWORD", "long enough password")],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = packyard(
        &data,
        &[
            "admin",
            "create-user",
            "api",
            "--email",
            "api@example.invalid",
        ],
        &[("PACKYARD_PASSWORD", "long enough password")],
    )
    .await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("reserved"), "{}", stderr(&out));
    let out = packyard(
        &data,
        &[
            "admin",
            "create-user",
            "bob",
            "--email",
            "bob@example.invalid",
        ],
        &[("PACKYARD_PASSWORD", "short")],
    )
    .await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("at least 8 characters"));

    let out = packyard(&data, &["token", "rotate", "alice/missing", "default"], &[]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no repository alice/missing"),
        "{}",
        stderr(&out)
    );
    let out = packyard(
        &data,
        &["token", "rotate", "alice/x", "default", "--grace", "soon"],
        &[],
    )
    .await;
    assert!(
        stderr(&out).contains("is not a duration"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn health_and_readiness() {
    let mut app = crate::support::TestApp::new().await;
    assert_eq!(app.status("/healthz").await, 200);
    assert_eq!(app.text("/readyz").await, "ready");
    // Storage that cannot be reached: the process is alive but not ready.
    app.break_storage();
    assert_eq!(app.status("/healthz").await, 200);
    assert_eq!(app.status("/readyz").await, 503);
}

#[tokio::test]
async fn check_config_reaches_s3_storage_or_says_why_not() {
    let storage = crate::support::TestStorage::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = storage.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = packyard(&data, &["check-config"], &env).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("storage: s3://packyard/mirror reachable"),
        "{}",
        stdout(&out)
    );

    let mut wrong_secret = env.clone();
    wrong_secret.push(("PACKYARD_S3_SECRET_ACCESS_KEY", "not the secret"));
    let out = packyard(&data, &["check-config"], &wrong_secret).await;
    assert!(!out.status.success(), "a wrong S3 secret was accepted");
    assert!(stderr(&out).contains("storage"), "{}", stderr(&out));

    let out = packyard(&data, &["check-config", "--storage", "s3://No_Such"], &env).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not an S3 bucket name"),
        "{}",
        stderr(&out)
    );
}
