//! Configuration: built-in defaults, then `$UPDRAFT_HOME/updraft.toml`, then
//! `UPDRAFT_<SECTION>__<KEY>` environment variables, then command-line flags.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

mod generated;
pub use generated::ensure_generated;

/// A remote worker's default start slots per core. Its claim is an HTTP request and a
/// database commit (1–3 ms on a busy 2-core machine) while a plain command starts in under a
/// millisecond: with one slot per core it spent most of its time waiting for claims (W5 on
/// the PostgreSQL cluster: 12–15 tries queued and 1–4 running at any moment, 416 TI/s; 983
/// with four per core). The worker of `standalone` claims in-process and keeps one per core,
/// which starts a Python try within milliseconds of its claim (W8).
pub const REMOTE_STARTS_PER_CORE: usize = 4;

/// How a worker's claims reach the store, which decides its default start slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimPath {
    /// The worker of `standalone`, calling the store directly.
    InProcess,
    /// A remote worker, through an API server.
    OverHttp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub core: CoreConfig,
    pub database: DatabaseConfig,
    pub api: ApiConfig,
    pub logging: LoggingConfig,
    pub scheduler: SchedulerSection,
    pub worker: WorkerSection,
    pub dag_processor: DagProcessorSection,
    pub notifications: NotificationsSection,
    pub traces: TracesSection,
    pub metrics: MetricsSection,
}

/// OpenTelemetry traces (`updraft-telemetry`): a DAG run is a trace, each task try a span.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TracesSection {
    /// Export traces; off by default.
    pub on: bool,
    /// The collector's OTLP/HTTP address, e.g. `http://collector:4318` (`/v1/traces` is
    /// added). Empty: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, else `http://localhost:4318`.
    pub otlp_endpoint: String,
    /// `service.name` of the spans this process exports.
    pub service_name: String,
    /// The longest a finished span waits before it is sent (spans go in batches).
    pub export_interval: String,
    /// The limit of one export request.
    pub export_timeout: String,
}

/// Metrics: Prometheus's `/metrics` (on the API port of `standalone` and `api-server`, on
/// `metrics.port` for `scheduler` and `worker`) and StatsD, under Airflow's key names.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricsSection {
    /// Record metrics at all; off, `/metrics` answers 404 and nothing is sent to StatsD.
    pub enabled: bool,
    /// The address of the metrics server of `scheduler` and `worker`.
    pub host: String,
    /// The port of that server (`/metrics`, and the scheduler's `/health`); unset: none.
    /// 0 picks a free port, printed at start.
    pub port: Option<u16>,
    /// Send metrics to StatsD as well, under Airflow's names.
    pub statsd_on: bool,
    pub statsd_host: String,
    pub statsd_port: u16,
    /// Every StatsD name starts with `<prefix>.`.
    pub statsd_prefix: String,
}

