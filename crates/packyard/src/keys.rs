//! The life of a repository's signing keys: generation (RSA-4096 takes seconds, so off the
//! async runtime), rotation with an overlap, retirement gated on hosts having the newer key,
//! extension, import of keys made elsewhere, and expiry warnings.
//!
//! Every change of the key set raises the repository's keyring version, builds the keyring
//! package of that version in each of its targets, and queues a publish of every target, all
//! in one transaction: the next `InRelease` and `repomd.xml.asc` are signed by the new set and
//! the keyring package that carries it is in the same index. Secret keys are sealed with the
//! server secret before they are stored.

use anyhow::{Context, Result};

use crate::app::App;
use crate::db::signing_keys::{KeyState, SigningKey};
use crate::db::{self, repos::Repo};
use crate::distros;
use crate::ingest::PushError;
use crate::sign::{self, GeneratedKey, ImportError, KeyAlgorithm, NEVER_EXPIRES};

/// How far back `key list` and `key retire` look for hosts that read the repository.
pub const ADOPTION_WINDOW_DAYS: i64 = 14;

/// Days before expiry at which a key is warned about.
pub const WARN_DAYS: [i64; 4] = [180, 90, 30, 7];

/// A new key for `owner/repo`, its secret part sealed, valid for `days` (the configured
/// `signing_key_days` when `None`).
pub async fn generate_for(
    app: &App,
    owner: &str,
    repo: &str,
    algorithm: Option<KeyAlgorithm>,
    days: Option<u32>,
) -> Result<GeneratedKey> {
    let user_id = format!(
        "{owner}/{repo} (Packyard repository signing key) <{owner}-{repo}@packyard.invalid>"
    );
    let algorithm = algorithm.unwrap_or(app.config.signing_key_algorithm);
    let days = days.unwrap_or(app.config.signing_key_days);
    anyhow::ensure!(days > 0, "a key must be valid for at least one day");
    let validity_secs = days.saturating_mul(86_400);
    let mut key =
        tokio::task::spawn_blocking(move || sign::generate(&user_id, algorithm, validity_secs))
            .await??;
    key.secret_armored = app.secrets.seal(&key.secret_armored)?;
    Ok(key)
}

/// The armored secret keys that sign a repository's documents now, opened. Fails, naming
/// the commands that fix it, when no key is usable: nothing is published unsigned.
pub async fn signing_secret_keys(app: &App, repo: &Repo) -> Result<Vec<String>> {
    let sealed = db::signing_keys::signing_secrets(&app.db, repo.id).await?;
    anyhow::ensure!(
        !sealed.is_empty(),
        "{owner}/{name} has no usable signing key (every active key has expired or been retired); \
         the current index stays served unchanged. Run `packyard key extend {owner}/{name} FINGERPRINT --days N` \
         to extend the newest key, or `packyard key rotate {owner}/{name}` to make a new one",
        owner = repo.owner,
        name = repo.name,
    );
    sealed.iter().map(|s| app.secrets.open(s)).collect()
}

/// Why a key command did nothing.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<PushError> for KeyError {
    fn from(e: PushError) -> KeyError {
        KeyError::Internal(anyhow::anyhow!("building the keyring package: {e}"))
    }
}

/// A key as `key list` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct KeyView {
    pub fingerprint: String,
    pub algorithm: String,
    pub created_at: i64,
    /// `None` when the key never expires.
    pub expires_at: Option<i64>,
    pub days_left: Option<i64>,
    pub state: String,
    /// Whether it signs documents made now.
    pub signing: bool,
    /// The first keyring package version that carries it.
    pub keyring_version: i64,
}

impl KeyView {
    fn of(key: &SigningKey, now: i64) -> KeyView {
        let expires_at = (key.expires_at != NEVER_EXPIRES).then_some(key.expires_at);
        KeyView {
            fingerprint: key.fingerprint.clone(),
            algorithm: sign::algorithm(&key.public_armored).unwrap_or_else(|_| "unknown".into()),
            created_at: key.created_at,
            expires_at,
            days_left: expires_at.map(|at| (at - now).div_euclid(86_400)),
            state: key.state.name().to_owned(),
            signing: key.usable_at(now),
            keyring_version: key.keyring_version,
        }
    }
}

