//! The report: median and min–max of every figure over the repetitions, as a table and as JSON.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::Table;
use serde::Serialize;
use serde_json::Value;

use crate::cluster::ClusterShape;
use crate::machine::{self, Machine};
use crate::measurement::{format_value, Goal, Measurement, Unit};
use crate::metadata::Database;
use crate::postgres::Server;
use crate::stats;
use crate::updraft::{workspace_root, Updraft};
use crate::workloads::{Sizes, Workload};

#[derive(Debug, Serialize)]
pub struct Report {
    pub date: String,
    /// `git rev-parse HEAD` of the workspace, `-dirty` when the tree differs from it.
    pub commit: Option<String>,
    pub updraft_binary: String,
    pub database: Database,
    /// With `--database postgres`: the server (password hidden) and the cluster's shape.
    pub cluster: Option<ClusterReport>,
    /// `core.parallelism` as a fresh home gets it (the workloads do not change it); the
    /// cluster's worker runs as many tasks at once.
    pub parallelism: u64,
    /// `--set` settings every updraft process ran with; empty means the defaults.
    pub settings: Vec<String>,
    pub machine: Machine,
    pub quick: bool,
    pub repetitions: usize,
    pub sizes: Sizes,
    pub workloads: Vec<WorkloadReport>,
}

impl Report {
    pub fn new(
        updraft: &Updraft,
        database: Database,
        parallelism: u64,
        quick: bool,
        repetitions: usize,
        sizes: &Sizes,
    ) -> Report {
        Report {
            date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            commit: machine::commit(&workspace_root()),
            updraft_binary: updraft.binary().display().to_string(),
            database,
            cluster: None,
            parallelism,
            settings: updraft.settings().iter().map(ToString::to_string).collect(),
            machine: Machine::current(),
            quick,
            repetitions,
            sizes: sizes.clone(),
            workloads: Vec::new(),
        }
    }

    pub fn set_cluster(&mut self, server: &Server, shape: ClusterShape) {
        self.cluster = Some(ClusterReport {
            postgres_url: server.display_url(),
            schedulers: shape.schedulers,
            api_servers: 1,
            workers: 1,
            worker_concurrency: shape.worker_concurrency,
        });
    }

    /// The soak's cluster has more roles than the workloads' one.
    pub fn set_cluster_roles(&mut self, schedulers: usize, api_servers: usize, workers: usize) {
        if let Some(cluster) = &mut self.cluster {
            cluster.schedulers = schedulers;
            cluster.api_servers = api_servers;
            cluster.workers = workers;
        }
    }

    /// What ran the workloads, in words.
    pub fn setup(&self) -> String {
        match &self.cluster {
            None => format!("{} (updraft standalone)", self.database),
            Some(c) => format!(
                "{} cluster ({} scheduler(s), {} API server(s), {} worker(s) of concurrency {}, {})",
                self.database,
                c.schedulers,
                c.api_servers,
                c.workers,
                c.worker_concurrency,
                c.postgres_url
            ),
        }
    }

    /// Records what the machine's load was at the end.
    pub fn finish(&mut self) {
        self.machine.load_average_end = machine::load_average();
    }

    pub fn table(&self) -> String {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
            "workload",
            "figure",
            "unit",
            "median",
            "min–max",
            "goal",
            "",
        ]);
        for w in &self.workloads {
            for (i, f) in w.figures.iter().enumerate() {
                table.add_row(vec![
                    if i == 0 {
                        format!("{} {}", w.id, w.name)
                    } else {
                        String::new()
                    },
                    f.label.to_owned(),
                    f.unit.to_string(),
                    format_value(f.median),
                    format!("{}–{}", format_value(f.min), format_value(f.max)),
                    f.goal.map(|g| g.to_string()).unwrap_or_default(),
                    match f.goal_met {
                        Some(true) => "met".to_owned(),
                        Some(false) => "MISSED".to_owned(),
                        None => String::new(),
                    },
                ]);
            }
        }
        format!(
"{table}\n{} on {} cores, {} MiB ({}), {}, homes on {}, parallelism {}{}, {} repetition(s){}, commit {}, load {:.2} → {:.2}",
            self.date,
            self.machine.cores,
            self.machine.memory_mib,
            self.machine.cpu_model,
            self.setup(),
            self.machine.homes_filesystem,
            self.parallelism,
            if self.settings.is_empty() {
                String::new()
            } else {
                format!(", settings {}", self.settings.join(" "))
            },
            self.repetitions,
            if self.quick { " (quick)" } else { "" },
            self.commit.as_deref().unwrap_or("unknown"),
            self.machine.load_average_start[0],
            self.machine.load_average_end[0],
        )
    }
}

