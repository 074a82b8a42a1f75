//! Checking a username and password: the failed-login limits (per user and per client
//! address, kept in the database so every api-server counts the same failures), the password
//! check, and the record of the login.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use updraft_store::{StoreError, UserRecord};

use super::{password, Role};
use crate::{RestError, RestState};

/// Failed logins are counted over this window.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(5 * 60);
/// A user with this many failed logins from one client address in the window is locked there
/// until they age out, whatever the password (guessing one user's password). Counting per
/// address keeps someone else's wrong guesses from locking the user out everywhere.
pub const MAX_FAILURES_PER_USER: u32 = 5;
/// A user with this many failed logins from all addresses together is locked everywhere
/// (guessing one user's password from many places). High, since anyone can raise it.
pub const MAX_FAILURES_PER_USER_EVERYWHERE: u32 = 100;
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

fn user_at_address_key(username: &str, address: IpAddr) -> String {
    format!("user:{username}@{address}")
}

fn address_key(address: IpAddr) -> String {
    format!("addr:{address}")
}

/// The failed-login counters of a login attempt, each with its limit; the ones a successful
/// login clears come first (`clear` of them).
struct Counters {
    keys: Vec<String>,
    limits: Vec<u32>,
    clear: usize,
}

fn counters(username: &str, client: Option<IpAddr>) -> Counters {
    match client {
        Some(address) => Counters {
            keys: vec![
                user_at_address_key(username, address),
                user_key(username),
                address_key(address),
            ],
            limits: vec![
                MAX_FAILURES_PER_USER,
                MAX_FAILURES_PER_USER_EVERYWHERE,
                MAX_FAILURES_PER_ADDRESS,
            ],
            clear: 2,
        },
        None => Counters {
            keys: vec![user_key(username)],
            limits: vec![MAX_FAILURES_PER_USER],
            clear: 1,
        },
    }
}

/// The client of a request: the TCP peer, or — when the peer is one of the `trusted`
/// reverse proxies — the nearest address in `X-Forwarded-For` that is not a trusted proxy.
pub fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    // Proxies append: the rightmost entries are the closest, and only a trusted one's word
    // about the hop before it counts.
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|a| !trusted.contains(a))
            .unwrap_or(peer),
    )
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
    let Counters {
        keys,
        limits,
        clear,
    } = counters(&credentials.username, client);
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
    // Only the user's own counts: clearing the address's would let one valid account reset
    // the limit of an address that guesses other users' passwords.
    for key in &keys[..clear] {
        store.clear_login_failures(key).await?;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.7, 10.0.0.2"),
        );
        let proxies = [ip("10.0.0.1"), ip("10.0.0.2")];
        // An untrusted peer cannot choose its address.
        assert_eq!(
            client_address(Some(ip("198.51.100.1")), &headers, &proxies),
            Some(ip("198.51.100.1"))
        );
        // Behind the proxies: the nearest untrusted hop, not the leftmost (which the client
        // wrote itself).
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &headers, &proxies),
            Some(ip("203.0.113.7"))
        );
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &HeaderMap::new(), &proxies),
            Some(ip("10.0.0.1"))
        );
        assert_eq!(client_address(None, &headers, &proxies), None);
    }

    #[test]
    fn a_user_is_locked_per_address_and_only_much_later_everywhere() {
        let c = counters("alice", Some(ip("192.0.2.1")));
        assert_eq!(
            c.keys,
            ["user:alice@192.0.2.1", "user:alice", "addr:192.0.2.1"]
        );
        assert_eq!(
            c.limits,
            [
                MAX_FAILURES_PER_USER,
                MAX_FAILURES_PER_USER_EVERYWHERE,
                MAX_FAILURES_PER_ADDRESS
            ]
        );
        assert_eq!(c.clear, 2);
        let c = counters("alice", None);
        assert_eq!(c.keys, ["user:alice"]);
        assert_eq!(c.limits, [MAX_FAILURES_PER_USER]);
    }
}
