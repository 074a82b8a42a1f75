//! Python callbacks (notifiers of kind `python`): a callable or a `BaseNotifier` subclass of a
//! Python DAG file, run in a child `python3 -m updraft._callback` that loads the DAG file at
//! the run's pinned version, finds the callback again (the task, the argument, the position)
//! and calls it with the event's context (`docs/python-protocol.md`). What the child writes
//! goes to this process's log; a callback that raises is a failed delivery, never a state.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tracing::{info, warn};
use updraft_store::{Notification, Store, StoreExecution, TaskExecution};

use super::DeliveryError;

/// How Python callbacks are run: the interpreter and SDK of the worker's Python tasks.
#[derive(Debug, Clone)]
pub struct PythonCallbacks {
    pub interpreter: String,
    /// The extracted SDK (`None` in a binary built without it: Python callbacks then fail).
    pub sdk: Option<PathBuf>,
}

/// The callback's place in the DAG file, as the SDK wrote it.
pub(super) struct CallbackRef<'a> {
    pub task_id: Option<&'a str>,
    pub callback: &'a str,
    pub index: u32,
}

/// Runs one Python callback to its end, within `limit`.
pub(super) async fn run(
    store: &std::sync::Arc<dyn Store>,
    python: Option<&PythonCallbacks>,
    notification: &Notification,
    callback: CallbackRef<'_>,
    limit: Duration,
) -> Result<(), DeliveryError> {
    let python = python.ok_or_else(|| {
        DeliveryError::Permanent("this process does not run Python callbacks".into())
    })?;
    let sdk = python.sdk.as_deref().ok_or_else(|| {
        DeliveryError::Permanent(
            "Python callbacks need the Python SDK, and this updraft was built without it".into(),
        )
    })?;
    let new = &notification.new;
    let run_id = new
        .run_id
        .as_deref()
        .ok_or_else(|| DeliveryError::Permanent("a Python callback needs a DAG run".into()))?;
    let run = store
        .get_dag_run(&new.dag_id, run_id)
        .await
        .map_err(|e| DeliveryError::Transient(format!("cannot read the DAG run: {e}")))?;
    let source = StoreExecution(store.clone())
        .dag_source(&new.dag_id, run.dag_version)
        .await
        .map_err(|e| DeliveryError::Transient(format!("cannot read the DAG file's source: {e}")))?;
    let dir = tempfile::Builder::new()
        .prefix("updraft-callback-")
        .tempdir()
        .map_err(|e| DeliveryError::Transient(format!("cannot create a directory: {e}")))?;
    let fileloc = PathBuf::from(&source.fileloc);
    let file_name = fileloc
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| format!("{}.py", new.dag_id).into());
    let dag_file = dir.path().join(file_name);
    std::fs::write(&dag_file, &source.source)
        .map_err(|e| DeliveryError::Transient(format!("cannot write the DAG file: {e}")))?;

    let mut context = new.context.clone();
    if let serde_json::Value::Object(keys) = &mut context {
        keys.insert("run_state".into(), run.state.as_str().into());
    }
    let request = serde_json::json!({
        "dag_file": dag_file,
        "dag_id": new.dag_id,
        "task_id": callback.task_id,
        "callback": callback.callback,
        "index": callback.index,
        "context": context,
    });
    // Modules next to the DAG file in its folder still import, where the folder is here.
    let mut python_path: Vec<&Path> = vec![sdk, dir.path()];
    if let Some(folder) = fileloc.parent().filter(|p| p.is_dir()) {
        python_path.push(folder);
    }
    let mut child = tokio::process::Command::new(&python.interpreter)
        .args(["-m", "updraft._callback"])
        .env("PYTHONPATH", join_paths(&python_path))
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            DeliveryError::Transient(format!("cannot start `{}`: {e}", python.interpreter))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let body = request.to_string();
        stdin
            .write_all(body.as_bytes())
            .await
            .map_err(|e| DeliveryError::Transient(format!("cannot send the context: {e}")))?;
    }
    let output = match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(output) => {
            output.map_err(|e| DeliveryError::Transient(format!("the callback's child: {e}")))?
        }
        // The child is killed as its handle is dropped; a callback that hangs is not retried.
        Err(_) => {
            return Err(DeliveryError::Permanent(format!(
                "the callback did not finish within {limit:?}"
            )))
        }
    };
    let what = format!(
        "{}{}[{}]",
        callback
            .task_id
            .map(|t| format!("{t}."))
            .unwrap_or_default(),
        callback.callback,
        callback.index
    );
    let mut last_line = String::new();
    for stream in [&output.stdout, &output.stderr] {
        for line in String::from_utf8_lossy(stream).lines() {
            info!(id = notification.id, dag_id = %new.dag_id, callback = %what, "{line}");
            if !line.trim().is_empty() {
                last_line = line.to_string();
            }
        }
    }
    if output.status.success() {
        return Ok(());
    }
    warn!(id = notification.id, dag_id = %new.dag_id, callback = %what, status = %output.status, "Python callback failed");
    let why = if last_line.is_empty() {
        format!("exited with {}", output.status)
    } else {
        last_line
    };
    // Airflow calls a callback once: one that raised, or cannot be found, is not tried again.
    Err(DeliveryError::Permanent(format!(
        "the Python callback {what} failed: {why}"
    )))
}

fn join_paths(paths: &[&Path]) -> String {
    let inherited = std::env::var_os("PYTHONPATH");
    let all = paths
        .iter()
        .map(|p| p.to_path_buf())
        .chain(inherited.iter().flat_map(std::env::split_paths));
    std::env::join_paths(all)
        .map(|joined| joined.to_string_lossy().into_owned())
        .unwrap_or_default()
}
