//! Starting task processes from one long-lived thread.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not only when the
//! process does. Tokio's blocking-pool threads retire after being idle, and runtime workers can
//! retire after `block_in_place`, so spawning from them would kill tasks at random. All spawns
//! therefore happen on one thread that lives as long as the process; it also takes the blocking
//! file-system calls (creating the log directory, opening the log) off the runtime threads.

use std::io;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::sync::OnceLock;

use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::output::TaskLog;

/// What is needed to start the process.
pub(super) struct Spec {
    pub command: String,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub log_path: PathBuf,
}

/// A running task: its log (header already written) and its process.
pub(super) struct Started {
    pub log: TaskLog,
    pub child: Child,
    pub pgid: Pid,
}

type Job = Box<dyn FnOnce() + Send>;

/// Opens the log and starts the process on the spawner thread. The error is a message for the
/// user; it has been written to the log when the log could be opened.
pub(super) async fn start(spec: Spec) -> Result<Started, String> {
    let handle = Handle::try_current()
        .map_err(|e| format!("run_task must be called inside a tokio runtime: {e}"))?;
    let (reply, answer) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _runtime = handle.enter();
        // The receiver only goes away when run_task was dropped; the child is then dropped
        // with the reply, and nothing else needs doing.
        let _ = reply.send(start_now(spec));
    });
    let inline = match spawner() {
        Some(spawner) => spawner.send(job).err().map(|mpsc::SendError(job)| job),
        None => Some(job),
    };
    if let Some(job) = inline {
        job();
    }
    answer
        .await
        .unwrap_or_else(|_| Err("the spawner thread stopped".to_owned()))
}

/// The spawner thread, started on first use; `None` if it could not be created (then spawns
/// happen on the calling thread, which is correct as long as that thread outlives the task).
fn spawner() -> Option<&'static mpsc::Sender<Job>> {
    static SPAWNER: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();
    SPAWNER
        .get_or_init(|| {
            let (sender, jobs) = mpsc::channel::<Job>();
            let thread = std::thread::Builder::new()
                .name("updraft-spawner".to_owned())
                .spawn(move || {
                    for job in jobs {
                        job();
                    }
                });
            match thread {
                Ok(_) => Some(sender),
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the task spawner thread; spawning inline");
                    None
                }
            }
        })
        .as_ref()
}

fn start_now(spec: Spec) -> Result<Started, String> {
    let mut log = TaskLog::open(&spec.log_path).map_err(|e| {
        format!(
            "cannot open log file {}: {e}",
            spec.log_path.to_string_lossy()
        )
    })?;
    log.header(&spec.command);
    let spawned = command(&spec).spawn();
    let result = match spawned {
        Ok(child) => match child.id() {
            Some(pid) => match i32::try_from(pid) {
                Ok(pid) => Ok(Started {
                    log,
                    child,
                    pgid: Pid::from_raw(pid),
                }),
                Err(_) => Err((log, format!("process id {pid} out of range"))),
            },
            None => Err((
                log,
                "the task process vanished right after it started".to_owned(),
            )),
        },
        Err(e) => Err((log, spawn_error(&spec, &e))),
    };
    match result {
        Ok(mut started) => {
            started.log.flush();
            Ok(started)
        }
        Err((mut log, message)) => {
            log.updraft(format_args!("could not start the task: {message}"));
            log.finish();
            Err(message)
        }
    }
}

/// `bash` resolved once on the worker's `PATH`, so the child does not walk `PATH` on every
/// spawn; plain `bash` (resolved by the child) if it is not found.
fn bash() -> &'static Path {
    static BASH: OnceLock<PathBuf> = OnceLock::new();
    BASH.get_or_init(|| {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join("bash"))
            .find(|candidate| candidate.is_file())
            .unwrap_or_else(|| PathBuf::from("bash"))
    })
}

fn command(spec: &Spec) -> Command {
    let mut command = Command::new(bash());
    command
        .arg("-c")
        .arg(&spec.command)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(cwd) = &spec.cwd {
        command.current_dir(cwd);
    }
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec; it only makes the async-signal-safe
    // syscalls prctl and getppid and does not allocate.
    unsafe {
        command
            .as_std_mut()
            .pre_exec(move || die_with_parent(parent));
    }
    command
}

/// Runs in the forked child: ask for SIGKILL when the parent dies, then make sure it has not
/// died already (otherwise the child would have been re-parented and never get the signal).
fn die_with_parent(parent: u32) -> io::Result<()> {
    // SAFETY: plain syscalls without pointers.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: getppid cannot fail.
    let now = unsafe { libc::getppid() };
    if u32::try_from(now).ok() != Some(parent) {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(())
}

fn spawn_error(spec: &Spec, error: &io::Error) -> String {
    if let Some(cwd) = &spec.cwd {
        if !cwd.is_dir() {
            return format!(
                "working directory {} does not exist or is not a directory ({error})",
                cwd.to_string_lossy()
            );
        }
    }
    if error.kind() == io::ErrorKind::NotFound {
        return format!("bash not found on PATH ({error})");
    }
    format!("cannot start bash: {error}")
}
