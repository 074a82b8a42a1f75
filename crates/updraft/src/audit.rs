//! The audit rows of the CLI: every command that changes state writes one event-log row with
//! owner `cli:<OS user>`, event `cli_<group>_<verb>` and its parameters (secrets masked the
//! way the REST API masks them), after the change succeeded.

use chrono::Utc;
use serde_json::Value;
use updraft_store::NewEventLog;

use crate::app::App;

/// Where a change landed, as far as the command knows.
#[derive(Debug, Default, Clone)]
pub struct Target<'a> {
    pub dag_id: Option<&'a str>,
    pub run_id: Option<&'a str>,
}

impl<'a> Target<'a> {
    pub fn dag(dag_id: &'a str) -> Self {
        Target {
            dag_id: Some(dag_id),
            run_id: None,
        }
    }
}

/// `cli:<name of the OS user running the command>`.
pub fn owner() -> String {
    let name = ["USER", "LOGNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
        // SAFETY: getuid cannot fail and has no preconditions.
        .unwrap_or_else(|| unsafe { libc::getuid() }.to_string());
    format!("cli:{name}")
}

/// Writes the audit row of a change the command made. The change is done already, so a row
/// that cannot be written is reported, not a failure of the command.
pub async fn record(app: &App, event: &str, target: Target<'_>, params: Value) {
    let names = updraft_secrets::SensitiveNames::new(&app.config.core.sensitive_var_conn_names);
    let extra = updraft_rest_api::audit::mask(&params, &names);
    let row = NewEventLog {
        when: Utc::now(),
        event: event.to_string(),
        owner: Some(owner()),
        dag_id: target.dag_id.map(str::to_string),
        run_id: target.run_id.map(str::to_string),
        extra: Some(extra.to_string()),
        ..NewEventLog::default()
    };
    if let Err(e) = app.store.add_event_log(row).await {
        tracing::warn!(error = %e, event, "cannot write the audit log row of this change");
        eprintln!("warning: the audit log row of {event} could not be written: {e}");
    }
}
