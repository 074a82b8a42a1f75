//! Assets, their events and the events queued for the DAGs scheduled on them
//! ([`AssetStore`]); what publishing a DAG and finishing a try write about them.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use updraft_store::*;

use crate::codec::{instant, json_map, micros, opt_instant, opt_micros};
use crate::dags::conversion;
use crate::{db_err, runs, SqliteStore};

/// Registers the assets a published DAG version names and replaces its references: the
/// assets its schedule waits for and each task's outlets. Events queued for assets the DAG
/// no longer waits for are dropped.
pub fn register(tx: &Transaction, dag: &updraft_model::Dag, now: i64) -> Result<()> {
    let refs = DagAssets::of(dag);
    let dag_id = &dag.dag_id;
    for asset in &refs.assets {
        let extra = serde_json::to_string(&asset.extra)
            .map_err(|e| StoreError::Corrupt(format!("asset extra: {e}")))?;
        tx.prepare_cached(
            "INSERT INTO asset (name, uri, asset_group, extra, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (name, uri) DO UPDATE SET \
             asset_group = excluded.asset_group, extra = excluded.extra, \
             updated_at = excluded.updated_at",
        )
        .map_err(db_err)?
        .execute(params![asset.name, asset.uri, asset.group, extra, now])
        .map_err(db_err)?;
    }
    tx.execute(
        "DELETE FROM dag_schedule_asset_reference WHERE dag_id = ?1",
        params![dag_id],
    )
    .map_err(db_err)?;
    tx.execute(
        "DELETE FROM task_outlet_asset_reference WHERE dag_id = ?1",
        params![dag_id],
    )
    .map_err(db_err)?;
    for key in &refs.scheduled {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO dag_schedule_asset_reference \
             (dag_id, asset_id, created_at, updated_at) \
             SELECT ?1, id, ?4, ?4 FROM asset WHERE name = ?2 AND uri = ?3",
        )
        .map_err(db_err)?
        .execute(params![dag_id, key.name, key.uri, now])
        .map_err(db_err)?;
    }
    for (task_id, key) in &refs.outlets {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO task_outlet_asset_reference \
             (dag_id, task_id, asset_id, created_at, updated_at) \
             SELECT ?1, ?2, id, ?5, ?5 FROM asset WHERE name = ?3 AND uri = ?4",
        )
        .map_err(db_err)?
        .execute(params![dag_id, task_id, key.name, key.uri, now])
        .map_err(db_err)?;
    }
    tx.execute(
        "DELETE FROM asset_dag_run_queue WHERE target_dag_id = ?1 AND asset_id NOT IN \
         (SELECT asset_id FROM dag_schedule_asset_reference WHERE dag_id = ?1)",
        params![dag_id],
    )
    .map_err(db_err)?;
    Ok(())
}

/// A successful try of task instance `ti_id`: one event per outlet of its task, queued for
/// every active, unpaused DAG scheduled on the asset (Airflow queues nothing for a paused
/// DAG). Whether it emitted any.
pub fn emit_outlet_events(tx: &Transaction, ti_id: i64, at: i64) -> Result<bool> {
    let emitted = tx
        .prepare_cached(
            "INSERT INTO asset_event (asset_id, extra, source_dag_id, source_task_id, \
             source_run_id, source_map_index, timestamp) \
             SELECT o.asset_id, '{}', t.dag_id, t.task_id, t.run_id, t.map_index, ?2 \
             FROM task_instance t JOIN task_outlet_asset_reference o \
                  ON o.dag_id = t.dag_id AND o.task_id = t.task_id \
             WHERE t.id = ?1",
        )
        .map_err(db_err)?
        .execute(params![ti_id, at])
        .map_err(db_err)?;
    if emitted == 0 {
        return Ok(false);
    }
    tx.prepare_cached(
        "INSERT OR IGNORE INTO asset_dag_run_queue (asset_id, target_dag_id, created_at) \
         SELECT s.asset_id, s.dag_id, ?2 FROM task_instance t \
         JOIN task_outlet_asset_reference o ON o.dag_id = t.dag_id AND o.task_id = t.task_id \
         JOIN dag_schedule_asset_reference s ON s.asset_id = o.asset_id \
         JOIN dag d ON d.dag_id = s.dag_id \
         WHERE t.id = ?1 AND d.is_paused = 0 AND d.is_active = 1",
    )
    .map_err(db_err)?
    .execute(params![ti_id, at])
    .map_err(db_err)?;
    Ok(true)
}

