//! Test packages, built in-process or with the real `dpkg-deb`.

use std::path::Path;

use packyard_formats::deb::{Compression, DataFile, build_deb};

pub const BOOKWORM: i64 = 12;
pub const JAMMY: i64 = 108;

/// A small valid .deb of `name` `version` for `arch`.
pub fn deb(name: &str, version: &str, arch: &str) -> Vec<u8> {
    let control = format!(
        "Package: {name}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: Tests <tests@example.invalid>\n\
         Installed-Size: 1\nSection: misc\nPriority: optional\nDescription: test package {name}\n A package for tests.\n"
    );
    let script = format!("#!/bin/sh\necho {name} {version}\n");
    let files = [DataFile {
        path: &format!("usr/bin/{name}"),
        contents: script.as_bytes(),
        mode: 0o755,
    }];
    build_deb(&control, &files, Compression::Gzip)
}

pub fn deb_filename(name: &str, version: &str, arch: &str) -> String {
    format!("{name}_{version}_{arch}.deb")
}

/// Builds a .deb with `dpkg-deb --build` from a control file and one installed file.
pub fn dpkg_deb(dir: &Path, control: &str, file_path: &str, file_contents: &str) -> Vec<u8> {
    let root = dir.join(format!("root-{}", rand_suffix()));
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::write(root.join("DEBIAN/control"), control).unwrap();
    let installed = root.join(file_path);
    std::fs::create_dir_all(installed.parent().unwrap()).unwrap();
    std::fs::write(&installed, file_contents).unwrap();
    let out = dir.join(format!("{}.deb", rand_suffix()));
    let status = std::process::Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&root)
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("dpkg-deb runs (scripts/test installs dpkg-dev)");
    assert!(status.success(), "dpkg-deb --build failed");
    std::fs::read(out).unwrap()
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The stanzas of a `Packages` or `Sources` text by package name.
pub fn stanzas(text: &str) -> std::collections::BTreeMap<String, packyard_formats::deb::Control> {
    text.split("\n\n")
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            let control = packyard_formats::deb::Control::parse(s.as_bytes()).unwrap();
            (control.get("Package").unwrap().to_owned(), control)
        })
        .collect()
}

/// Runs `program` in `cwd` with nothing of this machine's environment but `PATH` (or `path`),
/// `HOME` set to `home` and `env` added, feeding it `stdin`: how a user's shell runs an
/// install script and the client after it.
pub fn run_in_home(
    program: &str,
    args: &[&str],
    cwd: &Path,
    home: &Path,
    env: &[(&str, String)],
    stdin: Option<&str>,
) -> std::process::Output {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}
