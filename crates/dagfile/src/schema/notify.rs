//! Callbacks and notifiers in a DAG file: the top-level `notifiers` (named notifiers), the
//! callback keys of the DAG and of tasks (a name, an inline notifier, or a list of them), and
//! `deadline` (Airflow 3.1's deadline alerts).

use std::collections::BTreeMap;

use updraft_model::{DeadlineAlert, DeadlineReference, Notifier};

use super::value::{get, Ctx};
use crate::document::{Node, NodeKind};

/// The keys of one `deadline` alert.
const DEADLINE_KEYS: &[&str] = &["reference", "interval", "callback"];

/// Reads the top-level `notifiers:` mapping of names to notifier specs.
pub(super) fn read_notifiers(node: &Node, ctx: &mut Ctx) -> BTreeMap<String, Notifier> {
    let mut named = BTreeMap::new();
    let Some(entries) = ctx.map(node, "", "notifiers") else {
        return named;
    };
    for entry in entries {
        if let Some(notifier) =
            read_spec(&entry.value, "", &format!("notifiers.{}", entry.key), ctx)
        {
            named.insert(entry.key.clone(), notifier);
        }
    }
    named
}

/// One notifier written out (a mapping with `kind`).
fn read_spec(node: &Node, label: &str, key: &str, ctx: &mut Ctx) -> Option<Notifier> {
    ctx.map(node, label, key)?;
    let json = node.to_json(&mut |_, _| {});
    let kind = json
        .get("kind")
        .and_then(|k| k.as_str())
        .map(str::to_string);
    match kind.as_deref() {
        Some(kind) if Notifier::KINDS.contains(&kind) => {}
        Some(Notifier::PYTHON_KIND) if ctx.python_callbacks => {}
        Some(Notifier::PYTHON_KIND) => {
            ctx.error(
                node.pos,
                format!(
                    "{label}`{key}`: kind `python` names a callback of a Python DAG file; \
                     here name a notifier of kind {}",
                    Notifier::KINDS.join(", ")
                ),
            );
            return None;
        }
        Some(kind) => {
            ctx.error(
                node.pos,
                format!(
                    "{label}`{key}`: unknown notifier kind `{kind}`; allowed: {}",
                    Notifier::KINDS.join(", ")
                ),
            );
            return None;
        }
        None => {
            ctx.error(
                node.pos,
                format!(
                    "{label}`{key}` needs `kind` (one of {})",
                    Notifier::KINDS.join(", ")
                ),
            );
            return None;
        }
    }
    let notifier = match serde_json::from_value::<Notifier>(json) {
        Ok(notifier) => notifier,
        Err(err) => {
            ctx.error(node.pos, format!("{label}`{key}`: {err}"));
            return None;
        }
    };
    if let Err(why) = notifier.check() {
        ctx.error(node.pos, format!("{label}`{key}`: {why}"));
        return None;
    }
    Some(notifier)
}

/// A callback key's value: the name of a notifier of `notifiers:`, a notifier written out, or
/// a list of those; `null` is none.
pub(super) fn read_callbacks(
    node: &Node,
    label: &str,
    key: &str,
    ctx: &mut Ctx,
) -> Option<Vec<Notifier>> {
    let items: Vec<&Node> = match &node.kind {
        NodeKind::Null => return Some(Vec::new()),
        NodeKind::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for item in items {
        let read = match &item.kind {
            NodeKind::Str(name) => match ctx.notifiers.get(name) {
                Some(notifier) => Some(notifier.clone()),
                None => {
                    let known: Vec<&str> = ctx.notifiers.keys().map(String::as_str).collect();
                    let known = if known.is_empty() {
                        "the file's `notifiers:` defines none".to_string()
                    } else {
                        format!("defined: {}", known.join(", "))
                    };
                    ctx.error(
                        item.pos,
                        format!("{label}`{key}` names notifier `{name}`, which `notifiers:` does not define ({known})"),
                    );
                    None
                }
            },
            NodeKind::Map(_) => read_spec(item, label, key, ctx),
            _ => {
                ctx.error(
                    item.pos,
                    format!(
                        "{label}`{key}` must name a notifier or write one out (a mapping with `kind`), found {}",
                        item.describe()
                    ),
                );
                None
            }
        };
        match read {
            Some(notifier) => out.push(notifier),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// `deadline:`: one alert or a list of them.
pub(super) fn read_deadlines(node: &Node, ctx: &mut Ctx) -> Option<Vec<DeadlineAlert>> {
    let items: Vec<&Node> = match &node.kind {
        NodeKind::Null => return Some(Vec::new()),
        NodeKind::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for item in items {
        match read_deadline(item, ctx) {
            Some(alert) => out.push(alert),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn read_deadline(node: &Node, ctx: &mut Ctx) -> Option<DeadlineAlert> {
    let entries = ctx.map(node, "", "deadline")?;
    ctx.check_keys(entries, DEADLINE_KEYS, "deadline: ");
    let missing = |key: &str, ctx: &mut Ctx| {
        ctx.error(node.pos, format!("`deadline` needs `{key}`"));
    };
    let reference = match get(entries, "reference") {
        None => {
            missing("reference", ctx);
            None
        }
        Some(e) => read_reference(&e.value, ctx),
    };
    let interval = match get(entries, "interval") {
        None => {
            missing("interval", ctx);
            None
        }
        Some(e) => ctx.duration(&e.value, "", "deadline.interval"),
    };
    let callback = match get(entries, "callback") {
        None => {
            missing("callback", ctx);
            None
        }
        Some(e) => read_callbacks(&e.value, "", "deadline.callback", ctx),
    };
    Some(DeadlineAlert {
        reference: reference?,
        interval: interval?,
        callback: callback?,
    })
}

/// `dagrun_logical_date`, `dagrun_queued_at`, or `{fixed_datetime: TIME}`.
fn read_reference(node: &Node, ctx: &mut Ctx) -> Option<DeadlineReference> {
    let names = DeadlineReference::NAMES.join(", ");
    match &node.kind {
        NodeKind::Str(name) => match name.to_ascii_lowercase().as_str() {
            "dagrun_logical_date" => Some(DeadlineReference::DagrunLogicalDate),
            "dagrun_queued_at" => Some(DeadlineReference::DagrunQueuedAt),
            _ => {
                ctx.error(
                    node.pos,
                    format!("unknown deadline reference `{name}`; allowed: {names} (`fixed_datetime` as a mapping: `{{fixed_datetime: 2026-01-01T06:00:00Z}}`)"),
                );
                None
            }
        },
        NodeKind::Map(entries) => {
            ctx.check_keys(entries, &["fixed_datetime"], "deadline.reference: ");
            let Some(e) = get(entries, "fixed_datetime") else {
                ctx.error(
                    node.pos,
                    "`deadline.reference` as a mapping needs `fixed_datetime`",
                );
                return None;
            };
            let text = ctx.string(&e.value, "", "deadline.reference.fixed_datetime")?;
            match super::parse_instant(text.trim(), chrono_tz::Tz::UTC) {
                Ok(datetime) => Some(DeadlineReference::FixedDatetime { datetime }),
                Err(why) => {
                    ctx.error(
                        e.value.pos,
                        format!("`deadline.reference.fixed_datetime` {text:?} {why}"),
                    );
                    None
                }
            }
        }
        _ => {
            ctx.error(
                node.pos,
                format!(
                    "`deadline.reference` must be one of {names}, found {}",
                    node.describe()
                ),
            );
            None
        }
    }
}
