//! Pushes that wait for the write turn together are committed together, and one push's
//! failure in a group is its own.

use std::time::{Duration, Instant};

use packyard::db::Db;
use packyard_formats::deb::{Compression, DataFile, build_deb};
use serde_json::Value;

use crate::fixtures::{BOOKWORM, deb, deb_filename};
use crate::support::TestApp;

/// `name` 1.0 for amd64 with other contents than `fixtures::deb` gives it.
fn other_deb(name: &str) -> Vec<u8> {
    let control = format!(
        "Package: {name}\nVersion: 1.0\nArchitecture: amd64\nMaintainer: Tests <tests@example.invalid>\n\
         Description: another build of {name}\n Other contents.\n"
    );
    let files = [DataFile {
        path: &format!("usr/bin/{name}"),
        contents: b"#!/bin/sh\necho rebuilt\n",
        mode: 0o755,
    }];
    build_deb(&control, &files, Compression::Gzip)
}

/// Pushes `first`, then `rest` at once, while the test holds this process's write turn (on
/// SQLite): the committer takes `first` and waits for the turn, and `rest` queue behind it,
/// to be committed as one group once the turn is released. Each push's status and body, in
/// order.
async fn pushed_while_the_turn_is_held(
    app: &TestApp,
    first: (String, Vec<u8>),
    rest: Vec<(String, Vec<u8>)>,
) -> Vec<(u16, Value)> {
    let held = match &app.app.db {
        Db::Sqlite(_, turns) => Some(turns.clone().lock_owned().await),
        Db::Postgres(_) => None,
    };
    let (groups, sqlite) = (&app.app.push_groups, held.is_some());
    let push = |(filename, bytes): (String, Vec<u8>)| async move {
        let response = app.push("stable", BOOKWORM, &filename, bytes).await;
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap())
    };
    let count = rest.len();
    let first = push(first);
    let rest = async {
        until(sqlite, "the first push was not taken", || {
            groups.in_hand() == 1
        })
        .await;
        futures::future::join_all(rest.into_iter().map(push)).await
    };
    let release = async {
        let queued = || groups.in_hand() == 1 && groups.waiting() == count;
        until(sqlite, "the pushes did not queue", queued).await;
        drop(held);
    };
    let (first, rest, ()) = tokio::join!(first, rest, release);
    std::iter::once(first).chain(rest).collect()
}

/// Waits until `done` on SQLite, where pushes queue for the committer.
async fn until(sqlite: bool, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while sqlite && !done() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn debs(names: &[&str]) -> Vec<(String, Vec<u8>)> {
    names
        .iter()
        .map(|name| {
            (
                deb_filename(name, "1.0", "amd64"),
                deb(name, "1.0", "amd64"),
            )
        })
        .collect()
}

#[tokio::test]
async fn pushes_waiting_together_commit_together_and_a_conflict_fails_only_itself() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let sqlite = matches!(app.app.db, Db::Sqlite(..));

    // The committer takes the first push alone and waits for the turn; the other five queue
    // and commit as one group when it is released.
    let mut files = debs(&["pa", "pb", "pc", "pd", "pe", "pf"]);
    let first = files.remove(0);
    for (status, body) in pushed_while_the_turn_is_held(&app, first, files).await {
        assert_eq!(status, 201, "{body}");
    }
    let groups = &app.app.push_groups;
    if sqlite {
        assert_eq!((groups.grouped(), groups.split()), (5, 0));
    }

    // A group with a conflicting push (pa's name, version and architecture with other
    // contents) and an identical re-push: the group is rolled back and each push committed
    // alone, so only the conflict fails.
    let mut files = debs(&["pg", "ph", "pi"]);
    files.push((deb_filename("pa", "1.0", "amd64"), other_deb("pa")));
    files.push((
        deb_filename("pb", "1.0", "amd64"),
        deb("pb", "1.0", "amd64"),
    ));
    let first = files.remove(0);
    let answers = pushed_while_the_turn_is_held(&app, first, files).await;
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [201, 201, 201, 422, 201], "{answers:?}");
    let conflict = answers[3].1.to_string();
    assert!(conflict.contains("with different contents"), "{conflict}");
    if sqlite {
        assert_eq!(
            (groups.grouped(), groups.split()),
            (5, 1),
            "the group was split"
        );
    }

    let listed = app
        .get("/api/v1/repos/admin/stable/packages.json?per_page=100")
        .send()
        .await
        .unwrap();
    // Nine packages, the target's keyring package, and nothing of the conflicting push.
    assert_eq!(listed.headers()["total"], "10");
    let packages: Value = listed.json().await.unwrap();
    let a = packages
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "pa")
        .unwrap();
    let pushed_a = packyard_formats::digest::sha256_hex(&deb("pa", "1.0", "amd64"));
    assert_eq!(a["sha256sum"], pushed_a.as_str(), "{a}");

    // Each is published, in one index.
    app.wait_for_jobs().await;
    let packages = app
        .text("/admin/stable/debian/dists/bookworm/main/binary-amd64/Packages")
        .await;
    for name in ["pa", "pb", "pc", "pd", "pe", "pf", "pg", "ph", "pi"] {
        let stanza = format!("Package: {name}\n");
        assert!(packages.contains(&stanza), "{name} in\n{packages}");
    }
}
