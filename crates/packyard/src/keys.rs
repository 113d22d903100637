//! Repository signing keys: generated off the async runtime (RSA-4096 takes seconds) and
//! sealed with the server secret before they are stored; opened again to sign.

use anyhow::Result;

use crate::app::App;
use crate::db;
use crate::sign::{self, GeneratedKey};

/// A new key for `owner/repo`, its secret part sealed, ready for `db::repos::create`.
pub async fn generate_for(app: &App, owner: &str, repo: &str) -> Result<GeneratedKey> {
    let user_id = format!(
        "{owner}/{repo} (Packyard repository signing key) <{owner}-{repo}@packyard.invalid>"
    );
    let algorithm = app.config.signing_key_algorithm;
    let validity_secs = app.config.signing_key_days.saturating_mul(86_400);
    let mut key =
        tokio::task::spawn_blocking(move || sign::generate(&user_id, algorithm, validity_secs))
            .await??;
    key.secret_armored = app.secrets.seal(&key.secret_armored)?;
    Ok(key)
}

/// The armored secret keys that sign a repository's metadata.
pub async fn active_secret_keys(app: &App, repository_id: i64) -> Result<Vec<String>> {
    db::repos::active_secret_keys(&app.db, repository_id)
        .await?
        .iter()
        .map(|sealed| app.secrets.open(sealed))
        .collect()
}
