//! The DAG file schema: which keys a file may have, what they mean, and the conversion of a
//! parsed document into a validated `updraft_model::Dag`, reporting every problem at once.

mod asset;
mod cross_dag;
mod docker;
mod external_sensor;
mod graph;
mod http;
mod mapping;
mod notify;
mod sensor;
mod task;
mod value;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use updraft_model::{Dag, Schedule};

pub use task::{OPERATORS, SETTING_KEYS, TASK_ONLY_KEYS, TRIGGER_RULES};

use crate::diagnostic::Diagnostic;
use crate::document::{self, Format, Node, NodeKind};
use task::{read_settings, read_task};
use value::{check_id, get, Ctx};

/// Top-level keys of a DAG file.
pub const DAG_KEYS: &[&str] = &[
    "dag_id",
    "description",
    "schedule",
    "timezone",
    "start_date",
    "end_date",
    "catchup",
    "max_active_runs",
    "max_active_tasks",
    "dagrun_timeout",
    "max_consecutive_failed_dag_runs",
    "tags",
    "params",
    "default_args",
    "tasks",
    "notifiers",
    "on_success_callback",
    "on_failure_callback",
    "deadline",
];

/// DAG files larger than this are rejected without being parsed.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

pub use updraft_model::{DEFAULT_MAX_ACTIVE_RUNS, DEFAULT_MAX_ACTIVE_TASKS};
/// Airflow's limit on the length of a tag.
pub const MAX_TAG_LEN: usize = 100;

/// Parses and validates one DAG file. `default_dag_id` is used when the file has no `dag_id`
/// (the loader passes the file name without extension). On failure, every problem found.
pub fn parse_dag(
    source: &str,
    default_dag_id: &str,
    format: Format,
) -> Result<Dag, Vec<Diagnostic>> {
    if source.len() > MAX_FILE_BYTES {
        return Err(vec![too_big(source.len() as u64)]);
    }
    parse_dag_document(source, default_dag_id, format)
}

/// [`parse_dag`] without the size limit, for a document the Python SDK wrote: the limit is on
/// files users write, and a Python file of a few lines may build a DAG of 50,000 tasks (the
/// bridge already bounds its answer).
pub(crate) fn parse_dag_document(
    source: &str,
    default_dag_id: &str,
    format: Format,
) -> Result<Dag, Vec<Diagnostic>> {
    let (root, diags) = document::parse(source, format).map_err(|d| vec![d])?;
    read_document(&root, diags, default_dag_id, matches!(format, Format::Json))
}

/// A DAG document the Python SDK wrote, taken as it is: it was never text a user could be
/// pointed into, so its tree has no positions (and a 50,000-task DAG is not written out and
/// parsed again).
pub(crate) fn parse_dag_value(
    document: serde_json::Value,
    default_dag_id: &str,
) -> Result<Dag, Vec<Diagnostic>> {
    let root = document::from_json_value(document);
    read_document(&root, Vec::new(), default_dag_id, true)
}

fn read_document(
    root: &Node,
    diags: Vec<Diagnostic>,
    default_dag_id: &str,
    python_callbacks: bool,
) -> Result<Dag, Vec<Diagnostic>> {
    let mut ctx = Ctx {
        diags,
        python_callbacks,
        ..Ctx::default()
    };
    let dag = read_dag(root, default_dag_id, &mut ctx);
    match dag {
        Some(dag) if ctx.diags.is_empty() => Ok(dag),
        _ if ctx.diags.is_empty() => Err(vec![Diagnostic::new(None, "the file defines no DAG")]),
        _ => Err(ctx.finish()),
    }
}

pub(crate) fn too_big(len: u64) -> Diagnostic {
    Diagnostic::new(
        None,
        format!("the file is {len} bytes; DAG files may be at most {MAX_FILE_BYTES} bytes (1 MiB)"),
    )
}

