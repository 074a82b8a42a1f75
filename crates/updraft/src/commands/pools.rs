//! `pools list | set | delete`: at most `slots` task instances of a pool are queued or
//! running at once, across every scheduler.

use std::process::ExitCode;

use anyhow::{bail, Result};
use updraft_store::PoolRecord;

use crate::app::App;
use crate::cli::PoolsCommand;
use crate::output::print;

const DEFAULT_POOL: &str = "default_pool";

pub async fn run(app: App, cmd: &PoolsCommand) -> Result<ExitCode> {
    match cmd {
        PoolsCommand::List(out) => {
            let pools = app.store.list_pools().await?;
            let rows = pools
                .iter()
                .map(|p| {
                    vec![
                        p.name.clone(),
                        p.slots.to_string(),
                        p.description.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print(out.output, &pools, &["pool", "slots", "description"], rows)?;
        }
        PoolsCommand::Set {
            name,
            slots,
            description,
        } => {
            if name.trim().is_empty() {
                bail!("a pool needs a name");
            }
            app.store
                .set_pool(PoolRecord {
                    name: name.clone(),
                    slots: *slots,
                    description: Some(description.clone()).filter(|d| !d.is_empty()),
                })
                .await?;
            app.wake_standalone();
            let params =
                serde_json::json!({"name": name, "slots": slots, "description": description});
            crate::audit::record(&app, "cli_pools_set", Default::default(), params).await;
            println!("Pool {name} has {slots} slots.");
        }
        PoolsCommand::Delete { name } => {
            if name == DEFAULT_POOL {
                bail!("{DEFAULT_POOL} cannot be deleted (set its slots instead)");
            }
            if !app.store.delete_pool(name).await? {
                bail!("pool {name} not found");
            }
            app.wake_standalone();
            let params = serde_json::json!({"name": name});
            crate::audit::record(&app, "cli_pools_delete", Default::default(), params).await;
            println!("Pool {name} deleted.");
        }
    }
    Ok(ExitCode::SUCCESS)
}
