//! What every command starts from: the home folder, the configuration and the store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use updraft_secrets::FernetCipher;
use updraft_store::{Cipher, Store};
use updraft_store_postgres::PostgresStore;
use updraft_store_sqlite::SqliteStore;

use crate::cli::Cli;
use crate::config::{self, Config, DatabaseKind};

pub struct App {
    /// `$UPDRAFT_HOME`.
    pub home: PathBuf,
    pub config: Config,
    pub database: DatabaseKind,
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

    /// Opens the configured database and brings its schema up to date.
    pub async fn open(cli: &Cli) -> Result<App> {
        let (home, config) = Self::load_config(cli)?;
        let database = config.database_kind()?;
        let cipher = cipher(&config)?;
        let store: Arc<dyn Store> = match &database {
            DatabaseKind::Sqlite(path) => {
                let store = SqliteStore::open(path)
                    .with_context(|| format!("cannot open the database {}", path.display()))?;
                Arc::new(match cipher {
                    Some(cipher) => store.with_cipher(cipher),
                    None => store,
                })
            }
            DatabaseKind::Postgres(url) => {
                let store = PostgresStore::connect(url)
                    .await
                    .with_context(|| format!("cannot open the database {}", redact(url)))?;
                Arc::new(match cipher {
                    Some(cipher) => store.with_cipher(cipher),
                    None => store,
                })
            }
        };
        Ok(App {
            home,
            config,
            database,
            store,
        })
    }

    /// Where the embedded Python SDK is extracted (`$UPDRAFT_HOME/cache/sdk-<hash>`).
    pub fn python_sdk(&self) -> Result<PathBuf> {
        Ok(updraft_python::sdk::extract(&self.home.join("cache"))?)
    }

    /// The Python SDK directory for Python tasks, `None` in a binary built without it.
    pub fn python_sdk_for_tasks(home: &Path) -> Result<Option<PathBuf>> {
        if !updraft_python::sdk::embedded() {
            return Ok(None);
        }
        Ok(Some(updraft_python::sdk::extract(&home.join("cache"))?))
    }

    /// What runs the DAG folder's `.py` files; `None` in a binary built without the SDK.
    pub fn python_parser(&self) -> Result<Option<Arc<dyn updraft_dagfile::PythonParser>>> {
        if !updraft_python::sdk::embedded() {
            return Ok(None);
        }
        let parser = updraft_python::ParseChildren::new(self.config.python()?, self.python_sdk()?);
        Ok(Some(Arc::new(parser)))
    }

    /// The DAG processor of this process's DAG folder.
    pub fn dag_processor(&self) -> Result<crate::dag_processor::DagProcessor> {
        Ok(crate::dag_processor::DagProcessor::new(
            self.config.core.dags_folder.clone(),
            self.store.clone(),
            self.config.core.dags_are_paused_at_creation,
            self.python_parser()?,
        ))
    }

    /// The SQLite file, when the database is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.database {
            DatabaseKind::Sqlite(path) => Some(path),
            DatabaseKind::Postgres(_) => None,
        }
    }

    /// The schema version this binary writes for the open database.
    pub fn schema_version(&self) -> i64 {
        match &self.database {
            DatabaseKind::Sqlite(_) => updraft_store_sqlite::SCHEMA_VERSION,
            DatabaseKind::Postgres(_) => updraft_store_postgres::SCHEMA_VERSION,
        }
    }

    /// Where the database is, for messages (without a password).
    pub fn database_name(&self) -> String {
        match &self.database {
            DatabaseKind::Sqlite(path) => path.display().to_string(),
            DatabaseKind::Postgres(url) => redact(url),
        }
    }

    /// Tells a `standalone` running on the same SQLite database to look at its work now.
    /// (PostgreSQL announces committed changes itself.)
    pub fn wake_standalone(&self) {
        if let Some(path) = self.sqlite_path() {
            crate::wake::send(path);
        }
    }
}

/// The cipher of `core.fernet_key`; `None` when it is empty (secrets are then stored in
/// plain text, as Airflow does without a key).
pub fn cipher(config: &Config) -> Result<Option<Arc<dyn Cipher>>> {
    let key = config.core.fernet_key.trim();
    if key.is_empty() {
        return Ok(None);
    }
    let cipher = FernetCipher::new(key).context("invalid configuration")?;
    Ok(Some(Arc::new(cipher)))
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redact("postgres://u:pw@db:5432/updraft"),
            "postgres://u:***@db:5432/updraft"
        );
        assert_eq!(redact("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(redact("/tmp/updraft.db"), "/tmp/updraft.db");
    }
}
