//! The log of a try that the worker runs itself, without a process (HTTP calls, triggering a
//! run): lines with the time and the operator's name, secrets masked.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use chrono::{SecondsFormat, Utc};
use updraft_secrets::Masker;

pub(super) struct TryLog {
    file: Option<Mutex<std::fs::File>>,
    /// Shown on every line: `[time] {source} text`.
    source: &'static str,
    masks: Vec<Masker>,
}

impl TryLog {
    /// The log at `path`, appended to; a log that cannot be opened is warned about once and
    /// then written nowhere (the try still runs).
    pub(super) fn open(path: &Path, source: &'static str, masks: Vec<Masker>) -> TryLog {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(
                |e| tracing::warn!(path = %path.display(), error = %e, "cannot open the task log"),
            )
            .ok()
            .map(Mutex::new);
        TryLog {
            file,
            source,
            masks,
        }
    }

    pub(super) fn line(&self, text: &str) {
        let Some(file) = &self.file else { return };
        let mut text = text.to_owned();
        for mask in &self.masks {
            text = mask.mask(&text).into_owned();
        }
        let ts = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        if let Ok(mut file) = file.lock() {
            for line in text.lines() {
                let _ = writeln!(file, "[{ts}] {{{}}} {line}", self.source);
            }
        }
    }
}
