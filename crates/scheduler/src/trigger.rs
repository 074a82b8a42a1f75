//! Building new DAG runs, scheduled or triggered.

use chrono::{DateTime, SecondsFormat, Utc};
use updraft_model::{Dag, RunType};
use updraft_store::{NewDagRun, NewTaskInstance};

#[derive(Debug, Clone)]
pub struct TriggerRequest {
    pub run_type: RunType,
    pub run_id: Option<String>,
    /// Defaults to the trigger time.
    pub logical_date: Option<DateTime<Utc>>,
    pub conf: serde_json::Map<String, serde_json::Value>,
}

impl TriggerRequest {
    pub fn manual() -> Self {
        TriggerRequest {
            run_type: RunType::Manual,
            run_id: None,
            logical_date: None,
            conf: serde_json::Map::new(),
        }
    }

    pub fn scheduled(logical_date: DateTime<Utc>) -> Self {
        TriggerRequest {
            run_type: RunType::Scheduled,
            run_id: None,
            logical_date: Some(logical_date),
            conf: serde_json::Map::new(),
        }
    }
}

/// The run to create for `dag` at version `version`, with one task instance per task.
/// Runs fire at their logical date, so the data interval is that instant (Airflow 3's
/// trigger timetables).
pub fn new_dag_run(
    dag: &Dag,
    version: i64,
    request: TriggerRequest,
    now: DateTime<Utc>,
    next_dagrun: Option<Option<DateTime<Utc>>>,
) -> NewDagRun {
    let logical_date = request.logical_date.unwrap_or(now);
    let run_id = request.run_id.unwrap_or_else(|| {
        format!(
            "{}__{}",
            request.run_type.as_str(),
            logical_date.to_rfc3339_opts(SecondsFormat::Micros, false)
        )
    });
    NewDagRun {
        dag_id: dag.dag_id.clone(),
        run_id,
        run_type: request.run_type,
        logical_date,
        data_interval_start: logical_date,
        data_interval_end: logical_date,
        conf: request.conf,
        dag_version: version,
        tasks: NewTaskInstance::for_dag(dag),
        now,
        next_dagrun,
        runner: None,
    }
}
