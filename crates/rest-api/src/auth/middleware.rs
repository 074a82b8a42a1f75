//! The access decision of every request: find the operation's [`Access`], authenticate the
//! token (bearer header, or the UI's cookie with its CSRF check), load the user and ask
//! [`allows`].

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::RequestExt;
use axum_extra::extract::CookieJar;

use super::{allows, Access, Principal};
use crate::{RestError, RestState};

/// The UI's cookie holding the token, as Airflow names it.
pub const TOKEN_COOKIE: &str = "_token";
/// The cookie the UI echoes in [`CSRF_HEADER`] on state-changing requests (double submit).
pub const CSRF_COOKIE: &str = "_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Each route's operation and the access it needs, keyed by method and path template.
#[derive(Default)]
pub(crate) struct OperationAccess {
    pub routes: HashMap<(Method, String), (&'static str, Access)>,
}

/// Middleware on every route of the REST API.
pub(crate) async fn authorize(
    State((state, table)): State<(RestState, Arc<OperationAccess>)>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(path) = request.extensions().get::<MatchedPath>().cloned() else {
        return RestError::not_found("no such route").into_response();
    };
    let key = (request.method().clone(), path.as_str().to_string());
    let access = match table.routes.get(&key) {
        Some((_, access)) => *access,
        // HEAD is answered by the GET handler.
        None if request.method() == Method::HEAD => {
            match table.routes.get(&(Method::GET, key.1.clone())) {
                Some((_, access)) => *access,
                None => {
                    return RestError::forbidden("no permission is defined for this route")
                        .into_response()
                }
            }
        }
        None => {
            return RestError::forbidden("no permission is defined for this route").into_response()
        }
    };
    if access == Access::Public {
        return next.run(request).await;
    }
    let principal = match authenticate(&state, request.method(), request.headers()).await {
        Ok(principal) => principal,
        Err(e) => return e.into_response(),
    };
    if let Access::Require(action, resource) = access {
        let dag_id = dag_id_of(&mut request).await;
        if !allows(principal.role, action, resource, dag_id.as_deref()) {
            return RestError::forbidden(format!(
                "user {} ({}) may not {action:?} {resource:?}",
                principal.username,
                principal.role.as_str()
            ))
            .into_response();
        }
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// The principal of a request's token, if it is valid, not revoked, and its user exists and
/// is active. The role is the user's current one, not the one in the token.
pub(crate) async fn authenticate(
    state: &RestState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Principal, RestError> {
    let (token, from_cookie) = match bearer(headers) {
        Some(token) => (token, false),
        None => match CookieJar::from_headers(headers).get(TOKEN_COOKIE) {
            Some(cookie) => (cookie.value().to_string(), true),
            None => return Err(unauthorized("not authenticated: send 'Authorization: Bearer <token>' (POST /auth/token gives one)")),
        },
    };
    if from_cookie && !is_safe(method) && !csrf_matches(headers) {
        return Err(RestError::forbidden(
            "CSRF check failed: send the _csrf cookie's value in the X-CSRF-Token header",
        ));
    }
    verify_token(state, &token).await
}

/// The principal of a token: a valid signature, not expired, not revoked, and a user that
/// exists and is active. The role is the user's current one, not the one in the token.
pub(crate) async fn verify_token(state: &RestState, token: &str) -> Result<Principal, RestError> {
    let auth = state.auth();
    let mut principal = auth
        .tokens
        .verify(token)
        .map_err(|e| unauthorized(&e.to_string()))?;
    if let Some(role) = auth.cache.get(&principal.token_id, &principal.username) {
        principal.role = role;
        return Ok(principal);
    }
    let seen = auth.cache.generation();
    if auth.store.is_token_revoked(&principal.token_id).await? {
        return Err(unauthorized("the token has been revoked"));
    }
    let user = auth
        .store
        .get_user(&principal.username)
        .await?
        .filter(|u| u.active)
        .ok_or_else(|| unauthorized("the token's user no longer exists or is inactive"))?;
    principal.role = super::Role::parse(&user.role).ok_or_else(|| {
        RestError::forbidden(format!(
            "user {} has an unknown role {:?}",
            user.username, user.role
        ))
    })?;
    if let Some(seen) = seen {
        auth.cache.put(
            &principal.token_id,
            &principal.username,
            principal.role,
            seen,
        );
    }
    Ok(principal)
}

fn unauthorized(detail: &str) -> RestError {
    RestError::unauthorized(detail)
}

/// Adds `WWW-Authenticate` to 401 answers, as HTTP asks.
pub(crate) async fn with_challenge(mut response: Response) -> Response {
    if response.status() == axum::http::StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn csrf_matches(headers: &HeaderMap) -> bool {
    let cookie = CookieJar::from_headers(headers)
        .get(CSRF_COOKIE)
        .map(|c| c.value().to_string());
    let header = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    matches!((cookie, header), (Some(c), Some(h)) if !c.is_empty() && c == h)
}

async fn dag_id_of(request: &mut Request) -> Option<String> {
    let params: RawPathParams = request.extract_parts().await.ok()?;
    params
        .iter()
        .find(|(name, _)| *name == "dag_id")
        .map(|(_, value)| value.to_string())
        .filter(|dag_id| dag_id != "~")
}
