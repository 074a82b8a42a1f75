//! Checking a username and password: the failed-login limits (per user and per client
//! address, kept in the database so every api-server counts the same failures), the password
//! check, and the record of the login.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use updraft_store::{StoreError, UserRecord};

use super::{password, Role};
use crate::{RestError, RestState};

/// Failed logins are counted over this window.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(5 * 60);
/// A user with this many failed logins in the window is locked until they age out, whatever
/// the password (guessing one user's password).
pub const MAX_FAILURES_PER_USER: u32 = 5;
/// A client address with this many failed logins in the window is locked (guessing across
/// many users from one place). Higher than per user: several people may share an address.
pub const MAX_FAILURES_PER_ADDRESS: u32 = 20;

/// The one answer to a wrong username, a wrong password or an inactive user: it must not
/// tell which of them it was.
pub const INVALID_CREDENTIALS: &str = "Invalid credentials";

/// A username and a password, as the login routes read them.
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// Why a login was refused.
#[derive(Debug)]
pub enum LoginRefused {
    /// Too many failed logins: try again after this many seconds.
    Locked {
        retry_after: u64,
    },
    Error(RestError),
}

impl From<RestError> for LoginRefused {
    fn from(e: RestError) -> Self {
        LoginRefused::Error(e)
    }
}

impl From<StoreError> for LoginRefused {
    fn from(e: StoreError) -> Self {
        LoginRefused::Error(e.into())
    }
}

impl IntoResponse for LoginRefused {
    fn into_response(self) -> Response {
        match self {
            LoginRefused::Locked { retry_after } => {
                let mut response = RestError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many failed logins; try again later",
                )
                .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                response
            }
            LoginRefused::Error(e) => e.into_response(),
        }
    }
}

/// The keys failures are counted under.
fn user_key(username: &str) -> String {
    format!("user:{username}")
}

fn address_key(address: IpAddr) -> String {
    format!("addr:{address}")
}

/// The user whose credentials these are, after the failed-login limits and the password
/// check; records the login. `client` is the socket peer's address (None when the server
/// was not served with connect info: then only the per-user limit applies).
pub async fn check(
    state: &RestState,
    credentials: Credentials,
    client: Option<IpAddr>,
) -> Result<(UserRecord, Role), LoginRefused> {
    let store = &state.auth().store;
    let now = Utc::now();
    let window = chrono::Duration::from_std(FAILURE_WINDOW).unwrap_or(chrono::Duration::MAX);
    let since = now - window;
    let mut keys = vec![user_key(&credentials.username)];
    let mut limits = vec![MAX_FAILURES_PER_USER];
    if let Some(address) = client {
        keys.push(address_key(address));
        limits.push(MAX_FAILURES_PER_ADDRESS);
    }
    for (key, limit) in keys.iter().zip(&limits) {
        if store.login_failures(key, since).await? >= *limit {
            tracing::warn!(key = %key, "login refused: too many failed logins");
            return Err(LoginRefused::Locked {
                retry_after: FAILURE_WINDOW.as_secs(),
            });
        }
    }

    let user = store
        .get_user(&credentials.username)
        .await?
        .filter(|user| user.active);
    let stored_hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| decoy_hash().to_string());
    // Argon2 takes tens of milliseconds of CPU: off the async workers. An unknown user is
    // checked against a decoy hash so that the answer takes as long as for a known one.
    let password = credentials.password;
    let matches = tokio::task::spawn_blocking(move || password::verify(&password, &stored_hash))
        .await
        .map_err(|e| RestError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let user = match user {
        Some(user) if matches => user,
        _ => {
            store.record_login_failure(&keys, now, since).await?;
            // Not the username: people type their password into that field.
            tracing::info!(client = ?client, "failed login");
            return Err(RestError::unauthorized(INVALID_CREDENTIALS).into());
        }
    };
    let role = Role::parse(&user.role).ok_or_else(|| {
        RestError::forbidden(format!(
            "user {} has an unknown role {:?}",
            user.username, user.role
        ))
    })?;
    // Only the user's own count: clearing the address's would let one valid account reset
    // the limit of an address that guesses other users' passwords.
    store.clear_login_failures(&keys[0]).await?;
    store.record_login(&user.username, now).await?;
    Ok((user, role))
}

/// A hash of a random password, computed once, that no password matches.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let random = uuid::Uuid::new_v4().to_string();
        password::hash(&random).unwrap_or_default()
    })
}
