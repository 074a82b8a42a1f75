//! Running Python DAG files: `python3 -m updraft._parse FILE` per file, in its own process
//! group, at most `parse_concurrency` at once, each killed (the whole group) when it runs
//! past `parse_timeout`, and with its address space limited to `parse_memory_limit`.
//!
//! The child writes one JSON object on stdout (see `docs/python-protocol.md`); anything else
//! — a non-zero exit, a signal, a timeout, output that is not that object — becomes an
//! import error that says what happened, with the end of the child's stderr.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use updraft_dagfile::{PythonAnswer, PythonParser};

use crate::PythonConfig;

/// The most of a child's stdout that is read (the DAG documents).
const MAX_ANSWER: u64 = 64 << 20;
/// How much of the end of a child's stderr an import error quotes.
const STDERR_TAIL: usize = 4000;

/// Runs DAG files in child interpreters with the SDK on their path.
#[derive(Debug, Clone)]
pub struct ParseChildren {
    config: PythonConfig,
    sdk_dir: PathBuf,
}

/// The child's answer, as the protocol writes it.
#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    dags: Vec<serde_json::Value>,
    #[serde(default)]
    imports: Vec<PathBuf>,
    #[serde(default)]
    error: Option<RaisedError>,
}

#[derive(Debug, Deserialize)]
struct RaisedError {
    message: String,
    #[serde(default)]
    file: Option<PathBuf>,
    #[serde(default)]
    line: Option<u64>,
    #[serde(default)]
    traceback: Option<String>,
}

/// How a child ended, with what it wrote.
struct Ended {
    status: std::io::Result<std::process::ExitStatus>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl ParseChildren {
    /// `sdk_dir`: the extracted SDK (see [`crate::sdk::extract`]).
    pub fn new(config: PythonConfig, sdk_dir: PathBuf) -> Self {
        ParseChildren { config, sdk_dir }
    }

    /// Runs one file to its answer or its import error.
    pub fn parse_one(&self, folder: &Path, file: &Path) -> PythonAnswer {
        let failed = |message: String| PythonAnswer {
            dags: Err(message),
            imports: Vec::new(),
            settled: false,
        };
        let mut command = Command::new(&self.config.interpreter);
        command
            .arg("-m")
            .arg("updraft._parse")
            .arg(file)
            .env(
                "PYTHONPATH",
                crate::python_path(&[self.sdk_dir.as_path(), folder]),
            )
            // Bytecode goes next to the SDK, not into the DAG folder (where it would be
            // noticed as a change).
            .env("PYTHONPYCACHEPREFIX", self.sdk_dir.join("__pycache__"))
            .current_dir(folder)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if let Some(limit) = self.config.parse_memory_limit {
            let limit = limit as libc::rlim_t;
            // SAFETY: only setrlimit, which is async-signal-safe, runs between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    let rlimit = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_AS, &rlimit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                return failed(format!(
                    "cannot start the Python interpreter `{}` (core.python): {e}",
                    self.config.interpreter
                ))
            }
        };
        let pid = child.id() as libc::pid_t;
        let (tx, rx) = mpsc::channel();
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        std::thread::spawn(move || {
            let err_reader = std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(err) = stderr.as_mut() {
                    let _ = err.take(MAX_ANSWER).read_to_end(&mut buf);
                }
                buf
            });
            let mut out = Vec::new();
            if let Some(s) = stdout.as_mut() {
                let _ = s.take(MAX_ANSWER).read_to_end(&mut out);
            }
            let err = err_reader.join().unwrap_or_default();
            let status = child.wait();
            let _ = tx.send(Ended {
                status,
                stdout: out,
                stderr: err,
            });
        });
        let timeout = self.config.parse_timeout;
        let ended = match rx.recv_timeout(timeout) {
            Ok(ended) => ended,
            Err(_) => {
                // SAFETY: plain syscall; the group is the child's own (process_group(0)),
                // and its leader is not reaped yet, so the id is still ours.
                unsafe {
                    libc::killpg(pid, libc::SIGKILL);
                }
                let tail = rx
                    .recv_timeout(Duration::from_secs(5))
                    .map(|ended| stderr_tail(&ended.stderr))
                    .unwrap_or_default();
                return failed(format!(
                    "parsing the file took longer than {}s (dag_processor.dag_file_processor_timeout); \
                     its process was killed{tail}",
                    timeout.as_secs_f64()
                ));
            }
        };
        self.answer(file, ended)
    }

    fn answer(&self, file: &Path, ended: Ended) -> PythonAnswer {
        let tail = stderr_tail(&ended.stderr);
        let failed = |message: String| PythonAnswer {
            dags: Err(message),
            imports: Vec::new(),
            settled: false,
        };
        let status = match ended.status {
            Ok(status) => status,
            Err(e) => return failed(format!("lost track of the Python process: {e}")),
        };
        if let Some(signal) = status.signal() {
            let memory = match self.config.parse_memory_limit {
                Some(limit) => format!(" (its memory limit is {} MiB)", limit >> 20),
                None => String::new(),
            };
            return failed(format!(
                "the Python process parsing the file was killed by signal {signal}{memory}{tail}"
            ));
        }
        if !status.success() {
            let code = status.code().unwrap_or(-1);
            return failed(format!(
                "the Python process parsing the file exited with code {code}{tail}"
            ));
        }
        let answer: Answer = match serde_json::from_slice(&ended.stdout) {
            Ok(answer) => answer,
            Err(e) => {
                return failed(format!(
                    "the Python process parsing the file gave no valid answer ({e}){tail}"
                ))
            }
        };
        let dags = match answer.error {
            None => Ok(answer.dags),
            Some(error) => Err(raised(file, error)),
        };
        PythonAnswer {
            dags,
            imports: answer.imports,
            settled: true,
        }
    }
}

