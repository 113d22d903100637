//! Settings, layered: built-in defaults < TOML file (`--config`) < `PACKYARD_*` environment
//! variables < command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::sign::KeyAlgorithm;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where blobs, temporary uploads and (by default) the SQLite database live.
    pub data_dir: PathBuf,
    /// `postgres://...` to keep metadata in PostgreSQL; unset means SQLite in `data_dir`.
    pub database_url: Option<String>,
    pub listen: SocketAddr,
    /// The URL clients reach this server at, used in API answers; derived from the request's
    /// `Host` header when unset.
    pub public_url: Option<String>,
    /// Largest package accepted by a push, in bytes.
    pub max_upload_bytes: u64,
    /// How long superseded index files stay reachable by hash, in seconds.
    pub index_grace_secs: u64,
    /// Index workers in this process.
    pub index_workers: usize,
    pub signing_key_algorithm: KeyAlgorithm,
    /// Lifetime of new signing keys, in days.
    pub signing_key_days: u32,
    /// `json` or `text`.
    pub log_format: String,
    /// Failed authentications a client address may make per minute before it gets 429.
    pub max_auth_failures_per_minute: u32,
    /// Base64 of the 32-byte key that seals signing keys at rest; unset means
    /// `data_dir/secret.key`, generated on first start.
    pub secret_key: Option<String>,
    /// What this process does: everything, the API, repository reads, or index work.
    pub role: Role,
    /// Where blobs live: `local` (under `data_dir`) or `s3://BUCKET[/PREFIX]`.
    pub storage: String,
    /// The S3 endpoint, for S3-compatible stores other than AWS (`http://minio:9000`).
    pub s3_endpoint: Option<String>,
    /// The S3 region; unset means `AWS_DEFAULT_REGION` or `us-east-1`.
    pub s3_region: Option<String>,
    /// Address buckets as `ENDPOINT/BUCKET` (most S3-compatible stores) rather than
    /// `BUCKET.ENDPOINT`.
    pub s3_path_style: bool,
    /// S3 credentials; unset means the usual `AWS_*` environment variables.
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<String>,
    /// How package files stored in S3 are served: `redirect` (302 to a presigned URL) or
    /// `proxy` (streamed through this process).
    pub download_mode: DownloadMode,
    /// How often a failed S3 request (a 5xx, `SlowDown`, a reset connection, a timeout) is tried
    /// again before the push or read fails with 503, and for how long at most, in seconds.
    pub s3_retries: usize,
    pub s3_retry_timeout_secs: u64,
    /// How long one S3 request may take, in seconds, before it counts as failed (a stalled
    /// connection).
    pub s3_request_timeout_secs: u64,
    /// How long a presigned download URL stays valid, in seconds.
    pub download_url_expiry_secs: u64,
    /// How long a worker holds a job before another may take it over; renewed while it runs.
    pub job_lease_secs: u64,
    /// Memory for the bytes of small files served often (pool files, index files), in MiB;
    /// 0 keeps none.
    pub cache_mib: u64,
    /// A publish stores the index chunks it compresses whenever they hold this many MiB,
    /// rather than holding them all until its commit (a rebuild of a million packages
    /// compresses 100 to 200 MiB of them); 0 stores each as soon as it is compressed.
    pub index_write_ahead_mib: u64,
    /// How long repository reads trust what they cached without hearing of a change, in
    /// milliseconds. Changes made by this deployment's processes are heard at once (on
    /// PostgreSQL through `LISTEN`); this bounds what is not, such as another process on
    /// the same SQLite file.
    pub cache_ttl_ms: u64,
    /// A bearer token `/metrics` asks for; unset means anyone who reaches the listener may
    /// scrape it.
    pub metrics_token: Option<String>,
    /// On shutdown, how long `/readyz` answers 503 and responses close their connections
    /// while the listener still accepts, in milliseconds.
    pub shutdown_drain_ms: u64,
    /// Then how long requests in flight (uploads included) may take to finish, in seconds.
    pub shutdown_timeout_secs: u64,
    /// How long a client may take to send a request's headers, in seconds; a connection that
    /// takes longer (a slowloris client) is closed.
    pub request_header_timeout_secs: u64,
    /// How long an upload may go without sending a byte, in seconds, before it is refused
    /// (408) and its staged bytes dropped.
    pub upload_idle_timeout_secs: u64,
    /// Uploads received at once by this process; more are refused with 503 and
    /// `Retry-After` until one ends.
    pub max_concurrent_uploads: usize,
    /// Hosts webhooks may be delivered to although they resolve to loopback, link-local or
    /// private addresses (refused otherwise, so a repository owner cannot reach the
    /// deployment's own network).
    pub webhook_allow_hosts: Vec<String>,
    /// How long the first retry of a failed webhook delivery waits, in milliseconds; each next
    /// one waits four times longer, at most an hour, for 24 hours.
    pub webhook_backoff_ms: u64,
}

