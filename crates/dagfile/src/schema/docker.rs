//! `operator: docker` (Airflow's `DockerOperator`): the container under the task's `docker:`
//! key.

use std::collections::BTreeMap;

use updraft_model::docker::MOUNT_TYPES;
use updraft_model::{AutoRemove, DockerCommand, DockerMount, DockerRun, Operator};

use super::value::{get, Ctx};
use crate::diagnostic::Pos;
use crate::document::{Entry, Node, NodeKind};

/// The keys of `docker:`.
const DOCKER_KEYS: &[&str] = &[
    "image",
    "command",
    "environment",
    "mounts",
    "working_dir",
    "user",
    "network_mode",
    "auto_remove",
    "mem_limit",
    "cpus",
    "docker_url",
    "privileged",
];

/// The keys of one of `docker.mounts`.
const MOUNT_KEYS: &[&str] = &["source", "target", "type", "read_only"];

/// Reads `docker:` of a task with `operator: docker`.
pub(super) fn read_docker(
    entries: &[Entry],
    operator_pos: Option<Pos>,
    label: &str,
    ctx: &mut Ctx,
) -> Option<Operator> {
    let Some(docker) = get(entries, "docker") else {
        ctx.error(
            operator_pos,
            format!("{label}operator `docker` needs `docker:` (with at least `image`)"),
        );
        return None;
    };
    let fields = ctx.map(&docker.value, label, "docker")?;
    ctx.check_keys(fields, DOCKER_KEYS, &format!("{label}docker: "));
    let Some(image) = get(fields, "image") else {
        ctx.error(docker.key_pos, format!("{label}`docker:` needs `image`"));
        return None;
    };
    let image = ctx.text(&image.value, label, "docker.image")?;
    let text = |ctx: &mut Ctx, key: &str| match get(fields, key) {
        Some(e) => ctx.opt_string(&e.value, label, &format!("docker.{key}")),
        None => Some(None),
    };
    let command = match get(fields, "command") {
        None => None,
        Some(e) => match &e.value.kind {
            NodeKind::Null => None,
            NodeKind::Seq(items) => {
                let mut args = Vec::with_capacity(items.len());
                for item in items {
                    args.push(ctx.scalar_text(item, label, "docker.command")?);
                }
                Some(DockerCommand::Args(args))
            }
            _ => Some(DockerCommand::Line(ctx.string(
                &e.value,
                label,
                "docker.command",
            )?)),
        },
    };
    let environment = match get(fields, "environment") {
        None => BTreeMap::new(),
        Some(e) => {
            let pairs = ctx.map(&e.value, label, "docker.environment")?;
            let mut map = BTreeMap::new();
            for pair in pairs {
                let key = format!("docker.environment.{}", pair.key);
                map.insert(pair.key.clone(), ctx.scalar_text(&pair.value, label, &key)?);
            }
            map
        }
    };
    let mounts = match get(fields, "mounts") {
        None => Vec::new(),
        Some(e) => match &e.value.kind {
            NodeKind::Null => Vec::new(),
            NodeKind::Seq(items) => {
                let mut mounts = Vec::with_capacity(items.len());
                for item in items {
                    mounts.push(read_mount(item, label, ctx)?);
                }
                mounts
            }
            _ => {
                ctx.error(
                    e.value.pos,
                    format!("{label}`docker.mounts` must be a list of mounts"),
                );
                return None;
            }
        },
    };
    let auto_remove = match get(fields, "auto_remove") {
        None => AutoRemove::Never,
        Some(e) => {
            let written = match &e.value.kind {
                NodeKind::Bool(b) => b.to_string(),
                _ => ctx.string(&e.value, label, "docker.auto_remove")?,
            };
            let Some(value) = AutoRemove::parse(&written) else {
                ctx.error(
                    e.value.pos,
                    format!(
                        "{label}`docker.auto_remove` must be one of {}, found `{written}`",
                        AutoRemove::NAMES.join(", ")
                    ),
                );
                return None;
            };
            value
        }
    };
    let mem_limit = match get(fields, "mem_limit") {
        None => None,
        Some(e) => Some(mem_limit(&e.value, label, ctx)?),
    };
    let cpus = match get(fields, "cpus") {
        None => None,
        Some(e) => match e.value.kind {
            NodeKind::Int(i) if i > 0 => Some(i.to_string()),
            NodeKind::Float(f) if f > 0.0 && f.is_finite() => Some(f.to_string()),
            NodeKind::Null => None,
            _ => {
                ctx.error(
                    e.value.pos,
                    format!("{label}`docker.cpus` must be a number above 0 (CPU shares ÷ 1024)"),
                );
                return None;
            }
        },
    };
    let privileged = match get(fields, "privileged") {
        Some(e) => ctx.bool(&e.value, label, "docker.privileged")?,
        None => false,
    };
    Some(Operator::Docker(Box::new(DockerRun {
        image,
        command,
        environment,
        mounts,
        working_dir: text(ctx, "working_dir")?,
        user: text(ctx, "user")?,
        network_mode: text(ctx, "network_mode")?,
        auto_remove,
        mem_limit,
        cpus,
        docker_url: text(ctx, "docker_url")?,
        privileged,
    })))
}

