//! Browsing DAGs: the DAG list with each DAG's latest run, tags, run counts per state,
//! versions and sources, and import errors.

use std::collections::{BTreeMap, HashMap};

use sqlx::postgres::PgRow;
use sqlx::PgConnection;
use updraft_store::{
    DagQuery, DagRun, DagRunCounts, DagRunState, DagSortField, DagSummary, DagVersionRecord,
    ImportErrorRow, ImportErrorSortField, Page, Result, Sort, StoreError, Window,
};

use super::sql::{col, nullable, order_by, qualified, texts, total, Arg, Column, Filter};
use crate::codec::{col as column, col_instant, parse};
use crate::dags::{dag_from_row, DAG_COLUMNS};
use crate::db_err;
use crate::runs::{run_from_row, RUN_COLUMNS};

/// Every DAG with its latest run (by logical date; the newest id among equal dates) as `r`:
/// one backward probe of `dag_run_by_dag` per DAG.
const LAST_RUN_JOIN: &str = " LEFT JOIN LATERAL (SELECT lr.id, lr.state, lr.start_date \
     FROM dag_run lr WHERE lr.dag_id = d.dag_id ORDER BY lr.logical_date DESC, lr.id DESC \
     LIMIT 1) r ON TRUE";

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
        DagSortField::LastRunState => nullable("r.state COLLATE \"C\""),
        DagSortField::LastRunStartDate => nullable("r.start_date"),
    }
}

pub async fn query_dags(conn: &mut PgConnection, query: &DagQuery) -> Result<Page<DagSummary>> {
    let mut f = Filter::default();
    f.like("d.dag_id", query.dag_id_pattern.as_deref());
    if !query.tags.is_empty() {
        let p = f.bind(texts(&query.tags));
        // `?&` / `?|`: the array holds all / any of the strings.
        let op = if query.tags_match_all { "?&" } else { "?|" };
        f.push(format!("d.tags::jsonb {op} {p}"));
    }
    if let Some(paused) = query.paused {
        let p = f.bind(Arg::Bool(paused));
        f.push(format!("d.is_paused = {p}"));
    }
    if query.exclude_stale {
        f.push("d.is_active");
    }
    if let Some(state) = query.last_dag_run_state {
        let p = f.bind(Arg::Text(state.as_str().to_string()));
        f.push(format!("r.state = {p}"));
    }
    let where_sql = f.where_sql();
    // The latest runs are looked up for the count only when it filters on them.
    let count_join = if query.last_dag_run_state.is_some() {
        LAST_RUN_JOIN
    } else {
        ""
    };
    let count_sql = format!("SELECT COUNT(*) FROM dag d{count_join}{where_sql}");
    let count: i64 = f
        .query(&count_sql)
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)
        .and_then(|row| column(&row, 0))?;
    let order = order_by(&query.sort, DagSortField::DagId, dag_sort, "d.dag_id");
    let window = f.window_sql(query.window);
    let (last_run, join) = if query.needs_last_run() {
        ("r.id", LAST_RUN_JOIN)
    } else {
        ("NULL::bigint", "")
    };
    let sql = format!(
        "SELECT {}, {last_run}, EXISTS (SELECT 1 FROM import_error e \
         WHERE e.filename = d.fileloc) FROM dag d{join}{where_sql}{order}{window}",
        qualified(DAG_COLUMNS, "d")
    );
    let rows = f.query(&sql).fetch_all(&mut *conn).await.map_err(db_err)?;
    let mut page = Vec::with_capacity(rows.len());
    for row in &rows {
        page.push((
            dag_from_row(row)?,
            column::<Option<i64>>(row, 10)?,
            column::<bool>(row, 11)?,
        ));
    }
    let run_ids: Vec<i64> = page.iter().filter_map(|(_, id, _)| *id).collect();
    let mut runs = runs_by_id(conn, &run_ids).await?;
    let items = page
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
async fn runs_by_id(conn: &mut PgConnection, ids: &[i64]) -> Result<HashMap<i64, DagRun>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM dag_run WHERE id = ANY($1)"
    ))
    .bind(ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|row| run_from_row(row).map(|run| (run.id, run)))
        .collect()
}

pub async fn dag_tags(
    conn: &mut PgConnection,
    pattern: Option<&str>,
    window: Window,
) -> Result<Page<String>> {
    let mut f = Filter::default();
    f.push("d.is_active");
    f.like("t.tag", pattern);
    let from = format!(
        "FROM dag d CROSS JOIN LATERAL jsonb_array_elements_text(d.tags::jsonb) AS t(tag){}",
        f.where_sql()
    );
    let count_sql = format!("SELECT COUNT(DISTINCT t.tag) {from}");
    let count: i64 = f
        .query(&count_sql)
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)
        .and_then(|row| column(&row, 0))?;
    let window = f.window_sql(window);
    // Bytewise order, as SQLite's, whatever the database's locale.
    let sql = format!("SELECT DISTINCT t.tag COLLATE \"C\" AS tag {from} ORDER BY tag{window}");
    let rows = f.query(&sql).fetch_all(&mut *conn).await.map_err(db_err)?;
    let items = rows
        .iter()
        .map(|row| column(row, 0))
        .collect::<Result<_>>()?;
    Ok(Page {
        items,
        total: total(count),
    })
}