const ASSET_COLUMNS: &str =
    "a.id, a.name, a.uri, a.asset_group, a.extra, a.created_at, a.updated_at";

fn asset_from_row(row: &Row) -> rusqlite::Result<AssetRecord> {
    Ok(AssetRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        uri: row.get(2)?,
        group: row.get(3)?,
        extra: json_map(&row.get::<_, String>(4)?).map_err(|e| conversion(4, e))?,
        created_at: instant(row.get(5)?).map_err(|e| conversion(5, e))?,
        updated_at: instant(row.get(6)?).map_err(|e| conversion(6, e))?,
        scheduled_dags: Vec::new(),
        producing_tasks: Vec::new(),
        last_event: None,
    })
}

/// Fills in the references and the latest event of `asset`.
fn with_references(conn: &Connection, mut asset: AssetRecord) -> Result<AssetRecord> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT dag_id, created_at, updated_at FROM dag_schedule_asset_reference \
             WHERE asset_id = ?1 ORDER BY dag_id",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![asset.id], |r| {
            Ok(AssetDagReference {
                dag_id: r.get(0)?,
                created_at: instant(r.get(1)?).map_err(|e| conversion(1, e))?,
                updated_at: instant(r.get(2)?).map_err(|e| conversion(2, e))?,
            })
        })
        .map_err(db_err)?;
    asset.scheduled_dags = rows.collect::<rusqlite::Result<_>>().map_err(db_err)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT dag_id, task_id, created_at, updated_at FROM task_outlet_asset_reference \
             WHERE asset_id = ?1 ORDER BY dag_id, task_id",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![asset.id], |r| {
            Ok(AssetTaskReference {
                dag_id: r.get(0)?,
                task_id: r.get(1)?,
                created_at: instant(r.get(2)?).map_err(|e| conversion(2, e))?,
                updated_at: instant(r.get(3)?).map_err(|e| conversion(3, e))?,
            })
        })
        .map_err(db_err)?;
    asset.producing_tasks = rows.collect::<rusqlite::Result<_>>().map_err(db_err)?;
    asset.last_event = conn
        .prepare_cached(
            "SELECT id, timestamp FROM asset_event WHERE asset_id = ?1 \
             ORDER BY timestamp DESC, id DESC LIMIT 1",
        )
        .map_err(db_err)?
        .query_row(params![asset.id], |r| {
            Ok(LastAssetEvent {
                id: r.get(0)?,
                timestamp: instant(r.get(1)?).map_err(|e| conversion(1, e))?,
            })
        })
        .optional()
        .map_err(db_err)?;
    Ok(asset)
}

fn get_asset(conn: &Connection, id: i64) -> Result<AssetRecord> {
    let asset = conn
        .query_row(
            &format!("SELECT {ASSET_COLUMNS} FROM asset a WHERE a.id = ?1"),
            params![id],
            asset_from_row,
        )
        .optional()
        .map_err(db_err)?
        .ok_or_else(|| StoreError::NotFound(format!("asset with ID {id}")))?;
    with_references(conn, asset)
}

fn like(pattern: &Option<String>) -> Option<String> {
    pattern.as_ref().map(|p| {
        let escaped = p
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    })
}

