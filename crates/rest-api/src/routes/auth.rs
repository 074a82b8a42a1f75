//! Logging in and out: `POST /auth/token` answers a bearer token as Airflow's simple auth
//! manager does; `POST /auth/login` sets the UI's cookies (the token, HttpOnly, and a CSRF
//! token the UI echoes in `X-CSRF-Token`); `GET|POST /auth/logout` revokes the token.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::{Extension, Form, Json};
use axum_extra::extract::cookie::{Cookie, SameSite};
use axum_extra::extract::CookieJar;
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::login::{self, Credentials, LoginRefused};
use crate::auth::{Access, Principal, CSRF_COOKIE, TOKEN_COOKIE};
use crate::{RestError, RestState};

pub(crate) const PERMISSIONS: super::Permissions = &[
    ("create_token", Access::Public),
    ("login", Access::Public),
    ("logout", Access::Authenticated),
    ("logout_post", Access::Authenticated),
];

pub(crate) fn routes() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(create_token))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(logout_post))
}

/// A username and a password, as JSON or as a form.
/// Read by its [`FromRequest`] impl (JSON or form), not by serde.
#[derive(utoipa::ToSchema)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
}

impl From<LoginBody> for Credentials {
    fn from(body: LoginBody) -> Self {
        Credentials {
            username: body.username,
            password: body.password,
        }
    }
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoginResponse {
    pub access_token: String,
}

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

/// Reads [`LoginBody`] from a JSON or a form body (JSON when no type is given, as Airflow
/// assumes); any other type is a 415. A missing, extra or non-text field is a 422 naming it.
impl<S: Send + Sync> FromRequest<S> for LoginBody {
    type Rejection = RestError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(JSON)
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let fields: Vec<(String, Value)> = match content_type.as_str() {
            JSON => {
                let body = axum::body::Bytes::from_request(request, state)
                    .await
                    .map_err(|e| RestError::new(e.status(), e.body_text()))?;
                match serde_json::from_slice::<Value>(&body) {
                    Ok(Value::Object(map)) => map.into_iter().collect(),
                    Ok(_) => {
                        return Err(RestError::invalid(
                            &["body"],
                            "Input should be a valid dictionary",
                        ))
                    }
                    Err(e) => {
                        return Err(RestError::invalid(
                            &["body"],
                            format!("JSON decode error: {e}"),
                        ))
                    }
                }
            }
            FORM => {
                let Form(pairs) = Form::<Vec<(String, String)>>::from_request(request, state)
                    .await
                    .map_err(|e| RestError::invalid(&["body"], e.body_text()))?;
                pairs
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect()
            }
            other => {
                return Err(RestError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!("Unsupported Media Type {other:?}: send {JSON} or {FORM}"),
                ))
            }
        };
        let (mut username, mut password) = (None, None);
        for (name, value) in fields {
            let slot = match name.as_str() {
                "username" => &mut username,
                "password" => &mut password,
                _ => {
                    return Err(RestError::invalid(
                        &["body", &name],
                        "Extra inputs are not permitted",
                    ))
                }
            };
            match value {
                Value::String(text) => *slot = Some(text),
                _ => {
                    return Err(RestError::invalid(
                        &["body", &name],
                        "Input should be a valid string",
                    ))
                }
            }
        }
        let username =
            username.ok_or_else(|| RestError::invalid(&["body", "username"], "Field required"))?;
        let password =
            password.ok_or_else(|| RestError::invalid(&["body", "password"], "Field required"))?;
        Ok(LoginBody { username, password })
    }
}

type Client = Option<Extension<ConnectInfo<SocketAddr>>>;

fn address(state: &RestState, client: Client, headers: &HeaderMap) -> Option<std::net::IpAddr> {
    let peer = client.map(|Extension(ConnectInfo(address))| address.ip());
    login::client_address(peer, headers, &state.config().trusted_proxies)
}

/// Authenticate the user: a token to send as `Authorization: Bearer <token>`.
#[utoipa::path(post, path = "/auth/token", operation_id = "create_token",
    tag = "SimpleAuthManagerLogin", security(()),
    request_body(content((LoginBody = "application/json"), (LoginBody = "application/x-www-form-urlencoded"))),
    responses(
        (status = 201, body = LoginResponse),
        (status = 401, body = crate::error::ErrorBody, description = "Invalid credentials"),
        (status = 415, body = crate::error::ErrorBody, description = "Unsupported Media Type"),
        (status = 422, body = crate::error::ErrorBody, description = "Validation Error"),
        (status = 429, body = crate::error::ErrorBody, description = "Too many failed logins"),
    ))]
