//! YAML (1.2, core schema) to a document tree, with anchors, aliases and `<<` merge keys
//! expanded under a budget so an alias bomb is rejected instead of expanded.
//!
//! `saphyr-parser` gives events with positions and never expands aliases itself; this module
//! does the expansion and counts every node it copies (`MAX_ALIAS_NODES`).

use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};

use super::{Entry, Node, NodeKind, MAX_ALIAS_NODES, MAX_DEPTH};
use crate::diagnostic::{Diagnostic, Pos};

pub(super) fn parse(source: &str) -> Result<(Node, Vec<Diagnostic>), Diagnostic> {
    let mut builder = Builder::default();
    for event in Parser::new_from_str(source) {
        let (event, span) = event.map_err(syntax_error)?;
        builder.event(event, span)?;
    }
    let root = builder
        .root
        .take()
        .unwrap_or_else(|| Node::new(NodeKind::Null, None));
    Ok((root, builder.diags))
}

/// A node with what the limits need to know about it.
struct Sized {
    node: Node,
    /// Nodes in the subtree, aliases counted as what they expand to.
    size: usize,
    /// Levels of nesting below and including this node.
    height: usize,
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Sized>,
    copied: usize,
    documents: usize,
    root: Option<Node>,
    diags: Vec<Diagnostic>,
}

struct Frame {
    pos: Pos,
    anchor: usize,
    size: usize,
    height: usize,
    kind: FrameKind,
}

enum FrameKind {
    Seq(Vec<Node>),
    Map {
        entries: Vec<Entry>,
        index: HashMap<String, Pos>,
        key: PendingKey,
        /// Values of `<<` keys, applied when the mapping ends.
        merges: Vec<Node>,
    },
}

