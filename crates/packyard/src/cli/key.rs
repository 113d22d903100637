//! `packyard key list|rotate|retire|extend|import|export`: a repository's signing keys, on the
//! configured database and storage (also while servers run), or through API v1 of the server
//! `--url`, `--token` or the client configuration names; as text or `--json`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::json;

use super::ConfigArgs;
use super::client::Remote;
use crate::app::App;
use crate::audit::Actor;
use crate::client::http::{Api, Retry};
use crate::db::repos::Repo;
use crate::keys::{self, Adoption, KeyChange, KeyView};
use crate::sign::KeyAlgorithm;

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Every signing key of a repository with its state and expiry, and how many hosts have
    /// the keyring package that carries the newest key
    List {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        remote: Remote,
        /// The repository, OWNER/REPO
        repository: String,
        #[arg(long)]
        json: bool,
    },
    /// Make a new key that signs alongside the current ones from the next publish (queued now
    /// for every target); the current keys become `retiring`
    Rotate {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        remote: Remote,
        repository: String,
        /// rsa4096 or ed25519 [default: the configured signing_key_algorithm]
        #[arg(long)]
        algorithm: Option<KeyAlgorithm>,
        /// How long the new key is valid [default: the configured signing_key_days]
        #[arg(long)]
        days: Option<u32>,
        /// Only publish the new key in the keyring package; the next `rotate` makes it sign
        #[arg(long)]
        stage: bool,
        #[arg(long)]
        json: bool,
    },
    /// Stop signing with a key and drop it from the keyring package; refused for the last
    /// usable key and while hosts lack the keyring with the newer key
    Retire {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        remote: Remote,
        repository: String,
        /// The key's fingerprint (or its last 16 hex digits)
        fingerprint: String,
        /// Retire even though hosts that read the repository lately lack the newer key
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// Give a key a later expiry (a new self-signature, same fingerprint); prefer `rotate`
    /// unless expiry is close: dnf hosts never pick up an extension
    Extend {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        remote: Remote,
        repository: String,
        fingerprint: String,
        /// Days from now until the key expires
        #[arg(long)]
        days: u32,
        #[arg(long)]
        json: bool,
    },
    /// Add an armored private key made elsewhere (without a passphrase); it signs from the
    /// next publish and the current keys become `retiring`
    Import {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        remote: Remote,
        repository: String,
        /// The armored private key, or - for standard input
        file: PathBuf,
        /// Only publish it in the keyring package; the next `rotate` makes it sign
        #[arg(long)]
        stage: bool,
        #[arg(long)]
        json: bool,
    },
    /// Print the public keys of a repository (those not retired), armored
    Export {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        remote: Remote,
        repository: String,
        /// Only this key
        #[arg(long)]
        fingerprint: Option<String>,
    },
}

