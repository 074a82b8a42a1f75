//! The signed-in user of a page: the `_token` cookie that `POST /auth/login` (or the login
//! form) set, checked exactly as the REST API checks a token — signature, expiry,
//! revocation, an active user — with the user's current role.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use updraft_rest_api::auth::{self, cookies, Action, Principal, Resource, Role, CSRF_COOKIE};
use updraft_rest_api::RestState;

use crate::links;

/// The user a page is rendered for. Extracting it from a request without a valid session
/// answers a redirect to `/login?next=<this page>` (or a 401 for a fragment or an event
/// stream, which a script asked for and cannot follow to a form).
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    /// The `_csrf` cookie's value, which scripts send back in `X-CSRF-Token`.
    pub csrf: String,
}

impl Session {
    pub fn username(&self) -> &str {
        &self.principal.username
    }

    pub fn role(&self) -> Role {
        self.principal.role
    }

    /// Whether the user may do `action` on `resource` (of `dag_id`): what the API will
    /// allow, so the page offers only that.
    pub fn allows(&self, action: Action, resource: Resource, dag_id: Option<&str>) -> bool {
        auth::allows(self.principal.role, action, resource, dag_id)
    }

    /// Fails with a 403 page unless the user may do `action` on `resource`.
    pub fn require(&self, action: Action, resource: Resource) -> Result<(), crate::UiError> {
        if self.allows(action, resource, None) {
            Ok(())
        } else {
            Err(crate::UiError::Forbidden(format!(
                "{} ({}) may not see this page",
                self.principal.username,
                self.principal.role.as_str()
            )))
        }
    }
}

impl FromRequestParts<RestState> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &RestState,
    ) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(&parts.headers);
        match cookies::cookie_principal(state, &jar).await {
            Some(Ok(principal)) => Ok(Session {
                principal,
                csrf: jar
                    .get(CSRF_COOKIE)
                    .map(|c| c.value().to_string())
                    .unwrap_or_default(),
            }),
            Some(Err(e)) if e.status.is_server_error() => Err(e.into_response()),
            _ => Err(to_login(parts)),
        }
    }
}

/// The answer to a request without a session.
fn to_login(parts: &Parts) -> Response {
    let wants_fragment = parts
        .uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("fragment=")))
        || parts.uri.path() == "/ui/events";
    if wants_fragment {
        return (StatusCode::UNAUTHORIZED, "not signed in").into_response();
    }
    let here = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let target = if here == "/" {
        "/login".to_string()
    } else {
        format!("/login?next={}", links::encode(here))
    };
    let mut response = Redirect::to(&target).into_response();
    response
        .headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    response
}
