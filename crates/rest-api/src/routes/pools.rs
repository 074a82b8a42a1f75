//! `GET/POST/PATCH /pools` (the `PATCH` is the bulk one) and `GET/PATCH/DELETE
//! /pools/{pool_name}`. Pools gate queueing, so every write wakes the schedulers.
//!
//! Differences from Airflow, because updraft has no such thing: `slots` cannot be `-1`
//! (unlimited: a task whose pool has no row runs unlimited), `include_deferred` is always
//! false (a `deferred` task, a time sensor, waits in the scheduler and never takes a slot) and `team_name` is always null. Pools have no numeric id:
//! `order_by=id` sorts by name.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use updraft_model::dag::DEFAULT_POOL;
use updraft_store::{PoolRecord, PoolUsage};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::bulk::{self, BulkBody, BulkJson, BulkResponse, BulkTarget};
use crate::auth::{Access, Action, Resource};
use crate::extract::{like_matches, JsonBody, PathParams, QueryParams};
use crate::params::{order_by, Paging};
use crate::{RestError, RestState};

pub(crate) const PERMISSIONS: super::Permissions = &[
    ("get_pools", Access::Require(Action::Read, Resource::Pool)),
    ("get_pool", Access::Require(Action::Read, Resource::Pool)),
    ("post_pool", Access::Require(Action::Create, Resource::Pool)),
    ("patch_pool", Access::Require(Action::Edit, Resource::Pool)),
    (
        "delete_pool",
        Access::Require(Action::Delete, Resource::Pool),
    ),
    ("bulk_pools", Access::Require(Action::Edit, Resource::Pool)),
];

pub(crate) fn routes() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(get_pools, post_pool, bulk_pools))
        .routes(routes!(get_pool, patch_pool, delete_pool))
}

/// The longest pool name Airflow accepts.
const MAX_NAME_LENGTH: usize = 256;

/// Airflow's `PoolResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PoolResponse {
    pub name: String,
    pub slots: u32,
    pub description: Option<String>,
    pub include_deferred: bool,
    /// Running and queued task instances.
    pub occupied_slots: i64,
    pub running_slots: i64,
    pub queued_slots: i64,
    pub scheduled_slots: i64,
    /// `slots - occupied_slots` (negative when slots were lowered below the occupation).
    pub open_slots: i64,
    pub deferred_slots: i64,
    pub team_name: Option<String>,
}

/// Airflow's `PoolCollectionResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PoolCollectionResponse {
    pub pools: Vec<PoolResponse>,
    pub total_entries: u64,
}

/// Airflow's `PoolBody`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolBody {
    pub name: String,
    /// Number of slots (at least 0).
    pub slots: u32,
    #[serde(default)]
    pub description: Option<String>,
    /// Accepted for compatibility; deferred tasks (time sensors) never take a slot.
    #[serde(default)]
    pub include_deferred: bool,
    /// Accepted for compatibility; updraft has no teams.
    #[serde(default)]
    pub team_name: Option<String>,
}

