//! A Docker task (Airflow's `DockerOperator` of the `docker` provider): one container run from
//! an image; its output is the task's log, its exit code the task's outcome.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a Docker task runs and how. `image`, `command` and `environment`'s values are
/// templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerRun {
    pub image: String,
    /// The image's default command when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<DockerCommand>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<DockerMount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    #[serde(default, skip_serializing_if = "AutoRemove::is_never")]
    pub auto_remove: AutoRemove,
    /// Docker's memory limit: bytes, or a number with a unit (`512m`, `1g`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_limit: Option<String>,
    /// Airflow's `cpus`: a relative CPU weight, `cpus × 1024` CPU shares (1.0 is Docker's
    /// default); kept as its written decimal so the model stays `Eq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    /// The daemon to talk to (`DOCKER_HOST`); the docker CLI's default when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_url: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
}

/// A container's command: words as they are, or a string split as a shell splits words (as
/// Airflow's docker client does), never run by a shell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DockerCommand {
    Line(String),
    Args(Vec<String>),
}

/// One mount of the container (Docker's `--mount`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerMount {
    /// A host path (`bind`) or a volume name (`volume`); none for `tmpfs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub target: String,
    #[serde(default = "default_mount_type")]
    pub r#type: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

/// The mount types Docker knows.
pub const MOUNT_TYPES: [&str; 3] = ["bind", "volume", "tmpfs"];

fn default_mount_type() -> String {
    "bind".to_owned()
}

/// When the stopped container is removed (Airflow's `auto_remove`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoRemove {
    /// Kept (Airflow's default).
    #[default]
    Never,
    /// Removed when the task succeeded.
    Success,
    /// Always removed.
    Force,
}

impl AutoRemove {
    pub const NAMES: [&'static str; 3] = ["never", "success", "force"];

    fn is_never(&self) -> bool {
        *self == AutoRemove::Never
    }

    /// `true`/`false` as older Airflow versions wrote it: `force`/`never`.
    pub fn parse(text: &str) -> Option<AutoRemove> {
        match text {
            "never" | "false" | "False" => Some(AutoRemove::Never),
            "success" => Some(AutoRemove::Success),
            "force" | "true" | "True" => Some(AutoRemove::Force),
            _ => None,
        }
    }
}

/// The prefix of the container name of a try: `updraft-<claim id>`, so a kill and the clean-up
/// after a crashed worker find it.
pub const CONTAINER_PREFIX: &str = "updraft-";

/// The label every container of a try carries, its value the claim id.
pub const CLAIM_LABEL: &str = "updraft.claim_id";

impl DockerRun {
    /// `image command…`, as a task's command is shown.
    pub fn summary(&self) -> String {
        match &self.command {
            None => self.image.clone(),
            Some(DockerCommand::Line(line)) => format!("{} {line}", self.image),
            Some(DockerCommand::Args(args)) => format!("{} {}", self.image, args.join(" ")),
        }
    }
}

/// The name of the container of the try with `claim_id`: Docker allows only
/// `[a-zA-Z0-9_.-]` in names, so any other character of the id is written `_`.
pub fn container_name(claim_id: &str) -> String {
    let id: String = claim_id
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '.' | '-' => c,
            _ => '_',
        })
        .collect();
    format!("{CONTAINER_PREFIX}{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_needs_only_an_image_and_reads_its_command_either_way() {
        let run: DockerRun = serde_json::from_value(serde_json::json!({
            "image": "busybox", "command": "echo hi",
            "mounts": [{"source": "/tmp", "target": "/data"}]
        }))
        .expect("a run");
        assert_eq!(run.command, Some(DockerCommand::Line("echo hi".into())));
        assert_eq!(run.auto_remove, AutoRemove::Never);
        assert_eq!(run.mounts[0].r#type, "bind");
        let args: DockerCommand =
            serde_json::from_value(serde_json::json!(["echo", "a b"])).expect("args");
        assert_eq!(args, DockerCommand::Args(vec!["echo".into(), "a b".into()]));
        assert_eq!(AutoRemove::parse("True"), Some(AutoRemove::Force));
        assert_eq!(container_name("1.1.vm:72:5"), "updraft-1.1.vm_72_5");
    }
}
