//! `GET/POST/PATCH /connections` (the `PATCH` is the bulk one), `GET/PATCH/DELETE
//! /connections/{connection_id}` and `POST /connections/test`, in Airflow 3's shapes.
//!
//! Answers never carry a secret: `password` is `***` when set, and values under
//! secret-looking keys of `extra` are `***`. A `PATCH` that sends such a `***` back keeps the
//! stored value, so a client may write back what it read. Connections are stored with the
//! server's cipher (`core.fernet_key`), so passwords and extras are encrypted at rest.
//!
//! Not served: `POST /connections/defaults` (Airflow's provider catalogue) and the queued
//! tests (`/connections/enqueue-test`, no triggerer); `team_name` is always null.

mod body;
mod test;

use std::collections::HashSet;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use updraft_secrets::REDACTED;
use updraft_store::ConnectionRecord;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::bulk::{self, BulkBody, BulkResponse, BulkTarget};
use crate::auth::{Access, Action, Resource};
use crate::extract::{like_matches, JsonBody, PathParams, QueryParams};
use crate::params::{order_by, Paging};
use crate::{RestError, RestState};
use body::mask_fields;
pub use body::ConnectionBody;

pub(crate) const PERMISSIONS: super::Permissions = &[
    (
        "get_connections",
        Access::Require(Action::Read, Resource::Connection),
    ),
    (
        "get_connection",
        Access::Require(Action::Read, Resource::Connection),
    ),
    (
        "post_connection",
        Access::Require(Action::Create, Resource::Connection),
    ),
    (
        "patch_connection",
        Access::Require(Action::Edit, Resource::Connection),
    ),
    (
        "delete_connection",
        Access::Require(Action::Delete, Resource::Connection),
    ),
    (
        "bulk_connections",
        Access::Require(Action::Edit, Resource::Connection),
    ),
    (
        "test_connection",
        Access::Require(Action::Create, Resource::Connection),
    ),
];

pub(crate) fn routes() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(get_connections, post_connection, bulk_connections))
        .routes(routes!(get_connection, patch_connection, delete_connection))
        .routes(routes!(test::test_connection))
}

/// Airflow's `ConnectionResponse`, secrets hidden.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConnectionResponse {
    pub connection_id: String,
    pub conn_type: String,
    pub description: Option<String>,
    pub host: Option<String>,
    pub login: Option<String>,
    pub schema: Option<String>,
    pub port: Option<i32>,
    /// `***` when a password is set.
    pub password: Option<String>,
    /// The extra JSON, with values under secret-looking keys as `***`.
    pub extra: Option<String>,
    pub team_name: Option<String>,
}