/// Airflow's `PoolPatchBody`: `pool` is the (new) name.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolPatchBody {
    pub pool: Option<String>,
    pub slots: Option<u32>,
    pub description: Option<String>,
    /// Accepted for compatibility (deferred tasks never take a slot); ignored.
    #[allow(dead_code)]
    pub include_deferred: Option<bool>,
    /// Accepted for compatibility (updraft has no teams); ignored.
    #[allow(dead_code)]
    pub team_name: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PoolListParams {
    /// How many to answer.
    pub limit: Option<u32>,
    /// How many to skip.
    pub offset: Option<u64>,
    /// `name` (or `pool`, `id`), `-` for descending; repeatable.
    #[serde(default)]
    pub order_by: Vec<String>,
    /// Case-insensitive substring, with `%` and `_` wildcards.
    pub pool_name_pattern: Option<String>,
    /// Case-sensitive prefix.
    pub pool_name_prefix_pattern: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UpdateMask {
    /// Only these fields change (`slots`, `description`, `pool`/`name`, `include_deferred`).
    #[serde(default)]
    pub update_mask: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PoolSort {
    Name,
    Slots,
}

const POOL_ORDER: &[(&str, PoolSort)] = &[
    ("id", PoolSort::Name),
    ("name", PoolSort::Name),
    ("pool", PoolSort::Name),
    ("slots", PoolSort::Slots),
];

fn response(pool: PoolRecord, usage: &HashMap<String, PoolUsage>) -> PoolResponse {
    let usage = usage.get(&pool.name).copied().unwrap_or_default();
    let occupied = i64::from(usage.running) + i64::from(usage.queued);
    PoolResponse {
        open_slots: i64::from(pool.slots) - occupied,
        occupied_slots: occupied,
        running_slots: usage.running.into(),
        queued_slots: usage.queued.into(),
        scheduled_slots: usage.scheduled.into(),
        deferred_slots: 0,
        include_deferred: false,
        team_name: None,
        name: pool.name,
        slots: pool.slots,
        description: pool.description,
    }
}

fn not_found(name: &str) -> RestError {
    RestError::not_found(format!("The Pool with name: `{name}` was not found"))
}

fn check_name(name: &str, location: &[&str]) -> Result<(), RestError> {
    if name.trim().is_empty() {
        return Err(RestError::invalid(location, "a pool needs a name"));
    }
    if name.chars().count() > MAX_NAME_LENGTH {
        return Err(RestError::invalid(
            location,
            format!("at most {MAX_NAME_LENGTH} characters"),
        ));
    }
    Ok(())
}

async fn find_pool(state: &RestState, name: &str) -> Result<Option<PoolRecord>, RestError> {
    Ok(state
        .store()
        .list_pools()
        .await?
        .into_iter()
        .find(|p| p.name == name))
}

async fn answer(state: &RestState, pool: PoolRecord) -> Result<PoolResponse, RestError> {
    let usage = state.store().pool_usage().await?;
    Ok(response(pool, &usage))
}

/// Pools, filtered, sorted and paged.
#[utoipa::path(get, path = "/pools", operation_id = "get_pools", tag = "Pool",
    params(PoolListParams),
    responses((status = 200, body = PoolCollectionResponse),
        (status = 400, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn get_pools(
    State(state): State<RestState>,
    QueryParams(params): QueryParams<PoolListParams>,
) -> Result<Json<PoolCollectionResponse>, RestError> {
    let sort = order_by(&params.order_by, POOL_ORDER)?;
    let window = Paging {
        limit: params.limit,
        offset: params.offset,
    }
    .window(state.config());
    let mut pools: Vec<PoolRecord> = state
        .store()
        .list_pools()
        .await?
        .into_iter()
        .filter(|p| {
            params
                .pool_name_pattern
                .as_deref()
                .is_none_or(|pattern| like_matches(pattern, &p.name))
                && params
                    .pool_name_prefix_pattern
                    .as_deref()
                    .is_none_or(|prefix| p.name.starts_with(prefix))
        })
        .collect();
    pools.sort_by(|a, b| {
        for key in &sort {
            let order = match key.field {
                PoolSort::Name => a.name.cmp(&b.name),
                PoolSort::Slots => a.slots.cmp(&b.slots),
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
        a.name.cmp(&b.name)
    });
    let total_entries = pools.len() as u64;
    let usage = state.store().pool_usage().await?;
    let pools = pools
        .into_iter()
        .skip(usize::try_from(window.offset).unwrap_or(usize::MAX))
        .take(window.limit as usize)
        .map(|p| response(p, &usage))
        .collect();
    Ok(Json(PoolCollectionResponse {
        pools,
        total_entries,
    }))
}

/// One pool.
#[utoipa::path(get, path = "/pools/{pool_name}", operation_id = "get_pool", tag = "Pool",
    params(("pool_name" = String, Path)),
    responses((status = 200, body = PoolResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn get_pool(
    State(state): State<RestState>,
    PathParams(pool_name): PathParams<String>,
) -> Result<Json<PoolResponse>, RestError> {
    let pool = find_pool(&state, &pool_name)
        .await?
        .ok_or_else(|| not_found(&pool_name))?;
    Ok(Json(answer(&state, pool).await?))
}

/// Creates a pool; 409 if one has the name.
#[utoipa::path(post, path = "/pools", operation_id = "post_pool", tag = "Pool",
    request_body = PoolBody,
    responses((status = 201, body = PoolResponse), (status = 409, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn post_pool(
    State(state): State<RestState>,
    JsonBody(body): JsonBody<PoolBody>,
) -> Result<(StatusCode, Json<PoolResponse>), RestError> {
    check_name(&body.name, &["body", "name"])?;
    if find_pool(&state, &body.name).await?.is_some() {
        return Err(RestError::conflict(format!(
            "The Pool with name: `{}` already exists",
            body.name
        )));
    }
    let pool = record(&body);
    state.store().set_pool(pool.clone()).await?;
    state.changed();
    Ok((StatusCode::CREATED, Json(answer(&state, pool).await?)))
}

fn record(body: &PoolBody) -> PoolRecord {
    PoolRecord {
        name: body.name.clone(),
        slots: body.slots,
        description: body.description.clone(),
    }
}

/// The fields of `update_mask` a patch may name.
const MASK_FIELDS: &[&str] = &["pool", "name", "slots", "description", "include_deferred"];

/// Changes a pool: the fields in `update_mask`, or (without one) the whole pool, as Airflow
/// does (then `slots` is required). `default_pool` keeps its name.
#[utoipa::path(patch, path = "/pools/{pool_name}", operation_id = "patch_pool", tag = "Pool",
    params(("pool_name" = String, Path), UpdateMask),
    request_body = PoolPatchBody,
    responses((status = 200, body = PoolResponse), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn patch_pool(
    State(state): State<RestState>,
    PathParams(pool_name): PathParams<String>,
    QueryParams(mask): QueryParams<UpdateMask>,
    JsonBody(body): JsonBody<PoolPatchBody>,
) -> Result<Json<PoolResponse>, RestError> {
    let mask: Vec<&str> = mask
        .update_mask
        .iter()
        .flat_map(|m| m.split(','))
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    if let Some(unknown) = mask.iter().find(|m| !MASK_FIELDS.contains(m)) {
        return Err(RestError::bad_request(format!(
            "update_mask names an unknown field: {unknown}"
        )));
    }
    let changes = |field: &str| mask.is_empty() || mask.contains(&field);
    if mask.is_empty() && body.slots.is_none() {
        return Err(RestError::invalid(
            &["body", "slots"],
            "required unless update_mask names the fields to change",
        ));
    }
    let current = find_pool(&state, &pool_name)
        .await?
        .ok_or_else(|| not_found(&pool_name))?;
    let new_name = match &body.pool {
        Some(name) if changes("pool") || changes("name") => name.clone(),
        _ => current.name.clone(),
    };
    check_name(&new_name, &["body", "pool"])?;
    if pool_name == DEFAULT_POOL && new_name != pool_name {
        return Err(RestError::bad_request(
            "Only slots and description can be modified on the default pool",
        ));
    }
    if new_name != pool_name && find_pool(&state, &new_name).await?.is_some() {
        return Err(RestError::conflict(format!(
            "The Pool with name: `{new_name}` already exists"
        )));
    }
    let updated = PoolRecord {
        name: new_name.clone(),
        slots: match body.slots {
            Some(slots) if changes("slots") => slots,
            _ => current.slots,
        },
        description: if changes("description") {
            body.description.clone()
        } else {
            current.description.clone()
        },
    };
    state.store().set_pool(updated.clone()).await?;
    if new_name != pool_name {
        // A rename: the new row is written first, so a failure here leaves both, never none.
        state.store().delete_pool(&pool_name).await?;
    }
    state.changed();
    Ok(Json(answer(&state, updated).await?))
}

/// Deletes a pool; `default_pool` cannot be deleted (400).
#[utoipa::path(delete, path = "/pools/{pool_name}", operation_id = "delete_pool", tag = "Pool",
    params(("pool_name" = String, Path)),
    responses((status = 204), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
async fn delete_pool(
    State(state): State<RestState>,
    PathParams(pool_name): PathParams<String>,
) -> Result<StatusCode, RestError> {
    PoolTarget(&state).delete(&pool_name).await?;
    state.changed();
    Ok(StatusCode::NO_CONTENT)
}

/// Creates, updates and deletes pools in one request.
#[utoipa::path(patch, path = "/pools", operation_id = "bulk_pools", tag = "Pool",
    request_body = BulkBody<PoolBody>,
    responses((status = 200, body = BulkResponse), (status = 422, body = crate::error::ErrorBody)))]
async fn bulk_pools(
    State(state): State<RestState>,
    BulkJson(body): BulkJson<PoolBody>,
) -> Result<Json<BulkResponse>, RestError> {
    for (mut location, entity) in bulk::entities_with_location(&body) {
        location.push("name".into());
        let location: Vec<&str> = location.iter().map(String::as_str).collect();
        check_name(&entity.name, &location)?;
    }
    let answer = bulk::run(&PoolTarget(&state), body).await;
    state.changed();
    Ok(Json(answer))
}

/// The pools as a bulk target.
struct PoolTarget<'a>(&'a RestState);

#[async_trait]
impl BulkTarget for PoolTarget<'_> {
    type Entity = PoolBody;
    const ENTITIES: &'static str = "pools with these pool names";

    fn key(entity: &PoolBody) -> String {
        entity.name.clone()
    }

    async fn existing(&self, keys: &[String]) -> Result<HashSet<String>, RestError> {
        let wanted: HashSet<&String> = keys.iter().collect();
        Ok(self
            .0
            .store()
            .list_pools()
            .await?
            .into_iter()
            .map(|p| p.name)
            .filter(|name| wanted.contains(name))
            .collect())
    }

    async fn create(&self, entity: &PoolBody) -> Result<(), RestError> {
        Ok(self.0.store().set_pool(record(entity)).await?)
    }

    async fn update(
        &self,
        entity: &PoolBody,
        update_mask: Option<&[String]>,
    ) -> Result<(), RestError> {
        let Some(mask) = update_mask.filter(|m| !m.is_empty()) else {
            return self.create(entity).await;
        };
        let current = find_pool(self.0, &entity.name)
            .await?
            .ok_or_else(|| not_found(&entity.name))?;
        let has = |field: &str| mask.iter().any(|m| m == field);
        let updated = PoolRecord {
            slots: if has("slots") {
                entity.slots
            } else {
                current.slots
            },
            description: if has("description") {
                entity.description.clone()
            } else {
                current.description
            },
            name: current.name,
        };
        Ok(self.0.store().set_pool(updated).await?)
    }

    async fn delete(&self, key: &str) -> Result<(), RestError> {
        if key == DEFAULT_POOL {
            return Err(RestError::bad_request("Default Pool can't be deleted"));
        }
        if !self.0.store().delete_pool(key).await? {
            return Err(not_found(key));
        }
        Ok(())
    }
}
