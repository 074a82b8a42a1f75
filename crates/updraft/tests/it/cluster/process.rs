//! The roles a cluster test starts: each an `updraft` process with its own log file, killed
//! when dropped.

use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use super::{eventually, tail, LOG_TAIL_LINES};
use crate::fixture::unsafe_kill;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Scheduler,
    ApiServer,
    Worker,
}

impl Role {
    pub(super) fn name(self) -> &'static str {
        match self {
            Role::Scheduler => "scheduler",
            Role::ApiServer => "api-server",
            Role::Worker => "worker",
        }
    }
}

/// How to start (and restart) one process.
#[derive(Debug, Clone)]
pub(super) struct Spec {
    pub(super) role: Role,
    pub(super) name: String,
    pub(super) args: Vec<String>,
    pub(super) env: Vec<(String, String)>,
}

/// A running (or exited) `updraft` role. Killed when dropped.
pub struct Proc {
    pub(super) spec: Spec,
    pub(super) child: Child,
    pub(super) log: PathBuf,
    /// `http://HOST:PORT` of an API server.
    pub url: Option<String>,
}

impl Proc {
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn role(&self) -> Role {
        self.spec.role
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .try_wait()
            .unwrap_or_else(|e| panic!("cannot wait for {}: {e}", self.name()))
    }

    pub fn sigkill(&mut self) {
        // An already exited child is fine: the error is ignored and the wait reaps it.
        let _ = self.child.kill();
        self.child
            .wait()
            .unwrap_or_else(|e| panic!("cannot wait for {}: {e}", self.name()));
    }

    /// Sends SIGTERM and waits for the exit, SIGKILLing after `timeout` (then `None`).
    pub fn sigterm(&mut self, timeout: Duration) -> Option<ExitStatus> {
        unsafe_kill(self.pid(), libc::SIGTERM);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() > deadline {
                self.sigkill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the process printed on stdout after `label` (`metrics:` → its URL), once it
    /// printed it (within 30 s).
    pub fn printed(&self, label: &str) -> Option<String> {
        eventually(Duration::from_secs(30), || {
            let log = std::fs::read_to_string(&self.log).ok()?;
            log.lines().find_map(|line| {
                let line = line.strip_prefix("stdout:")?.trim();
                Some(line.strip_prefix(label)?.trim().to_string())
            })
        })
    }

    /// Everything this process logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The tail of this process's log.
    pub fn log_tail(&self) -> String {
        tail(&self.log, LOG_TAIL_LINES)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.contains(") Z "))
        .unwrap_or(false)
}
