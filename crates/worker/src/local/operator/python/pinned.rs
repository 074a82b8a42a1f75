//! The DAG files Python tries run, at their runs' pinned versions: a version's source never
//! changes once published, so it is fetched and written once per worker, at a path of its own
//! that every try of that version shares (which lets the fork server preload it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use updraft_store::TaskExecution;

/// A written DAG version.
#[derive(Debug)]
pub(in crate::local) struct PinnedFile {
    /// The file, named as the original, alone in its directory.
    pub dag_file: PathBuf,
    /// Where the file came from (its path in the DAG folder it was parsed in).
    pub fileloc: PathBuf,
}

impl PinnedFile {
    /// The directory holding only this file.
    pub fn dir(&self) -> &Path {
        self.dag_file.parent().unwrap_or(Path::new("/"))
    }
}

/// The versions written so far, under a temporary directory removed with the worker.
#[derive(Default)]
pub(in crate::local) struct PinnedFiles {
    root: OnceLock<tempfile::TempDir>,
    written: Mutex<HashMap<(String, i64), Arc<PinnedFile>>>,
}

impl PinnedFiles {
    /// Version `version` of `dag_id`'s file, fetched and written the first time.
    pub async fn get(
        &self,
        execution: &dyn TaskExecution,
        dag_id: &str,
        version: i64,
    ) -> Result<Arc<PinnedFile>, String> {
        let key = (dag_id.to_owned(), version);
        if let Some(file) = self.lock().get(&key) {
            return Ok(file.clone());
        }
        let pinned = execution
            .dag_source(dag_id, version)
            .await
            .map_err(|e| format!("cannot read the DAG file's source: {e}"))?;
        let root = self.root()?;
        let fileloc = PathBuf::from(&pinned.fileloc);
        // The file keeps its name, so that tracebacks read as the author wrote it.
        let file_name = fileloc
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| format!("{dag_id}.py").into());
        // Two tries of a new version may write it at once: each in a directory of its own,
        // and the first one registered is the one every later try uses.
        let dir = tempfile::Builder::new()
            .prefix("v")
            .tempdir_in(root)
            .map_err(|e| format!("cannot create a directory for the DAG file's source: {e}"))?
            .keep();
        let dag_file = dir.join(file_name);
        std::fs::write(&dag_file, &pinned.source)
            .map_err(|e| format!("cannot write the DAG file's source: {e}"))?;
        let written = Arc::new(PinnedFile { dag_file, fileloc });
        let mut files = self.lock();
        let file = files.entry(key).or_insert(written.clone()).clone();
        if !Arc::ptr_eq(&file, &written) {
            drop(files);
            let _ = std::fs::remove_dir_all(dir);
        }
        Ok(file)
    }

    fn root(&self) -> Result<&Path, String> {
        if let Some(root) = self.root.get() {
            return Ok(root.path());
        }
        let made = tempfile::Builder::new()
            .prefix("updraft-dags-")
            .tempdir()
            .map_err(|e| format!("cannot create the directory of DAG sources: {e}"))?;
        // Another try may have made one meanwhile; then ours is dropped (removed).
        let _ = self.root.set(made);
        self.root
            .get()
            .map(|root| root.path())
            .ok_or_else(|| "the directory of DAG sources vanished".to_owned())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i64), Arc<PinnedFile>>> {
        match self.written.lock() {
            Ok(files) => files,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}
