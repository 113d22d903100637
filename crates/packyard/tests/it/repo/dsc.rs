//! Debian source packages: a `.dsc` pushed with the files it names, listed in
//! `main/source/Sources` as apt-ftparchive lists it, fetched and unpacked by the real
//! `apt-get source` (which runs `dpkg-source -x`).

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::Value;

use crate::apt_client::{Apt, combined, dearmor};
use crate::fixtures::{BOOKWORM, stanzas};
use crate::support::TestApp;

/// Builds the source package `name` at `version` (`1:1.0-1`: upstream 1.0) with
/// `dpkg-source -b`; returns the `.dsc` and the files it names.
fn source_package(dir: &Path, name: &str, version: &str) -> (PathBuf, Vec<PathBuf>) {
    let upstream = version
        .split_once(':')
        .map_or(version, |(_, v)| v)
        .rsplit_once('-')
        .unwrap()
        .0;
    let tree = dir.join(format!("{name}-{upstream}"));
    std::fs::create_dir_all(tree.join("debian/source")).unwrap();
    std::fs::write(tree.join("hello.sh"), "echo hello\n").unwrap();
    std::fs::write(
        tree.join("debian/changelog"),
        format!(
            "{name} ({version}) unstable; urgency=low\n\n  * Tests.\n\n -- Tests <tests@example.invalid>  Mon, 01 Jan 2024 00:00:00 +0000\n"
        ),
    )
    .unwrap();
    std::fs::write(
        tree.join("debian/control"),
        format!(
            "Source: {name}\nSection: misc\nPriority: optional\nMaintainer: Tests <tests@example.invalid>\n\
             Build-Depends: debhelper-compat (= 13)\nStandards-Version: 4.6.2\n\n\
             Package: {name}\nArchitecture: all\nDescription: test\n A test package.\n"
        ),
    )
    .unwrap();
    std::fs::write(tree.join("debian/source/format"), "3.0 (quilt)\n").unwrap();
    std::fs::write(
        tree.join("debian/rules"),
        "#!/usr/bin/make -f\n%:\n\tdh $@\n",
    )
    .unwrap();
    let orig = dir.join(format!("{name}_{upstream}.orig.tar.gz"));
    let status = Command::new("tar")
        .arg("czf")
        .arg(&orig)
        .args(["--exclude", "debian", "-C"])
        .arg(dir)
        .arg(format!("{name}-{upstream}"))
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new("dpkg-source")
        .args(["-b", &format!("{name}-{upstream}")])
        .current_dir(dir)
        .output()
        .expect("dpkg-source runs (scripts/test installs dpkg-dev)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let without_epoch = version.split_once(':').map_or(version, |(_, v)| v);
    let dsc = dir.join(format!("{name}_{without_epoch}.dsc"));
    let debian = dir.join(format!("{name}_{without_epoch}.debian.tar.xz"));
    (dsc, vec![orig, debian])
}

fn part(path: &Path) -> Part {
    Part::bytes(std::fs::read(path).unwrap())
        .file_name(path.file_name().unwrap().to_string_lossy().into_owned())
}

async fn push_source(app: &TestApp, dsc: &Path, files: &[PathBuf]) -> reqwest::Response {
    let mut form = Form::new()
        .text("package[distro_version_id]", BOOKWORM.to_string())
        .part("package[package_file]", part(dsc));
    for file in files {
        form = form.part("package[source_files][]", part(file));
    }
    app.authed(Method::POST, "/api/v1/repos/admin/stable/packages.json")
        .multipart(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apt_get_source_downloads_and_unpacks_a_pushed_source_package() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let work = tempfile::tempdir().unwrap();
    let (dsc, files) = source_package(work.path(), "hello", "1:1.0-1");

    // package_cloud asks which files the .dsc names before it pushes them.
    let contents = app
        .authed(
            Method::POST,
            "/api/v1/repos/admin/stable/packages/contents.json",
        )
        .multipart(
            Form::new()
                .text("package[distro_version_id]", BOOKWORM.to_string())
                .part("package[package_file]", part(&dsc)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(contents.status(), 200);
    let contents: Value = contents.json().await.unwrap();
    let listed: Vec<&str> = contents["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        ["hello_1.0.orig.tar.gz", "hello_1.0-1.debian.tar.xz"]
    );
    assert_eq!(
        contents["files"][0]["size"],
        std::fs::metadata(&files[0]).unwrap().len()
    );

    let response = push_source(&app, &dsc, &files).await;
    assert_eq!(response.status(), 201);
    let pushed: Value = response.json().await.unwrap();
    assert_eq!(pushed["package_type"], "dsc", "{pushed}");
    assert_eq!(pushed["filename"], "hello_1.0-1.dsc");
    let shown = app
        .json(&format!(
            "/api/v1/repos/admin/stable/package/dsc/debian/bookworm/hello/source/{}.json",
            "1:1.0-1"
        ))
        .await;
    assert_eq!(shown["sha256sum"], pushed["sha256sum"], "{shown}");
    assert_eq!(
        shown["dependencies"]["build-depends"][0],
        "debhelper-compat (= 13)"
    );
    // A binary package of the same name lives beside it.
    app.push_deb("stable", "hello", "1:1.0-1", "all").await;
    app.wait_for_jobs().await;

    // Sources lists what apt-ftparchive lists, the .dsc first.
    let pool = work.path().join("pool");
    std::fs::create_dir_all(&pool).unwrap();
    for file in std::iter::once(&dsc).chain(&files) {
        std::fs::copy(file, pool.join(file.file_name().unwrap())).unwrap();
    }
    let reference = Command::new("apt-ftparchive")
        .args(["sources", "pool"])
        .current_dir(work.path())
        .output()
        .unwrap();
    let reference = stanzas(&String::from_utf8(reference.stdout).unwrap());
    let ours = stanzas(
        &app.text("/admin/stable/debian/dists/bookworm/main/source/Sources")
            .await,
    );
    let (expected, actual) = (&reference["hello"], &ours["hello"]);
    for (field, value) in expected.fields() {
        match field {
            "Directory" => assert_eq!(actual.get(field), Some("pool/bookworm/main/h/hello")),
            _ => assert_eq!(actual.get(field), Some(value), "field {field}"),
        }
    }
    let release = app
        .text("/admin/stable/debian/dists/bookworm/Release")
        .await;
    assert!(release.contains(" main/source/Sources.gz\n"), "{release}");

    let armored = app.text("/admin/stable/gpgkey").await;
    let apt = Apt::new(
        &app.url("/admin/stable/debian/"),
        "bookworm",
        &dearmor(&armored).await,
    );
    apt.update().await;
    let out = apt.run("apt-get", &["source", "hello=1:1.0-1"]).await;
    assert!(out.status.success(), "apt-get source:\n{}", combined(&out));
    let lists = apt.lists().parent().unwrap().parent().unwrap().to_owned();
    assert_eq!(
        std::fs::read_to_string(lists.join("hello-1.0/hello.sh")).unwrap(),
        "echo hello\n"
    );
    // dpkg-source -x on what apt fetched, by hand.
    let unpacked = work.path().join("again");
    let out = Command::new("dpkg-source")
        .arg("-x")
        .arg(lists.join("hello_1.0-1.dsc"))
        .arg(&unpacked)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(unpacked.join("debian/changelog").exists());
}

#[tokio::test]
async fn a_dsc_without_its_files_or_with_altered_ones_is_refused_and_nothing_is_stored() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let work = tempfile::tempdir().unwrap();
    let (dsc, files) = source_package(work.path(), "hello", "1.0-1");

    let missing = push_source(&app, &dsc, &files[..1]).await;
    assert_eq!(missing.status(), 422);
    let text = missing.text().await.unwrap();
    assert!(
        text.contains("hello_1.0-1.debian.tar.xz") && text.contains("not uploaded"),
        "{text}"
    );

    let altered = work.path().join("altered").join("hello_1.0.orig.tar.gz");
    std::fs::create_dir_all(altered.parent().unwrap()).unwrap();
    let mut bytes = std::fs::read(&files[0]).unwrap();
    bytes.push(0);
    std::fs::write(&altered, bytes).unwrap();
    let response = push_source(&app, &dsc, &[altered, files[1].clone()]).await;
    assert_eq!(response.status(), 422);
    let text = response.text().await.unwrap();
    assert!(text.contains("differs from what the .dsc lists"), "{text}");

    let stray = work.path().join("stray.txt");
    std::fs::write(&stray, "x").unwrap();
    let mut with_stray = files.clone();
    with_stray.push(stray);
    let response = push_source(&app, &dsc, &with_stray).await;
    assert_eq!(response.status(), 422);

    let listed = app.json("/api/v1/repos/admin/stable/packages.json").await;
    assert_eq!(listed.as_array().unwrap().len(), 0, "{listed}");
}

#[tokio::test]
async fn a_clear_signed_dsc_is_accepted() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let work = tempfile::tempdir().unwrap();
    let (dsc, files) = source_package(work.path(), "greet", "2.0-1");
    let home = work.path().join("gnupg");
    std::fs::create_dir_all(&home).unwrap();
    let gpg = |args: &[&str]| {
        let out = Command::new("gpg")
            .arg("--homedir")
            .arg(&home)
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    gpg(&[
        "--quick-gen-key",
        "Tests <tests@example.invalid>",
        "ed25519",
        "sign",
        "never",
    ]);
    let signed = work.path().join("signed").join(dsc.file_name().unwrap());
    std::fs::create_dir_all(signed.parent().unwrap()).unwrap();
    gpg(&[
        "--clearsign",
        "--output",
        signed.to_str().unwrap(),
        dsc.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read_to_string(&signed)
            .unwrap()
            .starts_with("-----BEGIN PGP SIGNED MESSAGE-----")
    );
    let response = push_source(&app, &signed, &files).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    app.wait_for_jobs().await;
    let sources = app
        .text("/admin/stable/debian/dists/bookworm/main/source/Sources")
        .await;
    let stanza = &stanzas(&sources)["greet"];
    let signed_size = std::fs::metadata(&signed).unwrap().len();
    assert!(
        stanza
            .get("Files")
            .unwrap()
            .contains(&format!(" {signed_size} greet_2.0-1.dsc")),
        "the signed .dsc is what is listed and served: {sources}"
    );
    assert_eq!(
        app.bytes("/admin/stable/debian/pool/bookworm/main/g/greet/greet_2.0-1.dsc")
            .await,
        std::fs::read(&signed).unwrap()
    );
}

/// The files a `.dsc` names live and go with it: fsck checks their blobs, rerender reads them
/// again, and the collector removes them once the package is destroyed past the grace.
#[tokio::test]
async fn source_files_are_checked_rerendered_and_collected_with_their_package() {
    use packyard::storage::BlobKey;

    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let work = tempfile::tempdir().unwrap();
    let (dsc, files) = source_package(work.path(), "hello", "1.0-1");
    assert_eq!(push_source(&app, &dsc, &files).await.status(), 201);
    app.wait_for_jobs().await;
    let orig = "/admin/stable/debian/pool/bookworm/main/h/hello/hello_1.0.orig.tar.gz";
    assert_eq!(app.bytes(orig).await, std::fs::read(&files[0]).unwrap());

    let report = packyard::fsck::check(&app.app, false).await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let repo = packyard::db::repos::by_owner_and_name(&app.app.db, "admin", "stable")
        .await
        .unwrap()
        .unwrap();
    let scope = packyard::reindex::Scope {
        repo: &repo,
        distro: None,
        filename: None,
    };
    let sources = "/admin/stable/debian/dists/bookworm/main/source/Sources";
    let before = app.text(sources).await;
    let report = packyard::reindex::reindex(&app.app, &scope, true)
        .await
        .unwrap();
    assert_eq!(
        report.rerendered, 2,
        "the source package and the keyring package"
    );
    app.wait_for_jobs().await;
    assert_eq!(app.text(sources).await, before);

    let orig_sha = packyard_formats::digest::sha256_hex(&std::fs::read(&files[0]).unwrap());
    let key = BlobKey::from_sha256(&orig_sha).unwrap();
    app.app.blobs.delete(&key).await.unwrap();
    let report = packyard::fsck::check(&app.app, false).await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.target.as_deref() == Some("hello_1.0.orig.tar.gz")),
        "{:?}",
        report.problems
    );
    app.app
        .blobs
        .put_bytes(&key, std::fs::read(&files[0]).unwrap().into())
        .await
        .unwrap();

    assert_eq!(
        app.destroy("stable", "debian/bookworm", "hello_1.0-1.dsc")
            .await,
        200
    );
    app.wait_for_jobs().await;
    app.app
        .db
        .execute_sql(
            "UPDATE packages SET deleted_at = deleted_at - 7200 WHERE deleted_at IS NOT NULL",
        )
        .await
        .unwrap();
    let collected = packyard::jobs::gc::collect(&app.app, false).await.unwrap();
    assert_eq!(collected.packages, 1);
    assert!(
        app.app.blobs.size(&key).await.unwrap().is_none(),
        "the tarball's blob went"
    );
    assert_eq!(app.status(orig).await, 404);
}