/// How many of the hosts that read the repository lately have the keyring package that
/// carries its newest signing key.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Adoption {
    /// Hosts that fetched `InRelease`, `Release` or `repomd.xml` in the window.
    pub hosts: usize,
    /// Of those, hosts that downloaded the keyring package at `keyring_version` or later.
    pub adopted: usize,
    pub keyring_version: i64,
    pub window_days: i64,
}

impl Adoption {
    pub fn lagging(&self) -> usize {
        self.hosts - self.adopted
    }
}

/// Every key of the repository (retired ones included) and the adoption of its newest one.
pub async fn list(app: &App, repo: &Repo) -> Result<(Vec<KeyView>, Adoption)> {
    let keys = db::signing_keys::list(&app.db, repo.id).await?;
    let now = db::now();
    let views = keys.iter().map(|k| KeyView::of(k, now)).collect();
    let newest = keys
        .iter()
        .filter(|k| k.usable_at(now))
        .map(|k| k.keyring_version)
        .max()
        .unwrap_or(repo.keyring_version);
    Ok((views, adoption(app, repo, newest).await?))
}

/// Hosts seen in the window, and which of them fetched keyring version `version` or later.
pub async fn adoption(app: &App, repo: &Repo, version: i64) -> Result<Adoption> {
    let since = db::now() - ADOPTION_WINDOW_DAYS * 86_400;
    let hosts = db::downloads::index_hosts_since(&app.db, repo.id, since).await?;
    let name = crate::keyring::package_name(&repo.owner, &repo.name);
    let fetched = db::downloads::hosts_with_versions(&app.db, repo.id, &name).await?;
    let adopted_hosts: std::collections::HashSet<&str> = fetched
        .iter()
        .filter(|(_, v)| crate::keyring::version_number(v).is_some_and(|v| v >= version))
        .map(|(host, _)| host.as_str())
        .collect();
    let adopted = hosts
        .iter()
        .filter(|h| adopted_hosts.contains(h.as_str()))
        .count();
    Ok(Adoption {
        hosts: hosts.len(),
        adopted,
        keyring_version: version,
        window_days: ADOPTION_WINDOW_DAYS,
    })
}

/// What a key command changed.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct KeyChange {
    /// The key the command made or acted on.
    pub fingerprint: String,
    pub keyring_version: i64,
    /// Targets queued for publishing with the new key set.
    pub targets_queued: usize,
    pub warnings: Vec<String>,
}

/// One edit of the key set, applied inside the change's transaction.
enum Edit {
    Add { key: GeneratedKey, state: KeyState },
    State { id: i64, state: KeyState },
    Material { id: i64, key: GeneratedKey },
}

/// Applies `edits` as one change of the key set: a new keyring version, its keyring package
/// in every target, and a publish of every target, all committed together.
async fn apply(app: &App, repo: &Repo, edits: Vec<Edit>) -> Result<(i64, usize), KeyError> {
    // Read now rather than from `repo`, which may come from the read cache.
    let current = db::repos::by_id(&app.db, repo.id)
        .await?
        .ok_or_else(|| KeyError::NotFound(format!("no repository {}/{}", repo.owner, repo.name)))?;
    let version = current.keyring_version + 1;
    let before = db::signing_keys::list(&app.db, repo.id).await?;
    let published = published_after(&before, &edits);
    let packages = crate::keyring::prepare_all(app, repo, version, &published).await?;

    let mut tx = app.db.begin_write().await?;
    let raised = db::repos::next_keyring_version(&mut tx, repo.id).await?;
    if raised != version {
        return Err(KeyError::Refused(format!(
            "the keys of {}/{} changed while this command ran; run it again",
            repo.owner, repo.name
        )));
    }
    for edit in &edits {
        match edit {
            Edit::Add { key, state } => {
                db::signing_keys::insert(&mut tx, repo.id, key, *state, version).await?
            }
            Edit::State { id, state } => db::signing_keys::set_state(&mut tx, *id, *state).await?,
            Edit::Material { id, key } => {
                db::signing_keys::replace_material(&mut tx, *id, key).await?
            }
        }
    }
    for (distro, package) in &packages {
        crate::keyring::insert(app, &mut tx, repo, distro, package).await?;
    }
    // Targets without packages of their own (an SRPMS tree, say) are signed again too.
    let targets = db::generations::targets_of(&mut tx, repo.id).await?;
    for target in &targets {
        let Some(distro) = distros::by_id(target.distro_version_id) else {
            continue;
        };
        let kind = distro.format.publish_job();
        db::jobs::enqueue(&mut tx, kind, target).await?;
    }
    tx.commit().await?;
    app.queued();
    Ok((version, targets.len().max(packages.len())))
}

