//! Finding and killing task processes left behind by a worker that died.

use std::fs;

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::{getpgid, getpgrp, Pid};

use super::CLAIM_ID_ENV;

/// Kills (SIGKILL) every process whose environment carries `UPDRAFT_CLAIM_ID=<id>` for one of
/// `claim_ids`, found by scanning `/proc/*/environ`; a process that leads its own group (a task's
/// `bash`) has its whole group killed too. Returns how many matching processes were killed.
///
/// Used when a worker restarts after a crash, so no task of the dead worker keeps running
/// unobserved. Only processes whose environment this user may read are seen. Blocking (it reads
/// `/proc`); from async code call it through `spawn_blocking`.
pub fn kill_orphans(claim_ids: &[String]) -> usize {
    let wanted: Vec<Vec<u8>> = claim_ids
        .iter()
        .filter(|id| !id.is_empty())
        .map(|id| format!("{CLAIM_ID_ENV}={id}").into_bytes())
        .collect();
    if wanted.is_empty() {
        return 0;
    }
    let entries = match fs::read_dir("/proc") {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list /proc to look for orphaned task processes");
            return 0;
        }
    };
    let me = std::process::id();
    let my_group = getpgrp();
    let mut killed = 0;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw_pid) = i32::try_from(pid) else {
            continue;
        };
        // Unreadable (another user's process, or gone already): not ours to kill.
        let Ok(environ) = fs::read(entry.path().join("environ")) else {
            continue;
        };
        let matches = environ
            .split(|&b| b == 0)
            .any(|var| wanted.iter().any(|w| w.as_slice() == var));
        if !matches {
            continue;
        }
        let pid = Pid::from_raw(raw_pid);
        match kill(pid, Signal::SIGKILL) {
            Ok(()) => {
                killed += 1;
                tracing::info!(pid = raw_pid, "killed orphaned task process");
            }
            Err(e) => {
                tracing::warn!(pid = raw_pid, error = %e, "cannot kill orphaned task process");
            }
        }
        if getpgid(Some(pid)) == Ok(pid) && pid != my_group {
            let _ = killpg(pid, Signal::SIGKILL);
        }
    }
    killed
}
