//! A DAG folder: recursive discovery of DAG files and a cache that re-reads only the files whose
//! modification time or size changed since the last scan, or since an earlier process recorded
//! them ([`FileRecord`]).

mod ignore;
mod python;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};

pub use ignore::IGNORE_FILE;

use crate::python::{is_python, PythonParser};
use crate::schema::MAX_FILE_BYTES;
use crate::{load_source, FolderScan, ImportError, LoadedDag, PARSER_VERSION};
use ignore::IgnoreRules;

/// Files modified this close to the moment they were read are read again at the next scan (and
/// re-parsed only if their content changed): a file system with coarse timestamps could hide a
/// second change within the same tick ("racy git").
pub const RACY_WINDOW: TimeDelta = TimeDelta::seconds(2);

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
    /// Files that did not change since their record: not parsed, their outcome is the
    /// recorded one.
    pub unchanged: usize,
    /// Files parsed (their content changed or was new).
    pub parsed: usize,
    pub elapsed: Duration,
}

/// A DAG folder with a cache: `scan()` re-reads only files whose (mtime, size) changed since
/// the previous scan; [`scan_with_records`](Self::scan_with_records) also skips the files that
/// did not change since they were recorded by an earlier process.
pub struct DagFolder {
    root: PathBuf,
    cache: HashMap<PathBuf, Cached>,
    /// Runs `.py` files; without one they are not DAG files.
    python: Option<Arc<dyn PythonParser>>,
    python_cache: HashMap<PathBuf, python::PyCached>,
}

impl std::fmt::Debug for DagFolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DagFolder")
            .field("root", &self.root)
            .field("files", &(self.cache.len() + self.python_cache.len()))
            .field("python", &self.python.is_some())
            .finish()
    }
}

/// What was loaded from a DAG file and when, as a caller keeps it between processes (the
/// metadata database does): a fingerprint of the file and what it loaded to. A later scan
/// trusts a file whose (mtime, size) still match, and reads but does not parse a file whose
/// content hash still matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub path: PathBuf,
    /// Modification time to the microsecond; `None` where the file system keeps none.
    pub mtime: Option<DateTime<Utc>>,
    pub size: u64,
    /// sha256 of the content, lowercase hex (as [`LoadedDag::content_hash`]).
    pub content_hash: String,
    /// When the content was read, to the microsecond.
    pub recorded_at: DateTime<Utc>,
    /// The [`PARSER_VERSION`] that produced `outcome`; records of another version are ignored.
    pub parser_version: String,
    pub outcome: FileOutcome,
}

/// What a DAG file loaded to, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    /// The file defines the DAG with this dag_id.
    Dag(String),
    /// The file does not load: the import-error text.
    ImportError(String),
}

#[derive(Debug)]
struct Cached {
    mtime: Option<DateTime<Utc>>,
    size: u64,
    /// Read again next time: modified within `RACY_WINDOW` of being read, or unreadable.
    racy: bool,
    /// sha256 of the content and when it was read; `None` when it was not read (too big,
    /// unreadable).
    read: Option<(String, DateTime<Utc>)>,
    outcome: Arc<Outcome>,
}

#[derive(Debug)]
enum Outcome {
    Loaded(Box<LoadedDag>),
    /// The DAGs a Python file defined (any number); recorded only as `folder/python.rs` says.
    Python(Vec<LoadedDag>),
    Failed(String),
    /// Known from a record only: the file was not parsed by this process.
    Recorded(FileOutcome),
}

/// A file found by the walk.
struct Found {
    path: PathBuf,
    mtime: Option<DateTime<Utc>>,
    size: u64,
}

/// One file brought up to date.
struct Visit {
    cached: Cached,
    /// Its record still holds: what it loaded to is published already.
    unchanged: bool,
    /// The record to keep for the next scan; `None` when the content was not read.
    record: Option<FileRecord>,
}

