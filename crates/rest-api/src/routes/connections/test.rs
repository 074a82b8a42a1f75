//! `POST /connections/test`: whether a connection's system can be reached from this server.
//! Off unless `core.test_connection` is `Enabled` (403), as in Airflow. updraft has no
//! provider hooks, so it tests what it honestly can: an HTTP `GET` for `http`/`https`
//! connections, a TCP connection to `host:port` for the others. Credentials are not checked,
//! and the message says so.

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use updraft_store::ConnectionRecord;

use super::ConnectionBody;
use crate::extract::JsonBody;
use crate::{RestError, RestState};

/// How long a test may wait for the other side.
const TEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Airflow's `ConnectionTestResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConnectionTestResponse {
    pub status: bool,
    pub message: String,
}

/// Tests a connection (given in full; a `***` password or extra value is taken from the
/// stored connection of the same id). Answers 200 with `status: false` when it fails.
#[utoipa::path(post, path = "/connections/test", operation_id = "test_connection",
    tag = "Connection",
    request_body = ConnectionBody,
    responses((status = 200, body = ConnectionTestResponse),
        (status = 403, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
pub(super) async fn test_connection(
    State(state): State<RestState>,
    JsonBody(body): JsonBody<ConnectionBody>,
) -> Result<Json<ConnectionTestResponse>, RestError> {
    if !state.config().test_connection {
        return Err(RestError::forbidden(
            "Testing connections is disabled in updraft's configuration: set \
             core.test_connection = \"Enabled\" to allow it",
        ));
    }
    body.validate(&["body"])?;
    // Stored secrets are used only to reach the system they were stored for: with another
    // type, host, port or schema the test would hand them to whatever the caller names.
    let connection = match state.store().get_connection(&body.connection_id).await? {
        Some(stored) => {
            let merged = body.apply(stored.clone(), None, &state.config().sensitive_names);
            let same_target = (&merged.conn_type, &merged.host, merged.port, &merged.schema)
                == (&stored.conn_type, &stored.host, stored.port, &stored.schema);
            if same_target {
                merged
            } else {
                body.record()
            }
        }
        None => body.record(),
    };
    let (status, message) = probe(&connection).await;
    Ok(Json(ConnectionTestResponse { status, message }))
}

/// Reaches the connection's system: `(status, message)`.
async fn probe(c: &ConnectionRecord) -> (bool, String) {
    let Some(host) = c.host.as_deref().filter(|h| !h.trim().is_empty()) else {
        return (false, "The connection has no host to test".into());
    };
    let is_http = matches!(c.conn_type.as_str(), "http" | "https")
        || host.starts_with("http://")
        || host.starts_with("https://");
    if is_http {
        return http_get(c, host).await;
    }
    let Some(port) = c.port.or_else(|| default_port(&c.conn_type)) else {
        return (
            false,
            format!(
                "The connection has no port, and updraft knows no default port for type {:?}",
                c.conn_type
            ),
        );
    };
    match tokio::time::timeout(TEST_TIMEOUT, TcpStream::connect((host, port as u16))).await {
        Ok(Ok(_)) => (
            true,
            format!(
                "Connection successfully tested: {host}:{port} accepts TCP connections \
                 (updraft tests reachability, not credentials)"
            ),
        ),
        Ok(Err(e)) => (false, format!("Cannot connect to {host}:{port}: {e}")),
        Err(_) => (
            false,
            format!(
                "Cannot connect to {host}:{port}: no answer within {} s",
                TEST_TIMEOUT.as_secs()
            ),
        ),
    }
}

/// The URL of an HTTP connection as Airflow's HTTP hook builds it: the host (with its
/// scheme, or the connection's `schema` field as the scheme, default `http`) and the port.
fn http_url(c: &ConnectionRecord, host: &str) -> String {
    let mut url =
        if host.contains("://") {
            host.to_string()
        } else {
            let scheme = c.schema.as_deref().filter(|s| !s.is_empty()).unwrap_or(
                if c.conn_type == "https" {
                    "https"
                } else {
                    "http"
                },
            );
            format!("{scheme}://{host}")
        };
    if let Some(port) = c.port {
        url.push_str(&format!(":{port}"));
    }
    url
}

async fn http_get(c: &ConnectionRecord, host: &str) -> (bool, String) {
    let url = http_url(c, host);
    let client = match reqwest::Client::builder().timeout(TEST_TIMEOUT).build() {
        Ok(client) => client,
        Err(e) => return (false, format!("Cannot make an HTTP client: {e}")),
    };
    let mut request = client.get(&url);
    if let Some(login) = c.login.as_deref().filter(|l| !l.is_empty()) {
        request = request.basic_auth(login, c.password.as_deref());
    }
    match request.send().await {
        Ok(response) if response.status().as_u16() < 400 => (
            true,
            format!(
                "Connection successfully tested: GET {url} answered {}",
                response.status()
            ),
        ),
        Ok(response) => (false, format!("GET {url} answered {}", response.status())),
        Err(e) => (false, format!("GET {url} failed: {e}")),
    }
}

/// The usual port of a connection type, for connections that leave it out.
fn default_port(conn_type: &str) -> Option<i32> {
    Some(match conn_type {
        "postgres" => 5432,
        "mysql" => 3306,
        "redis" => 6379,
        "mssql" => 1433,
        "oracle" => 1521,
        "mongo" => 27017,
        "ftp" => 21,
        "ssh" | "sftp" => 22,
        "smtp" => 25,
        "imap" => 143,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_are_built_as_airflow_builds_them() {
        let c = |host: &str, schema: Option<&str>, port: Option<i32>| ConnectionRecord {
            conn_type: "http".into(),
            host: Some(host.into()),
            schema: schema.map(str::to_string),
            port,
            ..ConnectionRecord::default()
        };
        assert_eq!(
            http_url(&c("api.example", None, None), "api.example"),
            "http://api.example"
        );
        assert_eq!(
            http_url(&c("api.example", Some("https"), Some(8443)), "api.example"),
            "https://api.example:8443"
        );
        assert_eq!(
            http_url(
                &c("https://x.example", Some("http"), None),
                "https://x.example"
            ),
            "https://x.example"
        );
    }
}
