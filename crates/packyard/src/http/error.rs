//! The API's error type: each kind maps to a status code and a JSON body in packagecloud's
//! shapes; internal errors are logged once here and answered without detail.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

#[derive(Debug)]
pub enum ApiError {
    /// 401 `{"error": "Unauthenticated"}`.
    Unauthenticated,
    Forbidden(String),
    NotFound(String),
    BadRequest(String),
    /// 409: the name is taken by different contents (native upload protocols).
    Conflict(String),
    /// 422 `{"field": ["message"]}`, which the package_cloud CLI prints field by field.
    Invalid {
        field: &'static str,
        message: String,
    },
    PayloadTooLarge(String),
    /// 507: the server's disk is full; nothing was stored.
    InsufficientStorage(String),
    /// 408: the client stopped sending its upload.
    RequestTimeout(String),
    /// 503 with `Retry-After`: the process is at its limit of concurrent uploads.
    Busy(String),
    /// 503 with `Retry-After`: the blob storage did not answer or refused the write.
    StorageUnavailable(String),
    /// 503 with `Retry-After`: the database went away (a restart, a fail-over) or had no
    /// connection to spare; the request's transaction did not commit.
    DatabaseUnavailable(String),
    /// 429: too many failed authentications from this address.
    TooManyRequests,
    Internal(anyhow::Error),
}

impl ApiError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            field,
            message: message.into(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::NotFound(what.into())
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        if let Some(message) = disk_full(&e) {
            return ApiError::InsufficientStorage(message);
        }
        if let Some(cause) = database_unavailable(&e) {
            return ApiError::DatabaseUnavailable(format!(
                "the database is unavailable ({cause}); retry in a moment"
            ));
        }
        let storage = e
            .chain()
            .find_map(|cause| cause.downcast_ref::<object_store::Error>());
        match storage {
            Some(cause) => ApiError::StorageUnavailable(format!(
                "the blob storage failed ({cause}); nothing was stored, retry in a moment"
            )),
            None => ApiError::Internal(e),
        }
    }
}

/// The database error in `e` when it says the database is unreachable rather than that the
/// request was wrong: a lost connection, no connection to spare, PostgreSQL shutting down or
/// starting up (SQLSTATE classes 08 and 57P), SQLite still locked after its busy timeout.
fn database_unavailable(e: &anyhow::Error) -> Option<&sqlx::Error> {
    e.chain()
        .filter_map(|cause| cause.downcast_ref::<sqlx::Error>())
        .find(|error| match error {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                code.starts_with("08") || code.starts_with("57P") || code == "53300" || code == "5"
            }),
            _ => false,
        })
}

/// What to tell a client when `e` comes from a full disk (`ENOSPC`, `EDQUOT`): that the
/// server is out of space, not that the upload was wrong.
pub fn disk_full(e: &anyhow::Error) -> Option<String> {
    e.chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            )
        })
        .then(|| {
            "the server has no space left to store this upload; nothing was stored, and it \
             can be pushed again once an operator has freed space"
                .to_owned()
        })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "Unauthenticated"}),
            ),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, json!({"error": m})),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, json!({"error": m})),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, json!({"error": m})),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, json!({"error": m})),
            ApiError::PayloadTooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, json!({"error": m})),
            ApiError::RequestTimeout(m) => (StatusCode::REQUEST_TIMEOUT, json!({"error": m})),
            ApiError::InsufficientStorage(m) => {
                tracing::error!(error = %m, "an upload found the disk full");
                (StatusCode::INSUFFICIENT_STORAGE, json!({"error": m}))
            }
            ApiError::Busy(m) => (StatusCode::SERVICE_UNAVAILABLE, json!({"error": m})),
            ApiError::StorageUnavailable(m) => {
                tracing::error!(error = %m, "the blob storage failed a request");
                (StatusCode::SERVICE_UNAVAILABLE, json!({"error": m}))
            }
            ApiError::DatabaseUnavailable(m) => {
                tracing::error!(error = %m, "the database failed a request");
                (StatusCode::SERVICE_UNAVAILABLE, json!({"error": m}))
            }
            ApiError::TooManyRequests => (
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": "too many failed authentications from this address; try again in a minute"}),
            ),
            ApiError::Invalid { field, message } => {
                let mut body = Map::new();
                body.insert(field.to_owned(), Value::Array(vec![Value::String(message)]));
                (StatusCode::UNPROCESSABLE_ENTITY, Value::Object(body))
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "internal server error"}),
                )
            }
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"packyard\""),
            );
        }
        response
    }
}
