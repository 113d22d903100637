//! `TestApp`: a server on a free loopback port with its own data folder, plus helpers to make
//! users, repositories and pushes, and to wait for the index workers.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use packyard::app::App;
use packyard::config::{Config, DownloadMode};
use packyard::db;
use packyard::sign::KeyAlgorithm;
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub app: App,
    pub base: String,
    pub token: String,
    _dir: TempDir,
    shutdown: CancellationToken,
    client: reqwest::Client,
    /// Dropped after the app: the PostgreSQL database this test ran on, if any.
    database: Option<TestDatabase>,
    /// The S3 emulator this test's blobs are in, if any.
    pub storage: Option<TestStorage>,
}

pub struct Builder {
    config: Config,
    workers: bool,
    s3: bool,
    data_dir: Option<PathBuf>,
    /// The test configures storage itself: no emulator of the S3 variant replaces it.
    own_storage: bool,
}

impl Builder {
    pub fn key_algorithm(mut self, algorithm: KeyAlgorithm) -> Self {
        self.config.signing_key_algorithm = algorithm;
        self
    }

    /// Any other setting.
    pub fn configure(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut self.config);
        self
    }

    pub fn max_auth_failures(mut self, limit: u32) -> Self {
        self.config.max_auth_failures_per_minute = limit;
        self
    }

    pub fn max_upload_bytes(mut self, limit: u64) -> Self {
        self.config.max_upload_bytes = limit;
        self
    }

    /// Blobs in an S3 emulator, whatever storage the suite runs on.
    pub fn s3(mut self) -> Self {
        self.s3 = true;
        self
    }

    pub fn metrics_token(mut self, token: &str) -> Self {
        self.config.metrics_token = Some(token.to_owned());
        self
    }

    pub fn download_mode(mut self, mode: DownloadMode) -> Self {
        self.config.download_mode = mode;
        self
    }

    /// The data folder at `dir` (a small file system of the test's own, say) rather than in a
    /// temporary folder.
    pub fn data_dir(mut self, dir: &std::path::Path) -> Self {
        self.data_dir = Some(dir.to_owned());
        self
    }

    /// Blobs in an S3 bucket at `endpoint` (the emulator's settings), which the test starts or
    /// stops itself, whatever storage the suite runs on.
    pub fn s3_endpoint(mut self, endpoint: &str) -> Self {
        TestStorage::configure_endpoint(endpoint, &mut self.config);
        self.own_storage = true;
        self
    }

    /// No index workers: queued jobs stay queued until `run_jobs` runs them.
    pub fn without_workers(mut self) -> Self {
        self.workers = false;
        self
    }

    pub async fn start(self) -> TestApp {
        crate::logs::install();
        let dir = tempfile::tempdir().unwrap();
        let mut config = self.config;
        config.data_dir = self.data_dir.unwrap_or_else(|| dir.path().join("data"));
        let database = TestDatabase::create().await;
        config.database_url = database.as_ref().map(|d| d.url.clone());
        let storage = match (self.s3, self.own_storage) {
            (_, true) => None,
            (true, false) => Some(TestStorage::start().await),
            (false, false) => TestStorage::create().await,
        };
        if let Some(storage) = &storage {
            storage.configure(&mut config);
        }
        let app = App::open(config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let served = app.clone();
        tokio::spawn(async move {
            packyard::http::serve(listener, served, stop.cancelled_owned())
                .await
                .unwrap();
        });
        if self.workers {
            tokio::spawn(packyard::jobs::run_worker(app.clone(), shutdown.clone()));
        }
        tokio::spawn(packyard::jobs::listen_for_changes(
            app.clone(),
            shutdown.clone(),
        ));
        let user = db::users::find_or_create(&app.db, "admin").await.unwrap();
        let token = db::users::create_token(&app.db, user.id).await.unwrap();
        crate::logs::secret(&token);
        TestApp {
            app,
            base,
            token,
            _dir: dir,
            shutdown,
            client: reqwest::Client::new(),
            database,
            storage,
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let leaks = crate::logs::take_leaks();
        if !leaks.is_empty() && !std::thread::panicking() {
            panic!(
                "log lines hold a token or a private key:\n{}",
                leaks.join("")
            );
        }
        if let Some(database) = self.database.take() {
            database.drop_after(Some(self.app.db.clone()));
        }
    }
}

/// The PostgreSQL variant: with `PACKYARD_TEST_BACKEND=postgres`, each test gets a database of
/// its own on the server at `PACKYARD_TEST_DATABASE_URL`, dropped when the test ends.
pub struct TestDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl TestDatabase {
    pub fn wanted() -> Option<String> {
        let backend = std::env::var("PACKYARD_TEST_BACKEND").unwrap_or_default();
        if backend != "postgres" {
            return None;
        }
        let url = std::env::var("PACKYARD_TEST_DATABASE_URL")
            .expect("PACKYARD_TEST_BACKEND=postgres needs PACKYARD_TEST_DATABASE_URL");
        Some(url)
    }

    pub async fn create() -> Option<TestDatabase> {
        Some(TestDatabase::create_on(&TestDatabase::wanted()?).await)
    }

    /// A new database on the server of `admin_url`.
    pub async fn create_on(admin_url: &str) -> TestDatabase {
        use sqlx::Connection;
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let admin_url = admin_url.to_owned();
        let name = format!(
            "packyard_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("connecting to PACKYARD_TEST_DATABASE_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let (server, _) = admin_url
            .rsplit_once('/')
            .expect("a database URL ends in /DATABASE");
        TestDatabase {
            url: format!("{server}/{name}"),
            admin_url,
            name,
        }
    }

    /// Drops the database (ending the connections of `db`, if given), from a thread of its
    /// own because Drop cannot await. The pool is not closed first: closing waits for
    /// connections that tasks on the test's own, now blocked, runtime still hold.
    pub fn drop_after(self, db: Option<db::Db>) {
        std::thread::spawn(move || {
            use sqlx::Connection;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                drop(db);
                if let Ok(mut admin) = sqlx::PgConnection::connect(&self.admin_url).await {
                    let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut admin)
                        .await;
                }
            });
        })
        .join()
        .unwrap();
    }
}

