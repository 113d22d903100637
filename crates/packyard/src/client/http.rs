//! Requests to API v1 with the token as Basic user name, retried with exponential back-off
//! and jitter on connection errors and on 408, 429, 502, 503 and 504 (after `Retry-After`
//! when the server gives one).

use std::time::Duration;

use anyhow::Result;
use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;

use super::config::Remote;

/// Retries after the first attempt, unless `--retries` says otherwise.
pub const DEFAULT_RETRIES: u32 = 6;
/// The first back-off; each next one doubles, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// An answer other than 2xx, with the server's message.
#[derive(Debug, thiserror::Error)]
#[error("{method} {path}: {status}: {message}")]
pub struct Refused {
    pub method: Method,
    pub path: String,
    pub status: StatusCode,
    pub message: String,
}

/// Whether a request may be sent again after its answer was lost: every request but the
/// ones that create something (a repository, a token) whose second try would fail or
/// duplicate it. Pushes are safe: the same file again is the same package.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    Always,
    /// Only when the request cannot have reached the server (the connection failed).
    OnConnect,
}

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    pub remote: Remote,
    retries: u32,
}

impl Api {
    pub fn new(remote: Remote, retries: u32) -> Result<Api> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("packyard/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            // Long enough for the longest `?wait=` (60 s) and a slow publish behind it.
            .read_timeout(Duration::from_secs(120))
            .build()?;
        Ok(Api {
            http,
            remote,
            retries,
        })
    }

    /// `path` on the server, or `path` itself when it is already a full URL (package_cloud's
    /// servers answer with either).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}/{}", self.remote.url, path.trim_start_matches('/'))
        }
    }

    /// Sends what `build` makes (again on each retry), with the token; a non-2xx answer is a
    /// [`Refused`] error.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        retry: Retry,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response> {
        let url = self.url(path);
        let mut attempt = 0;
        loop {
            let mut request = self.http.request(method.clone(), &url);
            if let Some(token) = &self.remote.token {
                request = request.basic_auth(token, Some(""));
            }
            let outcome = build(request).send().await;
            let wait = match &outcome {
                Ok(response) if retryable_status(response.status()) => {
                    Some(retry_after(response.headers()))
                }
                Ok(_) => None,
                Err(e) if retry == Retry::Always || e.is_connect() => Some(None),
                Err(_) => None,
            };
            if let Some(after) = wait.filter(|_| attempt < self.retries) {
                let pause = after.unwrap_or_else(|| backoff(attempt));
                tracing::debug!(%url, attempt, ?pause, "retrying");
                tokio::time::sleep(pause).await;
                attempt += 1;
                continue;
            }
            let response =
                outcome.map_err(|e| anyhow::anyhow!("{method} {url}: {}", error_chain(&e)))?;
            if response.status().is_success() {
                return Ok(response);
            }
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(Refused {
                method,
                path: path.to_owned(),
                status,
                message: message(&body),
            }
            .into());
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let response = self.send(Method::GET, path, Retry::Always, |r| r).await?;
        json(response).await
    }

    /// A form post; `retry` says whether sending it twice is harmless.
    pub async fn post_form<T: DeserializeOwned>(
        &self,
        path: &str,
        retry: Retry,
        form: &[(&str, String)],
    ) -> Result<T> {
        let response = self
            .send(Method::POST, path, retry, |r| r.form(form))
            .await?;
        json(response).await
    }

    pub async fn delete(&self, path: &str) -> Result<Response> {
        self.send(Method::DELETE, path, Retry::Always, |r| r).await
    }
}

pub async fn json<T: DeserializeOwned>(response: Response) -> Result<T> {
    let url = response.url().clone();
    let bytes = response.bytes().await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "{url} answered with something that is not the expected JSON ({e}): {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        )
    })
}

fn retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 502 | 503 | 504)
}

/// `Retry-After` in seconds or as an HTTP date, capped.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Full jitter: anywhere up to the doubled back-off, so clients retrying together spread out.
fn backoff(attempt: u32) -> Duration {
    let cap = FIRST_BACKOFF
        .saturating_mul(1 << attempt.min(16))
        .min(MAX_BACKOFF);
    let millis = rand::thread_rng().gen_range(cap.as_millis() as u64 / 2..=cap.as_millis() as u64);
    Duration::from_millis(millis)
}

/// The server's message: `{"error": ...}`, packagecloud's `{"field": ["message"]}`, or the
/// text itself.
fn message(body: &str) -> String {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
        let text = body.trim();
        return if text.is_empty() {
            "(no message)".into()
        } else {
            text.chars().take(300).collect()
        };
    };
    if let Some(error) = value.get("error").and_then(|e| e.as_str()) {
        return error.to_owned();
    }
    match value.as_object() {
        Some(fields) => fields
            .iter()
            .map(|(field, messages)| match messages {
                serde_json::Value::Array(list) => list
                    .iter()
                    .map(|m| format!("{field} {}", m.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join("; "),
                other => format!("{field} {other}"),
            })
            .collect::<Vec<_>>()
            .join("; "),
        None => value.to_string(),
    }
}

/// An error and its causes on one line (reqwest's own message alone says little).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_of_packagecloud_errors_name_their_fields() {
        assert_eq!(
            message(r#"{"filename": ["has already been taken"]}"#),
            "filename has already been taken"
        );
        assert_eq!(
            message(r#"{"error": "Unauthenticated"}"#),
            "Unauthenticated"
        );
        assert_eq!(message(""), "(no message)");
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        for attempt in 0..20 {
            let pause = backoff(attempt);
            let cap = FIRST_BACKOFF
                .saturating_mul(1 << attempt.min(16))
                .min(MAX_BACKOFF);
            assert!(pause <= cap && pause >= cap / 2, "{attempt}: {pause:?}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_is_capped() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(RETRY_AFTER, "86400".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
    }
}
