//! Running one task try as a process: `bash -c <command>` in its own process group, output
//! logged with timestamps, XCom from the last stdout line, timeout and cancellation that kill the
//! whole group. Knows nothing about the store; the caller maps a [`TaskOutcome`] to a state.
//!
//! What happens to the processes of a task:
//!
//! * The leader (`bash`, or for a command of plain words the program itself: see `direct`) is
//!   started in a fresh process group (by `posix_spawn`, not a fork of the worker: see
//!   `spawner`). With [`run_task_guarded`] the group is registered with the [`Reaper`] right
//!   after the spawn, and the reaper SIGKILLs it if the worker dies. What the
//!   reaper cannot see — processes that left the group (`setsid`), or a task whose worker died
//!   in the instant between spawn and registration — [`kill_orphans`] finds after a restart by
//!   the `UPDRAFT_CLAIM_ID` variable the caller put in [`TaskLaunch::env`].
//! * On timeout or cancellation the whole group gets `SIGTERM`; whatever is still alive after
//!   [`TaskLaunch::kill_grace`] gets `SIGKILL`.
//! * When the leader exits by itself nothing else is killed: a task that starts a daemon on
//!   purpose keeps it. Such a daemon usually still holds the output pipes; the worker reads them
//!   for [`OUTPUT_DRAIN`] after the leader exited and then stops capturing.
//! * If the future returned by [`run_task`] is dropped before the leader exited, the group is
//!   killed with `SIGKILL`, so no task runs unobserved.

mod container;
mod direct;
mod forkserver;
mod orphan;
mod output;
mod reaper;
mod spawner;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::sync::watch;

use crate::waiting::{after, cancelled};

pub use forkserver::{ForkError, ForkLaunch, ForkServer, Preload};
use output::{Pipes, Sink};
pub use reaper::{reaper_main, Reaper};

pub use container::{docker_cli, kill_containers, kill_orphan_containers};
pub use orphan::kill_orphans;

/// The environment variable that marks every process of a task with its claim id; the caller
/// sets it in [`TaskLaunch::env`] so that [`kill_orphans`] can find the processes after a crash.
pub const CLAIM_ID_ENV: &str = "UPDRAFT_CLAIM_ID";

/// The usual time between `SIGTERM` and `SIGKILL` when a task is stopped.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(5);

/// How long output is still read after the leader exited while some other process (a daemon
/// started by the task) keeps the pipes open.
pub const OUTPUT_DRAIN: Duration = Duration::from_millis(500);

/// The longest line written to a log; longer lines are split into pieces of this size.
pub const MAX_LOG_LINE: usize = 64 * 1024;

/// The longest XCom value captured from stdout; bytes beyond are dropped.
pub const MAX_XCOM: usize = 1024 * 1024;

/// Everything needed to run one task try.
#[derive(Debug, Clone)]
pub struct TaskLaunch {
    /// The rendered command, run as `bash -c <command>` (or as bash would run it).
    pub command: String,
    /// Added to the worker's own environment.
    pub env: Vec<(String, String)>,
    /// Working directory; `None` runs in the worker's working directory.
    pub cwd: Option<PathBuf>,
    /// Wall-clock limit for the whole try.
    pub timeout: Option<Duration>,
    /// Exit codes that mean "skipped" (Airflow's `skip_on_exit_code`, usually `[99]`).
    pub skip_exit_codes: Vec<i32>,
    /// The log file; parent directories are created, the file is appended to.
    pub log_path: PathBuf,
    /// Whether the last non-empty stdout line becomes the XCom return value.
    pub capture_xcom: bool,
    /// Time between `SIGTERM` and `SIGKILL` to the process group on timeout or cancellation.
    pub kill_grace: Duration,
    /// Start a command of plain words without bash when bash would only have started it
    /// (see `process/direct.rs`); `false` always runs `bash -c`.
    pub direct_exec: bool,
    /// Secrets the task's templates used (connection passwords, values of variables with
    /// secret names), written as `***` in its log; `None` when there are none.
    pub mask: Option<updraft_secrets::Masker>,
    /// Have this fork server start the process when the command would start its interpreter
    /// (a Python try), with the same environment and directory; it is spawned when the server
    /// cannot.
    pub fork_server: Option<ForkLaunch>,
}

