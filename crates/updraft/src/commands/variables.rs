//! `updraft variables get/set/delete/list`.

use std::process::ExitCode;

use anyhow::{bail, Result};
use serde_json::json;

use crate::app::App;
use crate::cli::VariablesCommand;
use crate::output;

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
    }
    Ok(ExitCode::SUCCESS)
}
