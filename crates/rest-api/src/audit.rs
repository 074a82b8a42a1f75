//! The audit log of the API: every state-changing request (`POST`, `PATCH`, `PUT`, `DELETE`)
//! that succeeded writes one event-log row — when, the operation id as the event, the
//! principal as the owner, the DAG/run/task/map index/try number of its path, and as `extra`
//! the query and the JSON (or form) body with secrets masked.
//!
//! Only answers 2xx are recorded: a refused request (4xx, 5xx) changed nothing, and logging
//! every refusal would let anyone with a token fill the table. Failed logins are counted by
//! the rate limiter instead.
//!
//! Bodies are buffered (at most [`MAX_BODY`]) so the handler still gets them. Which fields
//! are secret follows Airflow's `sensitive_var_conn_names` (built-in and configured); values
//! of variables are never recorded ([`mask`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::RequestExt;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use updraft_secrets::SensitiveNames;
use updraft_store::NewEventLog;

use crate::auth::{OperationAccess, Principal};
use crate::{RestError, RestState};

/// The largest body a state-changing request may have (the JSON extractor's own limit).
pub const MAX_BODY: usize = 2 * 1024 * 1024;

/// What a masked value becomes, as Airflow shows it.
pub const MASK: &str = "***";

/// Fields that are secret by their exact name: a connection's `extra` holds credentials and
/// its `uri` the password.
const SENSITIVE_FIELDS: &[&str] = &["extra", "uri"];

/// Operations whose event has another name than the operation id.
const EVENT_NAMES: &[(&str, &str)] = &[
    ("create_token", "login"),
    ("login", "login"),
    ("logout", "logout"),
];

/// Whether a field or key named `name` holds a secret by Airflow's built-in names (what
/// hides configuration options).
pub fn is_sensitive(name: &str) -> bool {
    is_secret_field(&SensitiveNames::default(), name)
}

fn is_secret_field(names: &SensitiveNames, name: &str) -> bool {
    SENSITIVE_FIELDS.contains(&name.to_lowercase().as_str()) || names.is_sensitive(name)
}

/// A copy of `value` with every secret replaced by [`MASK`], at any depth: fields whose name
/// is secret (by `names`, the built-in and configured `sensitive_var_conn_names`), and the
/// `value` of every object that has a `key` (a variable's or an XCom's: the audit log is
/// readable by roles that may not read variables, so no value of one is ever recorded).
/// Strings holding JSON are masked inside.
pub fn mask(value: &Value, names: &SensitiveNames) -> Value {
    match value {
        Value::Object(object) => {
            let keyed = object.contains_key("key");
            Value::Object(
                object
                    .iter()
                    .map(|(name, field)| {
                        let hidden = is_secret_field(names, name) || (keyed && name == "value");
                        let field = if hidden && !field.is_null() {
                            Value::String(MASK.into())
                        } else {
                            mask(field, names)
                        };
                        (name.clone(), field)
                    })
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| mask(v, names)).collect()),
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(inner @ (Value::Object(_) | Value::Array(_))) => {
                let masked = mask(&inner, names);
                if masked == inner {
                    value.clone()
                } else {
                    Value::String(masked.to_string())
                }
            }
            _ => value.clone(),
        },
        other => other.clone(),
    }
}

/// Middleware on every route: records the state-changing requests that succeeded.
pub(crate) async fn record(
    State((state, table)): State<(RestState, Arc<OperationAccess>)>,
    mut request: Request,
    next: Next,
) -> Response {
    if !changes_state(request.method()) {
        return next.run(request).await;
    }
    let operation = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|path| {
            table
                .routes
                .get(&(request.method().clone(), path.as_str().to_string()))
        })
        .map(|(id, _)| *id)
        .unwrap_or("unknown");
    let principal = request.extensions().get::<Principal>().cloned();
    let path: HashMap<String, String> = match request.extract_parts::<RawPathParams>().await {
        Ok(params) => params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        Err(_) => HashMap::new(),
    };
    let query = request.uri().query().map(str::to_string);
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return RestError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {MAX_BODY} bytes"),
            )
            .into_response()
        }
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes.clone())))
        .await;
    if !response.status().is_success() {
        return response;
    }
    let body = body_json(content_type.as_deref(), &bytes);
    let names = &state.config().sensitive_names;
    let event = event(
        names,
        operation,
        principal.as_ref(),
        &path,
        query.as_deref(),
        body,
    );
    let event = with_logical_date(&state, event).await;
    if let Err(e) = state.store().add_event_log(event).await {
        tracing::warn!(error = %e, operation, "cannot write the audit log row of a change");
    }
    response
}

fn changes_state(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PATCH | Method::PUT | Method::DELETE
    )
}

/// The body as JSON: parsed JSON, or a form's fields; `None` when empty or neither.
fn body_json(content_type: Option<&str>, bytes: &Bytes) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
    let mime = content_type
        .and_then(|c| c.split(';').next())
        .map(str::trim)
        .unwrap_or("");
    if mime == "application/x-www-form-urlencoded" {
        let fields: Vec<(String, String)> = serde_html_form::from_bytes(bytes).ok()?;
        return Some(Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        ));
    }
    serde_json::from_slice(bytes).ok()
}

