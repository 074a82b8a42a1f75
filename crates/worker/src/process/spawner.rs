//! Starting a task's process cheaply.
//!
//! std creates the child with `posix_spawn` (glibc: `clone(CLONE_VM | CLONE_VFORK)`), which does
//! not copy the worker's address space, only as long as the command needs nothing that must run
//! between fork and exec. Forking instead costs the worker its page tables on every spawn and
//! copy-on-write faults afterwards, which with a large, multi-threaded worker is most of the CPU
//! of a short task. So the command below must keep to what the `posix_spawn` path supports:
//! stdio, environment, `current_dir` (glibc ≥ 2.29), `process_group`, and an absolute program
//! when the environment sets `PATH` — and never `pre_exec`, `uid`, `gid`, `groups` or a pidfd.
//!
//! The spawn runs on the calling runtime thread, like any `tokio::process` spawn: with `vfork`
//! semantics it blocks only until the child has called `exec`. No dedicated thread is needed:
//! nothing is tied to the spawning thread's lifetime (as `PR_SET_PDEATHSIG` was; crash safety
//! is the reaper's job now).
//!
//! A Python try may instead be forked by the fork server (`forkserver`), with the environment
//! and directory the direct start would give it; when the server cannot, the try is spawned.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;

use nix::fcntl::OFlag;
use nix::unistd::Pid;
use tokio::io::AsyncRead;
use tokio::process::{Child, Command};

use super::direct;
use super::forkserver::{ForkLaunch, Forked, Request};
use super::output::TaskLog;
use super::reaper::{Reaper, Registration};

/// What is needed to start the process.
pub(super) struct Spec {
    pub command: String,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub log_path: PathBuf,
    pub direct_exec: bool,
    pub mask: Option<updraft_secrets::Masker>,
    pub fork_server: Option<ForkLaunch>,
}

/// A pipe the task writes its output to.
pub(super) type Output = Box<dyn AsyncRead + Unpin + Send>;

/// A running task: its log (header already written), its process, its output, and its process
/// group's place on the reaper's list.
pub(super) struct Started<'r> {
    pub log: TaskLog,
    pub leader: Leader,
    pub stdout: Option<Output>,
    pub stderr: Option<Output>,
    pub pgid: Pid,
    pub registration: Option<Registration<'r>>,
}

/// The task's first process: a child of the worker, or of the fork server.
pub(super) enum Leader {
    Spawned(Child),
    Forked(Forked),
}

impl Leader {
    /// Waits for the leader's exit; cancel-safe.
    pub(super) async fn wait(&mut self) -> io::Result<ExitStatus> {
        match self {
            Leader::Spawned(child) => child.wait().await,
            Leader::Forked(forked) => forked.wait().await,
        }
    }
}

