//! `/admin/connections`: list, create, edit and delete (Op and Admin). The password is
//! write-only: the page says whether one is set, never what it is, and an edit that leaves
//! the field empty keeps it.

use askama::Template;
use axum::extract::State;
use axum::response::Html;
use updraft_rest_api::auth::{Action, Resource};
use updraft_rest_api::RestState;

use super::{tabs, ListQuery, Pager, Tab};
use crate::layout::Page;
use crate::links;
use crate::query::QueryParams;
use crate::session::Session;
use crate::UiError;

pub struct ConnectionRow {
    pub conn_id: String,
    pub conn_type: String,
    pub description: String,
    pub host: String,
    pub schema: String,
    pub login: String,
    pub port: String,
    pub has_password: bool,
    /// With the values of sensitive keys hidden.
    pub extra: String,
    pub api: String,
}

#[derive(Template)]
#[template(path = "admin/connections.html")]
struct ConnectionsPage {
    page: Page,
    tabs: Vec<Tab>,
    search: String,
    rows: Vec<ConnectionRow>,
    pager: Pager,
    can_edit: bool,
}

/// `GET /admin/connections`.
pub async fn page(
    State(state): State<RestState>,
    session: Session,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Html<String>, UiError> {
    session.require(Action::Read, Resource::Connection)?;
    let found = state
        .store()
        .query_connections(query.pattern(), false, query.window())
        .await?;
    let names = &state.config().sensitive_names;
    let rows: Vec<ConnectionRow> = found
        .items
        .into_iter()
        .map(|c| ConnectionRow {
            api: format!("/api/v2/connections/{}", links::encode(&c.conn_id)),
            has_password: c.password.as_deref().is_some_and(|p| !p.is_empty()),
            extra: c
                .extra
                .as_deref()
                .map(|e| names.redact_extra(e))
                .unwrap_or_default(),
            description: c.description.unwrap_or_default(),
            host: c.host.unwrap_or_default(),
            schema: c.schema.unwrap_or_default(),
            login: c.login.unwrap_or_default(),
            port: c.port.map(|p| p.to_string()).unwrap_or_default(),
            conn_type: c.conn_type,
            conn_id: c.conn_id,
        })
        .collect();
    let page = ConnectionsPage {
        page: Page::new(&session, "admin"),
        tabs: tabs(&session, "connections"),
        pager: query.pager("/admin/connections", rows.len(), found.total),
        search: query.search.clone(),
        rows,
        can_edit: session.allows(Action::Edit, Resource::Connection, None),
    };
    crate::views::html(&page)
}
