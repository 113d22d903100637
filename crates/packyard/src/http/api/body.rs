//! Request bodies as packagecloud's clients send them: JSON, or form fields named like
//! `repository[name]`, which are read as the JSON object `{"repository": {"name": ...}}`.

use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::http::error::ApiError;

pub fn parse<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let value = if content_type.starts_with("application/json") {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?
    } else {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|e| ApiError::BadRequest(format!("invalid form body: {e}")))?;
        nest(pairs)
    };
    serde_json::from_value(value).map_err(|e| ApiError::BadRequest(format!("unexpected body: {e}")))
}

/// A whole number as JSON sends it, or as the text of a form field.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum Number {
    Int(i64),
    Text(String),
}

/// The number a field holds (empty text is none), or a 422 naming the field.
pub fn number(field: &'static str, value: Option<Number>) -> Result<Option<i64>, ApiError> {
    match value {
        None => Ok(None),
        Some(Number::Int(n)) => Ok(Some(n)),
        Some(Number::Text(text)) if text.trim().is_empty() => Ok(None),
        Some(Number::Text(text)) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid(field, "must be a whole number")),
    }
}

/// `a[b]=v` pairs as `{"a": {"b": "v"}}`; plain `a=v` as `{"a": "v"}`.
fn nest(pairs: Vec<(String, String)>) -> Value {
    let mut root = Map::new();
    for (key, value) in pairs {
        match key
            .split_once('[')
            .and_then(|(outer, rest)| Some((outer, rest.strip_suffix(']')?)))
        {
            Some((outer, inner)) => {
                let entry = root
                    .entry(outer.to_owned())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = entry {
                    map.insert(inner.to_owned(), Value::String(value));
                }
            }
            None => {
                root.insert(key, Value::String(value));
            }
        }
    }
    Value::Object(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nests_bracketed_form_fields() {
        let pairs = vec![
            ("repository[name]".to_owned(), "stable".to_owned()),
            ("repository[private]".to_owned(), "1".to_owned()),
            ("grace".to_owned(), "24h".to_owned()),
        ];
        assert_eq!(
            nest(pairs),
            serde_json::json!({"repository": {"name": "stable", "private": "1"}, "grace": "24h"})
        );
    }
}
