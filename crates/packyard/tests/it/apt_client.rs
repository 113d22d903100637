//! A real apt, isolated in a temporary folder (see CLIENTS.md): its own sources, lists, cache
//! and dpkg status, so the host's apt state is never touched.

use std::path::PathBuf;
use std::process::Output;

use tempfile::TempDir;

pub struct Apt {
    dir: TempDir,
}

impl Apt {
    /// An apt that trusts `keyring` (binary OpenPGP) for `source_url` (`http://.../OWNER/REPO/OS/`).
    pub fn new(source_url: &str, dist: &str, keyring: &[u8]) -> Apt {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path();
        for sub in [
            "state/lists/partial",
            "cache/archives/partial",
            "etc/apt.conf.d",
            "etc/preferences.d",
            "etc/trusted.gpg.d",
            "log",
        ] {
            std::fs::create_dir_all(a.join(sub)).unwrap();
        }
        std::fs::write(a.join("dpkg-status"), "").unwrap();
        std::fs::write(a.join("key.gpg"), keyring).unwrap();
        let d = a.display();
        let conf = format!(
            "Dir::Etc::sourcelist \"{d}/sources.list\";\nDir::Etc::sourceparts \"-\";\nDir::Etc::main \"{d}/apt.conf\";\n\
             Dir::Etc::parts \"{d}/etc/apt.conf.d\";\nDir::Etc::preferences \"{d}/etc/preferences\";\n\
             Dir::Etc::preferencesparts \"{d}/etc/preferences.d\";\nDir::Etc::trusted \"{d}/etc/trusted.gpg\";\n\
             Dir::Etc::trustedparts \"{d}/etc/trusted.gpg.d\";\nDir::State \"{d}/state\";\n\
             Dir::State::status \"{d}/dpkg-status\";\nDir::Cache \"{d}/cache\";\nDir::Log \"{d}/log\";\n\
             APT::Architecture \"amd64\";\nAPT::Sandbox::User \"root\";\nDebug::NoLocking \"true\";\n\
             Acquire::Retries \"0\";\n"
        );
        std::fs::write(a.join("apt.conf"), conf).unwrap();
        std::fs::write(
            a.join("sources.list"),
            // The deb-src line too, as packagecloud's configuration writes it: every update
            // then also fetches Sources, with or without source packages.
            format!(
                "deb [signed-by={d}/key.gpg] {source_url} {dist} main\n\
                 deb-src [signed-by={d}/key.gpg] {source_url} {dist} main\n"
            ),
        )
        .unwrap();
        Apt { dir }
    }

    /// apt's downloaded index files.
    pub fn lists(&self) -> PathBuf {
        self.dir.path().join("state/lists")
    }

    /// Runs an apt program with this configuration.
    pub async fn run(&self, program: &str, args: &[&str]) -> Output {
        tokio::process::Command::new(program)
            .args(args)
            .env("APT_CONFIG", self.dir.path().join("apt.conf"))
            .current_dir(self.dir.path())
            .output()
            .await
            .unwrap_or_else(|e| panic!("{program} runs (scripts/test installs it): {e}"))
    }

    /// `apt-get update`, asserting success and no warnings.
    pub async fn update(&self) {
        let out = self.run("apt-get", &["update"]).await;
        let text = combined(&out);
        assert!(out.status.success(), "apt-get update failed:\n{text}");
        assert!(
            !text.contains("W: ") && !text.contains("E: "),
            "apt-get update complained:\n{text}"
        );
    }

    /// `apt-get update` while the repository changes: any error fails it (a hash mismatch
    /// above all), warnings do not.
    pub async fn update_while_publishing(&self) {
        let out = self
            .run("apt-get", &["update", "-o", "APT::Update::Error-Mode=any"])
            .await;
        let text = combined(&out);
        assert!(
            out.status.success()
                && !text.contains("Hash Sum mismatch")
                && !text.contains("unexpected size"),
            "apt-get update failed while packages were pushed:\n{text}"
        );
    }

    /// The versions `apt-cache policy` lists for `package`.
    pub async fn versions(&self, package: &str) -> Vec<String> {
        let out = self.run("apt-cache", &["policy", package]).await;
        assert!(out.status.success(), "{}", combined(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        // Version lines are `VERSION PRIORITY` (prefixed `***` when installed); the source
        // lines under them start with a priority and name a URL or the status file.
        text.lines()
            .skip_while(|l| !l.contains("Version table:"))
            .skip(1)
            .filter_map(|l| {
                let tokens: Vec<&str> = l.split_whitespace().filter(|t| *t != "***").collect();
                match tokens.as_slice() {
                    [version, priority] if priority.parse::<i32>().is_ok() => {
                        Some((*version).to_owned())
                    }
                    _ => None,
                }
            })
            .collect()
    }

    /// Installs `spec` (`name` or `name=version`) into a private dpkg root and returns it.
    pub async fn install(&self, spec: &str) -> PathBuf {
        let root = self.dir.path().join("root");
        for sub in ["var/lib/dpkg/updates", "var/lib/dpkg/info", "var/log"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        for file in ["var/lib/dpkg/status", "var/lib/dpkg/available"] {
            if !root.join(file).exists() {
                std::fs::write(root.join(file), "").unwrap();
            }
        }
        let r = root.display().to_string();
        let args = [
            "-o".to_owned(),
            format!("Dir::State::status={r}/var/lib/dpkg/status"),
            "-o".to_owned(),
            format!("DPkg::Options::=--root={r}"),
            "-o".to_owned(),
            format!("DPkg::Options::=--admindir={r}/var/lib/dpkg"),
            "-o".to_owned(),
            "DPkg::Options::=--force-script-chrootless".to_owned(),
            "-o".to_owned(),
            format!("DPkg::Options::=--log={r}/var/log/dpkg.log"),
            "-o".to_owned(),
            "DPkg::Chroot-Directory=/".to_owned(),
            "-o".to_owned(),
            "Dpkg::Use-Pty=0".to_owned(),
            "install".to_owned(),
            "-y".to_owned(),
            "--allow-downgrades".to_owned(),
            spec.to_owned(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.run("apt-get", &args).await;
        assert!(
            out.status.success(),
            "apt-get install {spec} failed:\n{}",
            combined(&out)
        );
        root
    }
}

/// A real apt for the repository at `repository` (`BASE/OWNER/NAME`), reading its tree of `os`
/// at `dist` and trusting the key the repository serves.
pub async fn apt_trusting(repository: &str, os: &str, dist: &str) -> Apt {
    let armored = reqwest::get(format!("{repository}/gpgkey"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    Apt::new(
        &format!("{repository}/{os}/"),
        dist,
        &dearmor(&armored).await,
    )
}

pub fn combined(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Converts an armored key to the binary form apt's `signed-by` takes, with the real gpg.
pub async fn dearmor(armored: &str) -> Vec<u8> {
    use tokio::io::AsyncWriteExt;
    let home = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new("gpg")
        .args(["--batch", "--dearmor"])
        .env("GNUPGHOME", home.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gpg runs (scripts/test installs gnupg)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(armored.as_bytes())
        .await
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success());
    out.stdout
}
