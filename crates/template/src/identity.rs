//! `identity_env`: the environment variables that tell a task process who it is.

use crate::context::DateValue;
use crate::TemplateContext;

/// The environment a task process gets: updraft's own `UPDRAFT_*` names and the `AIRFLOW_CTX_*`
/// names Airflow sets (`airflow.utils.operator_helpers.context_to_airflow_vars`), so scripts
/// written for Airflow keep working. The logical date is ISO 8601 (`2026-01-01T00:00:00+00:00`).
pub fn identity_env(ctx: &TemplateContext) -> Vec<(String, String)> {
    let logical_date = DateValue::utc(ctx.logical_date).isoformat();
    let try_number = ctx.try_number.to_string();
    [
        ("UPDRAFT_DAG_ID", ctx.dag_id.as_str()),
        ("UPDRAFT_RUN_ID", ctx.run_id.as_str()),
        ("UPDRAFT_TASK_ID", ctx.task_id.as_str()),
        ("UPDRAFT_TRY_NUMBER", try_number.as_str()),
        ("UPDRAFT_LOGICAL_DATE", logical_date.as_str()),
        ("AIRFLOW_CTX_DAG_ID", ctx.dag_id.as_str()),
        ("AIRFLOW_CTX_TASK_ID", ctx.task_id.as_str()),
        ("AIRFLOW_CTX_LOGICAL_DATE", logical_date.as_str()),
        ("AIRFLOW_CTX_TRY_NUMBER", try_number.as_str()),
        ("AIRFLOW_CTX_DAG_RUN_ID", ctx.run_id.as_str()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect()
}
