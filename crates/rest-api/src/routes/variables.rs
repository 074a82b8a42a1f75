//! `GET/POST/PATCH /variables` (the `PATCH` is the bulk one) and `GET/PATCH/DELETE
//! /variables/{variable_key}`, in Airflow 3's shapes.
//!
//! The value of a variable whose key looks secret (Airflow's `sensitive_var_conn_names`)
//! is answered as `***`, and in a JSON object value the values under secret-looking keys
//! are; a `PATCH` sending such a variable's `***` back keeps the stored value. Values are
//! stored with the server's cipher (`core.fernet_key`), so they are encrypted at rest.
//! `team_name` is always null.

use std::collections::HashSet;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use updraft_secrets::REDACTED;
use updraft_store::VariableRecord;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::bulk::{self, BulkBody, BulkResponse, BulkTarget};
use crate::auth::{Access, Action, Resource};
use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::params::{order_by, Paging};
use crate::{RestError, RestState};

pub(crate) const PERMISSIONS: super::Permissions = &[
    (
        "get_variables",
        Access::Require(Action::Read, Resource::Variable),
    ),
    (
        "get_variable",
        Access::Require(Action::Read, Resource::Variable),
    ),
    (
        "post_variable",
        Access::Require(Action::Create, Resource::Variable),
    ),
    (
        "patch_variable",
        Access::Require(Action::Edit, Resource::Variable),
    ),
    (
        "delete_variable",
        Access::Require(Action::Delete, Resource::Variable),
    ),
    (
        "bulk_variables",
        Access::Require(Action::Edit, Resource::Variable),
    ),
];

pub(crate) fn routes() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(get_variables, post_variable, bulk_variables))
        .routes(routes!(get_variable, patch_variable, delete_variable))
}

/// The longest key Airflow accepts.
const MAX_KEY_LENGTH: usize = 250;

/// Airflow's `VariableResponse`, secrets hidden.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VariableResponse {
    pub key: String,
    pub value: String,
    pub description: Option<String>,
    pub is_encrypted: bool,
    pub team_name: Option<String>,
}

/// Airflow's `VariableCollectionResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VariableCollectionResponse {
    pub variables: Vec<VariableResponse>,
    pub total_entries: u64,
}

