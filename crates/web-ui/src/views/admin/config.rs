//! `/admin/config` (Admin only): the configuration in force, secrets hidden, when
//! `api.expose_config` allows it (as `GET /api/v2/config`).

use askama::Template;
use axum::extract::State;
use axum::response::Html;
use updraft_rest_api::auth::{Action, Resource};
use updraft_rest_api::RestState;

use super::{tabs, Tab};
use crate::layout::Page;
use crate::session::Session;
use crate::UiError;

pub struct ConfigSection {
    pub name: String,
    pub options: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "admin/config.html")]
struct ConfigPage {
    page: Page,
    tabs: Vec<Tab>,
    exposed: bool,
    sections: Vec<ConfigSection>,
}

/// `GET /admin/config`.
pub async fn page(
    State(state): State<RestState>,
    session: Session,
) -> Result<Html<String>, UiError> {
    session.require(Action::Read, Resource::Config)?;
    let config = state.config();
    let sections = match (&config.config, config.expose_config) {
        (serde_json::Value::Object(sections), true) => sections
            .iter()
            .map(|(name, options)| ConfigSection {
                name: name.clone(),
                options: match options {
                    serde_json::Value::Object(options) => options
                        .iter()
                        .map(|(key, value)| (key.clone(), text(value)))
                        .collect(),
                    other => vec![(String::new(), text(other))],
                },
            })
            .collect(),
        _ => Vec::new(),
    };
    let page = ConfigPage {
        page: Page::new(&session, "admin"),
        tabs: tabs(&session, "config"),
        exposed: config.expose_config,
        sections,
    };
    crate::views::html(&page)
}

fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