pub async fn run(command: KeyCommand) -> Result<()> {
    match command {
        KeyCommand::List {
            config,
            remote,
            repository,
            json,
        } => {
            let keys = Keys::open(&config, &remote, &repository).await?;
            let (keys, adoption) = keys.list().await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "keys": keys, "adoption": adoption }))?
                );
                return Ok(());
            }
            print_list(&keys, &adoption);
            Ok(())
        }
        KeyCommand::Rotate {
            config,
            remote,
            repository,
            algorithm,
            days,
            stage,
            json,
        } => {
            let keys = Keys::open(&config, &remote, &repository).await?;
            let change = keys.rotate(algorithm, days, stage).await;
            report(change, json, |c| {
                if stage {
                    format!(
                        "staged new key {}: keyring package version {} carries it; `packyard key rotate {repository}` makes it sign",
                        c.fingerprint, c.keyring_version
                    )
                } else {
                    format!(
                        "new key {} signs from the next publish, alongside the previous keys (now retiring); \
                         keyring package version {} carries it; {} target(s) queued. \
                         Retire the old key with `packyard key retire {repository} FINGERPRINT` once hosts have it (`packyard key list {repository}`)",
                        c.fingerprint, c.keyring_version, c.targets_queued
                    )
                }
            })
        }
        KeyCommand::Retire {
            config,
            remote,
            repository,
            fingerprint,
            force,
            json,
        } => {
            let keys = Keys::open(&config, &remote, &repository).await?;
            let change = keys.retire(&fingerprint, force).await;
            report(change, json, |c| {
                format!(
                    "retired {}: it no longer signs and keyring package version {} leaves it out; {} target(s) queued",
                    c.fingerprint, c.keyring_version, c.targets_queued
                )
            })
        }
        KeyCommand::Extend {
            config,
            remote,
            repository,
            fingerprint,
            days,
            json,
        } => {
            let keys = Keys::open(&config, &remote, &repository).await?;
            let change = keys.extend(&fingerprint, days).await;
            report(change, json, |c| {
                format!(
                    "extended {} by a new self-signature; it now expires in {days} days. Keyring package version {} and /gpgkey carry it; {} target(s) queued",
                    c.fingerprint, c.keyring_version, c.targets_queued
                )
            })
        }
        KeyCommand::Import {
            config,
            remote,
            repository,
            file,
            stage,
            json,
        } => {
            let armored = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading standard input")?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let keys = Keys::open(&config, &remote, &repository).await?;
            let change = keys.import(&armored, stage).await;
            report(change, json, |c| {
                format!(
                    "imported {}{}; keyring package version {} carries it; {} target(s) queued",
                    c.fingerprint,
                    if stage {
                        " (staged)"
                    } else {
                        ": it signs from the next publish"
                    },
                    c.keyring_version,
                    c.targets_queued
                )
            })
        }
        KeyCommand::Export {
            config,
            remote,
            repository,
            fingerprint,
        } => {
            let keys = Keys::open(&config, &remote, &repository).await?;
            print!("{}", keys.export(fingerprint.as_deref()).await?);
            Ok(())
        }
    }
}

fn print_list(keys: &[KeyView], adoption: &Adoption) {
    println!(
        "{:<40}  {:<8}  {:<10}  {:<10}  {:>9}  STATE",
        "FINGERPRINT", "ALGO", "CREATED", "EXPIRES", "DAYS LEFT"
    );
    for key in keys {
        let state = if key.state != "retired" && key.state != "next" && !key.signing {
            format!("{} (expired: not signing)", key.state)
        } else {
            key.state.clone()
        };
        println!(
            "{:<40}  {:<8}  {:<10}  {:<10}  {:>9}  {state}",
            key.fingerprint,
            key.algorithm,
            keys::date(key.created_at),
            key.expires_at.map_or("never".into(), keys::date),
            key.days_left.map_or("-".into(), |d| d.to_string()),
        );
    }
    println!(
        "adoption: {} of {} hosts that read the repository in the last {} days fetched keyring package version {} or later",
        adoption.adopted, adoption.hosts, adoption.window_days, adoption.keyring_version
    );
}

/// A repository's keys, on the data folder (each change in the audit log as done locally) or
/// through a server's API.
enum Keys {
    Local(App, Repo),
    Remote { api: Api, path: String },
}

impl Keys {
    async fn open(config: &ConfigArgs, remote: &Remote, repository: &str) -> Result<Keys> {
        let (owner, name) = repository
            .split_once('/')
            .ok_or_else(|| anyhow::anyhow!("the repository is OWNER/REPO, not {repository:?}"))?;
        if super::client_form(config, remote) {
            return Ok(Keys::Remote {
                api: remote.api()?,
                path: format!("/api/v1/repos/{owner}/{name}/gpg_keys"),
            });
        }
        let (app, repo) = super::open_repo(config, repository).await?;
        Ok(Keys::Local(app, repo))
    }

    async fn list(&self) -> Result<(Vec<KeyView>, Adoption)> {
        match self {
            Keys::Local(app, repo) => keys::list(app, repo).await,
            Keys::Remote { api, path } => {
                #[derive(serde::Deserialize)]
                struct Listing {
                    keys: Vec<KeyView>,
                    adoption: Adoption,
                }
                let listing: Listing = api.get(&format!("{path}/signing.json")).await?;
                Ok((listing.keys, listing.adoption))
            }
        }
    }