/// The S3 variant: with `PACKYARD_TEST_STORAGE=s3`, each test keeps its blobs in an emulator
/// of its own (`s3s-fs`, which checks request signatures, so a wrongly presigned URL fails)
/// on a free loopback port.
pub struct TestStorage {
    pub endpoint: String,
    /// The folder the emulator keeps the bucket's objects in.
    pub bucket_dir: PathBuf,
    process: std::process::Child,
    _dir: TempDir,
}

impl TestStorage {
    pub const BUCKET: &str = "packyard";
    /// Every test's keys go under a prefix, so the prefix is exercised everywhere.
    pub const PREFIX: &str = "mirror";
    const ACCESS_KEY: &str = "packyard-test";
    const SECRET_KEY: &str = "packyard-test-secret";

    pub fn wanted() -> bool {
        std::env::var("PACKYARD_TEST_STORAGE").is_ok_and(|s| s == "s3")
    }

    pub async fn create() -> Option<TestStorage> {
        if !TestStorage::wanted() {
            return None;
        }
        Some(TestStorage::start().await)
    }

    /// Starts an emulator whether or not the S3 variant was asked for.
    pub async fn start() -> TestStorage {
        TestStorage::start_on(free_port()).await
    }

    /// Starts an emulator on `port`.
    pub async fn start_on(port: u16) -> TestStorage {
        let dir = tempfile::tempdir().unwrap();
        let bucket_dir = dir.path().join(TestStorage::BUCKET);
        std::fs::create_dir_all(&bucket_dir).unwrap();
        let binary = std::env::var("PACKYARD_TEST_S3S_FS").unwrap_or_else(|_| "s3s-fs".into());
        let process = std::process::Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", TestStorage::ACCESS_KEY])
            .args(["--secret-key", TestStorage::SECRET_KEY])
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {binary} (cargo install s3s-fs): {e}"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "the S3 emulator did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        TestStorage {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket_dir,
            process,
            _dir: dir,
        }
    }

    pub fn configure(&self, config: &mut Config) {
        TestStorage::configure_endpoint(&self.endpoint, config);
    }

    /// The emulator's settings for one at `endpoint`, running or not.
    pub fn configure_endpoint(endpoint: &str, config: &mut Config) {
        config.storage = TestStorage::url();
        config.s3_endpoint = Some(endpoint.to_owned());
        config.s3_region = Some("us-east-1".into());
        config.s3_access_key_id = Some(TestStorage::ACCESS_KEY.into());
        config.s3_secret_access_key = Some(TestStorage::SECRET_KEY.into());
    }

