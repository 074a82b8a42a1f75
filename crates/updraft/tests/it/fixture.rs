//! A throwaway `$UPDRAFT_HOME` with a DAG folder, and helpers to run the binary in it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("dags")).unwrap();
        Home { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn dags(&self) -> PathBuf {
        self.path().join("dags")
    }

    pub fn write_dag(&self, name: &str, text: &str) {
        let tmp = self.dags().join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(tmp, self.dags().join(name)).unwrap();
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_updraft"));
        cmd.env("UPDRAFT_HOME", self.path())
            .env_remove("UPDRAFT_LOG")
            .env("UPDRAFT_WORKER__HEARTBEAT_INTERVAL", "1s")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `updraft ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Runs `updraft ARGS`, expects success, and returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "updraft {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        serde_json::from_str(&self.ok(&args)).unwrap()
    }

    /// Where the standalone processes of this home log; shown when a wait times out.
    fn standalone_log(&self) -> std::fs::File {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path().join("standalone.log"))
            .unwrap()
    }

    /// Starts `updraft standalone` on a free port and waits until it is healthy.
    pub fn standalone(&self) -> Standalone {
        let mut child = self
            .command()
            .args(["standalone", "--port", "0"])
            .env("UPDRAFT_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(self.standalone_log())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut health_url = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(url) = line.trim().strip_prefix("health:") {
                health_url = Some(url.trim().to_string());
                break;
            }
        }
        // Keep reading, as a terminal would.
        std::thread::spawn(move || lines.for_each(drop));
        Standalone {
            child,
            health_url: health_url.expect("standalone printed no health address"),
        }
    }

    /// Starts `updraft ARGS` (a long-running role) with `env`, logging to `<name>.log` in the
    /// home (`name` is the first argument). An `api:` address it prints becomes its `url`,
    /// awaited for up to 30 s.
    pub fn role(&self, args: &[&str], env: &[(&str, &str)]) -> Role {
        let log = self.path().join(format!("{}.log", args[0]));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut child = self
            .command()
            .args(args)
            .envs(env.iter().copied())
            .env("UPDRAFT_LOG", "debug")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.trim().strip_prefix("api:") {
                    let _ = url_tx.send(url.trim().to_string());
                }
            }
        });
        let url = if args[0] == "api-server" {
            let url = url_rx.recv_timeout(Duration::from_secs(30));
            Some(url.unwrap_or_else(|_| {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("updraft {args:?} printed no api: address\n{text}")
            }))
        } else {
            None
        };
        Role { child, url, log }
    }

    /// Waits until the run is finished and returns its states document.
    pub fn wait_for_run(&self, dag_id: &str, run_id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let states = self.json(&["tasks", "states-for-dag-run", dag_id, run_id]);
            let state = states["state"].as_str().unwrap().to_string();
            if state == "success" || state == "failed" {
                return states;
            }
            if Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(self.path().join("standalone.log")).unwrap_or_default();
                panic!("run {run_id} did not finish: {states:#}\nstandalone log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Triggers `dag_id` and returns the new run id.
    pub fn trigger(&self, dag_id: &str) -> String {
        let runs = self.json(&["dags", "trigger", dag_id]);
        runs[0]["run_id"].as_str().unwrap().to_string()
    }
}

pub struct Standalone {
    pub child: Child,
    pub health_url: String,
}

impl Standalone {
    /// `http://HOST:PORT` of its REST API.
    pub fn base_url(&self) -> String {
        self.health_url
            .strip_suffix("/api/v2/monitor/health")
            .expect("a health address")
            .to_string()
    }

    /// An `Authorization` header value of the `admin` user of `home`, logged in.
    pub fn admin_bearer(&self, home: &Home) -> String {
        let password = crate::rest_clients::admin_password(home);
        let (_, token) = crate::users::login(&self.base_url(), "admin", &password);
        format!("Bearer {}", token.expect("a token"))
    }

    pub fn sigterm(&mut self) -> std::process::ExitStatus {
        unsafe_kill(self.child.id(), libc::SIGTERM);
        self.child.wait().unwrap()
    }

    pub fn sigkill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A long-running `updraft` role (`scheduler`, `api-server`, `worker`). Killed when dropped.
pub struct Role {
    pub child: Child,
    /// `http://HOST:PORT` of an API server.
    pub url: Option<String>,
    log: PathBuf,
}

impl Role {
    /// Sends SIGTERM and waits for the exit.
    pub fn sigterm(&mut self) -> std::process::ExitStatus {
        unsafe_kill(self.child.id(), libc::SIGTERM);
        self.child.wait().unwrap()
    }

    /// What the role logged so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn unsafe_kill(pid: u32, signal: i32) {
    // SAFETY: sending a signal to a child process we started.
    unsafe {
        libc::kill(pid as i32, signal);
    }
}

pub fn state_of<'a>(states: &'a Value, task_id: &str) -> &'a str {
    states["task_instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|ti| ti["task_id"] == task_id)
        .and_then(|ti| ti["state"].as_str())
        .unwrap_or_else(|| panic!("no task {task_id} in {states:#}"))
}

pub fn try_of(states: &Value, task_id: &str) -> u64 {
    states["task_instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|ti| ti["task_id"] == task_id)
        .and_then(|ti| ti["try_number"].as_u64())
        .unwrap()
}

/// Polls `check` until it returns Some or the timeout passes.
pub fn eventually<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn http_get(url: &str) -> Option<String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/')?;
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    write!(stream, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.contains(") Z "))
        .unwrap_or(false)
}
