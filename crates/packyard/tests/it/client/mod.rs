//! The `packyard` client commands, run as the real binary against a running server: push
//! with `--jobs` and `--wait`, JSON lines, exit codes, configuration from flags, the
//! environment, `config.toml` and `~/.packagecloud`, retries across a server restart, progress
//! bars in a real terminal, and every other subcommand.

mod commands;
mod terminal;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;
use tokio::process::Command;

use crate::deployment::{BIN, Deployment};
use crate::fixtures::{deb, deb_filename};
use crate::restart::primary_xml;
use crate::rpm_fixtures::{rpmbuild, simple_spec};
use crate::support::{TestApp, free_port};

/// The client binary with a home folder of its own and nothing of this machine's client
/// settings; `env` decides where it points.
pub(crate) struct Client {
    pub home: TempDir,
    env: Vec<(String, String)>,
}

impl Client {
    /// Pointed at `base` with `token` through `PACKYARD_URL` and `PACKYARD_TOKEN`.
    pub fn new(base: &str, token: &str) -> Client {
        Client::bare()
            .with_env("PACKYARD_URL", base)
            .with_env("PACKYARD_TOKEN", token)
    }

    /// Pointed nowhere: only what the test puts in its home folder or environment.
    pub fn bare() -> Client {
        Client {
            home: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        }
    }

