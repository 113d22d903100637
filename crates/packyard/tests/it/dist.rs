//! Packyard's own packages (`scripts/dist`), served by Packyard: the .deb installed with real
//! apt through `script.deb.sh` in a debootstrapped Debian, its systemd units checked with
//! `systemd-analyze verify`, and the installed binary run as the `packyard` user on its default
//! configuration until `/readyz` answers; the .rpm listed, downloaded and installed by dnf from a
//! Packyard repository into an installroot (the same root), its scriptlets making the user. The
//! packages hold the test build of the binary (`--fast`): what is tested is the packaging, not
//! the optimiser.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::deployment::{BIN, ready_within};
use crate::dnf_client::Dnf;
use crate::fixtures::BOOKWORM;
use crate::install::Chroot;
use crate::rpm_fixtures::EL9;
use crate::support::{KillGroup, TestApp, free_port, run_ok};

/// Runs `scripts/dist --fast` on the test binary; the .deb and the .rpm.
fn dist(out: &Path) -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let run = Command::new(root.join("scripts/dist"))
        .args(["--fast", "--binary", BIN, "--out"])
        .arg(out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "scripts/dist: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let made: Vec<PathBuf> = String::from_utf8(run.stdout)
        .unwrap()
        .lines()
        .map(PathBuf::from)
        .collect();
    assert_eq!(made.len(), 2, "{made:?}");
    (made[0].clone(), made[1].clone())
}

