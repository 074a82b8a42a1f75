//! `TemplateContext`: the task instance being rendered, and its translation into Airflow's names.

mod connection;
pub(crate) mod date;
mod task_instance;
mod variable;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use minijinja::Value;
use serde_json::Value as Json;

use connection::ConnectionAccessor;
pub use connection::TemplateConnection;
pub(crate) use date::DateValue;
use task_instance::TaskInstanceValue;
use variable::VariableAccessor;

/// Everything a template may refer to, for one try of one task instance.
#[derive(Debug, Clone)]
pub struct TemplateContext {
    pub dag_id: String,
    pub run_id: String,
    pub task_id: String,
    pub try_number: u32,
    /// The mapped instance's index (`-1`: the task is not mapped).
    pub map_index: i64,
    /// Airflow's run type: `manual`, `scheduled`, `backfill`, `asset_triggered`.
    pub run_type: String,
    pub logical_date: DateTime<Utc>,
    pub data_interval_start: DateTime<Utc>,
    pub data_interval_end: DateTime<Utc>,
    /// The dag run's `conf`; its keys override (and extend) `dag_params` in `params`.
    pub conf: serde_json::Map<String, Json>,
    /// The DAG's `params` with their default values.
    pub dag_params: serde_json::Map<String, Json>,
    /// The task's definition (the serde form of `updraft_model::Task`), exposed as `task`.
    pub task: Json,
    /// All variables, pre-loaded by the caller when [`crate::needs_variables`] says so.
    pub variables: BTreeMap<String, String>,
    /// This run's XComs keyed by `(task_id, key)`, pre-loaded when [`crate::needs_xcoms`] says so.
    pub xcoms: HashMap<(String, String), Json>,
    /// Connections by id (the environment's before the database's), pre-loaded when
    /// [`crate::needs_connections`] says so.
    pub connections: BTreeMap<String, TemplateConnection>,
    /// An asset-triggered run's triggering events, by asset URI (Airflow's
    /// `triggering_asset_events`); an empty object for other runs.
    pub triggering_asset_events: Json,
}

impl TemplateContext {
    /// `params` as a template sees them: the DAG's params, overridden by the run's conf
    /// (Airflow's default `dag_run_conf_overrides_params = True`).
    pub fn params(&self) -> serde_json::Map<String, Json> {
        let mut params = self.dag_params.clone();
        for (key, value) in &self.conf {
            params.insert(key.clone(), value.clone());
        }
        params
    }

    /// The whole Jinja context. XComs and variables are copied in only when the template can use
    /// them, so rendering a template that does not is independent of their number.
    pub(crate) fn to_value(
        &self,
        with_xcoms: bool,
        with_variables: bool,
        with_connections: bool,
    ) -> Value {
        let logical_date = DateValue::utc(self.logical_date);
        let start = DateValue::utc(self.data_interval_start);
        let end = DateValue::utc(self.data_interval_end);
        let ds = logical_date.strftime_static("%Y-%m-%d");
        let ds_nodash = logical_date.strftime_static("%Y%m%d");
        let ts = logical_date.isoformat();
        let ts_nodash = logical_date.strftime_static("%Y%m%dT%H%M%S");
        let ts_nodash_with_tz = ts.replace(['-', ':'], "");
        let conf = Value::from_serialize(&self.conf);

        let dag_run = Value::from_iter([
            ("dag_id", Value::from(self.dag_id.as_str())),
            ("run_id", Value::from(self.run_id.as_str())),
            ("run_type", Value::from(self.run_type.as_str())),
            ("conf", conf),
            ("logical_date", Value::from_object(logical_date)),
            ("data_interval_start", Value::from_object(start)),
            ("data_interval_end", Value::from_object(end)),
        ]);
        let xcoms = if with_xcoms {
            self.xcoms.clone()
        } else {
            HashMap::new()
        };
        let ti = Value::from_object(TaskInstanceValue {
            dag_id: self.dag_id.clone(),
            run_id: self.run_id.clone(),
            task_id: self.task_id.clone(),
            try_number: self.try_number,
            map_index: self.map_index,
            logical_date,
            xcoms,
        });
        let variables = if with_variables {
            self.variables.clone()
        } else {
            BTreeMap::new()
        };
        let connections = if with_connections {
            self.connections.clone()
        } else {
            BTreeMap::new()
        };

        Value::from_iter([
            ("ds", Value::from(ds.as_str())),
            ("ds_nodash", Value::from(ds_nodash.as_str())),
            ("ts", Value::from(ts.as_str())),
            ("ts_nodash", Value::from(ts_nodash)),
            ("ts_nodash_with_tz", Value::from(ts_nodash_with_tz)),
            ("logical_date", Value::from_object(logical_date)),
            ("data_interval_start", Value::from_object(start)),
            ("data_interval_end", Value::from_object(end)),
            ("run_id", Value::from(self.run_id.as_str())),
            (
                "triggering_asset_events",
                match &self.triggering_asset_events {
                    Json::Object(_) => Value::from_serialize(&self.triggering_asset_events),
                    _ => Value::from_serialize(serde_json::Map::new()),
                },
            ),
            ("dag_run", dag_run),
            ("dag", Value::from_object(DagValue(self.dag_id.clone()))),
            ("params", Value::from_serialize(self.params())),
            ("task", Value::from_serialize(self.task_view())),
            ("ti", ti.clone()),
            ("task_instance", ti),
            (
                "task_instance_key_str",
                Value::from(format!("{}__{}__{}", self.dag_id, self.task_id, ds_nodash)),
            ),
            (
                "var",
                Value::from_object(VariableAccessor::new(Arc::new(variables))),
            ),
            (
                "conn",
                Value::from_object(ConnectionAccessor::new(Arc::new(connections))),
            ),
        ])
    }

    /// `task` as a template sees it: the definition with the operator's fields (such as
    /// `bash_command`) lifted to the top level, as they are attributes of an Airflow operator,
    /// and `task_id` always present.
    fn task_view(&self) -> Json {
        let mut task = match &self.task {
            Json::Object(map) => map.clone(),
            _ => serde_json::Map::new(),
        };
        if let Some(Json::Object(operator)) = task.get("operator").cloned() {
            for (key, value) in operator {
                if key != "kind" {
                    task.entry(key).or_insert(value);
                }
            }
        }
        task.entry("task_id")
            .or_insert_with(|| Json::String(self.task_id.clone()));
        Json::Object(task)
    }
}

/// `dag`: renders as Airflow's `<DAG: dag_id>` and has a `dag_id` attribute.
#[derive(Debug)]
struct DagValue(String);

impl minijinja::value::Object for DagValue {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "dag_id" => Some(Value::from(self.0.as_str())),
            _ => None,
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<DAG: {}>", self.0)
    }
}