#[derive(Debug, Serialize)]
pub struct ClusterReport {
    pub postgres_url: String,
    pub schedulers: usize,
    pub api_servers: usize,
    pub workers: usize,
    pub worker_concurrency: u64,
}

#[derive(Debug, Serialize)]
pub struct WorkloadReport {
    pub id: &'static str,
    pub name: &'static str,
    pub parameters: Value,
    pub figures: Vec<FigureSummary>,
    /// Checked by the workload; the same in every repetition.
    pub counts: BTreeMap<&'static str, u64>,
    /// What the repetitions found wrong (see [`Measurement::failures`]), prefixed with the
    /// repetition: the run fails after the report is written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct FigureSummary {
    pub key: &'static str,
    pub label: &'static str,
    pub unit: Unit,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// One value per repetition, in order.
    pub values: Vec<f64>,
    pub goal: Option<Goal>,
    pub goal_met: Option<bool>,
}

impl WorkloadReport {
    pub fn aggregate(
        workload: Workload,
        sizes: &Sizes,
        measurements: Vec<Measurement>,
    ) -> Result<WorkloadReport> {
        let Some(first) = measurements.first() else {
            bail!("{}: no repetitions", workload.label());
        };
        for m in &measurements {
            let keys = |m: &Measurement| m.figures.iter().map(|f| f.key).collect::<Vec<_>>();
            if keys(m) != keys(first) {
                bail!(
                    "{}: repetitions measured different figures",
                    workload.label()
                );
            }
            if m.counts != first.counts {
                bail!(
                    "{}: repetitions did different work: {:?} vs {:?}",
                    workload.label(),
                    m.counts,
                    first.counts
                );
            }
        }
        let failures = measurements
            .iter()
            .enumerate()
            .flat_map(|(i, m)| {
                m.failures
                    .iter()
                    .map(move |f| format!("repetition {}: {f}", i + 1))
            })
            .collect();
        let figures = first
            .figures
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let values: Vec<f64> = measurements.iter().map(|m| m.figures[i].value).collect();
                let median = stats::median(&values);
                FigureSummary {
                    key: f.key,
                    label: f.label,
                    unit: f.unit,
                    median,
                    min: stats::min(&values),
                    max: stats::max(&values),
                    values,
                    goal: f.goal,
                    goal_met: f.goal.map(|g| g.met_by(median)),
                }
            })
            .collect();
        Ok(WorkloadReport {
            id: workload.id(),
            name: workload.name(),
            parameters: workload.parameters(sizes),
            figures,
            counts: first.counts.clone(),
            failures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measurement::Figure;

    #[test]
    fn failures_of_every_repetition_reach_the_report() {
        let measurement = |failure: Option<&str>| {
            let mut m = Measurement::default();
            m.figure(Figure::new("tries_lost", "tries lost", Unit::Count, 0.0));
            if let Some(failure) = failure {
                m.fail(failure.to_owned());
            }
            m
        };
        let report = WorkloadReport::aggregate(
            Workload::Soak,
            &Sizes::quick(),
            vec![measurement(None), measurement(Some("1 try ran twice"))],
        )
        .unwrap();
        assert_eq!(report.failures, ["repetition 2: 1 try ran twice"]);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["failures"][0], "repetition 2: 1 try ran twice");

        let clean =
            WorkloadReport::aggregate(Workload::Soak, &Sizes::quick(), vec![measurement(None)])
                .unwrap();
        assert!(serde_json::to_value(&clean)
            .unwrap()
            .get("failures")
            .is_none());
    }
}