fn read_dag(root: &Node, default_dag_id: &str, ctx: &mut Ctx) -> Option<Dag> {
    let entries = match &root.kind {
        NodeKind::Map(entries) => entries,
        NodeKind::Null => {
            ctx.error(
                root.pos,
                "the file is empty; a DAG file is a mapping with at least `tasks`",
            );
            return None;
        }
        _ => {
            ctx.error(
                root.pos,
                format!(
                    "a DAG file is a mapping of {}; found {}",
                    DAG_KEYS.join(", "),
                    root.describe()
                ),
            );
            return None;
        }
    };
    ctx.check_keys(entries, DAG_KEYS, "");
    let node = |key: &str| get(entries, key).map(|e| &e.value);
    let present = |key: &str| node(key).filter(|n| !matches!(n.kind, NodeKind::Null));

    let dag_id = match node("dag_id") {
        Some(n) => ctx
            .string(n, "", "dag_id")
            .and_then(|id| match check_id(&id) {
                Ok(()) => Some(id),
                Err(why) => {
                    ctx.error(n.pos, format!("dag_id {id:?} {why}"));
                    None
                }
            }),
        None => match check_id(default_dag_id) {
            Ok(()) => Some(default_dag_id.to_string()),
            Err(why) => {
                ctx.error(
                    None,
                    format!(
                        "without `dag_id` the DAG is named after its file, and {default_dag_id:?} {why}; set `dag_id`"
                    ),
                );
                None
            }
        },
    };

    let description =
        node("description").map_or(Some(None), |n| ctx.opt_string(n, "", "description"));

    let timezone = match present("timezone") {
        None => Some(Tz::UTC),
        Some(n) => ctx.string(n, "", "timezone").and_then(|name| match name.parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                ctx.error(
                    n.pos,
                    format!("unknown time zone `{name}`; use an IANA name like `Europe/Amsterdam` or `UTC`"),
                );
                None
            }
        }),
    };

    let schedule_entry =
        get(entries, "schedule").filter(|e| !matches!(e.value.kind, NodeKind::Null));
    let (schedule, asset_schedule) = match schedule_entry {
        None => (Some(Schedule::None), None),
        Some(e) => match &e.value.kind {
            NodeKind::Str(_) | NodeKind::Int(_) => {
                let text = match &e.value.kind {
                    NodeKind::Int(i) => i.to_string(),
                    NodeKind::Str(s) => s.clone(),
                    _ => String::new(),
                };
                match Schedule::parse(&text) {
                    Ok(schedule) => (Some(schedule), None),
                    Err(err) => {
                        ctx.error(e.value.pos, format!("`schedule`: {err}"));
                        (None, None)
                    }
                }
            }
            _ => match asset::read_asset_schedule(&e.value, ctx) {
                Some(read) => (Some(read.time), read.assets),
                None => (None, None),
            },
        },
    };

    // Dates are read in the DAG's zone; with a bad zone, UTC still checks their syntax.
    let zone = timezone.unwrap_or(Tz::UTC);
    let start_date = read_instant(present("start_date"), "start_date", zone, ctx);
    let end_date = read_instant(present("end_date"), "end_date", zone, ctx);
    if let (Some(Some(start)), Some(Some(end))) = (start_date, end_date) {
        if end < start {
            ctx.error(
                present("end_date").and_then(|n| n.pos),
                format!("`end_date` {end} is before `start_date` {start}"),
            );
        }
    }
    if let (Some(e), Some(None)) = (schedule_entry, start_date) {
        if schedule.as_ref() != Some(&Schedule::None) {
            ctx.error(e.key_pos, "`start_date` is required when `schedule` is set");
        }
    }

    let catchup = node("catchup").map_or(Some(false), |n| ctx.bool(n, "", "catchup"));
    let max_active_runs = node("max_active_runs").map_or(Some(DEFAULT_MAX_ACTIVE_RUNS), |n| {
        ctx.u32_at_least(n, "", "max_active_runs", 1)
    });
    let max_active_tasks = node("max_active_tasks").map_or(Some(DEFAULT_MAX_ACTIVE_TASKS), |n| {
        ctx.u32_at_least(n, "", "max_active_tasks", 1)
    });
    let dagrun_timeout = node("dagrun_timeout").map_or(Some(None), |n| {
        // As in Airflow, a zero timeout is none.
        ctx.opt_duration(n, "", "dagrun_timeout")
            .map(|d| d.filter(|d| !d.is_zero()))
    });
    let max_consecutive_failed_dag_runs = node("max_consecutive_failed_dag_runs")
        .map_or(Some(0), |n| {
            ctx.u32_at_least(n, "", "max_consecutive_failed_dag_runs", 0)
        });
    let tags = read_tags(node("tags"), ctx);
    let params = match present("params") {
        None => Some(serde_json::Map::new()),
        Some(n) => {
            let is_map = ctx.map(n, "", "params").is_some();
            let mut report = |pos, f: f64| {
                ctx.error(
                    pos,
                    format!("`params` holds {f}, which JSON cannot store; use a finite number"),
                );
            };
            match n.to_json(&mut report) {
                serde_json::Value::Object(map) if is_map => {
                    for (name, message) in updraft_model::param::read_params(&map).1 {
                        let pos = ctx.map(n, "", "params").and_then(|entries| {
                            entries.iter().find(|e| e.key == name).map(|e| e.key_pos)
                        });
                        ctx.error(pos.flatten(), format!("`params.{name}`: {message}"));
                    }
                    Some(map)
                }
                _ => None,
            }
        }
    };

    if let Some(n) = present("notifiers") {
        ctx.notifiers = notify::read_notifiers(n, ctx);
    }
    let dag_callback = |key: &str, ctx: &mut Ctx| match present(key) {
        None => Some(Vec::new()),
        Some(n) => notify::read_callbacks(n, "", key, ctx),
    };
    let on_success_callback = dag_callback("on_success_callback", ctx);
    let on_failure_callback = dag_callback("on_failure_callback", ctx);
    let deadline = present("deadline").map_or(Some(Vec::new()), |n| notify::read_deadlines(n, ctx));

    let defaults = match present("default_args") {
        None => Vec::new(),
        Some(n) => match ctx.map(n, "", "default_args") {
            Some(args) => {
                ctx.check_keys(args, SETTING_KEYS, "default_args: ");
                read_settings(args, "default_args: ", ctx)
            }
            None => Vec::new(),
        },
    };
    // Kept as written for the UI; a non-finite number was refused above as a setting.
    let default_args = match present("default_args").map(|n| n.to_json(&mut |_, _| {})) {
        Some(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };

    let tasks = match get(entries, "tasks") {
        None => {
            ctx.error(root.pos, "missing required key `tasks`");
            None
        }
        Some(e) => match &e.value.kind {
            NodeKind::Seq(items) if items.is_empty() => {
                ctx.error(e.key_pos, "`tasks` is empty; a DAG needs at least one task");
                None
            }
            NodeKind::Seq(items) => {
                let mut read: Vec<_> = items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| read_task(item, i, &defaults, ctx))
                    .collect();
                mapping::unlink_group_sources(&mut read);
                graph::check(&read, ctx);
                mapping::check_map_groups(&read, ctx);
                Some(graph::with_named_setups(read))
            }
            _ => {
                ctx.error(
                    e.value.pos,
                    format!(
                        "`tasks` must be a list of tasks, found {}",
                        e.value.describe()
                    ),
                );
                None
            }
        },
    };

    Some(Dag {
        dag_id: dag_id?,
        description: description?,
        schedule: schedule?,
        timezone: timezone?,
        start_date: start_date?,
        end_date: end_date?,
        catchup: catchup?,
        max_active_runs: max_active_runs?,
        max_active_tasks: max_active_tasks?,
        dagrun_timeout: dagrun_timeout?,
        max_consecutive_failed_dag_runs: max_consecutive_failed_dag_runs?,
        callbacks: updraft_model::DagCallbacks {
            on_success_callback: on_success_callback?,
            on_failure_callback: on_failure_callback?,
            deadline: deadline?,
        },
        tags: tags?,
        params: params?,
        default_args,
        asset_schedule,
        tasks: tasks?,
    })
}

