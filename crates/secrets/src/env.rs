//! Connections from the environment: `UPDRAFT_CONN_<ID>` and `AIRFLOW_CONN_<ID>` (a URI or
//! the JSON form), looked up before the database as Airflow's environment secrets backend
//! does. The id is the variable's suffix, lower-cased.

use std::collections::BTreeMap;

use updraft_store::ConnectionRecord;

use crate::uri;

/// Prefixes, in the order they are looked at: updraft's own wins over Airflow's.
pub const PREFIXES: [&str; 2] = ["UPDRAFT_CONN_", "AIRFLOW_CONN_"];

/// The connections an environment defines, keyed by lower-cased id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvConnections {
    connections: BTreeMap<String, ConnectionRecord>,
    /// Variables that look like connections but cannot be read, with why (never the value).
    problems: Vec<String>,
}

impl EnvConnections {
    /// The connections of this process's environment.
    pub fn from_process() -> EnvConnections {
        EnvConnections::from_vars(std::env::vars_os().filter_map(|(k, v)| {
            // A name or value that is not Unicode cannot be a connection of ours.
            Some((k.into_string().ok()?, v.into_string().ok()?))
        }))
    }

    /// The connections of the given `(name, value)` pairs.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> EnvConnections {
        let mut found: Vec<(usize, String, String, String)> = Vec::new();
        for (name, value) in vars {
            for (rank, prefix) in PREFIXES.iter().enumerate() {
                if let Some(id) = name.strip_prefix(prefix).filter(|id| !id.is_empty()) {
                    found.push((rank, id.to_lowercase(), name.clone(), value.clone()));
                }
            }
        }
        // Lower rank (UPDRAFT_) last, so it replaces AIRFLOW_ for the same id.
        found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.2.cmp(&b.2)));
        let mut env = EnvConnections::default();
        for (_, id, name, value) in found {
            match uri::parse(&id, &value) {
                Ok(connection) => {
                    env.connections.insert(id, connection);
                }
                Err(e) => env.problems.push(format!("{name}: {e}")),
            }
        }
        env
    }

    /// The connection `conn_id` (any case), if the environment defines it.
    pub fn get(&self, conn_id: &str) -> Option<&ConnectionRecord> {
        self.connections.get(&conn_id.to_lowercase())
    }

    pub fn iter(&self) -> impl Iterator<Item = &ConnectionRecord> {
        self.connections.values()
    }

    pub fn is_empty(&self) -> bool {
        self.connections.is_empty()
    }

    /// Environment variables named like connections whose value cannot be read.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn uri_and_json_variables_become_connections_with_lower_case_ids() {
        let env = EnvConnections::from_vars(vars(&[
            (
                "AIRFLOW_CONN_MY_DB",
                "postgresql://u:p%40ss@db.example:5432/sales",
            ),
            (
                "UPDRAFT_CONN_API",
                r#"{"conn_type": "http", "host": "api.example", "extra": {"token": "t"}}"#,
            ),
            ("PATH", "/usr/bin"),
            ("AIRFLOW_CONN_", "mysql://nobody"),
        ]));
        let db = env.get("my_db").unwrap();
        assert_eq!(db.conn_id, "my_db");
        assert_eq!(db.conn_type, "postgres");
        assert_eq!(db.password.as_deref(), Some("p@ss"));
        assert_eq!(db.port, Some(5432));
        assert_eq!(env.get("MY_DB"), Some(db));
        let api = env.get("api").unwrap();
        assert_eq!(api.host.as_deref(), Some("api.example"));
        assert_eq!(api.extra.as_deref(), Some(r#"{"token":"t"}"#));
        assert_eq!(env.iter().count(), 2);
        assert!(env.problems().is_empty());
    }

    #[test]
    fn updraft_prefix_wins_and_unreadable_values_are_reported_without_them() {
        let env = EnvConnections::from_vars(vars(&[
            ("UPDRAFT_CONN_X", "http://mine"),
            ("AIRFLOW_CONN_X", "http://theirs"),
            ("AIRFLOW_CONN_BAD", "mysql://u:hunter22@host:notaport"),
        ]));
        assert_eq!(env.get("x").unwrap().host.as_deref(), Some("mine"));
        assert!(env.get("bad").is_none());
        assert_eq!(env.problems().len(), 1);
        assert!(env.problems()[0].starts_with("AIRFLOW_CONN_BAD"));
        assert!(!env.problems()[0].contains("hunter22"));
    }
}
