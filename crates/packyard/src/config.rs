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
            signing_key_days: 730,
            log_format: "text".into(),
            max_auth_failures_per_minute: 30,
            secret_key: None,
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
        figment
            .merge(Env::prefixed("PACKYARD_").only(ENV_KEYS))
            .merge(Serialized::defaults(overrides))
            .extract()
            .context("invalid configuration")
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
    fn unknown_settings_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("packyard.toml");
        std::fs::write(&file, "lisen = \"127.0.0.1:9000\"\n").unwrap();
        assert!(Config::load(Some(&file), &Overrides::default()).is_err());
    }
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
