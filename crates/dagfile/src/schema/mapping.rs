//! `expand:` and `expand_kwargs:` of a task: dynamic task mapping (Airflow's
//! `.partial(…).expand(…)` and `.expand_kwargs(…)`). The task's other keys are its `partial`
//! arguments; a value to map over is a literal list (or a mapping, mapped over as its
//! `[key, value]` pairs) or `{xcom: task_id}`, an upstream task's result.

use updraft_model::{MapSource, MappedArgument, Mapping};

use super::value::Ctx;
use crate::diagnostic::Pos;
use crate::document::{Entry, Node, NodeKind};

/// What a bash task may map over, as Airflow's `BashOperator.partial(…).expand(…)` takes it.
pub(crate) const BASH_MAPPABLE: &[&str] = &["bash_command", "env"];

/// How a task's operator constrains its mapped arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MappedOperator {
    Bash,
    Empty,
    /// The SDK checks the names against the callable when it serializes the task.
    Python,
    /// A bash task of a mapped group: the names are the group's.
    GroupBash,
}

/// A task's mapping as read, with the upstream tasks it reads (and where they are named).
pub(crate) struct ReadMapping {
    pub mapping: Mapping,
    pub upstream: Vec<(String, Option<Pos>)>,
    /// Whether every instance gets a `bash_command` from the mapping, so the task needs none.
    pub supplies_command: bool,
    /// A task of a mapped group: a `bash_command` of its own wins over the group's.
    pub in_map_group: bool,
}

/// Reads `expand` or `expand_kwargs` of a task's entries (`None` when it has neither, or
/// they are wrong: the problems are recorded).
pub(crate) fn read_mapping(
    entries: &[Entry],
    operator: MappedOperator,
    in_map_group: bool,
    label: &str,
    ctx: &mut Ctx,
) -> Option<ReadMapping> {
    let expand = entries.iter().find(|e| e.key == "expand");
    let kwargs = entries.iter().find(|e| e.key == "expand_kwargs");
    let (entry, is_kwargs) = match (expand, kwargs) {
        (None, None) => return None,
        (Some(_), Some(k)) => {
            ctx.error(
                k.key_pos,
                format!("{label}`expand` and `expand_kwargs` do not go together: pick one"),
            );
            return None;
        }
        (Some(e), None) => (e, false),
        (None, Some(k)) => (k, true),
    };
    // A task of a mapped group runs once per the group's values, whatever its operator.
    if operator == MappedOperator::Empty && !in_map_group {
        ctx.error(
            entry.key_pos,
            format!(
                "{label}`{}` needs arguments to map over; `operator: empty` has none",
                entry.key
            ),
        );
        return None;
    }
    // A bash task of a mapped group takes `bash_command`/`env` of the group's arguments and
    // leaves the others to the group's other tasks.
    let operator = if in_map_group && operator == MappedOperator::Bash {
        MappedOperator::GroupBash
    } else {
        operator
    };
    let read = if is_kwargs {
        read_expand_kwargs(&entry.value, operator, label, ctx)
    } else {
        read_expand(&entry.value, operator, label, ctx)
    };
    read.map(|r| ReadMapping { in_map_group, ..r })
}

fn read_expand(
    node: &Node,
    operator: MappedOperator,
    label: &str,
    ctx: &mut Ctx,
) -> Option<ReadMapping> {
    let entries = ctx.map(node, label, "expand")?;
    if entries.is_empty() {
        ctx.error(
            node.pos,
            format!("{label}`expand` needs at least one argument to map over"),
        );
        return None;
    }
    let mut ok = true;
    let mut args = Vec::new();
    let mut upstream = Vec::new();
    for entry in entries {
        let key = format!("expand.{}", entry.key);
        if operator == MappedOperator::Bash && !BASH_MAPPABLE.contains(&entry.key.as_str()) {
            ctx.error(
                entry.key_pos,
                format!(
                    "{label}`{key}`: a bash task cannot map over `{}`; it can map over: {}",
                    entry.key,
                    BASH_MAPPABLE.join(", ")
                ),
            );
            ok = false;
            continue;
        }
        let Some(source) = read_source(&entry.value, label, &key, ctx) else {
            ok = false;
            continue;
        };
        if let MapSource::Literal(values) = &source {
            for (i, value) in values.iter().enumerate() {
                if let Err(why) = check_bash_argument(operator, &entry.key, value) {
                    ctx.error(entry.value.pos, format!("{label}`{key}` item {i}: {why}"));
                    ok = false;
                }
            }
        }
        if matches!(operator, MappedOperator::Bash | MappedOperator::GroupBash)
            && source.needs_python()
        {
            ctx.error(
                entry.value.pos,
                format!("{label}`{key}`: `map` needs Python callables; a bash task cannot use it"),
            );
            ok = false;
            continue;
        }
        for task_id in source.upstream() {
            upstream.push((task_id.to_string(), entry.value.pos));
        }
        args.push(MappedArgument {
            name: entry.key.clone(),
            source,
        });
    }
    let supplies_command = args.iter().any(|a| a.name == "bash_command");
    ok.then_some(ReadMapping {
        mapping: Mapping::Expand(args),
        upstream,
        supplies_command,
        in_map_group: false,
    })
}