/// Opens the log, starts the process and registers its group with `reaper` at once. The error
/// is a message for the user; it has been written to the log when the log could be opened.
pub(super) async fn start<'r>(
    mut spec: Spec,
    reaper: Option<&'r Reaper>,
) -> Result<Started<'r>, String> {
    // tokio::process needs a runtime to watch the child; fail cleanly rather than panic.
    tokio::runtime::Handle::try_current()
        .map_err(|e| format!("run_task must be called inside a tokio runtime: {e}"))?;
    let mut log = TaskLog::open(&spec.log_path, spec.mask.take()).map_err(|e| {
        format!(
            "cannot open log file {}: {e}",
            spec.log_path.to_string_lossy()
        )
    })?;
    log.header(&spec.command);
    let failed = |mut log: TaskLog, message: String| {
        log.updraft(format_args!("could not start the task: {message}"));
        log.finish();
        Err(message)
    };
    let plan = || direct::plan(&spec.command, &spec.env, spec.cwd.as_deref());
    if let Some(launch) = spec.fork_server.take() {
        match fork(&launch, &spec, plan()).await {
            Ok(Some((forked, stdout, stderr))) => {
                let pgid = forked.pid;
                let server_pid = forked.server_pid;
                // Registered at once, as below; the server's own death takes the leader with
                // it, but not what the leader started in its group.
                let registration = reaper.map(|r| r.guard(pgid));
                log.updraft(format_args!(
                    "started process {pgid}: forked by the Python fork server (process {server_pid})"
                ));
                log.flush();
                return Ok(Started {
                    log,
                    leader: Leader::Forked(forked),
                    stdout: Some(stdout),
                    stderr: Some(stderr),
                    pgid,
                    registration,
                });
            }
            Ok(None) => {}
            Err(e) => {
                log.updraft(format_args!("{e}; starting the process directly"));
            }
        }
    }
    // A direct start that fails (a script without `#!`, say) is left to bash, which has its
    // own ways and messages for such programs.
    let direct = spec.direct_exec.then(plan).flatten().and_then(|direct| {
        let mut command = configure(Command::new(direct.program()), &spec);
        direct.apply(&mut command);
        let child = command.spawn().ok()?;
        Some((child, direct))
    });
    let (mut child, how) = match direct {
        Some((child, direct)) => (
            child,
            format!("{}, without a shell", direct.program().display()),
        ),
        None => {
            let mut command = configure(Command::new(bash()), &spec);
            match command.arg("-c").arg(&spec.command).spawn() {
                Ok(child) => (child, format!("{} -c", bash().display())),
                Err(e) => return failed(log, spawn_error(&spec, &e)),
            }
        }
    };
    // The leader leads its own group, so its pid is the group's id. It has not been waited
    // for, so the pid cannot be reused yet.
    let pid = child.id().and_then(|pid| i32::try_from(pid).ok());
    let Some(pgid) = pid.map(Pid::from_raw) else {
        // Cannot happen: a child not waited for has its id, and Linux pids fit an i32.
        return failed(log, format!("unusable process id {:?}", child.id()));
    };
    // Registered before anything else happens: from here on the reaper kills the group if this
    // process dies. What remains is the moment between the clone inside `spawn` and this
    // write; a task started then and orphaned by a crash is killed on restart by
    // `kill_orphans` (its environment carries the claim id).
    let registration = reaper.map(|r| r.guard(pgid));
    log.updraft(format_args!("started process {pgid}: {how}"));
    log.flush();
    let stdout = child.stdout.take().map(|out| Box::new(out) as Output);
    let stderr = child.stderr.take().map(|out| Box::new(out) as Output);
    Ok(Started {
        log,
        leader: Leader::Spawned(child),
        stdout,
        stderr,
        pgid,
        registration,
    })
}

/// Has the fork server start the try, with what the direct start would give it (`plan`:
/// `None` when only bash could start the command, which the server cannot do). `Ok(None)`:
/// the try is not for the server.
async fn fork(
    launch: &ForkLaunch,
    spec: &Spec,
    plan: Option<direct::Direct>,
) -> Result<Option<(Forked, Output, Output)>, String> {
    let server = &launch.server;
    let Some(plan) = plan.filter(|plan| plan.program() == server.interpreter()) else {
        return Ok(None);
    };
    let Some(env) = plan.environment(&spec.env) else {
        return Ok(None);
    };
    let pipe =
        || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("cannot create a pipe: {e}"));
    let (stdout_read, stdout_write) = pipe()?;
    let (stderr_read, stderr_write) = pipe()?;
    let stdin = std::fs::File::open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| format!("cannot open /dev/null: {e}"))?;
    let receiver = |fd: OwnedFd| {
        tokio::net::unix::pipe::Receiver::from_owned_fd(fd)
            .map(|pipe| Box::new(pipe) as Output)
            .map_err(|e| format!("cannot read a pipe: {e}"))
    };
    let stdout = receiver(stdout_read)?;
    let stderr = receiver(stderr_read)?;
    let request = Request {
        env: &env,
        cwd: plan.pwd(),
        stdin,
        stdout: stdout_write,
        stderr: stderr_write,
        preload: launch.preload.as_ref(),
    };
    let forked = server.fork(request).await.map_err(|e| e.to_string())?;
    Ok(Some((forked, stdout, stderr)))
}

/// `bash` resolved once on the worker's `PATH`. The child does not walk `PATH` on every spawn,
/// and an absolute program keeps std on its `posix_spawn` path even when the task's environment
/// sets `PATH`. Plain `bash` (resolved by the child) if it is not found.
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

/// What every start shares; see the module documentation for what must not be added here.
fn configure(mut command: Command, spec: &Spec) -> Command {
    command
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(cwd) = &spec.cwd {
        command.current_dir(cwd);
    }
    command
}

/// A message for the user. `posix_spawn` reports a failed `chdir` in the child only as its
/// errno (usually `ENOENT`, the same as a missing program), so a bad working directory is
/// recognised by looking at it.
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
