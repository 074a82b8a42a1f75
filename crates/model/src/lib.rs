//! The pure domain of updraft: DAG definitions, schedules, states and their legal transitions,
//! trigger rules and retry policy. No IO, no async, no clock: every instant is passed in.

pub mod asset;
pub mod dag;
pub mod docker;
pub mod duration;
pub mod external_task_marker;
pub mod external_task_sensor;
pub mod http;
pub mod mapping;
pub mod notify;
pub mod param;
pub mod retry;
pub mod sensor;
pub mod setup_teardown;
pub mod state;
pub mod timetable;
pub mod trigger_dag_run;
pub mod trigger_rule;

pub use asset::{Asset, AssetCondition, AssetError, AssetKey};
pub use dag::{
    Dag, Operator, PastDependency, PythonKind, Task, TaskRole, DEFAULT_MAX_ACTIVE_RUNS,
    DEFAULT_MAX_ACTIVE_TASKS,
};
pub use docker::{AutoRemove, DockerCommand, DockerMount, DockerRun};
pub use external_task_marker::ExternalTaskMarker;
pub use external_task_sensor::{ExternalTarget, ExternalTaskSensor, ExternalVerdict};
pub use http::{HttpCall, HttpData};
pub use mapping::{MapSource, MappedArgument, Mapping, MappingError, DEFAULT_MAX_MAP_LENGTH};
pub use notify::{
    DagCallbacks, DeadlineAlert, DeadlineReference, NotificationEvent, Notifier, TaskCallbacks,
};
pub use param::{Param, ParamError, ParamType};
pub use sensor::{AfterPoke, FileWait, Sensing, SensorMode, TimeWait};
pub use state::{DagRunState, RunType, TaskState};
pub use timetable::{next_fire_times, next_run, NextRun, Schedule, ScheduleError};
pub use trigger_dag_run::TriggerDagRun;
pub use trigger_rule::{Decision, TriggerRule, UpstreamSummary, TRIGGER_RULE_NAMES};
