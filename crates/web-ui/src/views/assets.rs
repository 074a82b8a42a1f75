//! Assets (`/assets`): every asset with its latest event, the DAGs scheduled on it and the
//! tasks that produce it — Airflow's Assets list, read from the store.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use updraft_rest_api::RestState;
use updraft_store::{AssetQuery, AssetRecord};

use crate::layout::Page;
use crate::links;
use crate::session::Session;
use crate::time::Moment;
use crate::UiError;

/// The page shows at most this many assets (by id).
const SHOWN: u32 = 500;

pub struct Link {
    pub label: String,
    pub href: String,
}

pub struct AssetRow {
    pub name: String,
    pub uri: String,
    pub group: String,
    pub last_event: Option<Moment>,
    pub consumers: Vec<Link>,
    pub producers: Vec<Link>,
}

#[derive(Template)]
#[template(path = "assets.html")]
struct AssetsPage {
    page: Page,
    rows: Vec<AssetRow>,
    total: i64,
}

/// `GET /assets`.
pub async fn page(State(state): State<RestState>, session: Session) -> Result<Response, UiError> {
    let (assets, total) = state
        .store()
        .list_assets(AssetQuery {
            limit: SHOWN,
            ..AssetQuery::default()
        })
        .await?;
    Ok(super::html(&AssetsPage {
        page: Page::new(&session, "assets"),
        rows: assets.into_iter().map(row).collect(),
        total,
    })?
    .into_response())
}

pub fn row(asset: AssetRecord) -> AssetRow {
    AssetRow {
        last_event: asset.last_event.map(|e| Moment::new(e.timestamp)),
        consumers: asset
            .scheduled_dags
            .iter()
            .map(|d| Link {
                label: d.dag_id.clone(),
                href: links::dag(&d.dag_id),
            })
            .collect(),
        producers: asset
            .producing_tasks
            .iter()
            .map(|t| Link {
                label: format!("{}.{}", t.dag_id, t.task_id),
                href: links::dag(&t.dag_id),
            })
            .collect(),
        name: asset.name,
        uri: asset.uri,
        group: asset.group,
    }
}
