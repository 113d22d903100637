//! A real dnf, isolated in a temporary folder (see CLIENTS.md): its own configuration,
//! repositories, cache and installroot, so the host's rpm database is never touched.

use std::path::PathBuf;
use std::process::Output;

use tempfile::TempDir;

pub struct Dnf {
    dir: TempDir,
    root: PathBuf,
    arch: String,
}

impl Dnf {
    /// A dnf with one repository `name` at `baseurl`, checking repomd.xml signatures against
    /// `key_file` (armored) when it is given.
    pub fn new(repos: &[(&str, &str)], key_file: Option<&str>, arch: &str) -> Dnf {
        let dir = tempfile::tempdir().unwrap();
        let check = if key_file.is_some() { 1 } else { 0 };
        let mut repo_file = String::new();
        for (name, baseurl) in repos {
            repo_file.push_str(&format!(
                "[{name}]\nname={name}\nbaseurl={baseurl}\ngpgcheck=0\nrepo_gpgcheck={check}\nmetadata_expire=0\n"
            ));
            if let Some(key) = key_file {
                std::fs::write(dir.path().join("key.asc"), key).unwrap();
                repo_file.push_str(&format!("gpgkey=file://{}/key.asc\n", dir.path().display()));
            }
        }
        Dnf::with_repo_file(dir, &repo_file, arch)
    }

    /// A dnf with a repository file as an install endpoint gives it.
    pub fn from_repo_file(repo_file: &str, arch: &str) -> Dnf {
        Dnf::with_repo_file(tempfile::tempdir().unwrap(), repo_file, arch)
    }

    fn with_repo_file(dir: TempDir, repo_file: &str, arch: &str) -> Dnf {
        let t = dir.path();
        std::fs::create_dir_all(t.join("repos.d")).unwrap();
        std::fs::create_dir_all(t.join("root")).unwrap();
        std::fs::write(
            t.join("dnf.conf"),
            "[main]\nskip_if_unavailable=False\nkeepcache=1\n",
        )
        .unwrap();
        std::fs::write(t.join("repos.d/test.repo"), repo_file).unwrap();
        Dnf {
            root: t.join("root"),
            dir,
            arch: arch.to_owned(),
        }
    }

    /// Installs into `root` from now on rather than into an empty folder of its own.
    pub fn set_root(&mut self, root: PathBuf) {
        self.stop_agents();
        self.root = root;
    }

    pub fn root(&self) -> PathBuf {
        self.root.clone()
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        let t = self.dir.path();

        tokio::process::Command::new("dnf")
            .args(["-y", "-c"])
            .arg(t.join("dnf.conf"))
            .arg(format!("--installroot={}", self.root.display()))
            .args(["--releasever=9", &format!("--forcearch={}", self.arch)])
            .arg(format!("--setopt=reposdir={}", t.join("repos.d").display()))
            .arg("--disableplugin=local,generate_completion_cache")
            .args(args)
            .output()
            .await
            .expect("dnf runs (scripts/test installs dnf)")
    }

    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        let text = crate::apt_client::combined(&out);
        assert!(out.status.success(), "dnf {args:?} failed:\n{text}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Dnf {
    fn drop(&mut self) {
        self.stop_agents();
    }
}

impl Dnf {
    /// Each repository with repo_gpgcheck leaves a gpg-agent behind.
    fn stop_agents(&self) {
        if let Ok(entries) = std::fs::read_dir(self.root.join("var/cache/dnf")) {
            for entry in entries.flatten() {
                let pubring = entry.path().join("pubring");
                if pubring.exists() {
                    let _ = std::process::Command::new("gpgconf")
                        .arg("--homedir")
                        .arg(&pubring)
                        .args(["--kill", "gpg-agent"])
                        .status();
                }
            }
        }
    }
}