/// The armored public keys of the key set after `edits`, oldest first.
fn published_after(keys: &[SigningKey], edits: &[Edit]) -> Vec<String> {
    let mut published: Vec<(i64, String)> = keys
        .iter()
        .filter(|k| k.state.published())
        .map(|k| (k.id, k.public_armored.clone()))
        .collect();
    for edit in edits {
        match edit {
            Edit::Add { key, state } if state.published() => {
                published.push((i64::MAX, key.public_armored.clone()))
            }
            Edit::Add { .. } => {}
            Edit::State { id, state } if !state.published() => published.retain(|(k, _)| k != id),
            Edit::State { .. } => {}
            Edit::Material { id, key } => {
                for (k, armored) in &mut published {
                    if k == id {
                        *armored = key.public_armored.clone();
                    }
                }
            }
        }
    }
    published.into_iter().map(|(_, armored)| armored).collect()
}

/// Finds a key by its fingerprint or long key ID (any case, spaces ignored).
fn find<'a>(keys: &'a [SigningKey], repo: &Repo, wanted: &str) -> Result<&'a SigningKey, KeyError> {
    let wanted: String = wanted
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .trim_start_matches("0x")
        .to_uppercase();
    let matches: Vec<&SigningKey> = keys
        .iter()
        .filter(|k| wanted.len() >= 16 && k.fingerprint.ends_with(&wanted))
        .collect();
    match matches.as_slice() {
        [key] => Ok(key),
        [] => Err(KeyError::NotFound(format!(
            "{}/{} has no signing key {wanted}; `packyard key list {}/{}` shows its keys",
            repo.owner, repo.name, repo.owner, repo.name
        ))),
        _ => Err(KeyError::NotFound(format!(
            "{wanted} matches several keys of {}/{}; give the whole fingerprint",
            repo.owner, repo.name
        ))),
    }
}

/// Makes a new key that signs alongside the current ones from the next publish (or, with
/// `stage`, is only published in the keyring until the next rotate). A staged key, if there
/// is one, is what a rotate activates instead of making a new one. The keys that signed so
/// far become `retiring`.
pub async fn rotate(
    app: &App,
    repo: &Repo,
    algorithm: Option<KeyAlgorithm>,
    days: Option<u32>,
    stage: bool,
) -> Result<KeyChange, KeyError> {
    let keys = db::signing_keys::list(&app.db, repo.id).await?;
    let staged = keys.iter().find(|k| k.state == KeyState::Next);
    if stage && staged.is_some() {
        return Err(KeyError::Refused(format!(
            "{}/{} already has a staged key; `packyard key rotate {}/{}` activates it",
            repo.owner, repo.name, repo.owner, repo.name
        )));
    }
    let mut edits = Vec::new();
    let fingerprint = match staged {
        Some(next) if !stage => {
            edits.push(Edit::State {
                id: next.id,
                state: KeyState::Active,
            });
            next.fingerprint.clone()
        }
        _ => {
            let key = generate_for(app, &repo.owner, &repo.name, algorithm, days).await?;
            let fingerprint = key.fingerprint.clone();
            let state = if stage {
                KeyState::Next
            } else {
                KeyState::Active
            };
            edits.push(Edit::Add { key, state });
            fingerprint
        }
    };
    if !stage {
        for key in keys.iter().filter(|k| k.state == KeyState::Active) {
            edits.push(Edit::State {
                id: key.id,
                state: KeyState::Retiring,
            });
        }
    }
    let (keyring_version, targets_queued) = apply(app, repo, edits).await?;
    tracing::info!(repository = %format!("{}/{}", repo.owner, repo.name), fingerprint = %fingerprint,
        staged = stage, keyring_version, "rotated signing key");
    Ok(KeyChange {
        fingerprint,
        keyring_version,
        targets_queued,
        warnings: Vec::new(),
    })
}