fn list_assets(conn: &Connection, q: &AssetQuery) -> Result<(Vec<AssetRecord>, i64)> {
    let dag_ids = serde_json::to_string(&q.dag_ids)
        .map_err(|e| StoreError::Corrupt(format!("dag ids: {e}")))?;
    let filter = "(?1 IS NULL OR a.name LIKE ?1 ESCAPE '\\') \
         AND (?2 IS NULL OR a.uri LIKE ?2 ESCAPE '\\') \
         AND (?3 = '[]' OR a.id IN (SELECT asset_id FROM dag_schedule_asset_reference \
              WHERE dag_id IN (SELECT value FROM json_each(?3)) \
              UNION SELECT asset_id FROM task_outlet_asset_reference \
              WHERE dag_id IN (SELECT value FROM json_each(?3))))";
    let (name, uri) = (like(&q.name_pattern), like(&q.uri_pattern));
    let total: i64 = conn
        .query_row(
            &format!("SELECT COUNT(*) FROM asset a WHERE {filter}"),
            params![name, uri, dag_ids],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {ASSET_COLUMNS} FROM asset a WHERE {filter} ORDER BY a.id LIMIT ?4 OFFSET ?5"
        ))
        .map_err(db_err)?;
    let rows = stmt
        .query_map(
            params![name, uri, dag_ids, q.limit, q.offset],
            asset_from_row,
        )
        .map_err(db_err)?;
    let assets: Vec<AssetRecord> = rows.collect::<rusqlite::Result<_>>().map_err(db_err)?;
    let assets = assets
        .into_iter()
        .map(|a| with_references(conn, a))
        .collect::<Result<Vec<_>>>()?;
    Ok((assets, total))
}

const EVENT_COLUMNS: &str = "e.id, e.asset_id, a.name, a.uri, a.asset_group, e.extra, \
    e.source_dag_id, e.source_task_id, e.source_run_id, e.source_map_index, e.timestamp";

fn event_from_row(row: &Row) -> rusqlite::Result<AssetEvent> {
    Ok(AssetEvent {
        id: row.get(0)?,
        asset_id: row.get(1)?,
        name: row.get(2)?,
        uri: row.get(3)?,
        group: row.get(4)?,
        extra: json_map(&row.get::<_, String>(5)?).map_err(|e| conversion(5, e))?,
        source_dag_id: row.get(6)?,
        source_task_id: row.get(7)?,
        source_run_id: row.get(8)?,
        source_map_index: row.get(9)?,
        timestamp: instant(row.get(10)?).map_err(|e| conversion(10, e))?,
        created_dagruns: Vec::new(),
    })
}

fn with_runs(conn: &Connection, mut event: AssetEvent) -> Result<AssetEvent> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT r.dag_id, r.run_id, r.state, r.logical_date, r.start_date, r.end_date \
             FROM dagrun_asset_event l \
             JOIN dag_run r ON r.id = l.dag_run_id WHERE l.event_id = ?1 ORDER BY r.id",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![event.id], |r| {
            Ok(TriggeredRun {
                dag_id: r.get(0)?,
                run_id: r.get(1)?,
                state: r.get(2)?,
                logical_date: instant(r.get(3)?).map_err(|e| conversion(3, e))?,
                start_date: opt_instant(r.get(4)?).map_err(|e| conversion(4, e))?,
                end_date: opt_instant(r.get(5)?).map_err(|e| conversion(5, e))?,
            })
        })
        .map_err(db_err)?;
    event.created_dagruns = rows.collect::<rusqlite::Result<_>>().map_err(db_err)?;
    Ok(event)
}

fn list_events(conn: &Connection, q: &AssetEventQuery) -> Result<(Vec<AssetEvent>, i64)> {
    let filter = "(?1 IS NULL OR e.asset_id = ?1) AND (?2 IS NULL OR e.source_dag_id = ?2) \
         AND (?3 IS NULL OR e.source_task_id = ?3) AND (?4 IS NULL OR e.source_run_id = ?4) \
         AND (?5 IS NULL OR e.source_map_index = ?5) AND (?6 IS NULL OR e.timestamp >= ?6) \
         AND (?7 IS NULL OR e.timestamp <= ?7)";
    let order = if q.newest_first { "DESC" } else { "ASC" };
    let args = params![
        q.asset_id,
        q.source_dag_id,
        q.source_task_id,
        q.source_run_id,
        q.source_map_index,
        opt_micros(q.timestamp_gte),
        opt_micros(q.timestamp_lte),
        q.limit,
        q.offset
    ];
    let total: i64 = conn
        .query_row(
            &format!(
                "SELECT COUNT(*) FROM asset_event e WHERE {filter} AND ?8 IS NOT NULL \
                 AND ?9 IS NOT NULL"
            ),
            args,
            |r| r.get(0),
        )
        .map_err(db_err)?;
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {EVENT_COLUMNS} FROM asset_event e JOIN asset a ON a.id = e.asset_id \
             WHERE {filter} ORDER BY e.timestamp {order}, e.id {order} LIMIT ?8 OFFSET ?9"
        ))
        .map_err(db_err)?;
    let rows = stmt.query_map(args, event_from_row).map_err(db_err)?;
    let events: Vec<AssetEvent> = rows.collect::<rusqlite::Result<_>>().map_err(db_err)?;
    let events = events
        .into_iter()
        .map(|e| with_runs(conn, e))
        .collect::<Result<Vec<_>>>()?;
    Ok((events, total))
}

