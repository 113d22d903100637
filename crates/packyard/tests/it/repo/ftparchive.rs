//! Our stanzas against `apt-ftparchive packages` on the same files: every field the reference
//! tool writes must appear in ours with the same value (only `Filename` differs, by layout).

use packyard_formats::deb::Control;

use crate::fixtures::{BOOKWORM, dpkg_deb, stanzas};
use crate::support::TestApp;

const CONTROLS: &[&str] = &[
    "Package: varied-tool
Version: 1:2.4.1-3+deb12u1
Architecture: amd64
Maintainer: Packyard Tests <tests@example.invalid>
Installed-Size: 1234
Pre-Depends: dpkg (>= 1.15.6~), init-system-helpers (>= 1.54~)
Depends: libc6 (>= 2.34), libssl3 (>= 3.0.0) | libssl1.1, python3:any
Recommends: ca-certificates
Suggests: varied-doc
Conflicts: old-tool (<< 2.0)
Breaks: broken-thing (<= 1.0)
Replaces: old-tool (<< 2.0)
Provides: tool-virtual (= 2.4.1), another-virtual
Multi-Arch: foreign
Section: utils
Priority: optional
Homepage: https://example.invalid/varied
Built-Using: rustc (= 1.63.0+dfsg1-2), gcc-12 (= 12.2.0-14)
Description: a package with every common field
 This long description has several paragraphs.
 .
 The line above is a blank line written as a dot, and this one
 continues the second paragraph.
 .
  * an indented list item
  * and another
",
    "Package: varied-data
Version: 0.9~rc1
Architecture: all
Maintainer: Packyard Tests <tests@example.invalid>
Installed-Size: 5
Essential: yes
Section: misc
Priority: required
Description: architecture-independent data
 Shipped once, listed in every architecture's index.
",
    "Package: lib-varied0
Source: varied (2.4.1-3)
Version: 2.4.1-3
Architecture: amd64
Multi-Arch: same
Maintainer: Packyard Tests <tests@example.invalid>
Installed-Size: 99
Depends: libc6 (>= 2.17)
Enhances: varied-tool
Section: libs
Priority: optional
X-Custom-Field: kept as it is
Description: shared library
 With a single line of long description.
",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stanzas_match_apt_ftparchive_field_for_field() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let work = tempfile::tempdir().unwrap();
    let pool = work.path().join("pool");
    std::fs::create_dir_all(&pool).unwrap();
    for control in CONTROLS {
        let name = control
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("Package: ");
        let bytes = dpkg_deb(
            work.path(),
            control,
            &format!("usr/share/{name}/README"),
            "hello\n",
        );
        // Debian's name for the file, as Packyard stores it whatever it was uploaded as.
        let field = |key: &str| {
            let parsed = Control::parse(control.as_bytes()).unwrap();
            parsed.get(key).unwrap().to_owned()
        };
        let (version, arch) = (field("Version"), field("Architecture"));
        let without_epoch = version.split_once(':').map_or(version.as_str(), |(_, v)| v);
        std::fs::write(
            pool.join(format!("{name}_{without_epoch}_{arch}.deb")),
            &bytes,
        )
        .unwrap();
        // Uploaded under the name apt caches it as, the epoch's colon escaped.
        let uploaded = format!("{name}_{}_{arch}.deb", version.replace(':', "%3a"));
        app.push_ok("stable", BOOKWORM, &uploaded, bytes).await;
    }
    app.wait_for_jobs().await;

    let reference = tokio::process::Command::new("apt-ftparchive")
        .args(["packages", "pool"])
        .current_dir(work.path())
        .output()
        .await
        .expect("apt-ftparchive runs (scripts/test installs apt-utils)");
    assert!(
        reference.status.success(),
        "{}",
        String::from_utf8_lossy(&reference.stderr)
    );
    let reference = stanzas(&String::from_utf8(reference.stdout).unwrap());
    assert_eq!(reference.len(), CONTROLS.len());

    let ours = app
        .text("/admin/stable/debian/dists/bookworm/main/binary-amd64/Packages")
        .await;
    let ours = stanzas(&ours);
    for (name, expected) in &reference {
        let actual = ours
            .get(name)
            .unwrap_or_else(|| panic!("{name} is missing from our index"));
        for (field, value) in expected.fields() {
            if field == "Filename" {
                // The same file name in another directory: pool/DIST/main/L/NAME/.
                let ours = actual.get("Filename").unwrap();
                assert_eq!(ours.rsplit('/').next(), value.rsplit('/').next(), "{name}");
                continue;
            }
            assert_eq!(actual.get(field), Some(value), "{name}: field {field}");
        }
    }
}