/// Stops signing with a key and drops it from the keyring. Refused for the last usable key,
/// and, unless `force`, while hosts that read the repository lately lack the keyring package
/// carrying the newest remaining key.
pub async fn retire(
    app: &App,
    repo: &Repo,
    fingerprint: &str,
    force: bool,
) -> Result<KeyChange, KeyError> {
    let keys = db::signing_keys::list(&app.db, repo.id).await?;
    let key = find(&keys, repo, fingerprint)?;
    if key.state == KeyState::Retired {
        return Err(KeyError::Refused(format!(
            "{} is retired already",
            key.fingerprint
        )));
    }
    let now = db::now();
    let remaining: Vec<&SigningKey> = keys
        .iter()
        .filter(|k| k.id != key.id && k.usable_at(now))
        .collect();
    let mut warnings = Vec::new();
    if key.usable_at(now) {
        if remaining.is_empty() {
            return Err(KeyError::Refused(format!(
                "{} is the last usable signing key of {}/{}; run `packyard key rotate {}/{}` first, \
                 then retire it once hosts have the new key",
                key.fingerprint, repo.owner, repo.name, repo.owner, repo.name
            )));
        }
        let newest = remaining
            .iter()
            .map(|k| k.keyring_version)
            .max()
            .unwrap_or(0);
        let adoption = adoption(app, repo, newest).await?;
        if adoption.lagging() > 0 {
            let message = format!(
                "{} of {} hosts that read {}/{} in the last {} days have not fetched keyring package version {} or later, \
                 which carries the newer key; retiring {} now breaks their updates silently",
                adoption.lagging(),
                adoption.hosts,
                repo.owner,
                repo.name,
                ADOPTION_WINDOW_DAYS,
                newest,
                key.fingerprint
            );
            if !force {
                return Err(KeyError::Refused(format!(
                    "{message}; wait for them (`packyard key list {}/{}` shows the progress) or use --force",
                    repo.owner, repo.name
                )));
            }
            warnings.push(message);
        }
    }
    let edits = vec![Edit::State {
        id: key.id,
        state: KeyState::Retired,
    }];
    let (keyring_version, targets_queued) = apply(app, repo, edits).await?;
    tracing::info!(repository = %format!("{}/{}", repo.owner, repo.name), fingerprint = %key.fingerprint,
        forced = force, keyring_version, "retired signing key");
    Ok(KeyChange {
        fingerprint: key.fingerprint.clone(),
        keyring_version,
        targets_queued,
        warnings,
    })
}

