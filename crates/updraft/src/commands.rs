//! One function per CLI verb; each returns the process exit code.

mod assets;
mod backfill;
pub mod connections;
mod dags;
pub mod jobs;
mod pools;
mod task_dev;
mod tasks;
pub mod users;
mod variables;

use std::process::ExitCode;

use anyhow::Result;

use crate::app::App;
use crate::cli::{Cli, Command, ConfigCommand, DbCommand, Output, WorkerCommand};

pub async fn run(cli: Cli) -> Result<ExitCode> {
    let (_, config) = App::load_config(&cli)?;
    // Commands print their answer on stdout; only a long-running role logs progress.
    let is_service = match &cli.command {
        Command::Standalone { .. } | Command::Scheduler | Command::ApiServer { .. } => true,
        Command::Worker(args) => args.command.is_none(),
        _ => false,
    };
    init_logging(
        if is_service {
            &config.logging.level
        } else {
            "warn"
        },
        config.logging.json_logs,
    );
    let opens_database = matches!(cli.command, Command::Scheduler | Command::ApiServer { .. });
    if opens_database && config.core.fernet_key.trim().is_empty() {
        tracing::warn!(
            "core.fernet_key is empty: connection passwords, extras and variables are stored \
             unencrypted"
        );
    }
    match &cli.command {
        Command::Version => {
            println!("{}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::List(out)) => {
            // Secrets stay secret, even on a terminal.
            let shown = config.redacted();
            match out.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&shown)?),
                Output::Table => print!("{}", toml::to_string_pretty(&shown)?),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Db(DbCommand::Migrate | DbCommand::Check) => {
            // Opening migrates (safely when several processes start at once).
            let app = App::open(&cli).await?;
            app.store.ping().await?;
            println!(
                "database {} is at schema version {}",
                app.database_name(),
                app.schema_version()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Standalone { host, port } => {
            crate::standalone::generate_secrets(&config)?;
            let app = App::open(&cli).await?;
            crate::standalone::run(app, host.clone(), *port).await
        }
        Command::Scheduler => crate::roles::scheduler::run(App::open(&cli).await?).await,
        Command::ApiServer { host, port } => {
            let app = App::open(&cli).await?;
            crate::roles::api_server::run(app, host.clone(), *port).await
        }
        Command::Worker(args) => match &args.command {
            // A remote worker never opens the database.
            None => crate::roles::worker::run(config, args).await,
            Some(WorkerCommand::List(out)) => {
                jobs::list_workers(&App::open(&cli).await?, out.output).await
            }
        },
        Command::Jobs(crate::cli::JobsCommand::Check {
            job_type,
            hostname,
            limit,
        }) => {
            jobs::check(
                &App::open(&cli).await?,
                *job_type,
                hostname.as_deref(),
                *limit,
            )
            .await
        }
        Command::Pools(cmd) => pools::run(App::open(&cli).await?, cmd).await,
        Command::Dags(cmd) => dags::run(App::open(&cli).await?, cmd).await,
        Command::Backfill(cmd) => backfill::run(App::open(&cli).await?, cmd).await,
        Command::Assets(cmd) => assets::run(App::open(&cli).await?, cmd).await,
        Command::Tasks(cmd) => tasks::run(App::open(&cli).await?, cmd).await,
        Command::Variables(cmd) => variables::run(App::open(&cli).await?, cmd).await,
        Command::Users(cmd) => users::run(App::open(&cli).await?, cmd).await,
        Command::Connections(cmd) => connections::run(App::open(&cli).await?, cmd).await,
        Command::RotateFernetKey => connections::rotate_fernet_key(App::open(&cli).await?).await,
    }
}

/// Logs on stderr: text, or JSON lines (`logging.json_logs`: `timestamp`, `level`, `fields`
/// with the `message`, `target`, and the spans entered), in colour only on a terminal.
fn init_logging(level: &str, json: bool) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("UPDRAFT_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if json {
        logs.json().try_init()
    } else {
        logs.try_init()
    };
}
