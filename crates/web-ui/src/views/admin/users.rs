//! `/admin/users` (Admin only): who may sign in, with which role. Users are managed with
//! `updraft users …`; the public API has no user routes yet.

use askama::Template;
use axum::extract::State;
use axum::response::Html;
use updraft_rest_api::auth::{Action, Resource};
use updraft_rest_api::RestState;

use super::{tabs, ListQuery, Pager, Tab};
use crate::layout::Page;
use crate::query::QueryParams;
use crate::session::Session;
use crate::time::Moment;
use crate::UiError;

pub struct UserRow {
    pub username: String,
    pub role: String,
    pub email: String,
    pub name: String,
    pub active: bool,
    pub created: Moment,
    pub last_login: Option<Moment>,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    page: Page,
    tabs: Vec<Tab>,
    rows: Vec<UserRow>,
    search: String,
    pager: Pager,
}

/// `GET /admin/users`.
pub async fn page(
    State(state): State<RestState>,
    session: Session,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Html<String>, UiError> {
    session.require(Action::Read, Resource::User)?;
    // Users are few (people, not data): searched and paged here rather than in SQL.
    let mut users = state.store().list_users().await?;
    if let Some(pattern) = query.pattern().map(|p| p.to_lowercase()) {
        users.retain(|u| {
            u.username.to_lowercase().contains(&pattern)
                || u.email
                    .as_deref()
                    .is_some_and(|e| e.to_lowercase().contains(&pattern))
        });
    }
    users.sort_by(|a, b| a.username.cmp(&b.username));
    let total = users.len() as u64;
    let window = query.window();
    let rows: Vec<UserRow> = users
        .into_iter()
        .skip(usize::try_from(window.offset).unwrap_or(usize::MAX))
        .take(window.limit as usize)
        .map(|u| UserRow {
            name: [u.first_name.as_deref(), u.last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
            email: u.email.unwrap_or_default(),
            active: u.active,
            created: Moment::new(u.created_at),
            last_login: u.last_login.map(Moment::new),
            role: u.role,
            username: u.username,
        })
        .collect();
    let page = UsersPage {
        page: Page::new(&session, "admin"),
        tabs: tabs(&session, "users"),
        pager: query.pager("/admin/users", rows.len(), total),
        search: query.search.clone(),
        rows,
    };
    crate::views::html(&page)
}