async fn create_token(
    State(state): State<RestState>,
    client: Client,
    headers: HeaderMap,
    body: LoginBody,
) -> Result<(StatusCode, Json<LoginResponse>), LoginRefused> {
    let client = address(&state, client, &headers);
    let (user, role) = login::check(&state, body.into(), client).await?;
    let (token, _) = state
        .issue_token(&user.username, role)
        .map_err(|e| RestError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok((
        StatusCode::CREATED,
        Json(LoginResponse {
            access_token: token,
        }),
    ))
}

/// Log the UI in: sets the `_token` cookie (HttpOnly) and the `_csrf` cookie, whose value
/// the UI must send in `X-CSRF-Token` on every state-changing request.
#[utoipa::path(post, path = "/auth/login", operation_id = "login",
    tag = "Login", security(()),
    request_body(content((LoginBody = "application/json"), (LoginBody = "application/x-www-form-urlencoded"))),
    responses(
        (status = 204, description = "Logged in: the cookies are set"),
        (status = 401, body = crate::error::ErrorBody, description = "Invalid credentials"),
        (status = 415, body = crate::error::ErrorBody, description = "Unsupported Media Type"),
        (status = 422, body = crate::error::ErrorBody, description = "Validation Error"),
        (status = 429, body = crate::error::ErrorBody, description = "Too many failed logins"),
    ))]
async fn login(
    State(state): State<RestState>,
    jar: CookieJar,
    client: Client,
    headers: HeaderMap,
    body: LoginBody,
) -> Result<(CookieJar, StatusCode), LoginRefused> {
    let client = address(&state, client, &headers);
    let (user, role) = login::check(&state, body.into(), client).await?;
    let (token, _) = state
        .issue_token(&user.username, role)
        .map_err(|e| RestError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    // Session cookies: the token's own expiry ends the login.
    let config = state.config();
    let token_cookie = Cookie::build((TOKEN_COOKIE, token))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(config.secure_cookies);
    // Readable by the UI's JavaScript, which echoes it: a page of another site can neither
    // read it nor set the header, so a forged request fails the check.
    let csrf_cookie = Cookie::build((CSRF_COOKIE, random_token()))
        .path("/")
        .http_only(false)
        .same_site(SameSite::Lax)
        .secure(config.secure_cookies);
    Ok((
        jar.add(token_cookie).add(csrf_cookie),
        StatusCode::NO_CONTENT,
    ))
}

/// 32 random bytes, URL-safe base64.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Log out: revokes the token presented (on every api-server, until it would have expired)
/// and clears the UI's cookies.
#[utoipa::path(get, path = "/auth/logout", operation_id = "logout", tag = "Login",
    responses(
        (status = 204, description = "The token is revoked"),
        (status = 401, body = crate::error::ErrorBody),
    ))]
async fn logout(
    State(state): State<RestState>,
    Extension(principal): Extension<Principal>,
    jar: CookieJar,
) -> Result<(CookieJar, StatusCode), RestError> {
    revoke(&state, &principal).await?;
    Ok((clear_cookies(jar), StatusCode::NO_CONTENT))
}

/// Log out (as `GET /auth/logout`); with the cookie, this needs the CSRF header.
#[utoipa::path(post, path = "/auth/logout", operation_id = "logout_post", tag = "Login",
    responses(
        (status = 204, description = "The token is revoked"),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody, description = "CSRF check failed"),
    ))]
async fn logout_post(
    state: State<RestState>,
    principal: Extension<Principal>,
    jar: CookieJar,
) -> Result<(CookieJar, StatusCode), RestError> {
    logout(state, principal, jar).await
}

async fn revoke(state: &RestState, principal: &Principal) -> Result<(), RestError> {
    let now = Utc::now();
    let expires_at = DateTime::from_timestamp(principal.expires_at, 0).unwrap_or(now);
    state
        .store()
        .revoke_token(&principal.token_id, expires_at, now)
        .await?;
    state.auth().cache.forget_token(&principal.token_id);
    tracing::info!(username = %principal.username, "logged out");
    Ok(())
}

fn clear_cookies(jar: CookieJar) -> CookieJar {
    jar.remove(Cookie::build(TOKEN_COOKIE).path("/"))
        .remove(Cookie::build(CSRF_COOKIE).path("/"))
}
