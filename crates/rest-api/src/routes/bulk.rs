//! The bulk `PATCH` of a collection (pools, variables, connections), as Airflow answers it:
//! a body of `actions`, each a `create` (with `action_on_existence`: `fail`, `skip` or
//! `overwrite`), an `update` (with `action_on_non_existence`: `fail` or `skip`, and an
//! optional `update_mask`) or a `delete` (entities given by key or as bodies, with
//! `action_on_non_existence`), answered by a [`BulkResponse`]: per action kind, the keys that
//! succeeded and the errors (`{"error": …, "status_code": …}`). The request itself answers
//! 200 even when an action failed; its errors say why.
//!
//! # How to use it for a resource
//!
//! 1. Implement [`BulkTarget`] on a small struct holding what the writes need (usually the
//!    [`RestState`](crate::RestState)): the entity body type (e.g. `VariableBody`), how to
//!    name the entities in errors, the key of an entity, which keys exist, and the three
//!    writes (create-or-overwrite, update with an optional mask, delete).
//! 2. The handler takes `JsonBody<BulkBody<YourBody>>` (so a malformed entity is a 422
//!    naming it), validates each entity as its single-entity route would (a 422 refuses the
//!    whole request before anything changes), then answers `Json(run(&target,
//!    body).await)`, and calls `state.changed()` if the resource matters to scheduling.
//! 3. In the `#[utoipa::path]`, `request_body = BulkBody<YourBody>` and
//!    `responses((status = 200, body = BulkResponse))`; the operation id is Airflow's
//!    (`bulk_pools`, `bulk_variables`, `bulk_connections`).
//!
//! A `fail` policy is checked against every entity of the action before any of them is
//! written, so a refused action changes nothing. Writes are then made one entity at a time:
//! an entity whose write fails is reported in `errors` and the others still go through.

use std::collections::HashSet;

use async_trait::async_trait;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::RestError;

/// What a bulk request asks: actions, applied in order.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkBody<T> {
    pub actions: Vec<BulkAction<T>>,
}

