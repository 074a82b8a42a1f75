//! File sensors (`operator: file_sensor`, Airflow's `FileSensor`): each poke looks for a file,
//! or a directory with a file somewhere below it, matching a path or a glob. The worker pokes
//! itself: no process. As Airflow: a relative path is joined to the `path` extra of the
//! sensor's `fs` connection; `*`, `?` and `[…]` match within one path component (not a
//! leading `.`), and `**` any number of directories when `recursive`.

use std::path::{Path, PathBuf};

use updraft_model::sensor::DEFAULT_FS_CONN_ID;
use updraft_model::{Dag, FileWait, Task};
use updraft_store::ClaimedTask;

use super::super::LocalWorker;

/// A rendered file sensor, ready to poke.
pub(in crate::local) struct FilePoke {
    /// The full path or glob.
    pub pattern: String,
    recursive: bool,
}

impl LocalWorker {
    /// Renders the sensor's path and joins it to its connection's base path.
    pub(in crate::local) async fn prepare_file_sensor(
        &self,
        claimed: &ClaimedTask,
        dag: &Dag,
        task: &Task,
        wait: &FileWait,
    ) -> Result<FilePoke, String> {
        let (ctx, _) = self
            .template_context(claimed, dag, task, std::iter::once(wait.filepath.as_str()))
            .await?;
        let filepath = self.render_field(&ctx, "filepath", &wait.filepath)?;
        let connections = crate::secrets::template_connections(self.execution.as_ref())
            .await
            .map_err(|e| format!("cannot read the connections: {e}"))?;
        let connection = connections.get(&wait.fs_conn_id);
        let base = match connection {
            Some(connection) => base_path(connection.extra.as_deref())
                .map_err(|why| format!("the connection `{}`: {why}", wait.fs_conn_id))?,
            // Airflow ships `fs_default` as the file system itself.
            None if wait.fs_conn_id == DEFAULT_FS_CONN_ID => String::new(),
            None => {
                return Err(format!(
                    "the connection `{}` is not defined",
                    wait.fs_conn_id
                ))
            }
        };
        let pattern = if base.is_empty() {
            filepath
        } else {
            Path::new(&base)
                .join(&filepath)
                .to_string_lossy()
                .into_owned()
        };
        Ok(FilePoke {
            pattern,
            recursive: wait.recursive,
        })
    }
}

impl FilePoke {
    /// The first match that ends the wait: a file, or a directory holding a file.
    pub(in crate::local) fn poke(&self) -> Option<PathBuf> {
        matches(&self.pattern, self.recursive)
            .into_iter()
            .find(|path| path.is_file() || (path.is_dir() && holds_a_file(path)))
    }
}

/// The `path` of a connection's extra (a JSON object), `""` without one.
fn base_path(extra: Option<&str>) -> Result<String, String> {
    let Some(extra) = extra.filter(|e| !e.trim().is_empty()) else {
        return Ok(String::new());
    };
    let value: serde_json::Value =
        serde_json::from_str(extra).map_err(|e| format!("its extra is not JSON: {e}"))?;
    Ok(value
        .get("path")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned())
}

fn holds_a_file(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        path.is_file() || (path.is_dir() && holds_a_file(&path))
    })
}

/// The paths matching `pattern`, as Python's `glob.glob(pattern, recursive=…)`.
fn matches(pattern: &str, recursive: bool) -> Vec<PathBuf> {
    let absolute = pattern.starts_with('/');
    let parts: Vec<&str> = pattern.split('/').filter(|p| !p.is_empty()).collect();
    if !parts.iter().any(|p| has_magic(p)) {
        let path = PathBuf::from(pattern);
        return if path.exists() { vec![path] } else { vec![] };
    }
    let start = if absolute {
        PathBuf::from("/")
    } else {
        PathBuf::from(".")
    };
    let mut found = Vec::new();
    expand(&start, &parts, recursive, !absolute, &mut found);
    found
}

fn has_magic(part: &str) -> bool {
    part.contains(['*', '?', '['])
}

