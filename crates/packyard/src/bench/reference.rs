//! The reference tools, driven the way an operator scripts them, each timed end to end.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

fn run(command: &mut Command) -> Result<()> {
    let out = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Runs `f`; the seconds it took.
pub(super) fn timed(f: impl FnOnce() -> Result<()>) -> Result<f64> {
    let started = Instant::now();
    f()?;
    Ok(Duration::as_secs_f64(&started.elapsed()))
}

/// A throwaway gpg home with an Ed25519 signing key, as Packyard's bench repository has.
pub struct Gpg {
    home: PathBuf,
}

impl Gpg {
    pub fn new(work: &Path) -> Result<Gpg> {
        let home = work.join("gnupg");
        // The agent of an earlier run in this folder would outlive its socket and keep a new
        // one from starting.
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", &home)
            .args(["--kill", "gpg-agent"])
            .output();
        let _ = std::fs::remove_dir_all(&home);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&home)?;
        let gpg = Gpg { home };
        run(gpg.command().args([
            "--quick-gen-key",
            "Bench <bench@example.invalid>",
            "ed25519",
            "sign",
            "1y",
        ]))?;
        Ok(gpg)
    }

    fn command(&self) -> Command {
        let mut command = Command::new("gpg");
        command.env("GNUPGHOME", &self.home).args([
            "--batch",
            "--yes",
            "--passphrase",
            "",
            "--pinentry-mode",
            "loopback",
        ]);
        command
    }
}

/// apt-ftparchive over `DIR/pool`, writing `DIR/dists/bench/...` with a cache in `DIR/cache.db`.
pub struct FtpArchive<'a> {
    dir: PathBuf,
    gpg: &'a Gpg,
}

impl<'a> FtpArchive<'a> {
    pub fn new(dir: &Path, gpg: &'a Gpg) -> FtpArchive<'a> {
        FtpArchive {
            dir: dir.to_path_buf(),
            gpg,
        }
    }

    /// Packages, Packages.gz, Release and InRelease; returns the seconds it took.
    pub fn publish(&self) -> Result<f64> {
        let dists = self.dir.join("dists/bench");
        let binary = dists.join("main/binary-amd64");
        std::fs::create_dir_all(&binary)?;
        timed(|| {
            let packages = std::fs::File::create(binary.join("Packages"))?;
            let out = Command::new("apt-ftparchive")
                .current_dir(&self.dir)
                .args(["--db", "cache.db", "packages", "pool"])
                .stdout(packages)
                .stderr(Stdio::piped())
                .output()
                .context("running apt-ftparchive (scripts/bench installs apt-utils)")?;
            anyhow::ensure!(
                out.status.success(),
                "apt-ftparchive failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            run(Command::new("gzip")
                .args(["-9", "-k", "-f"])
                .arg(binary.join("Packages")))?;
            let release = std::fs::File::create(self.dir.join("Release.new"))?;
            let out = Command::new("apt-ftparchive")
                .arg("release")
                .arg(&dists)
                .stdout(release)
                .output()?;
            anyhow::ensure!(out.status.success(), "apt-ftparchive release failed");
            std::fs::rename(self.dir.join("Release.new"), dists.join("Release"))?;
            run(self
                .gpg
                .command()
                .arg("--clearsign")
                .arg("-o")
                .arg(dists.join("InRelease"))
                .arg(dists.join("Release")))
        })
    }
}

/// createrepo_c over a folder of rpms: the newest command-line tool that can be had here
/// (the one inside the PyPI wheel, else the distribution's).
pub struct Createrepo<'a> {
    dir: PathBuf,
    binary: PathBuf,
    gpg: &'a Gpg,
}

impl<'a> Createrepo<'a> {
    pub fn new(dir: &Path, gpg: &'a Gpg) -> Createrepo<'a> {
        let wheel = Command::new("python3")
            .args([
                "-c",
                "import createrepo_c, os; print(os.path.dirname(createrepo_c.__file__))",
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| {
                PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
                    .join("data/bin/createrepo_c")
            })
            .filter(|p| p.exists());
        Createrepo {
            dir: dir.to_path_buf(),
            binary: wheel.unwrap_or_else(|| PathBuf::from("createrepo_c")),
            gpg,
        }
    }

    pub fn describe(&self) -> String {
        let version = Command::new(&self.binary)
            .arg("--version")
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("?")
                    .to_owned()
            })
            .unwrap_or_else(|_| "?".into());
        format!("createrepo_c {version}")
    }

