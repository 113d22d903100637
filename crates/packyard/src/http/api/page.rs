//! Pagination as packagecloud's lists have it: `?page=` and `?per_page=` (default 30, at most
//! 250), answered with `Link` (RFC 8288: first, prev, next, last), `Total`, `Per-Page` and
//! `Max-Per-Page` headers.

use axum::Json;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

const DEFAULT_PER_PAGE: i64 = 30;
const MAX_PER_PAGE: i64 = 250;

/// The page number (from 1) and page size a request asks for, within bounds.
pub fn number_and_size(page: Option<i64>, per_page: Option<i64>) -> (i64, i64) {
    (
        page.unwrap_or(1).max(1),
        per_page.unwrap_or(DEFAULT_PER_PAGE).clamp(1, MAX_PER_PAGE),
    )
}

/// A response with packagecloud's pagination headers.
pub fn paginated(
    body: Value,
    base: &str,
    path: &str,
    page: i64,
    per_page: i64,
    total: i64,
) -> Response {
    let last = ((total + per_page - 1) / per_page).max(1);
    let link =
        |p: i64, rel: &str| format!("<{base}{path}?page={p}&per_page={per_page}>; rel=\"{rel}\"");
    let mut links = Vec::new();
    if page > 1 {
        links.push(link(1, "first"));
        links.push(link(page - 1, "prev"));
    }
    if page < last {
        links.push(link(page + 1, "next"));
        links.push(link(last, "last"));
    }
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set("total", total.to_string());
    set("per-page", per_page.to_string());
    set("max-per-page", MAX_PER_PAGE.to_string());
    if !links.is_empty() {
        set("link", links.join(", "));
    }
    response
}
