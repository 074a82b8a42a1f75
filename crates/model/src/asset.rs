//! Assets (Airflow 3's data-aware scheduling): what a task's `outlets` say it updates, and the
//! conditions on them that a DAG's `schedule` waits for.
//!
//! An asset is known by its name and its URI; either alone is enough, as in Airflow's
//! `Asset(name=…, uri=…)`: the missing one takes the other's value.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// Airflow's default group of an asset.
pub const DEFAULT_ASSET_GROUP: &str = "asset";
/// Airflow's limit on an asset's name and URI.
pub const MAX_ASSET_TEXT_LEN: usize = 1500;

/// An asset as a DAG file declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    pub name: String,
    pub uri: String,
    #[serde(default = "default_group")]
    pub group: String,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn default_group() -> String {
    DEFAULT_ASSET_GROUP.to_string()
}

/// What identifies an asset: its name and its URI together (the store's unique key).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AssetKey {
    pub name: String,
    pub uri: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssetError {
    /// Neither a name nor a URI was given.
    #[error("an asset needs a name or a uri")]
    Unnamed,
    /// The name or URI is empty, too long, or uses a scheme Airflow keeps for itself.
    #[error("invalid asset {field} {value:?}: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
}

impl Asset {
    /// An asset from a name, a URI or both (Airflow: the missing one is the other's value).
    pub fn new(name: Option<&str>, uri: Option<&str>) -> Result<Asset, AssetError> {
        let (name, uri) = match (name, uri) {
            (None, None) => return Err(AssetError::Unnamed),
            (Some(n), None) => (n, n),
            (None, Some(u)) => (u, u),
            (Some(n), Some(u)) => (n, u),
        };
        check_text("name", name)?;
        check_text("uri", uri)?;
        if uri.to_ascii_lowercase().starts_with("airflow://") {
            return Err(AssetError::Invalid {
                field: "uri",
                value: uri.to_string(),
                reason: "the airflow scheme is reserved",
            });
        }
        Ok(Asset {
            name: name.to_string(),
            uri: uri.to_string(),
            group: default_group(),
            extra: serde_json::Map::new(),
        })
    }

    pub fn key(&self) -> AssetKey {
        AssetKey {
            name: self.name.clone(),
            uri: self.uri.clone(),
        }
    }
}

fn check_text(field: &'static str, value: &str) -> Result<(), AssetError> {
    let invalid = |reason| AssetError::Invalid {
        field,
        value: value.to_string(),
        reason,
    };
    if value.trim().is_empty() {
        return Err(invalid("it is empty"));
    }
    if value.len() > MAX_ASSET_TEXT_LEN {
        return Err(invalid("it is longer than 1500 characters"));
    }
    if value.trim() != value {
        return Err(invalid("it starts or ends with white space"));
    }
    Ok(())
}

/// What a DAG scheduled on assets waits for: Airflow's `Asset`, `AssetAll` (`&`, or a list)
/// and `AssetAny` (`|`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetCondition {
    Asset(Asset),
    All(Vec<AssetCondition>),
    Any(Vec<AssetCondition>),
}

impl AssetCondition {
    /// Every asset the condition names, each once, in the order written.
    pub fn assets(&self) -> Vec<&Asset> {
        let mut out: Vec<&Asset> = Vec::new();
        let mut seen = BTreeSet::new();
        self.collect(&mut out, &mut seen);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a Asset>, seen: &mut BTreeSet<AssetKey>) {
        match self {
            AssetCondition::Asset(a) => {
                if seen.insert(a.key()) {
                    out.push(a);
                }
            }
            AssetCondition::All(items) | AssetCondition::Any(items) => {
                for item in items {
                    item.collect(out, seen);
                }
            }
        }
    }

    /// Whether the condition holds when the assets for which `updated` answers true have
    /// events queued. An empty `all` holds, an empty `any` does not (Python's `all`/`any`).
    pub fn evaluate(&self, updated: &dyn Fn(&Asset) -> bool) -> bool {
        match self {
            AssetCondition::Asset(a) => updated(a),
            AssetCondition::All(items) => items.iter().all(|c| c.evaluate(updated)),
            AssetCondition::Any(items) => items.iter().any(|c| c.evaluate(updated)),
        }
    }