fn get_event(conn: &Connection, id: i64) -> Result<AssetEvent> {
    let event = conn
        .query_row(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM asset_event e JOIN asset a ON a.id = e.asset_id \
                 WHERE e.id = ?1"
            ),
            params![id],
            event_from_row,
        )
        .map_err(db_err)?;
    with_runs(conn, event)
}

fn create_event(tx: &Transaction, e: &NewAssetEvent) -> Result<AssetEvent> {
    let exists: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM asset WHERE id = ?1)",
            params![e.asset_id],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    if !exists {
        return Err(StoreError::NotFound(format!(
            "asset with ID {}",
            e.asset_id
        )));
    }
    let extra = serde_json::to_string(&e.extra)
        .map_err(|err| StoreError::Corrupt(format!("extra: {err}")))?;
    let now = micros(e.now);
    tx.execute(
        "INSERT INTO asset_event (asset_id, extra, source_map_index, timestamp) \
         VALUES (?1, ?2, -1, ?3)",
        params![e.asset_id, extra, now],
    )
    .map_err(db_err)?;
    let id = tx.last_insert_rowid();
    tx.execute(
        "INSERT OR IGNORE INTO asset_dag_run_queue (asset_id, target_dag_id, created_at) \
         SELECT s.asset_id, s.dag_id, ?2 FROM dag_schedule_asset_reference s \
         JOIN dag d ON d.dag_id = s.dag_id \
         WHERE s.asset_id = ?1 AND d.is_paused = 0 AND d.is_active = 1",
        params![e.asset_id, now],
    )
    .map_err(db_err)?;
    get_event(tx, id)
}

const QUEUE_FILTER: &str = "(?1 IS NULL OR q.target_dag_id = ?1) \
    AND (?2 IS NULL OR q.asset_id = ?2) AND (?3 IS NULL OR q.created_at < ?3)";

fn queued(conn: &Connection, f: &QueuedEventFilter) -> Result<Vec<QueuedAssetEvent>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT q.asset_id, a.name, a.uri, q.target_dag_id, q.created_at \
             FROM asset_dag_run_queue q JOIN asset a ON a.id = q.asset_id \
             WHERE {QUEUE_FILTER} ORDER BY q.target_dag_id, q.asset_id"
        ))
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![f.dag_id, f.asset_id, opt_micros(f.before)], |r| {
            Ok(QueuedAssetEvent {
                asset_id: r.get(0)?,
                name: r.get(1)?,
                uri: r.get(2)?,
                dag_id: r.get(3)?,
                created_at: instant(r.get(4)?).map_err(|e| conversion(4, e))?,
            })
        })
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_err)
}

