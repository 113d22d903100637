//! Signing keys for new repositories, generated off the async runtime (RSA-4096 takes seconds).

use anyhow::Result;

use crate::config::Config;
use crate::sign::{self, GeneratedKey};

pub async fn generate_for(config: &Config, owner: &str, repo: &str) -> Result<GeneratedKey> {
    let user_id = format!(
        "{owner}/{repo} (Packyard repository signing key) <{owner}-{repo}@packyard.invalid>"
    );
    let algorithm = config.signing_key_algorithm;
    let validity_secs = config.signing_key_days.saturating_mul(86_400);
    tokio::task::spawn_blocking(move || sign::generate(&user_id, algorithm, validity_secs)).await?
}
