//! Assets in DAG files: a task's `outlets`/`inlets`, and a `schedule` on assets.
//!
//! ```yaml
//! schedule: [s3://raw/orders, s3://raw/users]      # all of them (Airflow's list)
//! schedule:                                         # a & (b | c)
//!   all:
//!     - a
//!     - any: [b, {name: c, uri: "s3://bucket/c"}]
//! schedule:                                         # AssetOrTimeSchedule
//!   cron: "0 6 * * *"
//!   assets: {any: [a, b]}
//! ```
//!
//! An asset is a string (its name, which is also its URI, as `Asset("…")`) or a mapping of
//! `name`, `uri`, `group`, `extra`.

use updraft_model::{Asset, AssetCondition, Schedule};

use super::value::{get, Ctx};
use crate::document::{Node, NodeKind};

const ASSET_KEYS: &[&str] = &["name", "uri", "group", "extra"];
/// Keys of a `schedule` mapping that combines assets with a time schedule.
const SCHEDULE_KEYS: &[&str] = &["cron", "assets"];

/// What `schedule:` says: the time schedule and the asset condition.
pub(crate) struct ReadSchedule {
    pub time: Schedule,
    pub assets: Option<AssetCondition>,
}

/// Reads a `schedule` that is not a string: a list of assets, a condition, or `cron` with
/// `assets`. `None` after recording what is wrong.
pub(crate) fn read_asset_schedule(node: &Node, ctx: &mut Ctx) -> Option<ReadSchedule> {
    let label = "`schedule`";
    if let NodeKind::Map(entries) = &node.kind {
        if get(entries, "assets").is_some() || get(entries, "cron").is_some() {
            ctx.check_keys(entries, SCHEDULE_KEYS, "schedule: ");
            let time = match get(entries, "cron") {
                None => Schedule::None,
                Some(e) => {
                    let text = ctx.string(&e.value, "schedule: ", "cron")?;
                    match Schedule::parse(&text) {
                        Ok(s) => s,
                        Err(err) => {
                            ctx.error(e.value.pos, format!("`schedule.cron`: {err}"));
                            return None;
                        }
                    }
                }
            };
            let Some(assets) = get(entries, "assets") else {
                ctx.error(
                    node.pos,
                    "`schedule` with `cron` needs `assets` too (or write the cron expression alone)",
                );
                return None;
            };
            let condition = read_condition(&assets.value, "`schedule.assets`", ctx)?;
            return Some(ReadSchedule {
                time,
                assets: Some(condition),
            });
        }
    }
    let condition = read_condition(node, label, ctx)?;
    Some(ReadSchedule {
        time: Schedule::None,
        assets: Some(condition),
    })
}

/// A condition: an asset, a list (all of them), `{all: [...]}` or `{any: [...]}`.
fn read_condition(node: &Node, label: &str, ctx: &mut Ctx) -> Option<AssetCondition> {
    match &node.kind {
        NodeKind::Seq(items) => read_items(items, label, ctx).map(AssetCondition::All),
        NodeKind::Map(entries)
            if entries.len() == 1 && ["all", "any"].contains(&entries[0].key.as_str()) =>
        {
            let entry = &entries[0];
            let inner = format!("{label}.{}", entry.key);
            let NodeKind::Seq(items) = &entry.value.kind else {
                ctx.error(
                    entry.value.pos,
                    format!(
                        "{inner} must be a list of assets or conditions, found {}",
                        entry.value.describe()
                    ),
                );
                return None;
            };
            if items.is_empty() {
                ctx.error(entry.value.pos, format!("{inner} is empty"));
                return None;
            }
            let items = read_items(items, &inner, ctx)?;
            Some(if entry.key == "all" {
                AssetCondition::All(items)
            } else {
                AssetCondition::Any(items)
            })
        }
        NodeKind::Str(_) | NodeKind::Map(_) => {
            read_asset(node, label, ctx).map(AssetCondition::Asset)
        }
        _ => {
            ctx.error(
                node.pos,
                format!(
                    "{label} must be a cron expression, a preset, a duration, a list of assets, \
                     or an `all`/`any` condition; found {}",
                    node.describe()
                ),
            );
            None
        }
    }
}

fn read_items(items: &[Node], label: &str, ctx: &mut Ctx) -> Option<Vec<AssetCondition>> {
    if items.is_empty() {
        ctx.error(
            None,
            format!("{label}: an empty list of assets never triggers a run"),
        );
        return None;
    }
    let read: Vec<Option<AssetCondition>> = items
        .iter()
        .map(|i| read_condition(i, label, ctx))
        .collect();
    read.into_iter().collect()
}

/// One asset: a string (name and URI) or a mapping of `name`, `uri`, `group`, `extra`.
pub(crate) fn read_asset(node: &Node, label: &str, ctx: &mut Ctx) -> Option<Asset> {
    let made = match &node.kind {
        NodeKind::Str(s) => Asset::new(Some(s), None),
        NodeKind::Map(entries) => {
            let prefix = format!("{label}: ");
            ctx.check_keys(entries, ASSET_KEYS, &prefix);
            let mut text = |key: &str| match get(entries, key) {
                Some(e) => ctx.string(&e.value, &prefix, key).map(Some),
                None => Some(None),
            };
            let name = text("name")?;
            let uri = text("uri")?;
            let group = text("group")?;
            let extra = match get(entries, "extra") {
                None => serde_json::Map::new(),
                Some(e) => match e.value.to_json(&mut |_, _| {}) {
                    serde_json::Value::Object(map) => map,
                    serde_json::Value::Null => serde_json::Map::new(),
                    _ => {
                        ctx.error(e.value.pos, format!("{prefix}`extra` must be a mapping"));
                        return None;
                    }
                },
            };
            Asset::new(name.as_deref(), uri.as_deref()).map(|mut a| {
                if let Some(group) = group.filter(|g| !g.is_empty()) {
                    a.group = group;
                }
                a.extra = extra;
                a
            })
        }
        _ => {
            ctx.error(
                node.pos,
                format!(
                    "{label}: an asset is a name or a mapping with `name`/`uri`, found {}",
                    node.describe()
                ),
            );
            return None;
        }
    };
    match made {
        Ok(asset) => Some(asset),
        Err(e) => {
            ctx.error(node.pos, format!("{label}: {e}"));
            None
        }
    }
}

/// A task's `outlets` or `inlets`: a list of assets.
pub(crate) fn read_asset_list(
    node: &Node,
    label: &str,
    key: &str,
    ctx: &mut Ctx,
) -> Option<Vec<Asset>> {
    let items: Vec<&Node> = match &node.kind {
        NodeKind::Null => return Some(Vec::new()),
        NodeKind::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    let what = format!("{label}`{key}`");
    let read: Vec<Option<Asset>> = items.iter().map(|i| read_asset(i, &what, ctx)).collect();
    read.into_iter().collect()
}
