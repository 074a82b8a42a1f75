//! Browsing DAGs: the DAG list with each DAG's latest run, tags, run counts per state,
//! versions and sources, and import errors.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{params, Connection, OptionalExtension};
use updraft_store::{
    DagQuery, DagRun, DagRunCounts, DagRunState, DagSortField, DagSummary, DagVersionRecord,
    ImportErrorRow, ImportErrorSortField, Page, Result, Sort, StoreError, Window,
};

use super::sql::{col, nullable, order_by, qualified, total, Column, Filter};
use crate::codec::{instant, parse};
use crate::dags::{conversion, dag_from_row, DAG_COLUMNS};
use crate::db_err;
use crate::runs::{run_from_row, RUN_COLUMNS};

/// Every DAG with its latest run (by logical date; the newest id among equal dates) as `r`.
/// The correlated lookup walks `dag_run_by_dag` backwards, one probe per DAG.
const LAST_RUN_JOIN: &str = " LEFT JOIN dag_run r ON r.id = (SELECT lr.id FROM dag_run lr \
     WHERE lr.dag_id = d.dag_id ORDER BY lr.logical_date DESC, lr.id DESC LIMIT 1)";

const RUN_STATES: [DagRunState; 4] = [
    DagRunState::Queued,
    DagRunState::Running,
    DagRunState::Success,
    DagRunState::Failed,
];

fn dag_sort(field: DagSortField) -> Column {
    match field {
        DagSortField::DagId => col("d.dag_id"),
        DagSortField::NextDagrun => nullable("d.next_dagrun"),
        DagSortField::LastRunState => nullable("r.state"),
        DagSortField::LastRunStartDate => nullable("r.start_date"),
    }
}

pub fn query_dags(conn: &Connection, query: &DagQuery) -> Result<Page<DagSummary>> {
    let mut f = Filter::default();
    f.like("d.dag_id", query.dag_id_pattern.as_deref());
    if !query.tags.is_empty() {
        let mut tags = query.tags.clone();
        tags.sort();
        tags.dedup();
        let list = f.bind_list(&tags);
        if query.tags_match_all {
            let wanted = f.bind(tags.len() as i64);
            f.push(format!(
                "(SELECT COUNT(DISTINCT t.value) FROM json_each(d.tags) t \
                 WHERE t.value IN ({list})) = {wanted}"
            ));
        } else {
            f.push(format!(
                "EXISTS (SELECT 1 FROM json_each(d.tags) t WHERE t.value IN ({list}))"
            ));
        }
    }
    if let Some(paused) = query.paused {
        let p = f.bind(paused);
        f.push(format!("d.is_paused = {p}"));
    }
    if query.exclude_stale {
        f.push("d.is_active = 1");
    }
    if let Some(state) = query.last_dag_run_state {
        let p = f.bind(state.as_str().to_string());
        f.push(format!("r.state = {p}"));
    }
    let where_sql = f.where_sql();
    // The latest runs are looked up for the count only when it filters on them.
    let count_join = if query.last_dag_run_state.is_some() {
        LAST_RUN_JOIN
    } else {
        ""
    };
    let count: i64 = conn
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM dag d{count_join}{where_sql}"
        ))
        .and_then(|mut s| s.query_row(f.values(), |r| r.get(0)))
        .map_err(db_err)?;
    let order = order_by(&query.sort, DagSortField::DagId, dag_sort, "d.dag_id");
    let window = f.window_sql(query.window);
    let (last_run, join) = if query.needs_last_run() {
        ("r.id", LAST_RUN_JOIN)
    } else {
        ("NULL", "")
    };
    let sql = format!(
        "SELECT {}, {last_run}, EXISTS (SELECT 1 FROM import_error e \
         WHERE e.filename = d.fileloc) FROM dag d{join}{where_sql}{order}{window}",
        qualified(DAG_COLUMNS, "d")
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(db_err)?;
    let rows = stmt
        .query_map(f.values(), |row| {
            Ok((
                dag_from_row(row)?,
                row.get::<_, Option<i64>>(10)?,
                row.get::<_, bool>(11)?,
            ))
        })
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err)?;
    let run_ids: Vec<i64> = rows.iter().filter_map(|(_, id, _)| *id).collect();
    let mut runs = runs_by_id(conn, &run_ids)?;
    let items = rows
        .into_iter()
        .map(|(dag, run_id, has_import_errors)| DagSummary {
            dag,
            last_run: run_id.and_then(|id| runs.remove(&id)),
            has_import_errors,
        })
        .collect();
    Ok(Page {
        items,
        total: total(count),
    })
}

