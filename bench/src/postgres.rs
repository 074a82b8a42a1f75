//! PostgreSQL for `--database postgres`: the server the harness is pointed at, on which every
//! repetition gets a fresh, uniquely named database that is dropped afterwards.

use std::io::Read;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// How long connecting to the server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Names of the harness's databases start with this, then the harness's process id.
pub const DATABASE_PREFIX: &str = "updraft_bench_";

/// The server, reached through an administrative URL (any database on it; the URL's user must
/// be allowed to create databases).
#[derive(Debug, Clone)]
pub struct Server {
    admin_url: String,
}

impl Server {
    pub fn new(admin_url: &str) -> Result<Server> {
        // Validates the shape: the databases' URLs are derived from this one.
        with_database(admin_url, "postgres")?;
        Ok(Server {
            admin_url: admin_url.to_owned(),
        })
    }

    /// The URL, with any password hidden.
    pub fn display_url(&self) -> String {
        redact(&self.admin_url)
    }

    /// Connects once, so that an unreachable server is reported before any workload starts.
    pub fn check(&self) -> Result<()> {
        let mut client = connect(&self.admin_url)?;
        client
            .simple_query("SELECT 1")
            .with_context(|| format!("PostgreSQL at {} does not answer", self.display_url()))?;
        Ok(())
    }

    /// Drops the databases left by harness runs that died without dropping them (killed, or
    /// interrupted with Ctrl-C): those whose harness process no longer exists. A database
    /// still in use is left alone (no `FORCE`). Only on a server of this machine, where the
    /// process ids in the names are this machine's. Returns how many were dropped.
    pub fn drop_abandoned_databases(&self) -> Result<usize> {
        if !self.is_on_this_machine() {
            return Ok(0);
        }
        let mut client = connect(&self.admin_url)?;
        let rows = client
            .query(
                "SELECT datname FROM pg_database WHERE starts_with(datname, $1)",
                &[&DATABASE_PREFIX],
            )
            .context("cannot list the databases")?;
        let mut dropped = 0;
        for row in rows {
            let name: String = row.get(0);
            let Some(harness) = harness_pid(&name) else {
                continue;
            };
            if crate::procfs::is_alive(harness) {
                continue;
            }
            match client.simple_query(&format!("DROP DATABASE IF EXISTS \"{name}\"")) {
                Ok(_) => dropped += 1,
                Err(e) => {
                    eprintln!("updraft-bench: warning: cannot drop the abandoned {name}: {e}")
                }
            }
        }
        Ok(dropped)
    }

    /// Whether every host of the URL is a loopback address or a Unix socket.
    fn is_on_this_machine(&self) -> bool {
        let Ok(config) = self.admin_url.parse::<postgres::Config>() else {
            return false;
        };
        let local = |host: &postgres::config::Host| match host {
            postgres::config::Host::Tcp(name) => {
                name == "localhost"
                    || name
                        .trim_matches(['[', ']'])
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            postgres::config::Host::Unix(_) => true,
        };
        !config.get_hosts().is_empty() && config.get_hosts().iter().all(local)
    }

    /// `CREATE DATABASE updraft_bench_<pid>_<random>`.
    pub fn fresh_database(&self) -> Result<FreshDatabase> {
        let name = format!("{DATABASE_PREFIX}{}_{}", std::process::id(), random_hex(6)?);
        let mut client = connect(&self.admin_url)?;
        client
            .simple_query(&format!("CREATE DATABASE \"{name}\""))
            .with_context(|| {
                format!(
                    "cannot create database {name} on {} (the user needs CREATEDB)",
                    self.display_url()
                )
            })?;
        Ok(FreshDatabase {
            url: with_database(&self.admin_url, &name)?,
            admin_url: self.admin_url.clone(),
            name,
        })
    }
}

/// The harness process id in a database name `updraft_bench_<pid>_<random>`.
fn harness_pid(name: &str) -> Option<i32> {
    let (pid, _random) = name.strip_prefix(DATABASE_PREFIX)?.split_once('_')?;
    pid.parse().ok()
}

/// A database of one repetition, dropped (with every connection to it) when this is dropped.
#[derive(Debug)]
pub struct FreshDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl FreshDatabase {
    /// What the updraft processes get as `database.url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn drop_database(&self) -> Result<()> {
        let mut client = connect(&self.admin_url)?;
        client
            .simple_query(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .with_context(|| format!("cannot drop database {}", self.name))?;
        Ok(())
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        if let Err(e) = self.drop_database() {
            eprintln!("updraft-bench: warning: {e:#}");
        }
    }
}

/// A synchronous client.
pub fn connect(url: &str) -> Result<postgres::Client> {
    let mut config: postgres::Config = url
        .parse()
        .with_context(|| format!("not a PostgreSQL URL: {}", redact(url)))?;
    config.connect_timeout(CONNECT_TIMEOUT);
    config
        .connect(postgres::NoTls)
        .with_context(|| format!("cannot connect to PostgreSQL at {}", redact(url)))
}

/// `url` with its database (the path) replaced by `database`; the query string is kept.
pub fn with_database(url: &str, database: &str) -> Result<String> {
    let Some(scheme_end) = url
        .strip_prefix("postgres://")
        .map(|_| "postgres://".len())
        .or_else(|| {
            url.strip_prefix("postgresql://")
                .map(|_| "postgresql://".len())
        })
    else {
        bail!(
            "expected a URL like postgres://USER@HOST:PORT/DATABASE, got {}",
            redact(url)
        );
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    Ok(format!(
        "{}{authority}/{database}{query}",
        &url[..scheme_end]
    ))
}

/// `url` with the password of its user info replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) => match authority[..at].find(':') {
            Some(colon) => format!(
                "{}{}:***{}",
                &url[..scheme_end],
                &authority[..colon],
                &url[scheme_end + at..]
            ),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// `bytes` random bytes from the kernel, as lowercase hex.
pub fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("cannot read /dev/urandom")?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_in_the_url_is_replaced() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/x",
            ),
            (
                "postgres://u:p@h/db?sslmode=disable",
                "postgres://u:p@h/x?sslmode=disable",
            ),
            ("postgresql://h:5432", "postgresql://h:5432/x"),
            (
                "postgres://h?application_name=a",
                "postgres://h/x?application_name=a",
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(with_database(url, "x").unwrap(), expected, "{url}");
        }
        assert!(with_database("host=localhost dbname=x", "y").is_err());
    }

    #[test]
    fn only_a_server_on_this_machine_has_its_leftovers_reclaimed() {
        let local = |url: &str| Server::new(url).unwrap().is_on_this_machine();
        assert!(local("postgres://postgres@127.0.0.1:5432/postgres"));
        assert!(local("postgres://postgres@localhost/postgres"));
        assert!(local("postgres://postgres@[::1]:5432/postgres"));
        assert!(!local("postgres://postgres@db.example.com:5432/postgres"));
        assert!(!local("postgres://postgres@10.0.0.7/postgres"));
    }

    #[test]
    fn database_names_carry_the_harness_pid() {
        assert_eq!(harness_pid("updraft_bench_4242_a1b2c3"), Some(4242));
        assert_eq!(harness_pid("updraft_bench_x_a1b2c3"), None);
        assert_eq!(harness_pid("updraft_bench_4242"), None);
        assert_eq!(harness_pid("other_4242_a1b2c3"), None);
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact("postgres://u:secret@h:1/db"),
            "postgres://u:***@h:1/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn random_hex_has_the_length_asked() {
        let a = random_hex(8).unwrap();
        assert_eq!(a.len(), 16);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, random_hex(8).unwrap());
    }
}
