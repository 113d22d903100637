//! The progress display in a real terminal (tmux): a bar per upload and a total, drawn on
//! the terminal and never into a pipe.

use packyard_formats::deb::{Compression, DataFile, build_deb};

use super::Client;
use crate::deployment::BIN;
use crate::support::TestApp;

/// A deb of `name` carrying `size` bytes that do not compress.
fn large_deb(name: &str, size: usize) -> Vec<u8> {
    use rand::RngCore;
    let mut payload = vec![0u8; size];
    rand::thread_rng().fill_bytes(&mut payload);
    let control = format!(
        "Package: {name}\nVersion: 1.0\nArchitecture: amd64\nMaintainer: Tests <tests@example.invalid>\n\
         Installed-Size: {}\nDescription: large test package\n",
        size / 1024
    );
    let files = [DataFile {
        path: &format!("usr/share/{name}/blob"),
        contents: &payload,
        mode: 0o644,
    }];
    build_deb(&control, &files, Compression::None)
}

fn tmux(socket: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("tmux")
        .arg("-S")
        .arg(socket)
        .args(args)
        .output()
        .expect("tmux runs (scripts/test installs it)")
}

#[tokio::test]
async fn a_push_draws_bars_on_a_terminal_and_none_into_a_pipe() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let client = Client::new(&app.base, &app.token);
    let path = client.home.path().join("large_1.0_amd64.deb");
    std::fs::write(&path, large_deb("large", 48 << 20)).unwrap();
    let piped_path = client.home.path().join("piped_1.0_amd64.deb");
    std::fs::write(&piped_path, large_deb("piped", 8 << 20)).unwrap();

    // In a terminal of 200 columns.
    let socket = client.home.path().join("tmux.sock");
    let command = format!(
        "env HOME={home} PACKYARD_URL={url} PACKYARD_TOKEN={token} {BIN} push admin/stable/debian/bookworm {file} --wait; \
         echo EXIT=$?; sleep 60",
        home = client.home.path().display(),
        url = app.base,
        token = app.token,
        file = path.display(),
    );
    let started = tmux(
        &socket,
        &[
            "new-session",
            "-d",
            "-s",
            "push",
            "-x",
            "200",
            "-y",
            "30",
            &command,
        ],
    );
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let screen = loop {
        let pane = tmux(&socket, &["capture-pane", "-p", "-t", "push"]);
        let screen = String::from_utf8_lossy(&pane.stdout).into_owned();
        if screen.contains("EXIT=") {
            break screen;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the push did not finish: {screen}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    tmux(&socket, &["kill-server"]);
    assert!(screen.contains("EXIT=0"), "{screen}");
    let bar = screen
        .lines()
        .find(|l| l.starts_with("large_1.0_amd64.deb") && l.contains("MiB"))
        .unwrap_or_else(|| panic!("a bar for the file: {screen}"));
    // A full bar, all bytes sent: `48.02 MiB/48.02 MiB`.
    assert!(bar.contains("========================="), "{bar}");
    let (sent, total) = bar
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .find_map(|w| w[1].strip_prefix("MiB/").map(|total| (w[0], total)))
        .unwrap_or_else(|| panic!("bytes sent of the total: {bar}"));
    assert!(sent.starts_with("48.") && sent == total, "{bar}");
    assert!(
        bar.trim_end().ends_with("visible"),
        "the bar ends in its last phase: {bar}"
    );
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with("total") && l.contains("MiB")),
        "a total: {screen}"
    );

    // The same push into pipes: plain lines, no bars, no terminal control.
    let out = client
        .run(&[
            "push",
            "admin/stable/debian/bookworm",
            piped_path.to_str().unwrap(),
            "--wait",
        ])
        .await;
    let all = super::text(&out);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("piped_1.0_amd64.deb is in the signed index"),
        "{all}"
    );
    assert!(
        !all.contains('\r')
            && !all.contains('\u{1b}')
            && !all.contains("=====")
            && !all.contains("MiB/"),
        "{all:?}"
    );
}
