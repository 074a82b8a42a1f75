//! Python DAG files: this crate runs no user code, so a [`PythonParser`] (the binary passes
//! the Python bridge's) runs each file in a child process and answers with the DAG documents
//! it defined, which are loaded here like JSON DAG files so that validation is shared.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::schema::parse_dag_value;
use crate::{render, LoadedDag};

/// Runs Python DAG files and reports what each defined.
pub trait PythonParser: Send + Sync {
    /// Parses `files` (absolute paths below `folder`), several at once as the parser sees
    /// fit; one answer per file, in the same order.
    fn parse(&self, folder: &Path, files: &[PathBuf]) -> Vec<PythonAnswer>;

    /// What besides a file decides what it loads to (the SDK, the interpreter): part of the
    /// hash a file's record carries, so that a record made with another SDK is not trusted.
    fn salt(&self) -> String;
}

/// What running one Python DAG file gave.
#[derive(Debug, Clone, PartialEq)]
pub struct PythonAnswer {
    /// Each DAG the file defined, as a JSON DAG document; or the import-error text (an
    /// exception with its file, line and traceback; a timeout; a crash).
    pub dags: Result<Vec<serde_json::Value>, String>,
    /// Modules under the DAG folder the file imported (absolute paths): a change to one of
    /// them is a change of the file.
    pub imports: Vec<PathBuf>,
    /// The file ran to its end (an answer, or an exception it raised), so running it again
    /// unchanged gives the same; `false` for a timeout, a crash, an interpreter that could
    /// not start.
    pub settled: bool,
}

/// Whether a `.py` file may define DAGs: like Airflow's safe mode, a file that does not
/// mention `dag` (in any case) is not run at all.
pub fn might_define_dags(content: &[u8]) -> bool {
    content.windows(3).any(|w| w.eq_ignore_ascii_case(b"dag"))
}

/// Whether the file is a Python source file (`.py`).
pub fn is_python(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("py"))
}

/// Turns the documents a Python file answered into loaded DAGs, each validated as a JSON DAG
/// file is. `source` is the file's text, kept as the DAG's source (the Code view, and what a
/// worker executes at the run's pinned version).
///
/// `content_hash`: the hash each DAG is published with; `None` hashes the file with the DAG's
/// document (a definition can change while the file does not, when a module it imports does).
pub fn load_python_dags(
    path: &Path,
    source: &str,
    documents: Vec<serde_json::Value>,
    content_hash: Option<&str>,
) -> Result<Vec<LoadedDag>, String> {
    let default_dag_id = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut loaded: Vec<LoadedDag> = Vec::with_capacity(documents.len());
    let mut errors = Vec::new();
    for document in documents {
        let name = document
            .get("dag_id")
            .and_then(|v| v.as_str())
            .unwrap_or(&default_dag_id)
            .to_string();
        // The definition can change while the file does not (a module it imports changed):
        // the hash covers both, so such a change is a new version.
        let hash = match content_hash {
            Some(hash) => hash.to_string(),
            None => match document_hash(source, &document) {
                Ok(hash) => hash,
                Err(e) => {
                    errors.push(format!("a DAG document cannot be written as JSON: {e}"));
                    continue;
                }
            },
        };
        match parse_dag_value(document, &default_dag_id).map_err(|d| render(&d)) {
            Ok(dag) if loaded.iter().any(|l| l.dag.dag_id == dag.dag_id) => {
                errors.push(format!(
                    "dag_id `{}` is defined twice in the file",
                    dag.dag_id
                ));
            }
            Ok(dag) => loaded.push(LoadedDag {
                dag: std::sync::Arc::new(dag),
                fileloc: path.to_path_buf(),
                source: source.to_string(),
                content_hash: hash,
            }),
            Err(error) => errors.push(format!(
                "DAG `{name}` as the SDK wrote it does not load:\n{error}"
            )),
        }
    }
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(errors.join("\n"))
    }
}

/// sha256 of the file's text, a zero byte, and the document as pretty JSON: written into the
/// hash as it is produced, never held whole (a big DAG's document is megabytes).
fn document_hash(source: &str, document: &serde_json::Value) -> Result<String, serde_json::Error> {
    struct Hashing(Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hashing = Hashing(Sha256::new());
    hashing.0.update(source.as_bytes());
    hashing.0.update([0]);
    serde_json::to_writer_pretty(&mut hashing, document)?;
    Ok(crate::hex(&hashing.0.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_mode_looks_for_dag_in_any_case() {
        assert!(might_define_dags(b"from airflow import DAG"));
        assert!(might_define_dags(b"@dag()"));
        assert!(might_define_dags(b"x = 'Dag'"));
        assert!(!might_define_dags(b"import os\nprint(1)\n"));
        assert!(!might_define_dags(b""));
    }

    #[test]
    fn a_document_is_hashed_as_the_file_then_its_pretty_json() {
        let document = serde_json::json!({"dag_id": "a", "tasks": [{"task_id": "t"}]});
        let mut written = b"source".to_vec();
        written.push(0);
        written.extend(
            serde_json::to_string_pretty(&document)
                .unwrap()
                .into_bytes(),
        );
        assert_eq!(
            document_hash("source", &document).unwrap(),
            crate::content_hash(&written)
        );
    }

    #[test]
    fn documents_load_like_json_files_and_errors_name_the_dag() {
        let path = Path::new("/dags/two.py");
        let docs = vec![
            serde_json::json!({"dag_id": "a", "tasks": [{"task_id": "t", "operator": "python", "python_callable": "f"}]}),
            serde_json::json!({"dag_id": "b", "tasks": [{"task_id": "t", "operator": "empty"}]}),
        ];
        let loaded = load_python_dags(path, "source", docs.clone(), None).unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[0].dag.dag_id, "a");
        assert_eq!(loaded[1].dag.dag_id, "b");
        assert_ne!(loaded[0].content_hash, loaded[1].content_hash);
        assert_eq!(loaded[0].source, "source");

        let bad = vec![
            serde_json::json!({"dag_id": "c", "tasks": [{"task_id": "t", "operator": "nope"}]}),
        ];
        let error = load_python_dags(path, "source", bad, None).unwrap_err();
        assert!(error.contains("DAG `c`"), "{error}");
        assert!(error.contains("unknown operator `nope`"), "{error}");

        let twice = vec![docs[1].clone(), docs[1].clone()];
        let error = load_python_dags(path, "source", twice, None).unwrap_err();
        assert!(error.contains("dag_id `b` is defined twice"), "{error}");
    }
}