fn read_expand_kwargs(
    node: &Node,
    operator: MappedOperator,
    label: &str,
    ctx: &mut Ctx,
) -> Option<ReadMapping> {
    let key = "expand_kwargs";
    let source = read_source(node, label, key, ctx)?;
    if matches!(operator, MappedOperator::Bash | MappedOperator::GroupBash) && source.needs_python()
    {
        ctx.error(
            node.pos,
            format!("{label}`{key}`: `map` needs Python callables; a bash task cannot use it"),
        );
        return None;
    }
    let upstream: Vec<_> = source
        .upstream()
        .into_iter()
        .map(|task_id| (task_id.to_string(), node.pos))
        .collect();
    let supplies_command = match &source {
        // Known only when the upstream result is: an instance without one fails.
        MapSource::Xcom(_) | MapSource::Map { .. } | MapSource::Zip { .. } => true,
        MapSource::Concat(sources) if !sources.iter().all(is_literal) => true,
        MapSource::Concat(_) => false,
        MapSource::Literal(items) => {
            let mut ok = true;
            let mut every_command = !items.is_empty();
            for (i, item) in items.iter().enumerate() {
                let serde_json::Value::Object(kwargs) = item else {
                    ctx.error(
                        node.pos,
                        format!(
                            "{label}`{key}` item {i} must be a mapping of arguments, found {}",
                            updraft_model::mapping::kind_of(item)
                        ),
                    );
                    ok = false;
                    continue;
                };
                every_command &= kwargs.contains_key("bash_command");
                for (name, value) in kwargs {
                    if operator == MappedOperator::Bash && !BASH_MAPPABLE.contains(&name.as_str()) {
                        ctx.error(
                            node.pos,
                            format!(
                                "{label}`{key}` item {i}: a bash task cannot map over `{name}`; \
                                 it can map over: {}",
                                BASH_MAPPABLE.join(", ")
                            ),
                        );
                        ok = false;
                    } else if let Err(why) = check_bash_argument(operator, name, value) {
                        ctx.error(node.pos, format!("{label}`{key}` item {i}: {why}"));
                        ok = false;
                    }
                }
            }
            if !ok {
                return None;
            }
            every_command
        }
    };
    Some(ReadMapping {
        mapping: Mapping::ExpandKwargs(source),
        upstream,
        supplies_command,
        in_map_group: false,
    })
}

fn is_literal(source: &MapSource) -> bool {
    matches!(source, MapSource::Literal(_))
}

/// A value to map over: `{xcom: task_id}`, a list, a mapping (its `[key, value]` pairs), or
/// a combination of values: `{zip: [...], fillvalue: v}` (Airflow's `XComArg.zip`, as long as
/// the shortest; with `fillvalue`, the longest), `{concat: [...]}`, and `{map: source,
/// callables: [...]}` (`XComArg.map`, whose callables the Python SDK applies).
fn read_source(node: &Node, label: &str, key: &str, ctx: &mut Ctx) -> Option<MapSource> {
    let keyed = |entries: &[Entry], name: &str| entries.iter().any(|e| e.key == name);
    match &node.kind {
        NodeKind::Map(entries) if entries.len() == 1 && entries[0].key == "xcom" => {
            let task_id = ctx.string(&entries[0].value, label, &format!("{key}.xcom"))?;
            Some(MapSource::Xcom(task_id))
        }
        NodeKind::Map(entries)
            if keyed(entries, "zip") || keyed(entries, "concat") || keyed(entries, "map") =>
        {
            read_combined(entries, node, label, key, ctx)
        }
        NodeKind::Seq(_) | NodeKind::Map(_) => {
            let mut non_finite = false;
            let value = node.to_json(&mut |_, _| non_finite = true);
            if non_finite {
                ctx.error(
                    node.pos,
                    format!("{label}`{key}` holds a number that JSON cannot store"),
                );
                return None;
            }
            updraft_model::mapping::as_sequence(&value).map(MapSource::Literal)
        }
        _ => {
            ctx.error(
                node.pos,
                format!(
                    "{label}`{key}` must be a list to map over (or `{{xcom: task_id}}`, an \
                     upstream task's result), found {}",
                    node.describe()
                ),
            );
            None
        }
    }
}