enum PendingKey {
    None,
    Key {
        text: String,
        pos: Pos,
        merge: bool,
    },
    /// A key that was reported as unusable; its value is dropped.
    Invalid,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), Diagnostic> {
        let pos = pos_of(&span);
        match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(Diagnostic::new(
                        Some(pos),
                        "a DAG file holds one YAML document, found a second one (`---`)",
                    ));
                }
            }
            Event::Alias(id) => {
                let Some(anchored) = self.anchors.get(&id) else {
                    return Err(Diagnostic::new(
                        Some(pos),
                        "alias refers to an anchor that contains it; recursive aliases are not supported",
                    ));
                };
                self.copied = self.copied.saturating_add(anchored.size);
                if self.copied > MAX_ALIAS_NODES {
                    return Err(alias_bomb(pos));
                }
                if self.stack.len() + anchored.height > MAX_DEPTH {
                    return Err(too_deep(pos));
                }
                let mut node = anchored.node.clone();
                node.pos = Some(pos);
                let (size, height) = (anchored.size, anchored.height);
                // An alias of a string may serve as a mapping key.
                let key = match &node.kind {
                    NodeKind::Str(text) => KeyInfo::Quoted(text.clone()),
                    _ => KeyInfo::Other,
                };
                self.complete(Sized { node, size, height }, key);
            }
            Event::Scalar(text, style, anchor, tag) => {
                let kind = self.resolve_scalar(&text, style, tag.as_deref(), pos);
                let key = if style == ScalarStyle::Plain {
                    KeyInfo::Plain(text.to_string())
                } else {
                    KeyInfo::Quoted(text.to_string())
                };
                let sized = Sized {
                    node: Node::new(kind, Some(pos)),
                    size: 1,
                    height: 1,
                };
                self.complete_anchored(sized, anchor, key, pos)?;
            }
            Event::SequenceStart(anchor, tag) => {
                self.open(
                    pos,
                    anchor,
                    tag.as_deref(),
                    "seq",
                    FrameKind::Seq(Vec::new()),
                )?;
            }
            Event::MappingStart(anchor, tag) => {
                let kind = FrameKind::Map {
                    entries: Vec::new(),
                    index: HashMap::new(),
                    key: PendingKey::None,
                    merges: Vec::new(),
                };
                self.open(pos, anchor, tag.as_deref(), "map", kind)?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return Ok(());
                };
                let kind = match frame.kind {
                    FrameKind::Seq(items) => NodeKind::Seq(items),
                    FrameKind::Map {
                        mut entries,
                        index,
                        merges,
                        ..
                    } => {
                        self.merge(&mut entries, index, merges);
                        NodeKind::Map(entries)
                    }
                };
                let sized = Sized {
                    node: Node::new(kind, Some(frame.pos)),
                    size: frame.size,
                    height: frame.height,
                };
                self.complete_anchored(sized, frame.anchor, KeyInfo::Other, frame.pos)?;
            }
        }
        Ok(())
    }

    fn open(
        &mut self,
        pos: Pos,
        anchor: usize,
        tag: Option<&Tag>,
        core: &str,
        kind: FrameKind,
    ) -> Result<(), Diagnostic> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(too_deep(pos));
        }
        if let Some(tag) = tag {
            if !(tag.is_yaml_core_schema() && tag.suffix == core) {
                self.diags.push(unsupported_tag(tag, pos));
            }
        }
        self.stack.push(Frame {
            pos,
            anchor,
            size: 1,
            height: 1,
            kind,
        });
        Ok(())
    }

    fn complete_anchored(
        &mut self,
        sized: Sized,
        anchor: usize,
        key: KeyInfo,
        pos: Pos,
    ) -> Result<(), Diagnostic> {
        if anchor != 0 {
            self.copied = self.copied.saturating_add(sized.size);
            if self.copied > MAX_ALIAS_NODES {
                return Err(alias_bomb(pos));
            }
            let copy = Sized {
                node: sized.node.clone(),
                size: sized.size,
                height: sized.height,
            };
            self.anchors.insert(anchor, copy);
        }
        self.complete(sized, key);
        Ok(())
    }

    /// Hands a finished node to the collection it belongs to (or makes it the document).
    fn complete(&mut self, sized: Sized, key: KeyInfo) {
        let Some(parent) = self.stack.last_mut() else {
            self.root = Some(sized.node);
            return;
        };
        parent.size = parent.size.saturating_add(sized.size);
        parent.height = parent.height.max(sized.height + 1);
        match &mut parent.kind {
            FrameKind::Seq(items) => items.push(sized.node),
            FrameKind::Map {
                entries,
                index,
                key: pending,
                merges,
            } => match std::mem::replace(pending, PendingKey::None) {
                PendingKey::None => {
                    let pos = sized.node.pos.unwrap_or(parent.pos);
                    *pending = match key {
                        KeyInfo::Plain(text) => PendingKey::Key {
                            merge: text == "<<",
                            text,
                            pos,
                        },
                        KeyInfo::Quoted(text) => PendingKey::Key {
                            text,
                            pos,
                            merge: false,
                        },
                        KeyInfo::Other => {
                            self.diags.push(Diagnostic::new(
                                Some(pos),
                                "mapping keys must be plain text; lists and mappings as keys are not supported",
                            ));
                            PendingKey::Invalid
                        }
                    };
                }
                PendingKey::Invalid => {}
                PendingKey::Key { merge: true, .. } => merges.push(sized.node),
                PendingKey::Key { text, pos, .. } => {
                    if let Some(first) = index.get(&text) {
                        self.diags.push(Diagnostic::new(
                            Some(pos),
                            format!("duplicate key `{text}` (first at line {})", first.line),
                        ));
                    } else {
                        index.insert(text.clone(), pos);
                        entries.push(Entry {
                            key: text,
                            key_pos: Some(pos),
                            value: sized.node,
                        });
                    }
                }
            },
        }
    }

    /// Applies `<<` merge keys: keys written in the mapping win, then earlier merge sources.
    fn merge(&mut self, entries: &mut Vec<Entry>, index: HashMap<String, Pos>, merges: Vec<Node>) {
        if merges.is_empty() {
            return;
        }
        let mut seen: HashSet<String> = index.into_keys().collect();
        for source in merges {
            let pos = source.pos;
            let maps = match source.kind {
                NodeKind::Map(map) => vec![map],
                NodeKind::Seq(items) => {
                    let mut maps = Vec::new();
                    for item in items {
                        match item.kind {
                            NodeKind::Map(map) => maps.push(map),
                            _ => self.diags.push(merge_error(item.pos.or(pos))),
                        }
                    }
                    maps
                }
                _ => {
                    self.diags.push(merge_error(pos));
                    Vec::new()
                }
            };
            for entry in maps.into_iter().flatten() {
                if seen.insert(entry.key.clone()) {
                    entries.push(entry);
                }
            }
        }
    }

    fn resolve_scalar(
        &mut self,
        text: &str,
        style: ScalarStyle,
        tag: Option<&Tag>,
        pos: Pos,
    ) -> NodeKind {
        let Some(tag) = tag else {
            return match style {
                ScalarStyle::Plain => resolve_plain(text),
                _ => NodeKind::Str(text.to_string()),
            };
        };
        if tag.handle == "!" && tag.suffix.is_empty() {
            return NodeKind::Str(text.to_string());
        }
        if !tag.is_yaml_core_schema() {
            self.diags.push(unsupported_tag(tag, pos));
            return resolve_plain(text);
        }
        let resolved = resolve_plain(text);
        let fits = match tag.suffix.as_str() {
            "str" => return NodeKind::Str(text.to_string()),
            "null" => matches!(resolved, NodeKind::Null),
            "bool" => matches!(resolved, NodeKind::Bool(_)),
            "int" => matches!(resolved, NodeKind::Int(_)),
            "float" => {
                if let NodeKind::Int(i) = resolved {
                    return NodeKind::Float(i as f64);
                }
                matches!(resolved, NodeKind::Float(_))
            }
            _ => {
                self.diags.push(unsupported_tag(tag, pos));
                return resolved;
            }
        };
        if !fits {
            self.diags.push(Diagnostic::new(
                Some(pos),
                format!("{text:?} is not a valid `{tag}` value"),
            ));
        }
        resolved
    }
}

