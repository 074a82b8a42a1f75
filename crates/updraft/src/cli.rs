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
    /// The DAG processor and the scheduler, against a shared database. Run any number of them
    /// (active-active) on PostgreSQL.
    Scheduler,
    /// The task-execution API that remote workers use, and the health endpoint. Stateless:
    /// run any number of them behind a load balancer.
    ApiServer {
        #[arg(long)]
        host: Option<String>,
        #[arg(long)]
        port: Option<u16>,
    },
    /// A remote worker that runs the tasks of its queues, pulled from the API servers over
    /// HTTP (no database access); `worker list` shows the live workers.
    Worker(WorkerArgs),
    #[command(subcommand)]
    Jobs(JobsCommand),
    #[command(subcommand)]
    Pools(PoolsCommand),
    #[command(subcommand)]
    Dags(DagsCommand),
    /// Backfills: runs of a DAG for a range of past logical dates, which the schedulers
    /// create a few at a time.
    #[command(subcommand)]
    Backfill(BackfillCommand),
    /// Assets (data-aware scheduling): what DAGs produce and are scheduled on.
    #[command(subcommand)]
    Assets(AssetsCommand),
    #[command(subcommand)]
    Tasks(TasksCommand),
    #[command(subcommand)]
    Variables(VariablesCommand),
    #[command(subcommand)]
    Users(crate::commands::users::UsersCommand),
    #[command(subcommand)]
    Connections(crate::commands::connections::ConnectionsCommand),
    /// Re-encrypt every connection and variable with the first key of `core.fernet_key`
    /// (after putting a new key first), so the old key can be dropped.
    RotateFernetKey,
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
    /// Create a backfill (`backfill create`).
    Backfill(BackfillCreateArgs),
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
        /// The instance of a mapped task.
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        map_index: i64,
    },
    /// Run one task in this process with its log on the terminal: no scheduler, and nothing
    /// recorded (Airflow's `tasks test`). Exits 1 when the task fails.
    Test {
        dag_id: String,
        task_id: String,
        /// A run id of the DAG, or a logical date (RFC 3339 or YYYY-MM-DD); default now.
        logical_date_or_run_id: Option<String>,
        /// Params for the task, a JSON object (they override the DAG's).
        #[arg(short = 't', long)]
        task_params: Option<String>,
        /// Environment variables for the task, a JSON object.
        #[arg(long)]
        env_vars: Option<String>,
        /// The instance of a mapped task to run (its values mapped over must be known: literal,
        /// or the results of the run named).
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        map_index: i64,
    },
    /// Print each templated field of a task, rendered for a run (Airflow's `tasks render`).
    Render {
        dag_id: String,
        task_id: String,
        /// A run id of the DAG, or a logical date (RFC 3339 or YYYY-MM-DD).
        logical_date_or_run_id: String,
        /// The instance of a mapped task to render.
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        map_index: i64,
    },
    /// Clear task instances so that they, and their downstream, run again; a work task's
    /// setups and teardowns are cleared with it, and a cleared `ExternalTaskMarker` clears
    /// its task of the other DAG (and its downstream) in the run of the same logical date.
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
        /// List the task instances that would be cleared, and clear nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum VariablesCommand {
    Get {
        key: String,
    },
    Set {
        key: String,
        value: String,
    },
    Delete {
        key: String,
    },
    List(OutputArg),
    /// Import variables from a JSON file (`{"key": value}` or `{"key": {"value": …,
    /// "description": …}}`).
    Import {
        file: PathBuf,
        /// What to do when a variable exists already.
        #[arg(short = 'a', long, value_enum, default_value_t = ActionOnExistingKey::Overwrite)]
        action_on_existing_key: ActionOnExistingKey,
    },
    /// Export every variable to a JSON file (`-` for standard output).
    Export {
        file: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ActionOnExistingKey {
    Overwrite,
    Fail,
    Skip,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create or upgrade the metadata database schema.
    Migrate,
    /// Check that the database can be reached and its schema is current.
    Check,
    /// Purge records older than a timestamp (Airflow's `db clean`).
    ///
    /// Finished runs with their task instances, tries, logs and XComs, the audit log, process
    /// records, asset events and delivered notifications, in small batches, safe while the
    /// cluster runs. The latest run of each DAG and run type stays.
    Clean(DbCleanArgs),
    /// Drop the archive tables `db clean` made (`_updraft_deleted__<table>__<timestamp>`).
    DropArchived {
        /// Only the archives of these tables, comma-separated (all by default).
        #[arg(short, long, value_delimiter = ',', value_name = "TABLE[,TABLE…]")]
        tables: Vec<String>,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub struct DbCleanArgs {
    /// Purge data created before this instant (RFC 3339, or a date or time without a zone,
    /// read as UTC), e.g. `2026-01-01T00:00:00+00:00`.
    #[arg(long, value_name = "TIMESTAMP")]
    pub clean_before_timestamp: String,
    /// Tables to clean, comma-separated (all by default): dag_run, task_instance,
    /// task_instance_history, xcom, log, job, asset_event, notification.
    #[arg(short, long, value_delimiter = ',', value_name = "TABLE[,TABLE…]")]
    pub tables: Vec<String>,
    /// Count what would be deleted and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not copy deleted rows into `_updraft_deleted__<table>__<timestamp>` tables.
    #[arg(long)]
    pub skip_archive: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
    /// Runs (or rows of tables outside runs) deleted per transaction.
    #[arg(long, default_value_t = 500)]
    pub batch_size: u32,
    #[command(flatten)]
    pub output: OutputArg,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct WorkerArgs {
    #[command(subcommand)]
    pub command: Option<WorkerCommand>,
    /// API servers to pull work from, comma-separated; the worker fails over between them
    /// (overrides `worker.servers`).
    #[arg(long, value_delimiter = ',', value_name = "URL[,URL…]")]
    pub server: Vec<String>,
    /// Queues to serve, comma-separated (overrides `worker.queues`).
    #[arg(short, long, value_delimiter = ',', value_name = "QUEUE[,QUEUE…]")]
    pub queues: Vec<String>,
    /// Task processes at once (overrides `worker.concurrency`).
    #[arg(short, long)]
    pub concurrency: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum WorkerCommand {
    /// The live workers: queues, state, running tasks, latest heartbeat.
    List(OutputArg),
}

impl Command {
    /// Whether this command is a role that runs tasks until it is stopped (`standalone`, a
    /// `worker` serving its queues): those fork their reaper at start.
    pub fn runs_tasks_for_long(&self) -> bool {
        match self {
            Command::Standalone { .. } => true,
            Command::Worker(args) => args.command.is_none(),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum JobType {
    Scheduler,
    Worker,
    ApiServer,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Exit 0 when enough live processes of a kind exist (for systemd and Kubernetes
    /// probes); `standalone` counts as a scheduler.
    Check {
        #[arg(long, value_enum, default_value_t = JobType::Scheduler)]
        job_type: JobType,
        /// Only processes on this host.
        #[arg(long)]
        hostname: Option<String>,
        /// How many must be alive.
        #[arg(long, default_value_t = 1)]
        limit: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum PoolsCommand {
    List(OutputArg),
    /// Create or update a pool.
    Set {
        name: String,
        slots: u32,
        #[arg(default_value = "")]
        description: String,
    },
    Delete {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Show the configuration in force.
    List(OutputArg),
}

#[derive(Debug, Subcommand)]
pub enum BackfillCommand {
    /// Create a backfill: runs for the DAG's logical dates from `--from-date` to `--to-date`.
    Create(BackfillCreateArgs),
    /// List backfills, oldest first.
    List {
        #[arg(long)]
        dag_id: Option<String>,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Stop creating runs for a backfill until it is unpaused.
    Pause {
        id: i64,
    },
    Unpause {
        id: i64,
    },
    /// Stop a backfill for good: no more runs, its queued runs fail.
    Cancel {
        id: i64,
    },
}

#[derive(Debug, Args)]
pub struct BackfillCreateArgs {
    #[arg(long)]
    pub dag_id: String,
    /// The first logical date (RFC 3339 time or a date), included.
    #[arg(long)]
    pub from_date: String,
    /// The last logical date, included.
    #[arg(long)]
    pub to_date: String,
    /// What to do with dates that already have a run: `none` skips them, `failed` runs the
    /// failed ones again, `completed` runs every finished one again.
    #[arg(long, default_value = "none", value_parser = ["none", "failed", "completed"])]
    pub reprocess_behavior: String,
    /// How many of the backfill's runs may be unfinished at once (default 10).
    #[arg(long)]
    pub max_active_runs: Option<u32>,
    /// Create the newest runs first.
    #[arg(long)]
    pub run_backwards: bool,
    /// The runs' conf, a JSON object.
    #[arg(long)]
    pub dag_run_conf: Option<String>,
    /// Print the dates and what would happen to each, and create nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub output: OutputArg,
}

#[derive(Debug, Subcommand)]
pub enum AssetsCommand {
    /// List the assets, with their latest event, the DAGs scheduled on them and the tasks
    /// that produce them.
    List {
        #[command(flatten)]
        output: OutputArg,
    },
    /// Show one asset.
    Details {
        #[command(flatten)]
        asset: AssetSelector,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Trigger a run of the DAG whose task produces the asset.
    Materialize {
        #[command(flatten)]
        asset: AssetSelector,
        #[command(flatten)]
        output: OutputArg,
    },
}

/// An asset by its name, its URI, or both.
#[derive(Debug, Args)]
pub struct AssetSelector {
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub uri: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Cli;

    fn runs_tasks_for_long(args: &[&str]) -> bool {
        let cli = Cli::try_parse_from(std::iter::once("updraft").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        cli.command.runs_tasks_for_long()
    }

    #[test]
    fn the_roles_that_run_tasks_fork_a_reaper_and_their_list_commands_do_not() {
        assert!(runs_tasks_for_long(&["standalone"]));
        assert!(runs_tasks_for_long(&["worker", "--queues", "gpu"]));
        assert!(!runs_tasks_for_long(&["worker", "list"]));
        assert!(!runs_tasks_for_long(&["scheduler"]));
        assert!(!runs_tasks_for_long(&["api-server"]));
        assert!(!runs_tasks_for_long(&["dags", "list"]));
    }
}
