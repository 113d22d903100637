//! The repository as the real dnf sees it, and agreement with createrepo_c.

use crate::apt_client::combined;
use crate::dnf_client::Dnf;
use crate::rpm_fixtures::{
    EL9, file_name, rpmbuild, rpmsign, signing_key, simple_spec, varied_spec,
};
use crate::support::TestApp;

async fn push_rpm(app: &TestApp, path: &std::path::Path) -> serde_json::Value {
    app.push_ok(
        "stable",
        EL9,
        &file_name(path),
        std::fs::read(path).unwrap(),
    )
    .await
}

fn base(app: &TestApp, arch: &str) -> String {
    app.url(&format!("/admin/stable/el/9/{arch}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnf_installs_downgrades_and_sees_destroys() {
    // The default key type, RSA-4096, as most hosts will see it.
    let app = TestApp::builder()
        .key_algorithm(packyard::sign::KeyAlgorithm::Rsa4096)
        .start()
        .await;
    app.create_repo("stable", false).await;
    let work = tempfile::tempdir().unwrap();
    for version in ["0.9", "1.0"] {
        let rpm = &rpmbuild(
            work.path(),
            &simple_spec("hello", version, "1", "x86_64"),
            "x86_64",
            false,
        )[0];
        push_rpm(&app, rpm).await;
    }
    let noarch = &rpmbuild(
        work.path(),
        &simple_spec("greeter", "0.1", "1", "noarch"),
        "noarch",
        false,
    )[0];
    push_rpm(&app, noarch).await;
    app.wait_for_jobs().await;

    let key = app.text("/admin/stable/gpgkey").await;
    let dnf = Dnf::new(&[("acme", &base(&app, "$basearch"))], Some(&key), "x86_64");
    dnf.ok(&["makecache"]).await;
    let listed = dnf
        .ok(&[
            "repoquery",
            "--qf",
            "%{name} %{evr} %{arch}",
            "hello",
            "greeter",
        ])
        .await;
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        [
            "greeter 0.1-1 noarch",
            "hello 0.9-1 x86_64",
            "hello 1.0-1 x86_64"
        ]
    );

    dnf.ok(&["install", "hello"]).await;
    let installed = std::fs::read_to_string(dnf.root().join("usr/bin/hello")).unwrap();
    assert_eq!(installed, "#!/bin/sh\necho hello 1.0\n");
    dnf.ok(&["downgrade", "hello-0.9"]).await;
    let downgraded = std::fs::read_to_string(dnf.root().join("usr/bin/hello")).unwrap();
    assert_eq!(downgraded, "#!/bin/sh\necho hello 0.9\n");
    dnf.ok(&["install", "greeter"]).await;

    // noarch packages are in every architecture's repository.
    let arm = Dnf::new(&[("acme", &base(&app, "$basearch"))], Some(&key), "aarch64");
    let listed = arm.ok(&["repoquery", "--qf", "%{name}", "greeter"]).await;
    assert_eq!(listed.trim(), "greeter");
    // Each target keeps the list of its own packages for its next publish: aarch64's holds
    // the noarch ones alone (the repository's keyring package and greeter).
    let sql = "SELECT max(distro_version_id) FROM publish_targets";
    let (repository_id, distro_version_id) = (
        app.app
            .db
            .scalar_i64("SELECT max(id) FROM repositories")
            .await
            .unwrap(),
        app.app.db.scalar_i64(sql).await.unwrap(),
    );
    let kept = |arch: &str| {
        let target = packyard::db::generations::Target {
            repository_id,
            distro_version_id,
            arch: arch.to_owned(),
        };
        app.app.listings.kept_entries(&target)
    };
    assert_eq!(kept("x86_64"), Some(4));
    assert_eq!(kept("aarch64"), Some(2));

    assert_eq!(
        app.destroy("stable", "el/9", "hello-0.9-1.x86_64.rpm")
            .await,
        200
    );
    app.wait_for_jobs().await;
    let listed = dnf
        .ok(&["repoquery", "--refresh", "--qf", "%{evr}", "hello"])
        .await;
    assert_eq!(listed.trim(), "1.0-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnf_rejects_a_wrong_key_and_a_changed_repomd() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    app.create_repo("other", false).await;
    let work = tempfile::tempdir().unwrap();
    let rpm = &rpmbuild(
        work.path(),
        &simple_spec("hello", "1.0", "1", "x86_64"),
        "x86_64",
        false,
    )[0];
    push_rpm(&app, rpm).await;
    app.wait_for_jobs().await;

    let other_key = app.text("/admin/other/gpgkey").await;
    let dnf = Dnf::new(
        &[("acme", &base(&app, "x86_64"))],
        Some(&other_key),
        "x86_64",
    );
    let out = dnf.run(&["makecache"]).await;
    let text = combined(&out);
    assert!(
        !out.status.success(),
        "dnf accepted a repository signed by another key:\n{text}"
    );
    assert!(
        text.contains("GPG signature verification error") || text.contains("Bad GPG signature"),
        "{text}"
    );

    app.app.db.execute_sql("UPDATE generation_documents SET body = replace(body, '<revision>', '<revision>1') WHERE name = 'repomd.xml'").await
        .unwrap();
    // Changed behind the server's back, so nothing announced it.
    app.app.cache.invalidate();
    let key = app.text("/admin/stable/gpgkey").await;
    let dnf = Dnf::new(&[("acme", &base(&app, "x86_64"))], Some(&key), "x86_64");
    let out = dnf.run(&["makecache"]).await;
    let text = combined(&out);
    assert!(
        !out.status.success(),
        "dnf accepted a changed repomd.xml:\n{text}"
    );
    assert!(
        text.contains("GPG signature verification error") || text.contains("Bad GPG signature"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repoquery_agrees_with_createrepo_c() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let work = tempfile::tempdir().unwrap();
    let reference = work.path().join("reference");
    std::fs::create_dir_all(&reference).unwrap();
    let mut rpms = rpmbuild(work.path(), &varied_spec(), "aarch64", true);
    rpms.extend(rpmbuild(
        work.path(),
        &simple_spec("plain", "1.0", "1", "noarch"),
        "noarch",
        false,
    ));
    let (home, _) = signing_key(work.path());
    for rpm in &rpms {
        rpmsign(&home, rpm);
        push_rpm(&app, rpm).await;
        if !file_name(rpm).ends_with(".src.rpm") {
            std::fs::copy(rpm, reference.join(file_name(rpm))).unwrap();
        }
    }
    app.wait_for_jobs().await;
    let out = std::process::Command::new("createrepo_c")
        .arg("--quiet")
        .arg(&reference)
        .output()
        .expect("createrepo_c runs (scripts/test installs createrepo-c)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let ours = base(&app, "aarch64");
    let theirs = format!("file://{}", reference.display());
    let dnf = Dnf::new(&[("ours", &ours), ("theirs", &theirs)], None, "aarch64");
    let queries: [&[&str]; 11] = [
        &[
            "--qf",
            "%{name}|%{epoch}|%{version}|%{release}|%{arch}|%{summary}|%{license}|%{url}|%{vendor}|%{sourcerpm}",
        ],
        &["--requires"],
        &["--provides"],
        &["--conflicts"],
        &["--obsoletes"],
        &["--recommends"],
        &["--suggests"],
        &["--supplements"],
        &["--enhances"],
        &["--list"],
        &["--changelog"],
    ];
    for package in ["varied", "plain"] {
        for query in queries {
            let mut ours_args = vec!["repoquery", "--repo", "ours"];
            ours_args.extend_from_slice(query);
            ours_args.push(package);
            let mut theirs_args = vec!["repoquery", "--repo", "theirs"];
            theirs_args.extend_from_slice(query);
            theirs_args.push(package);
            let (a, b) = (dnf.ok(&ours_args).await, dnf.ok(&theirs_args).await);
            assert_eq!(a, b, "{package} {query:?} differs from createrepo_c");
        }
    }
    // The agreement is about something: the varied package has all of these.
    let requires = dnf
        .ok(&["repoquery", "--repo", "ours", "--requires", "varied"])
        .await;
    assert!(
        requires.contains("(libfoo or libbar)") && requires.contains("shadow-utils"),
        "{requires}"
    );
    let files = dnf
        .ok(&["repoquery", "--repo", "ours", "--list", "varied"])
        .await;
    assert!(
        files.contains("/usr/share/varied/dir with space/file with space.txt")
            && files.contains("/var/log/varied.log"),
        "{files}"
    );
    let changelog = dnf
        .ok(&["repoquery", "--repo", "ours", "--changelog", "varied"])
        .await;
    assert_eq!(
        changelog.matches("change number").count(),
        10,
        "the newest ten entries, as createrepo_c keeps"
    );

    // The source package is in SRPMS.
    let srpms = app
        .text("/admin/stable/el/9/SRPMS/repodata/repomd.xml")
        .await;
    assert!(srpms.contains("primary.xml.gz"));
    let sources = Dnf::new(&[("src", &base(&app, "SRPMS"))], None, "aarch64");
    let listed = sources
        .ok(&[
            "repoquery",
            "--qf",
            "%{name} %{arch}",
            "--arch",
            "src",
            "varied",
        ])
        .await;
    assert_eq!(listed.trim(), "varied src");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_packages_keep_their_signatures() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let work = tempfile::tempdir().unwrap();
    let rpm = &rpmbuild(
        work.path(),
        &simple_spec("signed", "1.0", "1", "x86_64"),
        "x86_64",
        false,
    )[0];
    let (home, armored) = signing_key(work.path());
    rpmsign(&home, rpm);
    let body = push_rpm(&app, rpm).await;
    let downloaded = app
        .bytes(
            body["download_url"]
                .as_str()
                .unwrap()
                .trim_start_matches(&app.base),
        )
        .await;
    let path = work.path().join("downloaded.rpm");
    std::fs::write(&path, &downloaded).unwrap();

    let db = work.path().join("rpmdb");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::write(work.path().join("signer.asc"), armored).unwrap();
    let rpmkeys = |args: &[&str]| {
        std::process::Command::new("rpmkeys")
            .arg("--dbpath")
            .arg(&db)
            .args(args)
            .output()
            .unwrap()
    };
    let imported = rpmkeys(&["--import", work.path().join("signer.asc").to_str().unwrap()]);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let checked = rpmkeys(&["-K", path.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success() && text.contains("signatures OK"),
        "rpmkeys -K: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnf_reads_zstd_repodata_when_the_repository_asks_for_it() {
    let app = TestApp::new().await;
    app.create_repo_with("stable", &[("repository[index_zstd]", "1")])
        .await;
    let work = tempfile::tempdir().unwrap();
    for name in ["one", "two"] {
        let rpm = &rpmbuild(
            work.path(),
            &simple_spec(name, "1.0", "1", "x86_64"),
            "x86_64",
            false,
        )[0];
        push_rpm(&app, rpm).await;
        app.wait_for_jobs().await;
    }
    let repomd = app
        .text("/admin/stable/el/9/x86_64/repodata/repomd.xml")
        .await;
    assert!(
        repomd.contains("-primary.xml.zst") && !repomd.contains(".xml.gz"),
        "{repomd}"
    );

    let key = app.text("/admin/stable/gpgkey").await;
    let dnf = Dnf::new(&[("acme", &base(&app, "x86_64"))], Some(&key), "x86_64");
    let listed = dnf
        .ok(&["repoquery", "--qf", "%{name}", "one", "two"])
        .await;
    assert_eq!(listed.lines().collect::<Vec<_>>(), ["one", "two"]);
}

/// The `open-checksum` of each part in a `repomd.xml`, by type.
fn open_checksums(repomd: &str) -> Vec<(String, String)> {
    repomd
        .split("<data type=\"")
        .skip(1)
        .map(|data| {
            let at = data.find("<open-checksum type=\"sha256\">").unwrap() + 29;
            (
                data[..data.find('"').unwrap()].to_owned(),
                data[at..at + 64].to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_repodata_resumes_its_digests_and_matches_a_rebuild() {
    // Every publish stores each chunk as soon as it compresses it, as a rebuild of a large
    // repository does every 16 MiB.
    let app = TestApp::builder()
        .configure(|c| c.index_write_ahead_mib = 0)
        .start()
        .await;
    app.create_repo("stable", false).await;
    let work = tempfile::tempdir().unwrap();
    let build = |name: &str, version: &str| {
        rpmbuild(
            work.path(),
            &simple_spec(name, version, "1", "x86_64"),
            "x86_64",
            false,
        )
        .remove(0)
    };
    push_rpm(&app, &build("hello", "0.9")).await;
    app.wait_for_jobs().await;
    // The next packages land chunks after the first one, so the next publishes resume hashing
    // after it rather than starting from the top.
    let skip = match app.app.db.kind() {
        "sqlite" => "UPDATE sqlite_sequence SET seq = seq + 3000 WHERE name = 'packages'",
        _ => {
            "SELECT setval(pg_get_serial_sequence('packages', 'id'), \
              (SELECT max(id) FROM packages) + 3000)"
        }
    };
    app.app.db.execute_sql(skip).await.unwrap();
    for (name, version) in [("hello", "1.0"), ("greeter", "0.1"), ("hello", "1.1")] {
        push_rpm(&app, &build(name, version)).await;
        app.wait_for_jobs().await;
    }
    let chunks = "SELECT count(DISTINCT chunk_no) FROM index_chunks WHERE part = 'primary'";
    assert_eq!(app.app.db.scalar_i64(chunks).await.unwrap(), 2);

    let repodata = "/admin/stable/el/9/x86_64/repodata";
    let incremental = app.text(&format!("{repodata}/repomd.xml")).await;
    assert!(!incremental.contains("packages=\""));
    // The digests describe the bytes served, compressed and not.
    for part in ["primary", "filelists", "other"] {
        let at = incremental.find(&format!("-{part}.xml.gz")).unwrap();
        let href = &incremental[at - 64..at + part.len() + 8];
        let gz = app.bytes(&format!("{repodata}/{href}")).await;
        assert_eq!(packyard_formats::digest::sha256_hex(&gz), href[..64]);
        let text = packyard_formats::chunked::gunzip_text(&gz).unwrap();
        let open = open_checksums(&incremental);
        let (_, expected) = open.iter().find(|(kind, _)| kind == part).unwrap();
        assert_eq!(
            &packyard_formats::digest::sha256_hex(text.as_bytes()),
            expected,
            "{part}"
        );
    }
    let key = app.text("/admin/stable/gpgkey").await;
    let dnf = Dnf::new(&[("acme", &base(&app, "x86_64"))], Some(&key), "x86_64");
    let query = ["repoquery", "--refresh", "--qf", "%{name} %{evr} %{arch}"];
    let before = dnf.ok(&query).await;
    assert_eq!(
        before.lines().collect::<Vec<_>>(),
        [
            "admin-stable-archive-keyring 1-1 noarch",
            "greeter 0.1-1 x86_64",
            "hello 0.9-1 x86_64",
            "hello 1.0-1 x86_64",
            "hello 1.1-1 x86_64"
        ]
    );

    // A rebuild from the stored entries alone writes the same texts.
    let generations = "SELECT max(id) FROM generations";
    let last = app.app.db.scalar_i64(generations).await.unwrap();
    let reindexed = app
        .authed(
            reqwest::Method::POST,
            "/api/v1/repos/admin/stable/reindex.json",
        )
        .form(&[("os", "el"), ("dist", "9")])
        .send()
        .await
        .unwrap();
    assert_eq!(reindexed.status(), 202);
    app.wait_for_jobs().await;
    let rebuilt = app.text(&format!("{repodata}/repomd.xml")).await;
    assert!(app.app.db.scalar_i64(generations).await.unwrap() > last);
    assert_eq!(open_checksums(&rebuilt), open_checksums(&incremental));
    assert_eq!(open_checksums(&rebuilt).len(), 3);
    assert_eq!(dnf.ok(&query).await, before);

    // A blob stored before the commit that the collector deleted meanwhile (one that only a
    // collected generation named) is written again from its chunk's row.
    let target = packyard::db::generations::Target {
        repository_id: app
            .app
            .db
            .scalar_i64("SELECT max(repository_id) FROM index_chunks")
            .await
            .unwrap(),
        distro_version_id: app
            .app
            .db
            .scalar_i64("SELECT max(distro_version_id) FROM index_chunks")
            .await
            .unwrap(),
        arch: "x86_64".into(),
    };
    let chunk = packyard::db::generations::chunk(&app.app.db, &target, "primary", 0)
        .await
        .unwrap()
        .unwrap();
    let key = packyard::storage::BlobKey::from_sha256(&chunk.gz.sha256).unwrap();
    assert!(rebuilt.contains("primary.xml.gz"));
    app.app.blobs.delete(&key).await.unwrap();
    assert!(!app.app.blobs.exists(&key).await.unwrap());
    let restore = packyard::jobs::chunks::restore_written;
    restore(&app.app, &target, &[chunk.reference()])
        .await
        .unwrap();
    assert_eq!(
        &app.app.blobs.get_bytes(&key).await.unwrap(),
        chunk.gz.bytes().unwrap()
    );
    // One whose row holds other bytes is not made up.
    let mut other = chunk.reference();
    other.gz.sha256 = "0".repeat(64);
    let refused = restore(&app.app, &target, &[other]).await.unwrap_err();
    assert!(
        format!("{refused:#}").contains("its row holds other bytes"),
        "{refused:#}"
    );
}
