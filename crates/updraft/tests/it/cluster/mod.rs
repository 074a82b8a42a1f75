//! Cluster mode end to end: schedulers, API servers and remote workers as real `updraft`
//! processes on one fresh PostgreSQL database, killed and restarted while runs are in flight.
//!
//! [`Cluster`] owns the database, a home folder (`dags/` shared by every process, `cli/` for
//! the CLI, and one home and one log file per process under `procs/`), and starts the roles as
//! [`Proc`]s. Each process logs (stderr and stdout) to `procs/<name>.log`; failure messages
//! quote the tail of every log, and the home is kept on disk when a test fails.
//!
//! Every test skips (loudly) when PostgreSQL is unreachable, unless `CI` is set.

mod assets;
mod backfill;
mod chaos;
mod database_outage;
mod free_places;
mod mapping;
mod max_active_runs;
mod metrics;
mod notifications;
mod process;
mod proxy;
mod python_tasks;
mod queues;
mod retention;
mod rolling_restart;
mod run_checks;
mod run_dependencies;
mod sensors;
mod task_logs;
mod traces;
mod trigger_dagrun;
mod worker_loss;

pub use run_checks::*;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use updraft_store_postgres::testing::TestPostgres;

use process::Spec;
pub use process::{process_alive, Proc, Role};
pub use proxy::Proxy;

/// The token workers present to API servers.
const WORKER_TOKEN: &str = "cluster-test-worker-token";
/// Shared by every api-server of the cluster, as a deployment must (each has its own home).
const JWT_SECRET: &str = "cluster-test-jwt-secret-cluster-test-jwt-secret";

/// How long a CLI command may take before the test gives up on it.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// Lines of each process log quoted in a failure message.
const LOG_TAIL_LINES: usize = 40;

/// A fresh database, a home, and the processes of one cluster.
pub struct Cluster {
    /// `None` once kept on disk after a failure.
    root: Option<tempfile::TempDir>,
    root_path: PathBuf,
    db: TestPostgres,
    /// The database URL the cluster's processes use: the database's own, or the proxy's.
    process_db_url: String,
    proxy: Option<Proxy>,
    /// `UPDRAFT_LOG` of the processes.
    log_level: String,
    counters: [AtomicUsize; 3],
}

impl Cluster {
    /// A cluster on a fresh database; `None` (the test is skipped) when PostgreSQL is not
    /// reachable outside CI.
    pub fn new() -> Option<Cluster> {
        let db = TestPostgres::create_blocking()?;
        let root = tempfile::Builder::new()
            .prefix("updraft-cluster-")
            .tempdir()
            .expect("cannot create the cluster home");
        let root_path = root.path().to_path_buf();
        for dir in ["dags", "cli", "procs"] {
            std::fs::create_dir_all(root_path.join(dir))
                .unwrap_or_else(|e| panic!("cannot create {dir} in the cluster home: {e}"));
        }
        let process_db_url = db.url().to_string();
        let cluster = Cluster {
            root: Some(root),
            root_path,
            db,
            process_db_url,
            proxy: None,
            log_level: "debug".into(),
            counters: Default::default(),
        };
        cluster.ok(&["db", "migrate"]);
        Some(cluster)
    }

    /// Sets `UPDRAFT_LOG` of the processes started from now on.
    pub fn set_log_level(&mut self, level: &str) {
        self.log_level = level.into();
    }

    /// Puts a [`Proxy`] between PostgreSQL and the processes started from now on (the CLI of
    /// the test keeps connecting directly).
    pub fn use_proxy(&mut self) -> &Proxy {
        let (host_port, target) = server_of(self.db.url());
        let proxy = Proxy::start(target);
        self.process_db_url =
            self.db
                .url()
                .replacen(&host_port, &format!("127.0.0.1:{}", proxy.port()), 1);
        self.proxy.insert(proxy)
    }

    pub fn proxy(&self) -> &Proxy {
        self.proxy.as_ref().expect("use_proxy was not called")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root_path.join(name)
    }

    pub fn dags(&self) -> PathBuf {
        self.path("dags")
    }