/// A package that holds no file and provides what the Debian root has of an EL base system:
/// its C library (at its version), `/bin/sh` and the shadow tools.
fn base_system_rpm(out: &Path, glibc: &str) -> PathBuf {
    let top = out.join("base-rpm");
    std::fs::create_dir_all(top.join("SPECS")).unwrap();
    let spec = top.join("SPECS/base.spec");
    std::fs::write(
        &spec,
        format!(
            "Name: debian-base-system\nVersion: 12\nRelease: 1\nSummary: The root's own base system\n\
             License: Public Domain\nBuildArch: noarch\nProvides: glibc = {glibc}\n\
             Provides: /bin/sh\nProvides: shadow-utils\n\n%description\nNo files.\n\n%files\n"
        ),
    )
    .unwrap();
    let define = format!("_topdir {}", top.display());
    run_ok(
        "rpmbuild",
        &[
            "--define",
            define.as_str(),
            "-bb",
            "--quiet",
            spec.to_str().unwrap(),
        ],
    );
    top.join("RPMS/noarch/debian-base-system-12-1.noarch.rpm")
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packyard_installs_from_a_packyard_repository_and_serves_as_its_own_user() {
    let out = tempfile::tempdir().unwrap();
    let (deb, rpm) = dist(out.path());
    let app = TestApp::new().await;
    app.create_repo("tools", false).await;
    app.push_ok(
        "tools",
        BOOKWORM,
        &file_name(&deb),
        std::fs::read(&deb).unwrap(),
    )
    .await;
    app.push_ok("tools", EL9, &file_name(&rpm), std::fs::read(&rpm).unwrap())
        .await;
    app.wait_for_jobs().await;

    let chroot = tokio::task::spawn_blocking(Chroot::bookworm).await.unwrap();
    let host = app.base.trim_start_matches("http://").to_owned();
    chroot.ok(&format!(
        "curl -sSf http://{host}/install/repositories/admin/tools/script.deb.sh | bash"
    ));
    chroot.ok("apt-get install -y packyard");
    assert!(chroot.path("/usr/bin/packyard").exists());
    assert_eq!(
        chroot.ok("stat -c '%U:%G %a' /var/lib/packyard").trim(),
        "packyard:packyard 750"
    );
    let user = chroot.ok("getent passwd packyard");
    assert!(
        user.contains(":/var/lib/packyard:/usr/sbin/nologin"),
        "{user}"
    );

    // The configuration is the administrator's once changed: a reinstall keeps it.
    chroot.ok("echo '# changed here' >> /etc/packyard/packyard.toml");
    chroot.ok("apt-get install -y --reinstall packyard");
    assert!(
        chroot
            .ok("cat /etc/packyard/packyard.toml")
            .contains("# changed here")
    );

    for unit in ["packyard.service", "packyard@.service"] {
        let path = chroot.path(&format!("/lib/systemd/system/{unit}"));
        let verify = Command::new("systemd-analyze")
            // The units alone: the minimal root has no systemd of its own to load theirs from.
            .args(["verify", "--recursive-errors=no"])
            .arg(format!("--root={}", chroot.root.display()))
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&verify.stderr);
        assert!(
            verify.status.success() && !text.contains(unit),
            "systemd-analyze verify {unit}:\n{text}"
        );
    }

    // The installed binary on its default configuration, as its user, on a free port.
    let port = free_port();
    let server = tokio::process::Command::new("chroot")
        .arg(&chroot.root)
        .args(["runuser", "-u", "packyard", "--"])
        .args([
            "/usr/bin/packyard",
            "serve",
            "--config",
            "/etc/packyard/packyard.toml",
        ])
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        // A group of its own, killed whole: runuser leaves its child behind otherwise.
        .process_group(0)
        .spawn()
        .unwrap();
    let group = KillGroup(server.id().unwrap());
    assert!(
        ready_within(&format!("http://127.0.0.1:{port}"), Duration::from_secs(60)).await,
        "the installed packyard did not become ready"
    );
    assert_eq!(
        chroot.ok("stat -c %U /var/lib/packyard/packyard.db /var/lib/packyard/secret.key"),
        "packyard\npackyard\n"
    );

    // The .rpm, as dnf sees it in a Packyard repository.
    let key = app.text("/admin/tools/gpgkey").await;
    let mut dnf = Dnf::new(
        &[("tools", &app.url("/admin/tools/el/9/x86_64"))],
        Some(&key),
        "x86_64",
    );
    let listed = dnf
        .ok(&["repoquery", "--qf", "%{name} %{evr} %{arch}", "packyard"])
        .await;
    assert_eq!(listed.trim(), "packyard 0.1.0-1 x86_64");
    let requires = dnf.ok(&["repoquery", "--requires", "packyard"]).await;
    assert!(requires.contains("glibc >= 2.34"), "{requires}");

    // Fetched by dnf (checked against the signed metadata), byte for byte.
    let downloads = tempfile::tempdir().unwrap();
    dnf.ok(&[
        "download",
        "--destdir",
        downloads.path().to_str().unwrap(),
        "packyard",
    ])
    .await;
    assert_eq!(
        std::fs::read(downloads.path().join(file_name(&rpm))).unwrap(),
        std::fs::read(&rpm).unwrap()
    );

    // Installed by dnf from the Packyard repository into an installroot: the same Debian root
    // once the .deb and its user are gone, so that a real /bin/sh and useradd run the
    // scriptlets. No EL base repository is reachable from here, so the root's own C library,
    // shell and shadow tools are entered in its rpm database by a package that provides them
    // and holds no file (installed with `rpm --justdb`); dnf resolves the requirements against it.
    drop(group);
    chroot.ok(
        "apt-get purge -y packyard && rm -rf /var/lib/packyard && \
         for _ in 1 2 3 4 5 6 7 8 9 10; do userdel packyard 2>/dev/null && exit 0; sleep 0.5; done; exit 1",
    );
    let glibc = chroot.ok("dpkg-query -W -f '${Version}' libc6");
    let base = base_system_rpm(out.path(), glibc.split('-').next().unwrap());
    let root = format!("--root={}", chroot.root.display());
    run_ok(
        "rpm",
        &[root.as_str(), "--justdb", "-i", base.to_str().unwrap()],
    );
    dnf.set_root(chroot.root.clone());
    let installed = dnf.ok(&["install", "packyard"]).await;
    assert!(installed.contains("packyard"), "{installed}");
    let user = chroot.ok("getent passwd packyard");
    assert!(
        user.contains(":/var/lib/packyard:/usr/sbin/nologin"),
        "{user}"
    );
    assert_eq!(
        chroot.ok("stat -c '%U:%G %a' /var/lib/packyard").trim(),
        "packyard:packyard 750"
    );
    assert!(
        chroot
            .path("/usr/lib/systemd/system/packyard@.service")
            .exists()
    );
    let query = |args: &[&str]| {
        let out = Command::new("rpm")
            .arg(format!("--root={}", chroot.root.display()))
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            out.status.success(),
            "rpm {args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    assert_eq!(
        query(&["-q", "--configfiles", "packyard"]).trim(),
        "/etc/packyard/packyard.toml"
    );
    assert_eq!(
        query(&["-V", "packyard"]),
        "",
        "every file as the package has it"
    );
}
