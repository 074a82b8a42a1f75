//! The SQLite schema and its migrations, applied in order and recorded in `user_version`.

use rusqlite::{Connection, TransactionBehavior};

use crate::db_err;
use updraft_store::{Result, StoreError};

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE dag (
    dag_id TEXT PRIMARY KEY,
    fileloc TEXT NOT NULL,
    is_paused INTEGER NOT NULL DEFAULT 0,
    is_active INTEGER NOT NULL DEFAULT 1,
    version INTEGER NOT NULL,
    schedule TEXT NOT NULL,
    has_schedule INTEGER NOT NULL,
    tags TEXT NOT NULL,
    description TEXT,
    next_dagrun INTEGER,
    needs_next_dagrun INTEGER NOT NULL DEFAULT 1,
    last_parsed_at INTEGER NOT NULL
);
CREATE TABLE dag_version (
    dag_id TEXT NOT NULL REFERENCES dag(dag_id),
    version INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    definition TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (dag_id, version)
);
CREATE TABLE import_error (
    filename TEXT PRIMARY KEY,
    error TEXT NOT NULL,
    timestamp INTEGER NOT NULL
);
CREATE TABLE dag_run (
    id INTEGER PRIMARY KEY,
    dag_id TEXT NOT NULL REFERENCES dag(dag_id),
    run_id TEXT NOT NULL,
    run_type TEXT NOT NULL,
    state TEXT NOT NULL,
    logical_date INTEGER NOT NULL,
    data_interval_start INTEGER NOT NULL,
    data_interval_end INTEGER NOT NULL,
    conf TEXT NOT NULL,
    dag_version INTEGER NOT NULL,
    queued_at INTEGER NOT NULL,
    start_date INTEGER,
    end_date INTEGER,
    UNIQUE (dag_id, run_id)
);
CREATE INDEX dag_run_unfinished ON dag_run (state) WHERE state IN ('queued', 'running');
CREATE INDEX dag_run_by_dag ON dag_run (dag_id, logical_date);
CREATE TABLE task_instance (
    id INTEGER PRIMARY KEY,
    dag_run_id INTEGER NOT NULL REFERENCES dag_run(id) ON DELETE CASCADE,
    dag_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    map_index INTEGER NOT NULL DEFAULT -1,
    try_number INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    queue TEXT NOT NULL,
    pool TEXT NOT NULL,
    priority_weight INTEGER NOT NULL,
    hostname TEXT,
    worker_id TEXT,
    claim_id TEXT,
    lease_until INTEGER,
    queued_at INTEGER,
    start_date INTEGER,
    end_date INTEGER,
    next_retry_at INTEGER,
    infra_failures INTEGER NOT NULL DEFAULT 0,
    UNIQUE (dag_run_id, task_id, map_index)
);
CREATE INDEX task_instance_queued ON task_instance (queue, priority_weight DESC, id)
    WHERE state = 'queued';
CREATE INDEX task_instance_scheduled ON task_instance (priority_weight DESC, id)
    WHERE state = 'scheduled';
CREATE INDEX task_instance_active ON task_instance (state)
    WHERE state IN ('queued', 'running', 'restarting', 'up_for_retry');
CREATE INDEX task_instance_claim ON task_instance (claim_id) WHERE claim_id IS NOT NULL;
CREATE TABLE task_try (
    ti_id INTEGER NOT NULL REFERENCES task_instance(id) ON DELETE CASCADE,
    try_number INTEGER NOT NULL,
    state TEXT NOT NULL,
    hostname TEXT,
    worker_id TEXT,
    start_date INTEGER,
    end_date INTEGER,
    infrastructure_failure INTEGER NOT NULL,
    PRIMARY KEY (ti_id, try_number)
);
CREATE TABLE xcom (
    dag_run_id INTEGER NOT NULL REFERENCES dag_run(id) ON DELETE CASCADE,
    task_id TEXT NOT NULL,
    map_index INTEGER NOT NULL DEFAULT -1,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (dag_run_id, task_id, map_index, key)
);
CREATE TABLE variable (
    key TEXT PRIMARY KEY,
    val TEXT NOT NULL,
    description TEXT
);
CREATE TABLE pool (
    name TEXT PRIMARY KEY,
    slots INTEGER NOT NULL,
    description TEXT
);
INSERT INTO pool (name, slots, description) VALUES ('default_pool', 128, 'Default pool');
"#,
    r#"
