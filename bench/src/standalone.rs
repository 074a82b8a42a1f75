//! A running `updraft standalone`: started on a free port, awaited through its health
//! endpoint, measured through `/proc`, and always stopped (SIGTERM, then SIGKILL).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use crate::metadata::{Database, Metadata};
use crate::procfs::{self, Usage};
use crate::updraft::{Home, Updraft};

/// How long start-up may take before the harness gives up (a debug build with 1,000 DAGs is
/// slow, a release build should need well under a second).
const READY_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Standalone {
    child: Child,
    port: u16,
    spawned_at: Instant,
    log: std::path::PathBuf,
    stopped: bool,
}

impl Standalone {
    /// Spawns `updraft standalone` in `home`; stdout and stderr go to `home/standalone.log`.
    pub fn start(updraft: &Updraft, home: &Home) -> Result<Standalone> {
        let port = free_port()?;
        let log = home.path().join("standalone.log");
        let out = std::fs::File::create(&log).context("cannot create standalone.log")?;
        let err = out.try_clone().context("cannot share standalone.log")?;
        let mut cmd = updraft.command(home);
        cmd.args([
            "standalone",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
        let spawned_at = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", updraft.binary().display()))?;
        Ok(Standalone {
            child,
            port,
            spawned_at,
            log,
            stopped: false,
        })
    }

    /// `http://127.0.0.1:PORT`, where it serves its APIs.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> i32 {
        // A pid always fits; `Child::id` is u32 only by convention.
        self.child.id() as i32
    }

    /// Waits until the health endpoint reports every component healthy and the metadata lists
    /// `expected_dags` active DAGs. Returns the time since the process was spawned.
    pub fn wait_ready(
        &mut self,
        database: Database,
        home: &Home,
        expected_dags: usize,
    ) -> Result<Duration> {
        let mut metadata: Option<Box<dyn Metadata>> = None;
        loop {
            self.check_alive()?;
            if health_ok(self.port) {
                if metadata.is_none() {
                    metadata = Some(database.open(home)?);
                }
                if let Some(m) = &metadata {
                    if m.active_dag_count()? == expected_dags {
                        return Ok(self.spawned_at.elapsed());
                    }
                }
            }
            if self.spawned_at.elapsed() > READY_TIMEOUT {
                bail!(
                    "standalone not ready (healthy, {expected_dags} DAGs) after {:?}: {}",
                    READY_TIMEOUT,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    }

    /// The updraft processes: the standalone and its children running this binary (the reaper),
    /// not the task processes.
    pub fn pids(&self) -> Vec<i32> {
        let mut pids = vec![self.pid()];
        pids.extend(procfs::children_running_same_exe(self.pid()));
        pids
    }

    /// CPU and memory of the updraft processes now.
    pub fn usage(&self) -> Result<Usage> {
        Usage::of(&self.pids(), self.pid())
    }

    /// An error (with the end of its log) if the process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait().context("cannot poll standalone")? {
            self.stopped = true;
            bail!("standalone exited with {status}: {}", self.log_tail());
        }
        Ok(())
    }

    /// SIGTERM, and an error unless it exits cleanly within [`STOP_TIMEOUT`].
    pub fn stop(mut self) -> Result<()> {
        self.check_alive()?;
        let reaper = procfs::children_running_same_exe(self.pid());
        kill(Pid::from_raw(self.pid()), Signal::SIGTERM).context("cannot signal standalone")?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().context("cannot poll standalone")? {
                break status;
            }
            if Instant::now() > deadline {
                bail!(
                    "standalone did not stop within {STOP_TIMEOUT:?} of SIGTERM: {}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.stopped = true;
        if !status.success() {
            bail!("standalone exited with {status}: {}", self.log_tail());
        }
        // The reaper ends when its stdin closes; do not leave it behind if it lingers.
        let deadline = Instant::now() + Duration::from_secs(5);
        while reaper.iter().any(|&p| procfs::is_alive(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        for pid in reaper.into_iter().filter(|&p| procfs::is_alive(p)) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        Ok(())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        format!("last lines of {}:\n{tail}", self.log.display())
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A port that was free a moment ago (the standalone binds it right after).
pub(crate) fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot find a free TCP port")?;
    Ok(listener.local_addr()?.port())
}

/// `GET /api/v2/monitor/health` answered with every component `healthy`.
fn health_ok(port: u16) -> bool {
    health(port).is_some_and(|v| {
        ["metadatabase", "scheduler", "dag_processor"]
            .iter()
            .all(|c| v.pointer(&format!("/{c}/status")).and_then(Value::as_str) == Some("healthy"))
    })
}

/// A minimal HTTP/1.1 client: the endpoint answers a small JSON body with a content length.
fn health(port: u16) -> Option<Value> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .write_all(
            b"GET /api/v2/monitor/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
        .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&response[..split]).ok()?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    serde_json::from_slice(&response[split + 4..]).ok()
}
