//! `ti` / `task_instance`: the task instance being rendered, with `ti.xcom_pull(...)`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use minijinja::value::{from_args, Enumerator, Kwargs, Object, ObjectRepr};
use minijinja::{Error, ErrorKind, State, Value};
use serde_json::Value as Json;

use super::DateValue;

/// The key Airflow stores a task's return value under, and `xcom_pull`'s default key.
const RETURN_VALUE: &str = "return_value";

#[derive(Debug)]
pub(super) struct TaskInstanceValue {
    pub(super) dag_id: String,
    pub(super) run_id: String,
    pub(super) task_id: String,
    pub(super) try_number: u32,
    pub(super) map_index: i64,
    pub(super) logical_date: DateValue,
    pub(super) xcoms: HashMap<(String, String), Json>,
}

impl TaskInstanceValue {
    /// Airflow's `ti.xcom_pull(task_ids=None, dag_id=None, key='return_value', ..., default=None,
    /// run_id=None)`, restricted to this run: one task id gives one value, a list of task ids
    /// gives a list, a missing XCom gives `default` (none unless given).
    fn xcom_pull(&self, args: &[Value]) -> Result<Value, Error> {
        let (positional, kwargs): (Option<Value>, Kwargs) = from_args(args)?;
        let keyword: Option<Value> = kwargs.get("task_ids")?;
        let task_ids = match (positional, keyword) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "xcom_pull got task_ids both by position and by name",
                ))
            }
            (Some(ids), None) | (None, Some(ids)) => ids,
            (None, None) => Value::from(()),
        };
        let key: Option<String> = kwargs.get("key")?;
        let key = key.unwrap_or_else(|| RETURN_VALUE.to_owned());
        let default: Option<Value> = kwargs.get("default")?;
        let default = default.unwrap_or(Value::from(()));
        let dag_id: Option<String> = kwargs.get("dag_id")?;
        if dag_id.is_some_and(|dag_id| dag_id != self.dag_id) {
            return Err(invalid(
                "xcom_pull can only pull XComs of the current DAG run",
            ));
        }
        let run_id: Option<String> = kwargs.get("run_id")?;
        if run_id.is_some_and(|run_id| run_id != self.run_id) {
            return Err(invalid(
                "xcom_pull can only pull XComs of the current DAG run",
            ));
        }
        let include_prior_dates: Option<bool> = kwargs.get("include_prior_dates")?;
        if include_prior_dates == Some(true) {
            return Err(invalid(
                "xcom_pull(include_prior_dates=True) is not supported",
            ));
        }
        kwargs.assert_all_used()?;

        let pull = |task_id: &str| {
            self.xcoms
                .get(&(task_id.to_owned(), key.clone()))
                .map(Value::from_serialize)
                .unwrap_or_else(|| default.clone())
        };
        if task_ids.is_none() || task_ids.is_undefined() {
            return Ok(pull(&self.task_id));
        }
        if let Some(task_id) = task_ids.as_str() {
            return Ok(pull(task_id));
        }
        let Ok(items) = task_ids.try_iter() else {
            return Err(invalid(format!(
                "xcom_pull task_ids must be a task id or a list of task ids, not {}",
                task_ids.kind()
            )));
        };
        items
            .map(|item| match item.as_str() {
                Some(task_id) => Ok(pull(task_id)),
                None => Err(invalid(format!(
                    "xcom_pull task_ids must contain task ids, not {}",
                    item.kind()
                ))),
            })
            .collect()
    }
}

impl Object for TaskInstanceValue {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let value = match key.as_str()? {
            "dag_id" => Value::from(self.dag_id.as_str()),
            "run_id" => Value::from(self.run_id.as_str()),
            "task_id" => Value::from(self.task_id.as_str()),
            "try_number" => Value::from(self.try_number),
            "map_index" => Value::from(self.map_index),
            "logical_date" => Value::from_object(self.logical_date),
            "state" => Value::from("running"),
            _ => return None,
        };
        Some(value)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&[
            "dag_id",
            "run_id",
            "task_id",
            "try_number",
            "map_index",
            "logical_date",
            "state",
        ])
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "xcom_pull" => self.xcom_pull(args),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<TaskInstance: {}.{} {} [running]>",
            self.dag_id, self.task_id, self.run_id
        )
    }
}

fn invalid(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}
