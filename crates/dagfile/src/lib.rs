//! Discovery and loading of DAG files: YAML or JSON files in a DAG folder become validated
//! `updraft_model::Dag` values, and broken files become import errors that name every problem
//! with its line and column.
//!
//! Layers, each knowing nothing of the next: `document` turns text into a tree of positioned
//! values (and refuses alias bombs), `schema` turns that tree into a `Dag` collecting all
//! problems, `folder` finds files and caches what it loaded. Nothing here runs user code:
//! `.py` files are run by a [`PythonParser`] the caller passes in (the Python bridge), and the
//! DAG documents they answer are loaded here like JSON files.

mod diagnostic;
mod document;
mod folder;
mod python;
mod schema;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use updraft_model::Dag;

pub use diagnostic::{render, Diagnostic, Pos, MAX_RENDERED};
pub use document::{Format, MAX_ALIAS_NODES, MAX_DEPTH};
pub use folder::{
    DagFolder, DagFolderError, FileOutcome, FileRecord, ScanStats, IGNORE_FILE, RACY_WINDOW,
};
pub use python::{is_python, load_python_dags, might_define_dags, PythonAnswer, PythonParser};
pub use schema::{
    parse_dag, DAG_KEYS, DEFAULT_MAX_ACTIVE_RUNS, DEFAULT_MAX_ACTIVE_TASKS, MAX_FILE_BYTES,
    MAX_TAG_LEN, OPERATORS, SETTING_KEYS, TASK_ONLY_KEYS, TRIGGER_RULES,
};

/// A DAG file that loaded, with what the store keeps of it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedDag {
    /// Shared: a scan hands the DAGs it publishes on without copying them.
    pub dag: std::sync::Arc<Dag>,
    pub fileloc: PathBuf,
    pub source: String,
    /// sha256 of the file, lowercase hex.
    pub content_hash: String,
}

/// A DAG file that did not load. `error` lists every problem, one a line, most with
/// `line L, column C: ` in front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    pub filename: PathBuf,
    pub error: String,
}

/// Which parser produced a [`FileRecord`]'s outcome: records of another parser are ignored,
/// since it may read the same file differently. The release's version, and a revision to bump
/// with every change that could load or reject a file differently within one release.
pub const PARSER_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "+parser.1");

/// The result of scanning a DAG folder, sorted by path.
#[derive(Debug, Clone, Default)]
pub struct FolderScan {
    /// The DAGs loaded, except those of files that did not change since their record (they
    /// are published as they are).
    pub dags: Vec<LoadedDag>,
    /// Every file that does not load, recorded or not.
    pub import_errors: Vec<ImportError>,
    /// What to record for the next scan: every file whose content was hashed and whose
    /// outcome is its own (a file that repeats another's dag_id is left out, since which
    /// file wins depends on the others).
    pub files: Vec<FileRecord>,
    pub stats: ScanStats,
}

/// Parses and validates one DAG file's text; on failure the full import-error text.
pub fn parse_dag_source(source: &str, default_dag_id: &str, format: Format) -> Result<Dag, String> {
    parse_dag(source, default_dag_id, format).map_err(|diags| render(&diags))
}

/// Loads one file outside a folder scan (e.g. `updraft dags test FILE`).
pub fn load_file(path: &Path) -> Result<LoadedDag, ImportError> {
    let import_error = |error: String| ImportError {
        filename: path.to_path_buf(),
        error,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| import_error(format!("cannot read the file: {e}")))?
        .len();
    if size > MAX_FILE_BYTES as u64 {
        return Err(import_error(schema::too_big(size).to_string()));
    }
    let bytes =
        std::fs::read(path).map_err(|e| import_error(format!("cannot read the file: {e}")))?;
    let hash = content_hash(&bytes);
    load_source(path, bytes, hash).map_err(import_error)
}

/// sha256 of `bytes` as lowercase hex.
pub fn content_hash(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// A digest as lowercase hex.
fn hex(digest: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(digest.len() * 2);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out
}

/// Turns a file's bytes into a loaded DAG or an import-error text.
fn load_source(path: &Path, bytes: Vec<u8>, content_hash: String) -> Result<LoadedDag, String> {
    let Some(format) = Format::from_path(path) else {
        return Err("not a DAG file: expected a .yaml, .yml or .json extension".to_string());
    };
    if bytes.len() > MAX_FILE_BYTES {
        return Err(schema::too_big(bytes.len() as u64).to_string());
    }
    let source = String::from_utf8(bytes).map_err(|e| {
        format!(
            "the file is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })?;
    let default_dag_id = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dag = parse_dag_source(&source, &default_dag_id, format)?;
    Ok(LoadedDag {
        dag: std::sync::Arc::new(dag),
        fileloc: path.to_path_buf(),
        source,
        content_hash,
    })
}
