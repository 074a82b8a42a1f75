//! The operators that reach another DAG: `operator: trigger_dagrun` (Airflow's
//! `TriggerDagRunOperator`, under the task's `trigger_dagrun:` key) and
//! `operator: external_task_marker` (Airflow's `ExternalTaskMarker`, under
//! `external_task_marker:`).

use updraft_model::external_task_marker::{DEFAULT_MARKER_LOGICAL_DATE, DEFAULT_RECURSION_DEPTH};
use updraft_model::{DagRunState, ExternalTaskMarker, Operator, TriggerDagRun};

use super::value::{get, Ctx};
use crate::diagnostic::Pos;
use crate::document::{Entry, Node, NodeKind};

/// The keys of `trigger_dagrun:`.
const TRIGGER_KEYS: &[&str] = &[
    "trigger_dag_id",
    "trigger_run_id",
    "conf",
    "logical_date",
    "reset_dag_run",
    "wait_for_completion",
    "poke_interval",
    "allowed_states",
    "failed_states",
    "skip_when_already_exists",
];

/// The keys of `external_task_marker:`.
const MARKER_KEYS: &[&str] = &[
    "external_dag_id",
    "external_task_id",
    "logical_date",
    "recursion_depth",
];

/// Reads `trigger_dagrun:` of a task with `operator: trigger_dagrun`.
pub(super) fn read_trigger_dagrun(
    entries: &[Entry],
    operator_pos: Option<Pos>,
    label: &str,
    ctx: &mut Ctx,
) -> Option<Operator> {
    let Some(section) = get(entries, "trigger_dagrun") else {
        ctx.error(
            operator_pos,
            format!("{label}operator `trigger_dagrun` needs `trigger_dagrun:` (with at least `trigger_dag_id`)"),
        );
        return None;
    };
    let fields = ctx.map(&section.value, label, "trigger_dagrun")?;
    ctx.check_keys(fields, TRIGGER_KEYS, &format!("{label}trigger_dagrun: "));
    let Some(dag_id) = get(fields, "trigger_dag_id") else {
        ctx.error(
            section.value.pos,
            format!("{label}`trigger_dagrun` needs `trigger_dag_id`"),
        );
        return None;
    };
    let mut trigger =
        TriggerDagRun::new(ctx.string(&dag_id.value, label, "trigger_dagrun.trigger_dag_id")?);
    if trigger.trigger_dag_id.trim().is_empty() {
        ctx.error(
            dag_id.value.pos,
            format!("{label}`trigger_dagrun.trigger_dag_id` must not be empty"),
        );
        return None;
    }
    if let Some(e) = get(fields, "trigger_run_id") {
        trigger.trigger_run_id =
            ctx.opt_string(&e.value, label, "trigger_dagrun.trigger_run_id")?;
    }
    if let Some(e) = get(fields, "logical_date") {
        trigger.logical_date = ctx.opt_string(&e.value, label, "trigger_dagrun.logical_date")?;
    }
    if let Some(e) = get(fields, "conf") {
        match &e.value.kind {
            NodeKind::Null => {}
            NodeKind::Map(_) => {
                let mut finite = true;
                let json = e.value.to_json(&mut |_, _| finite = false);
                if !finite {
                    ctx.error(
                        e.value.pos,
                        format!("{label}`trigger_dagrun.conf` holds a number JSON cannot hold"),
                    );
                    return None;
                }
                if let serde_json::Value::Object(map) = json {
                    trigger.conf = map;
                }
            }
            _ => {
                ctx.error(
                    e.value.pos,
                    format!(
                        "{label}`trigger_dagrun.conf` must be a mapping, found {}",
                        e.value.describe()
                    ),
                );
                return None;
            }
        }
    }
    for (key, slot) in [
        ("reset_dag_run", &mut trigger.reset_dag_run),
        ("wait_for_completion", &mut trigger.wait_for_completion),
        (
            "skip_when_already_exists",
            &mut trigger.skip_when_already_exists,
        ),
    ] {
        if let Some(e) = get(fields, key) {
            *slot = ctx.bool(&e.value, label, &format!("trigger_dagrun.{key}"))?;
        }
    }
    if let Some(e) = get(fields, "poke_interval") {
        trigger.poke_interval = ctx.duration(&e.value, label, "trigger_dagrun.poke_interval")?;
    }
    if let Some(e) = get(fields, "allowed_states") {
        trigger.allowed_states = run_states(ctx, &e.value, label, "trigger_dagrun.allowed_states")?;
        // As Airflow: an empty list means the default.
        if trigger.allowed_states.is_empty() {
            trigger.allowed_states = updraft_model::trigger_dag_run::default_allowed_states();
        }
    }
    if let Some(e) = get(fields, "failed_states") {
        trigger.failed_states = match e.value.kind {
            NodeKind::Null => updraft_model::trigger_dag_run::default_failed_states(),
            _ => run_states(ctx, &e.value, label, "trigger_dagrun.failed_states")?,
        };
    }
    Some(Operator::TriggerDagRun(Box::new(trigger)))
}