/// The asset-triggered run, or `None` when its events are no longer all queued or the DAG
/// is paused: nothing is written then.
fn create_run(tx: &Transaction, request: &AssetTriggeredRun) -> Result<Option<DagRun>> {
    let run = &request.run;
    let open: Option<bool> = tx
        .query_row(
            "SELECT is_paused = 0 AND is_active = 1 FROM dag WHERE dag_id = ?1",
            params![run.dag_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_err)?;
    if open != Some(true) || request.consumed.is_empty() {
        return Ok(None);
    }
    // One writer at a time: checking, then deleting, is a compare-and-set here.
    for (asset_id, queued_at) in &request.consumed {
        let still: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM asset_dag_run_queue WHERE asset_id = ?1 \
                 AND target_dag_id = ?2 AND created_at = ?3)",
                params![asset_id, run.dag_id, micros(*queued_at)],
                |r| r.get(0),
            )
            .map_err(db_err)?;
        if !still {
            return Ok(None);
        }
    }
    for (asset_id, _) in &request.consumed {
        tx.execute(
            "DELETE FROM asset_dag_run_queue WHERE asset_id = ?1 AND target_dag_id = ?2",
            params![asset_id, run.dag_id],
        )
        .map_err(db_err)?;
    }
    let previous: Option<i64> = tx
        .query_row(
            "SELECT MAX(logical_date) FROM dag_run WHERE dag_id = ?1 \
             AND run_type = 'asset_triggered'",
            params![run.dag_id],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    let created = runs::create(tx, run)?;
    tx.execute(
        "INSERT INTO dagrun_asset_event (dag_run_id, event_id) \
         SELECT ?1, e.id FROM asset_event e \
         WHERE e.asset_id IN (SELECT asset_id FROM dag_schedule_asset_reference \
                              WHERE dag_id = ?2) \
           AND e.timestamp <= ?3 AND (?4 IS NULL OR e.timestamp > ?4)",
        params![created.id, run.dag_id, micros(run.logical_date), previous],
    )
    .map_err(db_err)?;
    Ok(Some(created))
}

fn triggering(conn: &Connection, dag_run_id: i64) -> Result<Vec<AssetEvent>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM dagrun_asset_event l \
             JOIN asset_event e ON e.id = l.event_id JOIN asset a ON a.id = e.asset_id \
             WHERE l.dag_run_id = ?1 ORDER BY e.timestamp, e.id"
        ))
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![dag_run_id], event_from_row)
        .map_err(db_err)?;
    let events: Vec<AssetEvent> = rows.collect::<rusqlite::Result<_>>().map_err(db_err)?;
    events.into_iter().map(|e| with_runs(conn, e)).collect()
}

#[async_trait]
impl AssetStore for SqliteStore {
    async fn list_assets(&self, query: AssetQuery) -> Result<(Vec<AssetRecord>, i64)> {
        self.read(move |c| list_assets(c, &query)).await
    }
    async fn get_asset(&self, id: i64) -> Result<AssetRecord> {
        self.read(move |c| get_asset(c, id)).await
    }
    async fn list_asset_events(&self, query: AssetEventQuery) -> Result<(Vec<AssetEvent>, i64)> {
        self.read(move |c| list_events(c, &query)).await
    }
    async fn create_asset_event(&self, event: NewAssetEvent) -> Result<AssetEvent> {
        let created = self.write(move |tx| create_event(tx, &event)).await?;
        self.changed([Change::Everything]);
        Ok(created)
    }
    async fn queued_asset_events(
        &self,
        filter: QueuedEventFilter,
    ) -> Result<Vec<QueuedAssetEvent>> {
        self.read(move |c| queued(c, &filter)).await
    }
    async fn delete_queued_asset_events(&self, filter: QueuedEventFilter) -> Result<u64> {
        self.write(move |tx| {
            let n = tx
                .execute(
                    &format!("DELETE FROM asset_dag_run_queue AS q WHERE {QUEUE_FILTER}"),
                    params![filter.dag_id, filter.asset_id, opt_micros(filter.before)],
                )
                .map_err(db_err)?;
            Ok(n as u64)
        })
        .await
    }
    async fn create_asset_triggered_run(
        &self,
        request: AssetTriggeredRun,
    ) -> Result<Option<DagRun>> {
        let created = self.write(move |tx| create_run(tx, &request)).await?;
        if let Some(run) = &created {
            self.changed([Change::Runs(vec![run.id])]);
        }
        Ok(created)
    }
    async fn triggering_asset_events(&self, dag_run_id: i64) -> Result<Vec<AssetEvent>> {
        self.read(move |c| triggering(c, dag_run_id)).await
    }
}