/// One action of a bulk request, by its `action` field.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum BulkAction<T> {
    Create(BulkCreateAction<T>),
    Update(BulkUpdateAction<T>),
    Delete(BulkDeleteAction<T>),
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct BulkCreateAction<T> {
    /// The entities to create.
    pub entities: Vec<T>,
    /// What to do when an entity exists already (default `fail`).
    #[serde(default)]
    pub action_on_existence: BulkActionOnExistence,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct BulkUpdateAction<T> {
    /// The entities to update.
    pub entities: Vec<T>,
    /// Only these fields are changed; all when absent.
    #[serde(default)]
    pub update_mask: Option<Vec<String>>,
    /// What to do when an entity does not exist (default `fail`).
    #[serde(default)]
    pub action_on_non_existence: BulkActionNotOnExistence,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct BulkDeleteAction<T> {
    /// The entities to delete, by key or as bodies.
    pub entities: Vec<BulkDeleteEntity<T>>,
    /// What to do when an entity does not exist (default `fail`).
    #[serde(default)]
    pub action_on_non_existence: BulkActionNotOnExistence,
}

/// An entity to delete: its key, or its body (whose key is used).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum BulkDeleteEntity<T> {
    Key(String),
    Entity(T),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BulkActionOnExistence {
    #[default]
    Fail,
    Skip,
    Overwrite,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BulkActionNotOnExistence {
    #[default]
    Fail,
    Skip,
}

/// Airflow's `BulkResponse`: one entry per kind of action the request had.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BulkResponse {
    pub create: Option<BulkActionResponse>,
    pub update: Option<BulkActionResponse>,
    pub delete: Option<BulkActionResponse>,
}

/// Airflow's `BulkActionResponse`: the keys written and the errors met.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BulkActionResponse {
    pub success: Vec<String>,
    /// Each `{"error": <message>, "status_code": <HTTP status>}`.
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<serde_json::Value>,
}

impl BulkActionResponse {
    fn error(&mut self, status: StatusCode, message: impl Into<String>) {
        self.errors.push(serde_json::json!({
            "error": message.into(),
            "status_code": status.as_u16(),
        }));
    }

    fn store_error(&mut self, key: &str, error: RestError) {
        let detail = match error.detail {
            serde_json::Value::String(text) => text,
            other => other.to_string(),
        };
        self.error(error.status, format!("{key}: {detail}"));
    }
}

/// A resource the bulk `PATCH` can write.
#[async_trait]
pub(crate) trait BulkTarget: Send + Sync {
    /// The body of one entity, as its `POST` takes it.
    type Entity: Send + Sync;

    /// How errors name a set of entities by key, e.g. `pools with these pool names`.
    const ENTITIES: &'static str;

    /// The entity's key (pool name, variable key, connection id).
    fn key(entity: &Self::Entity) -> String;

    /// Which of `keys` exist now.
    async fn existing(&self, keys: &[String]) -> Result<HashSet<String>, RestError>;

    /// Creates the entity, replacing it if it exists.
    async fn create(&self, entity: &Self::Entity) -> Result<(), RestError>;

    /// Changes an existing entity: the fields in `update_mask`, or all.
    async fn update(
        &self,
        entity: &Self::Entity,
        update_mask: Option<&[String]>,
    ) -> Result<(), RestError>;

    /// Deletes an existing entity.
    async fn delete(&self, key: &str) -> Result<(), RestError>;
}

/// Applies the actions in order and answers what became of each.
pub(crate) async fn run<T: BulkTarget>(target: &T, body: BulkBody<T::Entity>) -> BulkResponse {
    let mut response = BulkResponse::default();
    for action in body.actions {
        match action {
            BulkAction::Create(action) => {
                let results = response.create.get_or_insert_with(Default::default);
                create(target, action, results).await;
            }
            BulkAction::Update(action) => {
                let results = response.update.get_or_insert_with(Default::default);
                update(target, action, results).await;
            }
            BulkAction::Delete(action) => {
                let results = response.delete.get_or_insert_with(Default::default);
                delete(target, action, results).await;
            }
        }
    }
    response
}

/// The existing keys among `keys`, or the error recorded when they cannot be read.
async fn existing<T: BulkTarget>(
    target: &T,
    keys: &[String],
    results: &mut BulkActionResponse,
) -> Option<HashSet<String>> {
    match target.existing(keys).await {
        Ok(existing) => Some(existing),
        Err(e) => {
            results.store_error(&keys.join(", "), e);
            None
        }
    }
}

fn listed<'a>(keys: impl IntoIterator<Item = &'a String>) -> String {
    let mut keys: Vec<&str> = keys.into_iter().map(String::as_str).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.join(", ")
}

async fn create<T: BulkTarget>(
    target: &T,
    action: BulkCreateAction<T::Entity>,
    results: &mut BulkActionResponse,
) {
    let keys: Vec<String> = action.entities.iter().map(T::key).collect();
    let Some(existing) = existing(target, &keys, results).await else {
        return;
    };
    if action.action_on_existence == BulkActionOnExistence::Fail && !existing.is_empty() {
        results.error(
            StatusCode::CONFLICT,
            format!("The {} already exist: {}", T::ENTITIES, listed(&existing)),
        );
        return;
    }
    for (entity, key) in action.entities.iter().zip(keys) {
        if existing.contains(&key) && action.action_on_existence == BulkActionOnExistence::Skip {
            continue;
        }
        match target.create(entity).await {
            Ok(()) => results.success.push(key),
            Err(e) => results.store_error(&key, e),
        }
    }
}

