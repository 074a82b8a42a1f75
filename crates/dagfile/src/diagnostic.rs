//! Problems found in a DAG file, each with the place it points at, and their rendering as text.

use std::fmt;

/// A place in a source file: 1-based line and 1-based column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// One problem of a DAG file. A file with three mistakes yields three diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where the problem is, when the parser knows it (JSON fallbacks and whole-file problems
    /// such as a cycle have none).
    pub pos: Option<Pos>,
    pub message: String,
}

impl Diagnostic {
    pub fn new(pos: Option<Pos>, message: impl Into<String>) -> Self {
        Diagnostic {
            pos,
            message: message.into(),
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(pos) => write!(f, "{pos}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// At most this many problems are spelled out in an import error.
pub const MAX_RENDERED: usize = 50;

/// Renders diagnostics as the import-error text: one problem per line, in source order, the
/// problems without a position (cycles, whole-file problems) last.
pub fn render(diagnostics: &[Diagnostic]) -> String {
    let mut sorted: Vec<&Diagnostic> = diagnostics.iter().collect();
    // Stable: problems at the same place keep the order they were found in.
    sorted.sort_by_key(|d| (d.pos.is_none(), d.pos));
    let mut lines: Vec<String> = sorted
        .iter()
        .take(MAX_RENDERED)
        .map(|d| d.to_string())
        .collect();
    if sorted.len() > MAX_RENDERED {
        lines.push(format!(
            "… and {} more problems",
            sorted.len() - MAX_RENDERED
        ));
    }
    lines.join("\n")
}