impl DagFolder {
    pub fn new(root: PathBuf) -> Self {
        DagFolder {
            root,
            cache: HashMap::new(),
            python: None,
            python_cache: HashMap::new(),
        }
    }

    /// A folder whose `.py` files are DAG files too, run by `parser`.
    pub fn with_python(root: PathBuf, parser: Arc<dyn PythonParser>) -> Self {
        DagFolder {
            python: Some(parser),
            ..DagFolder::new(root)
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Finds every DAG file under the root and loads the changed ones. Results are sorted by
    /// path. A missing root is an empty folder (a fresh install has none yet).
    pub fn scan(&mut self) -> Result<FolderScan, DagFolderError> {
        self.scan_with_records(Vec::new())
    }

    /// Like [`scan`](Self::scan), given what an earlier scan recorded (its
    /// [`FolderScan::files`], for files whose outcome is still published): a file that did
    /// not change since its record is neither parsed nor reported in [`FolderScan::dags`]
    /// (its DAG is published as it is), and a recorded import error is reported again.
    pub fn scan_with_records(
        &mut self,
        records: Vec<FileRecord>,
    ) -> Result<FolderScan, DagFolderError> {
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
            Ok(_) => walk(&self.root, self.python.is_some())?,
        };
        let mut records: HashMap<PathBuf, FileRecord> = records
            .into_iter()
            .filter(|r| r.parser_version == PARSER_VERSION)
            .map(|r| (r.path.clone(), r))
            .collect();

        let mut stats = ScanStats {
            files: found.len(),
            ..ScanStats::default()
        };
        let (python_files, found): (Vec<Found>, Vec<Found>) =
            found.into_iter().partition(|f| is_python(&f.path));
        let mut cache = HashMap::with_capacity(found.len());
        let mut visits = Vec::with_capacity(found.len() + python_files.len());
        for file in found {
            let previous = self.cache.remove(&file.path);
            let record = records.remove(&file.path);
            let path = file.path.clone();
            let Some(visit) = load(file, previous, record, &mut stats) else {
                continue;
            };
            let outcome = Arc::clone(&visit.cached.outcome);
            cache.insert(path.clone(), visit.cached);
            visits.push((path, outcome, visit.unchanged, visit.record));
        }
        self.cache = cache;
        if let Some(parser) = &self.python {
            let outcomes = python::scan_python(
                &self.root,
                parser.as_ref(),
                &mut self.python_cache,
                &mut records,
                python_files,
                &mut stats,
            );
            visits.extend(
                outcomes
                    .into_iter()
                    .map(|v| (v.path, v.outcome, v.unchanged, v.record)),
            );
            visits.sort_by(|a, b| a.0.cmp(&b.0));
        }

        let mut scan = FolderScan::default();
        let mut owners: HashMap<&str, &Path> = HashMap::new();
        for (path, outcome, unchanged, record) in &visits {
            if let Outcome::Python(dags) = outcome.as_ref() {
                let mut taken = Vec::new();
                for loaded in dags {
                    let dag_id = loaded.dag.dag_id.as_str();
                    match owners.get(dag_id) {
                        Some(owner) => taken.push(format!(
                            "dag_id `{dag_id}` is already defined in {}",
                            owner.display()
                        )),
                        None => {
                            owners.insert(dag_id, path);
                            scan.dags.push(loaded.clone());
                        }
                    }
                }
                if taken.is_empty() {
                    scan.files.extend(record.clone());
                } else {
                    scan.import_errors.push(ImportError {
                        filename: path.clone(),
                        error: taken.join("\n"),
                    });
                }
                continue;
            }
            let dag_id = match outcome.as_ref() {
                Outcome::Loaded(loaded) => Ok(loaded.dag.dag_id.as_str()),
                Outcome::Recorded(FileOutcome::Dag(dag_id)) => Ok(dag_id.as_str()),
                Outcome::Failed(error) | Outcome::Recorded(FileOutcome::ImportError(error)) => {
                    Err(error)
                }
                Outcome::Python(_) => continue,
            };
            match dag_id {
                Ok(dag_id) => match owners.get(dag_id) {
                    // Not recorded: which file wins depends on the others.
                    Some(owner) => scan.import_errors.push(ImportError {
                        filename: path.clone(),
                        error: format!(
                            "dag_id `{dag_id}` is already defined in {}",
                            owner.display()
                        ),
                    }),
                    None => {
                        owners.insert(dag_id, path);
                        if let (false, Outcome::Loaded(loaded)) = (unchanged, outcome.as_ref()) {
                            scan.dags.push(LoadedDag::clone(loaded));
                        }
                        scan.files.extend(record.clone());
                    }
                },
                Err(error) => {
                    scan.import_errors.push(ImportError {
                        filename: path.clone(),
                        error: error.clone(),
                    });
                    scan.files.extend(record.clone());
                }
            }
        }
        stats.elapsed = started.elapsed();
        scan.stats = stats;
        tracing::debug!(
            root = %self.root.display(),
            files = stats.files,
            unchanged = stats.unchanged,
            read = stats.read,
            parsed = stats.parsed,
            dags = scan.dags.len(),
            import_errors = scan.import_errors.len(),
            "dag folder scanned"
        );
        Ok(scan)
    }
}

impl Cached {
    fn same_stat(&self, file: &Found) -> bool {
        self.mtime == file.mtime && self.size == file.size
    }

