//! Webhooks: events of a repository posted to the URLs its owner registers, signed as the
//! Standard Webhooks specification says (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, secrets `whsec_...`),
//! so receivers verify them with stock libraries.
//!
//! Events are queued in the transaction that made them happen (a push, a publish, a yank), so
//! none is announced that did not happen; delivery workers claim them from the log, retry
//! with back-off for 24 hours, and record every attempt. Targets that resolve to loopback,
//! link-local or private addresses are refused unless `webhook_allow_hosts` lists them.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::db::{self, Tx, packages::Package, webhooks::Delivery, webhooks::Webhook};
use crate::distros;

/// What a webhook can ask for.
pub const EVENTS: &[&str] = &[
    "package.pushed",
    "package.visible",
    "package.yanked",
    "package.promoted",
    "snapshot.restored",
    "image.pushed",
    "tag.moved",
    "job.failed",
    "key.rotated",
    "key.expiring",
    "webhook.test",
];

/// Deliveries are retried for this long after the event.
const GIVE_UP_MS: i64 = 24 * 3600 * 1000;
/// The longest wait between two attempts.
const MAX_BACKOFF_MS: i64 = 3600 * 1000;
/// How long a worker holds a delivery it attempts.
const LEASE_MS: i64 = 60_000;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// A new secret: `whsec_` and 24 random bytes in base64.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// `v1,<signature>` of a message.
pub fn sign(secret: &str, message_id: &str, timestamp: i64, body: &str) -> Result<String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .context("the webhook secret is not base64")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).context("a webhook secret of no length")?;
    mac.update(format!("{message_id}.{timestamp}.{body}").as_bytes());
    Ok(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

fn message_id() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("msg_{}", hex::encode(bytes))
}

fn payload(event: &str, data: Value) -> String {
    let timestamp = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json!({ "type": event, "timestamp": timestamp, "data": data }).to_string()
}

/// A package as events describe it.
pub fn package_data(repository: &str, p: &Package) -> Value {
    let distribution = distros::path_of(p.distro_version_id);
    json!({
        "repository": repository, "distribution": distribution, "name": p.name,
        "version": p.version, "architecture": p.architecture, "filename": p.filename,
        "size": p.size, "sha256": p.sha256,
    })
}

/// Queues `event` for the repository's webhooks inside `tx`.
pub async fn emit_tx(tx: &mut Tx, repository_id: i64, event: &str, data: Value) -> Result<()> {
    if !db::webhooks::any(tx, repository_id).await? {
        return Ok(());
    }
    db::webhooks::enqueue(
        tx,
        repository_id,
        event,
        &message_id(),
        &payload(event, data),
    )
    .await
}

/// Queues `event` on its own, after what it reports has committed.
pub async fn emit(app: &App, repository_id: i64, event: &str, data: Value) {
    let queued = async {
        let mut tx = app.db.begin_write().await?;
        emit_tx(&mut tx, repository_id, event, data).await?;
        tx.commit().await
    };
    if let Err(e) = queued.await {
        tracing::error!(event, error = %format!("{e:#}"), "queueing a webhook event failed");
    }
}

/// `package.visible` for packages a publish lists for the first time, inside its transaction:
/// with how long after the push that was.
pub async fn visible_tx(tx: &mut Tx, repository_id: i64, ids: &[i64]) -> Result<()> {
    let repository: String = crate::db::run_tx!(
        tx,
        sqlx::query_scalar(
            "SELECT u.name || '/' || r.name FROM repositories r JOIN users u ON u.id = r.owner_id
             WHERE r.id = $1"
        )
        .bind(repository_id),
        fetch_one
    )?;
    for timed in db::packages::timed_tx(tx, ids).await? {
        let mut data = package_data(&repository, &timed.package);
        if let (Some(pushed), Some(indexed)) = (timed.created_ms, timed.indexed_ms) {
            data["visible_after_ms"] = (indexed - pushed).into();
        }
        emit_tx(tx, repository_id, "package.visible", data).await?;
    }
    Ok(())
}

/// Checks and stores a webhook; its secret, shown this once.
pub async fn add(
    app: &App,
    repository_id: i64,
    url: &str,
    events: Option<&str>,
) -> Result<(Webhook, String), WebhookError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| WebhookError::Refused(format!("{url:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(WebhookError::Refused(format!(
            "{url:?} is not an http or https URL"
        )));
    }
    let events = events
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .unwrap_or("*");
    if events != "*" {
        for event in events.split(',').map(str::trim) {
            if !EVENTS.contains(&event) {
                return Err(WebhookError::Refused(format!(
                    "{event:?} is not an event; they are {}",
                    EVENTS.join(", ")
                )));
            }
        }
    }
    check_target(app, &parsed).await?;
    let secret = new_secret();
    let sealed = app.secrets.seal(&secret)?;
    let hook =
        db::webhooks::create(&app.db, repository_id, parsed.as_str(), &sealed, events).await?;
    Ok((hook, secret))
}

/// Refuses a URL whose host resolves to an address of the deployment's own networks, unless
/// it is allowed by name.
pub async fn check_target(app: &App, url: &reqwest::Url) -> Result<(), WebhookError> {
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
    if app
        .config
        .webhook_allow_hosts
        .iter()
        .any(|allowed| allowed == host)
    {
        return Ok(());
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| WebhookError::Refused(format!("{host} does not resolve: {e}")))?
            .map(|a| a.ip())
            .collect(),
    };
    match addresses.iter().find(|ip| internal(**ip)) {
        Some(ip) => Err(WebhookError::Refused(format!(
            "{host} is {ip}, a loopback, link-local or private address; list it in webhook_allow_hosts to allow it"
        ))),
        None => Ok(()),
    }
}

