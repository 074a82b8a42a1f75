//! Stopping the containers of Docker tasks. Killing the `docker run` process does not stop its
//! container (the daemon runs it), so every path that stops a task (timeout, cancel, a worker
//! that died) also asks the daemon to kill the container by its name.

use std::process::{Command, Stdio};

use updraft_model::docker::{container_name, CLAIM_LABEL};

/// The docker CLI, talking to `docker_url` (`DOCKER_HOST`) when one is given.
pub fn docker_cli(docker_url: Option<&str>) -> Command {
    let mut command = Command::new("docker");
    if let Some(url) = docker_url.filter(|u| !u.is_empty()) {
        command.env("DOCKER_HOST", url);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Kills the containers `names` (a container already stopped or gone is no error); blocking.
/// Returns whether the daemon was reached and did it.
pub fn kill_containers(names: &[String], docker_url: Option<&str>) -> bool {
    if names.is_empty() {
        return true;
    }
    // `rm -f` would also remove a container the task wanted kept; `kill` only stops it, and a
    // container started with `--rm` is removed by the daemon once stopped.
    match docker_cli(docker_url).arg("kill").args(names).output() {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            // "is not running" / "No such container": it stopped by itself already.
            let gone = stderr
                .lines()
                .all(|l| l.contains("is not running") || l.contains("No such container"));
            if !gone {
                tracing::warn!(containers = ?names, error = %stderr.trim(), "cannot kill task containers");
            }
            gone
        }
        Err(e) => {
            tracing::warn!(containers = ?names, error = %e, "cannot run docker to kill task containers");
            false
        }
    }
}

/// Kills the running containers of the tries with `claim_ids` (found by their label), after a
/// worker that ran them died; blocking. Returns how many were killed. Does nothing when no
/// docker CLI is installed. Only the daemon of the worker's own environment is asked.
pub fn kill_orphan_containers(claim_ids: &[String]) -> usize {
    if claim_ids.is_empty() || !docker_installed() {
        return 0;
    }
    let listed = docker_cli(None)
        .stdout(Stdio::piped())
        .args(["ps", "--filter", &format!("label={CLAIM_LABEL}")])
        .args(["--format", "{{.Names}}"])
        .output();
    let out = match listed {
        Ok(out) if out.status.success() => out,
        // No daemon running: no container can be running either.
        _ => return 0,
    };
    let wanted: Vec<String> = claim_ids.iter().map(|id| container_name(id)).collect();
    let running: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|name| wanted.iter().any(|w| w == name))
        .map(str::to_owned)
        .collect();
    if running.is_empty() {
        return 0;
    }
    tracing::info!(containers = ?running, "killing containers of orphaned Docker tasks");
    if kill_containers(&running, None) {
        running.len()
    } else {
        0
    }
}

fn docker_installed() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("docker").is_file()))
}
