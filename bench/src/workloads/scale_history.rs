//! W11 `history`: W1, W2, W7 and W4 (start-up) on a database that already holds the history
//! (100,000 runs, 1,000,000 task instances; see [`crate::history`]), each figure as a ratio to
//! the same figure on a database without it.
//!
//! Both sides run the same workload code on homes with the same DAG files (the history's DAGs
//! beside the workload's own, see [`Prefill`]); only the rows differ, so a ratio is what the
//! rows cost. Each home gets its own copy of the history, written before updraft starts on it.

use anyhow::{Context, Result};

use super::{chain40, fan200, latency, startup, Bench, Prefill};
use crate::measurement::{Figure, Goal, Measurement, Unit};

/// One figure of a measured workload, compared with and without the history.
struct Compared {
    /// Which workload, and its figure's key.
    workload: Part,
    source: &'static str,
    unit: Unit,
    empty: (&'static str, &'static str),
    history: (&'static str, &'static str),
    ratio: (&'static str, &'static str),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Chain,
    Fan,
    Latency,
    Startup,
}

const PARTS: [Part; 4] = [Part::Chain, Part::Fan, Part::Latency, Part::Startup];

impl Part {
    fn run(self, bench: &Bench) -> Result<Measurement> {
        let (id, result) = match self {
            Part::Chain => ("W1", chain40::run(bench)),
            Part::Fan => ("W2", fan200::run(bench)),
            Part::Latency => ("W7", latency::run(bench)),
            Part::Startup => ("W4", startup::run(bench)),
        };
        result.with_context(|| format!("{id} in W11"))
    }
}

const COMPARED: [Compared; 6] = [
    Compared {
        workload: Part::Chain,
        source: "run_s",
        unit: Unit::Seconds,
        empty: ("w1_run_s_empty", "W1 trigger → run success, empty database"),
        history: ("w1_run_s", "W1 trigger → run success, on the history"),
        ratio: ("w1_run_ratio", "W1 run: history / empty"),
    },
    Compared {
        workload: Part::Chain,
        source: "hop_median_ms",
        unit: Unit::Millis,
        empty: ("w1_hop_median_ms_empty", "W1 median hop, empty database"),
        history: ("w1_hop_median_ms", "W1 median hop, on the history"),
        ratio: ("w1_hop_ratio", "W1 median hop: history / empty"),
    },
    Compared {
        workload: Part::Fan,
        source: "run_s",
        unit: Unit::Seconds,
        empty: ("w2_run_s_empty", "W2 trigger → run success, empty database"),
        history: ("w2_run_s", "W2 trigger → run success, on the history"),
        ratio: ("w2_run_ratio", "W2 run: history / empty"),
    },
    Compared {
        workload: Part::Latency,
        source: "trigger_to_start_p50_ms",
        unit: Unit::Millis,
        empty: (
            "w7_p50_ms_empty",
            "W7 trigger → first start p50, empty database",
        ),
        history: ("w7_p50_ms", "W7 trigger → first start p50, on the history"),
        ratio: ("w7_p50_ratio", "W7 p50: history / empty"),
    },
    Compared {
        workload: Part::Latency,
        source: "trigger_to_start_p99_ms",
        unit: Unit::Millis,
        empty: (
            "w7_p99_ms_empty",
            "W7 trigger → first start p99, empty database",
        ),
        history: ("w7_p99_ms", "W7 trigger → first start p99, on the history"),
        ratio: ("w7_p99_ratio", "W7 p99: history / empty"),
    },
    Compared {
        workload: Part::Startup,
        source: "startup_s",
        unit: Unit::Seconds,
        empty: ("w4_startup_s_empty", "W4 start-up, empty database"),
        history: ("w4_startup_s", "W4 start-up, on the history"),
        ratio: ("w4_startup_ratio", "W4 start-up: history / empty"),
    },
];

/// The figure of W4 that also has an absolute goal on the history.
const STARTUP_GOAL_S: f64 = 0.5;
const RATIO_GOAL: f64 = 1.2;

pub fn run(bench: &Bench) -> Result<Measurement> {
    let history = super::api::history(bench.sizes);
    let empty = bench.prefilled(Prefill {
        history: history.clone(),
        rows: false,
    });
    let full = bench.prefilled(Prefill {
        history: history.clone(),
        rows: true,
    });
    let mut on_empty = Vec::with_capacity(PARTS.len());
    let mut on_history = Vec::with_capacity(PARTS.len());
    for part in PARTS {
        on_empty.push((part, part.run(&empty)?));
        on_history.push((part, part.run(&full)?));
    }

    let mut m = Measurement::default();
    for c in &COMPARED {
        let before = value(&on_empty, c.workload, c.source)?;
        let after = value(&on_history, c.workload, c.source)?;
        m.figure(Figure::new(c.empty.0, c.empty.1, c.unit, before));
        let mut absolute = Figure::new(c.history.0, c.history.1, c.unit, after);
        if c.workload == Part::Startup {
            absolute = absolute.goal(Goal::AtMost(STARTUP_GOAL_S));
        }
        m.figure(absolute);
        m.figure(
            Figure::new(c.ratio.0, c.ratio.1, Unit::Ratio, after / before)
                .goal(Goal::AtMost(RATIO_GOAL)),
        );
    }
    for (key, part, source) in [
        (
            "w1_task_instances_success",
            Part::Chain,
            "task_instances_success",
        ),
        (
            "w2_task_instances_success",
            Part::Fan,
            "task_instances_success",
        ),
        ("w7_runs_success", Part::Latency, "runs_success"),
        ("w4_dags_listed", Part::Startup, "dags_listed"),
    ] {
        m.count(key, count(&on_history, part, source)?);
    }
    m.count("history_runs", history.runs as u64);
    m.count("history_task_instances", history.task_instances() as u64);
    Ok(m)
}

fn measured(of: &[(Part, Measurement)], part: Part) -> Result<&Measurement> {
    of.iter()
        .find(|(p, _)| *p == part)
        .map(|(_, m)| m)
        .context("a part of W11 did not run")
}

fn value(of: &[(Part, Measurement)], part: Part, key: &str) -> Result<f64> {
    measured(of, part)?
        .figures
        .iter()
        .find(|f| f.key == key)
        .map(|f| f.value)
        .with_context(|| format!("no figure {key} measured in W11"))
}

fn count(of: &[(Part, Measurement)], part: Part, key: &str) -> Result<u64> {
    measured(of, part)?
        .counts
        .get(key)
        .copied()
        .with_context(|| format!("no count {key} in W11"))
}