    pub fn with_env(mut self, key: &str, value: &str) -> Client {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .current_dir(self.home.path())
            .env("HOME", self.home.path());
        for name in [
            "XDG_CONFIG_HOME",
            "PACKYARD_URL",
            "PACKYARD_TOKEN",
            "PACKYARD_PROFILE",
            "PACKYARD_CONFIG",
            "PACKYARD_CLIENT_CONFIG",
            "PACKAGECLOUD_URL",
            "PACKAGECLOUD_TOKEN",
        ] {
            command.env_remove(name);
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().await.unwrap()
    }

    /// Runs a command given `--json` and asserts success; its output.
    pub async fn json<T: serde::de::DeserializeOwned>(&self, args: &[&str]) -> T {
        let mut args = args.to_vec();
        args.push("--json");
        let out = self.ok(&args).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }

    /// Runs and asserts success; standard output.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "packyard {args:?} failed ({:?}): {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Writes debs `NAME00..` of version 1.0 into `dir`; their paths.
pub(crate) fn write_debs(dir: &Path, prefix: &str, count: usize) -> Vec<PathBuf> {
    (0..count)
        .map(|i| {
            let name = format!("{prefix}{i:02}");
            let path = dir.join(deb_filename(&name, "1.0", "amd64"));
            std::fs::write(&path, deb(&name, "1.0", "amd64")).unwrap();
            path
        })
        .collect()
}

/// How many live packages `admin/REPO` holds, as the API lists them, besides the keyring
/// package the server makes.
async fn package_count(app_base: &str, token: &str, repo: &str) -> usize {
    let listed: Vec<Value> = reqwest::Client::new()
        .get(format!(
            "{app_base}/api/v1/repos/admin/{repo}/packages.json?per_page=1000"
        ))
        .basic_auth(token, Some(""))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    listed
        .iter()
        .filter(|p| !p["name"].as_str().unwrap().ends_with("-archive-keyring"))
        .count()
}

#[tokio::test]
async fn twenty_files_pushed_with_jobs_and_wait_are_in_the_served_index_when_it_returns() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let work = tempfile::tempdir().unwrap();
    write_debs(work.path(), "pkg", 20);
    let client = Client::new(&app.base, &app.token);
    let pattern = format!("{}/*.deb", work.path().display());

    let out = client
        .run(&[
            "push",
            "admin/stable/debian/bookworm",
            &pattern,
            "--jobs",
            "4",
            "--wait=60s",
            "--json",
        ])
        .await;
    // The index is read at once: nothing may still be on its way.
    let packages = app
        .text("/admin/stable/debian/dists/bookworm/main/binary-amd64/Packages")
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for i in 0..20 {
        assert!(
            packages.contains(&format!("Package: pkg{i:02}\n")),
            "pkg{i:02} is in the served Packages when push returns"
        );
    }
    let events: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect();
    for i in 0..20 {
        let file = deb_filename(&format!("pkg{i:02}"), "1.0", "amd64");
        let phases: Vec<(&str, &str)> = events
            .iter()
            .filter(|e| e["file"] == file.as_str())
            .map(|e| (e["phase"].as_str().unwrap(), e["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            phases,
            [
                ("uploading", "started"),
                ("indexing", "stored"),
                ("visible", "visible")
            ],
            "{file}"
        );
        let last = events.iter().rfind(|e| e["file"] == file.as_str()).unwrap();
        assert!(last["bytes"].as_u64().unwrap() > 0 && last["error"].is_null());
    }

    // The same files again are the same packages: success, and nothing doubled.
    let again = client
        .run(&[
            "push",
            "admin/stable/debian/bookworm",
            &pattern,
            "--jobs",
            "4",
            "--wait",
        ])
        .await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(package_count(&app.base, &app.token, "stable").await, 20);

    // Rpms, in text: one line each when visible, and in primary.xml at return.
    let rpms: Vec<String> = (0..3)
        .map(|i| {
            let spec = simple_spec(&format!("tool{i}"), "2.0", "1", "x86_64");
            rpmbuild(work.path(), &spec, "x86_64", false)[0]
                .display()
                .to_string()
        })
        .collect();
    let mut args = vec!["push", "admin/stable/el/9"];
    args.extend(rpms.iter().map(String::as_str));
    args.push("--wait");
    let stdout = client.ok(&args).await;
    let primary = primary_xml(
        &reqwest::Client::new(),
        &app.url("/admin/stable/el/9/x86_64"),
    )
    .await;
    for i in 0..3 {
        assert!(
            primary.contains(&format!("<name>tool{i}</name>")),
            "tool{i} in primary.xml"
        );
    }
    assert_eq!(
        stdout.matches("is in the signed index of el/9").count(),
        3,
        "{stdout}"
    );
}

#[tokio::test]
async fn skip_errors_pushes_the_rest_and_exits_3() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let work = tempfile::tempdir().unwrap();
    write_debs(work.path(), "good", 3);
    let bad = work.path().join("broken_1.0_amd64.deb");
    std::fs::write(&bad, b"!<arch>\nnot really a package").unwrap();
    let client = Client::new(&app.base, &app.token);
    let pattern = format!("{}/*.deb", work.path().display());

    let dry = client
        .run(&[
            "push",
            "admin/stable/debian/bookworm",
            &pattern,
            "--dry-run",
        ])
        .await;
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    assert_eq!(text(&dry).matches("would push").count(), 4);
    assert_eq!(
        package_count(&app.base, &app.token, "stable").await,
        0,
        "a dry run stores nothing"
    );

    // Without --skip-errors a failure stops what has not started (one upload at a time here)
    // and the exit code is 1.
    let stopped = client
        .run(&[
            "push",
            "admin/stable/debian/bookworm",
            bad.to_str().unwrap(),
            &pattern,
            "--jobs",
            "1",
        ])
        .await;
    assert_eq!(stopped.status.code(), Some(1), "{}", text(&stopped));
    assert!(
        text(&stopped).contains("broken_1.0_amd64.deb"),
        "{}",
        text(&stopped)
    );
    assert_eq!(package_count(&app.base, &app.token, "stable").await, 0);

    let out = client
        .run(&[
            "push",
            "admin/stable/debian/bookworm",
            &pattern,
            "--skip-errors",
            "--wait",
            "--json",
        ])
        .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let failed: Vec<&Value> = events.iter().filter(|e| e["status"] == "error").collect();
    assert_eq!(failed.len(), 1, "{events:?}");
    assert_eq!(failed[0]["file"], "broken_1.0_amd64.deb");
    assert!(!failed[0]["error"].as_str().unwrap().is_empty());
    assert_eq!(
        events.iter().filter(|e| e["status"] == "visible").count(),
        3
    );
    assert_eq!(package_count(&app.base, &app.token, "stable").await, 3);

    // Usage errors: 2.
    for args in [
        vec!["push", "admin/stable/debian/bookworm", "/nonexistent/x.deb"],
        vec!["push", "admin/stable/debian/bookworm", "/nonexistent/*.deb"],
        vec!["push", "admin", "x.deb"],
        vec!["push", "admin/stable/debian/bookworm"],
    ] {
        let out = client.run(&args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
    }
    // A deb needs a distribution.
    let out = client.run(&["push", "admin/stable", &pattern]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("OS/DIST"), "{}", text(&out));
}

#[tokio::test]
async fn a_home_with_only_packagecloud_settings_works_and_settings_have_an_order() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let client = Client::bare();
    std::fs::write(
        client.home.path().join(".packagecloud"),
        serde_json::json!({ "url": app.base, "token": app.token }).to_string(),
    )
    .unwrap();
    let listed = client.ok(&["repo", "list"]).await;
    assert!(listed.contains("admin/stable"), "{listed}");
    let work = tempfile::tempdir().unwrap();
    let debs = write_debs(work.path(), "pc", 1);
    client
        .ok(&[
            "push",
            "admin/stable/debian/bookworm",
            debs[0].to_str().unwrap(),
            "--wait",
        ])
        .await;
    assert_eq!(package_count(&app.base, &app.token, "stable").await, 1);

    // config.toml comes before ~/.packagecloud, the environment before both, flags first.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let config_dir = client.home.path().join(".config/packyard");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("config.toml"),
        format!(
            "[profile.default]\nurl = \"{dead}\"\n\n[profile.work]\nurl = \"{}\"\ntoken = \"{}\"\n",
            app.base, app.token
        ),
    )
    .unwrap();
    let out = client.run(&["repo", "list", "--retries", "0"]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "the default profile's server is down: {}",
        text(&out)
    );
    assert!(text(&out).contains(&dead), "{}", text(&out));
    client.ok(&["repo", "list", "--profile", "work"]).await;
    let with_env = Client {
        home: client.home,
        env: vec![("PACKAGECLOUD_URL".into(), app.base.clone())],
    };
    with_env.ok(&["repo", "list"]).await;
    let out = with_env
        .run(&["repo", "list", "--url", &dead, "--retries", "0"])
        .await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "--url comes first: {}",
        text(&out)
    );
    let out = with_env
        .run(&["repo", "list", "--profile", "missing"])
        .await;
    assert!(
        text(&out).contains("no profile \"missing\""),
        "{}",
        text(&out)
    );

