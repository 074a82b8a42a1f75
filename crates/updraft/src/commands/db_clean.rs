//! `updraft db clean` and `db drop-archived`: Airflow's purge of old records, with its
//! confirmation prompt, dry run and archive tables.

use std::io::BufRead as _;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use chrono::Utc;
use serde_json::json;
use updraft_store::retention::{self, COUNTED_TABLES};
use updraft_store::{clean_history, ArchiveStamp, CleanRequest, CleanSummary, CleanTable};

use crate::app::App;
use crate::cli::{DbCleanArgs, Output};

/// What a user types to confirm, as in Airflow.
const CONFIRMATION: &str = "delete rows";
const DROP_CONFIRMATION: &str = "drop archived tables";

pub async fn run(app: App, args: &DbCleanArgs) -> Result<ExitCode> {
    let before = updraft_model::trigger_dag_run::parse_instant(&args.clean_before_timestamp)
        .with_context(|| {
            format!(
                "invalid --clean-before-timestamp {:?}: give an instant such as \
                 2026-01-01T00:00:00+00:00",
                args.clean_before_timestamp
            )
        })?;
    let tables = tables(&args.tables)?;
    if !args.dry_run && !args.yes {
        confirm(before, &args.tables)?;
    }
    let request = CleanRequest {
        before,
        tables: tables.clone(),
        dry_run: args.dry_run,
        archive: (!args.skip_archive).then(|| ArchiveStamp::new(Utc::now())),
        batch_size: args.batch_size,
        log_folder: Some(app.config.logging.base_log_folder.clone()),
    };
    let summary = clean_history(&*app.store, &request).await?;
    if !args.dry_run {
        crate::audit::record(
            &app,
            "cli_db_clean",
            crate::audit::Target::default(),
            json!({
                "clean_before_timestamp": before.to_rfc3339(),
                "tables": tables.iter().map(|t| t.name()).collect::<Vec<_>>(),
                "skip_archive": args.skip_archive,
                "rows": summary.total(),
            }),
        )
        .await;
    }
    print(args, &request, &summary)?;
    Ok(ExitCode::SUCCESS)
}

/// The tables named (all when none is), in the order a clean goes through them.
fn tables(names: &[String]) -> Result<Vec<CleanTable>> {
    if names.is_empty() {
        return Ok(CleanTable::ALL.to_vec());
    }
    let mut tables = Vec::new();
    for name in names {
        let Some(table) = CleanTable::from_name(name.trim()) else {
            let known: Vec<&str> = CleanTable::ALL.iter().map(|t| t.name()).collect();
            bail!(
                "unknown table {name:?} for --tables: choose from {}",
                known.join(", ")
            );
        };
        if !tables.contains(&table) {
            tables.push(table);
        }
    }
    tables.sort();
    Ok(tables)
}

/// Airflow's prompt: the user types `delete rows`, or nothing is deleted.
fn confirm(before: chrono::DateTime<Utc>, named: &[String]) -> Result<()> {
    let for_tables = if named.is_empty() {
        String::new()
    } else {
        let quoted: Vec<String> = named.iter().map(|t| format!("'{}'", t.trim())).collect();
        format!(" for tables [{}]", quoted.join(", "))
    };
    ask(
        &format!(
            "You have requested that we purge all data prior to {}{for_tables}.\n\
             This is irreversible.  Consider backing up the tables first and / or doing a dry \
             run with option --dry-run.",
            before.to_rfc3339()
        ),
        CONFIRMATION,
    )
}

/// Prints `question` and asks for `answer`; anything else is a refusal.
fn ask(question: &str, answer: &str) -> Result<()> {
    println!("{question}\nEnter '{answer}' (without quotes) to proceed.");
    let mut given = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut given)
        .context("cannot read the confirmation")?;
    if given.trim() != answer {
        bail!("User did not confirm; exiting.");
    }
    Ok(())
}

/// `db drop-archived`: drops the archive tables of `tables` (all when none is named).
pub async fn drop_archived(app: App, named: &[String], yes: bool) -> Result<ExitCode> {
    let tables = self::tables(named)?;
    let names: Vec<&str> = tables.iter().flat_map(|t| t.counted()).collect();
    let archives: Vec<String> = app
        .store
        .archive_tables()
        .await?
        .into_iter()
        .filter(|a| retention::archived_table(a).is_some_and(|t| names.contains(&t)))
        .collect();
    if archives.is_empty() {
        println!("No archived tables to drop.");
        return Ok(ExitCode::SUCCESS);
    }
    if !yes {
        ask(
            &format!(
                "You have requested that we drop the following archived tables: {}.\n\
                 This is irreversible. Consider backing up the tables first.",
                archives.join(", ")
            ),
            DROP_CONFIRMATION,
        )?;
    }
    for archive in &archives {
        app.store.drop_archive_table(archive).await?;
        println!("Dropped table {archive}");
    }
    crate::audit::record(
        &app,
        "cli_db_drop_archived",
        crate::audit::Target::default(),
        json!({ "tables": archives }),
    )
    .await;
    Ok(ExitCode::SUCCESS)
}

fn print(args: &DbCleanArgs, request: &CleanRequest, summary: &CleanSummary) -> Result<()> {
    let shown: Vec<&str> = COUNTED_TABLES
        .into_iter()
        .filter(|name| request.tables.iter().any(|t| t.counted().contains(name)))
        .collect();
    let count = |name: &str| {
        summary
            .rows
            .iter()
            .find(|(t, _)| t == name)
            .map_or(0, |(_, n)| *n)
    };
    let recency = |name: &str| {
        request
            .tables
            .iter()
            .find(|t| t.counted().contains(&name))
            .map_or("", |t| t.recency_column())
    };
    let value = json!({
        "clean_before_timestamp": request.before.to_rfc3339(),
        "dry_run": request.dry_run,
        "rows": shown.iter().map(|name| (name.to_string(), json!(count(name))))
            .collect::<serde_json::Map<_, _>>(),
        "batches": summary.batches,
        "log_files_removed": summary.log_files,
        "archive_tables": summary.archives,
    });
    let header = if request.dry_run {
        "rows to delete"
    } else {
        "rows deleted"
    };
    let rows = shown
        .iter()
        .map(|name| {
            vec![
                name.to_string(),
                recency(name).to_string(),
                count(name).to_string(),
            ]
        })
        .collect();
    crate::output::print(
        args.output.output,
        &value,
        &["table", "recency column", header],
        rows,
    )?;
    if args.output.output == Output::Json {
        return Ok(());
    }
    if request.dry_run {
        println!(
            "Dry run: nothing was deleted. Rows older than {} would be.",
            request.before.to_rfc3339()
        );
        return Ok(());
    }
    println!(
        "Deleted {} rows in {} batches; removed {} log files.",
        summary.total(),
        summary.batches,
        summary.log_files
    );
    if summary.archives.is_empty() {
        if args.skip_archive {
            println!("Nothing archived (--skip-archive).");
        }
    } else {
        println!("Archived in {}.", summary.archives.join(", "));
    }
    Ok(())
}
