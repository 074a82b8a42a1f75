//! The durations of a DAG's recent runs as a bar chart, oldest left: each bar a link to its
//! run, coloured by the run's state, with the duration in its tooltip.

use std::fmt::Write as _;

use super::gantt::short_duration;
use super::{escape, fmt_num, open};

const PLOT_HEIGHT: f64 = 220.0;
const TOP: f64 = 20.0;
const LEFT: f64 = 60.0;
const BAR_WIDTH: f64 = 18.0;
const BAR_GAP: f64 = 6.0;

/// One run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunBar {
    pub run_id: String,
    pub state: String,
    /// Seconds from start to end (to now while running); `None` if it never started.
    pub seconds: Option<f64>,
    pub href: String,
}

/// The chart as an `<svg>`, runs in the given order (pass them oldest first).
pub fn render(runs: &[RunBar], label: &str) -> String {
    let longest = runs
        .iter()
        .filter_map(|r| r.seconds)
        .fold(0.0f64, f64::max)
        .max(1.0);
    let width = LEFT + runs.len() as f64 * (BAR_WIDTH + BAR_GAP) + 10.0;
    let mut out = String::with_capacity(300 + runs.len() * 300);
    open(
        &mut out,
        "durations",
        width.max(200.0),
        TOP + PLOT_HEIGHT + 10.0,
        label,
    );
    let base = TOP + PLOT_HEIGHT;
    let _ = write!(
        out,
        r#"<g class="axis"><line x1="{l}" y1="{t}" x2="{l}" y2="{b}"/><line x1="{l}" y1="{b}" x2="{w}" y2="{b}"/><text x="{tx}" y="{ty}" text-anchor="end">{max}</text><text x="{tx}" y="{b}" text-anchor="end">0s</text></g>"#,
        l = fmt_num(LEFT),
        t = fmt_num(TOP),
        b = fmt_num(base),
        w = fmt_num(width),
        tx = fmt_num(LEFT - 6.0),
        ty = fmt_num(TOP + 4.0),
        max = short_duration(longest),
    );
    for (i, run) in runs.iter().enumerate() {
        let x = LEFT + 4.0 + i as f64 * (BAR_WIDTH + BAR_GAP);
        let seconds = run.seconds.unwrap_or(0.0).max(0.0);
        let h = (seconds / longest * PLOT_HEIGHT).max(1.0);
        let text = match run.seconds {
            Some(s) => short_duration(s),
            None => "not started".to_string(),
        };
        let _ = write!(
            out,
            r#"<a href="{href}"><rect class="bar state-{state}" x="{x}" y="{y}" width="{w}" height="{h}"><title>{id}: {state_text}, {text}</title></rect></a>"#,
            href = escape(&run.href),
            state = escape(&run.state),
            state_text = escape(&run.state.replace('_', " ")),
            id = escape(&run.run_id),
            x = fmt_num(x),
            y = fmt_num(base - h),
            w = fmt_num(BAR_WIDTH),
            h = fmt_num(h),
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(id: &str, state: &str, seconds: Option<f64>) -> RunBar {
        RunBar {
            run_id: id.into(),
            state: state.into(),
            seconds,
            href: format!("/runs/{id}"),
        }
    }

    #[test]
    fn bars_scale_to_the_longest_run() {
        let svg = render(
            &[
                bar("r1", "success", Some(50.0)),
                bar("r2", "failed", Some(100.0)),
                bar("r3", "queued", None),
            ],
            "durations",
        );
        let heights: Vec<&str> = svg
            .split(r#"<rect class="bar"#)
            .skip(1)
            .filter_map(|r| r.split("height=\"").nth(1)?.split('"').next())
            .collect();
        assert_eq!(heights, vec!["110", "220", "1"]);
        assert!(svg.contains("r2: failed, 1m40s"));
        assert!(svg.contains("r3: queued, not started"));
        assert!(svg.contains(r#"<a href="/runs/r1"><rect class="bar state-success""#));
    }

    #[test]
    fn run_ids_are_escaped() {
        let svg = render(&[bar("<i>\"", "success", Some(1.0))], "d");
        assert!(!svg.contains("<i>"));
        assert!(svg.contains("&lt;i&gt;&quot;"));
    }
}
