//! Admin (`/admin/…`): variables, connections (the password is write-only), pools, users
//! (Admin only) and the configuration (Admin, when `api.expose_config`). Pages read the
//! store; every change is a `fetch` from `app.js` to `/api/v2` (declared in the forms'
//! `data-api`), so the API's permission checks and audit log apply.

mod config;
mod connections;
mod pools;
mod users;
mod variables;

use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use updraft_rest_api::auth::{Action, Resource};
use updraft_rest_api::RestState;
use updraft_store::Window;

use crate::links;
use crate::session::Session;

/// Rows per page of the lists.
const PAGE_SIZE: u32 = 50;

pub(crate) fn routes() -> Router<RestState> {
    Router::new()
        .route("/admin", get(pools::redirect))
        .route("/admin/variables", get(variables::page))
        .route("/admin/connections", get(connections::page))
        .route("/admin/pools", get(pools::page))
        .route("/admin/users", get(users::page))
        .route("/admin/config", get(config::page))
}

/// A search and a page number, as the lists take them.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    search: String,
    #[serde(default)]
    page: Option<u64>,
}

impl ListQuery {
    fn pattern(&self) -> Option<String> {
        Some(self.search.trim().to_string()).filter(|s| !s.is_empty())
    }

    fn window(&self) -> Window {
        Window {
            limit: PAGE_SIZE,
            offset: (self.page.unwrap_or(1).max(1) - 1).saturating_mul(u64::from(PAGE_SIZE)),
        }
    }

    /// The pager of a list at `path` with `total` matches.
    fn pager(&self, path: &str, shown: usize, total: u64) -> Pager {
        let page = self.page.unwrap_or(1).max(1);
        let offset = (page - 1).saturating_mul(u64::from(PAGE_SIZE));
        let link = |page: u64| {
            let mut query = Vec::new();
            if !self.search.is_empty() {
                query.push(format!("search={}", links::encode(&self.search)));
            }
            if page > 1 {
                query.push(format!("page={page}"));
            }
            if query.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{}", query.join("&"))
            }
        };
        Pager {
            first: if shown == 0 { 0 } else { offset + 1 },
            last: offset + shown as u64,
            total,
            previous: (page > 1).then(|| link(page - 1)),
            next: (offset + (shown as u64) < total).then(|| link(page + 1)),
        }
    }
}

pub struct Pager {
    pub first: u64,
    pub last: u64,
    pub total: u64,
    pub previous: Option<String>,
    pub next: Option<String>,
}

/// An item of the Admin section's navigation.
pub struct Tab {
    pub label: &'static str,
    pub href: &'static str,
    pub current: bool,
}

/// The Admin pages this user may see, `current` marked.
pub fn tabs(session: &Session, current: &str) -> Vec<Tab> {
    let all: [(&'static str, &'static str, Resource); 5] = [
        ("Variables", "/admin/variables", Resource::Variable),
        ("Connections", "/admin/connections", Resource::Connection),
        ("Pools", "/admin/pools", Resource::Pool),
        ("Users", "/admin/users", Resource::User),
        ("Config", "/admin/config", Resource::Config),
    ];
    all.into_iter()
        .filter(|(_, _, resource)| session.allows(Action::Read, *resource, None))
        .map(|(label, href, _)| Tab {
            label,
            href,
            current: href.ends_with(current),
        })
        .collect()
}