ALTER TABLE dag_run ADD COLUMN runner TEXT;
"#,
    // Queueing reads the scheduler's kept states, not `scheduled` rows.
    r#"
DROP INDEX task_instance_scheduled;
"#,
    // High availability: schedulers own runs, processes beat, remote workers send logs.
    r#"
ALTER TABLE dag_run ADD COLUMN scheduler_id TEXT;
ALTER TABLE dag_run ADD COLUMN scheduler_lease_until INTEGER;
CREATE TABLE job (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    hostname TEXT NOT NULL,
    queues TEXT NOT NULL,
    state TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    latest_heartbeat INTEGER NOT NULL
);
CREATE TABLE task_log (
    ti_id INTEGER NOT NULL REFERENCES task_instance(id) ON DELETE CASCADE,
    try_number INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (ti_id, try_number, "offset")
);
"#,
    // What the DAG processor last loaded from each file, so that a new process skips the
    // files that did not change.
    r#"
CREATE TABLE dag_file (
    fileloc TEXT PRIMARY KEY,
    mtime INTEGER,
    size INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    parser_version TEXT NOT NULL,
    dag_id TEXT,
    import_error TEXT,
    CHECK ((dag_id IS NULL) <> (import_error IS NULL))
);
"#,
    // Admission counts the task instances that occupy a DAG's or a pool's slots on every
    // pass: without these (whose WHERE must match the queries' word for word for SQLite to
    // use them) each count scanned the whole table.
    r#"
CREATE INDEX task_instance_occupying ON task_instance (dag_id, pool)
    WHERE state IN ('queued', 'running', 'restarting');
CREATE INDEX task_instance_occupying_pool ON task_instance (pool)
    WHERE state IN ('queued', 'running', 'restarting');
"#,
    // Starting a run counts its DAG's running runs (`max_active_runs`); the WHERE matches
    // the query's.
    r#"
CREATE INDEX dag_run_running ON dag_run (dag_id) WHERE state = 'running';
"#,
    // The public API: notes, encrypted variables and connections, users, revoked tokens,
    // failed logins, the audit log, XCom timestamps, and indexes for its listings.
    r#"