/// The parts of Packyard a process runs. Any number of processes of each role may share one
/// database and one blob store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// API, repository reads and index workers in one process (the embedded default).
    All,
    /// `/api/v1`: pushes, repositories, tokens.
    Api,
    /// Repository reads and install scripts.
    Web,
    /// Index workers and the collector; serves only `/healthz` and `/readyz`.
    Worker,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Api => "api",
            Role::Web => "web",
            Role::Worker => "worker",
        }
    }

    pub fn serves_api(self) -> bool {
        matches!(self, Role::All | Role::Api)
    }

    pub fn serves_repositories(self) -> bool {
        matches!(self, Role::All | Role::Web)
    }

    pub fn runs_workers(self) -> bool {
        matches!(self, Role::All | Role::Worker)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DownloadMode {
    Redirect,
    Proxy,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("packyard-data"),
            database_url: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            max_upload_bytes: 4 << 30,
            index_grace_secs: 3600,
            index_workers: 1,
            signing_key_algorithm: KeyAlgorithm::Rsa4096,
            signing_key_days: 1826,
            log_format: "text".into(),
            max_auth_failures_per_minute: 30,
            secret_key: None,
            role: Role::All,
            storage: "local".into(),
            s3_endpoint: None,
            s3_region: None,
            s3_path_style: true,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            download_mode: DownloadMode::Redirect,
            download_url_expiry_secs: 300,
            s3_retries: 10,
            s3_retry_timeout_secs: 180,
            s3_request_timeout_secs: 30,
            job_lease_secs: 60,
            cache_mib: 64,
            index_write_ahead_mib: 4,
            cache_ttl_ms: 1000,
            metrics_token: None,
            shutdown_drain_ms: 2000,
            shutdown_timeout_secs: 60,
            request_header_timeout_secs: 30,
            upload_idle_timeout_secs: 60,
            max_concurrent_uploads: 64,
            webhook_allow_hosts: Vec::new(),
            webhook_backoff_ms: 5000,
        }
    }
}

/// Flags that override the file and the environment when given.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_endpoint: Option<String>,
}

/// The settings `PACKYARD_*` variables may set; other `PACKYARD_*` variables (a test database
/// URL, say) belong to other programs.
const ENV_KEYS: &[&str] = &[
    "data_dir",
    "database_url",
    "listen",
    "public_url",
    "max_upload_bytes",
    "index_grace_secs",
    "index_workers",
    "signing_key_algorithm",
    "signing_key_days",
    "log_format",
    "max_auth_failures_per_minute",
    "secret_key",
    "role",
    "storage",
    "s3_endpoint",
    "s3_region",
    "s3_path_style",
    "s3_access_key_id",
    "s3_secret_access_key",
    "download_mode",
    "download_url_expiry_secs",
    "s3_retries",
    "s3_retry_timeout_secs",
    "s3_request_timeout_secs",
    "job_lease_secs",
    "cache_mib",
    "index_write_ahead_mib",
    "cache_ttl_ms",
    "metrics_token",
    "shutdown_drain_ms",
    "shutdown_timeout_secs",
    "request_header_timeout_secs",
    "upload_idle_timeout_secs",
    "max_concurrent_uploads",
    "webhook_allow_hosts",
    "webhook_backoff_ms",
];

