//! A mapped task instance's own arguments (dynamic task mapping): its values of the task's
//! `expand`/`expand_kwargs`, from the definition or the upstream results they map over.

use serde_json::{Map, Value};
use updraft_model::{Operator, Task};
use updraft_store::{ClaimedTask, XCom};

use super::super::LocalWorker;

impl LocalWorker {
    /// The mapped arguments of `claimed` (`None` for a task that is not mapped).
    pub(super) async fn mapped_arguments(
        &self,
        claimed: &ClaimedTask,
        task: &Task,
    ) -> Result<Option<Map<String, Value>>, String> {
        let Some(mapping) = &task.mapping else {
            return Ok(None);
        };
        let Ok(index) = usize::try_from(claimed.ti.map_index) else {
            return Err(format!(
                "task '{}' is mapped, but this task instance was never expanded",
                task.task_id
            ));
        };
        let grouped_python =
            task.map_group.is_some() && matches!(task.operator, Operator::Python { .. });
        let stored = if mapping.reads_upstream() || grouped_python {
            self.execution
                .xcoms_for_run(claimed.dag_run.id)
                .await
                .map_err(|e| e.to_string())?
        } else {
            Vec::new()
        };
        let same_index =
            grouped_python.then(|| same_index_xcoms(task, claimed.ti.map_index, &stored));
        let xcoms = XCom::as_seen_downstream(stored);
        let resolve = |task_id: &str| {
            xcoms
                .iter()
                .find(|x| x.task_id == task_id && x.key == "return_value")
                .map(|x| &x.value)
        };
        let mut arguments = mapping
            .arguments(&task.task_id, index, &resolve)
            .map_err(|e| e.to_string())?;
        if let Some(same_index) = same_index {
            arguments.insert(SAME_INDEX_XCOMS.into(), Value::Object(same_index));
        }
        Ok(Some(arguments))
    }
}

impl LocalWorker {
    /// A mapped bash task with the instance's own `bash_command`/`env` in place (`None` for a
    /// bash task that is not mapped, or another operator).
    pub(crate) async fn mapped_bash_task(
        &self,
        claimed: &ClaimedTask,
        task: &Task,
    ) -> Result<Option<Task>, String> {
        if !matches!(task.operator, Operator::Bash { .. }) {
            return Ok(None);
        }
        let Some(mut arguments) = self.mapped_arguments(claimed, task).await? else {
            return Ok(None);
        };
        if task.map_group.is_some() {
            // A bash task of a mapped group takes what it can of the group's arguments;
            // a command of its own wins over the group's.
            let own_command = matches!(&task.operator, Operator::Bash { bash_command } if !bash_command.is_empty());
            arguments.retain(|name, _| {
                BASH_ARGUMENTS.contains(&name.as_str()) && !(own_command && name == "bash_command")
            });
        }
        bash_task_with(task, &arguments).map(Some)
    }
}

/// The `map_kwargs` entry of a task of a mapped group that holds what its direct upstream
/// tasks pushed at the same map index (`{task_id: {key: value}}`): an upstream of the same
/// group gives a downstream of it the value of the same index, not the list of all (the SDK
/// knows which upstream tasks are of its group). See docs/python-protocol.md.
pub(crate) const SAME_INDEX_XCOMS: &str = "__same_index_xcoms__";

fn same_index_xcoms(task: &Task, map_index: i64, stored: &[XCom]) -> Map<String, Value> {
    let mut out = Map::new();
    for x in stored
        .iter()
        .filter(|x| x.map_index == map_index && task.dependencies.contains(&x.task_id))
    {
        if let Value::Object(keys) = out
            .entry(x.task_id.clone())
            .or_insert_with(|| Value::Object(Map::new()))
        {
            keys.insert(x.key.clone(), x.value.clone());
        }
    }
    out
}

/// What a bash task's instance may take from its mapping.
const BASH_ARGUMENTS: [&str; 2] = ["bash_command", "env"];

/// A bash task with an instance's mapped `bash_command` and `env` in place of the task's own
/// (a mapped argument replaces its partial value, as in Airflow).
pub(super) fn bash_task_with(task: &Task, arguments: &Map<String, Value>) -> Result<Task, String> {
    let mut task = task.clone();
    for (name, value) in arguments {
        match (name.as_str(), value) {
            ("bash_command", Value::String(command)) => {
                task.operator = Operator::Bash {
                    bash_command: command.clone(),
                }
            }
            ("env", Value::Object(vars)) => {
                task.env = vars
                    .iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => Ok((k.clone(), s.clone())),
                        Value::Object(_) | Value::Array(_) => {
                            Err(format!("mapped `env.{k}` must be a scalar"))
                        }
                        other => Ok((k.clone(), other.to_string())),
                    })
                    .collect::<Result<_, _>>()?;
            }
            (name, value) => {
                return Err(format!(
                    "a bash task cannot take mapped `{name}` = {value} (it maps over \
                     `bash_command`, a string, and `env`, a mapping)"
                ))
            }
        }
    }
    if matches!(&task.operator, Operator::Bash { bash_command } if bash_command.is_empty()) {
        return Err("this mapped instance got no `bash_command`".into());
    }
    Ok(task)
}

/// Makes a task's result fit for the mapped tasks that map over it, or says why it is not
/// (Airflow checks it when it is pushed). A bash task's result is its last line of output:
/// when it is a JSON list or mapping, what is mapped over is that, not the text.
pub(crate) fn result_for_mapping(
    dag: &updraft_model::Dag,
    task: &Task,
    result: &mut Option<Value>,
) -> Result<(), String> {
    let mut consumers = dag.mapped_consumers(&task.task_id).peekable();
    if consumers.peek().is_none() {
        return Ok(());
    }
    if let (Operator::Bash { .. }, Some(Value::String(line))) = (&task.operator, &*result) {
        if let Ok(parsed @ (Value::Array(_) | Value::Object(_))) = serde_json::from_str(line) {
            *result = Some(parsed);
        }
    }
    for consumer in consumers {
        updraft_model::Mapping::check_pushed(
            &task.task_id,
            &consumer.task_id,
            result.as_ref(),
            updraft_model::DEFAULT_MAX_MAP_LENGTH,
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mapped_bash_arguments_replace_the_partial_ones() {
        let mut partial = Task::new(
            "t",
            Operator::Bash {
                bash_command: "echo $X".into(),
            },
        );
        partial.env.insert("Y".into(), "y".into());
        let args = |v: Value| v.as_object().unwrap().clone();
        let task = bash_task_with(&partial, &args(json!({"env": {"X": 1}}))).unwrap();
        assert_eq!(task.env.get("X").map(String::as_str), Some("1"));
        assert!(!task.env.contains_key("Y"));
        let task = bash_task_with(&partial, &args(json!({"bash_command": "true"}))).unwrap();
        assert_eq!(
            task.operator,
            Operator::Bash {
                bash_command: "true".into()
            }
        );
        assert_eq!(
            bash_task_with(&partial, &args(json!({"bash_command": 3}))).unwrap_err(),
            "a bash task cannot take mapped `bash_command` = 3 (it maps over `bash_command`, a string, and `env`, a mapping)"
        );
        let commandless = Task::new(
            "t",
            Operator::Bash {
                bash_command: String::new(),
            },
        );
        assert!(bash_task_with(&commandless, &args(json!({"env": {}}))).is_err());
    }
}
