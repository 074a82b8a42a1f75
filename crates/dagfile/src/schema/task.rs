//! The task part of a DAG file: `tasks` items and the `default_args` they inherit.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use updraft_model::{Notifier, Operator, PythonKind, Task, TaskRole, TriggerRule};

use super::mapping::{read_mapping, MappedOperator, ReadMapping};
use super::notify::read_callbacks;
use super::value::{check_id, get, Ctx};
use crate::diagnostic::Pos;
use crate::document::{Entry, Node, NodeKind};

/// Keys a task shares with `default_args`.
pub const SETTING_KEYS: &[&str] = &[
    "trigger_rule",
    "retries",
    "retry_delay",
    "retry_exponential_backoff",
    "max_retry_delay",
    "execution_timeout",
    "env",
    "cwd",
    "pool",
    "queue",
    "priority_weight",
    "skip_on_exit_code",
    "do_xcom_push",
    "depends_on_past",
    "wait_for_downstream",
    "ignore_first_depends_on_past",
    "max_active_tis_per_dag",
    "max_active_tis_per_dagrun",
    "on_failure_callback",
    "on_success_callback",
    "on_retry_callback",
    "on_execute_callback",
    "on_skipped_callback",
    "email",
    "email_on_failure",
    "email_on_retry",
];

/// Keys only a task may have.
pub const TASK_ONLY_KEYS: &[&str] = &[
    "task_id",
    "operator",
    "bash_command",
    "dependencies",
    "setup",
    "teardown",
    "setups",
    "on_failure_fail_dagrun",
    "expand",
    "expand_kwargs",
    "map_group",
    "python_callable",
    "python_executable",
    "python_kind",
    "source_line",
    "task_group",
    "http",
    "docker",
    "sensor",
    "file_sensor",
    "time_delta_sensor",
    "time_sensor",
    "date_time_sensor",
    "outlets",
    "inlets",
    "trigger_dagrun",
    "external_task_marker",
    "external_task_sensor",
];

/// Keys that belong to `operator: python` only.
const PYTHON_KEYS: &[&str] = &[
    "python_callable",
    "python_executable",
    "python_kind",
    "source_line",
];

/// `updraft_model::TriggerRule` as written in files.
pub const TRIGGER_RULES: &[&str] = &updraft_model::TRIGGER_RULE_NAMES;

/// Values of `operator`.
pub const OPERATORS: &[&str] = &updraft_model::Operator::KINDS;

