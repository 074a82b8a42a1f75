//! Sends a try's log file to the API server while the task runs, so that its log can be read
//! from anywhere (and survives the worker's machine). Chunks carry their byte offset, so one
//! sent twice after a failover is stored once.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, warn};
use updraft_store::{LogAppend, LogChunk, LogTail, TaskExecution};

/// How often the log of a running task is sent.
pub const SHIP_INTERVAL: Duration = Duration::from_millis(500);

/// Bytes read and sent at most per request.
const MAX_CHUNK: usize = 256 * 1024;

/// The most of a log that goes with a finish report; a longer end is sent as chunks first.
pub const MAX_TAIL: usize = 64 * 1024;

pub struct LogShipper {
    execution: Arc<dyn TaskExecution>,
    path: PathBuf,
    ti_id: i64,
    try_number: u32,
    claim_id: String,
    /// Bytes of the file the server has.
    sent: u64,
}

/// What the server said about this try's log.
#[derive(Debug, PartialEq, Eq)]
pub enum Shipped {
    /// Everything readable so far (up to a line end, unless final) was sent, or will be retried.
    Ok,
    /// The try is no longer this worker's: the task must be stopped.
    Fenced,
}

impl LogShipper {
    pub fn new(
        execution: Arc<dyn TaskExecution>,
        path: PathBuf,
        ti_id: i64,
        try_number: u32,
        claim_id: String,
    ) -> Self {
        LogShipper {
            execution,
            path,
            ti_id,
            try_number,
            claim_id,
            sent: 0,
        }
    }

    /// Ships every `SHIP_INTERVAL` until `done` turns true, then returns the rest as the tail
    /// that goes with the finish report; a fenced claim sets `fenced` (and leaves no tail).
    ///
    /// The first chunk waits one interval too: a task that ends sooner sends its whole log
    /// with its finish report, and no request of its own.
    pub async fn run(
        mut self,
        mut done: watch::Receiver<bool>,
        fenced: watch::Sender<bool>,
    ) -> Option<LogTail> {
        loop {
            let finished = *done.borrow()
                || tokio::select! {
                    _ = tokio::time::sleep(SHIP_INTERVAL) => *done.borrow(),
                    // A dropped sender: nobody will say so any more.
                    changed = done.changed() => changed.is_err() || *done.borrow(),
                };
            if finished {
                return self.tail().await;
            }
            if self.ship(false).await == Shipped::Fenced {
                let _ = fenced.send(true);
                return None;
            }
        }
    }

    /// What the server does not have yet, once the task ended: while that is more than
    /// [`MAX_TAIL`], chunks are sent; the rest is returned for the finish report. `None`:
    /// nothing left, the claim is lost, or the server takes no chunks just now (the rest then
    /// stays in the worker's file, as any unsent log does).
    pub async fn tail(&mut self) -> Option<LogTail> {
        loop {
            let rest = match self.rest(MAX_TAIL + 1) {
                Ok(rest) => rest,
                Err(e) => {
                    warn!(path = %self.path.display(), error = %e, "cannot read the task log");
                    return None;
                }
            };
            if rest.is_empty() {
                return None;
            }
            if rest.len() <= MAX_TAIL {
                return Some(LogTail {
                    offset: self.sent,
                    data: String::from_utf8_lossy(&rest).into_owned(),
                });
            }
            let before = self.sent;
            if self.ship(true).await == Shipped::Fenced {
                return None;
            }
            if self.sent == before {
                warn!(path = %self.path.display(), "the server takes no log now; the end of this log stays in the worker's file");
                return None;
            }
        }
    }

    /// Up to `limit` bytes of the file beyond what the server has.
    fn rest(&self, limit: usize) -> std::io::Result<Vec<u8>> {
        let mut file = std::fs::File::open(&self.path)?;
        file.seek(SeekFrom::Start(self.sent))?;
        let mut rest = Vec::new();
        file.take(limit as u64).read_to_end(&mut rest)?;
        Ok(rest)
    }

    /// Sends what the file holds beyond what the server has: whole lines only, unless `last`.
    pub async fn ship(&mut self, last: bool) -> Shipped {
        loop {
            let data = match self.read_from(self.sent, last) {
                Ok(Some(data)) => data,
                Ok(None) => return Shipped::Ok,
                Err(e) => {
                    debug!(path = %self.path.display(), error = %e, "log not readable yet");
                    return Shipped::Ok;
                }
            };
            let len = data.len() as u64;
            let chunk = LogChunk {
                ti_id: self.ti_id,
                try_number: self.try_number,
                claim_id: self.claim_id.clone(),
                offset: self.sent,
                data,
            };
            match self.execution.append_log(chunk).await {
                Ok(LogAppend::Stored { length }) | Ok(LogAppend::Gap { length }) => {
                    let progressed = length != self.sent;
                    self.sent = length;
                    if !progressed || len < MAX_CHUNK as u64 {
                        return Shipped::Ok;
                    }
                }
                Ok(LogAppend::Fenced) => return Shipped::Fenced,
                Err(e) => {
                    warn!(error = %e, "sending the task log failed; retrying later");
                    return Shipped::Ok;
                }
            }
        }
    }

    /// Up to `MAX_CHUNK` bytes from `offset`, cut after the last line end (or at the end of
    /// the file when `last`), and never inside a UTF-8 character.
    fn read_from(&self, offset: u64, last: bool) -> std::io::Result<Option<String>> {
        let mut file = std::fs::File::open(&self.path)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut buf = Vec::new();
        file.take(MAX_CHUNK as u64).read_to_end(&mut buf)?;
        let full_chunk = buf.len() == MAX_CHUNK;
        let cut = if last && !full_chunk {
            buf.len()
        } else {
            match buf.iter().rposition(|b| *b == b'\n') {
                Some(i) => i + 1,
                None if full_chunk => buf.len(),
                None => 0,
            }
        };
        buf.truncate(cut);
        // A cut that splits a character keeps its start for the next chunk.
        let valid = match std::str::from_utf8(&buf) {
            Ok(_) => buf.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => buf.len(),
        };
        buf.truncate(valid);
        if buf.is_empty() {
            return Ok(None);
        }
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    }
}