/// Gives a key a new self-signature that expires `days` from now; its fingerprint stays.
pub async fn extend(
    app: &App,
    repo: &Repo,
    fingerprint: &str,
    days: u32,
) -> Result<KeyChange, KeyError> {
    if days == 0 {
        return Err(KeyError::Refused("--days must be at least 1".into()));
    }
    let keys = db::signing_keys::list(&app.db, repo.id).await?;
    let key = find(&keys, repo, fingerprint)?;
    if key.state == KeyState::Retired {
        return Err(KeyError::Refused(format!(
            "{} is retired; rotate to a new key instead",
            key.fingerprint
        )));
    }
    let now = db::now();
    let expires_at = now + i64::from(days) * 86_400;
    let secret = app.secrets.open(&key.secret_armored)?;
    let mut extended = tokio::task::spawn_blocking(move || sign::extend(&secret, expires_at))
        .await
        .context("extending the key")??;
    extended.secret_armored = app.secrets.seal(&extended.secret_armored)?;
    let mut warnings = vec![format!(
        "dnf hosts never import an extended key again (they already have its key ID), so once the old \
         expiry ({}) passes they fail with \"repomd.xml signature could not be verified\"; apt hosts need \
         the new keyring package (apt-get upgrade) or /gpgkey again",
        date(key.expires_at)
    )];
    if key.expires_at == NEVER_EXPIRES || key.expires_at - now > 30 * 86_400 {
        warnings.push(format!(
            "the key has more than 30 days left: `packyard key rotate {}/{}` reaches every apt and dnf host \
             without a gap, then retire this key",
            repo.owner, repo.name
        ));
    }
    let edits = vec![Edit::Material {
        id: key.id,
        key: extended,
    }];
    let (keyring_version, targets_queued) = apply(app, repo, edits).await?;
    tracing::info!(repository = %format!("{}/{}", repo.owner, repo.name), fingerprint = %key.fingerprint,
        expires_at, keyring_version, "extended signing key");
    Ok(KeyChange {
        fingerprint: key.fingerprint.clone(),
        keyring_version,
        targets_queued,
        warnings,
    })
}

/// Adds a private key made elsewhere: it signs from the next publish (the others become
/// `retiring`), or with `stage` it is only published in the keyring until the next rotate.
pub async fn import(
    app: &App,
    repo: &Repo,
    armored: &str,
    stage: bool,
) -> Result<KeyChange, KeyError> {
    if armored.len() > 1 << 20 {
        return Err(KeyError::Import(ImportError::Malformed(
            "the key is larger than 1 MiB".into(),
        )));
    }
    let armored = armored.to_owned();
    let mut key = tokio::task::spawn_blocking(move || sign::import(&armored))
        .await
        .context("reading the key")??;
    let keys = db::signing_keys::list(&app.db, repo.id).await?;
    if let Some(existing) = keys.iter().find(|k| k.fingerprint == key.fingerprint) {
        return Err(KeyError::Refused(format!(
            "{} is already a key of {}/{} ({})",
            key.fingerprint,
            repo.owner,
            repo.name,
            existing.state.name()
        )));
    }
    if stage && keys.iter().any(|k| k.state == KeyState::Next) {
        return Err(KeyError::Refused(format!(
            "{}/{} already has a staged key",
            repo.owner, repo.name
        )));
    }
    key.secret_armored = app.secrets.seal(&key.secret_armored)?;
    let fingerprint = key.fingerprint.clone();
    let state = if stage {
        KeyState::Next
    } else {
        KeyState::Active
    };
    let mut edits = vec![Edit::Add { key, state }];
    if !stage {
        for key in keys.iter().filter(|k| k.state == KeyState::Active) {
            edits.push(Edit::State {
                id: key.id,
                state: KeyState::Retiring,
            });
        }
    }
    let (keyring_version, targets_queued) = apply(app, repo, edits).await?;
    tracing::info!(repository = %format!("{}/{}", repo.owner, repo.name), fingerprint = %fingerprint,
        staged = stage, keyring_version, "imported signing key");
    Ok(KeyChange {
        fingerprint,
        keyring_version,
        targets_queued,
        warnings: Vec::new(),
    })
}

/// The armored public keys of the repository (those not retired), or of one key.
pub async fn export(app: &App, repo: &Repo, fingerprint: Option<&str>) -> Result<String, KeyError> {
    let keys = db::signing_keys::list(&app.db, repo.id).await?;
    let armored: Vec<String> = match fingerprint {
        Some(wanted) => vec![find(&keys, repo, wanted)?.public_armored.clone()],
        None => crate::keyring::published_keys(app, repo.id).await?,
    };
    Ok(sign::keyring(&armored)?)
}

/// A problem with a repository's keys that an operator must act on.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExpiryWarning {
    #[serde(skip)]
    pub key_id: i64,
    pub repository: String,
    pub fingerprint: String,
    pub expires_at: i64,
    pub days_left: i64,
    /// Whether no other key of the repository signs past this one's expiry.
    pub only_key: bool,
    pub message: String,
}

