//! `packyard key list|rotate|retire|extend|import|export`: a repository's signing keys, on the
//! configured database and storage (also while servers run), as text or `--json`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::json;

use super::ConfigArgs;
use crate::app::App;
use crate::audit::Actor;
use crate::db::{self, repos::Repo};
use crate::keys::{self, KeyChange, KeyError};
use crate::sign::KeyAlgorithm;

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Every signing key of a repository with its state and expiry, and how many hosts have
    /// the keyring package that carries the newest key
    List {
        #[command(flatten)]
        config: ConfigArgs,
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
            repository,
            json,
        } => {
            let (app, repo) = open(&config, &repository).await?;
            let (keys, adoption) = keys::list(&app, &repo).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "keys": keys, "adoption": adoption }))?
                );
                return Ok(());
            }
            println!(
                "{:<40}  {:<8}  {:<10}  {:<10}  {:>9}  STATE",
                "FINGERPRINT", "ALGO", "CREATED", "EXPIRES", "DAYS LEFT"
            );
            for key in &keys {
                let state = if key.state != "retired" && key.state != "next" && !key.signing {
                    format!("{} (expired: not signing)", key.state)
                } else {
                    key.state.to_owned()
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
            Ok(())
        }
        KeyCommand::Rotate {
            config,
            repository,
            algorithm,
            days,
            stage,
            json,
        } => {
            let (app, repo) = open(&config, &repository).await?;
            let change = keys::rotate(&app, &repo, algorithm, days, stage).await;
            keys::audit(
                &app,
                Actor::local(),
                None,
                &repo,
                "key.rotate",
                None,
                &change,
            )
            .await;
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
            repository,
            fingerprint,
            force,
            json,
        } => {
            let (app, repo) = open(&config, &repository).await?;
            let change = keys::retire(&app, &repo, &fingerprint, force).await;
            keys::audit(
                &app,
                Actor::local(),
                None,
                &repo,
                "key.retire",
                Some(&fingerprint),
                &change,
            )
            .await;
            report(change, json, |c| {
                format!(
                    "retired {}: it no longer signs and keyring package version {} leaves it out; {} target(s) queued",
                    c.fingerprint, c.keyring_version, c.targets_queued
                )
            })
        }
        KeyCommand::Extend {
            config,
            repository,
            fingerprint,
            days,
            json,
        } => {
            let (app, repo) = open(&config, &repository).await?;
            let change = keys::extend(&app, &repo, &fingerprint, days).await;
            keys::audit(
                &app,
                Actor::local(),
                None,
                &repo,
                "key.extend",
                Some(&fingerprint),
                &change,
            )
            .await;
            report(change, json, |c| {
                format!(
                    "extended {} by a new self-signature; it now expires in {days} days. Keyring package version {} and /gpgkey carry it; {} target(s) queued",
                    c.fingerprint, c.keyring_version, c.targets_queued
                )
            })
        }
        KeyCommand::Import {
            config,
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
            let (app, repo) = open(&config, &repository).await?;
            let change = keys::import(&app, &repo, &armored, stage).await;
            keys::audit(
                &app,
                Actor::local(),
                None,
                &repo,
                "key.import",
                None,
                &change,
            )
            .await;
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
            repository,
            fingerprint,
        } => {
            let (app, repo) = open(&config, &repository).await?;
            let armored = keys::export(&app, &repo, fingerprint.as_deref()).await?;
            print!("{armored}");
            Ok(())
        }
    }
}

async fn open(config: &ConfigArgs, repository: &str) -> Result<(App, Repo)> {
    let app = App::open(config.load()?).await?;
    let (owner, name) = repository
        .split_once('/')
        .ok_or_else(|| anyhow::anyhow!("the repository is OWNER/REPO, not {repository:?}"))?;
    let repo = db::repos::by_owner_and_name(&app.db, owner, name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no repository {repository}"))?;
    Ok((app, repo))
}

/// Prints what a key command changed (text, or JSON with `json`), its warnings on standard
/// error; a refusal is the command's error.
fn report(
    change: Result<KeyChange, KeyError>,
    json: bool,
    text: impl FnOnce(&KeyChange) -> String,
) -> Result<()> {
    let change = change.map_err(anyhow::Error::from)?;
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
