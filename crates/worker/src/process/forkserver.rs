//! Starting Python tries through the SDK's fork server (`python3 -m updraft._forkserver`,
//! `docs/python-protocol.md`, "Fork server"): one interpreter that has imported the SDK once
//! forks a child per try, so a try does not pay the interpreter's start-up and the SDK's import.
//!
//! The server is started lazily, on the first try that asks for it, by a thread of its own that
//! then waits for it: the server sets `PR_SET_PDEATHSIG`, which fires when the *thread* that
//! started it ends, so that thread must live exactly as long as the server. The server holds a
//! pipe from the worker as its stdin and exits at its end-of-file, that is when the worker exits
//! or dies; its children die with it (their own `PR_SET_PDEATHSIG`), and what they started in
//! their process groups is the reaper's, as for any task.
//!
//! A server that died (killed, crashed) is noticed when its waiting thread reaps it, or when a
//! connection to it fails; that try is then started directly and the next one starts a new
//! server. A server that cannot be started at all is not tried again for [`START_BACKOFF`].

use std::io::{self, BufRead, BufReader, IoSlice};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader as AsyncBufReader, Interest};
use tokio::net::UnixStream;
use tokio::sync::{oneshot, Mutex};

/// How long a new server may take to import the SDK and listen (a loaded machine is slow).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long after a failed start tries are started directly without trying again.
const START_BACKOFF: Duration = Duration::from_secs(30);

/// The longest answer line read from the server.
const MAX_ANSWER: usize = 64 * 1024;

/// One interpreter's fork server, started on first use and again after it died.
#[derive(Debug)]
pub struct ForkServer {
    interpreter: PathBuf,
    /// Its own environment (the worker's, with the SDK on `PYTHONPATH`).
    env: Vec<(String, String)>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    running: Option<Arc<Running>>,
    failed_at: Option<Instant>,
}

/// A started server. Dropping it closes the server's stdin, which ends it.
#[derive(Debug)]
struct Running {
    pid: u32,
    socket: PathBuf,
    alive: Arc<AtomicBool>,
    _stdin: ChildStdin,
    _dir: tempfile::TempDir,
}

/// Why a try could not be forked; the caller starts it directly instead.
#[derive(Debug, thiserror::Error)]
pub enum ForkError {
    #[error("the fork server could not be started: {0}")]
    Start(String),
    #[error("the fork server did not start again yet after it failed to start")]
    BackingOff,
    #[error("the fork server is gone: {0}")]
    Gone(String),
    #[error("the fork server refused the request: {0}")]
    Refused(String),
}

/// A try's process, forked by the server: its pid (and process group), and the connection its
/// exit status arrives on.
pub(super) struct Forked {
    pub pid: Pid,
    pub server_pid: u32,
    answers: AsyncBufReader<UnixStream>,
}

/// What the child gets: its complete environment, working directory, and stdio; and the DAG
/// file to have it forked from a preloader of.
pub(super) struct Request<'a> {
    pub env: &'a [(String, String)],
    pub cwd: &'a Path,
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub preload: Option<&'a Preload>,
}

/// A try forked by a fork server.
#[derive(Debug, Clone)]
pub struct ForkLaunch {
    pub server: Arc<ForkServer>,
    /// Have the child forked by a preloader of this DAG file.
    pub preload: Option<Preload>,
}

/// The DAG file a try runs, which a preloader executes once for every try that runs it under
/// the same environment (docs/python-protocol.md, "Fork server"). The file must not change
/// while it is preloaded: a pinned DAG version's source, written once.
#[derive(Debug, Clone)]
pub struct Preload {
    pub dag_file: PathBuf,
    /// The variables that differ between tries (the try's identity, its supervisor socket, the
    /// task's own variables): the preloader executes the file without them.
    pub per_try_env: Vec<String>,
}

impl ForkServer {
    /// A server for `interpreter` (an absolute path: the tries it forks are those that would
    /// have started it), with the SDK at `sdk`. Nothing is started yet.
    pub fn new(interpreter: impl Into<PathBuf>, sdk: &Path) -> ForkServer {
        let python_path = std::env::join_paths(
            std::iter::once(sdk.to_path_buf()).chain(
                std::env::var_os("PYTHONPATH")
                    .iter()
                    .flat_map(std::env::split_paths),
            ),
        )
        .map(|joined| joined.to_string_lossy().into_owned())
        .unwrap_or_else(|_| sdk.display().to_string());
        ForkServer {
            interpreter: interpreter.into(),
            env: vec![
                ("PYTHONPATH".into(), python_path),
                ("PYTHONUNBUFFERED".into(), "1".into()),
                (
                    "PYTHONPYCACHEPREFIX".into(),
                    sdk.join("__pycache__").display().to_string(),
                ),
            ],
            state: Mutex::new(State::default()),
        }
    }