/// One task setting, read once (from `default_args` or a task) and applied to tasks.
#[derive(Debug, Clone)]
pub(crate) enum Setting {
    TriggerRule(TriggerRule),
    Retries(u32),
    RetryDelay(Duration),
    RetryExponentialBackoff(bool),
    MaxRetryDelay(Option<Duration>),
    ExecutionTimeout(Option<Duration>),
    Env(BTreeMap<String, String>),
    Cwd(Option<String>),
    Pool(String),
    Queue(String),
    PriorityWeight(i64),
    SkipOnExitCode(Vec<i32>),
    DoXcomPush(bool),
    DependsOnPast(bool),
    WaitForDownstream(bool),
    IgnoreFirstDependsOnPast(bool),
    MaxActiveTisPerDag(Option<u32>),
    MaxActiveTisPerDagrun(Option<u32>),
    /// One of the callback keys, and its notifiers.
    Callback(&'static str, Vec<Notifier>),
    Email(Vec<String>),
    EmailOnFailure(bool),
    EmailOnRetry(bool),
}

/// A task read from the file, with the places its graph checks point at.
pub(crate) struct ReadTask {
    pub task: Task,
    pub id_pos: Option<Pos>,
    pub dependency_pos: Vec<Option<Pos>>,
    /// The tasks a teardown names in `setups`: they become setups (Airflow's
    /// `as_teardown(setups=…)`), and upstream of it.
    pub setups: Vec<String>,
    /// Dependencies added because the task maps over their results (not written).
    pub mapping_dependencies: Vec<String>,
}

impl Setting {
    fn apply(&self, task: &mut Task) {
        match self.clone() {
            Setting::TriggerRule(v) => task.trigger_rule = v,
            Setting::Retries(v) => task.retries = v,
            Setting::RetryDelay(v) => task.retry_delay = v,
            Setting::RetryExponentialBackoff(v) => task.retry_exponential_backoff = v,
            Setting::MaxRetryDelay(v) => task.max_retry_delay = v,
            Setting::ExecutionTimeout(v) => task.execution_timeout = v,
            Setting::Env(v) => task.env = v,
            Setting::Cwd(v) => task.cwd = v,
            Setting::Pool(v) => task.pool = v,
            Setting::Queue(v) => task.queue = v,
            Setting::PriorityWeight(v) => task.priority_weight = v,
            Setting::SkipOnExitCode(v) => task.skip_on_exit_code = v,
            Setting::DoXcomPush(v) => task.do_xcom_push = v,
            Setting::DependsOnPast(v) => task.past.depends_on_past = v,
            Setting::WaitForDownstream(v) => task.past.wait_for_downstream = v,
            Setting::IgnoreFirstDependsOnPast(v) => task.past.ignore_first_depends_on_past = v,
            Setting::MaxActiveTisPerDag(v) => task.max_active_tis_per_dag = v,
            Setting::MaxActiveTisPerDagrun(v) => task.max_active_tis_per_dagrun = v,
            Setting::Callback(key, v) => {
                let callbacks = &mut task.callbacks;
                let list = match key {
                    "on_failure_callback" => &mut callbacks.on_failure_callback,
                    "on_success_callback" => &mut callbacks.on_success_callback,
                    "on_retry_callback" => &mut callbacks.on_retry_callback,
                    "on_execute_callback" => &mut callbacks.on_execute_callback,
                    _ => &mut callbacks.on_skipped_callback,
                };
                *list = v;
            }
            Setting::Email(v) => task.callbacks.email = v,
            Setting::EmailOnFailure(v) => task.callbacks.email_on_failure = v,
            Setting::EmailOnRetry(v) => task.callbacks.email_on_retry = v,
        }
    }
}

/// Reads the setting keys of a mapping; other keys are left to the caller.
pub(crate) fn read_settings(entries: &[Entry], label: &str, ctx: &mut Ctx) -> Vec<Setting> {
    entries
        .iter()
        .filter_map(|entry| read_setting(&entry.key, &entry.value, label, ctx))
        .collect()
}

fn read_setting(key: &str, node: &Node, label: &str, ctx: &mut Ctx) -> Option<Setting> {
    Some(match key {
        "trigger_rule" => Setting::TriggerRule(read_trigger_rule(node, label, ctx)?),
        "retries" => Setting::Retries(ctx.u32_at_least(node, label, key, 0)?),
        "retry_delay" => Setting::RetryDelay(ctx.duration(node, label, key)?),
        "retry_exponential_backoff" => {
            Setting::RetryExponentialBackoff(ctx.bool(node, label, key)?)
        }
        "max_retry_delay" => Setting::MaxRetryDelay(ctx.opt_duration(node, label, key)?),
        "execution_timeout" => Setting::ExecutionTimeout(ctx.opt_duration(node, label, key)?),
        "env" => Setting::Env(read_env(node, label, ctx)?),
        "cwd" => Setting::Cwd(ctx.opt_string(node, label, key)?),
        "pool" => Setting::Pool(ctx.text(node, label, key)?),
        "queue" => Setting::Queue(ctx.text(node, label, key)?),
        "priority_weight" => {
            Setting::PriorityWeight(ctx.int_in(node, label, key, i64::MIN..=i64::MAX)?)
        }
        "skip_on_exit_code" => Setting::SkipOnExitCode(read_exit_codes(node, label, ctx)?),
        "do_xcom_push" => Setting::DoXcomPush(ctx.bool(node, label, key)?),
        "depends_on_past" => Setting::DependsOnPast(ctx.bool(node, label, key)?),
        "wait_for_downstream" => Setting::WaitForDownstream(ctx.bool(node, label, key)?),
        "ignore_first_depends_on_past" => {
            Setting::IgnoreFirstDependsOnPast(ctx.bool(node, label, key)?)
        }
        "max_active_tis_per_dag" => {
            Setting::MaxActiveTisPerDag(ctx.opt_u32_at_least(node, label, key, 1)?)
        }
        "max_active_tis_per_dagrun" => {
            Setting::MaxActiveTisPerDagrun(ctx.opt_u32_at_least(node, label, key, 1)?)
        }
        "on_failure_callback"
        | "on_success_callback"
        | "on_retry_callback"
        | "on_execute_callback"
        | "on_skipped_callback" => {
            let key: &'static str = SETTING_KEYS.iter().copied().find(|k| *k == key)?;
            Setting::Callback(key, read_callbacks(node, label, key, ctx)?)
        }
        "email" => Setting::Email(
            ctx.string_list(node, label, key)?
                .into_iter()
                .map(|(address, _)| address.to_string())
                .collect(),
        ),
        "email_on_failure" => Setting::EmailOnFailure(ctx.bool(node, label, key)?),
        "email_on_retry" => Setting::EmailOnRetry(ctx.bool(node, label, key)?),
        _ => return None,
    })
}

fn read_trigger_rule(node: &Node, label: &str, ctx: &mut Ctx) -> Option<TriggerRule> {
    let name = ctx.string(node, label, "trigger_rule")?;
    match serde_json::from_value(serde_json::Value::String(name.clone())) {
        Ok(rule) => Some(rule),
        Err(_) => {
            ctx.error(
                node.pos,
                format!(
                    "{label}unknown trigger_rule `{name}`; allowed: {}",
                    TRIGGER_RULES.join(", ")
                ),
            );
            None
        }
    }
}

fn read_env(node: &Node, label: &str, ctx: &mut Ctx) -> Option<BTreeMap<String, String>> {
    if matches!(node.kind, NodeKind::Null) {
        return Some(BTreeMap::new());
    }
    let entries = ctx.map(node, label, "env")?;
    let mut env = BTreeMap::new();
    let mut ok = true;
    for entry in entries {
        if entry.key.is_empty() || entry.key.contains(['=', '\0']) {
            ctx.error(
                entry.key_pos,
                format!(
                    "{label}`env` name {:?} is not a valid variable name",
                    entry.key
                ),
            );
            ok = false;
            continue;
        }
        match ctx.scalar_text(&entry.value, label, &format!("env.{}", entry.key)) {
            Some(value) => {
                env.insert(entry.key.clone(), value);
            }
            None => ok = false,
        }
    }
    ok.then_some(env)
}

fn read_exit_codes(node: &Node, label: &str, ctx: &mut Ctx) -> Option<Vec<i32>> {
    let key = "skip_on_exit_code";
    let items: Vec<&Node> = match &node.kind {
        NodeKind::Null => return Some(Vec::new()),
        NodeKind::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    let mut codes = Vec::with_capacity(items.len());
    for item in items {
        let code = ctx.int_in(item, label, key, 0..=255)?;
        codes.push(code as i32);
    }
    Some(codes)
}

/// Reads one `tasks` item. `None` when it cannot become a task (its problems are recorded).
pub(crate) fn read_task(
    node: &Node,
    index: usize,
    defaults: &[Setting],
    ctx: &mut Ctx,
) -> Option<ReadTask> {
    let fallback = format!("task #{}: ", index + 1);
    let NodeKind::Map(entries) = &node.kind else {
        ctx.error(
            node.pos,
            format!(
                "{fallback}each item of `tasks` must be a mapping, found {}",
                node.describe()
            ),
        );
        return None;
    };

    let id_entry = get(entries, "task_id");
    let task_id = match id_entry {
        None => {
            ctx.error(
                node.pos,
                format!("{fallback}missing required key `task_id`"),
            );
            None
        }
        Some(e) => ctx
            .string(&e.value, &fallback, "task_id")
            .and_then(|id| match check_id(&id) {
                Ok(()) => Some(id),
                Err(why) => {
                    ctx.error(e.value.pos, format!("{fallback}task_id {id:?} {why}"));
                    None
                }
            }),
    };
    let label = match &task_id {
        Some(id) => format!("task `{id}`: "),
        None => fallback,
    };

    // The keys YAML authors write first; the Python SDK's own keys last.
    let (common, python) = TASK_ONLY_KEYS.split_at(10);
    let allowed: Vec<&str> = common
        .iter()
        .chain(SETTING_KEYS)
        .chain(python)
        .copied()
        .collect();
    ctx.check_keys(entries, &allowed, &label);

    let mapped_operator = match get(entries, "operator").map(|e| &e.value.kind) {
        Some(NodeKind::Str(name)) if name == "empty" => MappedOperator::Empty,
        Some(NodeKind::Str(name)) if name == "python" => MappedOperator::Python,
        _ => MappedOperator::Bash,
    };
    let map_group = match get(entries, "map_group") {
        Some(e) => ctx.opt_string(&e.value, &label, "map_group")?,
        None => None,
    };
    if map_group.is_some()
        && get(entries, "expand").is_none()
        && get(entries, "expand_kwargs").is_none()
    {
        if let Some(e) = get(entries, "map_group") {
            ctx.error(
                e.key_pos,
                format!("{label}`map_group` needs the group's `expand` or `expand_kwargs`"),
            );
        }
        return None;
    }
    let mapping_read = read_mapping(entries, mapped_operator, map_group.is_some(), &label, ctx);
    let mapping_failed = mapping_read.is_none()
        && (get(entries, "expand").is_some() || get(entries, "expand_kwargs").is_some());
    let operator = read_operator(entries, node.pos, mapping_read.as_ref(), &label, ctx);

    let mut dependencies = Vec::new();
    let mut dependency_pos = Vec::new();
    let mut seen = HashSet::new();
    if let Some(e) = get(entries, "dependencies") {
        for (dep, pos) in ctx
            .string_list(&e.value, &label, "dependencies")
            .unwrap_or_default()
        {
            if seen.insert(dep.to_string()) {
                dependencies.push(dep.to_string());
                dependency_pos.push(pos);
            }
        }
    }
    // A task mapped over an upstream result depends on it, as an `XComArg` makes it in
    // Airflow.
    let mut mapping_dependencies = Vec::new();
    for (upstream, pos) in mapping_read.iter().flat_map(|m| &m.upstream) {
        if seen.insert(upstream.clone()) {
            dependencies.push(upstream.clone());
            dependency_pos.push(*pos);
            mapping_dependencies.push(upstream.clone());
        }
    }

    let task_group = match get(entries, "task_group") {
        Some(e) => ctx.opt_string(&e.value, &label, "task_group")?,
        None => None,
    };

    let role = read_role(entries, &label, ctx);
    let mut setups = Vec::new();
    if let Some(e) = get(entries, "setups") {
        for (setup, pos) in ctx
            .string_list(&e.value, &label, "setups")
            .unwrap_or_default()
        {
            setups.push(setup.to_string());
            if !dependencies.iter().any(|d| d == setup) {
                dependencies.push(setup.to_string());
                dependency_pos.push(pos);
            }
        }
    }

    let outlets = match get(entries, "outlets") {
        Some(e) => super::asset::read_asset_list(&e.value, &label, "outlets", ctx),
        None => Some(Vec::new()),
    };
    let inlets = match get(entries, "inlets") {
        Some(e) => super::asset::read_asset_list(&e.value, &label, "inlets", ctx),
        None => Some(Vec::new()),
    };
    let own = read_settings(entries, &label, ctx);
    if mapping_failed {
        return None;
    }
    let operator = operator?;
    let sensor = super::sensor::read_sensing(entries, &operator, &label, ctx);
    let mut task = Task::new(task_id?, operator);
    task.sensor = sensor?;
    task.dependencies = dependencies;
    task.task_group = task_group;
    task.mapping = mapping_read.map(|m| m.mapping);
    task.map_group = map_group;
    task.outlets = outlets?;
    task.inlets = inlets?;
    for setting in defaults.iter().chain(&own) {
        setting.apply(&mut task);
    }
    let role = role?;
    if role.is_teardown {
        // As Airflow's `as_teardown()`: a teardown's rule is not the author's to choose.
        if let Some(e) = get(entries, "trigger_rule") {
            if task.trigger_rule != TriggerRule::AllDoneSetupSuccess {
                ctx.error(
                    e.key_pos,
                    format!(
                        "{label}a teardown's trigger_rule is all_done_setup_success; leave it out"
                    ),
                );
                return None;
            }
        }
        task.trigger_rule = TriggerRule::AllDoneSetupSuccess;
    } else if let Some(e) = get(entries, "setups") {
        ctx.error(
            e.key_pos,
            format!("{label}`setups` goes only with `teardown: true`"),
        );
        return None;
    }
    task.role = role;
    Some(ReadTask {
        task,
        id_pos: id_entry.and_then(|e| e.value.pos),
        dependency_pos,
        setups,
        mapping_dependencies,
    })
}

/// `setup`, `teardown` and `on_failure_fail_dagrun`; `None` when they contradict each other.
fn read_role(entries: &[Entry], label: &str, ctx: &mut Ctx) -> Option<TaskRole> {
    let mut flag = |key: &str| match get(entries, key) {
        Some(e) => ctx.bool(&e.value, label, key).map(|b| (b, Some(e))),
        None => Some((false, None)),
    };
    let (is_setup, _) = flag("setup")?;
    let (is_teardown, teardown) = flag("teardown")?;
    let (on_failure_fail_dagrun, fail_entry) = flag("on_failure_fail_dagrun")?;
    if is_setup && is_teardown {
        ctx.error(
            teardown.map(|e| e.key_pos).unwrap_or_default(),
            format!("{label}a task is a setup or a teardown, not both"),
        );
        return None;
    }
    if on_failure_fail_dagrun && !is_teardown {
        ctx.error(
            fail_entry.map(|e| e.key_pos).unwrap_or_default(),
            format!("{label}`on_failure_fail_dagrun` goes only with `teardown: true`"),
        );
        return None;
    }
    Some(TaskRole {
        is_setup,
        is_teardown,
        on_failure_fail_dagrun,
    })
}

fn read_operator(
    entries: &[Entry],
    task_pos: Option<Pos>,
    mapping: Option<&ReadMapping>,
    label: &str,
    ctx: &mut Ctx,
) -> Option<Operator> {
    let command = get(entries, "bash_command");
    let command_mapped = mapping.is_some_and(|m| m.supplies_command);
    let operator = match get(entries, "operator") {
        None => None,
        Some(e) => {
            let name = ctx.string(&e.value, label, "operator")?;
            if !OPERATORS.contains(&name.as_str()) {
                ctx.error(
                    e.value.pos,
                    format!(
                        "{label}unknown operator `{name}`; allowed: {}",
                        OPERATORS.join(", ")
                    ),
                );
                return None;
            }
            Some((name, e.value.pos))
        }
    };
    if operator.as_ref().is_some_and(|(name, _)| name == "python") {
        if let Some(cmd) = command {
            ctx.error(
                cmd.key_pos,
                format!("{label}`bash_command` does not go with `operator: python`"),
            );
            return None;
        }
        return read_python(entries, operator.and_then(|(_, pos)| pos), label, ctx);
    }
    // The operators whose whole definition lives under a key named as they are.
    for native in [
        "http",
        "docker",
        "trigger_dagrun",
        "external_task_marker",
        "external_task_sensor",
    ]
    .into_iter()
    .chain(super::sensor::SENSOR_OPERATORS.iter().copied())
    {
        if operator.as_ref().is_some_and(|(name, _)| name == native) {
            if let Some(cmd) = command {
                ctx.error(
                    cmd.key_pos,
                    format!("{label}`bash_command` does not go with `operator: {native}`"),
                );
                return None;
            }
            if mapping.is_some() {
                ctx.error(
                    operator.and_then(|(_, pos)| pos),
                    format!("{label}`operator: {native}` cannot be mapped yet"),
                );
                return None;
            }
            let pos = operator.and_then(|(_, pos)| pos);
            return match native {
                "http" => super::http::read_http(entries, pos, label, ctx),
                "docker" => super::docker::read_docker(entries, pos, label, ctx),
                "trigger_dagrun" => super::cross_dag::read_trigger_dagrun(entries, pos, label, ctx),
                "external_task_marker" => {
                    super::cross_dag::read_external_task_marker(entries, pos, label, ctx)
                }
                "external_task_sensor" => {
                    super::external_sensor::read_external_task_sensor(entries, pos, label, ctx)
                }
                sensor => super::sensor::read_sensor_operator(sensor, entries, pos, label, ctx),
            };
        }
        if let Some(e) = get(entries, native) {
            ctx.error(
                e.key_pos,
                format!("{label}`{native}` goes only with `operator: {native}`"),
            );
            return None;
        }
    }
    if let Some(e) = PYTHON_KEYS.iter().find_map(|key| get(entries, key)) {
        ctx.error(
            e.key_pos,
            format!("{label}`{}` goes only with `operator: python`", e.key),
        );
        return None;
    }
    match (operator, command) {
        (Some((name, _)), None) if name == "empty" => Some(Operator::Empty),
        (Some((name, _)), Some(cmd)) if name == "empty" => {
            ctx.error(
                cmd.key_pos,
                format!("{label}`bash_command` does not go with `operator: empty`"),
            );
            None
        }
        // Each mapped instance gets its own command; the task has none of its own.
        (_, None) if command_mapped => Some(Operator::Bash {
            bash_command: String::new(),
        }),
        (Some((_, pos)), None) => {
            ctx.error(pos, format!("{label}operator `bash` needs `bash_command`"));
            None
        }
        (None, None) => {
            ctx.error(
                task_pos,
                format!("{label}missing required key `bash_command` (or set `operator: empty`)"),
            );
            None
        }
        (_, Some(cmd))
            if mapping.is_some_and(|m| {
                !m.in_map_group
                    && matches!(&m.mapping, updraft_model::Mapping::Expand(args)
                    if args.iter().any(|a| a.name == "bash_command"))
            }) =>
        {
            ctx.error(
                cmd.key_pos,
                format!("{label}`bash_command` is both set and in `expand`: keep one"),
            );
            None
        }
        (_, Some(cmd)) => {
            let bash_command = ctx.text(&cmd.value, label, "bash_command")?;
            Some(Operator::Bash { bash_command })
        }
    }
}

/// `operator: python`: the callable's name, and how the SDK is to run it.
fn read_python(
    entries: &[Entry],
    operator_pos: Option<Pos>,
    label: &str,
    ctx: &mut Ctx,
) -> Option<Operator> {
    let Some(callable) = get(entries, "python_callable") else {
        ctx.error(
            operator_pos,
            format!("{label}operator `python` needs `python_callable`"),
        );
        return None;
    };
    let python_callable = ctx.text(&callable.value, label, "python_callable")?;
    let python_executable = match get(entries, "python_executable") {
        Some(e) => ctx.opt_string(&e.value, label, "python_executable")?,
        None => None,
    };
    let python_kind = match get(entries, "python_kind") {
        None => PythonKind::default(),
        Some(e) => {
            let name = ctx.string(&e.value, label, "python_kind")?;
            let Some(kind) = PythonKind::from_name(&name) else {
                ctx.error(
                    e.value.pos,
                    format!(
                        "{label}unknown python_kind `{name}`; allowed: {}",
                        PythonKind::NAMES.join(", ")
                    ),
                );
                return None;
            };
            kind
        }
    };
    let source_line = match get(entries, "source_line") {
        None => None,
        Some(e) if matches!(e.value.kind, NodeKind::Null) => None,
        Some(e) => Some(ctx.u32_at_least(&e.value, label, "source_line", 0)?),
    };
    Some(Operator::Python {
        python_callable,
        python_executable,
        python_kind,
        source_line,
    })
}
