//! `GET /dags/{dag_id}/trigger`: a form generated from the DAG's params, or its conf as JSON;
//! `static/dag.js` checks it and posts it to `POST /api/v2/dags/{dag_id}/dagRuns`, which
//! validates the conf against the params again.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use updraft_rest_api::auth::{Action, Resource};
use updraft_rest_api::RestState;

use super::{header, load, page, DagHeader};
use crate::layout::Page;
use crate::links;
use crate::session::Session;
use crate::trigger_form::{fields, Field};
use crate::UiError;

#[derive(Template)]
#[template(path = "dag/trigger.html")]
struct TriggerPage {
    page: Page,
    dag: DagHeader,
    fields: Vec<Field>,
    /// The params' defaults as JSON, the JSON editor's starting point.
    conf: String,
    api: String,
}

pub(crate) async fn form(
    State(state): State<RestState>,
    session: Session,
    Path(dag_id): Path<String>,
) -> Result<Response, UiError> {
    if !session.allows(Action::Create, Resource::DagRun, Some(&dag_id)) {
        return Err(UiError::Forbidden(format!(
            "{} ({}) may not trigger DAG runs",
            session.username(),
            session.role().as_str()
        )));
    }
    let (record, dag) = load(&state, &dag_id).await?;
    let params = dag.param_specs();
    let defaults: serde_json::Map<String, serde_json::Value> = params
        .iter()
        .filter_map(|p| Some((p.name.clone(), p.default.clone()?)))
        .collect();
    page(&TriggerPage {
        page: Page::new(&session, "dags"),
        dag: header(&session, &record, &dag, "trigger"),
        fields: fields(&params),
        conf: serde_json::to_string_pretty(&defaults).unwrap_or_else(|_| "{}".to_string()),
        api: format!("/api/v2/dags/{}/dagRuns", links::encode(&dag_id)),
    })
}