/// An exception's import-error text: where (the line, and the file when it is not the DAG
/// file itself), what, and the traceback.
fn raised(file: &Path, error: RaisedError) -> String {
    let mut text = String::new();
    match (&error.file, error.line) {
        (Some(at), Some(line)) if at != file => {
            text.push_str(&format!("{}, line {line}: ", at.display()))
        }
        (Some(at), None) if at != file => text.push_str(&format!("{}: ", at.display())),
        (_, Some(line)) => text.push_str(&format!("line {line}: ")),
        _ => {}
    }
    text.push_str(&error.message);
    if let Some(traceback) = error.traceback.filter(|t| !t.trim().is_empty()) {
        text.push_str("\n\n");
        text.push_str(traceback.trim_end());
    }
    text
}

/// `"; it wrote:\n<the end of stderr>"`, or nothing when it wrote nothing.
fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim_end();
    if text.is_empty() {
        return String::new();
    }
    let start = text
        .char_indices()
        .rev()
        .nth(STDERR_TAIL)
        .map_or(0, |(i, _)| i);
    format!("; it wrote:\n{}", &text[start..])
}

impl PythonParser for ParseChildren {
    fn salt(&self) -> String {
        format!(
            "sdk {} python {}",
            crate::sdk::content_hash(),
            self.config.interpreter
        )
    }

    fn parse(&self, folder: &Path, files: &[PathBuf]) -> Vec<PythonAnswer> {
        let next = AtomicUsize::new(0);
        let answers: Vec<Mutex<Option<PythonAnswer>>> =
            files.iter().map(|_| Mutex::new(None)).collect();
        let workers = self.config.parse_concurrency.clamp(1, files.len().max(1));
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = files.get(i) else { break };
                    let started = std::time::Instant::now();
                    let answer = self.parse_one(folder, file);
                    tracing::debug!(
                        file = %file.display(),
                        ms = started.elapsed().as_millis() as u64,
                        dags = answer.dags.as_ref().map_or(0, Vec::len),
                        ok = answer.dags.is_ok(),
                        "Python DAG file run"
                    );
                    if let Ok(mut slot) = answers[i].lock() {
                        *slot = Some(answer);
                    }
                });
            }
        });
        answers
            .into_iter()
            .map(|slot| {
                slot.into_inner().ok().flatten().unwrap_or(PythonAnswer {
                    dags: Err("the file's parse did not finish".to_string()),
                    imports: Vec::new(),
                    settled: false,
                })
            })
            .collect()
    }
}
