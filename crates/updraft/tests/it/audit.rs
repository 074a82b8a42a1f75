//! CLI changes write audit rows: owner `cli:<OS user>`, the command as the event, the
//! parameters with secrets and variable values masked.

use updraft_store::{EventLogQuery, EventLogStore};
use updraft_store_sqlite::SqliteStore;

use crate::fixture::Home;

#[test]
fn cli_changes_write_audit_rows_with_secrets_masked() {
    let home = Home::new();
    home.ok(&["pools", "set", "etl", "3", "nightly loads"]);
    home.ok(&["variables", "set", "db_password", "hunter2"]);
    home.ok(&["variables", "set", "greeting", "bonjour"]);
    home.ok(&["pools", "delete", "etl"]);
    // A refused change writes nothing.
    assert!(!home.run(&["pools", "delete", "nowhere"]).status.success());

    let store = SqliteStore::open(&home.path().join("updraft.db")).expect("open");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let page = runtime
        .block_on(store.query_event_logs(EventLogQuery::default()))
        .expect("event logs");
    let rows: Vec<(String, String)> = page
        .items
        .iter()
        .map(|r| {
            (
                r.event.event.clone(),
                r.event.extra.clone().unwrap_or_default(),
            )
        })
        .collect();
    let events: Vec<&str> = rows.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        events,
        [
            "cli_pools_set",
            "cli_variables_set",
            "cli_variables_set",
            "cli_pools_delete"
        ]
    );
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| unsafe { libc::getuid() }.to_string());
    for row in &page.items {
        assert_eq!(
            row.event.owner.as_deref(),
            Some(format!("cli:{user}").as_str())
        );
    }
    let extra = |i: usize| -> serde_json::Value { serde_json::from_str(&rows[i].1).expect("JSON") };
    assert_eq!(
        extra(0),
        serde_json::json!({"name": "etl", "slots": 3, "description": "nightly loads"})
    );
    assert!(!rows[1].1.contains("hunter2"), "{}", rows[1].1);
    assert_eq!(
        extra(1),
        serde_json::json!({"key": "db_password", "value": "***"})
    );
    // The audit log is readable by Viewers, who may not read variables: no value shows.
    assert_eq!(
        extra(2),
        serde_json::json!({"key": "greeting", "value": "***"})
    );
}
