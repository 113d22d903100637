//! The repository as the real apt sees it: update with `signed-by`, install into a private
//! dpkg root, pin an older version, destroy, and refuse tampered or wrongly signed metadata.

use crate::apt_client::{Apt, combined, dearmor};
use crate::fixtures::{BOOKWORM, deb, deb_filename};
use crate::support::TestApp;

async fn apt_for(app: &TestApp, repo: &str) -> Apt {
    let armored = app.text(&format!("/admin/{repo}/gpgkey")).await;
    assert!(
        armored.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"),
        "{armored}"
    );
    Apt::new(
        &app.url(&format!("/admin/{repo}/debian/")),
        "bookworm",
        &dearmor(&armored).await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apt_installs_pinned_versions_and_forgets_destroyed_ones() {
    // The default key type, RSA-4096, as most hosts will see it.
    let app = TestApp::builder()
        .key_algorithm(packyard::sign::KeyAlgorithm::Rsa4096)
        .start()
        .await;
    app.create_repo("stable", false).await;
    for version in ["1.0-1", "2.0-1"] {
        app.push_ok(
            "stable",
            BOOKWORM,
            &deb_filename("hello", version, "amd64"),
            deb("hello", version, "amd64"),
        )
        .await;
    }
    app.push_deb("stable", "greeter", "0.1", "all").await;
    app.wait_for_jobs().await;

    let apt = apt_for(&app, "stable").await;
    apt.update().await;
    assert_eq!(apt.versions("hello").await, ["2.0-1", "1.0-1"]);
    assert_eq!(
        apt.versions("greeter").await,
        ["0.1"],
        "Architecture: all is in the amd64 index"
    );

    let root = apt.install("hello=1.0-1").await;
    let installed = std::fs::read_to_string(root.join("usr/bin/hello")).unwrap();
    assert_eq!(installed, "#!/bin/sh\necho hello 1.0-1\n");
    let root = apt.install("hello").await;
    let upgraded = std::fs::read_to_string(root.join("usr/bin/hello")).unwrap();
    assert_eq!(upgraded, "#!/bin/sh\necho hello 2.0-1\n");

    assert_eq!(
        app.destroy("stable", "debian/bookworm", "hello_1.0-1_amd64.deb")
            .await,
        200
    );
    app.wait_for_jobs().await;
    apt.update().await;
    assert_eq!(apt.versions("hello").await, ["2.0-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apt_rejects_a_wrong_key() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    app.create_repo("other", false).await;
    app.push_deb("stable", "hello", "1.0", "amd64").await;
    app.wait_for_jobs().await;

    let other_key = app.text("/admin/other/gpgkey").await;
    let apt = Apt::new(
        &app.url("/admin/stable/debian/"),
        "bookworm",
        &dearmor(&other_key).await,
    );
    let out = apt.run("apt-get", &["update"]).await;
    let text = combined(&out);
    assert!(
        text.contains("NO_PUBKEY") || text.contains("is not signed"),
        "apt accepted a repository signed by another key:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apt_rejects_an_index_changed_on_disk() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    app.push_deb("stable", "hello", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    let apt = apt_for(&app, "stable").await;
    apt.update().await;

    // Change the stored Packages.gz behind the index's back: same name, other bytes.
    app.push_deb("stable", "extra", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    // Its last segment, replaced by as many other bytes.
    let segment = "FROM generation_file_segments s JOIN publish_targets t
         ON t.current_generation_id = s.generation_id
         WHERE s.path = 'main/binary-amd64/Packages.gz' ORDER BY s.seq DESC LIMIT 1";
    let db = &app.app.db;
    let blob = db
        .scalar_text(&format!("SELECT s.blob_sha256 {segment}"))
        .await
        .unwrap();
    let size = db
        .scalar_i64(&format!("SELECT s.size {segment}"))
        .await
        .unwrap();
    let key = packyard::storage::BlobKey::from_sha256(&blob).unwrap();
    let mut evil = packyard_formats::chunked::gzip_member(
        b"Package: evil\nVersion: 6.6.6\nArchitecture: amd64\n\n",
    );
    evil.resize(size as usize, 0);
    app.app.blobs.delete(&key).await.unwrap();
    app.app.blobs.put_bytes(&key, evil.into()).await.unwrap();

    let out = apt.run("apt-get", &["update"]).await;
    let text = combined(&out);
    assert!(
        !out.status.success(),
        "apt accepted a changed index:\n{text}"
    );
    assert!(
        text.contains("Hash Sum mismatch") || text.contains("unexpected size"),
        "{text}"
    );
    assert!(!apt.versions("evil").await.contains(&"6.6.6".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apt_rejects_a_release_changed_after_signing() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    app.push_deb("stable", "hello", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    app.app.db.execute_sql("UPDATE generation_documents SET body = replace(body, 'Suite: bookworm', 'Suite: trixie') WHERE name = 'InRelease'").await
        .unwrap();
    let apt = apt_for(&app, "stable").await;
    let out = apt.run("apt-get", &["update"]).await;
    let text = combined(&out);
    assert!(
        text.contains("BADSIG") || text.contains("signatures were invalid"),
        "apt accepted a changed InRelease:\n{text}"
    );
    assert!(apt.versions("hello").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apt_reads_the_optional_zstd_and_xz_indexes() {
    let app = TestApp::new().await;
    app.create_repo_with(
        "stable",
        &[
            ("repository[index_zstd]", "1"),
            ("repository[index_xz]", "1"),
        ],
    )
    .await;
    // Two publishes, so the .zst is made of several frames.
    app.push_deb("stable", "hello", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    app.push_deb("stable", "hello", "2.0", "amd64").await;
    app.wait_for_jobs().await;

    let dir = "/admin/stable/debian/dists/bookworm/main/binary-amd64";
    let plain = app.bytes(&format!("{dir}/Packages")).await;
    let zst = app.bytes(&format!("{dir}/Packages.zst")).await;
    assert_eq!(zstd::stream::decode_all(&zst[..]).unwrap(), plain);
    let release = app
        .text("/admin/stable/debian/dists/bookworm/Release")
        .await;
    assert!(release.contains("main/binary-amd64/Packages.xz"));

    let apt = apt_for(&app, "stable").await;
    for order in ["zst", "xz", "gz"] {
        std::fs::remove_dir_all(apt.lists()).unwrap();
        std::fs::create_dir_all(apt.lists().join("partial")).unwrap();
        let option = format!("Acquire::CompressionTypes::Order::={order}");
        let out = apt.run("apt-get", &["-o", &option, "update"]).await;
        assert!(out.status.success(), "{order}: {}", combined(&out));
        assert!(
            !combined(&out).contains("W: "),
            "{order}: {}",
            combined(&out)
        );
        assert_eq!(apt.versions("hello").await, ["2.0", "1.0"], "{order}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apt_update_never_sees_a_hash_mismatch_while_packages_are_pushed() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    app.push_deb("stable", "seed", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    let apt = apt_for(&app, "stable").await;
    apt.update().await;

    let pushing = async {
        for i in 0..60 {
            app.push_deb("stable", &format!("busy{i:02}"), "1.0", "amd64")
                .await;
            tokio::time::sleep(std::time::Duration::from_millis(15)).await;
        }
    };
    let updating = async {
        let mut runs = 0;
        for _ in 0..12 {
            apt.update_while_publishing().await;
            runs += 1;
        }
        runs
    };
    let ((), runs) = tokio::join!(pushing, updating);
    assert_eq!(runs, 12);
    let publishes = app
        .app
        .db
        .scalar_i64("SELECT COUNT(*) FROM generations")
        .await
        .unwrap();
    assert!(
        publishes >= 4,
        "the updates overlapped only {publishes} publishes"
    );
    app.wait_for_jobs().await;
    apt.update().await;
    assert_eq!(
        apt.versions("busy59").await,
        ["1.0"],
        "the last push is visible once the index settles"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_uncompressed_index_shares_the_segments_of_its_gz_sibling() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    for name in ["hello", "greeter"] {
        app.push_deb("stable", name, "1.0", "amd64").await;
        app.wait_for_jobs().await;
    }
    let current = "FROM generation_files f JOIN publish_targets t
         ON t.current_generation_id = f.generation_id WHERE f.path = 'main/binary-amd64/Packages'";
    let db = &app.app.db;
    let sibling = db
        .scalar_text(&format!("SELECT f.segments_of {current}"))
        .await
        .unwrap();
    assert_eq!(sibling, "main/binary-amd64/Packages.gz");
    let rows = |path: &str| {
        format!(
            "SELECT COUNT(*) FROM generation_file_segments s JOIN publish_targets t
             ON t.current_generation_id = s.generation_id WHERE s.path = '{path}'"
        )
    };
    assert_eq!(
        db.scalar_i64(&rows("main/binary-amd64/Packages"))
            .await
            .unwrap(),
        0
    );
    assert!(
        db.scalar_i64(&rows("main/binary-amd64/Packages.gz"))
            .await
            .unwrap()
            > 0
    );

    // Served from the sibling's segments, decompressed, it is what Release describes.
    let dist = "/admin/stable/debian/dists/bookworm";
    let plain = app
        .bytes(&format!("{dist}/main/binary-amd64/Packages"))
        .await;
    let text = std::str::from_utf8(&plain).unwrap();
    assert!(text.contains("Package: hello\n") && text.contains("Package: greeter\n"));
    let digest = packyard_formats::digest::sha256_hex(&plain);
    let release = app.text(&format!("{dist}/Release")).await;
    let listed: Vec<&str> = release
        .lines()
        .find(|line| line.contains(&digest))
        .unwrap_or_else(|| panic!("{digest} not in\n{release}"))
        .split_whitespace()
        .collect();
    let size = plain.len().to_string();
    assert_eq!(listed, [&digest, &size, "main/binary-amd64/Packages"]);
}