async fn update<T: BulkTarget>(
    target: &T,
    action: BulkUpdateAction<T::Entity>,
    results: &mut BulkActionResponse,
) {
    let keys: Vec<String> = action.entities.iter().map(T::key).collect();
    let Some(existing) = existing(target, &keys, results).await else {
        return;
    };
    let missing: Vec<&String> = keys.iter().filter(|k| !existing.contains(*k)).collect();
    if action.action_on_non_existence == BulkActionNotOnExistence::Fail && !missing.is_empty() {
        results.error(
            StatusCode::NOT_FOUND,
            format!("The {} were not found: {}", T::ENTITIES, listed(missing)),
        );
        return;
    }
    for (entity, key) in action.entities.iter().zip(keys) {
        if !existing.contains(&key) {
            continue;
        }
        match target.update(entity, action.update_mask.as_deref()).await {
            Ok(()) => results.success.push(key),
            Err(e) => results.store_error(&key, e),
        }
    }
}

async fn delete<T: BulkTarget>(
    target: &T,
    action: BulkDeleteAction<T::Entity>,
    results: &mut BulkActionResponse,
) {
    let keys: Vec<String> = action
        .entities
        .iter()
        .map(|entity| match entity {
            BulkDeleteEntity::Key(key) => key.clone(),
            BulkDeleteEntity::Entity(entity) => T::key(entity),
        })
        .collect();
    let Some(existing) = existing(target, &keys, results).await else {
        return;
    };
    let missing: Vec<&String> = keys.iter().filter(|k| !existing.contains(*k)).collect();
    if action.action_on_non_existence == BulkActionNotOnExistence::Fail && !missing.is_empty() {
        results.error(
            StatusCode::NOT_FOUND,
            format!("The {} were not found: {}", T::ENTITIES, listed(missing)),
        );
        return;
    }
    let mut done = HashSet::new();
    for key in keys {
        if !existing.contains(&key) || !done.insert(key.clone()) {
            continue;
        }
        match target.delete(&key).await {
            Ok(()) => results.success.push(key),
            Err(e) => results.store_error(&key, e),
        }
    }
}

