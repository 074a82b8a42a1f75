//! A run's Gantt chart: one row per task instance, a grey bar while it was queued and a bar in
//! its state's colour while it ran (up to now for a running one), on a shared time axis.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::{escape, fmt_num, open, truncate};

const LABEL_WIDTH: f64 = 200.0;
const CHART_WIDTH: f64 = 760.0;
const ROW: f64 = 24.0;
const BAR: f64 = 16.0;
const AXIS: f64 = 24.0;
const TICKS: usize = 5;

/// One task instance's times.
#[derive(Debug, Clone, PartialEq)]
pub struct GanttRow {
    pub task_id: String,
    pub state: String,
    pub queued_at: Option<DateTime<Utc>>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub href: Option<String>,
}

/// The chart as an `<svg>`; rows that never queued nor started are listed without bars.
/// `now` ends the bars of what is still running.
pub fn render(rows: &[GanttRow], now: DateTime<Utc>, label: &str) -> String {
    let times = rows
        .iter()
        .flat_map(|r| [r.queued_at, r.start, r.end.or(r.start.map(|_| now))])
        .flatten();
    let (first, last) = times.fold(
        (None, None),
        |(lo, hi): (Option<DateTime<Utc>>, Option<DateTime<Utc>>), t| {
            (
                Some(lo.map_or(t, |l| l.min(t))),
                Some(hi.map_or(t, |h| h.max(t))),
            )
        },
    );
    let span_ms = match (first, last) {
        (Some(a), Some(b)) => (b - a).num_milliseconds().max(1) as f64,
        _ => 1.0,
    };
    let x_of = |t: DateTime<Utc>| -> f64 {
        let origin = first.unwrap_or(t);
        LABEL_WIDTH + (t - origin).num_milliseconds() as f64 / span_ms * CHART_WIDTH
    };
    let height = AXIS + rows.len() as f64 * ROW + 4.0;
    let mut out = String::with_capacity(400 + rows.len() * 500);
    open(
        &mut out,
        "gantt",
        LABEL_WIDTH + CHART_WIDTH + 10.0,
        height,
        label,
    );
    out.push_str(r#"<g class="axis">"#);
    for k in 0..=TICKS {
        let x = LABEL_WIDTH + CHART_WIDTH * k as f64 / TICKS as f64;
        let seconds = span_ms / 1000.0 * k as f64 / TICKS as f64;
        let _ = write!(
            out,
            r#"<line x1="{x}" y1="{top}" x2="{x}" y2="{bottom}"/><text x="{x}" y="14" text-anchor="{anchor}">+{secs}</text>"#,
            x = fmt_num(x),
            top = fmt_num(AXIS - 4.0),
            bottom = fmt_num(height),
            anchor = if k == TICKS { "end" } else { "middle" },
            secs = short_duration(seconds),
        );
    }
    out.push_str("</g>");
    for (i, row) in rows.iter().enumerate() {
        let y = AXIS + i as f64 * ROW;
        let id = escape(&row.task_id);
        let state = escape(&row.state);
        let state_text = escape(&row.state.replace('_', " "));
        let _ = write!(out, r#"<g class="row state-{state}" data-task-id="{id}">"#);
        let label = escape(&truncate(&row.task_id, 26));
        match &row.href {
            Some(href) => {
                let _ = write!(
                    out,
                    r#"<a href="{}"><text x="4" y="{}" class="task-id">{label}</text></a>"#,
                    escape(href),
                    fmt_num(y + 16.0)
                );
            }
            None => {
                let _ = write!(
                    out,
                    r#"<text x="4" y="{}" class="task-id">{label}</text>"#,
                    fmt_num(y + 16.0)
                );
            }
        }
        let bar_y = fmt_num(y + (ROW - BAR) / 2.0);
        if let (Some(q), Some(s)) = (row.queued_at, row.start.or(Some(now))) {
            if s > q {
                let _ = write!(
                    out,
                    r#"<rect class="queued" x="{}" y="{bar_y}" width="{}" height="{}"><title>{id}: queued {}</title></rect>"#,
                    fmt_num(x_of(q)),
                    fmt_num((x_of(s) - x_of(q)).max(1.0)),
                    fmt_num(BAR),
                    short_duration((s - q).num_milliseconds() as f64 / 1000.0)
                );
            }
        }
        if let Some(s) = row.start {
            let e = row.end.unwrap_or(now).max(s);
            let _ = write!(
                out,
                r#"<rect class="ran" x="{}" y="{bar_y}" width="{}" height="{}"><title>{id}: {state_text}, ran {}</title></rect>"#,
                fmt_num(x_of(s)),
                fmt_num((x_of(e) - x_of(s)).max(2.0)),
                fmt_num(BAR),
                short_duration((e - s).num_milliseconds() as f64 / 1000.0)
            );
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
    out
}

/// `3.2s`, `4m05s`, `2h03m`.
pub fn short_duration(seconds: f64) -> String {
    if seconds < 60.0 {
        return format!("{seconds:.1}s");
    }
    let whole = seconds.round() as i64;
    if whole < 3600 {
        format!("{}m{:02}s", whole / 60, whole % 60)
    } else {
        format!("{}h{:02}m", whole / 3600, whole % 3600 / 60)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0)
            .single()
            .expect("valid")
    }

    fn row(id: &str, state: &str, q: Option<i64>, s: Option<i64>, e: Option<i64>) -> GanttRow {
        GanttRow {
            task_id: id.into(),
            state: state.into(),
            queued_at: q.map(at),
            start: s.map(at),
            end: e.map(at),
            href: Some(format!("/ti/{id}")),
        }
    }

    /// (x, width) of each `<rect class="{class}"` in order.
    fn bars(svg: &str, class: &str) -> Vec<(f64, f64)> {
        svg.split(&format!(r#"<rect class="{class}" x=""#))
            .skip(1)
            .map(|rest| {
                let x: f64 = rest
                    .split('"')
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("x");
                let w: f64 = rest
                    .split("width=\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .and_then(|v| v.parse().ok())
                    .expect("width");
                (x, w)
            })
            .collect()
    }

    #[test]
    fn bars_are_placed_on_one_time_axis() {
        let rows = [
            row("a", "success", Some(0), Some(10), Some(50)),
            row("b", "running", Some(50), Some(60), None),
            row("c", "scheduled", None, None, None),
        ];
        let svg = render(&rows, at(100), "gantt");
        let ran = bars(&svg, "ran");
        assert_eq!(ran.len(), 2, "c never started");
        // a ran 10..50 and b 60..now=100, over a 0..100 axis of CHART_WIDTH.
        assert_eq!(ran[0], (LABEL_WIDTH + 76.0, 304.0));
        assert_eq!(ran[1], (LABEL_WIDTH + 456.0, 304.0));
        let queued = bars(&svg, "queued");
        assert_eq!(
            queued,
            vec![(LABEL_WIDTH, 76.0), (LABEL_WIDTH + 380.0, 76.0)]
        );
        assert!(svg.contains(r#"<g class="row state-scheduled" data-task-id="c">"#));
        assert!(svg.contains("a: success, ran 40.0s"));
    }

    #[test]
    fn task_ids_are_escaped() {
        let svg = render(&[row("<b>", "failed", None, Some(0), Some(1))], at(2), "g");
        assert!(!svg.contains("<b>"));
        assert!(svg.contains("&lt;b&gt;"));
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(short_duration(3.24), "3.2s");
        assert_eq!(short_duration(245.0), "4m05s");
        assert_eq!(short_duration(7380.0), "2h03m");
    }
}
