//! Integration tests of the worker, with real processes.

mod crash;
mod log_tail;
mod notify_wake;
mod orphans;
mod run;

use std::path::Path;
use std::time::{Duration, Instant};

/// Whether a process runs (a zombie counts as gone: it no longer executes anything).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
            state != Some(Some('Z'))
        }
        Err(_) => false,
    }
}

/// Waits generously for a process to be gone.
fn gone_within(pid: i32, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    !alive(pid)
}

/// Waits for a file a task writes (a pid) and parses it.
async fn read_pid(path: &Path) -> i32 {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse() {
                return pid;
            }
        }
        assert!(Instant::now() < end, "{} never written", path.display());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
