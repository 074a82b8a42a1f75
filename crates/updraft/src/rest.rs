//! The public REST API as the binary serves it: its configuration from `[api]`, the JWT
//! secret (generated into `updraft.toml` on the first start when none is configured), and
//! its router.

use std::path::Path;

use anyhow::{bail, Context, Result};
use base64::Engine;
use rand::RngCore;
use tracing::{info, warn};
use updraft_rest_api::{HeartbeatSource, Notifier, RestConfig, RestState};

use crate::app::App;
use crate::config::{duration, Config};

/// Which server needs the secret: they differ when the file cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// One process: a secret of its own for this run is enough (tokens end with it).
    Standalone,
    /// One of several: without a secret in the configuration, its tokens would not work on
    /// the others, so it refuses to start.
    ApiServer,
}

/// The configuration file of `home`.
pub fn config_file(home: &Path) -> std::path::PathBuf {
    home.join("updraft.toml")
}

/// Makes sure `config.api.jwt_secret` is set: when it is not, generates one and writes it
/// under `[api]` in `$UPDRAFT_HOME/updraft.toml`, keeping the rest of the file as it is.
pub fn ensure_jwt_secret(home: &Path, config: &mut Config, server: Server) -> Result<()> {
    if !config.api.jwt_secret.trim().is_empty() {
        return Ok(());
    }
    let file = config_file(home);
    match crate::config::ensure_generated(home, "api", "jwt_secret", random_secret) {
        Ok((secret, generated)) => {
            if generated {
                info!(file = %file.display(), "generated api.jwt_secret");
                if server == Server::ApiServer {
                    warn!(
                        file = %file.display(),
                        "generated api.jwt_secret for this api-server: every api-server of a \
                         cluster must have the same one, or tokens work on one server only"
                    );
                }
            }
            config.api.jwt_secret = secret;
            Ok(())
        }
        Err(e) if server == Server::Standalone => {
            warn!(
                error = %format!("{e:#}"),
                "api.jwt_secret is not set and cannot be saved: using one for this run only \
                 (tokens will not survive a restart)"
            );
            config.api.jwt_secret = random_secret();
            Ok(())
        }
        Err(e) => Err(e.context(format!(
            "api.jwt_secret is not set and cannot be written to {}: set the same secret on \
             every api-server (UPDRAFT_API__JWT_SECRET or [api] jwt_secret in updraft.toml)",
            file.display()
        ))),
    }
}

