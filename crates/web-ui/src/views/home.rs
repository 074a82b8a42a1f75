//! Home (`/`): what needs attention now.

use askama::Template;
use axum::extract::State;
use axum::response::Html;
use updraft_rest_api::RestState;
use updraft_store::{DagQuery, Window};

use crate::layout::Page;
use crate::session::Session;
use crate::UiError;

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    page: Page,
    dag_count: u64,
}

/// `GET /`.
pub async fn page(
    State(state): State<RestState>,
    session: Session,
) -> Result<Html<String>, UiError> {
    let dags = state
        .store()
        .query_dags(DagQuery {
            exclude_stale: true,
            window: Window {
                limit: 1,
                offset: 0,
            },
            ..Default::default()
        })
        .await?;
    super::html(&HomePage {
        page: Page::new(&session, "home"),
        dag_count: dags.total,
    })
}