    // A wrong token is refused with the server's word.
    let out = with_env
        .run(&["repo", "list", "--token", "wrong-token"])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("401"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_retries_across_a_server_restart_and_stores_each_package_once() {
    let deployment = Deployment::new().await;
    let port = free_port();
    let mut server = deployment.serve_on("server", "all", port, &[]).await;
    let base = server.base.clone();
    let token = deployment.create_token().await;
    let client = Client::new(&base, &token);
    client.ok(&["repo", "create", "stable"]).await;
    let work = tempfile::tempdir().unwrap();
    write_debs(work.path(), "rs", 30);
    let pattern = format!("{}/*.deb", work.path().display());

    let mut push = client
        .command(&[
            "push",
            "admin/stable/debian/bookworm",
            &pattern,
            "--jobs",
            "1",
            "--wait=120s",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once a few are stored, the server dies mid-push without a word and comes back later.
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(push.stdout.take().unwrap()).lines();
    let mut stored = 0;
    let mut events = Vec::new();
    while stored < 4 {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("push keeps reporting");
        let event: Value = serde_json::from_str(&line).unwrap();
        stored += usize::from(event["status"] == "stored");
        events.push(line);
    }
    server.signal("-KILL").await;
    let _ = server.child.wait().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _server = deployment.serve_on("server", "all", port, &[]).await;
    while let Some(line) = lines.next_line().await.unwrap() {
        events.push(line);
    }
    let status = push.wait().await.unwrap();
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut push.stderr.take().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}\n{}", events.join("\n"));
    let visible = events
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["status"] == "visible")
        .count();
    assert_eq!(visible, 30, "{}", events.join("\n"));
    assert_eq!(
        package_count(&base, &token, "stable").await,
        30,
        "each package once"
    );
}

/// The client's view of waiting for an index it cannot speed up: `--wait` that runs out
/// exits 4 with everything stored.
#[tokio::test]
async fn wait_that_runs_out_exits_4_with_everything_stored() {
    let app = TestApp::builder().without_workers().start().await;
    app.create_repo("stable", false).await;
    let work = tempfile::tempdir().unwrap();
    let debs = write_debs(work.path(), "late", 2);
    let client = Client::new(&app.base, &app.token);
    let started = Instant::now();
    let out = client
        .run(&[
            "push",
            "admin/stable/debian/bookworm",
            debs[0].to_str().unwrap(),
            debs[1].to_str().unwrap(),
            "--wait=2s",
        ])
        .await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(
        text(&out).contains("not yet in the index"),
        "{}",
        text(&out)
    );
    assert_eq!(package_count(&app.base, &app.token, "stable").await, 2);
}