/// Airflow's `VariableBody`: `value` is any JSON; a string is stored as it is, anything else
/// as its JSON text.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariableBody {
    /// At most 250 characters.
    pub key: String,
    #[schema(value_type = Object)]
    pub value: Value,
    #[serde(default)]
    pub description: Option<String>,
    /// Accepted for compatibility; updraft has no teams.
    #[serde(default)]
    #[allow(dead_code)]
    pub team_name: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VariableListParams {
    /// How many to answer.
    pub limit: Option<u32>,
    /// How many to skip.
    pub offset: Option<u64>,
    /// `key` (or `id`), `description`, `is_encrypted`, `_val`; `-` for descending; repeatable.
    #[serde(default)]
    pub order_by: Vec<String>,
    /// Case-insensitive substring of the key, with `%` and `_` wildcards.
    pub variable_key_pattern: Option<String>,
    /// Case-sensitive prefix of the key.
    pub variable_key_prefix_pattern: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UpdateMask {
    /// Only these fields change (`value`, `description`); both when absent.
    #[serde(default)]
    pub update_mask: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VariableSort {
    Key,
    Value,
    Description,
    IsEncrypted,
}

const VARIABLE_ORDER: &[(&str, VariableSort)] = &[
    ("key", VariableSort::Key),
    ("id", VariableSort::Key),
    ("_val", VariableSort::Value),
    ("value", VariableSort::Value),
    ("description", VariableSort::Description),
    ("is_encrypted", VariableSort::IsEncrypted),
];

fn response(state: &RestState, v: VariableRecord) -> VariableResponse {
    VariableResponse {
        value: state
            .config()
            .sensitive_names
            .redact_variable(&v.key, &v.value),
        key: v.key,
        description: v.description,
        is_encrypted: v.is_encrypted,
        team_name: None,
    }
}

fn not_found(key: &str) -> RestError {
    RestError::not_found(format!("The Variable with key: `{key}` was not found"))
}

impl VariableBody {
    fn validate(&self, location: &[&str]) -> Result<(), RestError> {
        let at = |field: &str| {
            let mut at: Vec<&str> = location.to_vec();
            at.push(field);
            at.iter().map(|s| s.to_string()).collect::<Vec<_>>()
        };
        let invalid = |field: &str, message: String| {
            let at = at(field);
            let at: Vec<&str> = at.iter().map(String::as_str).collect();
            RestError::invalid(&at, message)
        };
        if self.key.trim().is_empty() {
            return Err(invalid("key", "a variable needs a key".into()));
        }
        if self.key.chars().count() > MAX_KEY_LENGTH {
            return Err(invalid(
                "key",
                format!("at most {MAX_KEY_LENGTH} characters"),
            ));
        }
        if self.value.is_null() {
            return Err(invalid("value", "a variable needs a value".into()));
        }
        Ok(())
    }

    /// The value as stored: a string as it is, any other JSON as its text.
    fn stored_value(&self) -> String {
        match &self.value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    fn record(&self) -> VariableRecord {
        VariableRecord {
            key: self.key.clone(),
            value: self.stored_value(),
            description: self.description.clone(),
            is_encrypted: false,
        }
    }

    /// `current` with this body's change (the fields `mask` names, or both). A secret
    /// variable's value sent back as `***` keeps the stored one.
    fn apply(
        &self,
        mut current: VariableRecord,
        mask: Option<&[String]>,
        state: &RestState,
    ) -> VariableRecord {
        let changes = |field: &str| mask.is_none_or(|m| m.iter().any(|f| f == field));
        if changes("value") {
            let sent = self.stored_value();
            let keeps_secret =
                sent == REDACTED && state.config().sensitive_names.is_sensitive(&current.key);
            if !keeps_secret {
                current.value = sent;
            }
        }
        if changes("description") {
            current.description = self.description.clone();
        }
        current
    }
}

/// Reads `update_mask`; `None` when it names nothing; an unknown field is a 400.
fn mask_fields(mask: &[String]) -> Result<Option<Vec<String>>, RestError> {
    let names: Vec<String> = mask
        .iter()
        .flat_map(|m| m.split(','))
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(unknown) = names
        .iter()
        .find(|n| !matches!(n.as_str(), "value" | "description" | "key" | "team_name"))
    {
        return Err(RestError::bad_request(format!(
            "update_mask names an unknown field: {unknown}"
        )));
    }
    Ok((!names.is_empty()).then_some(names))
}

/// Variables, filtered, sorted and paged. Sorted by key, the database pages; any other
/// order is applied to the matching variables here.
#[utoipa::path(get, path = "/variables", operation_id = "get_variables", tag = "Variable",
    params(VariableListParams),
    responses((status = 200, body = VariableCollectionResponse),
        (status = 400, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn get_variables(
    State(state): State<RestState>,
    QueryParams(params): QueryParams<VariableListParams>,
) -> Result<Json<VariableCollectionResponse>, RestError> {
    let sort = order_by(&params.order_by, VARIABLE_ORDER)?;
    let window = Paging {
        limit: params.limit,
        offset: params.offset,
    }
    .window(state.config());
    let pattern = params.variable_key_pattern.clone();
    let by_key_only = sort.iter().all(|s| s.field == VariableSort::Key);
    if by_key_only && params.variable_key_prefix_pattern.is_none() {
        let descending = sort.first().is_some_and(|s| s.descending);
        let page = state
            .store()
            .query_variables(pattern, descending, window)
            .await?;
        return Ok(Json(VariableCollectionResponse {
            total_entries: page.total,
            variables: page
                .items
                .into_iter()
                .map(|v| response(&state, v))
                .collect(),
        }));
    }
    let mut all = all_variables(&state, pattern.as_deref()).await?;
    all.retain(|v| {
        params
            .variable_key_prefix_pattern
            .as_deref()
            .is_none_or(|prefix| v.key.starts_with(prefix))
    });
    // Values sort as answered: a sensitive one as `***`, so that its position among values a
    // client chose cannot reveal it.
    let mut all: Vec<VariableResponse> = all.into_iter().map(|v| response(&state, v)).collect();
    all.sort_by(|a, b| {
        for key in &sort {
            let order = match key.field {
                VariableSort::Key => a.key.cmp(&b.key),
                VariableSort::Value => a.value.cmp(&b.value),
                VariableSort::Description => a.description.cmp(&b.description),
                VariableSort::IsEncrypted => a.is_encrypted.cmp(&b.is_encrypted),
            };
            let order = if key.descending {
                order.reverse()
            } else {
                order
            };
            if order.is_ne() {
                return order;
            }
        }
        a.key.cmp(&b.key)
    });
    let total_entries = all.len() as u64;
    let variables = all
        .into_iter()
        .skip(usize::try_from(window.offset).unwrap_or(usize::MAX))
        .take(window.limit as usize)
        .collect();
    Ok(Json(VariableCollectionResponse {
        variables,
        total_entries,
    }))
}

/// Every variable whose key matches `pattern`, read a page at a time.
async fn all_variables(
    state: &RestState,
    pattern: Option<&str>,
) -> Result<Vec<VariableRecord>, RestError> {
    const PAGE: u32 = 1000;
    let mut all = Vec::new();
    loop {
        let page = state
            .store()
            .query_variables(
                pattern.map(str::to_string),
                false,
                updraft_store::Window {
                    limit: PAGE,
                    offset: all.len() as u64,
                },
            )
            .await?;
        let got = page.items.len();
        all.extend(page.items);
        if got < PAGE as usize || all.len() as u64 >= page.total {
            return Ok(all);
        }
    }
}

/// One variable.
#[utoipa::path(get, path = "/variables/{variable_key}", operation_id = "get_variable",
    tag = "Variable",
    params(("variable_key" = String, Path)),
    responses((status = 200, body = VariableResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn get_variable(
    State(state): State<RestState>,
    PathParams(variable_key): PathParams<String>,
) -> Result<Json<VariableResponse>, RestError> {
    let variable = state
        .store()
        .get_variable_record(&variable_key)
        .await?
        .ok_or_else(|| not_found(&variable_key))?;
    Ok(Json(response(&state, variable)))
}

/// Creates a variable; 409 if the key is taken.
#[utoipa::path(post, path = "/variables", operation_id = "post_variable", tag = "Variable",
    request_body = VariableBody,
    responses((status = 201, body = VariableResponse), (status = 409, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn post_variable(
    State(state): State<RestState>,
    JsonBody(body): JsonBody<VariableBody>,
) -> Result<(StatusCode, Json<VariableResponse>), RestError> {
    body.validate(&["body"])?;
    if state
        .store()
        .get_variable_record(&body.key)
        .await?
        .is_some()
    {
        return Err(RestError::conflict(format!(
            "The Variable with key: `{}` already exists",
            body.key
        )));
    }
    state.store().put_variable(body.record()).await?;
    let stored = state
        .store()
        .get_variable_record(&body.key)
        .await?
        .ok_or_else(|| not_found(&body.key))?;
    Ok((StatusCode::CREATED, Json(response(&state, stored))))
}

/// Changes a variable: the fields in `update_mask`, or its value and description. The
/// body's `key` must be the path's.
#[utoipa::path(patch, path = "/variables/{variable_key}", operation_id = "patch_variable",
    tag = "Variable",
    params(("variable_key" = String, Path), UpdateMask),
    request_body = VariableBody,
    responses((status = 200, body = VariableResponse), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn patch_variable(
    State(state): State<RestState>,
    PathParams(variable_key): PathParams<String>,
    QueryParams(mask): QueryParams<UpdateMask>,
    JsonBody(body): JsonBody<VariableBody>,
) -> Result<Json<VariableResponse>, RestError> {
    let mask = mask_fields(&mask.update_mask)?;
    body.validate(&["body"])?;
    if body.key != variable_key {
        return Err(RestError::bad_request(
            "Invalid body, key from request body doesn't match uri parameter",
        ));
    }
    let target = VariableTarget(&state);
    target.update(&body, mask.as_deref()).await?;
    let stored = state
        .store()
        .get_variable_record(&variable_key)
        .await?
        .ok_or_else(|| not_found(&variable_key))?;
    Ok(Json(response(&state, stored)))
}

/// Deletes a variable.
#[utoipa::path(delete, path = "/variables/{variable_key}", operation_id = "delete_variable",
    tag = "Variable",
    params(("variable_key" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
async fn delete_variable(
    State(state): State<RestState>,
    PathParams(variable_key): PathParams<String>,
) -> Result<StatusCode, RestError> {
    VariableTarget(&state).delete(&variable_key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates, updates and deletes variables in one request.
#[utoipa::path(patch, path = "/variables", operation_id = "bulk_variables", tag = "Variable",
    request_body = BulkBody<VariableBody>,
    responses((status = 200, body = BulkResponse), (status = 422, body = crate::error::ErrorBody)))]
async fn bulk_variables(
    State(state): State<RestState>,
    JsonBody(body): JsonBody<BulkBody<VariableBody>>,
) -> Result<Json<BulkResponse>, RestError> {
    for (location, entity) in bulk::entities_with_location(&body) {
        let location: Vec<&str> = location.iter().map(String::as_str).collect();
        entity.validate(&location)?;
    }
    for action in &body.actions {
        if let bulk::BulkAction::Update(update) = action {
            mask_fields(update.update_mask.as_deref().unwrap_or_default())?;
        }
    }
    Ok(Json(bulk::run(&VariableTarget(&state), body).await))
}

/// The variables as a bulk target.
struct VariableTarget<'a>(&'a RestState);

#[async_trait]
impl BulkTarget for VariableTarget<'_> {
    type Entity = VariableBody;
    const ENTITIES: &'static str = "variables with these keys";

    fn key(entity: &VariableBody) -> String {
        entity.key.clone()
    }

    async fn existing(&self, keys: &[String]) -> Result<HashSet<String>, RestError> {
        let mut found = HashSet::new();
        for key in keys {
            if self.0.store().get_variable_record(key).await?.is_some() {
                found.insert(key.clone());
            }
        }
        Ok(found)
    }

    async fn create(&self, entity: &VariableBody) -> Result<(), RestError> {
        // Overwriting keeps a secret value that comes back as `***`, as an update does.
        let record = match self.0.store().get_variable_record(&entity.key).await? {
            Some(current) => entity.apply(current, None, self.0),
            None => entity.record(),
        };
        Ok(self.0.store().put_variable(record).await?)
    }

    async fn update(
        &self,
        entity: &VariableBody,
        update_mask: Option<&[String]>,
    ) -> Result<(), RestError> {
        let current = self
            .0
            .store()
            .get_variable_record(&entity.key)
            .await?
            .ok_or_else(|| not_found(&entity.key))?;
        let mask = mask_fields(update_mask.unwrap_or_default())?;
        let updated = entity.apply(current, mask.as_deref(), self.0);
        Ok(self.0.store().put_variable(updated).await?)
    }

    async fn delete(&self, key: &str) -> Result<(), RestError> {
        if !self.0.store().delete_variable(key).await? {
            return Err(not_found(key));
        }
        Ok(())
    }
}
