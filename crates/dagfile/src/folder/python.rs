//! The Python files of a DAG folder: run by the [`PythonParser`] only when the file or a
//! module it imported from the folder changed since this process last ran it.
//!
//! A file that imports nothing from the folder, ran to its end and defined one DAG (or raised)
//! is also recorded like a YAML file ([`FileRecord`], keyed by a hash of its content and of the
//! parser's [`salt`](PythonParser::salt)), so another process does not run it again while it
//! is unchanged. A file that imports from the folder is run once by every process: a record
//! cannot say whether an imported module changed.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{now, racy, to_micros, FileOutcome, FileRecord, Found, Outcome, ScanStats};
use crate::python::{load_python_dags, might_define_dags, PythonParser};
use crate::PARSER_VERSION;

/// A file's (mtime, size) as last seen; `None` when it could not be looked at.
type Stamp = (PathBuf, Option<(Option<DateTime<Utc>>, u64)>);

/// What this process knows of a Python file since it last ran it.
#[derive(Debug)]
pub(super) struct PyCached {
    /// (mtime, size) of the file, then of each module it imported, as last seen.
    stamps: Vec<Stamp>,
    /// Something was modified too close to when it was read to trust the stamps.
    racy: bool,
    /// sha256 over the file and the modules it imported (path and content of each).
    fingerprint: String,
    imports: Vec<PathBuf>,
    outcome: Arc<Outcome>,
    /// What to record of it, when it can be recorded.
    record: Option<FileRecord>,
}

/// One Python file brought up to date, as the folder scan takes it.
pub(super) struct PyVisit {
    pub path: PathBuf,
    pub outcome: Arc<Outcome>,
    /// Its record still holds: what it loaded to is published already.
    pub unchanged: bool,
    pub record: Option<FileRecord>,
}

fn stamp(path: &Path) -> Option<(Option<DateTime<Utc>>, u64)> {
    let meta = fs::metadata(path).ok()?;
    Some((meta.modified().ok().map(to_micros), meta.len()))
}

fn fingerprint(content: &[u8], imports: &[PathBuf]) -> String {
    let mut hashed = Vec::with_capacity(content.len() + 64 * imports.len());
    hashed.extend_from_slice(&(content.len() as u64).to_le_bytes());
    hashed.extend_from_slice(content);
    for import in imports {
        hashed.extend_from_slice(import.as_os_str().as_encoded_bytes());
        hashed.push(0);
        match fs::read(import) {
            Ok(bytes) => {
                hashed.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
                hashed.extend_from_slice(&bytes);
            }
            Err(_) => hashed.extend_from_slice(b"missing"),
        }
    }
    crate::content_hash(&hashed)
}

/// The content hash a record of a Python file (and the DAG it defined) carries: the file and
/// what else decides what it loads to (the parser's salt: its SDK, its interpreter).
fn record_hash(content: &[u8], salt: &str) -> String {
    let mut hashed = content.to_vec();
    hashed.push(0);
    hashed.extend_from_slice(salt.as_bytes());
    crate::content_hash(&hashed)
}

