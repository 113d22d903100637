//! Install scripts and their endpoints: what they answer, shellcheck on the scripts, dnf with
//! a private `config_file.repo`, and `script.deb.sh` run for real in a Debian bookworm root.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::Method;

use crate::dnf_client::Dnf;
use crate::rpm_fixtures::{EL9, file_name, rpmbuild, simple_spec};
use crate::support::TestApp;

const INSTALL: &str = "/install/repositories/admin";

async fn get_with(app: &TestApp, path: &str, token: Option<&str>) -> (u16, String) {
    let request = app.get(path);
    let request = match token {
        Some(token) => request.basic_auth(token, Some("")),
        None => request,
    };
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn configuration_endpoints_for_public_and_private_repositories() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    app.create_repo("internal", true).await;
    let host = app.base.trim_start_matches("http://").to_owned();

    let (status, list) = get_with(
        &app,
        &format!("{INSTALL}/stable/config_file.list?os=debian&dist=bookworm"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        list.contains(&format!(
            "deb [signed-by=/usr/share/keyrings/admin-stable-archive-keyring.gpg] http://{host}/admin/stable/debian/ bookworm main\n\
             deb-src [signed-by=/usr/share/keyrings/admin-stable-archive-keyring.gpg] http://{host}/admin/stable/debian/ bookworm main\n"
        )),
        "{list}"
    );
    // A version number resolves to the codename, as lsb_release may report it.
    let (_, by_number) = get_with(
        &app,
        &format!("{INSTALL}/stable/config_file.list?os=ubuntu&dist=22.04"),
        None,
    )
    .await;
    assert!(
        by_number.contains("/admin/stable/ubuntu/ jammy main"),
        "{by_number}"
    );
    for unknown in [
        "os=debian&dist=potato",
        "os=beos&dist=5",
        "os=el&dist=9",
        "",
    ] {
        let (status, _) = get_with(
            &app,
            &format!("{INSTALL}/stable/config_file.list?{unknown}"),
            None,
        )
        .await;
        assert_eq!(
            status, 404,
            "{unknown}: an unsupported OS makes the script print how to override it"
        );
    }

    let (status, repo) = get_with(
        &app,
        &format!("{INSTALL}/stable/config_file.repo?os=el&dist=9"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        repo.contains(&format!(
            "baseurl=http://{host}/admin/stable/el/9/$basearch"
        )),
        "{repo}"
    );
    assert!(
        repo.contains("repo_gpgcheck=1")
            && repo.contains("gpgcheck=0")
            && repo.contains("[admin_stable-source]"),
        "{repo}"
    );
    assert!(
        repo.contains(&format!("gpgkey=http://{host}/admin/stable/gpgkey\n")),
        "configuration management gets the URL alone: dnf fails on a missing key file\n{repo}"
    );
    let (_, scripted) = get_with(
        &app,
        &format!("{INSTALL}/stable/config_file.repo?os=el&dist=9&source=script"),
        None,
    )
    .await;
    assert!(
        scripted.contains(&format!(
            "gpgkey=http://{host}/admin/stable/gpgkey file:///etc/pki/rpm-gpg/RPM-GPG-KEY-admin-stable\n"
        )),
        "{scripted}"
    );
    let (_, base_url) = get_with(
        &app,
        &format!("{INSTALL}/stable/rpm_base_url?os=el&dist=9"),
        None,
    )
    .await;
    assert_eq!(
        base_url.trim(),
        format!("http://{host}/admin/stable/el/9/$basearch")
    );
    let (_, key_url) = get_with(&app, &format!("{INSTALL}/stable/gpg_key_url.list"), None).await;
    assert_eq!(key_url.trim(), format!("http://{host}/admin/stable/gpgkey"));

    // Private: nothing without a token; a read token is embedded; a master token mints one.
    let (status, _) = get_with(
        &app,
        &format!("{INSTALL}/internal/config_file.list?os=debian&dist=bookworm"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = get_with(&app, &format!("{INSTALL}/internal/script.deb.sh"), None).await;
    assert_eq!(status, 404);
    let read = app.read_token("internal", "web-1").await["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, list) = get_with(
        &app,
        &format!("{INSTALL}/internal/config_file.list?os=debian&dist=bookworm"),
        Some(&read),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        list.contains(&format!(
            "http://{read}:@{host}/admin/internal/debian/ bookworm main"
        )),
        "{list}"
    );
    let master = app.master_token("internal", "default").await;
    let (status, minted) = get_with(
        &app,
        &format!("{INSTALL}/internal/config_file.repo?os=el&dist=9&name=db-1"),
        Some(&master),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        !minted.contains(&master),
        "the master token never goes into configuration"
    );
    let (status, script) = get_with(
        &app,
        &format!("{INSTALL}/internal/script.deb.sh"),
        Some(&master),
    )
    .await;
    assert_eq!(status, 200);
    assert!(script.contains(&format!("master_token='{master}'")));
}

#[tokio::test]
async fn scripts_pass_shellcheck() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let dir = tempfile::tempdir().unwrap();
    for script in [
        "script.deb.sh",
        "script.rpm.sh",
        "script.python.sh",
        "script.node.sh",
    ] {
        let (status, text) = get_with(&app, &format!("{INSTALL}/stable/{script}"), None).await;
        assert_eq!(status, 200);
        let path = dir.path().join(script);
        std::fs::write(&path, text).unwrap();
        let out = Command::new("shellcheck")
            .arg(&path)
            .output()
            .expect("shellcheck runs (scripts/test installs it)");
        assert!(
            out.status.success(),
            "shellcheck {script}:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnf_reads_a_private_repository_through_config_file_repo() {
    let app = TestApp::new().await;
    app.create_repo("internal", true).await;
    let work = tempfile::tempdir().unwrap();
    let rpm = &rpmbuild(
        work.path(),
        &simple_spec("secret", "1.0", "1", "x86_64"),
        "x86_64",
        false,
    )[0];
    app.push_ok(
        "internal",
        EL9,
        &file_name(rpm),
        std::fs::read(rpm).unwrap(),
    )
    .await;
    app.wait_for_jobs().await;

    let master = app.master_token("internal", "default").await;
    let (status, config) = get_with(
        &app,
        &format!("{INSTALL}/internal/config_file.repo?os=el&dist=9&name=db-1"),
        Some(&master),
    )
    .await;
    assert_eq!(status, 200);
    let dnf = Dnf::from_repo_file(&config, "x86_64");
    let listed = dnf
        .ok(&[
            "--disablerepo=*-source",
            "repoquery",
            "--qf",
            "%{name} %{evr}",
            "secret",
        ])
        .await;
    assert_eq!(listed.trim(), "secret 1.0-1");
    dnf.ok(&["--disablerepo=*-source", "install", "secret"])
        .await;
    assert!(dnf.root().join("usr/bin/secret").exists());
}

/// A minimal Debian bookworm made with debootstrap, with /proc and /dev bound while the
/// scripts run; both are unmounted when this is dropped.
pub struct Chroot {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    mounts: Vec<PathBuf>,
}

impl Chroot {
    pub fn bookworm() -> Chroot {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let out = Command::new("debootstrap")
            .args([
                "--variant=minbase",
                "--include=curl,gnupg,ca-certificates",
                "bookworm",
            ])
            .arg(&root)
            .arg("http://deb.debian.org/debian")
            .output()
            .expect("debootstrap runs (scripts/test installs it)");
        assert!(
            out.status.success(),
            "debootstrap failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut chroot = Chroot {
            _dir: dir,
            root,
            mounts: Vec::new(),
        };
        for (source, target) in [("/proc", "proc"), ("/dev", "dev")] {
            let target = chroot.root.join(target);
            let status = Command::new("mount")
                .arg("--bind")
                .arg(source)
                .arg(&target)
                .status()
                .unwrap();
            assert!(status.success(), "mount --bind {source}");
            chroot.mounts.push(target);
        }
        chroot
    }

    /// Runs `command` with bash inside the root; returns success and the combined output.
    pub fn run(&self, command: &str) -> (bool, String) {
        let out = Command::new("chroot")
            .arg(&self.root)
            .args(["/bin/bash", "-c", command])
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    pub fn ok(&self, command: &str) -> String {
        let (ok, text) = self.run(command);
        assert!(ok, "`{command}` failed in the chroot:\n{text}");
        text
    }

    pub fn path(&self, inside: &str) -> PathBuf {
        self.root.join(inside.trim_start_matches('/'))
    }
}

impl Drop for Chroot {
    fn drop(&mut self) {
        for mount in self.mounts.iter().rev() {
            let _ = Command::new("umount").arg("--lazy").arg(mount).status();
        }
    }
}

fn source_files(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_deb_sh_sets_up_a_debian_host_for_public_and_private_repositories() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    app.create_repo("internal", true).await;
    app.push_deb("stable", "hello", "1.0", "amd64").await;
    app.push_deb("internal", "secret", "2.0", "amd64").await;
    app.wait_for_jobs().await;
    let chroot = tokio::task::spawn_blocking(Chroot::bookworm).await.unwrap();
    let host = app.base.trim_start_matches("http://").to_owned();

    // Public.
    let public = format!("curl -sSf http://{host}{INSTALL}/stable/script.deb.sh | bash");
    chroot.ok(&public);
    chroot.ok("apt-get install -y hello");
    assert!(chroot.path("/usr/bin/hello").exists());
    let keyring =
        std::fs::metadata(chroot.path("/usr/share/keyrings/admin-stable-archive-keyring.gpg"))
            .unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&keyring.permissions()) & 0o777,
        0o644
    );

    // Private, twice: one source file, one line, and the package installs.
    let master = app.master_token("internal", "default").await;
    let private = |master: &str| {
        format!("curl -sSf http://{master}:@{host}{INSTALL}/internal/script.deb.sh | bash")
    };
    chroot.ok(&private(&master));
    chroot.ok(&private(&master));
    let sources = chroot.path("/etc/apt/sources.list.d");
    assert_eq!(
        source_files(&sources, "admin_internal"),
        ["admin_internal.list"]
    );
    let line_count = std::fs::read_to_string(sources.join("admin_internal.list"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("deb "))
        .count();
    assert_eq!(line_count, 1);
    chroot.ok("apt-get install -y secret");
    assert!(chroot.path("/usr/bin/secret").exists());

    // Rotated past its grace period: the host's read token stops working until the script
    // runs again with the new master token.
    let rotated = app
        .authed(
            Method::POST,
            "/api/v1/repos/admin/internal/master_tokens/default/rotate.json",
        )
        .form(&[("grace", "1h")])
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 200);
    chroot.ok("apt-get update");
    app.app
        .db
        .execute_sql("UPDATE read_tokens SET expires_at = 1 WHERE expires_at IS NOT NULL")
        .await
        .unwrap();
    app.app
        .db
        .execute_sql("UPDATE master_tokens SET previous_expires_at = 1")
        .await
        .unwrap();
    // Changed behind the server's back: drop what it cached, which carries the real ends.
    app.app.cache.invalidate();
    let (ok, text) = chroot.run("apt-get update -o APT::Update::Error-Mode=any");
    assert!(!ok, "apt kept reading with an expired token:\n{text}");
    let new_master = app.master_token("internal", "default").await;
    chroot.ok(&private(&new_master));
    chroot.ok("apt-get update -o APT::Update::Error-Mode=any");
    chroot.ok("apt-get install -y --reinstall secret");
    assert_eq!(
        source_files(&sources, "admin_internal"),
        ["admin_internal.list"]
    );
}

/// Waits until the download log has recorded that `hosts` hosts read `admin/stable` and
/// `adopted` of them fetched the newest keyring package.
async fn wait_for_adoption(app: &TestApp, hosts: usize, adopted: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let repo = packyard::db::repos::by_owner_and_name(&app.app.db, "admin", "stable")
            .await
            .unwrap()
            .unwrap();
        let (_, adoption) = packyard::keys::list(&app.app, &repo).await.unwrap();
        if adoption.hosts == hosts && adoption.adopted == adopted {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "adoption stayed at {adoption:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_set_up_by_script_deb_sh_follows_a_key_rotation_through_apt_get_upgrade() {
    let app = TestApp::builder()
        .key_algorithm(packyard::sign::KeyAlgorithm::Ed25519)
        .start()
        .await;
    app.create_repo("stable", false).await;
    app.push_deb("stable", "hello", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    let chroot = tokio::task::spawn_blocking(Chroot::bookworm).await.unwrap();
    let host = app.base.trim_start_matches("http://").to_owned();

    // Set up as an older script did: the key in /etc/apt/keyrings, no keyring package.
    let old_keyring = "/etc/apt/keyrings/admin_stable-archive-keyring.gpg";
    chroot.ok(&format!(
        "mkdir -p /etc/apt/keyrings && curl -sSf http://{host}/admin/stable/gpgkey | gpg --dearmor > {old_keyring} && \
         echo 'deb [signed-by={old_keyring}] http://{host}/admin/stable/debian/ bookworm main' > /etc/apt/sources.list.d/admin_stable.list && \
         apt-get update"
    ));

    // Running the current script moves the host over to the keyring package.
    chroot.ok(&format!(
        "curl -sSf http://{host}{INSTALL}/stable/script.deb.sh | bash"
    ));
    assert!(!chroot.path(old_keyring).exists());
    let source =
        std::fs::read_to_string(chroot.path("/etc/apt/sources.list.d/admin_stable.list")).unwrap();
    assert!(
        source.contains("signed-by=/usr/share/keyrings/admin-stable-archive-keyring.gpg"),
        "{source}"
    );
    let installed = chroot.ok("dpkg-query -W -f='${Version}' admin-stable-archive-keyring");
    assert_eq!(installed.trim(), "1");

    // Rotate: the host updates without a warning and upgrade brings keyring version 2.
    let repo = packyard::db::repos::by_owner_and_name(&app.app.db, "admin", "stable")
        .await
        .unwrap()
        .unwrap();
    let old = packyard::db::signing_keys::list(&app.app.db, repo.id)
        .await
        .unwrap()
        .remove(0);
    packyard::keys::rotate(&app.app, &repo, None, None, false)
        .await
        .unwrap();
    app.wait_for_jobs().await;
    let update = chroot.ok("apt-get update 2>&1");
    assert!(!update.contains("W:"), "{update}");
    chroot.ok("apt-get upgrade -y");
    let installed = chroot.ok("dpkg-query -W -f='${Version}' admin-stable-archive-keyring");
    assert_eq!(installed.trim(), "2");

    // The host has the new key, so retiring the old one needs no force, and it keeps working.
    wait_for_adoption(&app, 1, 1).await;
    packyard::keys::retire(&app.app, &repo, &old.fingerprint, false)
        .await
        .unwrap();
    app.wait_for_jobs().await;
    let update = chroot.ok("apt-get update -o APT::Update::Error-Mode=any 2>&1");
    assert!(!update.contains("W:"), "{update}");
    chroot.ok("apt-get install -y hello");
    chroot.ok("apt-get upgrade -y");
    let installed = chroot.ok("dpkg-query -W -f='${Version}' admin-stable-archive-keyring");
    assert_eq!(installed.trim(), "3", "retiring changed the key set again");
}

/// debootstrap fetches every pool file with wget exactly as `Packages` lists it, so a base
/// system bootstraps from a Packyard repository only if every listed name fetches as given.
/// The base packages come as apt caches them (`bsdutils_1%3a2.38.1-5+deb12u3_amd64.deb`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debootstrap_bootstraps_a_minimal_debian_from_a_packyard_repository() {
    let app = TestApp::new().await;
    app.create_repo("base", false).await;
    let work = tempfile::tempdir().unwrap();
    let download = work.path().join("download");
    let out = Command::new("debootstrap")
        .args(["--variant=minbase", "--download-only", "bookworm"])
        .arg(&download)
        .arg("http://deb.debian.org/debian")
        .output()
        .expect("debootstrap runs (scripts/test installs it)");
    assert!(
        out.status.success(),
        "debootstrap --download-only failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let archives = download.join("var/cache/apt/archives");
    let debs: Vec<String> = source_files(&archives, "")
        .into_iter()
        .filter(|n| n.ends_with(".deb"))
        .collect();
    assert!(debs.len() > 50, "{debs:?}");
    assert!(
        debs.iter().any(|n| n.contains("%3a")),
        "some base package has an epoch: {debs:?}"
    );
    for name in &debs {
        let bytes = std::fs::read(archives.join(name)).unwrap();
        app.push_ok("base", crate::fixtures::BOOKWORM, name, bytes)
            .await;
    }
    app.wait_for_jobs().await;

    let keyring = work.path().join("keyring.gpg");
    let armored = app.text("/admin/base/gpgkey").await;
    std::fs::write(&keyring, crate::apt_client::dearmor(&armored).await).unwrap();
    let target = work.path().join("target");
    let out = Command::new("debootstrap")
        .arg("--variant=minbase")
        .arg(format!("--keyring={}", keyring.display()))
        .arg("bookworm")
        .arg(&target)
        .arg(app.url("/admin/base/debian"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "debootstrap from Packyard failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let status = std::fs::read_to_string(target.join("var/lib/dpkg/status")).unwrap();
    // A base package with an epoch (bsdutils 1:2.38...) is installed from its Debian name.
    let bsdutils = status
        .split("\n\n")
        .find(|stanza| stanza.starts_with("Package: bsdutils\n"))
        .unwrap_or_else(|| panic!("bsdutils is not installed:\n{status}"));
    assert!(
        bsdutils.contains("Status: install ok installed") && bsdutils.contains("Version: 1:"),
        "{bsdutils}"
    );
    let _ = Command::new("rm").arg("-rf").arg(&target).status();
}
