//! Sensors in DAG files: `sensor:` (how a sensor pokes: Airflow's `BaseSensorOperator`
//! arguments), and the sensor operators whose definition lives under a key named as they are
//! (`file_sensor:`, `time_delta_sensor:`, `time_sensor:`, `date_time_sensor:`).

use chrono::{DateTime, NaiveTime, Utc};
use updraft_model::sensor::DEFAULT_FS_CONN_ID;
use updraft_model::{FileWait, Operator, Sensing, SensorMode};

use super::value::{get, Ctx};
use crate::diagnostic::Pos;
use crate::document::Entry;

/// The keys of `sensor:`.
const SENSOR_KEYS: &[&str] = &[
    "poke_interval",
    "timeout",
    "mode",
    "soft_fail",
    "exponential_backoff",
    "max_wait",
];

/// The sensor operators, each defined under its own key.
pub(super) const SENSOR_OPERATORS: &[&str] = &[
    "file_sensor",
    "time_delta_sensor",
    "time_sensor",
    "date_time_sensor",
];

/// Reads the definition of a sensor operator (`name` is one of [`SENSOR_OPERATORS`]).
pub(super) fn read_sensor_operator(
    name: &str,
    entries: &[Entry],
    operator_pos: Option<Pos>,
    label: &str,
    ctx: &mut Ctx,
) -> Option<Operator> {
    let (required, keys): (&str, &[&str]) = match name {
        "file_sensor" => ("filepath", &["filepath", "fs_conn_id", "recursive"]),
        "time_delta_sensor" => ("delta", &["delta"]),
        _ => ("target_time", &["target_time"]),
    };
    let Some(definition) = get(entries, name) else {
        ctx.error(
            operator_pos,
            format!("{label}operator `{name}` needs `{name}:` (with `{required}`)"),
        );
        return None;
    };
    let fields = ctx.map(&definition.value, label, name)?;
    ctx.check_keys(fields, keys, &format!("{label}{name}: "));
    let Some(value) = get(fields, required) else {
        ctx.error(
            definition.value.pos,
            format!("{label}`{name}` needs `{required}`"),
        );
        return None;
    };
    let key = format!("{name}.{required}");
    match name {
        "file_sensor" => {
            let filepath = ctx.text(&value.value, label, &key)?;
            let fs_conn_id = match get(fields, "fs_conn_id") {
                Some(e) => ctx.opt_string(&e.value, label, "file_sensor.fs_conn_id")?,
                None => None,
            }
            .unwrap_or_else(|| DEFAULT_FS_CONN_ID.into());
            let recursive = match get(fields, "recursive") {
                Some(e) => ctx.bool(&e.value, label, "file_sensor.recursive")?,
                None => false,
            };
            Some(Operator::FileSensor(FileWait {
                filepath,
                fs_conn_id,
                recursive,
            }))
        }
        "time_delta_sensor" => Some(Operator::TimeDeltaSensor {
            delta: ctx.duration(&value.value, label, &key)?,
        }),
        "time_sensor" => {
            let text = ctx.string(&value.value, label, &key)?;
            match ["%H:%M:%S%.f", "%H:%M"]
                .iter()
                .find_map(|format| NaiveTime::parse_from_str(&text, format).ok())
            {
                Some(target_time) => Some(Operator::TimeSensor { target_time }),
                None => {
                    ctx.error(
                        value.value.pos,
                        format!("{label}`{key}` is a time of the day like 14:30 or 14:30:00, not {text:?}"),
                    );
                    None
                }
            }
        }
        _ => {
            let text = ctx.string(&value.value, label, &key)?;
            match DateTime::parse_from_rfc3339(&text) {
                Ok(at) => Some(Operator::DateTimeSensor {
                    target_time: at.with_timezone(&Utc),
                }),
                Err(_) => {
                    ctx.error(
                        value.value.pos,
                        format!(
                            "{label}`{key}` is an instant with its offset, like \
                             2026-01-31T06:00:00Z (a template is not supported), not {text:?}"
                        ),
                    );
                    None
                }
            }
        }
    }
}

/// Reads `sensor:`, allowed on the operators that poke (`default` is what a sensor
/// operator has without it); `Some(None)` when the task is no sensor.
pub(super) fn read_sensing(
    entries: &[Entry],
    operator: &Operator,
    label: &str,
    ctx: &mut Ctx,
) -> Option<Option<Sensing>> {
    let pokes = match operator {
        Operator::FileSensor(_) | Operator::Http(_) | Operator::ExternalTaskSensor(_) => true,
        Operator::Python { python_kind, .. } => *python_kind == updraft_model::PythonKind::Sensor,
        _ => false,
    };
    let Some(entry) = get(entries, "sensor") else {
        return Some(match operator {
            Operator::FileSensor(_) | Operator::ExternalTaskSensor(_) => Some(Sensing::default()),
            Operator::Python {
                python_kind: updraft_model::PythonKind::Sensor,
                ..
            } => Some(Sensing::default()),
            _ => None,
        });
    };
    if !pokes {
        ctx.error(
            entry.key_pos,
            format!(
                "{label}`sensor` goes only with a sensor that pokes: `operator: \
                 file_sensor`, `operator: external_task_sensor`, `operator: http` (an HTTP \
                 sensor) or `python_kind: sensor`"
            ),
        );
        return None;
    }
    let fields = ctx.map(&entry.value, label, "sensor")?;
    ctx.check_keys(fields, SENSOR_KEYS, &format!("{label}sensor: "));
    let mut sensing = Sensing::default();
    if let Some(e) = get(fields, "poke_interval") {
        sensing.poke_interval = ctx.duration(&e.value, label, "sensor.poke_interval")?;
    }
    if let Some(e) = get(fields, "timeout") {
        sensing.timeout = ctx.duration(&e.value, label, "sensor.timeout")?;
    }
    if let Some(e) = get(fields, "mode") {
        let mode = ctx.string(&e.value, label, "sensor.mode")?;
        sensing.mode = match mode.as_str() {
            "poke" => SensorMode::Poke,
            "reschedule" => SensorMode::Reschedule,
            _ => {
                ctx.error(
                    e.value.pos,
                    format!("{label}unknown sensor mode `{mode}`; allowed: poke, reschedule"),
                );
                return None;
            }
        };
    }
    if let Some(e) = get(fields, "soft_fail") {
        sensing.soft_fail = ctx.bool(&e.value, label, "sensor.soft_fail")?;
    }
    if let Some(e) = get(fields, "exponential_backoff") {
        sensing.exponential_backoff = ctx.bool(&e.value, label, "sensor.exponential_backoff")?;
    }
    if let Some(e) = get(fields, "max_wait") {
        sensing.max_wait = ctx.opt_duration(&e.value, label, "sensor.max_wait")?;
    }
    Some(Some(sensing))
}
