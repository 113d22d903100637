//! Restarts without a failed request: a second server starts on the same port and data while
//! the first still serves, the first gets SIGTERM, and a client that downloads, pushes and runs
//! `apt-get update` all along sees no failure and loses no push. Also: two servers bind one
//! port with `SO_REUSEPORT`, and `/readyz` answers 503 while a server drains.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::apt_client::{Apt, combined};
use crate::deployment::{BIN, Deployment, create_repository};
use crate::support::free_port;

/// Holds the listening socket, as systemd does with socket activation, and starts servers
/// that share it (`LISTEN_FDS`); told on standard input to `start NAME` or `term NAME`.
const LAUNCHER: &str = r#"
import os, signal, socket, subprocess, sys
port, binary, logs = int(sys.argv[1]), sys.argv[2], sys.argv[3]
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(1024)
os.dup2(listener.fileno(), 3)
os.set_inheritable(3, True)
servers = {}
print("listening", flush=True)
for line in sys.stdin:
    command, name = line.split()
    if command == "start":
        log = open(os.path.join(logs, name + ".log"), "ab")
        servers[name] = subprocess.Popen(
            ["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" serve', binary],
            pass_fds=(3,), stdout=log, stderr=log)
        print("started", name, flush=True)
    elif command == "term":
        servers[name].send_signal(signal.SIGTERM)
        print("exited", name, servers[name].wait(), flush=True)
for server in servers.values():
    server.kill()
"#;

struct Launcher {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Launcher {
    async fn say(&mut self, line: &str) -> String {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
        self.stdout.next_line().await.unwrap().unwrap()
    }
}

async fn wait_for_log(path: &std::path::Path, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if log.contains(text) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} never said {text:?}:\n{log}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn push(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
) -> Result<u16, String> {
    crate::deployment::push_deb(client, base, token, name)
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("{e:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_server_takes_over_the_port_and_no_request_fails() {
    let deployment = Deployment::new().await;
    let data = deployment.data_dir("all");
    let logs = deployment.dir.path().to_owned();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = tokio::process::Command::new("python3")
        .args([
            "-c",
            LAUNCHER,
            &port.to_string(),
            BIN,
            logs.to_str().unwrap(),
        ])
        .envs(deployment.env(&data))
        .env("PACKYARD_SHUTDOWN_DRAIN_MS", "1000")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let mut launcher = Launcher {
        stdin: child.stdin.take().unwrap(),
        stdout: BufReader::new(child.stdout.take().unwrap()).lines(),
        child,
    };
    assert_eq!(
        launcher.stdout.next_line().await.unwrap().unwrap(),
        "listening"
    );
    assert_eq!(launcher.say("start first").await, "started first");
    wait_for_log(&logs.join("first.log"), "packyard serving").await;

    let token = deployment.create_token().await;
    let client = reqwest::Client::new();
    create_repository(&base, &token, "stable").await;
    assert_eq!(push(&client, &base, &token, "seed").await, Ok(201));
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .get(format!(
            "{base}/admin/stable/debian/dists/bookworm/InRelease"
        ))
        .send()
        .await
        .unwrap()
        .status()
        != 200
    {
        assert!(Instant::now() < deadline, "the first index was not built");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let keyring = {
        let armored = client
            .get(format!("{base}/admin/stable/gpgkey"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        crate::keys::dearmor(&armored)
    };

    // Clients all along: downloads, pushes, apt-get update.
    let running = Arc::new(AtomicBool::new(true));
    let downloads = tokio::spawn({
        let (client, base, running) = (client.clone(), base.clone(), running.clone());
        async move {
            let (mut done, mut failures) = (0, Vec::new());
            let pool =
                format!("{base}/admin/stable/debian/pool/bookworm/main/s/seed/seed_1.0_amd64.deb");
            while running.load(Ordering::Relaxed) {
                match client.get(&pool).send().await {
                    Ok(r) if r.status() == 200 => match r.bytes().await {
                        Ok(_) => done += 1,
                        Err(e) => failures.push(format!("download body: {e:?}")),
                    },
                    Ok(r) => failures.push(format!("download: {}", r.status())),
                    Err(e) => failures.push(format!("download: {e:?}")),
                }
            }
            (done, failures)
        }
    });
    let pushes = tokio::spawn({
        let (client, base, token, running) =
            (client.clone(), base.clone(), token.clone(), running.clone());
        async move {
            let (mut acknowledged, mut failures) = (Vec::new(), Vec::new());
            let mut n = 0;
            while running.load(Ordering::Relaxed) {
                let name = format!("live{n:04}");
                n += 1;
                match push(&client, &base, &token, &name).await {
                    Ok(201) => acknowledged.push(name),
                    other => failures.push(format!("push {name}: {other:?}")),
                }
            }
            (acknowledged, failures)
        }
    });
    let updates = tokio::spawn({
        let (base, running, keyring) = (base.clone(), running.clone(), keyring.clone());
        async move {
            let apt = Apt::new(
                &format!("{base}/admin/stable/debian/"),
                "bookworm",
                &keyring,
            );
            let (mut done, mut failures) = (0, Vec::new());
            while running.load(Ordering::Relaxed) {
                let out = apt
                    .run("apt-get", &["update", "-o", "APT::Update::Error-Mode=any"])
                    .await;
                let text = combined(&out);
                if out.status.success() && !text.contains("W: ") && !text.contains("E: ") {
                    done += 1;
                } else {
                    failures.push(format!("apt-get update:\n{text}"));
                }
            }
            (done, failures)
        }
    });

    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(launcher.say("start second").await, "started second");
    wait_for_log(&logs.join("second.log"), "packyard serving").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(launcher.say("term first").await, "exited first 0");
    let first_log = std::fs::read_to_string(logs.join("first.log")).unwrap();
    assert!(first_log.contains("draining"), "{first_log}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    running.store(false, Ordering::Relaxed);

    let (downloaded, download_failures) = downloads.await.unwrap();
    let (acknowledged, push_failures) = pushes.await.unwrap();
    let (updated, update_failures) = updates.await.unwrap();
    let failures: Vec<&String> = download_failures
        .iter()
        .chain(&push_failures)
        .chain(&update_failures)
        .collect();
    assert!(
        failures.is_empty(),
        "requests failed across the handover: {failures:#?}"
    );
    assert!(
        downloaded > 20 && acknowledged.len() > 5 && updated > 2,
        "the clients kept going: {downloaded} downloads, {} pushes, {updated} updates",
        acknowledged.len()
    );

    // Every acknowledged push is in the index the second server publishes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let apt = Apt::new(
        &format!("{base}/admin/stable/debian/"),
        "bookworm",
        &keyring,
    );
    loop {
        apt.update().await;
        let out = apt.run("apt-cache", &["pkgnames", "live"]).await;
        let listed = String::from_utf8_lossy(&out.stdout).into_owned();
        let missing: Vec<&String> = acknowledged
            .iter()
            .filter(|name| !listed.lines().any(|l| l == name.as_str()))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "acknowledged pushes missing: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(launcher.stdin);
    let _ = launcher.child.wait().await;
}

#[tokio::test]
async fn two_servers_bind_one_port_and_a_draining_one_is_not_ready() {
    let deployment = Deployment::new().await;
    let port = free_port();
    let first = deployment
        .serve_on(
            "first",
            "all",
            port,
            &[("PACKYARD_SHUTDOWN_DRAIN_MS", "3000")],
        )
        .await;
    // SO_REUSEPORT: the second binds the port the first holds.
    let second = deployment
        .serve_on(
            "second",
            "all",
            port,
            &[("PACKYARD_SHUTDOWN_DRAIN_MS", "3000")],
        )
        .await;
    // Its /readyz may be the first's answer: its own log says it serves.
    wait_for_log(
        &deployment.dir.path().join("second.log"),
        "packyard serving",
    )
    .await;
    // Both announce themselves to `status`.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = deployment
            .command(&deployment.data_dir("cli"))
            .args(["status", "--json"])
            .output()
            .await
            .unwrap();
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if status["processes"].as_array().unwrap().len() == 2 {
            assert_eq!(status["roles"], serde_json::json!(["all"]));
            break;
        }
        assert!(Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(second);

    first.signal("-TERM").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let response = reqwest::get(first.url("/readyz")).await.unwrap();
        if response.status() == 503 {
            assert_eq!(
                response.headers()["connection"],
                "close",
                "a draining server closes connections after each response"
            );
            assert_eq!(response.text().await.unwrap(), "shutting down");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz stayed ready after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