    /// repodata and a detached signature of repomd.xml; returns the seconds it took.
    pub fn run(&self, update: bool) -> Result<f64> {
        timed(|| {
            let mut command = Command::new(&self.binary);
            command.args(["--quiet", "--no-database"]);
            if update {
                command.arg("--update");
            }
            run(command.arg(&self.dir))?;
            let repomd = self.dir.join("repodata/repomd.xml");
            run(self
                .gpg
                .command()
                .args(["--armor", "--detach-sign", "-o"])
                .arg(repomd.with_extension("xml.asc"))
                .arg(&repomd))
        })
    }
}

impl Gpg {
    /// The long id of the signing key, for tools that must be told which key to use.
    pub fn key_id(&self) -> Result<String> {
        let out = self
            .command()
            .args(["--with-colons", "--list-secret-keys"])
            .output()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("sec:"))
            .and_then(|l| l.split(':').nth(3))
            .map(str::to_owned)
            .context("the bench key's id")
    }
}

/// Runs `files` through `add` in batches short enough for a command line.
fn in_batches(files: &[PathBuf], mut add: impl FnMut(&[PathBuf]) -> Result<()>) -> Result<()> {
    files.chunks(500).try_for_each(&mut add)
}

/// reprepro with one distribution `bench` in `DIR/reprepro`, signing with the bench key.
pub struct Reprepro<'a> {
    base: PathBuf,
    gpg: &'a Gpg,
}

impl<'a> Reprepro<'a> {
    /// A repository holding `files`, exported and signed once.
    pub fn seeded(dir: &Path, gpg: &'a Gpg, files: &[PathBuf]) -> Result<Reprepro<'a>> {
        let base = dir.join("reprepro");
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("conf"))?;
        std::fs::write(
            base.join("conf/distributions"),
            format!(
                "Codename: bench\nArchitectures: amd64\nComponents: main\nSignWith: {}\n",
                gpg.key_id()?
            ),
        )?;
        let reprepro = Reprepro { base, gpg };
        in_batches(files, |batch| {
            run(reprepro
                .command()
                .args(["--export=never", "includedeb", "bench"])
                .args(batch))
        })?;
        run(reprepro.command().arg("export"))?;
        Ok(reprepro)
    }

    fn command(&self) -> Command {
        let mut command = Command::new("reprepro");
        command
            .env("GNUPGHOME", &self.gpg.home)
            .arg("--silent")
            .arg("-b")
            .arg(&self.base);
        command
    }

    /// `reprepro includedeb` of one more package, which exports and signs; the seconds it took.
    pub fn include(&self, file: &Path) -> Result<f64> {
        self.include_all(std::slice::from_ref(&file.to_path_buf()))
    }

    /// `reprepro includedeb` of `files` in one call, which exports and signs once.
    pub fn include_all(&self, files: &[PathBuf]) -> Result<f64> {
        timed(|| run(self.command().args(["includedeb", "bench"]).args(files)))
    }
}

/// aptly with a local repository `bench` published as distribution `bench`, in `DIR/aptly`.
pub struct Aptly<'a> {
    config: PathBuf,
    gpg: &'a Gpg,
}

impl<'a> Aptly<'a> {
    pub fn seeded(dir: &Path, gpg: &'a Gpg, files: &[PathBuf]) -> Result<Aptly<'a>> {
        let root = dir.join("aptly");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root)?;
        let config = root.join("aptly.conf");
        std::fs::write(
            &config,
            serde_json::json!({ "rootDir": root, "gpgProvider": "gpg", "architectures": ["amd64"] })
                .to_string(),
        )?;
        let aptly = Aptly { config, gpg };
        run(aptly.command().args([
            "repo",
            "create",
            "-distribution=bench",
            "-component=main",
            "bench",
        ]))?;
        in_batches(files, |batch| {
            run(aptly.command().args(["repo", "add", "bench"]).args(batch))
        })?;
        run(aptly.command().args([
            "publish",
            "repo",
            "-skip-contents",
            "-batch",
            "-passphrase=",
            "bench",
        ]))?;
        Ok(aptly)
    }

    fn command(&self) -> Command {
        let mut command = Command::new("aptly");
        command
            .env("GNUPGHOME", &self.gpg.home)
            .arg(format!("-config={}", self.config.display()));
        command
    }

    /// `aptly repo add` of `files` and `aptly publish update`; the seconds it took.
    pub fn add_and_publish(&self, files: &[PathBuf]) -> Result<f64> {
        timed(|| {
            run(self.command().args(["repo", "add", "bench"]).args(files))?;
            run(self.command().args([
                "publish",
                "update",
                "-skip-contents",
                "-batch",
                "-passphrase=",
                "bench",
            ]))
        })
    }
}
