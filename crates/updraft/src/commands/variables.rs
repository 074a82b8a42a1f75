//! `updraft variables get | set | delete | list | import | export` (Airflow's verbs and
//! file format: a JSON object of keys to values, or to `{"value": …, "description": …}`).

use std::process::ExitCode;

use anyhow::{bail, Result};
use serde_json::json;

use crate::app::App;
use crate::cli::{ActionOnExistingKey, VariablesCommand};
use crate::commands::connections::files;
use crate::output;
use serde_json::Value;
use updraft_store::{VariableRecord, Window};

pub async fn run(app: App, cmd: &VariablesCommand) -> Result<ExitCode> {
    match cmd {
        VariablesCommand::Get { key } => match app.store.get_variable(key).await? {
            Some(value) => println!("{value}"),
            None => bail!("variable {key:?} does not exist"),
        },
        VariablesCommand::Set { key, value } => {
            app.store.set_variable(key, value).await?;
            let params = json!({"key": key, "value": value});
            crate::audit::record(&app, "cli_variables_set", Default::default(), params).await;
            println!("variable {key} set");
        }
        VariablesCommand::Delete { key } => {
            if !app.store.delete_variable(key).await? {
                bail!("variable {key:?} does not exist");
            }
            let params = json!({"key": key});
            crate::audit::record(&app, "cli_variables_delete", Default::default(), params).await;
            println!("variable {key} deleted");
        }
        VariablesCommand::List(out) => {
            let vars = app.store.list_variables().await?;
            let value: Vec<_> = vars
                .iter()
                .map(|(k, v)| json!({"key": k, "val": v}))
                .collect();
            let rows = vars
                .iter()
                .map(|(k, v)| vec![k.clone(), v.clone()])
                .collect();
            output::print(out.output, &value, &["key", "val"], rows)?;
        }
        VariablesCommand::Import {
            file,
            action_on_existing_key,
        } => return import(&app, file, *action_on_existing_key).await,
        VariablesCommand::Export { file } => {
            let variables = all_variables(&app).await?;
            let mut out = serde_json::Map::new();
            for v in &variables {
                // Values that are JSON are exported as JSON, as Airflow does.
                let value = serde_json::from_str::<Value>(&v.value)
                    .unwrap_or_else(|_| Value::String(v.value.clone()));
                let entry = match &v.description {
                    Some(description) => json!({"value": value, "description": description}),
                    None => value,
                };
                out.insert(v.key.clone(), entry);
            }
            files::write(file, &(serde_json::to_string_pretty(&out)? + "\n"))?;
            if file.as_os_str() != "-" {
                println!(
                    "{} variables successfully exported to {}",
                    variables.len(),
                    file.display()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn all_variables(app: &App) -> Result<Vec<VariableRecord>> {
    let mut all = Vec::new();
    loop {
        let page = app
            .store
            .query_variables(
                None,
                false,
                Window {
                    limit: 1000,
                    offset: all.len() as u64,
                },
            )
            .await?;
        let got = page.items.len();
        all.extend(page.items);
        if got < 1000 || all.len() as u64 >= page.total {
            return Ok(all);
        }
    }
}

/// Reads `{"key": value}` or `{"key": {"value": …, "description": …}}`; a value that is not
/// a string is stored as its JSON text.
async fn import(
    app: &App,
    file: &std::path::Path,
    on_existing: ActionOnExistingKey,
) -> Result<ExitCode> {
    let text = files::read(file)?;
    let Value::Object(entries) = serde_json::from_str::<Value>(&text)
        .map_err(|e| anyhow::anyhow!("Invalid variables file {}: {e}", file.display()))?
    else {
        bail!(
            "Invalid variables file {}: expected a JSON object",
            file.display()
        );
    };
    let mut existing = Vec::new();
    for key in entries.keys() {
        if app.store.get_variable(key).await?.is_some() {
            existing.push(key.clone());
        }
    }
    if on_existing == ActionOnExistingKey::Fail && !existing.is_empty() {
        bail!("Failed. These keys: {existing:?} already exist.");
    }
    let total = entries.len();
    let mut written = 0;
    for (key, entry) in entries {
        if on_existing == ActionOnExistingKey::Skip && existing.contains(&key) {
            continue;
        }
        let (value, description) = match entry {
            Value::Object(mut object) if object.contains_key("value") => (
                object.remove("value").unwrap_or(Value::Null),
                object
                    .remove("description")
                    .and_then(|d| d.as_str().map(str::to_string)),
            ),
            other => (other, None),
        };
        let value = match value {
            Value::String(s) => s,
            // As Airflow stores a value it serializes: indented JSON.
            other => serde_json::to_string_pretty(&other)?,
        };
        app.store
            .put_variable(VariableRecord {
                key,
                value,
                description,
                is_encrypted: false,
            })
            .await?;
        written += 1;
    }
    println!("{written} of {total} variables successfully updated.");
    if written < total {
        println!("{} variable(s) skipped (they exist).", total - written);
    }
    Ok(ExitCode::SUCCESS)
}
