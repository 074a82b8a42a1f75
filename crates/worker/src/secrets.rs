//! What templates read of connections, and the secrets a task's log must not show.

use std::collections::BTreeMap;

use updraft_secrets::{uri, EnvConnections, Masker, SensitiveNames, MIN_MASKED_LENGTH};
use updraft_store::{ConnectionRecord, StoreError, TaskExecution};
use updraft_template::TemplateConnection;

/// The connections a template may read: the worker's environment (`UPDRAFT_CONN_*`,
/// `AIRFLOW_CONN_*`) first, then the database's, as Airflow's secrets backends are searched.
pub(crate) async fn template_connections(
    execution: &dyn TaskExecution,
) -> Result<BTreeMap<String, TemplateConnection>, StoreError> {
    let env = EnvConnections::from_process();
    for problem in env.problems() {
        tracing::warn!(%problem, "ignoring an environment connection that cannot be read");
    }
    let mut connections: BTreeMap<String, TemplateConnection> = execution
        .connections()
        .await?
        .into_iter()
        .map(|c| (c.conn_id.clone(), template_connection(c)))
        .collect();
    for c in env.iter() {
        // The environment's ids are lower case; it wins over a database id of any case.
        connections.retain(|id, _| !id.eq_ignore_ascii_case(&c.conn_id));
        connections.insert(c.conn_id.clone(), template_connection(c.clone()));
    }
    Ok(connections)
}

fn template_connection(c: ConnectionRecord) -> TemplateConnection {
    TemplateConnection {
        uri: uri::to_uri(&c),
        conn_id: c.conn_id,
        conn_type: c.conn_type,
        description: c.description,
        host: c.host,
        login: c.login,
        password: c.password,
        port: c.port,
        schema: c.schema,
        extra: c.extra,
    }
}

/// A masker for what the templates were given: every connection's password and the values
/// under secret-looking keys of its extra, and the values of variables with secret-looking
/// names. `None` when there is nothing to hide, so the log costs nothing more.
pub(crate) fn log_masker(
    names: &SensitiveNames,
    variables: &BTreeMap<String, String>,
    connections: &BTreeMap<String, TemplateConnection>,
) -> Option<Masker> {
    let mut secrets: Vec<String> = Vec::new();
    for (key, value) in variables {
        if names.is_sensitive(key) {
            secrets.push(value.clone());
        }
    }
    for c in connections.values() {
        secrets.extend(c.password.clone());
        if let Some(extra) = &c.extra {
            secrets.extend(names.secret_values(extra));
        }
    }
    Masker::new(secrets, MIN_MASKED_LENGTH)
}