/// A list of DAG run states (`queued`, `running`, `success`, `failed`).
fn run_states(ctx: &mut Ctx, node: &Node, label: &str, key: &str) -> Option<Vec<DagRunState>> {
    let names = ctx.string_list(node, label, key)?;
    let mut states = Vec::with_capacity(names.len());
    for (name, pos) in names {
        match name.parse::<DagRunState>() {
            Ok(state) => states.push(state),
            Err(_) => {
                ctx.error(
                    pos,
                    format!("{label}`{key}`: unknown DAG run state `{name}`; allowed: queued, running, success, failed"),
                );
                return None;
            }
        }
    }
    Some(states)
}

/// Reads `external_task_marker:` of a task with `operator: external_task_marker`.
pub(super) fn read_external_task_marker(
    entries: &[Entry],
    operator_pos: Option<Pos>,
    label: &str,
    ctx: &mut Ctx,
) -> Option<Operator> {
    let Some(section) = get(entries, "external_task_marker") else {
        ctx.error(
            operator_pos,
            format!("{label}operator `external_task_marker` needs `external_task_marker:` (with `external_dag_id` and `external_task_id`)"),
        );
        return None;
    };
    let fields = ctx.map(&section.value, label, "external_task_marker")?;
    ctx.check_keys(
        fields,
        MARKER_KEYS,
        &format!("{label}external_task_marker: "),
    );
    let required = |ctx: &mut Ctx, key: &str| -> Option<String> {
        let Some(e) = get(fields, key) else {
            ctx.error(
                section.value.pos,
                format!("{label}`external_task_marker` needs `{key}`"),
            );
            return None;
        };
        let value = ctx.string(&e.value, label, &format!("external_task_marker.{key}"))?;
        if value.trim().is_empty() {
            ctx.error(
                e.value.pos,
                format!("{label}`external_task_marker.{key}` must not be empty"),
            );
            return None;
        }
        Some(value)
    };
    let external_dag_id = required(ctx, "external_dag_id");
    let external_task_id = required(ctx, "external_task_id");
    let (external_dag_id, external_task_id) = (external_dag_id?, external_task_id?);
    let logical_date = match get(fields, "logical_date") {
        Some(e) => ctx.string(&e.value, label, "external_task_marker.logical_date")?,
        None => DEFAULT_MARKER_LOGICAL_DATE.to_owned(),
    };
    let recursion_depth = match get(fields, "recursion_depth") {
        // Airflow: "recursion_depth should be a positive integer".
        Some(e) => ctx.u32_at_least(&e.value, label, "external_task_marker.recursion_depth", 1)?,
        None => DEFAULT_RECURSION_DEPTH,
    };
    Some(Operator::ExternalTaskMarker(ExternalTaskMarker {
        external_dag_id,
        external_task_id,
        logical_date,
        recursion_depth,
    }))
}