    fn hash(&self) -> Option<&str> {
        self.read.as_ref().map(|(hash, _)| hash.as_str())
    }

    /// The outcome, if this process loaded it (not only known from a record).
    fn loaded(&self) -> Option<&Arc<Outcome>> {
        match self.outcome.as_ref() {
            Outcome::Recorded(_) => None,
            Outcome::Loaded(_) | Outcome::Failed(_) | Outcome::Python(_) => Some(&self.outcome),
        }
    }

    fn record(&self, path: &Path) -> Option<FileRecord> {
        let (content_hash, recorded_at) = self.read.clone()?;
        let outcome = match self.outcome.as_ref() {
            Outcome::Loaded(loaded) => FileOutcome::Dag(loaded.dag.dag_id.clone()),
            Outcome::Failed(error) => FileOutcome::ImportError(error.clone()),
            Outcome::Recorded(outcome) => outcome.clone(),
            // Recorded by `folder/python.rs`, never from this cache.
            Outcome::Python(_) => return None,
        };
        Some(FileRecord {
            path: path.to_path_buf(),
            mtime: self.mtime,
            size: self.size,
            content_hash,
            recorded_at,
            parser_version: PARSER_VERSION.to_string(),
            outcome,
        })
    }
}

/// Whether a file modified at `mtime` could have changed again unseen after being read at
/// `read_at`.
fn racy(mtime: Option<DateTime<Utc>>, read_at: DateTime<Utc>) -> bool {
    mtime.is_none_or(|m| {
        m.checked_add_signed(RACY_WINDOW)
            .is_none_or(|settled| settled > read_at)
    })
}

/// Brings one file up to date, from this process's cache or its record, reading and parsing
/// only what changed. `None`: the file vanished since the walk.
fn load(
    file: Found,
    previous: Option<Cached>,
    record: Option<FileRecord>,
    stats: &mut ScanStats,
) -> Option<Visit> {
    // 1. Unchanged since this process read it. A record, unlike this process's own cache, is
    // never trusted on (mtime, size) alone: files deployed with fixed timestamps (images built
    // reproducibly, `cp -p`, `rsync -t`, `tar x`) can change content and keep both. A record
    // saves the parsing (step 3), not the reading.
    let fresh = previous
        .as_ref()
        .is_some_and(|c| c.same_stat(&file) && !c.racy);
    let (previous, record) = match (previous, record) {
        (Some(cached), Some(record))
            if fresh && cached.hash() == Some(record.content_hash.as_str()) =>
        {
            stats.unchanged += 1;
            // Kept as it is: rewriting it with this process's view would gain nothing.
            return Some(Visit {
                cached,
                unchanged: true,
                record: Some(record),
            });
        }
        other => other,
    };
    let previous = match previous {
        // Loaded by this process and not published as recorded: published again from memory.
        Some(cached) if fresh && cached.loaded().is_some() => {
            return Some(Visit {
                record: cached.record(&file.path),
                cached,
                unchanged: false,
            });
        }
        previous => previous,
    };

    // 2. Too big to read: an import error, by its size alone.
    if file.size > MAX_FILE_BYTES as u64 {
        let outcome = Outcome::Failed(crate::schema::too_big(file.size).to_string());
        let cached = Cached {
            mtime: file.mtime,
            size: file.size,
            racy: false,
            read: None,
            outcome: Arc::new(outcome),
        };
        return Some(Visit {
            cached,
            unchanged: false,
            record: None,
        });
    }

    // 3. Read it; parse it only if its content is new.
    let read_at = now();
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
                read: None,
                outcome: Arc::new(outcome),
            };
            return Some(Visit {
                cached,
                unchanged: false,
                record: None,
            });
        }
    };
    let hash = crate::content_hash(&bytes);
    let same_as_before = previous
        .as_ref()
        .filter(|c| c.hash() == Some(hash.as_str()))
        .and_then(Cached::loaded)
        .cloned();
    let still_racy = racy(file.mtime, read_at);
    let recorded = record.filter(|r| r.content_hash == hash);
    let unchanged = recorded.is_some();
    // A record of the same content, mtime and size gains nothing by being rewritten: it is
    // kept as it is, so a warm scan writes nothing.
    let kept = recorded
        .as_ref()
        .filter(|r| r.mtime == file.mtime && r.size == file.size)
        .cloned();
    let outcome = match (same_as_before, recorded) {
        (Some(outcome), _) => outcome,
        (None, Some(record)) => Arc::new(Outcome::Recorded(record.outcome)),
        (None, None) => {
            stats.parsed += 1;
            Arc::new(match load_source(&file.path, bytes, hash.clone()) {
                Ok(loaded) => Outcome::Loaded(Box::new(loaded)),
                Err(error) => Outcome::Failed(error),
            })
        }
    };
    if unchanged {
        stats.unchanged += 1;
    }
    let cached = Cached {
        mtime: file.mtime,
        size: file.size,
        racy: still_racy,
        read: Some((hash, read_at)),
        outcome,
    };
    let record = kept.or_else(|| cached.record(&file.path));
    Some(Visit {
        cached,
        unchanged,
        record,
    })
}

