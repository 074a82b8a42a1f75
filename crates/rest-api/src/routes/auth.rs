//! Logging in and out: `POST /auth/token` answers a bearer token as Airflow's simple auth
//! manager does; `POST /auth/login` sets the UI's cookies (the token, HttpOnly, and a CSRF
//! token the UI echoes in `X-CSRF-Token`); `GET|POST /auth/logout` revokes the token.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::{Extension, Form, Json};
use axum_extra::extract::CookieJar;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::login::{self, Credentials, LoginRefused};
use crate::auth::{cookies, Access, Principal};
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
    Ok((
        cookies::add_login_cookies(&state, jar, token),
        StatusCode::NO_CONTENT,
    ))
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
    cookies::revoke(&state, &principal).await?;
    Ok((cookies::clear_login_cookies(jar), StatusCode::NO_CONTENT))
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
