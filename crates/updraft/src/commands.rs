//! One function per CLI verb; each returns the process exit code.

mod dags;
mod tasks;
mod variables;

use std::process::ExitCode;

use anyhow::Result;

use crate::app::App;
use crate::cli::{Cli, Command, ConfigCommand, DbCommand, Output};

pub async fn run(cli: Cli) -> Result<ExitCode> {
    let (_, config) = App::load_config(&cli)?;
    // Commands print their answer on stdout; only a long-running role logs progress.
    let is_service = matches!(cli.command, Command::Standalone { .. });
    init_logging(if is_service {
        &config.logging.level
    } else {
        "warn"
    });
    match &cli.command {
        Command::Version => {
            println!("{}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::List(out)) => {
            match out.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&config)?),
                Output::Table => print!("{}", toml::to_string_pretty(&config)?),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Db(DbCommand::Migrate) => {
            let app = App::open(&cli)?;
            println!(
                "database {} is at schema version {}",
                app.db_path.display(),
                updraft_store_sqlite::SCHEMA_VERSION
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Standalone { host, port } => {
            let app = App::open(&cli)?;
            crate::standalone::run(app, host.clone(), *port).await
        }
        Command::Dags(cmd) => dags::run(App::open(&cli)?, cmd).await,
        Command::Tasks(cmd) => tasks::run(App::open(&cli)?, cmd).await,
        Command::Variables(cmd) => variables::run(App::open(&cli)?, cmd).await,
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("UPDRAFT_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
