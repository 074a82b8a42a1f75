//! Typed reading of document values: each reader returns `None` after recording a diagnostic
//! that says what was expected and what was found, so one pass reports every mistake.

use std::time::Duration;

use updraft_model::duration::parse_duration;

use crate::diagnostic::{Diagnostic, Pos};
use crate::document::{Entry, Node, NodeKind};

/// At most this many problems of one file are kept; a hostile file could have millions.
pub(crate) const MAX_COLLECTED: usize = 1000;

/// Collects the diagnostics of one file.
#[derive(Default)]
pub(crate) struct Ctx {
    pub diags: Vec<Diagnostic>,
    /// Problems found beyond `MAX_COLLECTED`.
    pub dropped: usize,
    /// The file's named notifiers (`notifiers:`), which callback keys may name.
    pub notifiers: std::collections::BTreeMap<String, updraft_model::Notifier>,
    /// Whether notifiers of kind `python` (Python callbacks, written by the Python SDK in its
    /// JSON documents) are accepted; a YAML file has no Python code to call.
    pub python_callbacks: bool,
}

impl Ctx {
    pub fn error(&mut self, pos: Option<Pos>, message: impl Into<String>) {
        if self.diags.len() < MAX_COLLECTED {
            self.diags.push(Diagnostic::new(pos, message));
        } else {
            self.dropped += 1;
        }
    }

    /// The diagnostics, with a note for those that were not kept.
    pub fn finish(mut self) -> Vec<Diagnostic> {
        if self.dropped > 0 {
            let note = format!("{} further problems were not collected", self.dropped);
            self.diags.push(Diagnostic::new(None, note));
        }
        self.diags
    }

    fn expected(&mut self, node: &Node, label: &str, key: &str, expected: &str) {
        let mut message = format!(
            "{label}`{key}` must be {expected}, found {}",
            node.describe()
        );
        if let NodeKind::Str(s) = &node.kind {
            if ["yes", "no", "on", "off", "y", "n"].contains(&s.to_ascii_lowercase().as_str()) {
                message.push_str(" (YAML 1.2 reads yes/no/on/off as text: write true or false)");
            }
        }
        self.error(node.pos, message);
    }

    pub fn string(&mut self, node: &Node, label: &str, key: &str) -> Option<String> {
        match &node.kind {
            NodeKind::Str(s) => Some(s.clone()),
            _ => {
                self.expected(node, label, key, "a string");
                None
            }
        }
    }

    /// A string that may not be empty or blank.
    pub fn text(&mut self, node: &Node, label: &str, key: &str) -> Option<String> {
        let s = self.string(node, label, key)?;
        if s.trim().is_empty() {
            self.error(node.pos, format!("{label}`{key}` must not be empty"));
            return None;
        }
        Some(s)
    }

    /// A string or `null`.
    pub fn opt_string(&mut self, node: &Node, label: &str, key: &str) -> Option<Option<String>> {
        match &node.kind {
            NodeKind::Null => Some(None),
            NodeKind::Str(s) => Some(Some(s.clone())),
            _ => {
                self.expected(node, label, key, "a string");
                None
            }
        }
    }

    /// Text for places where numbers and booleans clearly mean their written form (env values).
    pub fn scalar_text(&mut self, node: &Node, label: &str, key: &str) -> Option<String> {
        match &node.kind {
            NodeKind::Str(s) => Some(s.clone()),
            NodeKind::Int(i) => Some(i.to_string()),
            NodeKind::Float(f) => Some(f.to_string()),
            NodeKind::Bool(b) => Some(b.to_string()),
            _ => {
                self.expected(node, label, key, "a string");
                None
            }
        }
    }

    pub fn bool(&mut self, node: &Node, label: &str, key: &str) -> Option<bool> {
        match node.kind {
            NodeKind::Bool(b) => Some(b),
            _ => {
                self.expected(node, label, key, "true or false");
                None
            }
        }
    }

    pub fn int_in(
        &mut self,
        node: &Node,
        label: &str,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        let expected = match (*range.start(), *range.end()) {
            (i64::MIN, i64::MAX) => "a whole number".to_string(),
            (lo, hi) if hi >= i64::from(u32::MAX) => format!("a whole number of at least {lo}"),
            (lo, hi) => format!("a whole number from {lo} to {hi}"),
        };
        match node.kind {
            NodeKind::Int(i) if range.contains(&i) => Some(i),
            _ => {
                self.expected(node, label, key, &expected);
                None
            }
        }
    }

    pub fn u32_at_least(&mut self, node: &Node, label: &str, key: &str, min: u32) -> Option<u32> {
        let i = self.int_in(node, label, key, i64::from(min)..=i64::from(u32::MAX))?;
        u32::try_from(i).ok()
    }

