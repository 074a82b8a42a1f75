//! `operator: external_task_sensor` (Airflow's `ExternalTaskSensor`), defined under the
//! task's `external_task_sensor:` key; how it pokes is the task's `sensor:`.

use updraft_model::external_task_sensor::default_allowed_states;
use updraft_model::{ExternalTarget, ExternalTaskSensor, Operator};

use super::value::{get, Ctx};
use crate::diagnostic::Pos;
use crate::document::{Entry, Node, NodeKind};

/// The keys of `external_task_sensor:`.
const KEYS: &[&str] = &[
    "external_dag_id",
    "external_task_id",
    "external_task_ids",
    "external_task_group_id",
    "allowed_states",
    "failed_states",
    "skipped_states",
    "execution_delta",
    "check_existence",
];

/// Reads `external_task_sensor:` of a task with `operator: external_task_sensor`.
pub(super) fn read_external_task_sensor(
    entries: &[Entry],
    operator_pos: Option<Pos>,
    label: &str,
    ctx: &mut Ctx,
) -> Option<Operator> {
    let Some(section) = get(entries, "external_task_sensor") else {
        ctx.error(
            operator_pos,
            format!("{label}operator `external_task_sensor` needs `external_task_sensor:` (with `external_dag_id`)"),
        );
        return None;
    };
    let fields = ctx.map(&section.value, label, "external_task_sensor")?;
    ctx.check_keys(fields, KEYS, &format!("{label}external_task_sensor: "));
    let key = |k: &str| format!("external_task_sensor.{k}");
    let Some(dag) = get(fields, "external_dag_id") else {
        ctx.error(
            section.value.pos,
            format!("{label}`external_task_sensor` needs `external_dag_id`"),
        );
        return None;
    };
    let external_dag_id = ctx.string(&dag.value, label, &key("external_dag_id"))?;
    let one = match get(fields, "external_task_id") {
        Some(e) => ctx.opt_string(&e.value, label, &key("external_task_id"))?,
        None => None,
    };
    let many = match get(fields, "external_task_ids") {
        Some(e) => Some(strings(ctx, &e.value, label, &key("external_task_ids"))?),
        None => None,
    }
    .filter(|ids| !ids.is_empty());
    let group = match get(fields, "external_task_group_id") {
        Some(e) => ctx.opt_string(&e.value, label, &key("external_task_group_id"))?,
        None => None,
    };
    let target = match (one, many, group) {
        (Some(_), Some(_), _) => {
            ctx.error(
                section.value.pos,
                format!("{label}`external_task_sensor`: only one of `external_task_id` or `external_task_ids` may be given"),
            );
            return None;
        }
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
            ctx.error(
                section.value.pos,
                format!("{label}`external_task_sensor`: only one of `external_task_group_id` or `external_task_ids` may be given"),
            );
            return None;
        }
        (Some(id), None, None) => ExternalTarget::Tasks { task_ids: vec![id] },
        (None, Some(task_ids), None) => ExternalTarget::Tasks { task_ids },
        (None, None, Some(group_id)) => ExternalTarget::Group { group_id },
        (None, None, None) => ExternalTarget::Run,
    };
    let mut states = |name: &str| -> Option<Vec<String>> {
        match get(fields, name) {
            Some(e) => strings(ctx, &e.value, label, &key(name)),
            None => Some(Vec::new()),
        }
    };
    let allowed_states = states("allowed_states")?;
    let failed_states = states("failed_states")?;
    let skipped_states = states("skipped_states")?;
    let execution_delta_secs = match get(fields, "execution_delta") {
        Some(e) => signed_seconds(ctx, &e.value, label, &key("execution_delta"))?,
        None => None,
    };
    let check_existence = match get(fields, "check_existence") {
        Some(e) => ctx.bool(&e.value, label, &key("check_existence"))?,
        None => false,
    };
    let sensor = ExternalTaskSensor {
        external_dag_id,
        target,
        // As Airflow: none (or an empty list) means `success`.
        allowed_states: if allowed_states.is_empty() {
            default_allowed_states()
        } else {
            allowed_states
        },
        failed_states,
        skipped_states,
        execution_delta_secs,
        check_existence,
    };
    if let Err(e) = sensor.validate() {
        ctx.error(
            section.value.pos,
            format!("{label}`external_task_sensor`: {e}"),
        );
        return None;
    }
    Some(Operator::ExternalTaskSensor(Box::new(sensor)))
}

fn strings(ctx: &mut Ctx, node: &Node, label: &str, key: &str) -> Option<Vec<String>> {
    Some(
        ctx.string_list(node, label, key)?
            .into_iter()
            .map(|(s, _)| s.to_owned())
            .collect(),
    )
}

/// A duration that may be negative (a later run): `-1h`, `-3600`; `null` is none.
fn signed_seconds(ctx: &mut Ctx, node: &Node, label: &str, key: &str) -> Option<Option<i64>> {
    let negated = |d: std::time::Duration| -(d.as_secs() as i64);
    match &node.kind {
        NodeKind::Null => Some(None),
        NodeKind::Int(i) => Some(Some(*i)),
        NodeKind::Str(s) if s.trim_start().starts_with('-') => {
            let rest = s.trim_start().trim_start_matches('-');
            match updraft_model::duration::parse_duration(rest) {
                Ok(d) => Some(Some(negated(d))),
                Err(e) => {
                    ctx.error(node.pos, format!("{label}`{key}`: {e}"));
                    None
                }
            }
        }
        _ => ctx
            .duration(node, label, key)
            .map(|d| Some(d.as_secs() as i64)),
    }
}