/// The delivery of callbacks' notifications (webhooks, Slack, email) by `standalone` and
/// every `scheduler`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotificationsSection {
    /// How often the delivery loop looks for due notifications when nothing is due sooner.
    pub poll_interval: String,
    /// Attempts before a notification is given up (and written to the event log).
    pub max_attempts: u32,
    /// The wait after the first failed attempt, doubled after each, up to `max_retry_delay`.
    pub retry_delay: String,
    pub max_retry_delay: String,
    /// The limit of one request or SMTP session.
    pub timeout: String,
    /// How long a delivery's claim holds; a process that dies leaves it to others after it.
    pub lease: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DagProcessorSection {
    /// The longest one Python DAG file may run before its process is killed (an import error).
    pub dag_file_processor_timeout: String,
    /// Python DAG files run at once.
    pub parsing_processes: u32,
    /// The memory (address space) a Python DAG file's process may use, in MiB; 0: no limit.
    pub memory_limit_mib: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CoreConfig {
    pub dags_folder: PathBuf,
    /// Task instances queued or running at once across all DAGs.
    pub parallelism: u32,
    pub dags_are_paused_at_creation: bool,
    /// Safety-net rescan of the DAG folder; file changes are picked up at once by a watcher.
    pub dag_dir_list_interval: String,
    /// Fernet key(s) encrypting connection passwords, extras and variable values at rest;
    /// a comma-separated list to rotate (the first encrypts). Empty: stored in plain text.
    pub fernet_key: String,
    /// Names (comma-separated) that mark a variable or an extra key as secret, beyond
    /// Airflow's built-in list.
    pub sensitive_var_conn_names: String,
    /// `Enabled` allows `POST /connections/test` (Airflow's `core.test_connection`).
    pub test_connection: String,
    /// The Python interpreter for Python DAG files and tasks (a task may name another with
    /// `python_executable`).
    pub python: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatabaseConfig {
    /// `sqlite:///absolute/path.db`, `sqlite://relative.db` or a plain file path.
    pub url: String,
    /// Delete history older than this (`30d`) automatically, as `db clean --skip-archive`
    /// would; empty: never (the default).
    pub retention: String,
    /// How often `standalone` (or one of the schedulers) applies `retention`.
    pub retention_interval: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiConfig {
    pub host: String,
    pub port: u16,
    /// The secret remote workers present to the API servers. Required by `api-server` and
    /// `worker`; keep it out of the file (UPDRAFT_API__WORKER_TOKEN).
    pub worker_token: String,
    /// The scheduler counts as healthy when one beat within this.
    pub scheduler_health_threshold: String,
    /// Signs the users' tokens. Generated into `updraft.toml` on the first start of
    /// `standalone` or `api-server` when unset; every api-server of a cluster needs the same.
    pub jwt_secret: String,
    /// How long a user's token is valid.
    pub jwt_expiration: String,
    /// Whether `GET /api/v2/config` answers (secrets hidden).
    pub expose_config: bool,
    /// Browser origins allowed to call the API (CORS); empty: CORS is off. A list, or one
    /// string of origins separated by spaces or commas (as an environment variable).
    #[serde(deserialize_with = "list_or_string")]
    pub access_control_allow_origins: Vec<String>,
    /// Mark the UI's cookies `Secure` (when the API is served over HTTPS).
    pub secure_cookies: bool,
    /// Addresses of reverse proxies whose `X-Forwarded-For` names the client (for the
    /// failed-login limits); a list, or one string separated by spaces or commas.
    #[serde(deserialize_with = "list_or_string")]
    pub trusted_proxies: Vec<String>,
    /// `limit` of a list request that gives none, and the most it may ask for.
    pub fallback_page_limit: u32,
    pub maximum_page_limit: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoggingConfig {
    pub base_log_folder: PathBuf,
    /// A `tracing` filter, e.g. `info` or `updraft_scheduler=debug`.
    pub level: String,
    /// Write this process's logs as JSON lines (timestamp, level, message, fields, target).
    pub json_logs: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SchedulerSection {
    pub sweep_interval: String,
    /// How long a scheduler's runs stay its own without a renewal; then another scheduler
    /// adopts them. Renewed every sweep, so keep it a few sweeps long.
    pub lease: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerSection {
    /// Task processes at once in the local worker; defaults to `core.parallelism`.
    pub concurrency: Option<u32>,
    pub heartbeat_interval: String,
    /// How long a worker's claim survives without a heartbeat.
    pub lease: String,
    /// SIGTERM → SIGKILL grace when a task is timed out or cancelled.
    pub kill_grace: String,
    /// Start a command without shell syntax (`true`, `python etl.py 2026-01-01`) directly
    /// rather than through `bash -c`, with the same arguments and environment.
    pub direct_exec: bool,
    /// Start Python tasks (of `core.python`) by forking them from a fork server that has
    /// imported the SDK once, instead of starting an interpreter per try.
    pub python_fork_server: bool,
    /// Tries a worker holds claimed but not started yet, at most; the rest stay queued for
    /// whichever worker can start them first. Defaults to the number of cores (four per core
    /// for a remote worker: [`Config::max_starting`]).
    pub max_starting: Option<u32>,
    /// How long a remote worker told to stop (SIGTERM) lets its running tasks finish before
    /// it kills them and they are retried elsewhere.
    pub shutdown_grace: String,
    /// The API servers a remote worker pulls work from.
    pub servers: Vec<String>,
    /// The queues a remote worker serves.
    pub queues: Vec<String>,
}

impl Config {
    pub fn defaults(home: &Path) -> Config {
        Config {
            core: CoreConfig {
                dags_folder: home.join("dags"),
                parallelism: 32,
                dags_are_paused_at_creation: false,
                dag_dir_list_interval: "30s".into(),
                fernet_key: String::new(),
                sensitive_var_conn_names: String::new(),
                test_connection: "Disabled".into(),
                python: "python3".into(),
            },
            database: DatabaseConfig {
                url: format!("sqlite://{}", home.join("updraft.db").display()),
                retention: String::new(),
                retention_interval: "1h".into(),
            },
            api: ApiConfig {
                host: "127.0.0.1".into(),
                port: 8080,
                worker_token: String::new(),
                scheduler_health_threshold: "30s".into(),
                jwt_secret: String::new(),
                jwt_expiration: "24h".into(),
                expose_config: false,
                access_control_allow_origins: Vec::new(),
                secure_cookies: false,
                trusted_proxies: Vec::new(),
                fallback_page_limit: 50,
                maximum_page_limit: 100,
            },
            logging: LoggingConfig {
                base_log_folder: home.join("logs"),
                level: "info".into(),
                json_logs: false,
            },
            scheduler: SchedulerSection {
                sweep_interval: "2s".into(),
                lease: "10s".into(),
            },
            worker: WorkerSection {
                concurrency: None,
                heartbeat_interval: "5s".into(),
                lease: "30s".into(),
                kill_grace: "5s".into(),
                direct_exec: true,
                python_fork_server: true,
                max_starting: None,
                shutdown_grace: "60s".into(),
                servers: Vec::new(),
                queues: vec!["default".into()],
            },
            dag_processor: DagProcessorSection {
                dag_file_processor_timeout: "50s".into(),
                parsing_processes: 2,
                memory_limit_mib: 2048,
            },
            notifications: NotificationsSection {
                poll_interval: "1s".into(),
                max_attempts: 5,
                retry_delay: "5s".into(),
                max_retry_delay: "5m".into(),
                timeout: "30s".into(),
                lease: "2m".into(),
            },
            traces: TracesSection {
                on: false,
                otlp_endpoint: String::new(),
                service_name: "updraft".into(),
                export_interval: "5s".into(),
                export_timeout: "10s".into(),
            },
            metrics: MetricsSection {
                enabled: true,
                host: "127.0.0.1".into(),
                port: None,
                statsd_on: false,
                statsd_host: "localhost".into(),
                statsd_port: 8125,
                statsd_prefix: "updraft".into(),
            },
        }
    }

    /// This process's traces: off unless `traces.on`.
    pub fn traces(&self) -> Result<updraft_telemetry::Traces> {
        let t = &self.traces;
        if !t.on {
            return Ok(updraft_telemetry::Traces::off());
        }
        let config = updraft_telemetry::TracesConfig {
            endpoint: Some(t.otlp_endpoint.trim().to_owned()).filter(|e| !e.is_empty()),
            service_name: t.service_name.clone(),
            export_interval: duration("traces.export_interval", &t.export_interval)?,
            export_timeout: duration("traces.export_timeout", &t.export_timeout)?,
        };
        Ok(updraft_telemetry::Traces::start(&config)?)
    }

    /// How this process delivers notifications, its claims named `deliverer_id`.
    pub fn delivery(&self, deliverer_id: &str) -> Result<updraft_worker::notify::DeliveryConfig> {
        let n = &self.notifications;
        let mut config = updraft_worker::notify::DeliveryConfig::new(deliverer_id);
        config.poll_interval = duration("notifications.poll_interval", &n.poll_interval)?;
        config.max_attempts = n.max_attempts.max(1);
        config.retry_base = duration("notifications.retry_delay", &n.retry_delay)?;
        config.retry_max = duration("notifications.max_retry_delay", &n.max_retry_delay)?;
        config.timeout = duration("notifications.timeout", &n.timeout)?;
        config.lease = duration("notifications.lease", &n.lease)?;
        Ok(config)
    }

    /// `worker.max_starting`, or by default the number of cores for the worker of
    /// `standalone` and [`REMOTE_STARTS_PER_CORE`] times that for a remote worker.
    pub fn max_starting(&self, claims: ClaimPath) -> usize {
        if let Some(n) = self.worker.max_starting {
            return n.max(1) as usize;
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        match claims {
            ClaimPath::InProcess => cores,
            ClaimPath::OverHttp => cores * REMOTE_STARTS_PER_CORE,
        }
    }

    /// How Python children are started (`core.python`, `dag_processor.*`).
    pub fn python(&self) -> Result<updraft_python::PythonConfig> {
        let d = &self.dag_processor;
        Ok(updraft_python::PythonConfig {
            interpreter: self.core.python.clone(),
            parse_timeout: duration(
                "dag_processor.dag_file_processor_timeout",
                &d.dag_file_processor_timeout,
            )?,
            parse_memory_limit: (d.memory_limit_mib > 0)
                .then(|| d.memory_limit_mib.saturating_mul(1 << 20)),
            parse_concurrency: d.parsing_processes.max(1) as usize,
        })
    }

    /// Loads the configuration in force for `home`.
    pub fn load(home: &Path) -> Result<Config> {
        let file = home.join("updraft.toml");
        Figment::from(Serialized::defaults(Config::defaults(home)))
            .merge(Toml::file(&file))
            .merge(Env::prefixed("UPDRAFT_").ignore(&["HOME"]).split("__"))
            .extract()
            .with_context(|| {
                format!(
                    "invalid configuration (file {}, UPDRAFT_* variables)",
                    file.display()
                )
            })
    }

    /// The configuration as shown to people (`config list`, `GET /api/v2/config`): secrets
    /// replaced by `***`, the database password left out.
    pub fn redacted(&self) -> Config {
        let mut shown = self.clone();
        for secret in [
            &mut shown.api.worker_token,
            &mut shown.api.jwt_secret,
            &mut shown.core.fernet_key,
        ] {
            if !secret.is_empty() {
                *secret = "***".into();
            }
        }
        shown.database.url = crate::app::redact(&shown.database.url);
        shown
    }

    /// The configuration as `GET /api/v2/config` shows it: `{section: {option: value}}` with
    /// every secret (worker token, JWT secret, Fernet key, database URL) as `< hidden >`.
    pub fn exposed(&self) -> Result<serde_json::Value> {
        Ok(updraft_rest_api::hide_config_secrets(
            &serde_json::to_value(self)?,
        ))
    }

    /// The database named by `database.url`.
    pub fn database_kind(&self) -> Result<DatabaseKind> {
        let url = self.database.url.trim();
        if let Some(rest) = url.strip_prefix("sqlite://") {
            return Ok(DatabaseKind::Sqlite(PathBuf::from(rest)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseKind::Postgres(url.to_string()));
        }
        if url.contains("://") {
            anyhow::bail!(
                "unsupported database URL {:?}: use postgres://…, sqlite://… or a file path",
                crate::app::redact(url)
            );
        }
        Ok(DatabaseKind::Sqlite(PathBuf::from(url)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite(PathBuf),
    /// A connection URL.
    Postgres(String),
}

/// `$UPDRAFT_HOME`, or `~/.updraft`.
pub fn updraft_home() -> PathBuf {
    if let Some(home) = std::env::var_os("UPDRAFT_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home);
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".updraft")
}

pub fn duration(key: &str, text: &str) -> Result<std::time::Duration> {
    updraft_model::duration::parse_duration(text).with_context(|| format!("configuration {key}"))
}

/// A list, or a string of items separated by spaces or commas (how environment variables
/// and Airflow's configuration write lists).
fn list_or_string<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrString {
        List(Vec<String>),
        Text(String),
    }
    let items = match ListOrString::deserialize(deserializer)? {
        ListOrString::List(items) => items,
        ListOrString::Text(text) => text
            .split(|c: char| c == ',' || c.is_whitespace())
            .map(str::to_string)
            .collect(),
    };
    Ok(items
        .into_iter()
        .map(|item| item.trim().to_string())
        .filter(|item| !item.is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_worker_gets_more_start_slots_by_default_and_the_setting_wins_for_both() {
        let mut config = Config::defaults(Path::new("/nonexistent"));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        assert_eq!(config.max_starting(ClaimPath::InProcess), cores);
        assert_eq!(
            config.max_starting(ClaimPath::OverHttp),
            cores * REMOTE_STARTS_PER_CORE
        );
        config.worker.max_starting = Some(3);
        assert_eq!(config.max_starting(ClaimPath::InProcess), 3);
        assert_eq!(config.max_starting(ClaimPath::OverHttp), 3);
        config.worker.max_starting = Some(0);
        assert_eq!(config.max_starting(ClaimPath::OverHttp), 1);
    }
}
