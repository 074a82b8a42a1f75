//! `updraft-bench`: runs the benchmark workloads W1–W14 of `shared/design/WORKLOADS.md` against
//! the real `updraft` binary, the way a user would, and reports median and min–max figures.
//!
//! ```sh
//! cargo run --release -p updraft-bench -- --workloads all --json bench.json
//! cargo run --release -p updraft-bench -- --quick                      # a smoke run
//! cargo run --release -p updraft-bench -- --workloads w1,w2,w5 --database postgres --schedulers 2
//! cargo run --release -p updraft-bench -- --workloads w5 --metrics off   # what metrics cost
//! cargo run --release -p updraft-bench -- --workloads soak               # an hour, on PostgreSQL
//! ```

mod browser;
mod cluster;
mod dag_folder;
mod deployment;
mod history;
mod http;
mod machine;
mod measurement;
mod metadata;
mod postgres;
mod procfs;
mod report;
mod standalone;
mod stats;
mod updraft;
mod workloads;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;

use crate::cluster::ClusterShape;
use crate::metadata::Database;
use crate::report::{Report, WorkloadReport};
use crate::updraft::{RemoveHomesAtExit, Setting, Updraft};
use crate::workloads::{Bench, Sizes, Workload};

#[derive(Debug, Parser)]
#[command(
    name = "updraft-bench",
    about = "Benchmark workloads W1–W14 against the real updraft binary"
)]
struct Args {
    /// `all`, or a comma-separated list of ids or names (`w1,w5`, `chain40,latency`).
    #[arg(long, default_value = "all")]
    workloads: String,
    /// Repetitions of each workload, each on a fresh home (default 3; 1 with --quick).
    #[arg(long)]
    repetitions: Option<usize>,
    /// A smoke run: small sizes, one repetition, a short idle period.
    #[arg(long)]
    quick: bool,
    /// Also write the figures as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// The updraft binary to measure (default: `target/release/updraft` of this workspace,
    /// built first with `cargo build --release -p updraft`, which is a no-op when up to date).
    #[arg(long, value_name = "PATH")]
    updraft: Option<PathBuf>,
    /// Do not run `cargo build` for the default binary; use it as it is.
    #[arg(long)]
    no_build: bool,
    /// The metadata database the workloads run on: `sqlite` runs `updraft standalone`,
    /// `postgres` a cluster (`--schedulers` schedulers, one API server, one worker) on a fresh
    /// database per repetition. Default: `postgres` when only the soak runs (it needs a
    /// cluster), `sqlite` otherwise.
    #[arg(long, value_enum)]
    database: Option<Database>,
    /// The PostgreSQL server of `--database postgres`: any database on it; its user must be
    /// allowed to create databases (each repetition creates one and drops it afterwards).
    #[arg(
        long,
        value_name = "URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres_url: String,
    /// How many `updraft scheduler` processes the cluster runs (`--database postgres`).
    #[arg(long, value_name = "N", default_value_t = 1)]
    schedulers: usize,
    /// Run updraft with this setting instead of its default (repeatable), as in
    /// `updraft config list`: `--set worker.direct_exec=false`. The report lists them.
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE", value_parser = Setting::parse)]
    settings: Vec<Setting>,
    /// Record a `perf record` profile (DWARF call graphs) of the updraft processes during W5 into this file.
    #[arg(long, value_name = "FILE")]
    perf_w5: Option<PathBuf>,
    /// Run updraft with its metrics recorded (`on`, its default) or not (`off`), to measure
    /// what they cost (e.g. W5 both ways): sets `metrics.enabled`, listed with the settings.
    #[arg(long, value_enum, value_name = "on|off")]
    metrics: Option<MetricsSwitch>,
    /// How long the soak's load and kills go on, in minutes (default 60; 1 with --quick).
    #[arg(long, value_name = "MINUTES")]
    soak_minutes: Option<f64>,
    /// Also write the soak's samples (resident memory and open files of each long-lived
    /// process, database connections, every few seconds) as CSV to this file.
    #[arg(long, value_name = "FILE")]
    soak_samples: Option<PathBuf>,
}

/// `--metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum MetricsSwitch {
    On,
    Off,
}

