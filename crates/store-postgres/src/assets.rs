//! Assets, their events and the events queued for the DAGs scheduled on them
//! ([`AssetStore`]); what publishing a DAG and finishing a try write about them.
//!
//! Creating an asset-triggered run locks the DAG's row and consumes its queued events with a
//! `DELETE … RETURNING` that must find every one of them: of several schedulers that saw the
//! same events, the first creates the run and the others change nothing.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::PgConnection;
use updraft_store::*;

use crate::changes::Announce;
use crate::codec::{col, col_instant, col_opt_instant, json_map, micros, opt_micros};
use crate::{db_err, runs, PostgresStore};

/// Registers the assets a published DAG version names and replaces its references: the
/// assets its schedule waits for and each task's outlets. Events queued for assets the DAG
/// no longer waits for are dropped.
pub async fn register(conn: &mut PgConnection, dag: &updraft_model::Dag, now: i64) -> Result<()> {
    let refs = DagAssets::of(dag);
    let dag_id = &dag.dag_id;
    for asset in &refs.assets {
        let extra = serde_json::to_string(&asset.extra)
            .map_err(|e| StoreError::Corrupt(format!("asset extra: {e}")))?;
        sqlx::query(
            "INSERT INTO asset (name, uri, asset_group, extra, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (name, uri) DO UPDATE SET \
             asset_group = excluded.asset_group, extra = excluded.extra, \
             updated_at = excluded.updated_at \
             WHERE asset.asset_group <> excluded.asset_group OR asset.extra <> excluded.extra",
        )
        .bind(&asset.name)
        .bind(&asset.uri)
        .bind(&asset.group)
        .bind(extra)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    for table in [
        "dag_schedule_asset_reference",
        "task_outlet_asset_reference",
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE dag_id = $1"))
            .bind(dag_id)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    let (names, uris): (Vec<&str>, Vec<&str>) = refs
        .scheduled
        .iter()
        .map(|k| (k.name.as_str(), k.uri.as_str()))
        .unzip();
    sqlx::query(
        "INSERT INTO dag_schedule_asset_reference (dag_id, asset_id, created_at, updated_at) \
         SELECT $1, a.id, $4, $4 FROM asset a \
         JOIN UNNEST($2::text[], $3::text[]) AS k(name, uri) ON a.name = k.name AND a.uri = k.uri \
         ON CONFLICT DO NOTHING",
    )
    .bind(dag_id)
    .bind(names)
    .bind(uris)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    let mut task_ids = Vec::new();
    let mut names = Vec::new();
    let mut uris = Vec::new();
    for (task_id, key) in &refs.outlets {
        task_ids.push(*task_id);
        names.push(key.name.as_str());
        uris.push(key.uri.as_str());
    }
    sqlx::query(
        "INSERT INTO task_outlet_asset_reference (dag_id, task_id, asset_id, created_at, \
         updated_at) \
         SELECT $1, k.task_id, a.id, $5, $5 FROM asset a \
         JOIN UNNEST($2::text[], $3::text[], $4::text[]) AS k(task_id, name, uri) \
              ON a.name = k.name AND a.uri = k.uri \
         ON CONFLICT DO NOTHING",
    )
    .bind(dag_id)
    .bind(task_ids)
    .bind(names)
    .bind(uris)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    sqlx::query(
        "DELETE FROM asset_dag_run_queue WHERE target_dag_id = $1 AND asset_id NOT IN \
         (SELECT asset_id FROM dag_schedule_asset_reference WHERE dag_id = $1)",
    )
    .bind(dag_id)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// The statement that emits the asset events of succeeded task instances' outlets, the
/// instances' ids in parameter `$ids` and when each succeeded in `$ats`; `RETURNING 1` per
/// event, so that it can be a part of a bigger statement.
pub(crate) fn outlet_events_sql(ids: u8, ats: u8) -> String {
    format!(
        "INSERT INTO asset_event (asset_id, extra, source_dag_id, source_task_id, \
         source_run_id, source_map_index, timestamp) \
         SELECT o.asset_id, '{{}}', t.dag_id, t.task_id, t.run_id, t.map_index, b.at \
         FROM UNNEST(${ids}::bigint[], ${ats}::bigint[]) AS b(id, at) \
         JOIN task_instance t ON t.id = b.id \
         JOIN task_outlet_asset_reference o ON o.dag_id = t.dag_id AND o.task_id = t.task_id \
         RETURNING 1"
    )
}

/// Queues (once per asset and consuming DAG) the consumers of the outlets of succeeded task
/// instances `ids` (at `ats`) whose events were just emitted: every active, unpaused DAG
/// scheduled on the asset (Airflow queues nothing for a paused DAG).
pub(crate) async fn queue_consumers(
    conn: &mut PgConnection,
    ids: &[i64],
    ats: &[i64],
) -> Result<()> {
    sqlx::query(
        "INSERT INTO asset_dag_run_queue (asset_id, target_dag_id, created_at) \
         SELECT DISTINCT ON (s.asset_id, s.dag_id) s.asset_id, s.dag_id, b.at \
         FROM UNNEST($1::bigint[], $2::bigint[]) AS b(id, at) \
         JOIN task_instance t ON t.id = b.id \
         JOIN task_outlet_asset_reference o ON o.dag_id = t.dag_id AND o.task_id = t.task_id \
         JOIN dag_schedule_asset_reference s ON s.asset_id = o.asset_id \
         JOIN dag d ON d.dag_id = s.dag_id \
         WHERE NOT d.is_paused AND d.is_active \
         ORDER BY s.asset_id, s.dag_id, b.at \
         ON CONFLICT DO NOTHING",
    )
    .bind(ids)
    .bind(ats)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

const ASSET_COLUMNS: &str =
    "a.id, a.name, a.uri, a.asset_group, a.extra, a.created_at, a.updated_at";

fn asset_from_row(row: &PgRow) -> Result<AssetRecord> {
    Ok(AssetRecord {
        id: col(row, 0)?,
        name: col(row, 1)?,
        uri: col(row, 2)?,
        group: col(row, 3)?,
        extra: json_map(&col::<String>(row, 4)?)?,
        created_at: col_instant(row, 5)?,
        updated_at: col_instant(row, 6)?,
        scheduled_dags: Vec::new(),
        producing_tasks: Vec::new(),
        last_event: None,
    })
}

async fn with_references(conn: &mut PgConnection, mut asset: AssetRecord) -> Result<AssetRecord> {
    let rows = sqlx::query(
        "SELECT dag_id, created_at, updated_at FROM dag_schedule_asset_reference \
         WHERE asset_id = $1 ORDER BY dag_id",
    )
    .bind(asset.id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    asset.scheduled_dags = rows
        .iter()
        .map(|r| {
            Ok(AssetDagReference {
                dag_id: col(r, 0)?,
                created_at: col_instant(r, 1)?,
                updated_at: col_instant(r, 2)?,
            })
        })
        .collect::<Result<_>>()?;
    let rows = sqlx::query(
        "SELECT dag_id, task_id, created_at, updated_at FROM task_outlet_asset_reference \
         WHERE asset_id = $1 ORDER BY dag_id, task_id",
    )
    .bind(asset.id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    asset.producing_tasks = rows
        .iter()
        .map(|r| {
            Ok(AssetTaskReference {
                dag_id: col(r, 0)?,
                task_id: col(r, 1)?,
                created_at: col_instant(r, 2)?,
                updated_at: col_instant(r, 3)?,
            })
        })
        .collect::<Result<_>>()?;
    let last = sqlx::query(
        "SELECT id, timestamp FROM asset_event WHERE asset_id = $1 \
         ORDER BY timestamp DESC, id DESC LIMIT 1",
    )
    .bind(asset.id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?;
    asset.last_event = match last {
        Some(r) => Some(LastAssetEvent {
            id: col(&r, 0)?,
            timestamp: col_instant(&r, 1)?,
        }),
        None => None,
    };
    Ok(asset)
}

async fn get_asset(conn: &mut PgConnection, id: i64) -> Result<AssetRecord> {
    let row = sqlx::query(&format!(
        "SELECT {ASSET_COLUMNS} FROM asset a WHERE a.id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?
    .ok_or_else(|| StoreError::NotFound(format!("asset with ID {id}")))?;
    with_references(conn, asset_from_row(&row)?).await
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

async fn list_assets(conn: &mut PgConnection, q: &AssetQuery) -> Result<(Vec<AssetRecord>, i64)> {
    let filter = "($1::TEXT IS NULL OR a.name ILIKE $1) AND ($2::TEXT IS NULL OR a.uri ILIKE $2) \
         AND (cardinality($3::text[]) = 0 OR a.id IN (SELECT asset_id \
              FROM dag_schedule_asset_reference WHERE dag_id = ANY($3) \
              UNION SELECT asset_id FROM task_outlet_asset_reference WHERE dag_id = ANY($3)))";
    let (name, uri) = (like(&q.name_pattern), like(&q.uri_pattern));
    let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM asset a WHERE {filter}"))
        .bind(&name)
        .bind(&uri)
        .bind(&q.dag_ids)
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
    let rows = sqlx::query(&format!(
        "SELECT {ASSET_COLUMNS} FROM asset a WHERE {filter} ORDER BY a.id LIMIT $4 OFFSET $5"
    ))
    .bind(&name)
    .bind(&uri)
    .bind(&q.dag_ids)
    .bind(i64::from(q.limit))
    .bind(i64::from(q.offset))
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let mut assets = Vec::with_capacity(rows.len());
    for row in &rows {
        assets.push(with_references(conn, asset_from_row(row)?).await?);
    }
    Ok((assets, total))
}

const EVENT_COLUMNS: &str = "e.id, e.asset_id, a.name, a.uri, a.asset_group, e.extra, \
    e.source_dag_id, e.source_task_id, e.source_run_id, e.source_map_index, e.timestamp";

fn event_from_row(row: &PgRow) -> Result<AssetEvent> {
    Ok(AssetEvent {
        id: col(row, 0)?,
        asset_id: col(row, 1)?,
        name: col(row, 2)?,
        uri: col(row, 3)?,
        group: col(row, 4)?,
        extra: json_map(&col::<String>(row, 5)?)?,
        source_dag_id: col(row, 6)?,
        source_task_id: col(row, 7)?,
        source_run_id: col(row, 8)?,
        source_map_index: col(row, 9)?,
        timestamp: col_instant(row, 10)?,
        created_dagruns: Vec::new(),
    })
}

async fn with_runs(conn: &mut PgConnection, mut event: AssetEvent) -> Result<AssetEvent> {
    let rows = sqlx::query(
        "SELECT r.dag_id, r.run_id, r.state, r.logical_date, r.start_date, r.end_date \
         FROM dagrun_asset_event l \
         JOIN dag_run r ON r.id = l.dag_run_id WHERE l.event_id = $1 ORDER BY r.id",
    )
    .bind(event.id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    event.created_dagruns = rows
        .iter()
        .map(|r| {
            Ok(TriggeredRun {
                dag_id: col(r, 0)?,
                run_id: col(r, 1)?,
                state: col(r, 2)?,
                logical_date: col_instant(r, 3)?,
                start_date: col_opt_instant(r, 4)?,
                end_date: col_opt_instant(r, 5)?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(event)
}

async fn events_with_runs(conn: &mut PgConnection, rows: &[PgRow]) -> Result<Vec<AssetEvent>> {
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        events.push(with_runs(conn, event_from_row(row)?).await?);
    }
    Ok(events)
}

async fn list_events(
    conn: &mut PgConnection,
    q: &AssetEventQuery,
) -> Result<(Vec<AssetEvent>, i64)> {
    let filter = "($1::BIGINT IS NULL OR e.asset_id = $1) \
         AND ($2::TEXT IS NULL OR e.source_dag_id = $2) \
         AND ($3::TEXT IS NULL OR e.source_task_id = $3) \
         AND ($4::TEXT IS NULL OR e.source_run_id = $4) \
         AND ($5::BIGINT IS NULL OR e.source_map_index = $5) \
         AND ($6::BIGINT IS NULL OR e.timestamp >= $6) \
         AND ($7::BIGINT IS NULL OR e.timestamp <= $7)";
    let order = if q.newest_first { "DESC" } else { "ASC" };
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM asset_event e WHERE {filter}"
    ))
    .bind(q.asset_id)
    .bind(&q.source_dag_id)
    .bind(&q.source_task_id)
    .bind(&q.source_run_id)
    .bind(q.source_map_index)
    .bind(opt_micros(q.timestamp_gte))
    .bind(opt_micros(q.timestamp_lte))
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    let rows = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM asset_event e JOIN asset a ON a.id = e.asset_id \
         WHERE {filter} ORDER BY e.timestamp {order}, e.id {order} LIMIT $8 OFFSET $9"
    ))
    .bind(q.asset_id)
    .bind(&q.source_dag_id)
    .bind(&q.source_task_id)
    .bind(&q.source_run_id)
    .bind(q.source_map_index)
    .bind(opt_micros(q.timestamp_gte))
    .bind(opt_micros(q.timestamp_lte))
    .bind(i64::from(q.limit))
    .bind(i64::from(q.offset))
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok((events_with_runs(conn, &rows).await?, total))
}

async fn create_event(conn: &mut PgConnection, e: &NewAssetEvent) -> Result<AssetEvent> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM asset WHERE id = $1)")
        .bind(e.asset_id)
        .fetch_one(&mut *conn)
        .await
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
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO asset_event (asset_id, extra, source_map_index, timestamp) \
         VALUES ($1, $2, -1, $3) RETURNING id",
    )
    .bind(e.asset_id)
    .bind(extra)
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    sqlx::query(
        "INSERT INTO asset_dag_run_queue (asset_id, target_dag_id, created_at) \
         SELECT s.asset_id, s.dag_id, $2 FROM dag_schedule_asset_reference s \
         JOIN dag d ON d.dag_id = s.dag_id \
         WHERE s.asset_id = $1 AND NOT d.is_paused AND d.is_active \
         ON CONFLICT DO NOTHING",
    )
    .bind(e.asset_id)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    let row = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM asset_event e JOIN asset a ON a.id = e.asset_id \
         WHERE e.id = $1"
    ))
    .bind(id)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    event_from_row(&row)
}

const QUEUE_FILTER: &str = "($1::TEXT IS NULL OR q.target_dag_id = $1) \
    AND ($2::BIGINT IS NULL OR q.asset_id = $2) AND ($3::BIGINT IS NULL OR q.created_at < $3)";

async fn queued(conn: &mut PgConnection, f: &QueuedEventFilter) -> Result<Vec<QueuedAssetEvent>> {
    let rows = sqlx::query(&format!(
        "SELECT q.asset_id, a.name, a.uri, q.target_dag_id, q.created_at \
         FROM asset_dag_run_queue q JOIN asset a ON a.id = q.asset_id \
         WHERE {QUEUE_FILTER} ORDER BY q.target_dag_id, q.asset_id"
    ))
    .bind(&f.dag_id)
    .bind(f.asset_id)
    .bind(opt_micros(f.before))
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|r| {
            Ok(QueuedAssetEvent {
                asset_id: col(r, 0)?,
                name: col(r, 1)?,
                uri: col(r, 2)?,
                dag_id: col(r, 3)?,
                created_at: col_instant(r, 4)?,
            })
        })
        .collect()
}

/// The asset-triggered run, or `None` when its events are no longer all queued or the DAG
/// is paused; the caller commits only a `Some`.
async fn create_run(
    conn: &mut PgConnection,
    request: &AssetTriggeredRun,
) -> Result<Option<DagRun>> {
    let run = &request.run;
    // Serialises the schedulers creating this DAG's asset runs; NO KEY UPDATE leaves the
    // foreign-key checks of finishing tries (which queue events for it) unblocked.
    let open: Option<bool> = sqlx::query_scalar(
        "SELECT NOT is_paused AND is_active FROM dag WHERE dag_id = $1 FOR NO KEY UPDATE",
    )
    .bind(&run.dag_id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?;
    if open != Some(true) || request.consumed.is_empty() {
        return Ok(None);
    }
    let (assets, queued_at): (Vec<i64>, Vec<i64>) = request
        .consumed
        .iter()
        .map(|(asset, at)| (*asset, micros(*at)))
        .unzip();
    let deleted = sqlx::query(
        "DELETE FROM asset_dag_run_queue q USING UNNEST($2::bigint[], $3::bigint[]) \
         AS b(asset_id, created_at) \
         WHERE q.target_dag_id = $1 AND q.asset_id = b.asset_id AND q.created_at = b.created_at",
    )
    .bind(&run.dag_id)
    .bind(&assets)
    .bind(&queued_at)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?
    .rows_affected();
    if deleted != request.consumed.len() as u64 {
        return Ok(None);
    }
    let previous: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(logical_date) FROM dag_run WHERE dag_id = $1 AND run_type = 'asset_triggered'",
    )
    .bind(&run.dag_id)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    let created = runs::create(conn, run).await?;
    sqlx::query(
        "INSERT INTO dagrun_asset_event (dag_run_id, event_id) \
         SELECT $1, e.id FROM asset_event e \
         WHERE e.asset_id IN (SELECT asset_id FROM dag_schedule_asset_reference \
                              WHERE dag_id = $2) \
           AND e.timestamp <= $3 AND ($4::BIGINT IS NULL OR e.timestamp > $4)",
    )
    .bind(created.id)
    .bind(&run.dag_id)
    .bind(micros(run.logical_date))
    .bind(previous)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(Some(created))
}

#[async_trait]
impl AssetStore for PostgresStore {
    async fn list_assets(&self, query: AssetQuery) -> Result<(Vec<AssetRecord>, i64)> {
        list_assets(&mut *self.conn().await?, &query).await
    }
    async fn get_asset(&self, id: i64) -> Result<AssetRecord> {
        get_asset(&mut *self.conn().await?, id).await
    }
    async fn list_asset_events(&self, query: AssetEventQuery) -> Result<(Vec<AssetEvent>, i64)> {
        list_events(&mut *self.conn().await?, &query).await
    }
    async fn create_asset_event(&self, event: NewAssetEvent) -> Result<AssetEvent> {
        let mut tx = self.begin().await?;
        let created = create_event(&mut tx, &event).await?;
        self.commit(tx, Some(Announce::Everything)).await?;
        Ok(created)
    }
    async fn queued_asset_events(
        &self,
        filter: QueuedEventFilter,
    ) -> Result<Vec<QueuedAssetEvent>> {
        queued(&mut *self.conn().await?, &filter).await
    }
    async fn delete_queued_asset_events(&self, filter: QueuedEventFilter) -> Result<u64> {
        let deleted = sqlx::query(&format!(
            "DELETE FROM asset_dag_run_queue q WHERE {QUEUE_FILTER}"
        ))
        .bind(&filter.dag_id)
        .bind(filter.asset_id)
        .bind(opt_micros(filter.before))
        .execute(&mut *self.conn().await?)
        .await
        .map_err(db_err)?;
        Ok(deleted.rows_affected())
    }
    async fn create_asset_triggered_run(
        &self,
        request: AssetTriggeredRun,
    ) -> Result<Option<DagRun>> {
        let mut tx = self.begin().await?;
        let created = create_run(&mut tx, &request).await?;
        match &created {
            Some(run) => {
                self.commit(tx, Some(Announce::Runs(vec![run.id]))).await?;
            }
            // Dropping the transaction rolls it back.
            None => drop(tx),
        }
        Ok(created)
    }
    async fn triggering_asset_events(&self, dag_run_id: i64) -> Result<Vec<AssetEvent>> {
        let mut conn = self.conn().await?;
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM dagrun_asset_event l \
             JOIN asset_event e ON e.id = l.event_id JOIN asset a ON a.id = e.asset_id \
             WHERE l.dag_run_id = $1 ORDER BY e.timestamp, e.id"
        ))
        .bind(dag_run_id)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
        events_with_runs(&mut conn, &rows).await
    }
}
