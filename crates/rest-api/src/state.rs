//! What the handlers share: the store, the configuration and the caches of one server.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use updraft_scheduler::DagCache;
use updraft_store::Store;

use crate::auth::Auth;
use crate::ApiError;

/// Tells the schedulers of this process that something changed by hand (a trigger, a
/// clear, a pause), so they look at once. In a cluster the database's change feed does it,
/// and this may do nothing.
pub type Notifier = Arc<dyn Fn() + Send + Sync>;

/// How a server of the REST API is set up (the `[api]` configuration and the paths it reads).
#[derive(Clone)]
pub struct RestConfig {
    /// Signs and checks the tokens; the same on every api-server of a cluster.
    pub jwt_secret: String,
    /// How long a token is valid.
    pub jwt_expiration: Duration,
    /// Whether `GET /config` answers (Airflow's `api.expose_config`).
    pub expose_config: bool,
    /// The configuration in force, with secrets already hidden, as `GET /config` shows it:
    /// `{section: {key: value}}`.
    pub config: serde_json::Value,
    /// Origins allowed by CORS; empty: CORS is off.
    pub allow_origins: Vec<String>,
    /// Where workers of this machine write task logs (`logging.base_log_folder`), read when a
    /// log was not shipped to the database.
    pub base_log_folder: PathBuf,
    /// `limit` when a request gives none, and the most it may ask for.
    pub fallback_page_limit: u32,
    pub maximum_page_limit: u32,
    /// Whether the auth cookie needs HTTPS (off for plain-HTTP `standalone` on loopback).
    pub secure_cookies: bool,
    /// Reverse proxies whose `X-Forwarded-For` header names the client: the failed-login
    /// limits count per client, not per proxy.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Where `GET /monitor/health` (and `GET /jobs?is_alive=`) learn who is alive.
    pub health: crate::HealthConfig,
    /// Names whose values answers show as `***` (variables, keys of a connection's extra):
    /// Airflow's list and `core.sensitive_var_conn_names`.
    pub sensitive_names: updraft_secrets::SensitiveNames,
    /// Whether `POST /connections/test` may run (`core.test_connection = Enabled`).
    pub test_connection: bool,
    /// How long an accepted token's user and role are reused without reading them again
    /// ([`crate::auth::AUTH_CACHE_TTL`]): a logout or a user change made through another
    /// server takes effect here within this time; zero reads them on every request.
    pub auth_cache_ttl: Duration,
}

impl RestConfig {
    /// A configuration with Airflow's defaults around the given secret.
    pub fn new(jwt_secret: impl Into<String>) -> Self {
        RestConfig {
            jwt_secret: jwt_secret.into(),
            jwt_expiration: Duration::from_secs(24 * 3600),
            expose_config: false,
            config: serde_json::Value::Object(Default::default()),
            allow_origins: Vec::new(),
            base_log_folder: PathBuf::from("logs"),
            fallback_page_limit: 50,
            maximum_page_limit: 100,
            secure_cookies: false,
            trusted_proxies: Vec::new(),
            health: crate::HealthConfig::default(),
            sensitive_names: updraft_secrets::SensitiveNames::default(),
            test_connection: false,
            auth_cache_ttl: crate::auth::AUTH_CACHE_TTL,
        }
    }
}

/// The state every handler gets. Cheap to clone.
#[derive(Clone)]
pub struct RestState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub store: Arc<dyn Store>,
    pub config: RestConfig,
    pub auth: Auth,
    /// DAG versions never change once published, so their graphs are kept.
    pub dags: DagCache,
    /// Totals of run lists, kept until runs change.
    pub run_counts: crate::counts::CountCache,
    /// DAG version records, kept until DAGs change.
    pub versions: crate::versions::VersionCache,
    pub notify: Notifier,
}

impl RestState {
    pub fn new(
        store: Arc<dyn Store>,
        config: RestConfig,
        notify: Notifier,
    ) -> Result<Self, ApiError> {
        let auth = Auth::new(store.clone(), &config)?;
        Ok(RestState {
            inner: Arc::new(Inner {
                dags: DagCache::new(store.clone()),
                run_counts: crate::counts::CountCache::new(&*store),
                versions: crate::versions::VersionCache::new(&*store),
                store,
                auth,
                config,
                notify,
            }),
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The configuration this server was set up with.
    pub fn config(&self) -> &RestConfig {
        &self.inner.config
    }

    pub(crate) fn run_counts(&self) -> &crate::counts::CountCache {
        &self.inner.run_counts
    }

    pub(crate) fn versions(&self) -> &crate::versions::VersionCache {
        &self.inner.versions
    }

    /// The graphs of published DAG versions (immutable, so cached).
    pub fn dags(&self) -> &DagCache {
        &self.inner.dags
    }

    pub(crate) fn auth(&self) -> &Auth {
        &self.inner.auth
    }

    /// A token for `username` acting as `role` (what logging in answers).
    pub fn issue_token(
        &self,
        username: &str,
        role: crate::auth::Role,
    ) -> Result<(String, crate::auth::Claims), crate::auth::tokens::TokenError> {
        self.inner.auth.tokens.issue(username, role)
    }

    /// Forgets what this server knows of `username`'s tokens, so that a change of the user
    /// made here (role, password, deletion) takes effect on its very next request. The
    /// store's own announcements of user changes do this too; call it when a change may
    /// not have gone through this server's store.
    pub fn forget_user(&self, username: &str) {
        self.inner.auth.forget_user(username);
    }

    /// Wakes this process's schedulers after a change by hand.
    pub(crate) fn changed(&self) {
        (self.inner.notify)();
    }
}
