//! The Python bridge: the Python SDK embedded in the binary (extracted once to a cache
//! directory), the interpreter setting (`core.python`), and the child processes that run
//! Python DAG files for the DAG processor (a small pool, each child with a time and a memory
//! limit). The worker runs Python *tasks* itself (`updraft-worker`), with the SDK directory
//! and interpreter it gets from here.

mod parse;
pub mod sdk;

use std::path::PathBuf;
use std::time::Duration;

pub use parse::ParseChildren;

/// How Python children are started.
#[derive(Debug, Clone)]
pub struct PythonConfig {
    /// The interpreter (`core.python`, default `python3` on `PATH`).
    pub interpreter: String,
    /// The longest one DAG file may run (`dag_processor.dag_file_processor_timeout`).
    pub parse_timeout: Duration,
    /// The address space a parse child may use (`RLIMIT_AS`), in bytes; `None`: no limit.
    pub parse_memory_limit: Option<u64>,
    /// How many files are parsed at once.
    pub parse_concurrency: usize,
}

impl Default for PythonConfig {
    fn default() -> Self {
        PythonConfig {
            interpreter: "python3".to_string(),
            parse_timeout: Duration::from_secs(50),
            parse_memory_limit: Some(2 << 30),
            parse_concurrency: 2,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PythonError {
    /// The embedded SDK could not be written to the cache directory.
    #[error("cannot extract the Python SDK to {path}: {source}")]
    Extract {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `PYTHONPATH` for a child: `first` entries, then what the caller's environment had.
pub fn python_path(first: &[&std::path::Path]) -> std::ffi::OsString {
    let inherited = std::env::var_os("PYTHONPATH");
    let paths = first
        .iter()
        .map(|p| p.to_path_buf())
        .chain(inherited.iter().flat_map(std::env::split_paths));
    // Only fails for a path holding ':', which no directory of ours does.
    std::env::join_paths(paths).unwrap_or_default()
}
