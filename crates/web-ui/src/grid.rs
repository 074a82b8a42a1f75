//! The grid of a DAG: its recent runs as columns (oldest left, newest right, as Airflow) and
//! its tasks as rows, each cell a task instance's state, duration and link. Built from one
//! bounded query of runs and one of their task instances.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use updraft_store::{DagRun, TaskInstanceSummary};

/// The number of runs shown by default, and the most a page may ask for.
pub const DEFAULT_RUNS: u32 = 25;
pub const MAX_RUNS: u32 = 365;

/// A column.
#[derive(Debug, Clone, PartialEq)]
pub struct GridRun {
    pub run_id: String,
    pub state: &'static str,
    pub run_type: &'static str,
    pub logical_date: DateTime<Utc>,
    /// Seconds from start to end (to now while running).
    pub seconds: Option<f64>,
    /// The bar's height in the header, 0–100 (% of the longest run shown).
    pub bar: u32,
}

/// A cell. It carries no link of its own: the page's script opens the task instance (its
/// latest try) from the column's and the row's headers, which keeps a grid of 20,000 cells
/// small enough to render and load fast.
#[derive(Debug, Clone, PartialEq)]
pub struct GridCell {
    pub state: &'static str,
    pub seconds: Option<f64>,
}

/// A row: one task, with a cell per column (`None`: the task was not in that run's version),
/// or the summary row of a task group, whose cells sum up its tasks' states.
#[derive(Debug, Clone, PartialEq)]
pub struct GridRow {
    /// The task id, or the group id on a group's row.
    pub task_id: String,
    pub cells: Vec<Option<GridCell>>,
    /// The task's group (the group itself on its summary row).
    pub group: Option<String>,
    pub is_group: bool,
}

impl GridRow {
    /// The cells' durations in whole milliseconds, comma-separated in column order (empty for
    /// a cell without one): what the page's script reads for its tooltips, once per row
    /// instead of an attribute on each of thousands of cells.
    pub fn millis(&self) -> String {
        let mut out = String::with_capacity(self.cells.len() * 5);
        for (i, cell) in self.cells.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if let Some(seconds) = cell.as_ref().and_then(|c| c.seconds) {
                let ms = (seconds * 1000.0).round().max(0.0) as u64;
                out.push_str(&ms.to_string());
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Grid {
    pub runs: Vec<GridRun>,
    pub rows: Vec<GridRow>,
}

/// The states a group's cell shows, most telling first: the first of these that any of its
/// task instances is in (Airflow sums a group up the same way).
const GROUP_STATE_ORDER: [&str; 12] = [
    "failed",
    "upstream_failed",
    "up_for_retry",
    "up_for_reschedule",
    "running",
    "restarting",
    "deferred",
    "queued",
    "scheduled",
    "none",
    "success",
    "skipped",
];

/// The summary of a group's cells in one column.
fn group_cell<'a>(cells: impl Iterator<Item = &'a GridCell>) -> Option<GridCell> {
    let states: Vec<&str> = cells.map(|c| c.state).collect();
    let state = GROUP_STATE_ORDER
        .iter()
        .find(|s| states.contains(s))
        .copied()
        .or_else(|| states.first().copied())?;
    Some(GridCell {
        state,
        seconds: None,
    })
}

/// Puts each group's tasks under a summary row, where its first task was.
fn with_groups(rows: Vec<GridRow>, group_of: &HashMap<String, String>) -> Vec<GridRow> {
    let mut members: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        if let Some(group) = group_of.get(&row.task_id) {
            members.entry(group.clone()).or_default().push(i);
        }
    }
    if members.is_empty() {
        return rows;
    }
    let columns = rows.first().map_or(0, |r| r.cells.len());
    let mut rows: Vec<Option<GridRow>> = rows.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(rows.len() + members.len());
    for i in 0..rows.len() {
        let Some(group) = rows[i]
            .as_ref()
            .map(|row| group_of.get(&row.task_id).cloned())
        else {
            continue; // already placed under its group
        };
        let Some(group) = group else {
            out.extend(rows[i].take());
            continue;
        };
        let tasks: Vec<GridRow> = members[&group]
            .iter()
            .filter_map(|&m| rows[m].take())
            .map(|row| GridRow {
                group: Some(group.clone()),
                ..row
            })
            .collect();
        let cells = (0..columns)
            .map(|col| group_cell(tasks.iter().filter_map(|t| t.cells[col].as_ref())))
            .collect();
        out.push(GridRow {
            task_id: group.clone(),
            cells,
            group: Some(group),
            is_group: true,
        });
        out.extend(tasks);
    }
    out
}

/// Builds the grid. `runs` in any order (shown oldest first); `task_ids` the rows in the
/// order of the DAG's current version, followed by tasks only older runs had; `group_of`
/// the task group of each task in one (a group's tasks are shown together, under its
/// summary row).
pub fn build(
    task_ids: &[String],
    group_of: &HashMap<String, String>,
    mut runs: Vec<DagRun>,
    tis: Vec<TaskInstanceSummary>,
    now: DateTime<Utc>,
) -> Grid {
    runs.sort_by(|a, b| a.logical_date.cmp(&b.logical_date).then(a.id.cmp(&b.id)));
    let column: HashMap<i64, usize> = runs.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
    let mut order: Vec<String> = task_ids.to_vec();
    let mut row_of: HashMap<String, usize> = order
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i))
        .collect();
    let mut cells: Vec<Vec<Option<GridCell>>> = vec![vec![None; runs.len()]; order.len()];
    for ti in tis {
        let Some(&col) = column.get(&ti.dag_run_id) else {
            continue;
        };
        let row = match row_of.get(&ti.task_id) {
            Some(&r) => r,
            None => {
                order.push(ti.task_id.clone());
                row_of.insert(ti.task_id.clone(), order.len() - 1);
                cells.push(vec![None; runs.len()]);
                order.len() - 1
            }
        };
        cells[row][col] = Some(GridCell {
            state: ti.state.as_str(),
            seconds: seconds(ti.start_date, ti.end_date, now),
        });
    }
    let durations: Vec<Option<f64>> = runs
        .iter()
        .map(|r| seconds(r.start_date, r.end_date, now))
        .collect();
    let longest = durations.iter().flatten().fold(0.0f64, |a, b| a.max(*b));
    let runs = runs
        .iter()
        .zip(durations)
        .map(|(r, s)| GridRun {
            run_id: r.run_id.clone(),
            state: r.state.as_str(),
            run_type: r.run_type.as_str(),
            logical_date: r.logical_date,
            seconds: s,
            bar: match s {
                Some(s) if longest > 0.0 => {
                    ((s / longest) * 100.0).round().clamp(4.0, 100.0) as u32
                }
                _ => 4,
            },
        })
        .collect();
    Grid {
        runs,
        rows: with_groups(
            order
                .into_iter()
                .zip(cells)
                .map(|(task_id, cells)| GridRow {
                    task_id,
                    cells,
                    group: None,
                    is_group: false,
                })
                .collect(),
            group_of,
        ),
    }
}

/// Seconds from `start` to `end`, or to `now` while it has not ended.
pub fn seconds(
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<f64> {
    let start = start?;
    let end = end.unwrap_or(now).max(start);
    Some((end - start).num_milliseconds() as f64 / 1000.0)
}

#[cfg(test)]
mod tests;
