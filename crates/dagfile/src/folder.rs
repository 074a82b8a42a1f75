//! A DAG folder: recursive discovery of DAG files and a cache that re-reads only the files whose
//! modification time or size changed since the last scan.

mod ignore;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub use ignore::IGNORE_FILE;

use crate::schema::MAX_FILE_BYTES;
use crate::{load_source, FolderScan, ImportError, LoadedDag};
use ignore::IgnoreRules;

/// Files modified this close to the moment they were read are read again at the next scan (and
/// re-parsed only if their content changed): a file system with coarse timestamps could hide a
/// second change within the same tick ("racy git").
const RACY_WINDOW: Duration = Duration::from_secs(2);

/// Why a folder could not be scanned. A broken DAG file is not one of these: it is an
/// `ImportError` in the scan.
#[derive(Debug, thiserror::Error)]
pub enum DagFolderError {
    /// The folder exists but cannot be inspected.
    #[error("cannot access DAG folder {path}: {source}")]
    Access { path: PathBuf, source: io::Error },
    /// The configured path is a file, not a folder.
    #[error("DAG folder {path} is not a directory")]
    NotADirectory { path: PathBuf },
    /// A folder inside the DAG folder cannot be listed. The whole scan fails rather than
    /// reporting its DAGs as deleted.
    #[error("cannot list {path}: {source}")]
    ReadDir { path: PathBuf, source: io::Error },
}

/// What one scan did; a warm scan of unchanged files reads and parses nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// DAG files found (after ignore rules).
    pub files: usize,
    /// Files whose content was read (changed, new, or recently modified).
    pub read: usize,
    /// Files parsed (their content changed or was new).
    pub parsed: usize,
    pub elapsed: Duration,
}

/// A DAG folder with a cache: `scan()` re-reads only files whose (mtime, size) changed.
#[derive(Debug)]
pub struct DagFolder {
    root: PathBuf,
    cache: HashMap<PathBuf, Cached>,
}

#[derive(Debug)]
struct Cached {
    mtime: Option<SystemTime>,
    size: u64,
    /// Read again next time: modified within `RACY_WINDOW` of being read.
    racy: bool,
    /// sha256 of the content; `None` when it was not read (too big).
    hash: Option<String>,
    outcome: Arc<Outcome>,
}

#[derive(Debug)]
enum Outcome {
    Loaded(Box<LoadedDag>),
    Failed(String),
}

/// A file found by the walk.
struct Found {
    path: PathBuf,
    mtime: Option<SystemTime>,
    size: u64,
}

