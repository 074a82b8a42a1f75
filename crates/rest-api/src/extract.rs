//! Extractors that answer Airflow's (FastAPI's) 422 naming the bad field, instead of axum's
//! plain-text rejections: JSON bodies ([`JsonBody`]), query strings ([`QueryParams`], which
//! also takes repeated parameters) and path parameters ([`PathParams`]).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use crate::RestError;

/// A JSON body; a body of the wrong shape is a 422 whose `loc` is `["body", <path to the
/// field>…]`, as FastAPI answers.
pub(crate) struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = RestError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                let mime = v.split(';').next().unwrap_or("").trim();
                mime == "application/json" || mime.ends_with("+json")
            });
        if !is_json {
            return Err(RestError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected a JSON body (Content-Type: application/json)",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|e| RestError::bad_request(e.body_text()))?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses JSON text into `T`, naming the bad field on failure.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RestError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let mut location = vec!["body".to_string()];
        if path != "." {
            location.extend(path.split('.').flat_map(split_index));
        }
        let location: Vec<&str> = location.iter().map(String::as_str).collect();
        RestError::invalid(&location, e.into_inner().to_string())
    })
}

/// `actions[0]` → `actions`, `0` (FastAPI lists indices as their own segments).
fn split_index(segment: &str) -> Vec<String> {
    segment
        .split(['[', ']'])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Query parameters (repeatable ones too: `a=1&a=2`); one that does not parse is a 422.
pub(crate) struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = RestError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let deserializer = serde_html_form::Deserializer::from_bytes(query.as_bytes());
        serde_path_to_error::deserialize(deserializer)
            .map(QueryParams)
            .map_err(|e| {
                let field = e.path().to_string();
                let message = e.into_inner().to_string();
                if field == "." {
                    RestError::invalid(&["query"], message)
                } else {
                    RestError::invalid(&["query", &field], message)
                }
            })
    }
}

/// Path parameters; one that does not parse (an id that is not a number) is a 422.
pub(crate) struct PathParams<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathParams<T> {
    type Rejection = RestError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(value) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(PathParams(value))
    }
}

/// Whether `value` matches Airflow's `*_pattern` filter: a case-insensitive substring with
/// SQL `LIKE` wildcards (`%`, `_`) inside it. Dynamic programming over the pattern, so a
/// pattern of many `%` costs (pattern × value) steps, never exponential time.
pub(crate) fn like_matches(pattern: &str, value: &str) -> bool {
    let mut p: Vec<char> = format!("%{}%", pattern.to_lowercase()).chars().collect();
    // A run of `%` means what one does.
    p.dedup_by(|a, b| *a == '%' && *b == '%');
    let v: Vec<char> = value.to_lowercase().chars().collect();
    // Every other character takes one of the value's: a longer pattern cannot match, and
    // this bounds the work below by the value's length, whatever the pattern's.
    if p.iter().filter(|c| **c != '%').count() > v.len() {
        return false;
    }
    // matched[j]: the pattern read so far matches the first j characters of the value.
    let mut matched = vec![false; v.len() + 1];
    matched[0] = true;
    for c in p {
        let mut next = vec![false; v.len() + 1];
        for j in 0..=v.len() {
            next[j] = match c {
                '%' => matched[j] || (j > 0 && next[j - 1]),
                '_' => j > 0 && matched[j - 1],
                c => j > 0 && matched[j - 1] && v[j - 1] == c,
            };
        }
        matched = next;
    }
    matched[v.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        slots: u32,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Inner>,
    }

    #[test]
    fn like_patterns() {
        assert!(like_matches("ext", "Extract"));
        assert!(like_matches("e%t", "extract"));
        assert!(like_matches("a_c", "xabcx"));
        assert!(!like_matches("a_c", "ac"));
        assert!(like_matches("", "anything"));
        // Many wildcards against a long value that does not match end at once.
        assert!(!like_matches(
            &"%".repeat(200).replace("%%", "%a"),
            &"b".repeat(5000)
        ));
    }

    #[test]
    fn a_bad_field_is_named_with_its_path() {
        let err = parse_json::<Outer>(br#"{"items": [{"slots": 1}, {"slots": "x"}]}"#)
            .expect_err("slots is not a number");
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            err.detail[0]["loc"],
            serde_json::json!(["body", "items", "1", "slots"])
        );
    }

    #[test]
    fn like_patterns_are_case_insensitive_substrings() {
        assert!(like_matches("ool", "default_POOL"));
        assert!(like_matches("d%t", "default"));
        assert!(like_matches("p_ol", "pool"));
        assert!(!like_matches("x", "pool"));
    }
}
