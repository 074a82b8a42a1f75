//! The web UI, served by `standalone` and every `api-server` at `/`: HTML rendered by the
//! server from askama templates compiled into the binary, a little hand-written JavaScript
//! (`static/app.js`) for writes, shortcuts and live updates, and no build step.
//!
//! - Pages read the store directly (bounded queries: one page of rows at a time); every
//!   write goes from the browser to the public `/api/v2` with the `X-CSRF-Token` header, so
//!   the API's permission checks and audit log apply to the UI as to any client.
//! - [`session::Session`] is the extractor of every page: the `_token` cookie, checked as
//!   the API checks tokens, or a redirect to `/login`.
//! - Every page template has a [`layout::Page`] and extends `templates/base.html`.
//!
//! *Architecture invariant:* the UI never writes to the store itself, except logging in and
//! out, which go through the REST API's own login check and cookies.

pub mod assets;
pub mod code;
mod error;
mod events;
pub mod grid;
pub mod layout;
pub mod links;
mod login;
mod query;
pub mod session;
pub mod state_label;
pub mod svg;
pub mod time;
pub mod trigger_form;
mod views;

use axum::http::{header, HeaderValue};
use axum::middleware;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use updraft_rest_api::RestState;

pub use error::UiError;

/// The UI's routes, to be merged with the REST API's.
pub fn router(state: RestState) -> Router {
    Router::new()
        .route("/static/{file}", get(assets::serve))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", get(login::confirm_logout).post(login::logout))
        .route("/ui/events", get(events::events))
        .merge(views::routes())
        .layer(middleware::map_response(protect))
        .with_state(state)
}

/// Headers of every answer of the UI: no framing by other sites (a pause switch must not be
/// clicked through an invisible frame), no type sniffing, no referrer to other sites, and no
/// caching of pages, which show one user's data (the assets set their own long cache).
async fn protect(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
