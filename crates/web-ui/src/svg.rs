//! Charts drawn as SVG by the server, laid out in Rust: the DAG's graph, a run's Gantt chart
//! and the durations of recent runs. Each returns markup that pages print as it is: every
//! piece of user text in it (task ids, run ids, states) goes through [`escape`].

pub mod durations;
pub mod gantt;
pub mod graph;

use std::fmt::Write as _;

/// `text` escaped for SVG/HTML text and double-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` cut to `max` characters, with an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((i, _)) if text.chars().count() > max => format!("{}…", &text[..i]),
        _ => text.to_string(),
    }
}

/// Opens an `<svg>` element of `width` × `height` user units with an accessible name.
fn open(out: &mut String, class: &str, width: f64, height: f64, label: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart {class}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{label}" preserveAspectRatio="xMinYMin meet">"#,
        w = fmt_num(width),
        h = fmt_num(height),
        label = escape(label),
    );
}

/// A coordinate with at most one decimal, so the markup stays short and deterministic.
fn fmt_num(v: f64) -> String {
    let rounded = (v * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{}", rounded as i64)
    } else {
        format!("{rounded:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_are_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x'&")</script>"#),
            "&lt;script&gt;alert(&quot;x&#39;&amp;&quot;)&lt;/script&gt;"
        );
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abcd", 4), "abcd");
        assert_eq!(truncate("ééééé", 3), "éé…");
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(fmt_num(3.0), "3");
        assert_eq!(fmt_num(3.04), "3");
        assert_eq!(fmt_num(2.25), "2.3");
    }
}
