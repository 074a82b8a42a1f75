//! The template context the `template` target renders against.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use updraft_template::{TemplateConnection, TemplateContext};

/// The context of a scheduled run of a task with upstream XComs, variables (one of them not
/// JSON), a connection and a triggering asset event: every name a template may read.
pub fn template_context() -> TemplateContext {
    let object = |value: serde_json::Value| match value {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("fixture objects are objects"),
    };
    let xcoms: HashMap<(String, String), serde_json::Value> = [
        (
            ("extract", "return_value"),
            json!({"rows": 42, "path": "/tmp/x"}),
        ),
        (("transform", "return_value"), json!("done")),
        (("extract", "row_count"), json!(42)),
    ]
    .into_iter()
    .map(|((task, key), value)| ((task.to_owned(), key.to_owned()), value))
    .collect();
    let variables: BTreeMap<String, String> = [
        ("bucket", "s3://data"),
        ("settings", r#"{"region": "eu-west-1", "replicas": [1, 2]}"#),
        ("not_json", "{oops"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    TemplateContext {
        dag_id: "etl".to_owned(),
        run_id: "scheduled__2026-01-01T00:00:00+00:00".to_owned(),
        task_id: "load".to_owned(),
        try_number: 2,
        map_index: -1,
        run_type: "scheduled".to_owned(),
        logical_date: midnight(1),
        data_interval_start: midnight(1),
        data_interval_end: midnight(2),
        conf: object(json!({"limit": 10, "extra": "yes"})),
        dag_params: object(json!({"limit": 5, "env": "prod"})),
        task: json!({
            "task_id": "load",
            "operator": {"kind": "bash", "bash_command": "echo {{ ds }}"},
            "dependencies": ["extract", "transform"],
            "retries": 3,
            "pool": "default_pool",
            "queue": "default",
        }),
        variables,
        xcoms,
        connections: [(
            "warehouse".to_owned(),
            TemplateConnection {
                conn_id: "warehouse".to_owned(),
                conn_type: "postgres".to_owned(),
                host: Some("db.example".to_owned()),
                login: Some("etl".to_owned()),
                password: Some("s3cr3t!".to_owned()),
                port: Some(5432),
                schema: Some("sales".to_owned()),
                extra: Some(r#"{"sslmode": "require", "options": {"x": 1}}"#.to_owned()),
                description: None,
                uri: "postgres://etl:s3cr3t%21@db.example:5432/sales?sslmode=require".to_owned(),
            },
        )]
        .into_iter()
        .collect(),
        triggering_asset_events: json!({
            "s3://raw/orders": [{
                "asset": {"name": "orders", "uri": "s3://raw/orders", "group": "asset"},
                "extra": {"rows": 7},
                "source_dag_id": "ingest",
                "source_task_id": "fetch",
                "source_run_id": "manual__1",
                "source_map_index": -1,
                "timestamp": "2026-01-01T00:00:00.000000+00:00",
            }],
        }),
    }
}

fn midnight(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, day, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}
