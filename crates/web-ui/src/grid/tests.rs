//! Columns oldest to newest, rows in DAG order, cells placed by run and task.

use chrono::{Duration, TimeZone};
use updraft_model::{DagRunState, RunType, TaskState};

use super::*;

fn at(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000, 0).single().expect("valid") + Duration::seconds(s)
}

fn run(id: i64, minutes: i64, start: Option<i64>, end: Option<i64>) -> DagRun {
    DagRun {
        id,
        dag_id: "d".into(),
        run_id: format!("r{id}"),
        run_type: RunType::Manual,
        state: DagRunState::Success,
        logical_date: at(minutes * 60),
        data_interval_start: at(0),
        data_interval_end: at(0),
        conf: serde_json::Map::new(),
        dag_version: 1,
        queued_at: at(0),
        start_date: start.map(at),
        end_date: end.map(at),
        runner: None,
        note: None,
    }
}

fn ti(
    run: i64,
    task: &str,
    state: TaskState,
    start: Option<i64>,
    end: Option<i64>,
) -> TaskInstanceSummary {
    TaskInstanceSummary {
        dag_run_id: run,
        task_id: task.into(),
        map_index: -1,
        state,
        start_date: start.map(at),
        end_date: end.map(at),
    }
}

#[test]
fn runs_are_columns_oldest_left_and_cells_follow_their_run() {
    let tasks = vec!["a".to_string(), "b".to_string()];
    // Newest first, as the query answers.
    let runs = vec![run(2, 10, Some(0), Some(40)), run(1, 5, Some(0), Some(20))];
    let tis = vec![
        ti(2, "a", TaskState::Failed, Some(0), Some(3)),
        ti(1, "a", TaskState::Success, Some(0), Some(1)),
        ti(1, "b", TaskState::Success, Some(1), Some(2)),
        ti(1, "old", TaskState::Removed, None, None),
        ti(9, "a", TaskState::Success, None, None),
    ];
    let g = build(&tasks, &HashMap::new(), runs, tis, at(100));
    let ids: Vec<&str> = g.runs.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids, vec!["r1", "r2"]);
    assert_eq!((g.runs[0].bar, g.runs[1].bar), (50, 100));
    let rows: Vec<&str> = g.rows.iter().map(|r| r.task_id.as_str()).collect();
    assert_eq!(rows, vec!["a", "b", "old"]);
    let state = |row: usize, col: usize| g.rows[row].cells[col].as_ref().map(|c| c.state);
    assert_eq!(state(0, 0), Some("success"));
    assert_eq!(state(0, 1), Some("failed"));
    assert_eq!(state(1, 1), None, "b was not in r2");
    assert_eq!(state(2, 0), Some("removed"));
    assert_eq!(
        g.rows[0].cells[1].as_ref().and_then(|c| c.seconds),
        Some(3.0)
    );
}

#[test]
fn a_groups_tasks_sit_under_its_summary_row_which_shows_the_most_telling_state() {
    let tasks: Vec<String> = ["start", "etl.extract", "end", "etl.load"]
        .iter()
        .map(|t| t.to_string())
        .collect();
    let group_of: HashMap<String, String> = [("etl.extract", "etl"), ("etl.load", "etl")]
        .iter()
        .map(|(t, g)| (t.to_string(), g.to_string()))
        .collect();
    let runs = vec![run(1, 5, Some(0), Some(20)), run(2, 10, Some(0), None)];
    let tis = vec![
        ti(1, "start", TaskState::Success, Some(0), Some(1)),
        ti(1, "etl.extract", TaskState::Success, Some(1), Some(2)),
        ti(1, "etl.load", TaskState::Failed, Some(2), Some(3)),
        ti(2, "etl.extract", TaskState::Running, Some(1), None),
        ti(2, "etl.load", TaskState::None, None, None),
    ];
    let g = build(&tasks, &group_of, runs, tis, at(100));
    let rows: Vec<(&str, bool, Option<&str>)> = g
        .rows
        .iter()
        .map(|r| (r.task_id.as_str(), r.is_group, r.group.as_deref()))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("start", false, None),
            ("etl", true, Some("etl")),
            ("etl.extract", false, Some("etl")),
            ("etl.load", false, Some("etl")),
            ("end", false, None),
        ]
    );
    let summary: Vec<Option<&str>> = g.rows[1]
        .cells
        .iter()
        .map(|c| c.as_ref().map(|c| c.state))
        .collect();
    assert_eq!(summary, vec![Some("failed"), Some("running")]);
}

#[test]
fn a_rows_durations_are_milliseconds_in_column_order() {
    let row = GridRow {
        task_id: "t".into(),
        cells: vec![
            Some(GridCell {
                state: "success",
                seconds: Some(1.2345),
            }),
            None,
            Some(GridCell {
                state: "queued",
                seconds: None,
            }),
            Some(GridCell {
                state: "running",
                seconds: Some(60.0),
            }),
        ],
        group: None,
        is_group: false,
    };
    assert_eq!(row.millis(), "1235,,,60000");
}

#[test]
fn a_running_duration_counts_to_now() {
    assert_eq!(seconds(Some(at(0)), None, at(7)), Some(7.0));
    assert_eq!(seconds(None, Some(at(7)), at(9)), None);
    assert_eq!(seconds(Some(at(5)), Some(at(1)), at(9)), Some(0.0));
}
