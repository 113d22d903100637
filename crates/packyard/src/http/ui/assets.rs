//! The UI's stylesheet and script, compiled into the binary and served under names that
//! carry their content hash, so browsers may keep them forever (`immutable`).

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

struct Asset {
    path: String,
    body: &'static str,
    content_type: &'static str,
}

fn asset(stem: &str, extension: &str, body: &'static str, content_type: &'static str) -> Asset {
    let hash = packyard_formats::digest::sha256_hex(body.as_bytes());
    Asset {
        path: format!("/static/{stem}.{}.{extension}", &hash[..12]),
        body,
        content_type,
    }
}

static CSS: LazyLock<Asset> = LazyLock::new(|| {
    asset(
        "ui",
        "css",
        include_str!("../../../assets/ui.css"),
        "text/css; charset=utf-8",
    )
});
static JS: LazyLock<Asset> = LazyLock::new(|| {
    asset(
        "ui",
        "js",
        include_str!("../../../assets/ui.js"),
        "text/javascript; charset=utf-8",
    )
});

pub fn css_path() -> &'static str {
    &CSS.path
}

pub fn js_path() -> &'static str {
    &JS.path
}

/// `GET /static/NAME`: the current asset of that name; any other name is 404, so a stale
/// page never gets a mismatched script.
pub async fn serve(Path(file): Path<String>) -> Response {
    let wanted = format!("/static/{file}");
    let Some(asset) = [&*CSS, &*JS].into_iter().find(|a| a.path == wanted) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        asset.body,
    )
        .into_response()
}