/// Now, to the microsecond (as records keep instants).
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A file time to the microsecond (as records keep instants).
fn to_micros(time: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(time).trunc_subsecs(6)
}

/// Lists the DAG files below `root`, sorted by path: `.yaml`, `.yml` and `.json` files (and
/// `.py` files when `python`), not
/// hidden, not ignored by a `.updraftignore`. Symlinks are followed, each folder once.
fn walk(root: &Path, python: bool) -> Result<Vec<Found>, DagFolderError> {
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
            // Follow symlinks; a dangling one is skipped. Other entries are looked up from
            // their folder, not by their whole path.
            let meta = match entry.file_type() {
                Ok(kind) if !kind.is_symlink() => entry.metadata(),
                _ => fs::metadata(&path),
            };
            let meta = match meta {
                Ok(meta) => meta,
                Err(_) => continue,
            };
            if meta.is_dir() {
                if !rules.iter().any(|r| r.ignores(&path, true)) {
                    stack.push((path, rules.clone()));
                }
            } else if meta.is_file()
                && (crate::Format::from_path(&path).is_some() || (python && is_python(&path)))
                && !rules.iter().any(|r| r.ignores(&path, false))
            {
                found.push(Found {
                    path,
                    mtime: meta.modified().ok().map(to_micros),
                    size: meta.len(),
                });
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}