/// Walks `parts` from `dir`; `relative` strips the leading `./` from what it finds.
fn expand(dir: &Path, parts: &[&str], recursive: bool, relative: bool, found: &mut Vec<PathBuf>) {
    let Some((part, rest)) = parts.split_first() else {
        found.push(if relative {
            dir.strip_prefix(".").unwrap_or(dir).to_path_buf()
        } else {
            dir.to_path_buf()
        });
        return;
    };
    if *part == "**" && recursive {
        // Zero directories, then each directory below (not hidden ones).
        expand(dir, rest, recursive, relative, found);
        for sub in children(dir).into_iter().filter(|p| p.is_dir()) {
            expand(&sub, parts, recursive, relative, found);
        }
        return;
    }
    if !has_magic(part) {
        let next = dir.join(part);
        if next.exists() {
            expand(&next, rest, recursive, relative, found);
        }
        return;
    }
    for child in children(dir) {
        let name = child
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') && !part.starts_with('.') {
            continue;
        }
        if wildcard(part.as_bytes(), name.as_bytes()) && (rest.is_empty() || child.is_dir()) {
            expand(&child, rest, recursive, relative, found);
        }
    }
}

/// The entries of `dir` that are not hidden, sorted.
fn children(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    out.retain(|p| {
        p.file_name()
            .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
            || p.file_name().is_none()
    });
    out.sort();
    out
}

/// `fnmatch` on one path component: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`.
fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| wildcard(rest, &name[i..])),
        Some((b'?', rest)) => !name.is_empty() && wildcard(rest, &name[1..]),
        Some((b'[', rest)) => {
            let Some(close) = rest.iter().skip(1).position(|&c| c == b']').map(|i| i + 1) else {
                // No closing bracket: a literal `[`.
                return name.first() == Some(&b'[') && wildcard(rest, &name[1..]);
            };
            let Some((&c, name_rest)) = name.split_first() else {
                return false;
            };
            let (negated, set) = match rest[..close].split_first() {
                Some((b'!', set)) => (true, set),
                _ => (false, &rest[..close]),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == b'-' {
                    hit |= set[i] <= c && c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == c;
                    i += 1;
                }
            }
            hit != negated && wildcard(&rest[close + 1..], name_rest)
        }
        Some((&literal, rest)) => name.first() == Some(&literal) && wildcard(rest, &name[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_fnmatch() {
        for (pattern, name, expected) in [
            ("*.csv", "a.csv", true),
            ("*.csv", "a.csv.tmp", false),
            ("part-?", "part-1", true),
            ("part-?", "part-12", false),
            ("[ab]*", "b.txt", true),
            ("[a-c]x", "dx", false),
            ("[!a]x", "bx", true),
            ("[!a]x", "ax", false),
            ("exact", "exact", true),
        ] {
            assert_eq!(
                wildcard(pattern.as_bytes(), name.as_bytes()),
                expected,
                "{pattern} {name}"
            );
        }
    }

    #[test]
    fn globs_find_files_and_directories_with_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_string_lossy().into_owned();
        let poke = |pattern: &str, recursive| {
            FilePoke {
                pattern: format!("{root}/{pattern}"),
                recursive,
            }
            .poke()
        };
        assert_eq!(poke("in/*.csv", false), None);
        std::fs::create_dir_all(dir.path().join("in/empty")).unwrap();
        assert_eq!(poke("in/*", false), None, "an empty directory is no match");
        std::fs::create_dir_all(dir.path().join("in/2026/01")).unwrap();
        std::fs::write(dir.path().join("in/2026/01/a.csv"), "x").unwrap();
        assert_eq!(poke("in/*.csv", false), None);
        assert_eq!(
            poke("in/**/*.csv", false),
            None,
            "** is * without recursive"
        );
        assert_eq!(
            poke("in/**/*.csv", true),
            Some(dir.path().join("in/2026/01/a.csv"))
        );
        assert_eq!(poke("in/2026", false), Some(dir.path().join("in/2026")));
        std::fs::write(dir.path().join("in/.hidden.csv"), "x").unwrap();
        assert_eq!(
            poke("in/*.csv", false),
            None,
            "hidden files are not matched by *"
        );
        std::fs::write(dir.path().join("in/b.csv"), "x").unwrap();
        assert_eq!(poke("in/*.csv", false), Some(dir.path().join("in/b.csv")));
    }

    #[test]
    fn the_base_path_is_the_connections_path_extra() {
        assert_eq!(base_path(None).unwrap(), "");
        assert_eq!(base_path(Some(r#"{"path": "/data"}"#)).unwrap(), "/data");
        assert!(base_path(Some("{nope")).unwrap_err().contains("not JSON"));
    }
}