    /// Applies a change here (`action` in the audit log), or asks the server to
    /// (`ACTION.json` with `form`).
    async fn change(
        &self,
        action: &'static str,
        fingerprint: Option<&str>,
        form: Vec<(&str, String)>,
        local: impl AsyncFnOnce(&App, &Repo) -> Result<KeyChange, keys::KeyError>,
    ) -> Result<KeyChange> {
        match self {
            Keys::Local(app, repo) => {
                let change = local(app, repo).await;
                keys::audit(
                    app,
                    Actor::local(),
                    None,
                    repo,
                    action,
                    fingerprint,
                    &change,
                )
                .await;
                Ok(change?)
            }
            Keys::Remote { api, path } => {
                let action = action.trim_start_matches("key.");
                let url = match fingerprint {
                    Some(fingerprint) => format!("{path}/{fingerprint}/{action}.json"),
                    None => format!("{path}/{action}.json"),
                };
                api.post_form(&url, Retry::OnConnect, &form).await
            }
        }
    }

    async fn rotate(
        &self,
        algorithm: Option<KeyAlgorithm>,
        days: Option<u32>,
        stage: bool,
    ) -> Result<KeyChange> {
        let mut form = vec![("stage", stage.to_string())];
        if let Some(algorithm) = algorithm {
            form.push(("algorithm", algorithm.name().to_owned()));
        }
        if let Some(days) = days {
            form.push(("days", days.to_string()));
        }
        self.change("key.rotate", None, form, async |app, repo| {
            keys::rotate(app, repo, algorithm, days, stage).await
        })
        .await
    }

    async fn retire(&self, fingerprint: &str, force: bool) -> Result<KeyChange> {
        let form = vec![("force", force.to_string())];
        self.change("key.retire", Some(fingerprint), form, async |app, repo| {
            keys::retire(app, repo, fingerprint, force).await
        })
        .await
    }

    async fn extend(&self, fingerprint: &str, days: u32) -> Result<KeyChange> {
        let form = vec![("days", days.to_string())];
        self.change("key.extend", Some(fingerprint), form, async |app, repo| {
            keys::extend(app, repo, fingerprint, days).await
        })
        .await
    }

    async fn import(&self, armored: &str, stage: bool) -> Result<KeyChange> {
        let form = vec![
            ("keydata", armored.to_owned()),
            ("stage", stage.to_string()),
        ];
        self.change("key.import", None, form, async |app, repo| {
            keys::import(app, repo, armored, stage).await
        })
        .await
    }

    /// The armored public keys not retired, or the one key asked for.
    async fn export(&self, fingerprint: Option<&str>) -> Result<String> {
        match self {
            Keys::Local(app, repo) => Ok(keys::export(app, repo, fingerprint).await?),
            Keys::Remote { api, path } => {
                let wanted: Vec<String> = match fingerprint {
                    Some(fingerprint) => vec![fingerprint.to_owned()],
                    None => self
                        .list()
                        .await?
                        .0
                        .into_iter()
                        .filter(|k| k.state != "retired")
                        .map(|k| k.fingerprint)
                        .collect(),
                };
                let mut armored = String::new();
                for fingerprint in wanted {
                    let response = api
                        .send(
                            reqwest::Method::GET,
                            &format!("{path}/{fingerprint}/export.asc"),
                            Retry::Always,
                            |r| r,
                        )
                        .await?;
                    armored.push_str(&response.text().await?);
                }
                Ok(armored)
            }
        }
    }
}

/// Prints what a key command changed (text, or JSON with `json`), its warnings on standard
/// error; a refusal is the command's error.
fn report(
    change: Result<KeyChange>,
    json: bool,
    text: impl FnOnce(&KeyChange) -> String,
) -> Result<()> {
    let change = change?;
    if json {
        println!("{}", serde_json::to_string_pretty(&change)?);
    } else {
        println!("{}", text(&change));
    }
    for warning in &change.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(())
}