/// The runs `ids`, in one query (a page's latest runs, not one query per DAG).
fn runs_by_id(conn: &Connection, ids: &[i64]) -> Result<HashMap<i64, DagRun>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let placeholders = vec!["?"; ids.len()].join(", ");
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {RUN_COLUMNS} FROM dag_run WHERE id IN ({placeholders})"
        ))
        .map_err(db_err)?;
    let runs = stmt
        .query_map(rusqlite::params_from_iter(ids), run_from_row)
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err)?;
    Ok(runs.into_iter().map(|run| (run.id, run)).collect())
}

pub fn dag_tags(conn: &Connection, pattern: Option<&str>, window: Window) -> Result<Page<String>> {
    let mut f = Filter::default();
    f.push("d.is_active = 1");
    f.push("t.type = 'text'");
    f.like("t.value", pattern);
    let from = format!("FROM dag d, json_each(d.tags) t{}", f.where_sql());
    let count: i64 = conn
        .prepare_cached(&format!("SELECT COUNT(DISTINCT t.value) {from}"))
        .and_then(|mut s| s.query_row(f.values(), |r| r.get(0)))
        .map_err(db_err)?;
    let window = f.window_sql(window);
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT DISTINCT t.value {from} ORDER BY t.value{window}"
        ))
        .map_err(db_err)?;
    let items = stmt
        .query_map(f.values(), |r| r.get(0))
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(db_err)?;
    Ok(Page {
        items,
        total: total(count),
    })
}

pub fn dag_run_counts(
    conn: &Connection,
    dag_ids: Option<Vec<String>>,
) -> Result<Vec<DagRunCounts>> {
    let mut f = Filter::default();
    let dag_ids = match dag_ids {
        Some(mut ids) => {
            ids.sort();
            ids.dedup();
            f.any_of("r.dag_id", &ids);
            ids
        }
        None => {
            f.push("r.dag_id IN (SELECT dag_id FROM dag WHERE is_active = 1)");
            let mut stmt = conn
                .prepare_cached("SELECT dag_id FROM dag WHERE is_active = 1 ORDER BY dag_id")
                .map_err(db_err)?;
            let ids = stmt
                .query_map([], |r| r.get(0))
                .map_err(db_err)?
                .collect::<rusqlite::Result<Vec<String>>>()
                .map_err(db_err)?;
            ids
        }
    };
    // Each DAG's runs are found through `dag_run_by_dag`. An index on (dag_id, state) would
    // make this index-only, but SQLite would then prefer it to `dag_run_running` for the
    // admission count of running runs.
    let mut counts: BTreeMap<String, [u64; RUN_STATES.len()]> = dag_ids
        .into_iter()
        .map(|id| (id, [0; RUN_STATES.len()]))
        .collect();
    let mut stmt = conn
        .prepare(&format!(
            "SELECT r.dag_id, r.state, COUNT(*) FROM dag_run r{} GROUP BY r.dag_id, r.state",
            f.where_sql()
        ))
        .map_err(db_err)?;
    let rows = stmt
        .query_map(f.values(), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(db_err)?;
    for row in rows {
        let (dag_id, state, count) = row.map_err(db_err)?;
        let state: DagRunState = parse(&state)?;
        let index = RUN_STATES.iter().position(|s| *s == state);
        if let (Some(per_state), Some(index)) = (counts.get_mut(&dag_id), index) {
            per_state[index] += total(count);
        }
    }
    Ok(counts
        .into_iter()
        .map(|(dag_id, per_state)| DagRunCounts {
            dag_id,
            counts: RUN_STATES.iter().copied().zip(per_state).collect(),
        })
        .collect())
}

pub fn dag_versions(
    conn: &Connection,
    dag_id: &str,
    window: Window,
) -> Result<Page<DagVersionRecord>> {
    let known = conn
        .prepare_cached("SELECT 1 FROM dag WHERE dag_id = ?1")
        .and_then(|mut s| s.query_row(params![dag_id], |_| Ok(())).optional())
        .map_err(db_err)?;
    if known.is_none() {
        return Err(StoreError::NotFound(format!("DAG {dag_id:?}")));
    }
    let mut f = Filter::default();
    let p = f.bind(dag_id.to_string());
    f.push(format!("dag_id = {p}"));
    let where_sql = f.where_sql();
    let count: i64 = conn
        .prepare_cached(&format!("SELECT COUNT(*) FROM dag_version{where_sql}"))
        .and_then(|mut s| s.query_row(f.values(), |r| r.get(0)))
        .map_err(db_err)?;
    let window = f.window_sql(window);
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT dag_id, version, content_hash, created_at FROM dag_version{where_sql} \
             ORDER BY version{window}"
        ))
        .map_err(db_err)?;
    let items = stmt
        .query_map(f.values(), |r| {
            Ok(DagVersionRecord {
                dag_id: r.get(0)?,
                version: r.get(1)?,
                content_hash: r.get(2)?,
                created_at: instant(r.get(3)?).map_err(|e| conversion(3, e))?,
            })
        })
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err)?;
    Ok(Page {
        items,
        total: total(count),
    })
}