    /// The interpreter whose tries this server forks.
    pub fn interpreter(&self) -> &Path {
        &self.interpreter
    }

    /// Has the server fork a child with `request`'s environment, directory and stdio.
    pub(super) async fn fork(&self, request: Request<'_>) -> Result<Forked, ForkError> {
        let running = self.running().await?;
        match fork_on(&running, request).await {
            Ok(forked) => Ok(forked),
            Err(e @ ForkError::Gone(_)) => {
                // Killed between the check and the request: the next try starts a new one.
                running.alive.store(false, Ordering::SeqCst);
                let mut state = self.state.lock().await;
                if state
                    .running
                    .as_ref()
                    .is_some_and(|r| Arc::ptr_eq(r, &running))
                {
                    state.running = None;
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// The live server, started if there is none.
    async fn running(&self) -> Result<Arc<Running>, ForkError> {
        let mut state = self.state.lock().await;
        if let Some(running) = &state.running {
            if running.alive.load(Ordering::SeqCst) {
                return Ok(running.clone());
            }
            tracing::warn!(
                pid = running.pid,
                "the Python fork server died; starting a new one"
            );
            state.running = None;
        }
        if state
            .failed_at
            .is_some_and(|at| at.elapsed() < START_BACKOFF)
        {
            return Err(ForkError::BackingOff);
        }
        match self.start().await {
            Ok(running) => {
                tracing::info!(pid = running.pid, interpreter = %self.interpreter.display(), "Python fork server started");
                let running = Arc::new(running);
                state.running = Some(running.clone());
                state.failed_at = None;
                Ok(running)
            }
            Err(message) => {
                tracing::warn!(interpreter = %self.interpreter.display(), error = %message, "cannot start the Python fork server; Python tasks start directly");
                state.failed_at = Some(Instant::now());
                Err(ForkError::Start(message))
            }
        }
    }

    async fn start(&self) -> Result<Running, String> {
        let dir = tempfile::Builder::new()
            .prefix("updraft-fork-")
            .tempdir()
            .map_err(|e| format!("cannot create its directory: {e}"))?;
        let socket = dir.path().join("fork.sock");
        let mut command = Command::new(&self.interpreter);
        command
            .args(["-m", "updraft._forkserver"])
            .arg(&socket)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Out of the worker's group, so that a Ctrl-C to the worker's terminal does not
            // take the server (and every running try) down before the worker drains.
            .process_group(0);
        let (started_tx, started_rx) = oneshot::channel();
        let alive = Arc::new(AtomicBool::new(true));
        let alive_in_thread = alive.clone();
        std::thread::Builder::new()
            .name("updraft-forkserver".into())
            .spawn(move || own_server(command, started_tx, &alive_in_thread))
            .map_err(|e| format!("cannot start its thread: {e}"))?;
        match tokio::time::timeout(READY_TIMEOUT, started_rx).await {
            Ok(Ok(Ok((pid, stdin)))) => Ok(Running {
                pid,
                socket,
                alive,
                _stdin: stdin,
                _dir: dir,
            }),
            Ok(Ok(Err(message))) => Err(message),
            Ok(Err(_)) => Err("its thread ended without a word".into()),
            Err(_) => Err(format!("not ready within {READY_TIMEOUT:?}")),
        }
    }
}

/// The server's thread: starts it, reports `ready` (or why not), then reaps it. Dropping the
/// stdin it was handed (a timed-out start) ends the server.
fn own_server(
    mut command: Command,
    started: oneshot::Sender<Result<(u32, ChildStdin), String>>,
    alive: &AtomicBool,
) {
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let _ = started.send(Err(format!("cannot run it: {e}")));
            return;
        }
    };
    let pid = child.id();
    let ready = match (child.stdin.take(), child.stdout.take()) {
        (Some(stdin), Some(stdout)) => {
            let mut line = String::new();
            let mut stdout = BufReader::new(stdout);
            match stdout.read_line(&mut line) {
                Ok(_) if line.trim() == "ready" => Ok((stdin, stdout)),
                Ok(_) => Err(format!(
                    "it exited or said {:?} instead of ready",
                    line.trim()
                )),
                Err(e) => Err(format!("cannot read its output: {e}")),
            }
        }
        _ => Err("it has no stdin or stdout".to_owned()),
    };
    // Its stdout stays open (and unread: it says nothing after `ready`) until it exits.
    let _stdout = match ready {
        Ok((stdin, stdout)) => {
            if started.send(Ok((pid, stdin))).is_err() {
                // The start timed out meanwhile; the stdin just dropped ends the server.
                tracing::warn!(pid, "the Python fork server was ready too late");
            }
            Some(stdout)
        }
        Err(message) => {
            let _ = child.kill();
            let _ = started.send(Err(message));
            None
        }
    };
    let status = child.wait();
    alive.store(false, Ordering::SeqCst);
    tracing::debug!(pid, ?status, "the Python fork server exited");
}

async fn fork_on(running: &Running, request: Request<'_>) -> Result<Forked, ForkError> {
    let gone = |e: io::Error| ForkError::Gone(e.to_string());
    let stream = UnixStream::connect(&running.socket).await.map_err(gone)?;
    let env: serde_json::Map<String, Value> = request
        .env
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut message = serde_json::json!({
        "op": "fork",
        "cwd": request.cwd.to_string_lossy(),
    });
    if let Some(preload) = request.preload {
        let stable: serde_json::Map<String, Value> = env
            .iter()
            .filter(|(key, _)| !preload.per_try_env.contains(key))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        message["preload"] = serde_json::json!({
            "dag_file": preload.dag_file.to_string_lossy(),
            "env": stable,
        });
    }
    message["env"] = Value::Object(env);
    let mut line = message.to_string().into_bytes();
    line.push(b'\n');
    let fds = [
        request.stdin.as_raw_fd(),
        request.stdout.as_raw_fd(),
        request.stderr.as_raw_fd(),
    ];
    // The descriptors go with the first piece; the server reads the rest of a long line after.
    let mut sent = 0;
    while sent < line.len() {
        let piece = &line[sent..];
        let n = stream
            .async_io(Interest::WRITABLE, || {
                let rights = [ControlMessage::ScmRights(&fds)];
                let cmsgs: &[ControlMessage] = if sent == 0 { &rights } else { &[] };
                sendmsg::<()>(
                    stream.as_raw_fd(),
                    &[IoSlice::new(piece)],
                    cmsgs,
                    MsgFlags::MSG_NOSIGNAL,
                    None,
                )
                .map_err(io::Error::from)
            })
            .await
            .map_err(gone)?;
        sent += n;
    }
    // Ours are closed now: only the child holds the pipes' write ends, so the log sees their
    // end when the child (and whatever it started) is done.
    drop(request);
    let mut answers = AsyncBufReader::new(stream);
    let answer = read_answer(&mut answers)
        .await
        .map_err(|e| ForkError::Gone(e.to_string()))?
        .ok_or_else(|| ForkError::Gone("it closed the connection without an answer".into()))?;
    if answer.get("ok") != Some(&Value::Bool(true)) {
        let error = answer
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("no reason given");
        return Err(ForkError::Refused(error.to_owned()));
    }
    let pid = answer
        .get("pid")
        .and_then(Value::as_i64)
        .and_then(|pid| i32::try_from(pid).ok())
        .filter(|pid| *pid > 1)
        .ok_or_else(|| ForkError::Refused(format!("an answer without a usable pid: {answer}")))?;
    Ok(Forked {
        pid: Pid::from_raw(pid),
        server_pid: running.pid,
        answers,
    })
}

async fn read_answer(answers: &mut AsyncBufReader<UnixStream>) -> io::Result<Option<Value>> {
    use tokio::io::AsyncReadExt;
    let mut line = Vec::new();
    let n = (&mut *answers)
        .take(MAX_ANSWER as u64)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 || !line.ends_with(b"\n") {
        return Ok(None);
    }
    serde_json::from_slice(&line)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

impl Forked {
    /// Waits for the child's exit status, which the server sends when it reaped it. If the
    /// server dies first, the child died with it; what it started in its group is killed here,
    /// and the try ends as an error.
    pub(super) async fn wait(&mut self) -> io::Result<ExitStatus> {
        let answer = read_answer(&mut self.answers).await;
        let status = match &answer {
            Ok(Some(answer)) => {
                let number = |key: &str| {
                    answer
                        .get(key)
                        .and_then(Value::as_i64)
                        .and_then(|n| i32::try_from(n).ok())
                };
                match (number("exit_code"), number("signal")) {
                    (Some(code), _) => Some(ExitStatus::from_raw((code & 0xff) << 8)),
                    (None, Some(signal)) => Some(ExitStatus::from_raw(signal & 0x7f)),
                    (None, None) => None,
                }
            }
            _ => None,
        };
        match status {
            Some(status) => Ok(status),
            None => {
                let _ = killpg(self.pid, Signal::SIGKILL);
                Err(io::Error::other(match answer {
                    Ok(Some(other)) => format!("the fork server answered {other}"),
                    Ok(None) => format!(
                        "the fork server (pid {}) that started it ended first",
                        self.server_pid
                    ),
                    Err(e) => format!("cannot read from the fork server: {e}"),
                }))
            }
        }
    }
}
