//! The Python files of a DAG folder: run by the [`PythonParser`] only when the file or a
//! module it imported from the folder changed since this process last ran it.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{now, racy, to_micros, Found, Outcome, ScanStats};
use crate::python::{load_python_dags, might_define_dags, PythonParser};

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
    pub(super) outcome: Arc<Outcome>,
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

/// Brings the Python files up to date: from `cache` when neither they nor their imports
/// changed, else by running them (all that changed in one call, so the parser runs them
/// side by side). Answers each file's outcome; files that vanished or that safe mode skips
/// are left out.
pub(super) fn scan_python(
    folder: &Path,
    parser: &dyn PythonParser,
    cache: &mut HashMap<PathBuf, PyCached>,
    files: Vec<Found>,
    stats: &mut ScanStats,
) -> Vec<(PathBuf, Arc<Outcome>)> {
    let mut kept: HashMap<PathBuf, PyCached> = HashMap::with_capacity(files.len());
    let mut to_parse: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for file in files {
        let previous = cache.remove(&file.path);
        if let Some(previous) = previous {
            // Stamps taken too close to a write prove nothing: then the content decides.
            let same = !previous.racy
                && previous
                    .stamps
                    .iter()
                    .all(|(path, seen)| stamp(path) == *seen);
            if same {
                kept.insert(file.path, previous);
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
                kept.insert(
                    file.path,
                    PyCached {
                        stamps,
                        racy,
                        ..previous
                    },
                );
                continue;
            }
            to_parse.push((file.path, content));
            continue;
        }
        let Some(content) = read(&file.path, stats) else {
            continue;
        };
        if might_define_dags(&content) {
            to_parse.push((file.path, content));
        }
    }

    if !to_parse.is_empty() {
        let paths: Vec<PathBuf> = to_parse.iter().map(|(path, _)| path.clone()).collect();
        let answers = parser.parse(folder, &paths);
        stats.parsed += to_parse.len();
        for ((path, content), answer) in to_parse.into_iter().zip(answers) {
            let read_at = now();
            let source = String::from_utf8_lossy(&content);
            let outcome = match answer.dags {
                Ok(documents) => match load_python_dags(&path, &source, &documents) {
                    Ok(dags) => Outcome::Python(dags),
                    Err(error) => Outcome::Failed(error),
                },
                Err(error) => Outcome::Failed(error),
            };
            let mut imports: Vec<PathBuf> = answer
                .imports
                .into_iter()
                .filter(|import| import != &path)
                .collect();
            imports.sort();
            imports.dedup();
            let stamps = stamps_of(&path, &imports);
            let racy = is_racy(&stamps, read_at);
            kept.insert(
                path,
                PyCached {
                    stamps,
                    racy,
                    fingerprint: fingerprint(&content, &imports),
                    imports,
                    outcome: Arc::new(outcome),
                },
            );
        }
    }
    let outcomes = kept
        .iter()
        .map(|(path, cached)| (path.clone(), Arc::clone(&cached.outcome)))
        .collect();
    *cache = kept;
    outcomes
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