fn read_mount(node: &Node, label: &str, ctx: &mut Ctx) -> Option<DockerMount> {
    let fields = ctx.map(node, label, "docker.mounts")?;
    ctx.check_keys(fields, MOUNT_KEYS, &format!("{label}docker.mounts: "));
    let Some(target) = get(fields, "target") else {
        ctx.error(node.pos, format!("{label}a mount needs `target`"));
        return None;
    };
    let target = ctx.text(&target.value, label, "docker.mounts.target")?;
    let source = match get(fields, "source") {
        Some(e) => ctx.opt_string(&e.value, label, "docker.mounts.source")?,
        None => None,
    };
    let r#type = match get(fields, "type") {
        Some(e) => {
            let t = ctx.string(&e.value, label, "docker.mounts.type")?;
            if !MOUNT_TYPES.contains(&t.as_str()) {
                ctx.error(
                    e.value.pos,
                    format!(
                        "{label}unknown mount type `{t}`; allowed: {}",
                        MOUNT_TYPES.join(", ")
                    ),
                );
                return None;
            }
            t
        }
        None => "bind".to_owned(),
    };
    if r#type != "tmpfs" && source.as_deref().is_none_or(str::is_empty) {
        ctx.error(
            node.pos,
            format!("{label}a `{}` mount needs `source`", r#type),
        );
        return None;
    }
    let read_only = match get(fields, "read_only") {
        Some(e) => ctx.bool(&e.value, label, "docker.mounts.read_only")?,
        None => false,
    };
    Some(DockerMount {
        source,
        target,
        r#type,
        read_only,
    })
}

/// Bytes, or a number with Docker's units (`b`, `k`, `m`, `g`).
fn mem_limit(node: &Node, label: &str, ctx: &mut Ctx) -> Option<String> {
    let written = match &node.kind {
        NodeKind::Int(i) if *i > 0 => return Some(i.to_string()),
        NodeKind::Float(f) if *f >= 1.0 && f.is_finite() => {
            return Some((f.trunc() as u64).to_string())
        }
        NodeKind::Str(s) => s.trim().to_ascii_lowercase(),
        _ => String::new(),
    };
    let digits = written.trim_end_matches(['b', 'k', 'm', 'g']);
    let unit_len = written.len() - digits.len();
    if unit_len <= 1 && !digits.is_empty() && digits.parse::<f64>().is_ok_and(|n| n > 0.0) {
        return Some(written);
    }
    ctx.error(
        node.pos,
        format!(
            "{label}`docker.mem_limit` must be bytes or a number with a unit (512m, 1g), found {}",
            node.describe()
        ),
    );
    None
}
