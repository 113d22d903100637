//! Test rpms, built with the real `rpmbuild` (see CLIENTS.md), and a signing key for rpmsign.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const EL9: i64 = 309;

/// An installable package with no automatic dependencies: `/usr/bin/NAME` prints its version.
pub fn simple_spec(name: &str, version: &str, release: &str, arch: &str) -> String {
    format!(
        "Name: {name}\nVersion: {version}\nRelease: {release}\nSummary: test package {name}\nLicense: MIT\n\
         BuildArch: {arch}\nAutoReqProv: no\n%description\nA package for tests.\n\
         %install\nmkdir -p %{{buildroot}}/usr/bin\nprintf '#!/bin/sh\\necho {name} {version}\\n' > %{{buildroot}}/usr/bin/{name}\n\
         chmod 755 %{{buildroot}}/usr/bin/{name}\n%files\n/usr/bin/{name}\n"
    )
}

/// Runs `rpmbuild` on `spec` in its own top directory under `dir`; returns the built binary
/// rpm, and the source rpm when `source` is set.
pub fn rpmbuild(dir: &Path, spec: &str, target: &str, source: bool) -> Vec<PathBuf> {
    let top = tempfile::tempdir_in(dir).unwrap().keep();
    let spec_path = top.join("package.spec");
    std::fs::write(&spec_path, spec).unwrap();
    let out = Command::new("rpmbuild")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .args([
            "--define",
            "_build_id_links none",
            "--target",
            target,
            if source { "-ba" } else { "-bb" },
        ])
        .arg(&spec_path)
        .output()
        .expect("rpmbuild runs (scripts/test installs rpm)");
    assert!(
        out.status.success(),
        "rpmbuild failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut built = Vec::new();
    for sub in ["RPMS", "SRPMS"] {
        let Ok(dirs) = std::fs::read_dir(top.join(sub)) else {
            continue;
        };
        for entry in dirs.flatten() {
            let path = entry.path();
            if path.is_dir() {
                built.extend(std::fs::read_dir(path).unwrap().flatten().map(|e| e.path()));
            } else {
                built.push(path);
            }
        }
    }
    built.sort();
    built
}

pub fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// A throwaway gpg home with an Ed25519 signing key; returns the home and the armored key.
pub fn signing_key(dir: &Path) -> (PathBuf, String) {
    let home = tempfile::tempdir_in(dir).unwrap().keep();
    let gpg = |args: &[&str]| {
        let out = Command::new("gpg")
            .env("GNUPGHOME", &home)
            .args(["--batch", "--passphrase", ""])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    gpg(&[
        "--quick-gen-key",
        "Signer <signer@example.invalid>",
        "ed25519",
        "sign",
        "1y",
    ]);
    let armored =
        String::from_utf8(gpg(&["--export", "--armor", "signer@example.invalid"])).unwrap();
    (home, armored)
}

/// Signs an rpm in place with rpmsign and the key in `home`.
pub fn rpmsign(home: &Path, rpm: &Path) {
    let out = Command::new("rpmsign")
        .env("GNUPGHOME", home)
        .args([
            "--define",
            "__gpg /usr/bin/gpg",
            "--define",
            "_gpg_name signer@example.invalid",
            "--addsign",
        ])
        .arg(rpm)
        .output()
        .expect("rpmsign runs (scripts/test installs rpm)");
    assert!(
        out.status.success(),
        "rpmsign failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The varied package of the agreement test: epoch, rich and weak dependencies, versioned
/// provides, obsoletes, conflicts, directories, a symlink, a ghost, spaces, a config file and
/// a changelog longer than the ten entries repodata keeps.
pub fn varied_spec() -> String {
    let mut changelog = String::new();
    for day in (1..=12).rev() {
        changelog.push_str(&format!(
            "* Mon Jan {day:02} 2024 Tester <t@example.invalid> - 3:2.4.1-{day}\n- change number {day}\n- with a <second> & \"third\" line\n\n"
        ));
    }
    format!(
        r#"Name: varied
Epoch: 3
Version: 2.4.1
Release: 5.el9
Summary: A package with every kind of relation
License: MIT and (BSD or GPLv2+)
URL: https://example.invalid/varied
Vendor: Tests
Group: Applications/System
AutoReqProv: no
Requires: (libfoo or libbar)
Requires: (pkgconfig(zlib) if devel-thing)
Requires: coreutils >= 8.0
Requires(pre): shadow-utils
Provides: varied-virtual = 2.4
Provides: config(varied) = 3:2.4.1-5.el9
Conflicts: oldvaried < 2.0
Obsoletes: varied-legacy <= 1.9
Recommends: varied-doc
Suggests: varied-extras >= 1
Supplements: (varied-base and langpacks-en)
Enhances: other-tool
%description
A long
multi-line description with <markup> & "quotes".
%install
mkdir -p "%{{buildroot}}/usr/share/varied/dir with space" %{{buildroot}}/usr/bin %{{buildroot}}/etc/varied %{{buildroot}}/var/log
printf 'x\n' > "%{{buildroot}}/usr/share/varied/dir with space/file with space.txt"
printf '#!/bin/sh\n' > %{{buildroot}}/usr/bin/varied
ln -s varied %{{buildroot}}/usr/bin/varied-link
printf 'a=1\n' > %{{buildroot}}/etc/varied/varied.conf
%files
%dir /usr/share/varied
"/usr/share/varied/dir with space"
/usr/bin/varied
/usr/bin/varied-link
%config(noreplace) /etc/varied/varied.conf
%ghost /var/log/varied.log
%changelog
{changelog}"#
    )
}

/// Builds `NAME-VERSION-1.x86_64.rpm` with `simple_spec` and pushes it to `admin/REPO` for
/// el/9.
pub async fn push_simple_rpm(app: &crate::support::TestApp, repo: &str, name: &str, version: &str) {
    let dir = tempfile::tempdir().unwrap();
    let rpm = rpmbuild(
        dir.path(),
        &simple_spec(name, version, "1", "x86_64"),
        "x86_64",
        false,
    )
    .remove(0);
    app.push_ok(repo, EL9, &file_name(&rpm), std::fs::read(&rpm).unwrap())
        .await;
}
