//! The pages, one module per view; each has its handlers and its templates' structs.

mod admin;
mod assets;
mod cluster;
mod dag;
mod dags;
mod home;

use askama::Template;
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use updraft_rest_api::RestState;

use crate::UiError;

pub(crate) fn routes() -> Router<RestState> {
    Router::new()
        .route("/", get(home::page))
        .route("/dags", get(dags::page))
        .route("/cluster", get(cluster::page))
        .route("/assets", get(assets::page))
        .merge(admin::routes())
        .merge(dag::routes())
}

/// Whether the request asks for the page's live region `name` alone (`?fragment=name`);
/// any other fragment is a bad request, so a typo shows instead of a whole page.
pub(crate) fn wants_fragment(fragment: Option<&str>, name: &str) -> Result<bool, UiError> {
    match fragment {
        None => Ok(false),
        Some(f) if f == name => Ok(true),
        Some(other) => Err(UiError::BadRequest(format!(
            "This page has no fragment {other:?}; it has {name:?}."
        ))),
    }
}

/// A template rendered into an HTML answer.
pub(crate) fn html(template: &impl Template) -> Result<Html<String>, UiError> {
    Ok(Html(template.render()?))
}
