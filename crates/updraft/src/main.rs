//! The `updraft` binary: command-line parsing, configuration, and the wiring of the roles.

mod allocator;
mod app;
mod audit;
mod cli;
mod commands;
mod config;
mod dag_processor;
mod metrics;
mod output;
mod recovery;
mod rest;
mod retention;
mod roles;
mod standalone;
mod wake;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    allocator::configure();
    if std::env::args().nth(1).as_deref() == Some(standalone::REAPER_ARG) {
        updraft_worker::reaper_main();
        return ExitCode::SUCCESS;
    }
    let cli = cli::Cli::parse();
    if cli.command.runs_tasks_for_long() {
        standalone::fork_reaper();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

/// Errors print on one line, so scripts can show them as they are.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