pub async fn dag_run_counts(
    conn: &mut PgConnection,
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
            f.push("r.dag_id IN (SELECT dag_id FROM dag WHERE is_active)");
            sqlx::query_scalar("SELECT dag_id FROM dag WHERE is_active ORDER BY dag_id")
                .fetch_all(&mut *conn)
                .await
                .map_err(db_err)?
        }
    };
    // Read from `dag_run_by_dag_state` alone: a page of DAGs can hold 100,000 runs.
    let mut counts: BTreeMap<String, [u64; RUN_STATES.len()]> = dag_ids
        .into_iter()
        .map(|id| (id, [0; RUN_STATES.len()]))
        .collect();
    let sql = format!(
        "SELECT r.dag_id, r.state, COUNT(*) FROM dag_run r{} GROUP BY r.dag_id, r.state",
        f.where_sql()
    );
    let rows = f.query(&sql).fetch_all(&mut *conn).await.map_err(db_err)?;
    for row in &rows {
        let dag_id: String = column(row, 0)?;
        let state: DagRunState = parse(&column::<String>(row, 1)?)?;
        let count: i64 = column(row, 2)?;
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

pub async fn dag_versions(
    conn: &mut PgConnection,
    dag_id: &str,
    window: Window,
) -> Result<Page<DagVersionRecord>> {
    let known: Option<i32> = sqlx::query_scalar("SELECT 1 FROM dag WHERE dag_id = $1")
        .bind(dag_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    if known.is_none() {
        return Err(StoreError::NotFound(format!("DAG {dag_id:?}")));
    }
    let mut f = Filter::default();
    let p = f.bind(Arg::Text(dag_id.to_string()));
    f.push(format!("dag_id = {p}"));
    let where_sql = f.where_sql();
    let count_sql = format!("SELECT COUNT(*) FROM dag_version{where_sql}");
    let count: i64 = f
        .query(&count_sql)
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)
        .and_then(|row| column(&row, 0))?;
    let window = f.window_sql(window);
    let sql = format!(
        "SELECT dag_id, version, content_hash, created_at FROM dag_version{where_sql} \
         ORDER BY version{window}"
    );
    let rows = f.query(&sql).fetch_all(&mut *conn).await.map_err(db_err)?;
    let items = rows
        .iter()
        .map(|row| {
            Ok(DagVersionRecord {
                dag_id: column(row, 0)?,
                version: column(row, 1)?,
                content_hash: column(row, 2)?,
                created_at: col_instant(row, 3)?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Page {
        items,
        total: total(count),
    })
}

pub async fn dag_source(conn: &mut PgConnection, dag_id: &str, version: i64) -> Result<String> {
    sqlx::query_scalar("SELECT source FROM dag_version WHERE dag_id = $1 AND version = $2")
        .bind(dag_id)
        .bind(version)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?
        .ok_or_else(|| StoreError::NotFound(format!("DAG version {dag_id}/{version}")))
}

const IMPORT_ERROR_COLUMNS: &str = "id, filename, error, timestamp";

fn import_error_from_row(row: &PgRow) -> Result<ImportErrorRow> {
    Ok(ImportErrorRow {
        id: column(row, 0)?,
        filename: column(row, 1)?,
        error: column(row, 2)?,
        timestamp: col_instant(row, 3)?,
    })
}

fn import_error_sort(field: ImportErrorSortField) -> Column {
    match field {
        ImportErrorSortField::Id => col("id"),
        ImportErrorSortField::Timestamp => col("timestamp"),
        ImportErrorSortField::Filename => col("filename"),
    }
}

pub async fn query_import_errors(
    conn: &mut PgConnection,
    sort: &[Sort<ImportErrorSortField>],
    window: Window,
) -> Result<Page<ImportErrorRow>> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM import_error")
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
    let mut f = Filter::default();
    let order = order_by(sort, ImportErrorSortField::Id, import_error_sort, "id");
    let window = f.window_sql(window);
    let sql = format!("SELECT {IMPORT_ERROR_COLUMNS} FROM import_error{order}{window}");
    let rows = f.query(&sql).fetch_all(&mut *conn).await.map_err(db_err)?;
    let items = rows
        .iter()
        .map(import_error_from_row)
        .collect::<Result<_>>()?;
    Ok(Page {
        items,
        total: total(count),
    })
}

pub async fn get_import_error(conn: &mut PgConnection, id: i64) -> Result<ImportErrorRow> {
    let row = sqlx::query(&format!(
        "SELECT {IMPORT_ERROR_COLUMNS} FROM import_error WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?
    .ok_or_else(|| StoreError::NotFound(format!("import error {id}")))?;
    import_error_from_row(&row)
}