/// Brings the Python files up to date: from `cache` when neither they nor their imports
/// changed, from `records` when an earlier process recorded an unchanged file, else by running
/// them (all that changed in one call, so the parser runs them side by side). Files that
/// vanished or that safe mode skips are left out.
pub(super) fn scan_python(
    folder: &Path,
    parser: &dyn PythonParser,
    cache: &mut HashMap<PathBuf, PyCached>,
    records: &mut HashMap<PathBuf, FileRecord>,
    files: Vec<Found>,
    stats: &mut ScanStats,
) -> Vec<PyVisit> {
    let salt = parser.salt();
    let mut kept: HashMap<PathBuf, (PyCached, bool)> = HashMap::with_capacity(files.len());
    let mut to_parse: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for file in files {
        let record = records.remove(&file.path);
        // A recorded outcome stands only while the database still holds the record.
        let previous = cache.remove(&file.path).filter(|p| {
            !matches!(p.outcome.as_ref(), Outcome::Recorded(_))
                || record.as_ref().map(|r| &r.content_hash)
                    == p.record.as_ref().map(|r| &r.content_hash)
        });
        if let Some(previous) = previous {
            let unchanged = matches!(previous.outcome.as_ref(), Outcome::Recorded(_));
            // Stamps taken too close to a write prove nothing: then the content decides.
            let same = !previous.racy
                && previous
                    .stamps
                    .iter()
                    .all(|(path, seen)| stamp(path) == *seen);
            if same {
                kept.insert(file.path, (previous, unchanged));
                continue;
            }
            // Changed (or untrusted) stamps: run it again only if some content changed.
            let Some(content) = read(&file.path, stats) else {
                continue;
            };
            if !might_define_dags(&content) {
                continue;
            }
            if fingerprint(&content, &previous.imports) == previous.fingerprint {
                let read_at = now();
                let stamps = stamps_of(&file.path, &previous.imports);
                let racy = is_racy(&stamps, read_at);
                let cached = PyCached {
                    stamps,
                    racy,
                    ..previous
                };
                kept.insert(file.path, (cached, unchanged));
                continue;
            }
            to_parse.push((file.path, content));
            continue;
        }
        let Some(content) = read(&file.path, stats) else {
            continue;
        };
        if !might_define_dags(&content) {
            continue;
        }
        let hash = record_hash(&content, &salt);
        match record.filter(|r| r.content_hash == hash) {
            Some(record) => {
                stats.unchanged += 1;
                let read_at = now();
                let stamps = stamps_of(&file.path, &[]);
                let cached = PyCached {
                    racy: is_racy(&stamps, read_at),
                    stamps,
                    fingerprint: fingerprint(&content, &[]),
                    imports: Vec::new(),
                    outcome: Arc::new(Outcome::Recorded(record.outcome.clone())),
                    record: Some(record),
                };
                kept.insert(file.path, (cached, true));
            }
            None => to_parse.push((file.path, content)),
        }
    }

    if !to_parse.is_empty() {
        let paths: Vec<PathBuf> = to_parse.iter().map(|(path, _)| path.clone()).collect();
        let answers = parser.parse(folder, &paths);
        stats.parsed += to_parse.len();
        for ((path, content), answer) in to_parse.into_iter().zip(answers) {
            let read_at = now();
            let source = String::from_utf8_lossy(&content);
            let mut imports: Vec<PathBuf> = answer
                .imports
                .into_iter()
                .filter(|import| import != &path)
                .collect();
            imports.sort();
            imports.dedup();
            // Only what the file alone decides is recorded: no imports from the folder, and
            // an outcome of its own (not a timeout or a crash, which may not happen again).
            let hash = (answer.settled && imports.is_empty()).then(|| record_hash(&content, &salt));
            let outcome = match answer.dags {
                Ok(documents) => {
                    let single = hash.as_deref().filter(|_| documents.len() == 1);
                    match load_python_dags(&path, &source, documents, single) {
                        Ok(dags) => Outcome::Python(dags),
                        Err(error) => Outcome::Failed(error),
                    }
                }
                Err(error) => Outcome::Failed(error),
            };
            let stamps = stamps_of(&path, &imports);
            let recorded = match &outcome {
                Outcome::Python(dags) if dags.len() == 1 => {
                    Some(FileOutcome::Dag(dags[0].dag.dag_id.clone()))
                }
                Outcome::Failed(error) => Some(FileOutcome::ImportError(error.clone())),
                _ => None,
            };
            let record = hash.zip(recorded).map(|(content_hash, outcome)| {
                let (mtime, size) = stamps[0].1.unwrap_or((None, content.len() as u64));
                FileRecord {
                    path: path.clone(),
                    mtime,
                    size,
                    content_hash,
                    recorded_at: read_at,
                    parser_version: PARSER_VERSION.to_string(),
                    outcome,
                }
            });
            let cached = PyCached {
                racy: is_racy(&stamps, read_at),
                stamps,
                fingerprint: fingerprint(&content, &imports),
                imports,
                outcome: Arc::new(outcome),
                record,
            };
            kept.insert(path, (cached, false));
        }
    }
    let visits = kept
        .iter()
        .map(|(path, (cached, unchanged))| PyVisit {
            path: path.clone(),
            outcome: Arc::clone(&cached.outcome),
            unchanged: *unchanged,
            record: cached.record.clone(),
        })
        .collect();
    *cache = kept
        .into_iter()
        .map(|(path, (cached, _))| (path, cached))
        .collect();
    visits
}

fn read(path: &Path, stats: &mut ScanStats) -> Option<Vec<u8>> {
    stats.read += 1;
    match fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        // Unreadable: tried again at the next scan, like a YAML file.
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read a Python DAG file");
            None
        }
    }
}

fn stamps_of(path: &Path, imports: &[PathBuf]) -> Vec<Stamp> {
    std::iter::once(path)
        .chain(imports.iter().map(PathBuf::as_path))
        .map(|p| (p.to_path_buf(), stamp(p)))
        .collect()
}

fn is_racy(stamps: &[Stamp], read_at: DateTime<Utc>) -> bool {
    stamps
        .iter()
        .any(|(_, seen)| seen.is_none_or(|(mtime, _)| racy(mtime, read_at)))
}
