//! `/admin/pools`: every pool with its slots and what uses them; Op and Admin edit.

use askama::Template;
use axum::extract::State;
use axum::response::{Html, Redirect};
use updraft_rest_api::auth::{Action, Resource};
use updraft_rest_api::RestState;

use super::{tabs, Tab};
use crate::layout::Page;
use crate::links;
use crate::session::Session;
use crate::UiError;

pub struct PoolRow {
    pub name: String,
    pub slots: u32,
    pub running: u32,
    pub queued: u32,
    pub scheduled: u32,
    pub open: i64,
    pub description: String,
    pub api: String,
}

#[derive(Template)]
#[template(path = "admin/pools.html")]
struct PoolsPage {
    page: Page,
    tabs: Vec<Tab>,
    rows: Vec<PoolRow>,
    can_edit: bool,
}

/// `GET /admin`: the first Admin page every role may see.
pub async fn redirect(session: Session) -> Redirect {
    if session.allows(Action::Read, Resource::Variable, None) {
        Redirect::to("/admin/variables")
    } else {
        Redirect::to("/admin/pools")
    }
}

/// `GET /admin/pools`.
pub async fn page(
    State(state): State<RestState>,
    session: Session,
) -> Result<Html<String>, UiError> {
    session.require(Action::Read, Resource::Pool)?;
    let store = state.store();
    let (pools, usage) = tokio::try_join!(store.list_pools(), store.pool_usage())?;
    let rows = pools
        .into_iter()
        .map(|pool| {
            let used = usage.get(&pool.name).copied().unwrap_or_default();
            PoolRow {
                open: i64::from(pool.slots) - i64::from(used.running) - i64::from(used.queued),
                slots: pool.slots,
                running: used.running,
                queued: used.queued,
                scheduled: used.scheduled,
                description: pool.description.unwrap_or_default(),
                api: format!("/api/v2/pools/{}", links::encode(&pool.name)),
                name: pool.name,
            }
        })
        .collect();
    let page = PoolsPage {
        page: Page::new(&session, "admin"),
        tabs: tabs(&session, "pools"),
        rows,
        can_edit: session.allows(Action::Edit, Resource::Pool, None),
    };
    crate::views::html(&page)
}
