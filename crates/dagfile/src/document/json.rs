//! JSON to a document tree. `serde_json` decides what is valid JSON; the YAML parser (JSON is
//! YAML 1.2) is then asked for the same tree with positions, used only if it agrees exactly.

use std::collections::HashMap;

use super::{yaml, Entry, Node, NodeKind};
use crate::diagnostic::{Diagnostic, Pos};

pub(super) fn parse(source: &str) -> Result<(Node, Vec<Diagnostic>), Diagnostic> {
    let value: serde_json::Value = serde_json::from_str(source).map_err(|e| {
        let pos = (e.line() > 0).then(|| Pos {
            line: e.line(),
            column: e.column().max(1),
        });
        Diagnostic::new(pos, format!("JSON syntax error: {e}"))
    })?;
    let plain = from_json(&value);
    if let Ok((positioned, diags)) = yaml::parse(source) {
        if diags.is_empty() && same_shape(&positioned, &plain) {
            return Ok((positioned, Vec::new()));
        }
    }
    Ok((plain, Vec::new()))
}

/// A document tree without positions from an owned JSON value (what the Python SDK wrote):
/// its strings move into the tree.
pub(crate) fn from_json_value(value: serde_json::Value) -> Node {
    use serde_json::Value;
    let kind = match value {
        Value::Null => NodeKind::Null,
        Value::Bool(b) => NodeKind::Bool(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => NodeKind::Int(i),
            None => NodeKind::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => NodeKind::Str(s),
        Value::Array(items) => NodeKind::Seq(items.into_iter().map(from_json_value).collect()),
        Value::Object(map) => NodeKind::Map(
            map.into_iter()
                .map(|(key, value)| Entry {
                    key,
                    key_pos: None,
                    value: from_json_value(value),
                })
                .collect(),
        ),
    };
    Node::new(kind, None)
}

fn from_json(value: &serde_json::Value) -> Node {
    use serde_json::Value;
    let kind = match value {
        Value::Null => NodeKind::Null,
        Value::Bool(b) => NodeKind::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => NodeKind::Int(i),
            None => NodeKind::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => NodeKind::Str(s.clone()),
        Value::Array(items) => NodeKind::Seq(items.iter().map(from_json).collect()),
        Value::Object(map) => NodeKind::Map(
            map.iter()
                .map(|(key, value)| Entry {
                    key: key.clone(),
                    key_pos: None,
                    value: from_json(value),
                })
                .collect(),
        ),
    };
    Node::new(kind, None)
}

/// Equal values, ignoring positions and the order of mapping keys (serde_json sorts them).
fn same_shape(a: &Node, b: &Node) -> bool {
    match (&a.kind, &b.kind) {
        (NodeKind::Seq(x), NodeKind::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_shape(a, b))
        }
        (NodeKind::Map(x), NodeKind::Map(y)) => {
            let y: HashMap<&str, &Node> = y.iter().map(|f| (f.key.as_str(), &f.value)).collect();
            x.len() == y.len()
                && x.iter().all(|e| {
                    y.get(e.key.as_str())
                        .is_some_and(|f| same_shape(&e.value, f))
                })
        }
        (NodeKind::Float(x), NodeKind::Float(y)) => x.to_bits() == y.to_bits(),
        (x, y) => x == y,
    }
}
