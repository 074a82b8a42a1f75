//! The command line: Airflow's verbs, `--output json` on every listing.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "updraft",
    version,
    about = "A fast, highly available workflow orchestrator"
)]
pub struct Cli {
    /// The DAG folder (overrides `core.dags_folder`).
    #[arg(long, global = true, value_name = "DIR")]
    pub dags_folder: Option<PathBuf>,
    /// The metadata database (overrides `database.url`).
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, Default, ValueEnum, PartialEq, Eq)]
pub enum Output {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Args, Clone, Copy)]
pub struct OutputArg {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// DAG processor, scheduler, local workers and the health endpoint in one process.
    Standalone {
        #[arg(long)]
        host: Option<String>,
        #[arg(long)]
        port: Option<u16>,
    },
    #[command(subcommand)]
    Dags(DagsCommand),
    #[command(subcommand)]
    Tasks(TasksCommand),
    #[command(subcommand)]
    Variables(VariablesCommand),
    #[command(subcommand)]
    Db(DbCommand),
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the version.
    Version,
}

#[derive(Debug, Subcommand)]
pub enum DagsCommand {
    /// List the DAGs.
    List(OutputArg),
    /// List DAG files that failed to load, with the reason.
    ListImportErrors(OutputArg),
    Pause {
        dag_id: String,
    },
    Unpause {
        dag_id: String,
    },
    /// Create a DAG run now.
    Trigger {
        dag_id: String,
        /// The run's conf, a JSON object.
        #[arg(short, long)]
        conf: Option<String>,
        #[arg(short, long)]
        run_id: Option<String>,
        /// RFC 3339 time or a date; defaults to now.
        #[arg(short, long)]
        logical_date: Option<String>,
        /// Wait until the run finishes; exit 1 if it failed.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        output: OutputArg,
    },
    ListRuns {
        dag_id: String,
        #[command(flatten)]
        output: OutputArg,
    },
    /// The next fire times of a DAG's schedule.
    NextExecution {
        dag_id: String,
        #[arg(short = 'n', long = "num-executions", default_value_t = 1)]
        num: usize,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Run one DAG run to completion in this process and print every task's state.
    Test {
        dag_id: String,
        logical_date: Option<String>,
        #[arg(short, long)]
        conf: Option<String>,
        #[command(flatten)]
        output: OutputArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    List {
        dag_id: String,
        #[command(flatten)]
        output: OutputArg,
    },
    StatesForDagRun {
        dag_id: String,
        run_id: String,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Print a task's log (the latest try unless --try is given).
    Logs {
        dag_id: String,
        run_id: String,
        task_id: String,
        #[arg(long = "try")]
        try_number: Option<u32>,
    },
    /// Clear task instances so that they, and their downstream, run again.
    Clear {
        dag_id: String,
        /// Regular expression on task ids.
        #[arg(short = 't', long)]
        task_regex: Option<String>,
        /// Only this run (default: every run of the DAG).
        #[arg(long)]
        run_id: Option<String>,
        /// Do not clear the downstream tasks.
        #[arg(long)]
        no_downstream: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum VariablesCommand {
    Get { key: String },
    Set { key: String, value: String },
    Delete { key: String },
    List(OutputArg),
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create or upgrade the metadata database schema.
    Migrate,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Show the configuration in force.
    List(OutputArg),
}
