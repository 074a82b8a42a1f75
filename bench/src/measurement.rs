//! What one repetition of a workload measured: named figures with units and goals, and the
//! counts that show the work was really done.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// One repetition's result.
#[derive(Debug, Clone, Default)]
pub struct Measurement {
    pub figures: Vec<Figure>,
    /// E.g. `task_instances_success`: checked by the workload, recorded for the report.
    pub counts: BTreeMap<&'static str, u64>,
    /// What the workload found wrong beyond a missed goal (the soak's lost or duplicated
    /// tries): the harness reports the figures, then fails the run.
    pub failures: Vec<String>,
}

impl Measurement {
    pub fn figure(&mut self, figure: Figure) {
        self.figures.push(figure);
    }

    pub fn count(&mut self, key: &'static str, value: u64) {
        self.counts.insert(key, value);
    }

    pub fn fail(&mut self, failure: String) {
        self.failures.push(failure);
    }

    /// The figures on one line, for progress output.
    pub fn summary_line(&self) -> String {
        self.figures
            .iter()
            .map(|f| format!("{} {} {}", f.key, format_value(f.value), f.unit))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Debug, Clone)]
pub struct Figure {
    /// Stable name in the JSON output.
    pub key: &'static str,
    /// What it is, for the table.
    pub label: &'static str,
    pub unit: Unit,
    pub value: f64,
    pub goal: Option<Goal>,
}

impl Figure {
    pub fn new(key: &'static str, label: &'static str, unit: Unit, value: f64) -> Figure {
        Figure {
            key,
            label,
            unit,
            value,
            goal: None,
        }
    }

    pub fn goal(mut self, goal: Goal) -> Figure {
        self.goal = Some(goal);
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Unit {
    #[serde(rename = "s")]
    Seconds,
    #[serde(rename = "ms")]
    Millis,
    #[serde(rename = "MiB")]
    Mebibytes,
    #[serde(rename = "TI/s")]
    TasksPerSecond,
    #[serde(rename = "CPU-s")]
    CpuSeconds,
    #[serde(rename = "CPU-ms/TI")]
    CpuMillisPerTask,
    #[serde(rename = "reads/s")]
    ReadsPerSecond,
    #[serde(rename = "%")]
    Percent,
    #[serde(rename = "slots")]
    Slots,
    /// One figure divided by another of the same kind.
    #[serde(rename = "×")]
    Ratio,
    /// Things counted: tries, processes killed, file descriptors, connections.
    #[serde(rename = "count")]
    Count,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::Seconds => "s",
            Unit::Millis => "ms",
            Unit::Mebibytes => "MiB",
            Unit::TasksPerSecond => "TI/s",
            Unit::CpuSeconds => "CPU-s",
            Unit::CpuMillisPerTask => "CPU-ms/TI",
            Unit::ReadsPerSecond => "reads/s",
            Unit::Percent => "%",
            Unit::Slots => "slots",
            Unit::Ratio => "×",
            Unit::Count => "count",
        })
    }
}

/// A goal from the issue: the median must be at most / at least this.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    AtMost(f64),
    AtLeast(f64),
}

impl Goal {
    pub fn met_by(self, value: f64) -> bool {
        match self {
            Goal::AtMost(limit) => value <= limit,
            Goal::AtLeast(limit) => value >= limit,
        }
    }
}

impl fmt::Display for Goal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Goal::AtMost(v) => write!(f, "≤ {}", format_value(*v)),
            Goal::AtLeast(v) => write!(f, "≥ {}", format_value(*v)),
        }
    }
}

/// Three significant digits or so, without noise: 0.00123, 1.23, 123, 12345.
pub fn format_value(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        format!("{v}")
    } else if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a >= 0.1 {
        format!("{v:.3}")
    } else if a >= 0.01 {
        format!("{v:.4}")
    } else {
        format!("{v:.5}")
    }
}
