//! `updraft-bench`: runs the benchmark workloads W1–W7 of `shared/design/WORKLOADS.md` against
//! the real `updraft` binary, the way a user would, and reports median and min–max figures.
//!
//! ```sh
//! cargo run --release -p updraft-bench -- --workloads all --json bench.json
//! cargo run --release -p updraft-bench -- --quick                      # a smoke run
//! ```

mod dag_folder;
mod machine;
mod measurement;
mod metadata;
mod procfs;
mod report;
mod standalone;
mod stats;
mod updraft;
mod workloads;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;

use crate::metadata::Database;
use crate::report::{Report, WorkloadReport};
use crate::updraft::Updraft;
use crate::workloads::{Bench, Sizes, Workload};

#[derive(Debug, Parser)]
#[command(
    name = "updraft-bench",
    about = "Benchmark workloads W1–W7 against the real updraft binary"
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
    /// The metadata database the workloads run on.
    #[arg(long, value_enum, default_value_t = Database::Sqlite)]
    database: Database,
    /// Record a `perf record` profile (DWARF call graphs) of the standalone process during W5 into this file.
    #[arg(long, value_name = "FILE")]
    perf_w5: Option<PathBuf>,
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
    // Before our own build of updraft adds to it: the load other work puts on the machine.
    let load_before = machine::load_average();
    let workloads = Workload::parse_list(&args.workloads)?;
    let repetitions = args.repetitions.unwrap_or(if args.quick { 1 } else { 3 });
    anyhow::ensure!(repetitions > 0, "--repetitions must be at least 1");
    let updraft = Updraft::locate(args.updraft.clone(), !args.no_build)?;
    let sizes = if args.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    let bench = Bench {
        updraft: &updraft,
        database: args.database,
        sizes: &sizes,
        perf_w5: args.perf_w5.clone(),
    };
    let parallelism = updraft.default_parallelism()?;
    let mut report = Report::new(
        &updraft,
        args.database,
        parallelism,
        args.quick,
        repetitions,
        &sizes,
    );
    report.machine.load_average_start = load_before;
    eprintln!(
        "updraft-bench: {} on {} ({} cores, {} MiB), {} repetition(s){}",
        updraft.binary().display(),
        args.database,
        report.machine.cores,
        report.machine.memory_mib,
        repetitions,
        if args.quick { ", quick" } else { "" }
    );
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
    Ok(())
}