/// Signing keys that expire within the furthest warning threshold (180 days) or have
/// expired, across every repository.
pub async fn expiry_warnings(app: &App) -> Result<Vec<ExpiryWarning>> {
    let keys: Vec<_> = db::signing_keys::all_keys(&app.db)
        .await?
        .into_iter()
        .filter(|(_, _, key)| key.state.signs())
        .collect();
    let now = db::now();
    let mut warnings = Vec::new();
    for (owner, name, key) in &keys {
        if key.expires_at == NEVER_EXPIRES || key.expires_at - now > WARN_DAYS[0] * 86_400 {
            continue;
        }
        let repository = format!("{owner}/{name}");
        let outlived = keys.iter().any(|(o, n, other)| {
            o == owner && n == name && other.id != key.id && other.expires_at > key.expires_at
        });
        let days_left = (key.expires_at - now).div_euclid(86_400);
        let when = if key.expires_at <= now {
            format!("expired on {}", date(key.expires_at))
        } else {
            format!(
                "expires on {} ({days_left} days left)",
                date(key.expires_at)
            )
        };
        let advice = if outlived {
            format!(
                "a newer key signs alongside it; retire it with `packyard key retire {repository} {}` once hosts have the new keyring",
                key.fingerprint
            )
        } else {
            format!(
                "it is the repository's only key past that date: run `packyard key rotate {repository}` (or `packyard key extend {repository} {} --days N`)",
                key.fingerprint
            )
        };
        warnings.push(ExpiryWarning {
            key_id: key.id,
            message: format!(
                "signing key {} of {repository} {when}; {advice}",
                key.fingerprint
            ),
            repository,
            fingerprint: key.fingerprint.clone(),
            expires_at: key.expires_at,
            days_left,
            only_key: !outlived,
        });
    }
    Ok(warnings)
}

/// Logs every key within 180, 90, 30 or 7 days of expiry (or past it) as a warning.
pub async fn log_expiry_warnings(app: &App) {
    match expiry_warnings(app).await {
        Ok(warnings) => {
            for w in warnings {
                let threshold = WARN_DAYS.iter().rev().find(|d| w.days_left <= **d);
                tracing::warn!(repository = %w.repository, fingerprint = %w.fingerprint, days_left = w.days_left,
                    threshold_days = threshold, "{}", w.message);
            }
        }
        Err(e) => tracing::error!(error = %format!("{e:#}"), "checking signing key expiry failed"),
    }
}

/// A Unix time as a UTC date, `2026-11-29`; `never` for keys without expiry.
pub fn date(secs: i64) -> String {
    if secs == NEVER_EXPIRES {
        return "never".into();
    }
    time::OffsetDateTime::from_unix_timestamp(secs)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| secs.to_string())
}

/// Records a key command and how it went in the audit log.
pub async fn audit(
    app: &App,
    actor: crate::audit::Actor,
    ip: Option<std::net::IpAddr>,
    repo: &Repo,
    action: &'static str,
    key: Option<&str>,
    result: &Result<KeyChange, KeyError>,
) {
    let mut event = crate::audit::Event::new(actor, action).repository(&repo.owner, &repo.name);
    if let Some(ip) = ip {
        event = event.ip(ip);
    }
    if let Ok(change) = result {
        event = event
            .target(change.fingerprint.clone())
            .details(serde_json::json!({
                "keyring_version": change.keyring_version,
                "targets_queued": change.targets_queued,
            }));
    } else if let Some(key) = key {
        event = event.target(key.chars().take(64).collect::<String>());
    }
    if let (Ok(change), "key.rotate") = (result, action) {
        let data = serde_json::json!({
            "repository": format!("{}/{}", repo.owner, repo.name),
            "fingerprint": change.fingerprint, "keyring_version": change.keyring_version,
        });
        crate::webhooks::emit(app, repo.id, "key.rotated", data).await;
    }
    let refused = !matches!(result, Err(KeyError::Internal(_)));
    crate::audit::record(&app.db, event.result(result, refused)).await;
}
