//! pip, uv, twine and `python -m build` in a virtual environment of their own
//! (`target/test-tools/python`, made by scripts/test or here on first use), and a demo
//! project to build wheels and sdists from.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// The virtual environment with pip, uv, twine, build, setuptools, feedparser and
/// standardwebhooks.
pub fn venv() -> PathBuf {
    static MADE: Mutex<bool> = Mutex::new(false);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-tools/python");
    let mut made = MADE.lock().unwrap();
    if !*made && !dir.join("bin/twine").exists() {
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&dir)
            .status()
            .expect("python3 runs");
        assert!(status.success());
        let status = Command::new(dir.join("bin/pip"))
            .args([
                "install",
                "-q",
                "twine",
                "build",
                "uv",
                "setuptools",
                "wheel",
            ])
            .status()
            .unwrap();
        assert!(status.success(), "pip install twine build uv");
    }
    // Libraries the tests parse and check with: feeds, webhook signatures, the OCI artifact
    // client, and Helm's engine with the Kubernetes schemas for the chart.
    let present = |module: &str| {
        Command::new(dir.join("bin/python"))
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let modules = [
        "feedparser",
        "standardwebhooks",
        "oras",
        "helm_python",
        "kubernetes_validate",
    ];
    let packages = [
        "feedparser",
        "standardwebhooks",
        "oras",
        "helm-python-sdk",
        "kubernetes-validate",
    ];
    if !*made && !modules.into_iter().all(present) {
        let status = Command::new(dir.join("bin/pip"))
            .arg("install")
            .arg("-q")
            .args(packages)
            .status()
            .unwrap();
        assert!(status.success(), "pip install {packages:?}");
    }
    *made = true;
    dir
}

pub fn tool(name: &str) -> PathBuf {
    venv().join("bin").join(name)
}

pub fn combined(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Builds the wheel and sdist of `name` at `version` with `python -m build`; returns both.
pub fn build(dir: &Path, name: &str, version: &str, requires_python: &str) -> Vec<PathBuf> {
    let project = dir.join(format!("{name}-{version}-src"));
    let module = name.replace('-', "_").to_lowercase();
    std::fs::create_dir_all(project.join(&module)).unwrap();
    std::fs::write(
        project.join(&module).join("__init__.py"),
        format!("VERSION = {version:?}\n"),
    )
    .unwrap();
    std::fs::write(
        project.join("pyproject.toml"),
        format!(
            "[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n\n\
             [project]\nname = \"{name}\"\nversion = \"{version}\"\ndescription = \"A demo\"\n\
             requires-python = \"{requires_python}\"\n\n[tool.setuptools]\npackages = [\"{module}\"]\n"
        ),
    )
    .unwrap();
    let out_dir = dir.join(format!("dist-{name}-{version}"));
    let out = Command::new(tool("python"))
        .args(["-m", "build", "--no-isolation", "--outdir"])
        .arg(&out_dir)
        .arg(&project)
        .output()
        .unwrap();
    assert!(out.status.success(), "python -m build:\n{}", combined(&out));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    files
}
