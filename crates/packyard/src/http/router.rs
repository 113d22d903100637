//! Every route, in one place.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, delete, get, post};
use tower_http::trace::TraceLayer;

use super::{api, install, metrics, ops, registry, repo, system, ui};
use crate::app::App;

/// The routes of this process's role: every process answers `/healthz` and `/readyz`; `api`
/// adds `/api/v1`, `web` the repositories and install scripts, `all` both.
pub fn router(app: App) -> Router {
    let role = app.config.role;
    let upload_limit = usize::try_from(app.config.max_upload_bytes).unwrap_or(usize::MAX);
    let mut router = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(metrics::metrics));
    if role.serves_api() {
        router = router.merge(api_routes(upload_limit));
    }
    if role.serves_repositories() {
        router = router.merge(repository_routes()).merge(ui::routes());
    }
    // The registry takes pushes and pulls alike, so any process with a public role serves it.
    if role.serves_repositories() || role.serves_api() {
        router = router.merge(registry::routes());
    }
    router
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            metrics::track,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(app)
}

/// The span of a request in debug logs: its method and path, the token of a `/priv/TOKEN/`
/// path left out.
fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    tracing::debug_span!(
        "request",
        method = %request.method(),
        uri = %loggable_path(request.uri().path()),
        version = ?request.version(),
    )
}

fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path
        .strip_prefix("/priv/")
        .and_then(|rest| rest.split_once('/'))
    {
        Some((_, rest)) => format!("/priv/***/{rest}").into(),
        None => path.into(),
    }
}

fn api_routes(upload_limit: usize) -> Router<App> {
    Router::new()
        .route("/api/v1/token.json", get(api::token::token))
        .route("/api/system", get(system::system))
        .route(
            "/api/v1/repos/{owner}/{repo}/reindex.json",
            post(api::reindex::reindex),
        )
        .route("/api/v1/audit.json", get(api::audit::list))
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
            "/api/v1/repos/{owner}/{repo}/snapshots.json",
            get(api::snapshots::list).post(api::snapshots::create),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/snapshots/{snapshot}",
            get(api::snapshots::show).delete(api::snapshots::delete),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/snapshots/{snapshot}/diff.json",
            get(api::snapshots::diff),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/snapshots/{snapshot}/restore.json",
            post(api::snapshots::restore),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/webhooks.json",
            get(api::webhooks::list).post(api::webhooks::add),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/webhooks/{id}",
            delete(api::webhooks::remove),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/webhooks/{id}/test.json",
            post(api::webhooks::test),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/webhooks/{id}/deliveries.json",
            get(api::webhooks::deliveries),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/webhooks/{id}/deliveries/{delivery}/redeliver.json",
            post(api::webhooks::redeliver),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/images/tag.json",
            post(api::images::tag),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/images/rollback.json",
            post(api::images::rollback),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/images/history.json",
            get(api::images::history),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/promote_all.json",
            post(api::snapshots::promote_all),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/retention.json",
            get(api::retention::show).post(api::retention::set),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/retention/preview.json",
            get(api::retention::preview),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/retention/apply.json",
            post(api::retention::apply),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/packages.json",
            // The push handler streams the body and enforces the limit itself (413).
            post(api::packages::push::push)
                .layer(DefaultBodyLimit::max(upload_limit.saturating_add(1 << 20)))
                .get(api::packages::list::all),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/packages/contents.json",
            post(api::packages::push::contents),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/packages/{*filter}",
            get(api::packages::list::filtered),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/search.json",
            get(api::packages::list::search),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/{os}/{dist}/{filename}/promote.json",
            post(api::packages::promote::promote),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/master_tokens",
            get(api::tokens::list).post(api::tokens::create),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/master_tokens.json",
            get(api::tokens::list).post(api::tokens::create),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/master_tokens/{mt}",
            get(api::tokens::show).delete(api::tokens::destroy),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/master_tokens/{mt}/rotate.json",
            post(api::tokens::rotate),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/master_tokens/{mt}/read_tokens.json",
            get(api::tokens::list_read).post(api::tokens::create_read),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/master_tokens/{mt}/read_tokens",
            get(api::tokens::list_read).post(api::tokens::create_read),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/master_tokens/{mt}/read_tokens/{id}",
            get(api::tokens::show_read).delete(api::tokens::destroy_read),
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
            "/api/v1/repos/{owner}/{repo}/gpg_keys/signing.json",
            get(api::signing_keys::list),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/gpg_keys/rotate.json",
            post(api::signing_keys::rotate),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/gpg_keys/import.json",
            post(api::signing_keys::import),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/gpg_keys/{key}/retire.json",
            post(api::signing_keys::retire),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/gpg_keys/{key}/extend.json",
            post(api::signing_keys::extend),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/gpg_keys/{key}/export.asc",
            get(api::signing_keys::export),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/package/{*path}",
            get(api::packages::show::show)
                .post(api::packages::yank::yank)
                .delete(api::packages::yank::yank),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/{os}/{dist}/{filename}",
            delete(api::packages::destroy::destroy),
        )
}

fn repository_routes() -> Router<App> {
    Router::new()
        // script.deb.sh, script.rpm.sh, script.python.sh, script.node.sh
        .route(
            "/install/repositories/{owner}/{repo}/{file}",
            get(install::script_file),
        )
        .route(
            "/install/repositories/{owner}/{repo}/config_file.list",
            get(install::config_list),
        )
        .route(
            "/install/repositories/{owner}/{repo}/config_file.repo",
            get(install::config_repo),
        )
        .route(
            "/install/repositories/{owner}/{repo}/gpg_key_url.list",
            get(install::gpg_key_url),
        )
        .route(
            "/install/repositories/{owner}/{repo}/gpg_key_url.repo",
            get(install::gpg_key_url),
        )
        .route(
            "/install/repositories/{owner}/{repo}/rpm_base_url",
            get(install::rpm_base_url),
        )
        .route(
            "/install/repositories/{owner}/{repo}/tokens.text",
            post(install::tokens_text),
        )
        .route("/{owner}/{repo}/{*path}", any(repo::serve))
        .route(
            "/priv/{token}/{owner}/{repo}/{*path}",
            get(repo::serve_with_path_token),
        )
}

#[cfg(test)]
mod tests {
    #[test]
    fn private_path_tokens_stay_out_of_logs() {
        assert_eq!(
            super::loggable_path("/priv/abc/o/r/gpgkey"),
            "/priv/***/o/r/gpgkey"
        );
        assert_eq!(super::loggable_path("/o/r/gpgkey"), "/o/r/gpgkey");
    }
}