impl DagFolder {
    pub fn new(root: PathBuf) -> Self {
        DagFolder {
            root,
            cache: HashMap::new(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Finds every DAG file under the root and loads the changed ones. Results are sorted by
    /// path. A missing root is an empty folder (a fresh install has none yet).
    pub fn scan(&mut self) -> Result<FolderScan, DagFolderError> {
        let started = Instant::now();
        let found = match fs::metadata(&self.root) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(DagFolderError::Access {
                    path: self.root.clone(),
                    source,
                })
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(DagFolderError::NotADirectory {
                    path: self.root.clone(),
                })
            }
            Ok(_) => walk(&self.root)?,
        };

        let mut stats = ScanStats {
            files: found.len(),
            ..ScanStats::default()
        };
        let mut cache = HashMap::with_capacity(found.len());
        let mut outcomes = Vec::with_capacity(found.len());
        for file in found {
            let previous = self.cache.remove(&file.path);
            let Some(cached) = load(file, previous, &mut stats) else {
                continue;
            };
            outcomes.push((cached.0.clone(), Arc::clone(&cached.1.outcome)));
            cache.insert(cached.0, cached.1);
        }
        self.cache = cache;

        let mut scan = FolderScan::default();
        let mut owners: HashMap<&str, &Path> = HashMap::new();
        for (path, outcome) in &outcomes {
            match outcome.as_ref() {
                Outcome::Loaded(loaded) => match owners.get(loaded.dag.dag_id.as_str()) {
                    Some(owner) => scan.import_errors.push(ImportError {
                        filename: path.clone(),
                        error: format!(
                            "dag_id `{}` is already defined in {}",
                            loaded.dag.dag_id,
                            owner.display()
                        ),
                    }),
                    None => {
                        owners.insert(&loaded.dag.dag_id, path);
                        scan.dags.push(LoadedDag::clone(loaded));
                    }
                },
                Outcome::Failed(error) => scan.import_errors.push(ImportError {
                    filename: path.clone(),
                    error: error.clone(),
                }),
            }
        }
        stats.elapsed = started.elapsed();
        scan.stats = stats;
        tracing::debug!(
            root = %self.root.display(),
            files = stats.files,
            parsed = stats.parsed,
            dags = scan.dags.len(),
            import_errors = scan.import_errors.len(),
            "dag folder scanned"
        );
        Ok(scan)
    }
}

/// Brings one file's cache entry up to date. `None`: the file vanished since the walk.
fn load(file: Found, previous: Option<Cached>, stats: &mut ScanStats) -> Option<(PathBuf, Cached)> {
    let unchanged = |c: &Cached| c.mtime == file.mtime && c.size == file.size;
    if previous.as_ref().is_some_and(|c| unchanged(c) && !c.racy) {
        return previous.map(|c| (file.path, c));
    }
    if file.size > MAX_FILE_BYTES as u64 {
        let outcome = Outcome::Failed(crate::schema::too_big(file.size).to_string());
        let cached = Cached {
            mtime: file.mtime,
            size: file.size,
            racy: false,
            hash: None,
            outcome: Arc::new(outcome),
        };
        return Some((file.path, cached));
    }
    let read_at = SystemTime::now();
    stats.read += 1;
    let bytes = match fs::read(&file.path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            // Not cached as such: fixing permissions does not change mtime, so retry each scan.
            let outcome = Outcome::Failed(format!("cannot read the file: {e}"));
            let cached = Cached {
                mtime: None,
                size: u64::MAX,
                racy: true,
                hash: None,
                outcome: Arc::new(outcome),
            };
            return Some((file.path, cached));
        }
    };
    let hash = crate::content_hash(&bytes);
    let racy = file.mtime.is_none_or(|m| m + RACY_WINDOW > read_at);
    let outcome = match previous {
        Some(c) if c.hash.as_deref() == Some(hash.as_str()) => c.outcome,
        _ => {
            stats.parsed += 1;
            Arc::new(match load_source(&file.path, bytes, hash.clone()) {
                Ok(loaded) => Outcome::Loaded(Box::new(loaded)),
                Err(error) => Outcome::Failed(error),
            })
        }
    };
    let cached = Cached {
        mtime: file.mtime,
        size: file.size,
        racy,
        hash: Some(hash),
        outcome,
    };
    Some((file.path, cached))
}

/// Lists the DAG files below `root`, sorted by path: `.yaml`, `.yml` and `.json` files, not
/// hidden, not ignored by a `.updraftignore`. Symlinks are followed, each folder once.
fn walk(root: &Path) -> Result<Vec<Found>, DagFolderError> {
    let mut found = Vec::new();
    let mut seen_dirs = HashSet::new();
    let mut stack: Vec<(PathBuf, Vec<Arc<IgnoreRules>>)> = vec![(root.to_path_buf(), Vec::new())];
    while let Some((dir, mut rules)) = stack.pop() {
        let canonical = fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
        if !seen_dirs.insert(canonical) {
            continue;
        }
        let read_dir_error = |source| DagFolderError::ReadDir {
            path: dir.clone(),
            source,
        };
        let entries = fs::read_dir(&dir).map_err(read_dir_error)?;
        let ignore_path = dir.join(IGNORE_FILE);
        match fs::read_to_string(&ignore_path) {
            Ok(text) => {
                let parsed = IgnoreRules::parse(&dir, &text);
                if !parsed.is_empty() {
                    rules.push(Arc::new(parsed));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %ignore_path.display(), error = %e, "cannot read ignore file")
            }
        }
        for entry in entries {
            let entry = entry.map_err(|source| DagFolderError::ReadDir {
                path: dir.clone(),
                source,
            })?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            // Follow symlinks; a dangling one is skipped.
            let meta = match fs::metadata(&path) {
                Ok(meta) => meta,
                Err(_) => continue,
            };
            if meta.is_dir() {
                if !rules.iter().any(|r| r.ignores(&path, true)) {
                    stack.push((path, rules.clone()));
                }
            } else if meta.is_file()
                && crate::Format::from_path(&path).is_some()
                && !rules.iter().any(|r| r.ignores(&path, false))
            {
                found.push(Found {
                    path,
                    mtime: meta.modified().ok(),
                    size: meta.len(),
                });
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}
