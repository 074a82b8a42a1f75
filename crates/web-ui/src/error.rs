//! Why a page could not be shown, and the HTML answer that says so.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use updraft_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// The store could not answer (or answered that something is missing).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A template failed to render (a bug).
    #[error("cannot render the page: {0}")]
    Template(#[from] askama::Error),
    /// No such page or object.
    #[error("{0}")]
    NotFound(String),
    /// The user's role does not allow this page.
    #[error("{0}")]
    Forbidden(String),
    /// The request is malformed (a bad query parameter).
    #[error("{0}")]
    BadRequest(String),
}

impl UiError {
    pub fn status(&self) -> StatusCode {
        match self {
            UiError::Store(StoreError::NotFound(_)) | UiError::NotFound(_) => StatusCode::NOT_FOUND,
            UiError::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            UiError::Store(_) | UiError::Template(_) => StatusCode::INTERNAL_SERVER_ERROR,
            UiError::Forbidden(_) => StatusCode::FORBIDDEN,
            UiError::BadRequest(_) => StatusCode::BAD_REQUEST,
        }
    }
}

#[derive(askama::Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: String,
    css: &'a str,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "page failed");
        }
        let page = ErrorPage {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error"),
            message: self.to_string(),
            css: &crate::assets::Asset::Css.url(),
        };
        match askama::Template::render(&page) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, page.message).into_response(),
        }
    }
}
