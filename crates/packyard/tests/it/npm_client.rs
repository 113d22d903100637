//! npm (the system's) and pnpm (installed into `target/test-tools/node` by scripts/test or
//! here on first use), each with a configuration of its own pointing at one registry.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use tempfile::TempDir;

/// pnpm, installed once from the npm registry.
pub fn pnpm() -> PathBuf {
    static MADE: Mutex<bool> = Mutex::new(false);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-tools/node");
    let bin = dir.join("node_modules/.bin/pnpm");
    let mut made = MADE.lock().unwrap();
    if !*made && !bin.exists() {
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg("pnpm@9")
            .status()
            .expect("npm runs");
        assert!(status.success(), "npm install pnpm");
    }
    *made = true;
    bin
}

/// A user configuration and cache of its own, for `registry` with `token`.
pub struct Npm {
    dir: TempDir,
}

impl Npm {
    pub fn new(registry: &str, token: &str) -> Npm {
        let dir = tempfile::tempdir().unwrap();
        let registry = registry.trim_end_matches('/').to_owned() + "/";
        let scoped = registry.trim_start_matches("http:");
        std::fs::write(
            dir.path().join("npmrc"),
            format!("registry={registry}\n{scoped}:_authToken={token}\naudit=false\nfund=false\nupdate-notifier=false\n"),
        )
        .unwrap();
        Npm { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `program` (npm or pnpm) in `cwd` with this configuration only.
    pub fn run(&self, program: &Path, cwd: &Path, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .current_dir(cwd)
            .env("NPM_CONFIG_USERCONFIG", self.dir.path().join("npmrc"))
            .env("NPM_CONFIG_GLOBALCONFIG", self.dir.path().join("globalrc"))
            .env("NPM_CONFIG_CACHE", self.dir.path().join("cache"))
            .env("NPM_CONFIG_UPDATE_NOTIFIER", "false")
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .output()
            .unwrap_or_else(|e| panic!("{} runs: {e}", program.display()))
    }

    pub fn npm(&self, cwd: &Path, args: &[&str]) -> Output {
        self.run(Path::new("npm"), cwd, args)
    }
}

pub fn combined(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A package folder `name` at `version` with one file.
pub fn package(dir: &Path, name: &str, version: &str) -> PathBuf {
    let folder = dir.join(format!(
        "{}-{version}",
        name.replace('/', "-").trim_start_matches('@')
    ));
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("package.json"),
        format!(
            "{{\"name\":\"{name}\",\"version\":\"{version}\",\"description\":\"demo\",\"main\":\"index.js\",\"license\":\"MIT\"}}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        folder.join("index.js"),
        format!("module.exports = {version:?};\n"),
    )
    .unwrap();
    folder
}