/// How a finished node may serve as a mapping key.
enum KeyInfo {
    Plain(String),
    Quoted(String),
    Other,
}

/// The YAML 1.2 core schema for untagged plain scalars. `yes`/`no`/`on`/`off` stay text, and so
/// do dates: the DAG schema reads them from text.
fn resolve_plain(text: &str) -> NodeKind {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return NodeKind::Null,
        "true" | "True" | "TRUE" => return NodeKind::Bool(true),
        "false" | "False" | "FALSE" => return NodeKind::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return NodeKind::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return NodeKind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return NodeKind::Float(f64::NAN),
        _ => {}
    }
    if let Some(oct) = text.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(oct, 8) {
            return NodeKind::Int(i);
        }
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return NodeKind::Int(i);
        }
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<i64>() {
            Ok(i) => NodeKind::Int(i),
            Err(_) => NodeKind::Float(text.parse().unwrap_or(f64::NAN)),
        };
    }
    if is_core_float(digits) {
        if let Ok(f) = text.parse::<f64>() {
            return NodeKind::Float(f);
        }
    }
    NodeKind::Str(text.to_string())
}

/// `( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`, sign already removed.
fn is_core_float(text: &str) -> bool {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (mantissa, None),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match frac {
        Some(frac) => all_digits(int) && all_digits(frac) && !(int.is_empty() && frac.is_empty()),
        None => !int.is_empty() && all_digits(int),
    };
    let exponent_ok = match exponent {
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && all_digits(e)
        }
        None => true,
    };
    mantissa_ok && exponent_ok
}

fn pos_of(span: &Span) -> Pos {
    Pos {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

fn syntax_error(error: ScanError) -> Diagnostic {
    let mark = error.marker();
    Diagnostic::new(
        Some(Pos {
            line: mark.line(),
            column: mark.col() + 1,
        }),
        format!("YAML syntax error: {}", error.info()),
    )
}

fn alias_bomb(pos: Pos) -> Diagnostic {
    Diagnostic::new(
        Some(pos),
        format!(
            "anchors and aliases expand to more than {MAX_ALIAS_NODES} values; refusing to expand (YAML alias bomb?)"
        ),
    )
}

fn too_deep(pos: Pos) -> Diagnostic {
    Diagnostic::new(
        Some(pos),
        format!("values are nested more than {MAX_DEPTH} levels deep"),
    )
}

fn unsupported_tag(tag: &Tag, pos: Pos) -> Diagnostic {
    Diagnostic::new(Some(pos), format!("unsupported YAML tag `{tag}`"))
}

fn merge_error(pos: Option<Pos>) -> Diagnostic {
    Diagnostic::new(pos, "`<<` merges a mapping or a list of mappings")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_schema_scalars() {
        let cases: &[(&str, NodeKind)] = &[
            ("", NodeKind::Null),
            ("~", NodeKind::Null),
            ("true", NodeKind::Bool(true)),
            ("False", NodeKind::Bool(false)),
            ("yes", NodeKind::Str("yes".into())),
            ("42", NodeKind::Int(42)),
            ("-7", NodeKind::Int(-7)),
            ("0x1f", NodeKind::Int(31)),
            ("0o17", NodeKind::Int(15)),
            ("1.5", NodeKind::Float(1.5)),
            ("1e3", NodeKind::Float(1000.0)),
            (".5", NodeKind::Float(0.5)),
            ("30s", NodeKind::Str("30s".into())),
            ("2026-01-01", NodeKind::Str("2026-01-01".into())),
            ("1_000", NodeKind::Str("1_000".into())),
            ("inf", NodeKind::Str("inf".into())),
            ("e5", NodeKind::Str("e5".into())),
            (".", NodeKind::Str(".".into())),
        ];
        for (text, expected) in cases {
            assert_eq!(&resolve_plain(text), expected, "{text:?}");
        }
    }
}
