//! Where a try's log is and how to read it, for every reader (the CLI's `tasks logs`, the
//! REST API): what a remote worker shipped to the database first, else the file a worker of
//! this machine writes.

use std::path::{Path, PathBuf};

use crate::{Result, Store};

/// `base/dag_id=…/run_id=…/task_id=…/attempt=N.log`, Airflow's layout. Ids are
/// percent-encoded where they contain `/`, `\`, `%` or NUL, so no id can leave its folder and
/// different ids never share a file.
pub fn log_path(
    base: &Path,
    dag_id: &str,
    run_id: &str,
    task_id: &str,
    map_index: i64,
    try_number: u32,
) -> PathBuf {
    let mut path = base.to_path_buf();
    path.push(format!("dag_id={}", path_safe(dag_id)));
    path.push(format!("run_id={}", path_safe(run_id)));
    path.push(format!("task_id={}", path_safe(task_id)));
    // A mapped instance's tries, in Airflow's layout.
    if map_index >= 0 {
        path.push(format!("map_index={map_index}"));
    }
    path.push(format!("attempt={try_number}.log"));
    path
}

fn path_safe(id: &str) -> std::borrow::Cow<'_, str> {
    if !id.contains(['/', '\\', '%', '\0']) {
        return id.into();
    }
    let mut out = String::with_capacity(id.len() + 8);
    for c in id.chars() {
        match c {
            '/' => out.push_str("%2F"),
            '\\' => out.push_str("%5C"),
            '%' => out.push_str("%25"),
            '\0' => out.push_str("%00"),
            c => out.push(c),
        }
    }
    out.into()
}

/// A try's log, or the part of it a reader asked for, and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryLog {
    /// Shipped to the database by a remote worker (or its finish report); `text` starts at
    /// byte `start` of the log.
    Database { start: u64, text: String },
    /// Written by a worker of this machine; `text` starts at byte `start` of the file.
    File {
        path: PathBuf,
        start: u64,
        text: String,
    },
    /// Neither: nothing was shipped and there is no file (yet) at `path`.
    Missing { path: PathBuf },
}

impl TryLog {
    pub fn text(&self) -> Option<&str> {
        match self {
            TryLog::Database { text, .. } | TryLog::File { text, .. } => Some(text),
            TryLog::Missing { .. } => None,
        }
    }

    /// The byte of the log where [`TryLog::text`] starts.
    pub fn start(&self) -> u64 {
        match self {
            TryLog::Database { start, .. } | TryLog::File { start, .. } => *start,
            TryLog::Missing { .. } => 0,
        }
    }
}

/// Reads try `try_number` of a task instance from byte `from` on (at most a chunk earlier):
/// the database first, then the local file under `base_log_folder`. Both grow while the try
/// runs, so a reader follows it by calling this again from where it stopped, reading only
/// what was added.
pub async fn read_try_log(
    store: &dyn Store,
    base_log_folder: &Path,
    ti: &crate::TaskInstance,
    try_number: u32,
    from: u64,
) -> Result<TryLog> {
    if let Some((start, text)) = store.read_log_from(ti.id, try_number, from).await? {
        return Ok(TryLog::Database { start, text });
    }
    let path = log_path(
        base_log_folder,
        &ti.dag_id,
        &ti.run_id,
        &ti.task_id,
        ti.map_index,
        try_number,
    );
    match read_file_from(&path, from).await {
        // A task's output need not be UTF-8; show what it wrote rather than nothing.
        Ok(bytes) => Ok(TryLog::File {
            text: String::from_utf8_lossy(&bytes).into_owned(),
            start: from,
            path,
        }),
        Err(_) => Ok(TryLog::Missing { path }),
    }
}

async fn read_file_from(path: &Path, from: u64) -> std::io::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(std::io::SeekFrom::Start(from)).await?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).await?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_path_layout_and_escaping() {
        let base = Path::new("/logs");
        let check = |dag: &str, run: &str, task: &str, expect: &str| {
            assert_eq!(log_path(base, dag, run, task, -1, 3), PathBuf::from(expect));
        };
        check(
            "etl",
            "manual__2026-01-01T00:00:00+00:00",
            "extract",
            "/logs/dag_id=etl/run_id=manual__2026-01-01T00:00:00+00:00/task_id=extract/attempt=3.log",
        );
        check(
            "etl",
            "../../../etc",
            "a\\b",
            "/logs/dag_id=etl/run_id=..%2F..%2F..%2Fetc/task_id=a%5Cb/attempt=3.log",
        );
        assert_eq!(
            log_path(base, "etl", "r", "t", 2, 1),
            PathBuf::from("/logs/dag_id=etl/run_id=r/task_id=t/map_index=2/attempt=1.log")
        );
        check(
            "a%2Fb",
            "x",
            "y",
            "/logs/dag_id=a%252Fb/run_id=x/task_id=y/attempt=3.log",
        );
    }
}