ALTER TABLE dag_run ADD COLUMN note TEXT;
ALTER TABLE task_instance ADD COLUMN note TEXT;
ALTER TABLE variable ADD COLUMN is_encrypted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE xcom ADD COLUMN timestamp INTEGER;
CREATE TABLE connection (
    conn_id TEXT PRIMARY KEY,
    conn_type TEXT NOT NULL,
    description TEXT,
    host TEXT,
    schema TEXT,
    login TEXT,
    password TEXT,
    port INTEGER,
    extra TEXT,
    is_encrypted INTEGER NOT NULL DEFAULT 0,
    is_extra_encrypted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE event_log (
    id INTEGER PRIMARY KEY,
    dttm INTEGER NOT NULL,
    event TEXT NOT NULL,
    owner TEXT,
    dag_id TEXT,
    run_id TEXT,
    task_id TEXT,
    map_index INTEGER,
    try_number INTEGER,
    logical_date INTEGER,
    extra TEXT
);
CREATE INDEX event_log_dttm ON event_log (dttm);
CREATE INDEX event_log_dag ON event_log (dag_id, dttm);
CREATE TABLE app_user (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    email TEXT,
    first_name TEXT,
    last_name TEXT,
    active INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    last_login INTEGER
);
CREATE TABLE revoked_token (
    token_id TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE TABLE login_failure (
    key TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX login_failure_key ON login_failure (key, at);
CREATE INDEX dag_run_logical_date ON dag_run (logical_date);
"#,
    // The UI's Home lists (and counts) the latest failed runs and failed task instances:
    // without these each listing scanned every run and every task instance (W14).
    r#"
CREATE INDEX dag_run_by_state ON dag_run (state, end_date);
CREATE INDEX task_instance_by_state ON task_instance (state, end_date);
"#,
    // Backfills (Airflow 3): the plan of dates lives here, so it survives restarts.
    r#"
CREATE TABLE backfill (
    id INTEGER PRIMARY KEY,
    dag_id TEXT NOT NULL REFERENCES dag(dag_id) ON DELETE CASCADE,
    from_date INTEGER NOT NULL,
    to_date INTEGER NOT NULL,
    dag_run_conf TEXT NOT NULL,
    reprocess_behavior TEXT NOT NULL,
    max_active_runs INTEGER NOT NULL,
    run_backwards INTEGER NOT NULL,
    is_paused INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    completed_at INTEGER,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX backfill_one_active ON backfill (dag_id) WHERE completed_at IS NULL;
CREATE TABLE backfill_dag_run (
    backfill_id INTEGER NOT NULL REFERENCES backfill(id) ON DELETE CASCADE,
    logical_date INTEGER NOT NULL,
    sort_ordinal INTEGER NOT NULL,
    dag_run_id INTEGER REFERENCES dag_run(id) ON DELETE SET NULL,
    exception_reason TEXT,
    taken INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (backfill_id, sort_ordinal)
);
"#,
    // The notification outbox: written with the state change that causes it, delivered by
    // the delivery loops (`claimed_by` / `claim_until` are a deliverer's lease).
    r#"
CREATE TABLE notification (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL,
    dag_id TEXT NOT NULL,
    run_id TEXT,
    task_id TEXT,
    map_index INTEGER,
    try_number INTEGER,
    notifier TEXT NOT NULL,
    context TEXT NOT NULL,
    dedupe_key TEXT UNIQUE,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_by TEXT,
    claim_until INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    delivered_at INTEGER
);
CREATE INDEX notification_pending ON notification (next_attempt_at) WHERE state = 'pending';
CREATE INDEX notification_dag ON notification (dag_id, id);
"#,
    // Assets (Airflow 3's data-aware scheduling): the assets DAGs name, who schedules on and
    // who produces them, their events, the events queued per consuming DAG until its run is
    // created, and which events triggered which run.
    r#"
CREATE TABLE asset (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    uri TEXT NOT NULL,
    asset_group TEXT NOT NULL,
    extra TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (name, uri)
);
CREATE TABLE dag_schedule_asset_reference (
    asset_id INTEGER NOT NULL REFERENCES asset(id) ON DELETE CASCADE,
    dag_id TEXT NOT NULL REFERENCES dag(dag_id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (asset_id, dag_id)
);
CREATE INDEX dag_schedule_asset_reference_dag ON dag_schedule_asset_reference (dag_id);
CREATE TABLE task_outlet_asset_reference (
    dag_id TEXT NOT NULL REFERENCES dag(dag_id) ON DELETE CASCADE,
    task_id TEXT NOT NULL,
    asset_id INTEGER NOT NULL REFERENCES asset(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (dag_id, task_id, asset_id)
);
CREATE INDEX task_outlet_asset_reference_asset ON task_outlet_asset_reference (asset_id);
CREATE TABLE asset_event (
    id INTEGER PRIMARY KEY,
    asset_id INTEGER NOT NULL REFERENCES asset(id) ON DELETE CASCADE,
    extra TEXT NOT NULL,
    source_dag_id TEXT,
    source_task_id TEXT,
    source_run_id TEXT,
    source_map_index INTEGER NOT NULL DEFAULT -1,
    timestamp INTEGER NOT NULL
);
CREATE INDEX asset_event_by_asset ON asset_event (asset_id, timestamp);
CREATE TABLE asset_dag_run_queue (
    asset_id INTEGER NOT NULL REFERENCES asset(id) ON DELETE CASCADE,
    target_dag_id TEXT NOT NULL REFERENCES dag(dag_id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (asset_id, target_dag_id)
);
CREATE TABLE dagrun_asset_event (
    dag_run_id INTEGER NOT NULL REFERENCES dag_run(id) ON DELETE CASCADE,
    event_id INTEGER NOT NULL REFERENCES asset_event(id) ON DELETE CASCADE,
    PRIMARY KEY (dag_run_id, event_id)
);
CREATE INDEX dagrun_asset_event_by_event ON dagrun_asset_event (event_id);
"#,
    // The last version of each deleted DAG: one created again under its id numbers its
    // versions past it, so that an id and a version name one definition for ever.
    r#"
CREATE TABLE deleted_dag_version (
    dag_id TEXT PRIMARY KEY,
    last_version INTEGER NOT NULL
);
"#,
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the schema up to date. Safe when several processes start at once: the check and
/// the migration run in one write transaction.
pub fn migrate(conn: &mut Connection) -> Result<i64> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let found: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db_err)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(sql).map_err(db_err)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)
            .map_err(db_err)?;
    }
    tx.commit().map_err(db_err)?;
    Ok(SCHEMA_VERSION)
}
