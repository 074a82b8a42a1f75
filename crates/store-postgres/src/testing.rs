//! Fresh PostgreSQL databases for tests (feature `testing`): each [`TestPostgres`] is a new,
//! uniquely named database on the server at `UPDRAFT_TEST_POSTGRES_URL`, dropped with it.
//!
//! When the server cannot be reached, [`TestPostgres::create`] says so loudly and returns
//! `None` (the test then passes without checking anything), except under CI (`CI` set), where
//! it panics: CI must run these tests.

use std::time::Duration;

use sqlx::{Connection, PgConnection};

use crate::{redact, PostgresOptions, PostgresStore};

/// The server tests use unless `UPDRAFT_TEST_POSTGRES_URL` says otherwise.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The environment variable naming the server (any database on it: the URL is used to
/// create and drop the test databases).
pub const URL_VARIABLE: &str = "UPDRAFT_TEST_POSTGRES_URL";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A fresh database, dropped (with every connection to it) when this is dropped.
#[derive(Debug)]
pub struct TestPostgres {
    admin_url: String,
    name: String,
    url: String,
}

impl TestPostgres {
    /// Creates a fresh database; `None` (after saying so on stderr) when no server is
    /// reachable outside CI.
    pub async fn create() -> Option<TestPostgres> {
        let admin_url = std::env::var(URL_VARIABLE).unwrap_or_else(|_| DEFAULT_URL.to_string());
        let mut admin =
            match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(&admin_url)).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => return unreachable_server(&admin_url, &e.to_string()),
                Err(_) => return unreachable_server(&admin_url, "connection timed out"),
            };
        let name = format!("updraft_test_{}", uuid::Uuid::new_v4().simple());
        if let Err(e) = sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
        {
            panic!(
                "PostgreSQL at {} is reachable but cannot create a test database: {e}",
                redact(&admin_url)
            );
        }
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        Some(TestPostgres {
            admin_url,
            name,
            url,
        })
    }

    /// [`create`](Self::create) for code outside a runtime.
    pub fn create_blocking() -> Option<TestPostgres> {
        on_own_runtime(Self::create())
    }

    /// The URL of the fresh database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A new store (a new pool, as another process would have) on the database.
    pub async fn open(&self) -> PostgresStore {
        self.open_with(PostgresOptions::default()).await
    }

    pub async fn open_with(&self, options: PostgresOptions) -> PostgresStore {
        match PostgresStore::connect_with(&self.url, options).await {
            Ok(store) => store,
            Err(e) => panic!("cannot open the test database {}: {e}", self.name),
        }
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let dropped = on_own_runtime(async move {
            let mut admin = PgConnection::connect(&admin_url).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut admin)
                .await?;
            admin.close().await
        });
        if let Err(e) = dropped {
            eprintln!("warning: cannot drop test database {}: {e}", self.name);
        }
    }
}

fn unreachable_server(url: &str, error: &str) -> Option<TestPostgres> {
    let url = redact(url);
    if std::env::var_os("CI").is_some() {
        panic!(
            "PostgreSQL not reachable at {url} ({error}); CI must run the PostgreSQL tests: \
             start a server or set {URL_VARIABLE}"
        );
    }
    eprintln!(
        "\n\
         ******************************************************************************\n\
         SKIPPED: PostgreSQL not reachable at {url} ({error}),\n\
         set {URL_VARIABLE}\n\
         ******************************************************************************\n"
    );
    None
}

/// `url` pointing at database `name` (same server, user and parameters).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let server = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// Runs `future` to completion on a runtime of its own, on a thread of its own, so that it
/// works inside and outside another runtime (and from `Drop`).
fn on_own_runtime<F>(future: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let thread = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|runtime| runtime.block_on(future))
    });
    match thread.join() {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => panic!("cannot start a tokio runtime: {e}"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn with_database_replaces_only_the_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
        assert_eq!(with_database("postgres://h?a=b", "x"), "postgres://h/x?a=b");
    }
}