    /// The same settings as `PACKYARD_*` variables, for a server run as its own process.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PACKYARD_STORAGE", TestStorage::url()),
            ("PACKYARD_S3_ENDPOINT", self.endpoint.clone()),
            ("PACKYARD_S3_REGION", "us-east-1".into()),
            ("PACKYARD_S3_ACCESS_KEY_ID", TestStorage::ACCESS_KEY.into()),
            (
                "PACKYARD_S3_SECRET_ACCESS_KEY",
                TestStorage::SECRET_KEY.into(),
            ),
        ]
    }

    fn url() -> String {
        format!("s3://{}/{}", TestStorage::BUCKET, TestStorage::PREFIX)
    }

    /// Stops the emulator, as an outage would.
    pub fn stop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for TestStorage {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestApp {
    pub fn builder() -> Builder {
        let config = Config {
            signing_key_algorithm: KeyAlgorithm::Ed25519,
            // Tests make many failed authentications on purpose; the limit has a test of its own.
            max_auth_failures_per_minute: 10_000,
            // Cached reads expire only after an hour, so every test shows that what changes
            // what is served also drops what was cached of it.
            cache_ttl_ms: 3_600_000,
            ..Config::default()
        };
        Builder {
            config,
            workers: true,
            s3: false,
            data_dir: None,
            own_storage: false,
        }
    }

    pub async fn new() -> TestApp {
        TestApp::builder().start().await
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.app.config.data_dir.clone()
    }

    /// A token for another user, who owns nothing.
    pub async fn stranger_token(&self) -> String {
        let user = db::users::find_or_create(&self.app.db, "stranger")
            .await
            .unwrap();
        let token = db::users::create_token(&self.app.db, user.id)
            .await
            .unwrap();
        crate::logs::secret(&token);
        token
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }

    pub async fn text(&self, path: &str) -> String {
        self.get(path).send().await.unwrap().text().await.unwrap()
    }

    pub async fn json(&self, path: &str) -> Value {
        self.get(path).send().await.unwrap().json().await.unwrap()
    }

    pub async fn bytes(&self, path: &str) -> bytes::Bytes {
        self.get(path).send().await.unwrap().bytes().await.unwrap()
    }

    pub async fn status(&self, path: &str) -> reqwest::StatusCode {
        self.get(path).send().await.unwrap().status()
    }

    pub fn authed(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .basic_auth(&self.token, Some(""))
    }

    /// Posts `form` to the API path with the admin's token; the answer as JSON.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Value {
        let response = self
            .authed(reqwest::Method::POST, path)
            .form(form)
            .send()
            .await;
        response.unwrap().json().await.unwrap()
    }

    pub async fn create_repo(&self, name: &str, private: bool) -> Value {
        self.create_repo_with(
            name,
            &[("repository[private]", if private { "1" } else { "0" })],
        )
        .await
    }

    /// Creates `admin/NAME` with more `repository[...]` form fields.
    pub async fn create_repo_with(&self, name: &str, fields: &[(&str, &str)]) -> Value {
        let mut form = vec![("repository[name]", name)];
        form.extend_from_slice(fields);
        let response = self
            .authed(reqwest::Method::POST, "/api/v1/repos.json")
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "creating {name}");
        response.json().await.unwrap()
    }

    /// Pushes `bytes` as `filename` to `admin/REPO` for the distribution version `distro_id`.
    pub async fn push(
        &self,
        repo: &str,
        distro_id: i64,
        filename: &str,
        bytes: Vec<u8>,
    ) -> reqwest::Response {
        self.push_as(&self.token, repo, distro_id, filename, bytes)
            .await
    }

    pub async fn push_as(
        &self,
        token: &str,
        repo: &str,
        distro_id: i64,
        filename: &str,
        bytes: Vec<u8>,
    ) -> reqwest::Response {
        let form = Form::new()
            .text("package[distro_version_id]", distro_id.to_string())
            .part(
                "package[package_file]",
                Part::bytes(bytes).file_name(filename.to_owned()),
            );
        self.client
            .post(self.url(&format!("/api/v1/repos/admin/{repo}/packages.json")))
            .basic_auth(token, Some(""))
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn push_ok(
        &self,
        repo: &str,
        distro_id: i64,
        filename: &str,
        bytes: Vec<u8>,
    ) -> Value {
        let response = self.push(repo, distro_id, filename, bytes).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "pushing {filename}: {body}");
        body
    }

    /// The value of `admin/REPO`'s master token `name`.
    /// Destroys `filename` of `dist` (`debian/bookworm`) in the admin's repository `repo`;
    /// the answer's status.
    pub async fn destroy(&self, repo: &str, dist: &str, filename: &str) -> reqwest::StatusCode {
        let path = format!("/api/v1/repos/admin/{repo}/{dist}/{filename}");
        let response = self.authed(reqwest::Method::DELETE, &path).send().await;
        response.unwrap().status()
    }

    pub async fn master_token(&self, repo: &str, name: &str) -> String {
        let list: Value = self
            .authed(
                reqwest::Method::GET,
                &format!("/api/v1/repos/admin/{repo}/master_tokens"),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let master = list
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap();
        let value = master["value"].as_str().unwrap();
        crate::logs::secret(value);
        value.to_owned()
    }

    /// `PUT /admin/stable/raw/tool/1.0/FILE` with `body`, as `curl -T` uploads a raw file.
    pub async fn put_raw(&self, file: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.authed(
            reqwest::Method::PUT,
            &format!("/admin/stable/raw/tool/1.0/{file}"),
        )
        .body(body)
        .send()
        .await
        .unwrap()
    }

    /// A new read token of `admin/REPO`, minted by its default master token.
    pub async fn read_token(&self, repo: &str, name: &str) -> Value {
        let response = self
            .authed(
                reqwest::Method::POST,
                &format!("/api/v1/repos/admin/{repo}/master_tokens/default/read_tokens.json"),
            )
            .form(&[("read_token[name]", name)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let token: Value = response.json().await.unwrap();
        if let Some(value) = token["value"].as_str() {
            crate::logs::secret(value);
        }
        token
    }

    /// Pushes a generated `NAME_VERSION_ARCH.deb` to `admin/REPO` for debian/bookworm.
    pub async fn push_deb(&self, repo: &str, name: &str, version: &str, arch: &str) -> Value {
        let filename = crate::fixtures::deb_filename(name, version, arch);
        self.push_ok(
            repo,
            crate::fixtures::BOOKWORM,
            &filename,
            crate::fixtures::deb(name, version, arch),
        )
        .await
    }

    /// Waits until the job queue is empty.
    pub async fn wait_for_jobs(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while db::jobs::pending(&self.app.db).await.unwrap() > 0 {
            assert!(Instant::now() < deadline, "jobs did not drain within 60 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs queued jobs in this task, for apps built `without_workers`.
    pub async fn run_jobs(&self) {
        while let Some(job) = db::jobs::claim(&self.app.db, 60).await.unwrap() {
            let build = db::generations::Build::new(&self.app.instance, Some(job.claim()));
            let format = packyard::formats::PackageFormat::from_publish_job(&job.kind).unwrap();
            format
                .publish(&self.app, &job.target(), &build)
                .await
                .unwrap();
            db::jobs::complete(&self.app.db, &job).await.unwrap();
        }
    }

    /// Live package rows and stored blob files, to check that a rejected push left nothing.
    pub async fn stored(&self) -> (i64, usize) {
        let rows: i64 = self
            .app
            .db
            .scalar_i64("SELECT COUNT(*) FROM packages")
            .await
            .unwrap();
        let blobs = match &self.storage {
            Some(storage) => count_files(&storage.bucket_dir),
            None => count_files(&self.data_dir().join("blobs")),
        };
        (rows, blobs + count_files(&self.data_dir().join("tmp")))
    }

    /// Makes blob storage unreachable: the data folder replaced by a file, or the S3 emulator
    /// stopped.
    pub fn break_storage(&mut self) {
        match &mut self.storage {
            Some(storage) => storage.stop(),
            None => {
                // Moved, not deleted: the database's files stay open and may be written meanwhile.
                let data = self.data_dir();
                std::fs::rename(&data, data.with_extension("moved")).unwrap();
                std::fs::write(&data, "not a folder").unwrap();
            }
        }
    }
}

fn count_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// Runs `program` and returns its output, failing the test if it fails.
pub fn run_ok<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(program: &str, args: &[S]) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs (scripts/test installs it): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Kills a process group (a process spawned with `process_group(0)` and what it started)
/// when dropped.
pub struct KillGroup(pub u32);

impl Drop for KillGroup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .status();
    }
}
