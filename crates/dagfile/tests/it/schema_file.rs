//! `dag.schema.json` (for editors) stays in sync with the keys the loader accepts.

use std::collections::BTreeSet;

use serde_json::Value;
use updraft_dagfile::{DAG_KEYS, OPERATORS, SETTING_KEYS, TASK_ONLY_KEYS, TRIGGER_RULES};

fn schema() -> Value {
    let text = include_str!("../../dag.schema.json");
    serde_json::from_str(text).expect("dag.schema.json is JSON")
}

fn keys(object: &Value) -> BTreeSet<String> {
    object["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .cloned()
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn strings(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_str().expect("string").to_string())
        .collect()
}

#[test]
fn schema_keys_match_the_loader() {
    let schema = schema();
    assert_eq!(keys(&schema), set(DAG_KEYS));
    assert_eq!(schema["additionalProperties"], Value::Bool(false));
    let defs = &schema["$defs"];
    assert_eq!(keys(&defs["default_args"]), set(SETTING_KEYS));
    assert_eq!(
        defs["default_args"]["additionalProperties"],
        Value::Bool(false)
    );
    let task_keys: Vec<&str> = TASK_ONLY_KEYS.iter().chain(SETTING_KEYS).copied().collect();
    assert_eq!(keys(&defs["task"]), set(&task_keys));
    assert_eq!(defs["task"]["additionalProperties"], Value::Bool(false));
    assert_eq!(strings(&defs["trigger_rule"]["enum"]), set(TRIGGER_RULES));
    assert_eq!(
        strings(&defs["task"]["properties"]["operator"]["enum"]),
        set(OPERATORS)
    );
}