impl Config {
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            anyhow::ensure!(
                file.exists(),
                "config file {} does not exist",
                file.display()
            );
            figment = figment.merge(Toml::file(file));
        }
        let config: Config = figment
            .merge(Env::prefixed("PACKYARD_").only(ENV_KEYS))
            .merge(Serialized::defaults(overrides))
            .extract()
            .context("invalid configuration")?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot, so a mistake stops start-up with a clear message.
    fn validate(&self) -> Result<()> {
        anyhow::ensure!(
            self.max_upload_bytes > 0,
            "max_upload_bytes must be above 0"
        );
        anyhow::ensure!(
            self.signing_key_days > 0,
            "signing_key_days must be above 0"
        );
        anyhow::ensure!(
            self.job_lease_secs >= 3,
            "job_lease_secs must be at least 3 (it is renewed every third of it)"
        );
        anyhow::ensure!(
            (1..=7 * 86_400).contains(&self.download_url_expiry_secs),
            "download_url_expiry_secs must be between 1 and 604800 (S3 allows at most a week)"
        );
        self.storage_location()?;
        Ok(())
    }

    /// Where blobs live, parsed from `storage`.
    pub fn storage_location(&self) -> Result<StorageLocation> {
        if self.storage == "local" {
            return Ok(StorageLocation::Local);
        }
        let Some(rest) = self.storage.strip_prefix("s3://") else {
            anyhow::bail!(
                "storage must be \"local\" or \"s3://BUCKET[/PREFIX]\", not {:?}",
                self.storage
            );
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        anyhow::ensure!(
            valid_bucket,
            "{bucket:?} is not an S3 bucket name (3 to 63 of a-z, 0-9, '-', '.')"
        );
        Ok(StorageLocation::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        })
    }

    /// The configured database, or SQLite in the data folder.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("packyard.db").display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_flags_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("packyard.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\nindex_grace_secs = 5\n").unwrap();
        let config = Config::load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.index_grace_secs, 5);

        let flags = Overrides {
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..Overrides::default()
        };
        let config = Config::load(Some(&file), &flags).unwrap();
        assert_eq!(config.listen.port(), 9100);
    }

    #[test]
    fn the_example_file_parses_and_lists_every_setting() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packyard.example.toml");
        let text = std::fs::read_to_string(&example).unwrap();
        // Uncommented, the example must still be a valid configuration.
        let uncommented: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("# ").filter(|l| l.contains(" = ")))
            .map(|l| format!("{l}\n"))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("packyard.toml");
        std::fs::write(&file, &uncommented).unwrap();
        let config = Config::load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(config.index_grace_secs, Config::default().index_grace_secs);
        for key in ENV_KEYS {
            assert!(
                uncommented.contains(&format!("{key} = ")),
                "packyard.example.toml does not show {key}"
            );
        }
    }

    #[test]
    fn storage_locations() {
        let with = |storage: &str| Config {
            storage: storage.into(),
            ..Config::default()
        };
        assert_eq!(
            with("local").storage_location().unwrap(),
            StorageLocation::Local
        );
        assert_eq!(
            with("s3://packages/prod/").storage_location().unwrap(),
            StorageLocation::S3 {
                bucket: "packages".into(),
                prefix: "prod".into()
            }
        );
        for wrong in ["s3://", "s3://Upper", "gs://bucket", "/var/lib/packyard"] {
            assert!(with(wrong).validate().is_err(), "{wrong} was accepted");
        }
    }

    #[test]
    fn unknown_settings_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("packyard.toml");
        std::fs::write(&file, "lisen = \"127.0.0.1:9000\"\n").unwrap();
        assert!(Config::load(Some(&file), &Overrides::default()).is_err());
    }
}

/// Where blobs live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageLocation {
    Local,
    S3 { bucket: String, prefix: String },
}

/// A duration such as `90`, `90s`, `30m`, `24h` or `7d`, in seconds.
pub fn parse_duration_secs(text: &str) -> Option<i64> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    number.parse::<i64>().ok()?.checked_mul(scale)
}

#[cfg(test)]
mod duration_tests {
    use super::parse_duration_secs;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_secs("90"), Some(90));
        assert_eq!(parse_duration_secs("24h"), Some(86_400));
        assert_eq!(parse_duration_secs("7d"), Some(604_800));
        assert_eq!(parse_duration_secs("5 weeks"), None);
        assert_eq!(parse_duration_secs("h"), None);
    }
}