pub fn dag_source(conn: &Connection, dag_id: &str, version: i64) -> Result<String> {
    conn.prepare_cached("SELECT source FROM dag_version WHERE dag_id = ?1 AND version = ?2")
        .and_then(|mut s| {
            s.query_row(params![dag_id, version], |r| r.get(0))
                .optional()
        })
        .map_err(db_err)?
        .ok_or_else(|| StoreError::NotFound(format!("DAG version {dag_id}/{version}")))
}

const IMPORT_ERROR_COLUMNS: &str = "rowid, filename, error, timestamp";

fn import_error_from_row(r: &rusqlite::Row) -> rusqlite::Result<ImportErrorRow> {
    Ok(ImportErrorRow {
        id: r.get(0)?,
        filename: r.get(1)?,
        error: r.get(2)?,
        timestamp: instant(r.get(3)?).map_err(|e| conversion(3, e))?,
    })
}

fn import_error_sort(field: ImportErrorSortField) -> Column {
    match field {
        ImportErrorSortField::Id => col("rowid"),
        ImportErrorSortField::Timestamp => col("timestamp"),
        ImportErrorSortField::Filename => col("filename"),
    }
}

pub fn query_import_errors(
    conn: &Connection,
    sort: &[Sort<ImportErrorSortField>],
    window: Window,
) -> Result<Page<ImportErrorRow>> {
    let count: i64 = conn
        .query_row("SELECT COUNT(*) FROM import_error", [], |r| r.get(0))
        .map_err(db_err)?;
    let mut f = Filter::default();
    let order = order_by(sort, ImportErrorSortField::Id, import_error_sort, "rowid");
    let window = f.window_sql(window);
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {IMPORT_ERROR_COLUMNS} FROM import_error{order}{window}"
        ))
        .map_err(db_err)?;
    let items = stmt
        .query_map(f.values(), import_error_from_row)
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err)?;
    Ok(Page {
        items,
        total: total(count),
    })
}

pub fn get_import_error(conn: &Connection, id: i64) -> Result<ImportErrorRow> {
    conn.prepare_cached(&format!(
        "SELECT {IMPORT_ERROR_COLUMNS} FROM import_error WHERE rowid = ?1"
    ))
    .and_then(|mut s| s.query_row(params![id], import_error_from_row).optional())
    .map_err(db_err)?
    .ok_or_else(|| StoreError::NotFound(format!("import error {id}")))
}
