//! The Grafana dashboard (`deploy/grafana/updraft.json`) is valid JSON and queries only
//! metrics updraft exports.

use std::collections::BTreeSet;

use updraft_metrics::{HISTOGRAMS, METRIC_NAMES};

fn expressions(value: &serde_json::Value, found: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match v {
                    serde_json::Value::String(text) if key == "expr" || key == "definition" => {
                        found.push(text.clone())
                    }
                    serde_json::Value::Object(query) if key == "query" => {
                        if let Some(serde_json::Value::String(text)) = query.get("query") {
                            found.push(text.clone());
                        }
                    }
                    _ => expressions(v, found),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| expressions(v, found)),
        _ => {}
    }
}

/// The family a series name belongs to: a histogram's `_bucket`/`_sum`/`_count` series
/// belong to the histogram.
fn family(series: &str) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = series.strip_suffix(suffix) {
            if HISTOGRAMS.contains(&base) {
                return base.to_string();
            }
        }
    }
    series.to_string()
}

#[test]
fn every_metric_in_the_dashboard_is_one_updraft_exports() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/grafana/updraft.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(dashboard["uid"], "updraft-overview");
    let mut found = Vec::new();
    expressions(&dashboard, &mut found);
    assert!(found.len() >= 15, "{found:?}");
    let name = regex::Regex::new(r"\bupdraft_[a-z_]+").unwrap();
    let used: BTreeSet<String> = found
        .iter()
        .flat_map(|expr| name.find_iter(expr).map(|m| family(m.as_str())))
        .collect();
    let unknown: Vec<&String> = used
        .iter()
        .filter(|n| !METRIC_NAMES.contains(&n.as_str()))
        .collect();
    assert!(unknown.is_empty(), "not exported: {unknown:?}");
    // Every family has a panel.
    let unused: Vec<&&str> = METRIC_NAMES
        .iter()
        .filter(|n| !used.contains(**n))
        .collect();
    assert!(unused.is_empty(), "no panel shows {unused:?}");
}

#[test]
fn a_misspelt_metric_would_be_caught() {
    assert_eq!(
        family("updraft_task_duration_seconds_bucket"),
        "updraft_task_duration_seconds"
    );
    assert!(!METRIC_NAMES.contains(&family("updraft_task_durations_seconds_bucket").as_str()));
}
