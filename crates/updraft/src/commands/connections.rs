//! `connections add | get | list | delete | export | import` and `rotate-fernet-key`
//! (Airflow's verbs, flags and file formats).
//!
//! `get` shows a connection in full, password included (the CLI runs with the database's
//! credentials, as Airflow's does); `list` never shows passwords or secret extra values.

pub(crate) mod files;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Subcommand, ValueEnum};
use serde_json::json;
use updraft_secrets::{uri, SensitiveNames, REDACTED};
use updraft_store::{all_connections, ConnectionRecord, Window};

use crate::app::App;
use crate::cli::OutputArg;
use crate::output;

#[derive(Debug, Subcommand)]
pub enum ConnectionsCommand {
    /// Add a connection, from a URI, a JSON object or separate fields.
    Add(Box<AddArgs>),
    /// Show one connection in full.
    Get {
        conn_id: String,
        #[command(flatten)]
        output: OutputArg,
    },
    /// List the connections (without passwords).
    List(OutputArg),
    Delete {
        conn_id: String,
    },
    /// Export every connection to a file (`-` for standard output).
    Export {
        file: PathBuf,
        /// `json`, `yaml` or `env`; by default the file's extension (json for `-`).
        #[arg(long, alias = "file-format", value_enum)]
        format: Option<FileFormat>,
        /// How a connection is written in an `env` file.
        #[arg(long, value_enum, default_value_t = Serialization::Uri)]
        serialization_format: Serialization,
    },
    /// Import connections from a `.json`, `.yaml`/`.yml` or `.env` file; existing ones are
    /// left unless `--overwrite`.
    Import {
        file: PathBuf,
        #[arg(long)]
        overwrite: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    pub conn_id: String,
    /// The connection as a URI (`type://login:password@host:port/schema?extra=…`).
    #[arg(long, conflicts_with = "conn_json")]
    pub conn_uri: Option<String>,
    /// The connection as a JSON object (`{"conn_type": …, "host": …}`).
    #[arg(long)]
    pub conn_json: Option<String>,
    #[arg(long)]
    pub conn_type: Option<String>,
    #[arg(long)]
    pub conn_host: Option<String>,
    #[arg(long)]
    pub conn_login: Option<String>,
    #[arg(long)]
    pub conn_password: Option<String>,
    #[arg(long)]
    pub conn_schema: Option<String>,
    #[arg(long)]
    pub conn_port: Option<i32>,
    /// A JSON object.
    #[arg(long)]
    pub conn_extra: Option<String>,
    #[arg(long)]
    pub conn_description: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum FileFormat {
    Json,
    Yaml,
    Env,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Serialization {
    Json,
    Uri,
}

pub async fn run(app: App, cmd: &ConnectionsCommand) -> Result<ExitCode> {
    match cmd {
        ConnectionsCommand::Add(args) => add(&app, args).await,
        ConnectionsCommand::Get { conn_id, output } => {
            let Some(c) = app.store.get_connection(conn_id).await? else {
                bail!("Connection not found: {conn_id}");
            };
            let value = json!({
                "conn_id": c.conn_id, "conn_type": c.conn_type, "description": c.description,
                "host": c.host, "schema": c.schema, "login": c.login, "password": c.password,
                "port": c.port, "extra": c.extra, "uri": uri::to_uri(&c),
            });
            let fields = [
                "conn_id",
                "conn_type",
                "description",
                "host",
                "schema",
                "login",
                "password",
                "port",
                "extra",
                "uri",
            ];
            let row = fields.iter().map(|f| text(&value[*f])).collect();
            output::print(output.output, &value, &fields, vec![row])?;
            Ok(ExitCode::SUCCESS)
        }
        ConnectionsCommand::List(out) => {
            let names = SensitiveNames::new(&app.config.core.sensitive_var_conn_names);
            let connections = all_connections(app.store.as_ref()).await?;
            let value: Vec<_> = connections
                .iter()
                .map(|c| {
                    json!({
                        "conn_id": c.conn_id, "conn_type": c.conn_type,
                        "description": c.description, "host": c.host, "schema": c.schema,
                        "login": c.login, "port": c.port,
                        "password": c.password.as_ref().map(|_| REDACTED),
                        "extra": c.extra.as_deref().map(|e| names.redact_extra(e)),
                    })
                })
                .collect();
            let fields = ["conn_id", "conn_type", "host", "port", "login", "schema"];
            let rows = value
                .iter()
                .map(|v| fields.iter().map(|f| text(&v[*f])).collect())
                .collect();
            output::print(out.output, &value, &fields, rows)?;
            Ok(ExitCode::SUCCESS)
        }
        ConnectionsCommand::Delete { conn_id } => {
            if !app.store.delete_connection(conn_id).await? {
                bail!("Did not find a connection with `conn_id`={conn_id}");
            }
            println!("Successfully deleted connection with `conn_id`={conn_id}");
            Ok(ExitCode::SUCCESS)
        }
        ConnectionsCommand::Export {
            file,
            format,
            serialization_format,
        } => {
            let connections = all_connections(app.store.as_ref()).await?;
            let format = match format {
                Some(format) => *format,
                None => files::format_of(file)?,
            };
            let text = files::export(&connections, format, *serialization_format)?;
            files::write(file, &text)?;
            if file.as_os_str() != "-" {
                println!("Connections successfully exported to {}.", file.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        ConnectionsCommand::Import { file, overwrite } => {
            let text = files::read(file)?;
            let connections = files::import(&text, files::format_of(file)?)?;
            for c in connections {
                let exists = app.store.get_connection(&c.conn_id).await?.is_some();
                if exists && !overwrite {
                    println!(
                        "Could not import connection {}: connection already exists.",
                        c.conn_id
                    );
                    continue;
                }
                let id = c.conn_id.clone();
                app.store.put_connection(c).await?;
                println!("Imported connection {id}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A JSON value as a table cell.
fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn add(app: &App, args: &AddArgs) -> Result<ExitCode> {
    let connection = connection_of(args)?;
    if app
        .store
        .get_connection(&connection.conn_id)
        .await?
        .is_some()
    {
        bail!(
            "A connection with `conn_id`={} already exists.",
            connection.conn_id
        );
    }
    let shown = uri::to_uri_redacted(&connection);
    let conn_id = connection.conn_id.clone();
    app.store.put_connection(connection).await?;
    println!("Successfully added `conn_id`={conn_id} : {shown}");
    Ok(ExitCode::SUCCESS)
}

/// The connection `add` describes, with Airflow's rules on which flags go together.
fn connection_of(args: &AddArgs) -> Result<ConnectionRecord> {
    let fields = [
        ("--conn-type", args.conn_type.is_some()),
        ("--conn-host", args.conn_host.is_some()),
        ("--conn-login", args.conn_login.is_some()),
        ("--conn-password", args.conn_password.is_some()),
        ("--conn-schema", args.conn_schema.is_some()),
        ("--conn-port", args.conn_port.is_some()),
        ("--conn-extra", args.conn_extra.is_some()),
    ];
    let given: Vec<&str> = fields.iter().filter(|(_, g)| *g).map(|(n, _)| *n).collect();
    let from_text = match (&args.conn_uri, &args.conn_json) {
        (Some(text), None) => Some(("--conn-uri", uri::from_uri(&args.conn_id, text))),
        (None, Some(text)) => Some(("--conn-json", uri::from_json(&args.conn_id, text))),
        _ => None,
    };
    let mut connection = match from_text {
        Some((flag, parsed)) => {
            if !given.is_empty() {
                bail!(
                    "The following args are not compatible with the {flag} flag: {}",
                    given.join(", ")
                );
            }
            let connection = parsed.with_context(|| format!("invalid {flag}"))?;
            if flag == "--conn-uri" && connection.conn_type.is_empty() {
                bail!("The URI provided to --conn-uri is invalid: it has no connection type");
            }
            connection
        }
        None => {
            let Some(conn_type) = &args.conn_type else {
                bail!("Must supply either --conn-uri or --conn-json if not supplying --conn-type");
            };
            if let Some(extra) = &args.conn_extra {
                if !matches!(
                    serde_json::from_str::<serde_json::Value>(extra),
                    Ok(serde_json::Value::Object(_))
                ) {
                    bail!("--conn-extra must be a JSON object");
                }
            }
            ConnectionRecord {
                conn_id: args.conn_id.clone(),
                conn_type: uri::normalize_conn_type(conn_type),
                description: None,
                host: args.conn_host.clone(),
                schema: args.conn_schema.clone(),
                login: args.conn_login.clone(),
                password: args.conn_password.clone(),
                port: args.conn_port,
                extra: args.conn_extra.clone(),
            }
        }
    };
    if args.conn_description.is_some() {
        connection.description = args.conn_description.clone();
    }
    Ok(connection)
}

/// `rotate-fernet-key`: every connection and variable is read (decrypted with whichever key
/// of `core.fernet_key` opens it) and written again (encrypted with the first key).
pub async fn rotate_fernet_key(app: App) -> Result<ExitCode> {
    if app.config.core.fernet_key.trim().is_empty() {
        bail!("core.fernet_key is empty: there is no key to encrypt with");
    }
    let connections = all_connections(app.store.as_ref()).await?;
    let connection_count = connections.len();
    for c in connections {
        app.store.put_connection(c).await?;
    }
    let mut variables = Vec::new();
    loop {
        let page = app
            .store
            .query_variables(
                None,
                false,
                Window {
                    limit: 1000,
                    offset: variables.len() as u64,
                },
            )
            .await?;
        let got = page.items.len();
        variables.extend(page.items);
        if got < 1000 || variables.len() as u64 >= page.total {
            break;
        }
    }
    let variable_count = variables.len();
    for v in variables {
        app.store.put_variable(v).await?;
    }
    println!(
        "Re-encrypted {connection_count} connections and {variable_count} variables with the first key of core.fernet_key."
    );
    Ok(ExitCode::SUCCESS)
}
