//! What every command starts from: the home folder, the configuration and the store.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use updraft_store::Store;
use updraft_store_sqlite::SqliteStore;

use crate::cli::Cli;
use crate::config::{self, Config};

pub struct App {
    pub config: Config,
    pub db_path: PathBuf,
    pub store: Arc<dyn Store>,
}

impl App {
    pub fn load_config(cli: &Cli) -> Result<(PathBuf, Config)> {
        let home = config::updraft_home();
        let mut config = Config::load(&home)?;
        if let Some(folder) = &cli.dags_folder {
            config.core.dags_folder = folder.clone();
        }
        if let Some(url) = &cli.database_url {
            config.database.url = url.clone();
        }
        Ok((home, config))
    }

    pub fn open(cli: &Cli) -> Result<App> {
        let (_, config) = Self::load_config(cli)?;
        let db_path = config.sqlite_path()?;
        let store = SqliteStore::open(&db_path)
            .with_context(|| format!("cannot open the database {}", db_path.display()))?;
        Ok(App {
            config,
            db_path,
            store: Arc::new(store),
        })
    }

    /// Tells a `standalone` running on the same database to look at its work now.
    pub fn wake_standalone(&self) {
        crate::wake::send(&self.db_path);
    }
}
