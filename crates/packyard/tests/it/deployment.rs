//! The real binary as separate processes sharing one database and one blob store, the way a
//! scaled-out deployment runs: `Deployment` holds what they share, `Server` is one process.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::support::{TestDatabase, TestStorage, free_port};

pub const BIN: &str = env!("CARGO_BIN_EXE_packyard");

pub struct Deployment {
    pub dir: TempDir,
    /// The PostgreSQL database, when the suite runs on PostgreSQL; SQLite in `data` otherwise.
    pub database: Option<TestDatabase>,
    pub storage: Option<TestStorage>,
}

impl Deployment {
    /// On the backends the suite runs on: PostgreSQL and S3 when asked for, else SQLite and
    /// the local data folder.
    pub async fn new() -> Deployment {
        Deployment {
            dir: tempfile::tempdir().unwrap(),
            database: TestDatabase::create().await,
            storage: TestStorage::create().await,
        }
    }

    /// The data folder of the process called `name`: its staging area, and with SQLite and
    /// local storage the whole deployment's data, so every process uses the same one.
    pub fn data_dir(&self, name: &str) -> PathBuf {
        if self.database.is_some() && self.storage.is_some() {
            self.dir.path().join(name)
        } else {
            self.dir.path().join("data")
        }
    }

    /// `packyard ARGS` with the deployment's settings in its environment.
    pub fn command(&self, data_dir: &Path) -> Command {
        let mut command = Command::new(BIN);
        command.envs(self.env(data_dir));
        command
    }

    /// The deployment's settings as `PACKYARD_*` variables, for a process of `data_dir`.
    pub fn env(&self, data_dir: &Path) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("PACKYARD_DATA_DIR", data_dir.display().to_string()),
            ("PACKYARD_SIGNING_KEY_ALGORITHM", "ed25519".into()),
            // Every process must open the signing keys the others sealed.
            (
                "PACKYARD_SECRET_KEY",
                "cGFja3lhcmQtdGVzdC1kZXBsb3ltZW50LXNlY3JldCE=".into(),
            ),
        ];
        if let Some(database) = &self.database {
            env.push(("PACKYARD_DATABASE_URL", database.url.clone()));
            // Processes hear each other's changes through PostgreSQL: cached reads need not
            // expire, and any announcement that goes missing shows as a stale index.
            env.push(("PACKYARD_CACHE_TTL_MS", "3600000".into()));
        }
        if let Some(storage) = &self.storage {
            env.extend(storage.env());
        }
        env
    }

    /// Starts `packyard serve --role ROLE` on a free port and waits until it is ready.
    pub async fn serve(&self, name: &str, role: &str, env: &[(&str, &str)]) -> Server {
        self.serve_on(name, role, free_port(), env).await
    }

    pub async fn serve_on(
        &self,
        name: &str,
        role: &str,
        port: u16,
        env: &[(&str, &str)],
    ) -> Server {
        let mut command = self.command(&self.data_dir(name));
        command
            .args(["serve", "--role", role, "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .envs(env.iter().copied());
        let server = Server::launch(name, command, port, self.dir.path());
        assert!(
            server.ready_within(Duration::from_secs(30)).await,
            "{name} did not become ready:\n{}",
            server.log()
        );
        server
    }

    /// A new API token for `admin`, made by `packyard admin create-token`.
    pub async fn create_token(&self) -> String {
        create_token(self.command(&self.data_dir("admin"))).await
    }
}

/// `COMMAND admin create-token` (`command` being a `packyard` with its settings): the token.
pub async fn create_token(mut command: Command) -> String {
    let output = command
        .args(["admin", "create-token"])
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "admin create-token: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Creates the public repository `NAME` of the token's user through packagecloud's API on the
/// server at `base`.
pub async fn create_repository(base: &str, token: &str, name: &str) {
    let created = reqwest::Client::new()
        .post(format!("{base}/api/v1/repos.json"))
        .basic_auth(token, Some(""))
        .form(&[("repository[name]", name)])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "creating {name}");
}

/// Pushes a generated deb `NAME` 1.0 for amd64 to `admin/stable`'s bookworm, as
/// packagecloud's client does.
pub async fn push_deb(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
) -> reqwest::Result<reqwest::Response> {
    use crate::fixtures::{BOOKWORM, deb, deb_filename};
    let form = reqwest::multipart::Form::new()
        .text("package[distro_version_id]", BOOKWORM.to_string())
        .part(
            "package[package_file]",
            reqwest::multipart::Part::bytes(deb(name, "1.0", "amd64"))
                .file_name(deb_filename(name, "1.0", "amd64")),
        );
    client
        .post(format!("{base}/api/v1/repos/admin/stable/packages.json"))
        .basic_auth(token, Some(""))
        .multipart(form)
        .send()
        .await
}

/// Whether `BASE/readyz` answers 200 within `limit`.
pub async fn ready_within(base: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(response) = reqwest::get(format!("{base}/readyz")).await
            && response.status() == 200
        {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if let Some(database) = self.database.take() {
            database.drop_after(None);
        }
    }
}

/// One `packyard serve` process, killed when dropped.
pub struct Server {
    pub name: String,
    pub base: String,
    pub child: Child,
    log: PathBuf,
}

impl Server {
    /// Starts `command` (a `packyard serve` listening on `port`), its output in
    /// `LOG_DIR/NAME.log`, without waiting for it.
    pub fn launch(name: &str, mut command: Command, port: u16, log_dir: &Path) -> Server {
        let log = log_dir.join(format!("{name}.log"));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = command
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Server {
            name: name.to_owned(),
            base: format!("http://127.0.0.1:{port}"),
            child,
            log,
        }
    }

    /// Whether `/readyz` answers 200 within `limit`.
    pub async fn ready_within(&self, limit: Duration) -> bool {
        ready_within(&self.base, limit).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the server is running")
    }

    /// What the process has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` (`-TERM`, `-KILL`) to the process.
    pub async fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .await
            .unwrap();
        assert!(status.success(), "kill {signal} {}", self.name);
    }
}