impl MetricsSwitch {
    /// The `metrics.enabled` setting it stands for.
    fn setting(self) -> Setting {
        Setting {
            key: "metrics.enabled".into(),
            value: (self == MetricsSwitch::On).to_string(),
        }
    }
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let _remove_homes = RemoveHomesAtExit;
    // Before our own build of updraft adds to it: the load other work puts on the machine.
    let load_before = machine::load_average();
    let mut workloads = Workload::parse_list(&args.workloads)?;
    let database = args.database.unwrap_or(if workloads == [Workload::Soak] {
        Database::Postgres
    } else {
        Database::Sqlite
    });
    if database == Database::Sqlite && workloads.contains(&Workload::Soak) {
        bail!(
            "the soak runs on a PostgreSQL cluster (3 schedulers, 2 API servers, 2 workers): \
             run it with --database postgres"
        );
    }
    if database == Database::Postgres && workloads.contains(&Workload::Ui) {
        eprintln!("updraft-bench: W14 ui runs on SQLite (the standalone) only: skipped");
        workloads.retain(|w| *w != Workload::Ui);
        anyhow::ensure!(!workloads.is_empty(), "no workload left to run");
    }
    // An hour is measured once.
    let only_soak = workloads == [Workload::Soak];
    let repetitions = args
        .repetitions
        .unwrap_or(if args.quick || only_soak { 1 } else { 3 });
    anyhow::ensure!(repetitions > 0, "--repetitions must be at least 1");
    let mut settings = args.settings.clone();
    settings.extend(args.metrics.map(MetricsSwitch::setting));
    let updraft = Updraft::locate(args.updraft.clone(), !args.no_build)?.with_settings(settings);
    let mut sizes = if args.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    if let Some(minutes) = args.soak_minutes {
        anyhow::ensure!(
            minutes.is_finite() && minutes > 0.0,
            "--soak-minutes must be more than 0"
        );
        sizes.soak_minutes = minutes;
    }
    anyhow::ensure!(args.schedulers > 0, "--schedulers must be at least 1");
    let postgres = match database {
        Database::Sqlite => {
            anyhow::ensure!(
                args.schedulers == 1,
                "--schedulers applies to --database postgres (standalone has one scheduler)"
            );
            None
        }
        Database::Postgres => {
            let server = postgres::Server::new(&args.postgres_url)?;
            server.check()?;
            let dropped = server.drop_abandoned_databases()?;
            if dropped > 0 {
                eprintln!("updraft-bench: dropped {dropped} database(s) left by interrupted runs");
            }
            Some(server)
        }
    };
    // The task processes at once: what the standalone's local worker runs (`core.parallelism`
    // of a fresh home), and so the cluster's worker's `--concurrency`.
    let parallelism = updraft.default_parallelism()?;
    let cluster = ClusterShape {
        schedulers: args.schedulers,
        worker_concurrency: parallelism,
    };
    let bench = Bench {
        updraft: &updraft,
        database,
        postgres: postgres.clone(),
        cluster,
        sizes: &sizes,
        perf_w5: args.perf_w5.clone(),
        soak_samples: args.soak_samples.clone(),
        prefill: None,
    };
    let mut report = Report::new(
        &updraft,
        database,
        parallelism,
        args.quick,
        repetitions,
        &sizes,
    );
    if let Some(server) = &postgres {
        report.set_cluster(server, cluster);
        if only_soak {
            report.set_cluster_roles(
                workloads::SOAK_SCHEDULERS,
                workloads::SOAK_API_SERVERS,
                workloads::SOAK_WORKERS,
            );
        }
    }
    report.machine.load_average_start = load_before;
    eprintln!(
        "updraft-bench: {} on {} ({} cores, {} MiB), {} repetition(s){}",
        updraft.binary().display(),
        report.setup(),
        report.machine.cores,
        report.machine.memory_mib,
        repetitions,
        if args.quick { ", quick" } else { "" }
    );
    if report.machine.homes_on_ext4_without_journal() {
        eprintln!(
            "updraft-bench: note: the homes are on {}: files deleted in the last minutes slow \
             down creating new ones (bench/RESULTS.md, \"Before you measure\")",
            report.machine.homes_filesystem
        );
    }
    for workload in workloads {
        let mut measurements = Vec::with_capacity(repetitions);
        for rep in 1..=repetitions {
            let started = Instant::now();
            let m = workload
                .run(&bench)
                .with_context(|| format!("{} repetition {rep}", workload.label()))?;
            eprintln!(
                "  {} #{rep}: {} ({:.1} s)",
                workload.label(),
                m.summary_line(),
                started.elapsed().as_secs_f64()
            );
            measurements.push(m);
        }
        report
            .workloads
            .push(WorkloadReport::aggregate(workload, &sizes, measurements)?);
    }
    report.finish();
    println!("{}", report.table());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("figures written to {}", path.display());
    }
    let failures: Vec<String> = report
        .workloads
        .iter()
        .flat_map(|w| {
            w.failures
                .iter()
                .map(move |f| format!("{} {}: {f}", w.id, w.name))
        })
        .collect();
    if !failures.is_empty() {
        bail!(
            "{} failure(s) beside the figures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    Ok(())
}
