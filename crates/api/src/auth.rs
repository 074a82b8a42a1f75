//! The worker token: `Authorization: Bearer <token>` on every task-execution route.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::HttpError;
use crate::ApiError;

/// The token workers must present, kept as its SHA-256 digest so that the comparison takes
/// the same time whatever the presented token (its length included).
#[derive(Clone)]
pub(crate) struct WorkerToken(Arc<[u8; 32]>);

impl WorkerToken {
    /// Refuses an empty token: a server that accepted any token would hand out work (and
    /// variables) to anyone who can reach it.
    pub fn new(token: &str) -> Result<Self, ApiError> {
        if token.trim().is_empty() {
            return Err(ApiError::EmptyToken);
        }
        Ok(WorkerToken(Arc::new(digest(token.trim().as_bytes()))))
    }

    /// Whether `presented` is the token, in time independent of where they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let presented = digest(presented);
        let difference = self
            .0
            .iter()
            .zip(presented.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(difference) == 0
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The token of an `Authorization: Bearer <token>` header, if there is one.
fn bearer(value: &HeaderValue) -> Option<&[u8]> {
    let bytes = value.as_bytes();
    let scheme = b"bearer ";
    if bytes.len() < scheme.len() || !bytes[..scheme.len()].eq_ignore_ascii_case(scheme) {
        return None;
    }
    let token = bytes[scheme.len()..].trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Middleware: passes requests with the right token on, answers others 401.
pub(crate) async fn require_token(
    State(token): State<WorkerToken>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(bearer);
    match presented {
        Some(presented) if token.matches(presented) => next.run(request).await,
        Some(_) => {
            tracing::warn!(path = %request.uri().path(), "request with a wrong worker token");
            unauthorized("invalid worker token")
        }
        None => unauthorized("missing bearer token: send 'Authorization: Bearer <worker token>'"),
    }
}

fn unauthorized(detail: &str) -> Response {
    let mut response = HttpError::new(StatusCode::UNAUTHORIZED, detail).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_tokens_are_refused() {
        assert!(matches!(WorkerToken::new(""), Err(ApiError::EmptyToken)));
        assert!(matches!(WorkerToken::new("  "), Err(ApiError::EmptyToken)));
    }

    #[test]
    fn only_the_token_matches() {
        let token = WorkerToken::new("s3cret").unwrap();
        assert!(token.matches(b"s3cret"));
        assert!(!token.matches(b"s3cre"));
        assert!(!token.matches(b"s3cret!"));
        assert!(!token.matches(b""));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let value = HeaderValue::from_static("bearer abc");
        assert_eq!(bearer(&value), Some(&b"abc"[..]));
        let value = HeaderValue::from_static("Bearer  abc ");
        assert_eq!(bearer(&value), Some(&b"abc"[..]));
        assert_eq!(bearer(&HeaderValue::from_static("Basic abc")), None);
        assert_eq!(bearer(&HeaderValue::from_static("Bearer ")), None);
        assert_eq!(bearer(&HeaderValue::from_static("Bearer")), None);
    }
}
