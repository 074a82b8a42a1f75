//! A `TemplateContext` for a typical scheduled run, shared by the tests.

use std::collections::{BTreeMap, HashMap};

use chrono::{TimeZone, Utc};
use serde_json::json;
use updraft_template::{Renderer, TemplateConnection, TemplateContext, TemplateError};

pub fn context() -> TemplateContext {
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
        logical_date: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        data_interval_start: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        data_interval_end: Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap(),
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

/// The error rendering `template` for the fixture's run gives; panics if it renders.
pub fn refused(template: &str) -> TemplateError {
    match Renderer::new().render(template, &context()) {
        Ok(text) => panic!("{template:?} rendered {} bytes", text.len()),
        Err(err) => err,
    }
}

/// Asserts that `template` is refused by a render error whose message contains `expected`.
pub fn assert_refused(template: &str, expected: &str) {
    let err = refused(template);
    assert!(
        matches!(err, TemplateError::Render { .. }),
        "{template}: {err:?}"
    );
    assert!(err.to_string().contains(expected), "{template}: {err}");
}

/// Asserts that each of `templates` renders against `ctx` as a plain minijinja environment
/// with the renderer's settings renders it: the same text, or the same error message.
pub fn assert_renders_as_minijinja(templates: &[&str], ctx: &serde_json::Value) {
    let mut plain = minijinja::Environment::new();
    plain.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    plain.set_keep_trailing_newline(true);
    let renderer = Renderer::new();
    for template in templates {
        let expected = plain
            .render_str(template, ctx)
            .map_err(|err| err.detail().map(str::to_owned).unwrap_or_default());
        let rendered = renderer
            .render_json(template, ctx)
            .map_err(|err| match err {
                TemplateError::Render { message, .. } => message,
                TemplateError::Undefined { .. } => String::new(),
                other => other.to_string(),
            });
        assert_eq!(rendered, expected, "{template}");
    }
}
