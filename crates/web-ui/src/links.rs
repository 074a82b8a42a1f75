//! The URLs of the UI's pages, built in one place so that ids are always encoded.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Characters left as they are in a path segment or a query value: RFC 3986's unreserved.
const ENCODED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` encoded for a path segment or a query value.
pub fn encode(text: &str) -> String {
    utf8_percent_encode(text, ENCODED).to_string()
}

pub fn dag(dag_id: &str) -> String {
    format!("/dags/{}", encode(dag_id))
}

pub fn trigger(dag_id: &str) -> String {
    format!("/dags/{}/trigger", encode(dag_id))
}

pub fn dag_run(dag_id: &str, run_id: &str) -> String {
    format!("/dags/{}/runs/{}", encode(dag_id), encode(run_id))
}

/// A try of a task instance (its log).
/// [`task_try`] of one instance of a mapped task (`map_index` -1: a task that is not mapped).
pub fn task_try_at(
    dag_id: &str,
    run_id: &str,
    task_id: &str,
    map_index: i64,
    try_number: u32,
) -> String {
    let link = task_try(dag_id, run_id, task_id, try_number);
    if map_index >= 0 {
        format!("{link}&map_index={map_index}")
    } else {
        link
    }
}

pub fn task_try(dag_id: &str, run_id: &str, task_id: &str, try_number: u32) -> String {
    format!(
        "/dags/{}/runs/{}/tasks/{}?try={try_number}",
        encode(dag_id),
        encode(run_id),
        encode(task_id)
    )
}

/// Whether `next` is a path of this site to go back to after logging in: it starts with
/// one `/` (not `//host` or `/\host`, which browsers read as another site).
pub fn is_local(next: &str) -> bool {
    next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_encoded_in_paths() {
        assert_eq!(dag("a/b c"), "/dags/a%2Fb%20c");
        assert_eq!(
            task_try("d", "manual__2024-01-01T00:00:00+00:00", "t", 2),
            "/dags/d/runs/manual__2024-01-01T00%3A00%3A00%2B00%3A00/tasks/t?try=2"
        );
    }

    #[test]
    fn only_local_paths_are_followed() {
        for ok in ["/", "/dags?search=x", "/dags/a"] {
            assert!(is_local(ok), "{ok}");
        }
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "",
            "/a\nb",
        ] {
            assert!(!is_local(bad), "{bad}");
        }
    }
}