/// How a task try ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskOutcome {
    /// Exit code 0; `xcom` is the last non-empty stdout line when it was asked for.
    Success { xcom: Option<String> },
    /// The exit code was one of [`TaskLaunch::skip_exit_codes`].
    Skipped { exit_code: i32 },
    /// Anything else.
    Failed { reason: FailureReason },
}

/// Why a task try failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailureReason {
    /// The command exited with a non-zero code that is not a skip code.
    #[error("exited with code {0}")]
    ExitCode(i32),
    /// `bash` itself was killed by this signal (not by updraft).
    #[error("killed by signal {0} ({name})", name = signal_name(*.0))]
    Signal(i32),
    /// The timeout elapsed; the process group was killed.
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
    /// The try was cancelled; the process group was killed.
    #[error("cancelled")]
    Killed,
    /// The process could not be started (or its log file could not be opened).
    #[error("could not start the task: {0}")]
    SpawnError(String),
    /// How the process ended is not known: waiting for it failed, or the fork server that
    /// started it died first (taking it along). Not the task's doing.
    #[error("lost track of the task process: {0}")]
    Lost(String),
}

/// Where a try's log goes (shared with its readers, so it lives in the store crate).
pub use updraft_store::log_path;

/// Runs one task try to its end and reports how it ended. Cancellation: set the watch value to
/// `true`; a dropped sender never cancels (pass `watch::channel(false).1` for "no cancel"). A
/// try whose value is already `true` is not started at all.
///
/// Must be called inside a tokio runtime with IO and time enabled.
pub async fn run_task(launch: TaskLaunch, cancel: watch::Receiver<bool>) -> TaskOutcome {
    run_task_guarded(launch, cancel, None).await
}

/// [`run_task`], with the task's process group registered with `reaper` while it runs, so the
/// group is killed if this process dies.
pub async fn run_task_guarded(
    launch: TaskLaunch,
    mut cancel: watch::Receiver<bool>,
    reaper: Option<&Reaper>,
) -> TaskOutcome {
    let TaskLaunch {
        command,
        env,
        cwd,
        timeout,
        skip_exit_codes,
        log_path,
        capture_xcom,
        kill_grace,
        direct_exec,
        mask,
        fork_server,
    } = launch;
    if *cancel.borrow() {
        // Cancelled before it started: nothing ran, so there is nothing to log or kill.
        return TaskOutcome::Failed {
            reason: FailureReason::Killed,
        };
    }
    let spec = spawner::Spec {
        command,
        env,
        cwd,
        log_path,
        direct_exec,
        mask,
        fork_server,
    };
    let started = match spawner::start(spec, reaper).await {
        Ok(started) => started,
        Err(message) => {
            return TaskOutcome::Failed {
                reason: FailureReason::SpawnError(message),
            }
        }
    };
    // `_registration` is dropped after `group`: the group leaves the reaper's list only once
    // `GroupGuard` has killed it (when the future is dropped early).
    let spawner::Started {
        log,
        mut leader,
        stdout,
        stderr,
        pgid,
        registration: _registration,
    } = started;
    let mut group = GroupGuard {
        pgid,
        leader_reaped: false,
    };
    let mut pipes = Pipes::new(stdout, stderr);
    let mut sink = Sink::new(log, capture_xcom);

    let wait = leader.wait();
    tokio::pin!(wait);
    let first = pipes
        .pump(&mut sink, async {
            tokio::select! {
                biased;
                status = &mut wait => Event::Exited(status),
                () = cancelled(&mut cancel) => Event::Cancelled,
                () = after(timeout) => Event::TimedOut,
            }
        })
        .await;

    let (status, stopped) = match first {
        Event::Exited(status) => (status, None),
        Event::Cancelled | Event::TimedOut => {
            let why = match (&first, timeout) {
                (Event::TimedOut, Some(limit)) => Stop::TimedOut(limit),
                _ => Stop::Cancelled,
            };
            sink.log.updraft(format_args!(
                "{}, sending SIGTERM to process group {pgid}",
                why.describe()
            ));
            signal_group(pgid, Signal::SIGTERM);
            let grace_end = Instant::now() + kill_grace;
            let status = match pipes
                .pump(&mut sink, tokio::time::timeout(kill_grace, &mut wait))
                .await
            {
                Ok(status) => {
                    group.leader_reaped = true;
                    let left = grace_end.saturating_duration_since(Instant::now());
                    if !group_gone(pgid, left).await {
                        sink.log.updraft(format_args!(
                            "process group {pgid} still running {kill_grace:?} after SIGTERM, sending SIGKILL"
                        ));
                        signal_group(pgid, Signal::SIGKILL);
                    }
                    status
                }
                Err(_elapsed) => {
                    sink.log.updraft(format_args!(
                        "process group {pgid} still running {kill_grace:?} after SIGTERM, sending SIGKILL"
                    ));
                    signal_group(pgid, Signal::SIGKILL);
                    pipes.pump(&mut sink, &mut wait).await
                }
            };
            (status, Some(why))
        }
    };
    group.leader_reaped = true;

    if !pipes.drain(&mut sink, OUTPUT_DRAIN).await {
        sink.log.updraft(format_args!(
            "output still open {OUTPUT_DRAIN:?} after the task exited (a background process holds it); no longer captured"
        ));
    }

    let outcome = match (status, stopped) {
        (Err(e), _) => {
            sink.log
                .updraft(format_args!("lost track of the task process: {e}"));
            TaskOutcome::Failed {
                reason: FailureReason::Lost(e.to_string()),
            }
        }
        (Ok(_), Some(why)) => {
            sink.log
                .updraft(format_args!("{}, killed process group", why.describe()));
            TaskOutcome::Failed {
                reason: why.reason(),
            }
        }
        (Ok(status), None) => exit_outcome(status, &skip_exit_codes, &mut sink),
    };
    sink.log.finish();
    outcome
}