    /// Airflow's `asset_expression` of the DAG details: `{"asset": {...}}`, `{"all": [...]}`,
    /// `{"any": [...]}`.
    pub fn expression(&self) -> serde_json::Value {
        match self {
            AssetCondition::Asset(a) => serde_json::json!({
                "asset": {"name": a.name, "uri": a.uri, "group": a.group},
            }),
            AssetCondition::All(items) => serde_json::json!({
                "all": items.iter().map(AssetCondition::expression).collect::<Vec<_>>(),
            }),
            AssetCondition::Any(items) => serde_json::json!({
                "any": items.iter().map(AssetCondition::expression).collect::<Vec<_>>(),
            }),
        }
    }

    /// A one-line summary for the DAG list (`a & (b | c)`), by name.
    pub fn summary(&self) -> String {
        match self {
            AssetCondition::Asset(a) => a.name.clone(),
            AssetCondition::All(items) => join(items, " & "),
            AssetCondition::Any(items) => join(items, " | "),
        }
    }
}

fn join(items: &[AssetCondition], op: &str) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|c| match c {
            AssetCondition::Asset(_) => c.summary(),
            _ if items.len() == 1 => c.summary(),
            _ => format!("({})", c.summary()),
        })
        .collect();
    parts.join(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(name: &str) -> AssetCondition {
        AssetCondition::Asset(Asset::new(Some(name), None).unwrap())
    }

    #[test]
    fn name_or_uri_alone_names_both() {
        let by_uri = Asset::new(None, Some("s3://b/k")).unwrap();
        assert_eq!(
            (by_uri.name.as_str(), by_uri.uri.as_str()),
            ("s3://b/k", "s3://b/k")
        );
        let by_name = Asset::new(Some("orders"), None).unwrap();
        assert_eq!(by_name.uri, "orders");
        assert_eq!(by_name.group, "asset");
        assert_eq!(Asset::new(None, None), Err(AssetError::Unnamed));
    }

    #[test]
    fn bad_names_are_refused() {
        for (name, uri) in [
            (Some(""), None),
            (None, Some("  ")),
            (None, Some("airflow://x")),
            (Some(" padded"), None),
        ] {
            assert!(Asset::new(name, uri).is_err(), "{name:?} {uri:?}");
        }
        let long = "x".repeat(MAX_ASSET_TEXT_LEN + 1);
        assert!(Asset::new(Some(&long), None).is_err());
    }

    #[test]
    fn conditions_evaluate_like_airflow() {
        // a & (b | c)
        let cond = AssetCondition::All(vec![a("a"), AssetCondition::Any(vec![a("b"), a("c")])]);
        let check = |names: &[&str]| cond.evaluate(&|x: &Asset| names.contains(&x.name.as_str()));
        let cases: [(&[&str], bool); 6] = [
            (&[], false),
            (&["a"], false),
            (&["b", "c"], false),
            (&["a", "b"], true),
            (&["a", "c"], true),
            (&["a", "b", "c"], true),
        ];
        for (updated, expected) in cases {
            assert_eq!(check(updated), expected, "{updated:?}");
        }
        assert_eq!(cond.summary(), "a & (b | c)");
        assert_eq!(
            cond.assets()
                .iter()
                .map(|x| x.name.as_str())
                .collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn expression_has_airflows_shape() {
        let cond = AssetCondition::Any(vec![a("x"), AssetCondition::All(vec![a("y")])]);
        assert_eq!(
            cond.expression(),
            serde_json::json!({"any": [
                {"asset": {"name": "x", "uri": "x", "group": "asset"}},
                {"all": [{"asset": {"name": "y", "uri": "y", "group": "asset"}}]},
            ]})
        );
    }

    #[test]
    fn an_asset_named_twice_is_listed_once() {
        let cond = AssetCondition::Any(vec![a("x"), a("x")]);
        assert_eq!(cond.assets().len(), 1);
    }
}