/// Airflow's `ConnectionCollectionResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConnectionCollectionResponse {
    pub connections: Vec<ConnectionResponse>,
    pub total_entries: u64,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConnectionListParams {
    /// How many to answer.
    pub limit: Option<u32>,
    /// How many to skip.
    pub offset: Option<u64>,
    /// `connection_id` (or `conn_id`, `id`), `conn_type`, `description`, `host`, `port`;
    /// `-` for descending; repeatable.
    #[serde(default)]
    pub order_by: Vec<String>,
    /// Case-insensitive substring of the id, with `%` and `_` wildcards.
    pub connection_id_pattern: Option<String>,
    /// Case-sensitive prefix of the id.
    pub connection_id_prefix_pattern: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UpdateMask {
    /// Only these fields change; all the body has when absent.
    #[serde(default)]
    pub update_mask: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnectionSort {
    Id,
    Type,
    Description,
    Host,
    Port,
}

const CONNECTION_ORDER: &[(&str, ConnectionSort)] = &[
    ("connection_id", ConnectionSort::Id),
    ("conn_id", ConnectionSort::Id),
    ("id", ConnectionSort::Id),
    ("conn_type", ConnectionSort::Type),
    ("description", ConnectionSort::Description),
    ("host", ConnectionSort::Host),
    ("port", ConnectionSort::Port),
];

/// A connection as answers show it.
pub(crate) fn response(state: &RestState, c: ConnectionRecord) -> ConnectionResponse {
    let names = &state.config().sensitive_names;
    ConnectionResponse {
        password: c.password.map(|_| REDACTED.to_string()),
        extra: c.extra.map(|e| names.redact_extra(&e)),
        connection_id: c.conn_id,
        conn_type: c.conn_type,
        description: c.description,
        host: c.host,
        login: c.login,
        schema: c.schema,
        port: c.port,
        team_name: None,
    }
}

fn not_found(conn_id: &str) -> RestError {
    RestError::not_found(format!(
        "The Connection with connection_id: `{conn_id}` was not found"
    ))
}

fn exists(conn_id: &str) -> RestError {
    RestError::conflict(format!(
        "The connection with connection_id: `{conn_id}` already exists"
    ))
}

/// Connections, filtered, sorted and paged. Sorted by id, the database pages; any other
/// order is applied to the matching connections here.
#[utoipa::path(get, path = "/connections", operation_id = "get_connections", tag = "Connection",
    params(ConnectionListParams),
    responses((status = 200, body = ConnectionCollectionResponse),
        (status = 400, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn get_connections(
    State(state): State<RestState>,
    QueryParams(params): QueryParams<ConnectionListParams>,
) -> Result<Json<ConnectionCollectionResponse>, RestError> {
    let sort = order_by(&params.order_by, CONNECTION_ORDER)?;
    let window = Paging {
        limit: params.limit,
        offset: params.offset,
    }
    .window(state.config());
    let pattern = params.connection_id_pattern.clone();
    let by_id_only = sort.iter().all(|s| s.field == ConnectionSort::Id);
    if by_id_only && params.connection_id_prefix_pattern.is_none() {
        let descending = sort.first().is_some_and(|s| s.descending);
        let page = state
            .store()
            .query_connections(pattern, descending, window)
            .await?;
        return Ok(Json(ConnectionCollectionResponse {
            total_entries: page.total,
            connections: page
                .items
                .into_iter()
                .map(|c| response(&state, c))
                .collect(),
        }));
    }
    let mut all: Vec<ConnectionRecord> = updraft_store::all_connections(state.store().as_ref())
        .await?
        .into_iter()
        .filter(|c| {
            pattern
                .as_deref()
                .is_none_or(|p| like_matches(p, &c.conn_id))
                && params
                    .connection_id_prefix_pattern
                    .as_deref()
                    .is_none_or(|prefix| c.conn_id.starts_with(prefix))
        })
        .collect();
    all.sort_by(|a, b| {
        for key in &sort {
            let order = match key.field {
                ConnectionSort::Id => a.conn_id.cmp(&b.conn_id),
                ConnectionSort::Type => a.conn_type.cmp(&b.conn_type),
                ConnectionSort::Description => a.description.cmp(&b.description),
                ConnectionSort::Host => a.host.cmp(&b.host),
                ConnectionSort::Port => a.port.cmp(&b.port),
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
        a.conn_id.cmp(&b.conn_id)
    });
    let total_entries = all.len() as u64;
    let connections = all
        .into_iter()
        .skip(usize::try_from(window.offset).unwrap_or(usize::MAX))
        .take(window.limit as usize)
        .map(|c| response(&state, c))
        .collect();
    Ok(Json(ConnectionCollectionResponse {
        connections,
        total_entries,
    }))
}

/// One connection.
#[utoipa::path(get, path = "/connections/{connection_id}", operation_id = "get_connection",
    tag = "Connection",
    params(("connection_id" = String, Path)),
    responses((status = 200, body = ConnectionResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn get_connection(
    State(state): State<RestState>,
    PathParams(connection_id): PathParams<String>,
) -> Result<Json<ConnectionResponse>, RestError> {
    let connection = state
        .store()
        .get_connection(&connection_id)
        .await?
        .ok_or_else(|| not_found(&connection_id))?;
    Ok(Json(response(&state, connection)))
}

/// Creates a connection; 409 if the id is taken.
#[utoipa::path(post, path = "/connections", operation_id = "post_connection", tag = "Connection",
    request_body = ConnectionBody,
    responses((status = 201, body = ConnectionResponse), (status = 409, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn post_connection(
    State(state): State<RestState>,
    JsonBody(body): JsonBody<ConnectionBody>,
) -> Result<(StatusCode, Json<ConnectionResponse>), RestError> {
    body.validate(&["body"])?;
    if state
        .store()
        .get_connection(&body.connection_id)
        .await?
        .is_some()
    {
        return Err(exists(&body.connection_id));
    }
    let record = body.record();
    state.store().put_connection(record.clone()).await?;
    Ok((StatusCode::CREATED, Json(response(&state, record))))
}

/// Changes a connection: the fields in `update_mask`, or every field the body has. The body's
/// `connection_id` must be the path's.
#[utoipa::path(patch, path = "/connections/{connection_id}", operation_id = "patch_connection",
    tag = "Connection",
    params(("connection_id" = String, Path), UpdateMask),
    request_body = ConnectionBody,
    responses((status = 200, body = ConnectionResponse), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn patch_connection(
    State(state): State<RestState>,
    PathParams(connection_id): PathParams<String>,
    QueryParams(mask): QueryParams<UpdateMask>,
    JsonBody(body): JsonBody<ConnectionBody>,
) -> Result<Json<ConnectionResponse>, RestError> {
    let mask = mask_fields(&mask.update_mask)?;
    body.validate(&["body"])?;
    if body.connection_id != connection_id {
        return Err(RestError::bad_request(
            "The connection_id in the request body does not match the URL parameter",
        ));
    }
    let current = state
        .store()
        .get_connection(&connection_id)
        .await?
        .ok_or_else(|| not_found(&connection_id))?;
    let updated = body.apply(current, mask.as_deref(), &state.config().sensitive_names);
    state.store().put_connection(updated.clone()).await?;
    Ok(Json(response(&state, updated)))
}

/// Deletes a connection.
#[utoipa::path(delete, path = "/connections/{connection_id}", operation_id = "delete_connection",
    tag = "Connection",
    params(("connection_id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
async fn delete_connection(
    State(state): State<RestState>,
    PathParams(connection_id): PathParams<String>,
) -> Result<StatusCode, RestError> {
    ConnectionTarget(&state).delete(&connection_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates, updates and deletes connections in one request.
#[utoipa::path(patch, path = "/connections", operation_id = "bulk_connections", tag = "Connection",
    request_body = BulkBody<ConnectionBody>,
    responses((status = 200, body = BulkResponse), (status = 422, body = crate::error::ErrorBody)))]
async fn bulk_connections(
    State(state): State<RestState>,
    JsonBody(body): JsonBody<BulkBody<ConnectionBody>>,
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
    Ok(Json(bulk::run(&ConnectionTarget(&state), body).await))
}

/// The connections as a bulk target.
struct ConnectionTarget<'a>(&'a RestState);

#[async_trait]
impl BulkTarget for ConnectionTarget<'_> {
    type Entity = ConnectionBody;
    const ENTITIES: &'static str = "connections with these connection_ids";

    fn key(entity: &ConnectionBody) -> String {
        entity.connection_id.clone()
    }

    async fn existing(&self, keys: &[String]) -> Result<HashSet<String>, RestError> {
        let mut found = HashSet::new();
        for key in keys {
            if self.0.store().get_connection(key).await?.is_some() {
                found.insert(key.clone());
            }
        }
        Ok(found)
    }

    async fn create(&self, entity: &ConnectionBody) -> Result<(), RestError> {
        // Overwriting keeps a stored secret that comes back as `***`, as an update does.
        let record = match self.0.store().get_connection(&entity.connection_id).await? {
            Some(current) => entity.apply(current, None, &self.0.config().sensitive_names),
            None => entity.record(),
        };
        Ok(self.0.store().put_connection(record).await?)
    }

    async fn update(
        &self,
        entity: &ConnectionBody,
        update_mask: Option<&[String]>,
    ) -> Result<(), RestError> {
        let current = self
            .0
            .store()
            .get_connection(&entity.connection_id)
            .await?
            .ok_or_else(|| not_found(&entity.connection_id))?;
        let mask = mask_fields(update_mask.unwrap_or_default())?;
        let updated = entity.apply(current, mask.as_deref(), &self.0.config().sensitive_names);
        Ok(self.0.store().put_connection(updated).await?)
    }

    async fn delete(&self, key: &str) -> Result<(), RestError> {
        if !self.0.store().delete_connection(key).await? {
            return Err(not_found(key));
        }
        Ok(())
    }
}