enum Event {
    Exited(std::io::Result<ExitStatus>),
    Cancelled,
    TimedOut,
}

enum Stop {
    TimedOut(Duration),
    Cancelled,
}

impl Stop {
    fn describe(&self) -> String {
        match self {
            Stop::TimedOut(limit) => format!("timed out after {limit:?}"),
            Stop::Cancelled => "cancelled".to_owned(),
        }
    }

    fn reason(&self) -> FailureReason {
        match self {
            Stop::TimedOut(limit) => FailureReason::TimedOut(*limit),
            Stop::Cancelled => FailureReason::Killed,
        }
    }
}

/// Kills the group with `SIGKILL` if the future of [`run_task`] is dropped while the leader
/// runs. Once the leader is reaped its pid may be reused, so the guard is disarmed.
struct GroupGuard {
    pgid: Pid,
    leader_reaped: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if !self.leader_reaped {
            signal_group(self.pgid, Signal::SIGKILL);
        }
    }
}

fn exit_outcome(status: ExitStatus, skip_exit_codes: &[i32], sink: &mut Sink) -> TaskOutcome {
    if let Some(code) = status.code() {
        if code == 0 {
            sink.log.updraft("exited with code 0");
            TaskOutcome::Success {
                xcom: sink.take_xcom(),
            }
        } else if skip_exit_codes.contains(&code) {
            sink.log
                .updraft(format_args!("exited with code {code}, task skipped"));
            TaskOutcome::Skipped { exit_code: code }
        } else {
            sink.log.updraft(format_args!("exited with code {code}"));
            TaskOutcome::Failed {
                reason: FailureReason::ExitCode(code),
            }
        }
    } else {
        let signal = status.signal().unwrap_or_default();
        let reason = FailureReason::Signal(signal);
        sink.log.updraft(&reason);
        TaskOutcome::Failed { reason }
    }
}

/// Waits (up to `within`) until no process of the group is left. Only used after a kill, when
/// the leader is already gone; polls because Linux has no readiness event for a process group.
async fn group_gone(pgid: Pid, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if killpg(pgid, None) == Err(Errno::ESRCH) {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        tokio::time::sleep(left.min(Duration::from_millis(10))).await;
    }
}

fn signal_group(pgid: Pid, signal: Signal) {
    match killpg(pgid, signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => {
            tracing::warn!(pgid = pgid.as_raw(), %signal, error = %e, "cannot signal task process group")
        }
    }
}

fn signal_name(signal: i32) -> &'static str {
    Signal::try_from(signal).map_or("unknown", Signal::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_reasons_read_well() {
        assert_eq!(
            FailureReason::Signal(9).to_string(),
            "killed by signal 9 (SIGKILL)"
        );
        assert_eq!(
            FailureReason::TimedOut(Duration::from_secs(5)).to_string(),
            "timed out after 5s"
        );
    }
}