    pub fn write_dag(&self, name: &str, text: &str) {
        let tmp = self.dags().join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap_or_else(|e| panic!("cannot write {name}: {e}"));
        std::fs::rename(&tmp, self.dags().join(name))
            .unwrap_or_else(|e| panic!("cannot move {name} in place: {e}"));
    }

    /// The binary with a clean environment: no inherited `UPDRAFT_*`, the DAG folder, the
    /// worker token and the short timings these tests rely on.
    fn base_command(&self, home: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_updraft"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("UPDRAFT_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("UPDRAFT_HOME", home)
            .env("UPDRAFT_CORE__DAGS_FOLDER", self.dags())
            .env("UPDRAFT_API__WORKER_TOKEN", WORKER_TOKEN)
            .env("UPDRAFT_API__JWT_SECRET", JWT_SECRET)
            .env("UPDRAFT_WORKER__LEASE", "3s")
            .env("UPDRAFT_WORKER__HEARTBEAT_INTERVAL", "1s")
            .env("UPDRAFT_SCHEDULER__LEASE", "3s")
            .env("UPDRAFT_SCHEDULER__SWEEP_INTERVAL", "1s")
            .stdin(Stdio::null());
        cmd
    }

    // ---- the CLI -------------------------------------------------------------------------

    /// Runs `updraft --database-url URL ARGS` (directly on the database, never through the
    /// proxy) to completion.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = self.base_command(&self.path("cli"));
        cmd.arg("--database-url").arg(self.db.url()).args(args);
        run_with_timeout(cmd, CLI_TIMEOUT)
            .unwrap_or_else(|| panic!("updraft {args:?} took longer than {CLI_TIMEOUT:?}"))
    }

    /// Runs `updraft ARGS`, expects success, and returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "updraft {args:?} failed ({}): {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `updraft ARGS --output json` and parses stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        let out = self.ok(&args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("updraft {args:?} printed no JSON ({e}): {out}"))
    }

    /// Triggers `dag_id` with the given run id.
    pub fn trigger(&self, dag_id: &str, run_id: &str) {
        let runs = self.json(&["dags", "trigger", dag_id, "--run-id", run_id]);
        assert_eq!(
            runs[0]["run_id"], run_id,
            "unexpected trigger output: {runs:#}"
        );
    }

    pub fn states(&self, dag_id: &str, run_id: &str) -> Value {
        self.json(&["tasks", "states-for-dag-run", dag_id, run_id])
    }

    /// `run_id → state` of every run of `dag_id`.
    pub fn run_states(&self, dag_id: &str) -> BTreeMap<String, String> {
        let runs = self.json(&["dags", "list-runs", dag_id]);
        runs.as_array()
            .unwrap_or_else(|| panic!("list-runs printed no array: {runs:#}"))
            .iter()
            .map(|run| {
                (
                    str_field(run, "run_id").to_string(),
                    str_field(run, "state").to_string(),
                )
            })
            .collect()
    }

    /// Waits until every run in `run_ids` has finished; panics listing the unfinished ones
    /// (with their task states) and the process logs after `timeout`.
    pub fn wait_for_runs(
        &self,
        dag_id: &str,
        run_ids: &[String],
        timeout: Duration,
    ) -> BTreeMap<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let states = self.run_states(dag_id);
            let unfinished: Vec<&String> = run_ids
                .iter()
                .filter(|run| {
                    !matches!(
                        states.get(*run).map(String::as_str),
                        Some("success" | "failed")
                    )
                })
                .collect();
            if unfinished.is_empty() {
                return states;
            }
            if Instant::now() > deadline {
                let details: Vec<String> = unfinished
                    .iter()
                    .take(3)
                    .map(|run| format!("{:#}", self.states(dag_id, run)))
                    .collect();
                panic!(
                    "{} of {} runs of {dag_id} did not finish within {timeout:?}: {unfinished:?}\n\
                     states of the first ones:\n{}\n{}",
                    unfinished.len(),
                    run_ids.len(),
                    details.join("\n"),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits until `jobs check --job-type scheduler` passes.
    pub fn wait_for_scheduler(&self) {
        self.wait_for_schedulers(1);
    }

    /// Waits until `jobs check --job-type scheduler --limit N` passes: `n` are alive.
    pub fn wait_for_schedulers(&self, n: usize) {
        let limit = n.to_string();
        let live = eventually(Duration::from_secs(30), || {
            self.cli(&[
                "jobs",
                "check",
                "--job-type",
                "scheduler",
                "--limit",
                &limit,
            ])
            .status
            .success()
            .then_some(())
        });
        assert!(
            live.is_some(),
            "fewer than {n} live schedulers after 30 s\n{}",
            self.logs()
        );
    }

    /// The live workers as `worker list --output json` shows them.
    pub fn workers(&self) -> Vec<Value> {
        let list = self.json(&["worker", "list"]);
        list.as_array()
            .unwrap_or_else(|| panic!("worker list printed no array: {list:#}"))
            .clone()
    }

    // ---- the roles -----------------------------------------------------------------------

    fn next_name(&self, role: Role) -> String {
        let n = self.counters[role as usize].fetch_add(1, Ordering::SeqCst) + 1;
        format!("{}-{n}", role.name())
    }

    /// Starts `updraft scheduler`.
    pub fn scheduler(&self) -> Proc {
        self.scheduler_with_env(&[])
    }

    /// Starts `updraft scheduler` with these environment variables besides the cluster's.
    pub fn scheduler_with_env(&self, env: &[(&str, &str)]) -> Proc {
        let spec = Spec {
            role: Role::Scheduler,
            name: self.next_name(Role::Scheduler),
            args: vec!["scheduler".into()],
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        self.spawn(spec)
    }

    /// Starts `updraft api-server` on a free port and waits until it prints its address.
    pub fn api_server(&self) -> Proc {
        let spec = Spec {
            role: Role::ApiServer,
            name: self.next_name(Role::ApiServer),
            args: ["api-server", "--host", "127.0.0.1", "--port", "0"]
                .map(String::from)
                .to_vec(),
            env: Vec::new(),
        };
        self.spawn(spec)
    }

    /// Starts `updraft worker --server SERVERS --queues QUEUES --concurrency N`.
    pub fn worker(&self, servers: &[&Proc], queues: &str, concurrency: u32) -> Proc {
        self.worker_with_env(servers, queues, concurrency, &[])
    }

    pub fn worker_with_env(
        &self,
        servers: &[&Proc],
        queues: &str,
        concurrency: u32,
        env: &[(&str, &str)],
    ) -> Proc {
        let urls: Vec<&str> = servers
            .iter()
            .map(|s| {
                s.url
                    .as_deref()
                    .unwrap_or_else(|| panic!("{} is not an API server", s.name()))
            })
            .collect();
        let spec = Spec {
            role: Role::Worker,
            name: self.next_name(Role::Worker),
            args: vec![
                "worker".into(),
                "--server".into(),
                urls.join(","),
                "--queues".into(),
                queues.into(),
                "--concurrency".into(),
                concurrency.to_string(),
            ],
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        self.spawn(spec)
    }

    /// Kills `proc` (if it still runs) and starts it again with the same arguments; an API
    /// server comes back on the same port, so that workers find it again.
    pub fn restart(&self, proc: &mut Proc) {
        proc.sigkill();
        let mut spec = proc.spec.clone();
        if let Some(url) = &proc.url {
            let port = url
                .rsplit(':')
                .next()
                .unwrap_or_else(|| panic!("no port in {url}"))
                .to_string();
            if let Some(i) = spec.args.iter().position(|a| a == "--port") {
                spec.args[i + 1] = port;
            }
        }
        // Dropping the old `Proc` only kills an already reaped child again.
        *proc = self.spawn(spec);
    }

    fn spawn(&self, spec: Spec) -> Proc {
        // A restarted API server may find its port still held for a moment.
        let attempts = if spec.role == Role::ApiServer { 5 } else { 1 };
        let mut last_failure = String::new();
        for _ in 0..attempts {
            match self.try_spawn(&spec) {
                Ok(proc) => return proc,
                Err(failure) => {
                    last_failure = failure;
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
        panic!(
            "{} did not start: {last_failure}\n{}",
            spec.name,
            self.logs()
        );
    }

    fn try_spawn(&self, spec: &Spec) -> Result<Proc, String> {
        let home = self.path("procs").join(&spec.name);
        std::fs::create_dir_all(&home)
            .unwrap_or_else(|e| panic!("cannot create the home of {}: {e}", spec.name));
        let log = self.path("procs").join(format!("{}.log", spec.name));
        let mut log_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()));
        let _ = writeln!(log_file, "==== start: updraft {}", spec.args.join(" "));
        let mut cmd = self.base_command(&home);
        if spec.role != Role::Worker {
            // Workers have no database access: they only know the API servers.
            cmd.env("UPDRAFT_DATABASE__URL", &self.process_db_url);
        }
        cmd.env("UPDRAFT_LOG", &self.log_level)
            .env("NO_COLOR", "1")
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .args(&spec.args)
            .stdout(Stdio::piped())
            .stderr(
                log_file
                    .try_clone()
                    .unwrap_or_else(|e| panic!("cannot clone {}: {e}", log.display())),
            );
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", spec.name));
        let stdout = child.stdout.take().expect("stdout was piped");
        let (url_tx, url_rx) = mpsc::channel();
        // Copy stdout to the log, and hand the API address over when it is printed.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log_file, "stdout: {line}");
                if let Some(url) = line.trim().strip_prefix("api:") {
                    let _ = url_tx.send(url.trim().to_string());
                }
            }
        });
        let mut proc = Proc {
            spec: spec.clone(),
            child,
            log,
            url: None,
        };
        if spec.role == Role::ApiServer {
            match url_rx.recv_timeout(Duration::from_secs(30)) {
                Ok(url) => proc.url = Some(url),
                Err(_) => {
                    proc.sigkill();
                    return Err(format!(
                        "{} printed no `api:` line (exit {:?})\n{}",
                        spec.name,
                        proc.exited(),
                        proc.log_tail()
                    ));
                }
            }
        }
        Ok(proc)
    }

    /// The tail of every process log, for failure messages.
    pub fn logs(&self) -> String {
        let mut logs: Vec<PathBuf> = std::fs::read_dir(self.path("procs"))
            .map(|dir| {
                dir.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "log"))
                    .collect()
            })
            .unwrap_or_default();
        logs.sort();
        let mut text = format!(
            "process logs (whole files in {}):\n",
            self.path("procs").display()
        );
        for log in logs {
            text.push_str(&format!(
                "---- {} (last {LOG_TAIL_LINES} lines)\n{}\n",
                log.display(),
                tail(&log, LOG_TAIL_LINES)
            ));
        }
        text
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(root) = self.root.take() {
                let kept = root.keep();
                eprintln!("cluster home kept for inspection: {}", kept.display());
            }
        }
    }
}

/// `host:port` as written in `url`, and its address.
fn server_of(url: &str) -> (String, SocketAddr) {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let with_port = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:5432")
    };
    let addr = with_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .unwrap_or_else(|| panic!("cannot resolve the PostgreSQL server {host_port}"));
    (host_port.to_string(), addr)
}

/// Runs `cmd` with piped output; `None` (after killing it) when it takes longer than
/// `timeout`.
fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Option<Output> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("cannot start updraft");
    let mut stdout = child.stdout.take().expect("stdout was piped");
    let mut stderr = child.stderr.take().expect("stderr was piped");
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("cannot wait for updraft") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Some(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Log targets left out of the tails in failure messages (they stay in the files).
const NOISE: &[&str] = &[
    "sqlx::query",
    "hyper_util::",
    "hyper::",
    "reqwest::",
    "h2::",
];

/// The last `lines` lines of a log, without colours and without the noisiest debug lines.
fn tail(path: &Path, lines: usize) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    let all: Vec<String> = text
        .lines()
        .map(strip_ansi)
        .filter(|line| !NOISE.iter().any(|noise| line.contains(noise)))
        .collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
