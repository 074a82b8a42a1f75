//! The parsed form of a DAG file before it means anything: a tree of values that remember
//! where in the file they were written, built from YAML or JSON.

mod json;
mod yaml;

use std::path::Path;

use crate::diagnostic::{Diagnostic, Pos};

/// The syntax of a DAG file, chosen by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Yaml,
    Json,
}

/// The deepest nesting a document may have. DAG files need a handful of levels; the limit keeps
/// hostile input from exhausting the stack in recursive code.
pub const MAX_DEPTH: usize = 64;

/// How many nodes anchors and aliases may copy in one document. Generous for real reuse (a
/// `default_args` block merged into hundreds of tasks), far below what an alias bomb needs.
pub const MAX_ALIAS_NODES: usize = 100_000;

/// A value of the document with the place it starts at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub kind: NodeKind,
    pub pos: Option<Pos>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A key of a mapping (always text: YAML scalar keys keep their written form) and its value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub key_pos: Option<Pos>,
    pub value: Node,
}

impl Format {
    /// `.yaml`/`.yml` are YAML, `.json` is JSON; anything else is not a DAG file.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?;
        if ext.eq_ignore_ascii_case("yaml") || ext.eq_ignore_ascii_case("yml") {
            Some(Format::Yaml)
        } else if ext.eq_ignore_ascii_case("json") {
            Some(Format::Json)
        } else {
            None
        }
    }
}

impl Node {
    pub fn new(kind: NodeKind, pos: Option<Pos>) -> Self {
        Node { kind, pos }
    }

    /// A short description of what the value is, for "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            NodeKind::Null => "null".to_string(),
            NodeKind::Bool(b) => format!("boolean {b}"),
            NodeKind::Int(i) => format!("number {i}"),
            NodeKind::Float(f) => format!("number {f}"),
            NodeKind::Str(s) => {
                let mut shown: String = s.chars().take(40).collect();
                if shown.len() < s.len() {
                    shown.push('…');
                }
                format!("string {shown:?}")
            }
            NodeKind::Seq(_) => "a list".to_string(),
            NodeKind::Map(_) => "a mapping".to_string(),
        }
    }

    /// Converts to JSON for `params`. Non-finite floats have no JSON form: each is reported
    /// (position, value) and stored as null.
    pub fn to_json(&self, report: &mut dyn FnMut(Option<Pos>, f64)) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(b) => Value::Bool(*b),
            NodeKind::Int(i) => Value::from(*i),
            NodeKind::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => Value::Number(n),
                None => {
                    report(self.pos, *f);
                    Value::Null
                }
            },
            NodeKind::Str(s) => Value::String(s.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(|i| i.to_json(report)).collect()),
            NodeKind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json(report)))
                    .collect(),
            ),
        }
    }
}

pub(crate) use json::from_json_value;

/// Parses a whole document. `Err` is a problem that leaves no tree (a syntax error, an alias
/// bomb); the `Vec` carries problems found on the way that still left a usable tree
/// (duplicate keys, unsupported tags).
pub(crate) fn parse(source: &str, format: Format) -> Result<(Node, Vec<Diagnostic>), Diagnostic> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    match format {
        Format::Yaml => yaml::parse(source),
        Format::Json => json::parse(source),
    }
}
