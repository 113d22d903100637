//! Pool files are stored under Debian's own name for them (`NAME_VERSION_ARCH.deb`, epoch
//! left out) whatever the upload was called, so every URL an index or the API hands out
//! fetches its file when requested exactly as given.

use crate::apt_client::{Apt, dearmor};
use crate::fixtures::{BOOKWORM, deb};
use crate::support::TestApp;

const VERSION: &str = "2:1.0~rc1+git5-1";
/// As apt caches the file: the epoch's colon escaped.
const UPLOADED: &str = "tool_2%3a1.0~rc1+git5-1_amd64.deb";
const DEBIAN_NAME: &str = "tool_1.0~rc1+git5-1_amd64.deb";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debs_are_stored_under_debian_names_and_fetch_exactly_as_listed() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let bytes = deb("tool", VERSION, "amd64");
    let pushed = app
        .push_ok("stable", BOOKWORM, UPLOADED, bytes.clone())
        .await;
    assert_eq!(pushed["filename"], DEBIAN_NAME, "{pushed}");
    assert_eq!(pushed["version"], "1.0~rc1+git5-1");
    assert_eq!(pushed["epoch"], 2);
    let download_url = pushed["download_url"].as_str().unwrap();
    assert!(
        download_url.ends_with(&format!("/pool/bookworm/main/t/tool/{DEBIAN_NAME}")),
        "{download_url}"
    );
    // Fetched by curl, which requests the URL as given, nothing escaped again.
    let out = tokio::process::Command::new("curl")
        .args(["-sSfL", download_url])
        .output()
        .await
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl {download_url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, bytes);
    // Re-pushing the same bytes under either name is the same package.
    for name in [UPLOADED, DEBIAN_NAME] {
        let again = app.push_ok("stable", BOOKWORM, name, bytes.clone()).await;
        assert_eq!(again["filename"], DEBIAN_NAME);
    }
    app.wait_for_jobs().await;

    let packages = app
        .text("/admin/stable/debian/dists/bookworm/main/binary-amd64/Packages")
        .await;
    let filename = packages
        .lines()
        .find_map(|l| l.strip_prefix("Filename: "))
        .unwrap();
    assert_eq!(filename, format!("pool/bookworm/main/t/tool/{DEBIAN_NAME}"));
    let listed = app
        .get(&format!("/admin/stable/debian/{filename}"))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200, "{filename} as listed");

    let armored = app.text("/admin/stable/gpgkey").await;
    let apt = Apt::new(
        &app.url("/admin/stable/debian/"),
        "bookworm",
        &dearmor(&armored).await,
    );
    apt.update().await;
    assert_eq!(apt.versions("tool").await, [VERSION]);
    let root = apt.install(&format!("tool={VERSION}")).await;
    assert!(root.join("usr/bin/tool").exists());

    // package_cloud yank names the file as it was uploaded.
    assert_eq!(
        app.destroy("stable", "debian/bookworm", UPLOADED).await,
        200
    );
    app.wait_for_jobs().await;
    let packages = app
        .text("/admin/stable/debian/dists/bookworm/main/binary-amd64/Packages")
        .await;
    assert!(!packages.contains("Package: tool"), "{packages}");
}

#[tokio::test]
async fn files_stored_under_their_uploaded_names_keep_working() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    app.push_ok("stable", BOOKWORM, UPLOADED, deb("tool", VERSION, "amd64"))
        .await;
    // A row from before Debian names: the literal `%3a` in the stored name.
    app.app
        .db
        .execute_sql(&format!(
            "UPDATE packages SET filename = '{UPLOADED}' WHERE name = 'tool'"
        ))
        .await
        .unwrap();
    // apt requests it with the `%` escaped, as it escapes every listed Filename.
    let escaped = UPLOADED.replace('%', "%25");
    let status = app
        .status(&format!(
            "/admin/stable/debian/pool/bookworm/main/t/tool/{escaped}"
        ))
        .await;
    assert_eq!(status, 200);
    // And destroying it by that name still works.
    assert_eq!(
        app.destroy("stable", "debian/bookworm", &escaped).await,
        200
    );
}