/// Loopback, unspecified, link-local, private, shared (CGNAT), multicast and broadcast.
fn internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_unspecified()
                || v4.is_link_local()
                || v4.is_private()
                || v4.is_broadcast()
                || v4.is_multicast()
                || (a == 100 && (64..128).contains(&b))
                || a == 0
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => internal(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
            }
        },
    }
}

/// Sends a test event to one webhook.
pub async fn test(app: &App, hook: &Webhook) -> Result<()> {
    let mut tx = app.db.begin_write().await?;
    let data = json!({ "webhook": hook.id, "url": hook.url });
    db::webhooks::insert(
        &mut tx,
        hook.id,
        "webhook.test",
        &message_id(),
        &payload("webhook.test", data),
    )
    .await?;
    tx.commit().await
}

/// Queues a delivery again, under its message id (receivers deduplicate by it).
pub async fn redeliver(app: &App, delivery: &Delivery) -> Result<()> {
    let mut tx = app.db.begin_write().await?;
    db::webhooks::insert(
        &mut tx,
        delivery.webhook_id,
        &delivery.event,
        &delivery.message_id,
        &delivery.payload,
    )
    .await?;
    tx.commit().await
}

/// `key.expiring` for each signing key that has come within 180, 90, 30 or 7 days of expiry
/// (or past it) since it was last announced: once per key and threshold. How many went out.
pub async fn announce_expiring_keys(app: &App) -> Result<usize> {
    let mut announced = 0;
    for warning in crate::keys::expiry_warnings(app).await? {
        let Some(threshold) = crate::keys::WARN_DAYS
            .iter()
            .rev()
            .find(|days| warning.days_left <= **days)
        else {
            continue;
        };
        if !db::webhooks::claim_expiry_announcement(&app.db, warning.key_id, *threshold).await? {
            continue;
        }
        let repository_id = db::webhooks::key_repository(&app.db, warning.key_id).await?;
        let data = json!({
            "repository": warning.repository, "fingerprint": warning.fingerprint,
            "expires_at": warning.expires_at, "days_left": warning.days_left,
            "threshold_days": threshold, "only_key": warning.only_key, "message": warning.message,
        });
        emit(app, repository_id, "key.expiring", data).await;
        announced += 1;
    }
    Ok(announced)
}

/// Delivers what is due, until shutdown; looks for expiring keys hourly.
pub async fn run_deliveries(app: App, shutdown: CancellationToken) {
    let http = match reqwest::Client::builder()
        .user_agent(concat!("packyard-webhooks/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            tracing::error!(error = %e, "webhook deliveries cannot start");
            return;
        }
    };
    let mut keys_checked: Option<std::time::Instant> = None;
    while !shutdown.is_cancelled() {
        if keys_checked.is_none_or(|at| at.elapsed() > Duration::from_secs(3600)) {
            if let Err(e) = announce_expiring_keys(&app).await {
                tracing::warn!(error = %format!("{e:#}"), "announcing expiring keys failed");
            }
            keys_checked = Some(std::time::Instant::now());
        }
        loop {
            match db::webhooks::claim_due(&app.db, LEASE_MS).await {
                Ok(Some(delivery)) => deliver(&app, &http, delivery).await,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "claiming a webhook delivery failed");
                    break;
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

async fn deliver(app: &App, http: &reqwest::Client, delivery: Delivery) {
    let outcome = attempt(app, http, &delivery).await;
    let (status, error) = match &outcome {
        Ok(status) if (200..300).contains(status) => (Some(*status), None),
        Ok(status) => (
            Some(*status),
            Some(format!("the receiver answered {status}")),
        ),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    let retry_at = error.as_ref().and_then(|_| {
        let wait = (app.config.webhook_backoff_ms as i64)
            .saturating_mul(4i64.saturating_pow((delivery.attempts.max(1) - 1) as u32))
            .min(MAX_BACKOFF_MS);
        let at = db::now_ms() + wait;
        (at - delivery.created_ms <= GIVE_UP_MS).then_some(at)
    });
    metrics::counter!("packyard_webhook_deliveries_total", "result" => if error.is_none() { "delivered" } else if retry_at.is_some() { "retrying" } else { "failed" }).increment(1);
    if let Some(error) = &error {
        tracing::warn!(delivery = delivery.id, event = %delivery.event, attempts = delivery.attempts, error = %error, "webhook delivery failed");
    }
    if let Err(e) =
        db::webhooks::record(&app.db, delivery.id, status, error.as_deref(), retry_at).await
    {
        tracing::error!(delivery = delivery.id, error = %format!("{e:#}"), "recording a webhook delivery failed");
    }
}

async fn attempt(app: &App, http: &reqwest::Client, delivery: &Delivery) -> Result<u16> {
    let hook = db::webhooks::by_id(&app.db, delivery.webhook_id)
        .await?
        .context("the webhook was removed")?;
    let url = reqwest::Url::parse(&hook.url)?;
    check_target(app, &url)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let secret = app.secrets.open(&hook.secret)?;
    let timestamp = db::now();
    let signature = sign(&secret, &delivery.message_id, timestamp, &delivery.payload)?;
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &delivery.message_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(delivery.payload.clone())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", crate::client::http::error_chain(&e)))?;
    Ok(response.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        // The example of the specification (standard-webhooks spec, "Signature scheme").
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        let signed = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(signed, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn internal_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "172.32.0.1"] {
            assert!(!internal(ip.parse().unwrap()), "{ip}");
        }
    }
}
