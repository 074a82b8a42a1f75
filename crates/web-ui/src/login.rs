//! `/login` and `/logout` as pages: a form that works without JavaScript, checked by the
//! REST API's own login (the failed-login limits, the password check, the record of the
//! login) and answered with the same cookies as `POST /auth/login`.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use updraft_rest_api::auth::login::{self, Credentials, LoginRefused};
use updraft_rest_api::auth::{cookies, CSRF_COOKIE};
use updraft_rest_api::RestState;

use crate::assets::Asset;
use crate::query::QueryParams;
use crate::session::Session;
use crate::{links, UiError};

#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
    /// The form's token (see [`cookies::login_form_token`]).
    #[serde(default)]
    form_token: String,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    css: String,
    icon: String,
    next: String,
    username: String,
    error: Option<String>,
    form_token: String,
}

impl LoginPage {
    fn new(next: String, username: String, error: Option<String>, form_token: String) -> Self {
        LoginPage {
            css: Asset::Css.url(),
            icon: Asset::Icon.url(),
            next,
            username,
            error,
            form_token,
        }
    }
}

/// Where to go after logging in: `next` if it is a path of this site, else Home.
fn destination(next: Option<&str>) -> String {
    next.filter(|n| links::is_local(n))
        .unwrap_or("/")
        .to_string()
}

/// `GET /login`: the form (or, when already signed in, straight on).
pub async fn form(
    State(state): State<RestState>,
    jar: CookieJar,
    QueryParams(query): QueryParams<NextQuery>,
) -> Result<Response, UiError> {
    let next = destination(query.next.as_deref());
    if let Some(Ok(_)) = cookies::cookie_principal(&state, &jar).await {
        return Ok(Redirect::to(&next).into_response());
    }
    let (jar, form_token) = cookies::login_form_token(&state, jar);
    let page = LoginPage::new(next, String::new(), None, form_token);
    Ok((jar, Html(page.render()?)).into_response())
}

/// `POST /login`: checks the credentials; on success sets the cookies and goes on to `next`.
pub async fn submit(
    State(state): State<RestState>,
    jar: CookieJar,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, UiError> {
    let next = destination(form.next.as_deref());
    let peer = client.map(|Extension(ConnectInfo(address))| address.ip());
    let client = login::client_address(peer, &headers, &state.config().trusted_proxies);
    let username = form.username.clone();
    let credentials = Credentials {
        username: form.username,
        password: form.password,
    };
    let forged = !cookies::login_form_token_matches(&jar, &form.form_token);
    let (jar, form_token) = cookies::login_form_token(&state, jar);
    let refused = |status: StatusCode, message: &str| -> Result<Response, UiError> {
        let page = LoginPage::new(
            next.clone(),
            username.clone(),
            Some(message.to_string()),
            form_token.clone(),
        );
        Ok((status, jar.clone(), Html(page.render()?)).into_response())
    };
    if forged {
        return refused(
            StatusCode::FORBIDDEN,
            "This sign-in did not come from this site's form (or the form is too old): sign in again.",
        );
    }
    match login::check(&state, credentials, client).await {
        Ok((user, role)) => {
            let (token, _) = state
                .issue_token(&user.username, role)
                .map_err(|e| UiError::BadRequest(e.to_string()))?;
            let jar = cookies::add_login_cookies(&state, jar, token);
            Ok((jar, Redirect::to(&next)).into_response())
        }
        Err(LoginRefused::Locked { .. }) => refused(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed logins; try again later.",
        ),
        Err(LoginRefused::Error(e)) if e.status == StatusCode::UNAUTHORIZED => {
            refused(StatusCode::UNAUTHORIZED, login::INVALID_CREDENTIALS)
        }
        Err(LoginRefused::Error(e)) => Ok(e.into_response()),
    }
}

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage {
    page: crate::layout::Page,
}

/// `GET /logout`: a button that posts the logout (a link must not log anyone out: another
/// site could make the browser follow it).
pub async fn confirm_logout(session: Session) -> Result<Html<String>, UiError> {
    let page = LogoutPage {
        page: crate::layout::Page::new(&session, ""),
    };
    Ok(Html(page.render()?))
}

#[derive(Debug, Default, Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`: revokes the token (with the CSRF token of the form) and clears the cookies.
pub async fn logout(
    State(state): State<RestState>,
    jar: CookieJar,
    session: Session,
    Form(form): Form<LogoutForm>,
) -> Result<Response, UiError> {
    let expected = jar.get(CSRF_COOKIE).map(|c| c.value().to_string());
    if form.csrf.is_empty() || expected.as_deref() != Some(form.csrf.as_str()) {
        return Err(UiError::Forbidden(
            "the form's CSRF token does not match: reload the page and log out again".into(),
        ));
    }
    if let Err(e) = cookies::revoke(&state, &session.principal).await {
        return Ok(e.into_response());
    }
    Ok((cookies::clear_login_cookies(jar), Redirect::to("/login")).into_response())
}
