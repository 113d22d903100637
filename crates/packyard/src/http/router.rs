//! Every route, in one place.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use tower_http::trace::TraceLayer;

use super::{api, ops, repo};
use crate::app::App;

pub fn router(app: App) -> Router {
    let upload_limit = usize::try_from(app.config.max_upload_bytes).unwrap_or(usize::MAX);
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/api/v1/distributions.json", get(api::distributions::list))
        .route("/api/v1/distributions", get(api::distributions::list))
        .route(
            "/api/v1/repos.json",
            get(api::repos::list).post(api::repos::create),
        )
        .route(
            "/api/v1/repos",
            get(api::repos::list).post(api::repos::create),
        )
        .route("/api/v1/repos/{owner}/{repo}", get(api::repos::show))
        .route(
            "/api/v1/repos/{owner}/{repo}/packages.json",
            // The push handler streams the body and enforces the limit itself (413).
            post(api::packages::push::push)
                .layer(DefaultBodyLimit::max(upload_limit.saturating_add(1 << 20))),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/gpg_keys.json",
            get(api::gpg_keys::list).post(api::gpg_keys::create),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/gpg_keys/{key}",
            get(api::gpg_keys::show).delete(api::gpg_keys::destroy),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/package/{*path}",
            get(api::packages::show::show),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/{os}/{dist}/{filename}",
            delete(api::packages::destroy::destroy),
        )
        .route("/{owner}/{repo}/{*path}", get(repo::serve))
        .route("/priv/{token}/{owner}/{repo}/{*path}", get(repo::serve_with_path_token))
        .layer(TraceLayer::new_for_http())
        .with_state(app)
}