/// The event-log row of a request, its parameters masked.
fn event(
    names: &SensitiveNames,
    operation: &str,
    principal: Option<&Principal>,
    path: &HashMap<String, String>,
    query: Option<&str>,
    body: Option<Value>,
) -> NewEventLog {
    let from_path = |name: &str| path.get(name).filter(|v| *v != "~").cloned();
    let from_body = |name: &str| {
        body.as_ref()
            .and_then(|b| b.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let mut extra = Map::new();
    if let Some(query) = query {
        let fields: Vec<(String, String)> =
            serde_html_form::from_bytes(query.as_bytes()).unwrap_or_default();
        for (name, value) in fields {
            extra.insert(name, Value::String(value));
        }
    }
    match body.as_ref().map(|b| mask(b, names)) {
        Some(Value::Object(fields)) => extra.extend(fields),
        Some(other) => {
            extra.insert("body".into(), other);
        }
        None => {}
    }
    let extra = mask(&Value::Object(extra), names);
    // Logging in has no principal yet: the owner is the user who logged in.
    let owner = principal
        .map(|p| p.username.clone())
        .or_else(|| from_body("username"));
    let event = EVENT_NAMES
        .iter()
        .find(|(id, _)| *id == operation)
        .map_or(operation, |(_, name)| *name);
    NewEventLog {
        when: Utc::now(),
        event: event.to_string(),
        owner,
        dag_id: from_path("dag_id").or_else(|| from_body("dag_id")),
        run_id: from_path("dag_run_id").or_else(|| from_body("dag_run_id")),
        task_id: from_path("task_id"),
        map_index: from_path("map_index").and_then(|v| v.parse().ok()),
        try_number: from_path("try_number").and_then(|v| v.parse().ok()),
        logical_date: from_body("logical_date")
            .and_then(|d| DateTime::parse_from_rfc3339(&d).ok())
            .map(|d| d.with_timezone(&Utc)),
        extra: Some(Value::Object(
            extra.as_object().cloned().unwrap_or_default(),
        ))
        .filter(|e| e.as_object().is_some_and(|o| !o.is_empty()))
        .map(|e| e.to_string()),
    }
}

/// Fills the logical date from the run when the request names one that still exists.
async fn with_logical_date(state: &RestState, mut event: NewEventLog) -> NewEventLog {
    if event.logical_date.is_none() {
        if let (Some(dag_id), Some(run_id)) = (&event.dag_id, &event.run_id) {
            if let Ok(run) = state.store().get_dag_run(dag_id, run_id).await {
                event.logical_date = Some(run.logical_date);
            }
        }
    }
    event
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secrets_are_masked_at_any_depth() {
        let body = json!({
            "actions": [{"action": "create", "entities": [
                {"key": "db_password", "value": "hunter2"},
                {"key": "plain", "value": "visible"},
                {"connection_id": "c", "password": "pw", "extra": "{\"k\": 1}", "login": "me"}
            ]}],
            "api_key": "k",
            "slots": 3
        });
        let masked = mask(&body, &SensitiveNames::default());
        let text = masked.to_string();
        for secret in ["hunter2", "\"pw\"", "\\\"k\\\"", "\"k\""] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        // Viewers read the audit log but not variables: no variable value is recorded.
        assert_eq!(masked["actions"][0]["entities"][1]["value"], MASK);
        assert_eq!(masked["actions"][0]["entities"][1]["key"], "plain");
        assert_eq!(masked["actions"][0]["entities"][2]["login"], "me");
        assert_eq!(masked["slots"], 3);
        assert_eq!(masked["api_key"], MASK);
    }

    #[test]
    fn configured_names_and_json_inside_strings_are_masked() {
        let names = SensitiveNames::new("warehouse_pin");
        let body = json!({
            "warehouse_pin": "1234",
            "conf": "{\"nested\": {\"api_key\": \"k-123\"}, \"n\": 1}",
            "note": "plain text",
        });
        let masked = mask(&body, &names);
        let text = masked.to_string();
        assert!(!text.contains("1234"), "{text}");
        assert!(!text.contains("k-123"), "{text}");
        assert_eq!(masked["warehouse_pin"], MASK);
        assert_eq!(masked["note"], "plain text");
        let conf: Value =
            serde_json::from_str(masked["conf"].as_str().expect("a string")).expect("still JSON");
        assert_eq!(conf["n"], 1);
        assert_eq!(conf["nested"]["api_key"], MASK);
        // Without the configured name, the field shows.
        assert_eq!(
            mask(&body, &SensitiveNames::default())["warehouse_pin"],
            "1234"
        );
    }

    #[test]
    fn the_event_takes_its_place_from_the_path_and_the_owner_from_the_principal() {
        let principal = Principal {
            username: "op".into(),
            role: crate::auth::Role::Op,
            token_id: "t".into(),
            expires_at: 0,
        };
        let path = HashMap::from([
            ("dag_id".to_string(), "etl".to_string()),
            ("dag_run_id".to_string(), "manual_1".to_string()),
            ("task_id".to_string(), "load".to_string()),
        ]);
        let event = event(
            &SensitiveNames::default(),
            "patch_task_instance",
            Some(&principal),
            &path,
            Some("update_mask=state"),
            Some(json!({"state": "success", "token": "abc"})),
        );
        assert_eq!(event.owner.as_deref(), Some("op"));
        assert_eq!(event.dag_id.as_deref(), Some("etl"));
        assert_eq!(event.run_id.as_deref(), Some("manual_1"));
        assert_eq!(event.task_id.as_deref(), Some("load"));
        let extra: Value =
            serde_json::from_str(event.extra.as_deref().expect("extra")).expect("extra is JSON");
        assert_eq!(
            extra,
            json!({"update_mask": "state", "state": "success", "token": MASK})
        );
    }

    #[test]
    fn a_login_is_owned_by_its_user_and_never_records_the_password() {
        let event = event(
            &SensitiveNames::default(),
            "create_token",
            None,
            &HashMap::new(),
            None,
            Some(json!({"username": "alice", "password": "s3cret"})),
        );
        assert_eq!(event.event, "login");
        assert_eq!(event.owner.as_deref(), Some("alice"));
        assert!(!event.extra.expect("extra").contains("s3cret"));
    }
}
