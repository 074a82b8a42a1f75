//! The query string of a page, read so that a malformed value (`?page=abc`) gets the UI's
//! error page with what was wrong, not the framework's plain-text answer.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::UiError;

/// A page's query parameters; repeated keys (`?tags=a&tags=b`) fill a list.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueryParams<T>(pub T);

impl<T, S> FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_html_form::from_str(query)
            .map(QueryParams)
            .map_err(|e| UiError::BadRequest(format!("The address has a bad query parameter: {e}")))
    }
}