    /// A whole number of at least `min`, or `null` (none).
    pub fn opt_u32_at_least(
        &mut self,
        node: &Node,
        label: &str,
        key: &str,
        min: u32,
    ) -> Option<Option<u32>> {
        match node.kind {
            NodeKind::Null => Some(None),
            _ => self.u32_at_least(node, label, key, min).map(Some),
        }
    }

    /// `30s`, `5m`, `1h30m`, or a number of seconds.
    pub fn duration(&mut self, node: &Node, label: &str, key: &str) -> Option<Duration> {
        let secs = match &node.kind {
            NodeKind::Int(i) => Some(*i as f64),
            NodeKind::Float(f) => Some(*f),
            NodeKind::Str(s) => {
                return match parse_duration(s) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        self.error(node.pos, format!("{label}`{key}`: {e}"));
                        None
                    }
                }
            }
            _ => None,
        };
        match secs.and_then(|s| Duration::try_from_secs_f64(s).ok()) {
            Some(d) => Some(d),
            None => {
                self.expected(
                    node,
                    label,
                    key,
                    "a duration like 30s, 5m, 1h30m or seconds",
                );
                None
            }
        }
    }

    /// A duration or `null` (none).
    pub fn opt_duration(
        &mut self,
        node: &Node,
        label: &str,
        key: &str,
    ) -> Option<Option<Duration>> {
        match node.kind {
            NodeKind::Null => Some(None),
            _ => self.duration(node, label, key).map(Some),
        }
    }

    /// A list of strings; a single string is a list of one, `null` an empty list.
    pub fn string_list<'a>(
        &mut self,
        node: &'a Node,
        label: &str,
        key: &str,
    ) -> Option<Vec<(&'a str, Option<Pos>)>> {
        match &node.kind {
            NodeKind::Null => Some(Vec::new()),
            NodeKind::Str(s) => Some(vec![(s.as_str(), node.pos)]),
            NodeKind::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for item in items {
                    match &item.kind {
                        NodeKind::Str(s) => out.push((s.as_str(), item.pos)),
                        _ => {
                            self.error(
                                item.pos,
                                format!(
                                    "{label}items of `{key}` must be strings, found {}",
                                    item.describe()
                                ),
                            );
                            ok = false;
                        }
                    }
                }
                ok.then_some(out)
            }
            _ => {
                self.expected(node, label, key, "a list of strings");
                None
            }
        }
    }

    pub fn map<'a>(&mut self, node: &'a Node, label: &str, key: &str) -> Option<&'a [Entry]> {
        match &node.kind {
            NodeKind::Map(entries) => Some(entries),
            _ => {
                self.expected(node, label, key, "a mapping");
                None
            }
        }
    }

    /// Reports every key that is not in `allowed`, with a suggestion when one is close.
    pub fn check_keys(&mut self, entries: &[Entry], allowed: &[&str], label: &str) {
        for entry in entries {
            if allowed.contains(&entry.key.as_str()) {
                continue;
            }
            let hint = match closest(&entry.key, allowed.iter().copied()) {
                Some(near) => format!(" (did you mean `{near}`?)"),
                None => String::new(),
            };
            self.error(
                entry.key_pos.or(entry.value.pos),
                format!(
                    "{label}unknown key `{}`{hint}; allowed keys: {}",
                    entry.key,
                    allowed.join(", ")
                ),
            );
        }
    }
}

/// Looks a key up in a mapping.
pub(crate) fn get<'a>(entries: &'a [Entry], key: &str) -> Option<&'a Entry> {
    entries.iter().find(|e| e.key == key)
}

/// The candidate nearest to `word` by edit distance, if it is near enough to be a typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let len = word.chars().count();
    if len > 64 {
        return None;
    }
    let limit = (len / 3).clamp(1, 3);
    candidates
        .filter(|c| c.chars().count().abs_diff(len) <= limit)
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// Airflow's rule for dag and task ids: letters, digits, `_`, `.`, `-`; at most 250 characters.
pub(crate) fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".to_string());
    }
    if id.len() > 250 {
        return Err(format!("is {} characters long; the limit is 250", id.len()));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "contains {bad:?}; use only letters, digits, `_`, `.` and `-`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let keys = ["retries", "retry_delay", "schedule", "tasks"];
        assert_eq!(closest("retires", keys.iter().copied()), Some("retries"));
        assert_eq!(closest("shedule", keys.iter().copied()), Some("schedule"));
        assert_eq!(closest("task", keys.iter().copied()), Some("tasks"));
        assert_eq!(closest("owner", keys.iter().copied()), None);
    }

    #[test]
    fn ids() {
        assert!(check_id("users_etl-v2.daily").is_ok());
        assert!(check_id("").is_err());
        assert!(check_id("has space").is_err());
        assert!(check_id(&"x".repeat(251)).is_err());
        assert!(check_id(&"x".repeat(250)).is_ok());
    }
}
