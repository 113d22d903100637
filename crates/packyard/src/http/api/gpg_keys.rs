//! `GET, POST /api/v1/repos/OWNER/REPO/gpg_keys.json` and `GET, DELETE .../gpg_keys/NAME.json`:
//! the repository's signing keys (`repo`) and the keys its packages are signed with
//! (`package`), which clients import with the repository's `gpgkey` URL.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::app::App;
use crate::audit::{self, Actor, Event};
use crate::db::{self, gpg_keys::GpgKey, repos::Repo};
use crate::http::auth;
use crate::http::error::ApiError;

fn present(base: &str, repo: &Repo, key: &GpgKey) -> Value {
    let api = format!(
        "/api/v1/repos/{}/{}/gpg_keys/{}.json",
        repo.owner, repo.name, key.name
    );
    json!({
        "name": key.name,
        "fingerprint": key.fingerprint,
        "keytype": key.keytype,
        "self": api,
        "destroy_url": api,
        "download_url": format!("{base}/{}/{}/gpgkey/{}.pub.gpg", repo.owner, repo.name, key.name),
    })
}

pub async fn list(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let user = auth::optional_user(&app, &headers, client.ip()).await?;
    let repo = auth::readable_repo(&app, user.as_ref(), &owner, &name).await?;
    let base = auth::base_url(&app, &headers);
    let keys: Vec<Value> = db::gpg_keys::list(&app.db, repo.id)
        .await?
        .iter()
        .map(|k| present(&base, &repo, k))
        .collect();
    Ok(Json(json!({ "gpg_keys": keys })))
}

pub async fn show(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, key)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let user = auth::optional_user(&app, &headers, client.ip()).await?;
    let repo = auth::readable_repo(&app, user.as_ref(), &owner, &name).await?;
    let key_name = key.strip_suffix(".json").unwrap_or(&key);
    let key = db::gpg_keys::by_name(&app.db, repo.id, key_name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no key {key_name} in {owner}/{name}")))?;
    Ok(Json(present(&auth::base_url(&app, &headers), &repo, &key)))
}

/// Uploads a public key, multipart or form field `gpg_key[keydata]` holding the armored key.
pub async fn create(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user = auth::require_user(&app, &headers, client.ip()).await?;
    let repo = auth::writable_repo(&app, &user, &owner, &name).await?;
    let mut keydata = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::BadRequest(format!("invalid multipart body: {e}")))?
    {
        if matches!(field.name(), Some("gpg_key[keydata]" | "keydata")) {
            let text = field
                .text()
                .await
                .map_err(|e| ApiError::BadRequest(format!("invalid multipart body: {e}")))?;
            keydata = Some(text);
        }
    }
    let keydata = keydata.ok_or_else(|| ApiError::invalid("keydata", "is missing"))?;
    if keydata.len() > 1 << 20 {
        return Err(ApiError::invalid("keydata", "is larger than 1 MiB"));
    }
    let (fingerprint, public_armored) = crate::sign::inspect_public_key(&keydata)
        .map_err(|e| ApiError::invalid("keydata", format!("{e:#}")))?;
    let existing = db::gpg_keys::list(&app.db, repo.id).await?;
    if existing.iter().any(|k| k.fingerprint == fingerprint) {
        return Err(ApiError::invalid(
            "keydata",
            format!("key {fingerprint} is already in {owner}/{name}"),
        ));
    }
    let key = GpgKey {
        name: format!(
            "package-{}",
            fingerprint[fingerprint.len() - 16..].to_lowercase()
        ),
        fingerprint,
        keytype: "package".into(),
        public_armored,
    };
    db::gpg_keys::insert(&app.db, repo.id, &key).await?;
    let event = Event::new(Actor::User(user.name.clone()), "package_key.upload")
        .ip(client.ip())
        .repository(&owner, &name)
        .target(key.fingerprint.clone());
    audit::record(&app.db, event).await;
    Ok((
        StatusCode::CREATED,
        Json(present(&auth::base_url(&app, &headers), &repo, &key)),
    ))
}

pub async fn destroy(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, key)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let user = auth::require_user(&app, &headers, client.ip()).await?;
    let repo = auth::writable_repo(&app, &user, &owner, &name).await?;
    let key_name = key.strip_suffix(".json").unwrap_or(&key);
    let key = db::gpg_keys::by_name(&app.db, repo.id, key_name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no key {key_name} in {owner}/{name}")))?;
    if key.keytype == "repo" {
        return Err(ApiError::invalid(
            "keytype",
            "the repository signing key cannot be deleted; rotate it instead",
        ));
    }
    db::gpg_keys::delete(&app.db, repo.id, key_name).await?;
    let event = Event::new(Actor::User(user.name.clone()), "package_key.delete")
        .ip(client.ip())
        .repository(&owner, &name)
        .target(key.fingerprint.clone());
    audit::record(&app.db, event).await;
    Ok(StatusCode::NO_CONTENT)
}