/// Each entity of a bulk body with where it is (`["body", "actions", i, "entities", j]`), to
/// validate them as the single-entity routes do.
pub(crate) fn entities_with_location<T>(
    body: &BulkBody<T>,
) -> impl Iterator<Item = (Vec<String>, &T)> {
    body.actions.iter().enumerate().flat_map(|(i, action)| {
        let entities: Vec<&T> = match action {
            BulkAction::Create(a) => a.entities.iter().collect(),
            BulkAction::Update(a) => a.entities.iter().collect(),
            BulkAction::Delete(a) => a
                .entities
                .iter()
                .filter_map(|e| match e {
                    BulkDeleteEntity::Entity(entity) => Some(entity),
                    BulkDeleteEntity::Key(_) => None,
                })
                .collect(),
        };
        entities.into_iter().enumerate().map(move |(j, entity)| {
            let location = [
                "body",
                "actions",
                &i.to_string(),
                "entities",
                &j.to_string(),
            ]
            .map(str::to_string)
            .to_vec();
            (location, entity)
        })
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;

    /// An in-memory resource: the bulk logic is the unit under test here, the store-backed
    /// targets are tested through the routes.
    #[derive(Default)]
    struct Items(Mutex<BTreeMap<String, u32>>);

    #[derive(Debug, Deserialize)]
    struct Item {
        name: String,
        value: u32,
    }

    #[async_trait]
    impl BulkTarget for Items {
        type Entity = Item;
        const ENTITIES: &'static str = "items with these names";

        fn key(entity: &Item) -> String {
            entity.name.clone()
        }

        async fn existing(&self, keys: &[String]) -> Result<HashSet<String>, RestError> {
            let items = self.0.lock().expect("lock");
            Ok(keys
                .iter()
                .filter(|k| items.contains_key(*k))
                .cloned()
                .collect())
        }

        async fn create(&self, entity: &Item) -> Result<(), RestError> {
            if entity.name == "refused" {
                return Err(RestError::bad_request("refused by the store"));
            }
            self.0
                .lock()
                .expect("lock")
                .insert(entity.name.clone(), entity.value);
            Ok(())
        }

        async fn update(&self, entity: &Item, _mask: Option<&[String]>) -> Result<(), RestError> {
            self.create(entity).await
        }

        async fn delete(&self, key: &str) -> Result<(), RestError> {
            self.0.lock().expect("lock").remove(key);
            Ok(())
        }
    }

    fn body(json: serde_json::Value) -> BulkBody<Item> {
        serde_json::from_value(json).expect("bulk body")
    }

    fn items(target: &Items) -> Vec<(String, u32)> {
        target
            .0
            .lock()
            .expect("lock")
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    #[tokio::test]
    async fn create_fails_whole_action_on_existing_entity_by_default() {
        let target = Items::default();
        target.0.lock().expect("lock").insert("a".into(), 1);
        let answer = run(
            &target,
            body(
                serde_json::json!({"actions": [{"action": "create", "entities": [
                {"name": "a", "value": 2}, {"name": "b", "value": 3}]}]}),
            ),
        )
        .await;
        let create = answer.create.expect("create results");
        assert!(create.success.is_empty());
        assert_eq!(create.errors[0]["status_code"], 409);
        assert!(create.errors[0]["error"]
            .as_str()
            .expect("text")
            .contains('a'));
        assert_eq!(items(&target), vec![("a".into(), 1)]);
        assert!(answer.update.is_none() && answer.delete.is_none());
    }

    #[tokio::test]
    async fn create_skips_or_overwrites_existing_entities() {
        let target = Items::default();
        target.0.lock().expect("lock").insert("a".into(), 1);
        let answer = run(
            &target,
            body(serde_json::json!({"actions": [
                {"action": "create", "action_on_existence": "skip", "entities": [
                    {"name": "a", "value": 2}, {"name": "b", "value": 3}]},
                {"action": "create", "action_on_existence": "overwrite", "entities": [
                    {"name": "b", "value": 4}, {"name": "refused", "value": 0}]}]})),
        )
        .await;
        let create = answer.create.expect("create results");
        assert_eq!(create.success, vec!["b", "b"]);
        assert_eq!(create.errors.len(), 1);
        assert_eq!(create.errors[0]["status_code"], 400);
        assert_eq!(items(&target), vec![("a".into(), 1), ("b".into(), 4)]);
    }

    #[tokio::test]
    async fn update_and_delete_fail_or_skip_missing_entities() {
        let target = Items::default();
        target.0.lock().expect("lock").insert("a".into(), 1);
        let answer = run(
            &target,
            body(serde_json::json!({"actions": [
                {"action": "update", "entities": [
                    {"name": "a", "value": 5}, {"name": "ghost", "value": 0}]},
                {"action": "update", "action_on_non_existence": "skip", "entities": [
                    {"name": "a", "value": 6}, {"name": "ghost", "value": 0}]},
                {"action": "delete", "entities": ["a", "ghost"]},
                {"action": "delete", "action_on_non_existence": "skip",
                 "entities": [{"name": "a", "value": 0}, "ghost"]}]})),
        )
        .await;
        let update = answer.update.expect("update results");
        assert_eq!(update.success, vec!["a"]);
        assert_eq!(update.errors[0]["status_code"], 404);
        let delete = answer.delete.expect("delete results");
        assert_eq!(delete.success, vec!["a"]);
        assert_eq!(delete.errors.len(), 1);
        assert_eq!(delete.errors[0]["status_code"], 404);
        assert!(items(&target).is_empty());
    }

    #[test]
    fn an_unknown_action_or_policy_does_not_parse() {
        let bad_action = serde_json::from_value::<BulkBody<Item>>(
            serde_json::json!({"actions": [{"action": "upsert", "entities": []}]}),
        );
        assert!(bad_action.is_err());
        let bad_policy = serde_json::from_value::<BulkBody<Item>>(serde_json::json!(
            {"actions": [{"action": "create", "action_on_existence": "merge", "entities": []}]}
        ));
        assert!(bad_policy.is_err());
    }
}