/// `Some(None)`: not set; `None`: set but invalid (reported).
fn read_instant(
    node: Option<&Node>,
    key: &str,
    zone: Tz,
    ctx: &mut Ctx,
) -> Option<Option<DateTime<Utc>>> {
    let Some(node) = node else {
        return Some(None);
    };
    let text = ctx.string(node, "", key)?;
    match parse_instant(text.trim(), zone) {
        Ok(instant) => Some(Some(instant)),
        Err(why) => {
            ctx.error(node.pos, format!("`{key}` {text:?} {why}"));
            None
        }
    }
}

/// A date or a time with an offset (RFC 3339), or a date/time without one, read in `zone`.
pub(crate) fn parse_instant(text: &str, zone: Tz) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.fZ"] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Ok(t.with_timezone(&Utc));
        }
    }
    let naive = if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        date.and_hms_opt(0, 0, 0)
    } else {
        [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M",
        ]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    };
    let Some(naive) = naive else {
        return Err("is not a date (2026-01-01) or a time (2026-01-01T06:00:00, optionally with Z or +01:00)".to_string());
    };
    match zone.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        // A time that happens twice (clocks go back): the first one, as Airflow (pendulum) does.
        chrono::LocalResult::Ambiguous(first, _) => Ok(first.with_timezone(&Utc)),
        chrono::LocalResult::None => Err(format!("does not exist in {zone} (the clocks skip it)")),
    }
}

fn read_tags(node: Option<&Node>, ctx: &mut Ctx) -> Option<Vec<String>> {
    let Some(node) = node else {
        return Some(Vec::new());
    };
    let mut tags: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut ok = true;
    for (tag, pos) in ctx.string_list(node, "", "tags")? {
        if tag.trim().is_empty() || tag.chars().count() > MAX_TAG_LEN {
            ctx.error(
                pos,
                format!("tag {tag:?} must be 1 to {MAX_TAG_LEN} characters"),
            );
            ok = false;
        } else if seen.insert(tag) {
            tags.push(tag.to_string());
        }
    }
    ok.then_some(tags)
}
