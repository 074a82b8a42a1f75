//! A DAG file as the code view shows it: numbered lines, or the changes between two stored
//! versions as hunks of a line diff with three lines of context.

use similar::{ChangeTag, TextDiff};

/// One line of a diff: its numbers in the old and new file (1-based) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffLine {
    /// `equal`, `delete` or `insert` (the CSS class).
    pub kind: &'static str,
    pub old_number: Option<usize>,
    pub new_number: Option<usize>,
    pub text: String,
}

/// A run of changed lines with their context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    pub lines: Vec<DiffLine>,
}

/// The lines of `source` without their line ends.
pub fn lines(source: &str) -> Vec<&str> {
    source.lines().collect()
}

/// The hunks that turn `old` into `new`; empty when they are equal.
pub fn diff(old: &str, new: &str) -> Vec<Hunk> {
    let diff = TextDiff::from_lines(old, new);
    diff.grouped_ops(3)
        .into_iter()
        .map(|group| Hunk {
            lines: group
                .iter()
                .flat_map(|op| diff.iter_changes(op))
                .map(|change| DiffLine {
                    kind: match change.tag() {
                        ChangeTag::Equal => "equal",
                        ChangeTag::Delete => "delete",
                        ChangeTag::Insert => "insert",
                    },
                    old_number: change.old_index().map(|i| i + 1),
                    new_number: change.new_index().map(|i| i + 1),
                    text: change.value().trim_end_matches(['\n', '\r']).to_string(),
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_has_numbered_changes_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\ni\n";
        let hunks = diff(old, new);
        assert_eq!(hunks.len(), 1);
        let shown: Vec<(&str, Option<usize>, Option<usize>, &str)> = hunks[0]
            .lines
            .iter()
            .map(|l| (l.kind, l.old_number, l.new_number, l.text.as_str()))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("equal", Some(2), Some(2), "b"),
                ("equal", Some(3), Some(3), "c"),
                ("equal", Some(4), Some(4), "d"),
                ("delete", Some(5), None, "e"),
                ("insert", None, Some(5), "E"),
                ("equal", Some(6), Some(6), "f"),
                ("equal", Some(7), Some(7), "g"),
                ("equal", Some(8), Some(8), "h"),
                ("insert", None, Some(9), "i"),
            ]
        );
    }

    #[test]
    fn equal_files_have_no_hunks() {
        assert!(diff("x\ny\n", "x\ny\n").is_empty());
        assert_eq!(lines("a\r\nb"), vec!["a", "b"]);
    }
}