/// 48 random bytes, URL-safe base64 (64 characters).
pub fn random_secret() -> String {
    let mut bytes = [0u8; 48];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The REST API's configuration from `[api]` and `[logging]`.
pub fn rest_config(config: &Config) -> Result<RestConfig> {
    let api = &config.api;
    let mut rest = RestConfig::new(api.jwt_secret.clone());
    rest.jwt_expiration = duration("api.jwt_expiration", &api.jwt_expiration)?;
    rest.expose_config = api.expose_config;
    rest.config = config.exposed()?;
    rest.health.stale_after = duration(
        "api.scheduler_health_threshold",
        &api.scheduler_health_threshold,
    )?;
    rest.allow_origins = api.access_control_allow_origins.clone();
    rest.base_log_folder = config.logging.base_log_folder.clone();
    rest.secure_cookies = api.secure_cookies;
    rest.trusted_proxies =
        api.trusted_proxies
            .iter()
            .map(|address| {
                address.trim().parse().with_context(|| {
                    format!("api.trusted_proxies: {address:?} is not an IP address")
                })
            })
            .collect::<Result<_>>()?;
    rest.sensitive_names =
        updraft_secrets::SensitiveNames::new(&config.core.sensitive_var_conn_names);
    rest.test_connection = config
        .core
        .test_connection
        .trim()
        .eq_ignore_ascii_case("enabled");
    if api.fallback_page_limit == 0 || api.maximum_page_limit == 0 {
        bail!("api.fallback_page_limit and api.maximum_page_limit must be at least 1");
    }
    rest.fallback_page_limit = api.fallback_page_limit.min(api.maximum_page_limit);
    rest.maximum_page_limit = api.maximum_page_limit;
    Ok(rest)
}

/// The REST API's routes (`/api/v2/…`, `/auth/…`, `/openapi.json`, `/docs`), the web
/// UI's (`/`, `/login`, `/dags`, …, `/static/…`, `/ui/events`) on the app's store, and
/// Prometheus's `/metrics`. The server that serves them times every request
/// (`updraft_metrics::http::track_requests`, layered over all its routes at once). `notify`
/// wakes this process's schedulers after a change by hand; `heartbeats` is where the health
/// endpoint learns who is alive.
pub fn router(app: &App, notify: Notifier, heartbeats: HeartbeatSource) -> Result<axum::Router> {
    let mut config = rest_config(&app.config)?;
    config.health.heartbeats = heartbeats;
    let state =
        RestState::new(app.store.clone(), config, notify).context("cannot set up the REST API")?;
    let api = updraft_rest_api::router(state.clone()).context("cannot set up the REST API")?;
    Ok(api.merge(updraft_web_ui::router(state)).route(
        "/metrics",
        axum::routing::get(updraft_metrics::http::metrics),
    ))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_secret_is_added_under_api_and_the_rest_of_the_file_is_kept() {
        let home = tempfile::tempdir().unwrap();
        let file = config_file(home.path());
        let original = "# my settings\n[core]\nparallelism = 4 # four\n\n[api]\nport = 9090\n";
        std::fs::write(&file, original).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let mut config = Config::defaults(home.path());
        ensure_jwt_secret(home.path(), &mut config, Server::ApiServer).unwrap();
        let secret = config.api.jwt_secret.clone();
        assert_eq!(secret.len(), 64);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("# my settings\n[core]\nparallelism = 4 # four\n"),
            "{text}"
        );
        assert!(text.contains("port = 9090"), "{text}");
        let parsed: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(parsed["api"]["jwt_secret"].as_str(), Some(secret.as_str()));
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "the file keeps its permissions");

        // The next start reads it from the file and writes nothing.
        let loaded = Config::load(home.path()).unwrap();
        assert_eq!(loaded.api.jwt_secret, secret);
        let mut again = Config::defaults(home.path());
        ensure_jwt_secret(home.path(), &mut again, Server::ApiServer).unwrap();
        assert_eq!(again.api.jwt_secret, secret);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    }

    #[test]
    fn a_new_file_is_private_and_a_configured_secret_is_left_alone() {
        let home = tempfile::tempdir().unwrap();
        let mut config = Config::defaults(home.path());
        config.api.jwt_secret = "configured".into();
        ensure_jwt_secret(home.path(), &mut config, Server::Standalone).unwrap();
        assert_eq!(config.api.jwt_secret, "configured");
        assert!(!config_file(home.path()).exists());

        config.api.jwt_secret.clear();
        ensure_jwt_secret(home.path(), &mut config, Server::Standalone).unwrap();
        let mode = std::fs::metadata(config_file(home.path()))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn an_api_server_that_cannot_save_a_secret_refuses_to_start() {
        let home = tempfile::tempdir().unwrap();
        // A home that is a file cannot hold updraft.toml, whoever runs the test (root too).
        let not_a_dir = home.path().join("file");
        std::fs::write(&not_a_dir, "").unwrap();
        let mut config = Config::defaults(&not_a_dir);
        let err = ensure_jwt_secret(&not_a_dir, &mut config, Server::ApiServer).unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("UPDRAFT_API__JWT_SECRET"), "{message}");
        assert!(config.api.jwt_secret.is_empty());
        // standalone carries on with a secret of its own.
        ensure_jwt_secret(&not_a_dir, &mut config, Server::Standalone).unwrap();
        assert_eq!(config.api.jwt_secret.len(), 64);
    }
}
