//! `/admin/variables`: list, search, create, edit and delete (Op and Admin).

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

pub struct VariableRow {
    pub key: String,
    pub value: String,
    pub description: String,
    /// `/api/v2/variables/<key>`.
    pub api: String,
    /// Whether the value is hidden (a sensitive name): it cannot be edited from the list.
    pub hidden: bool,
}

#[derive(Template)]
#[template(path = "admin/variables.html")]
struct VariablesPage {
    page: Page,
    tabs: Vec<Tab>,
    search: String,
    rows: Vec<VariableRow>,
    pager: Pager,
    can_edit: bool,
}

/// `GET /admin/variables`.
pub async fn page(
    State(state): State<RestState>,
    session: Session,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Html<String>, UiError> {
    session.require(Action::Read, Resource::Variable)?;
    let found = state
        .store()
        .query_variables(query.pattern(), false, query.window())
        .await?;
    let names = &state.config().sensitive_names;
    let rows: Vec<VariableRow> = found
        .items
        .into_iter()
        .map(|v| {
            let value = names.redact_variable(&v.key, &v.value);
            VariableRow {
                hidden: value != v.value,
                api: format!("/api/v2/variables/{}", links::encode(&v.key)),
                description: v.description.unwrap_or_default(),
                value,
                key: v.key,
            }
        })
        .collect();
    let page = VariablesPage {
        page: Page::new(&session, "admin"),
        tabs: tabs(&session, "variables"),
        pager: query.pager("/admin/variables", rows.len(), found.total),
        search: query.search.clone(),
        rows,
        can_edit: session.allows(Action::Edit, Resource::Variable, None),
    };
    crate::views::html(&page)
}