/// `{zip: …}`, `{concat: …}` or `{map: …}`.
fn read_combined(
    entries: &[Entry],
    node: &Node,
    label: &str,
    key: &str,
    ctx: &mut Ctx,
) -> Option<MapSource> {
    let find = |name: &str| entries.iter().find(|e| e.key == name);
    let (kind, allowed): (&str, &[&str]) = if find("zip").is_some() {
        ("zip", &["zip", "fillvalue"])
    } else if find("concat").is_some() {
        ("concat", &["concat"])
    } else {
        ("map", &["map", "callables"])
    };
    if let Some(extra) = entries.iter().find(|e| !allowed.contains(&e.key.as_str())) {
        ctx.error(
            extra.key_pos,
            format!(
                "{label}`{key}.{kind}` takes only: {} (found `{}`)",
                allowed.join(", "),
                extra.key
            ),
        );
        return None;
    }
    let inner = find(kind)?;
    let inner_key = format!("{key}.{kind}");
    if kind == "map" {
        let source = read_source(&inner.value, label, &inner_key, ctx)?;
        let callables = match find("callables") {
            Some(e) => ctx
                .string_list(&e.value, label, &format!("{key}.callables"))?
                .into_iter()
                .map(|(name, _)| name.to_string())
                .collect(),
            None => Vec::new(),
        };
        return Some(MapSource::Map {
            source: Box::new(source),
            callables,
        });
    }
    let NodeKind::Seq(items) = &inner.value.kind else {
        ctx.error(
            inner.value.pos,
            format!(
                "{label}`{inner_key}` must be a list of values to combine, found {}",
                inner.value.describe()
            ),
        );
        return None;
    };
    let mut sources = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        sources.push(read_source(item, label, &format!("{inner_key}[{i}]"), ctx)?);
    }
    if sources.is_empty() {
        ctx.error(
            node.pos,
            format!("{label}`{inner_key}` needs at least one value"),
        );
        return None;
    }
    if kind == "concat" {
        return Some(MapSource::Concat(sources));
    }
    let fillvalue = find("fillvalue").map(|e| e.value.to_json(&mut |_, _| {}));
    Some(MapSource::Zip {
        sources,
        longest: fillvalue.is_some(),
        fillvalue: fillvalue.unwrap_or(serde_json::Value::Null),
    })
}

/// As Airflow makes the results a mapped group maps over upstream of the group's first tasks
/// only: a task of the group after another of it does not depend on them directly (it would
/// change what its trigger rule counts), unless written so.
pub(crate) fn unlink_group_sources(tasks: &mut [super::task::ReadTask]) {
    let groups: std::collections::HashMap<String, String> = tasks
        .iter()
        .filter_map(|r| Some((r.task.task_id.clone(), r.task.map_group.clone()?)))
        .collect();
    for read in tasks.iter_mut() {
        let Some(group) = read.task.map_group.as_deref() else {
            continue;
        };
        let after_another = read
            .task
            .dependencies
            .iter()
            .any(|d| groups.get(d).map(String::as_str) == Some(group));
        if !after_another || read.mapping_dependencies.is_empty() {
            continue;
        }
        let added = std::mem::take(&mut read.mapping_dependencies);
        let kept: Vec<(String, Option<crate::diagnostic::Pos>)> = read
            .task
            .dependencies
            .drain(..)
            .zip(read.dependency_pos.drain(..))
            .filter(|(d, _)| !added.contains(d))
            .collect();
        for (dependency, pos) in kept {
            read.task.dependencies.push(dependency);
            read.dependency_pos.push(pos);
        }
    }
}

/// Tasks of one mapped group (`map_group`) must be mapped alike, so that they expand to the
/// same instances.
pub(crate) fn check_map_groups(tasks: &[super::task::ReadTask], ctx: &mut Ctx) {
    let mut first: Vec<(&str, &super::task::ReadTask)> = Vec::new();
    for read in tasks {
        let Some(group) = read.task.map_group.as_deref() else {
            continue;
        };
        match first.iter().find(|(g, _)| *g == group) {
            None => first.push((group, read)),
            Some((_, other)) if other.task.mapping != read.task.mapping => ctx.error(
                read.id_pos,
                format!(
                    "task `{}`: tasks of mapped group `{group}` must map over the same values \
                     (`{}` maps over others)",
                    read.task.task_id, other.task.task_id
                ),
            ),
            Some(_) => {}
        }
    }
}

/// Checks a literal value of a bash task's mapped argument.
fn check_bash_argument(
    operator: MappedOperator,
    name: &str,
    value: &serde_json::Value,
) -> Result<(), String> {
    use serde_json::Value;
    if !matches!(operator, MappedOperator::Bash | MappedOperator::GroupBash) {
        return Ok(());
    }
    match (name, value) {
        ("bash_command", Value::String(_)) => Ok(()),
        ("bash_command", other) => Err(format!(
            "`bash_command` must be a string, found {}",
            updraft_model::mapping::kind_of(other)
        )),
        ("env", Value::Object(vars)) => {
            match vars.iter().find(|(_, v)| v.is_object() || v.is_array()) {
                Some((var, _)) => Err(format!("`env.{var}` must be a scalar")),
                None => Ok(()),
            }
        }
        ("env", other) => Err(format!(
            "`env` must be a mapping of variables, found {}",
            updraft_model::mapping::kind_of(other)
        )),
        _ => Ok(()),
    }
}
