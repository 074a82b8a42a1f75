//! The UI's login cookies: what `POST /auth/login` sets, what logging out clears, and the
//! check of the `_token` cookie that the web UI's pages use — the same checks as the API's
//! (signature, expiry, revocation, an active user, the user's current role).

use axum_extra::extract::cookie::{Cookie, SameSite};
use axum_extra::extract::CookieJar;
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;

use super::{Principal, CSRF_COOKIE, TOKEN_COOKIE};
use crate::{RestError, RestState};

/// Adds the cookies of a login with `token`: the token (HttpOnly) and a fresh CSRF token the
/// UI's JavaScript echoes in `X-CSRF-Token`.
pub fn add_login_cookies(state: &RestState, jar: CookieJar, token: String) -> CookieJar {
    let secure = state.config().secure_cookies;
    // Session cookies: the token's own expiry ends the login.
    let token_cookie = Cookie::build((TOKEN_COOKIE, token))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure);
    // Readable by the UI's JavaScript, which echoes it: a page of another site can neither
    // read it nor set the header, so a forged request fails the check.
    let csrf_cookie = Cookie::build((CSRF_COOKIE, random_token()))
        .path("/")
        .http_only(false)
        .same_site(SameSite::Lax)
        .secure(secure);
    jar.add(token_cookie).add(csrf_cookie)
}

/// The cookie that ties the sign-in form to the browser that loaded it.
pub const LOGIN_FORM_COOKIE: &str = "_login_form";

/// The token the sign-in form carries, and the jar that holds it as a cookie: the one the
/// browser already has, or a fresh one. A sign-in posted by another site lacks the cookie's
/// value (it can neither read the cookie nor the form), so the UI refuses it, and cannot log
/// a victim's browser into the attacker's account.
pub fn login_form_token(state: &RestState, jar: CookieJar) -> (CookieJar, String) {
    if let Some(existing) = jar.get(LOGIN_FORM_COOKIE) {
        let token = existing.value().to_string();
        if !token.is_empty() {
            return (jar, token);
        }
    }
    let token = random_token();
    let cookie = Cookie::build((LOGIN_FORM_COOKIE, token.clone()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.config().secure_cookies);
    (jar.add(cookie), token)
}

/// Whether `submitted` is the sign-in form token of this browser.
pub fn login_form_token_matches(jar: &CookieJar, submitted: &str) -> bool {
    !submitted.is_empty()
        && jar
            .get(LOGIN_FORM_COOKIE)
            .is_some_and(|c| c.value() == submitted)
}

/// Removes the login cookies.
pub fn clear_login_cookies(jar: CookieJar) -> CookieJar {
    jar.remove(Cookie::build(TOKEN_COOKIE).path("/"))
        .remove(Cookie::build(CSRF_COOKIE).path("/"))
}

/// The principal of the `_token` cookie of `jar`, checked as the API checks every token:
/// signature, expiry, revocation, and a user that still exists and is active (with its
/// current role). `None` when there is no such cookie.
pub async fn cookie_principal(
    state: &RestState,
    jar: &CookieJar,
) -> Option<Result<Principal, RestError>> {
    let token = jar.get(TOKEN_COOKIE)?.value().to_string();
    Some(super::middleware::verify_token(state, &token).await)
}

/// Revokes the token of `principal` (on every api-server, until it would have expired).
pub async fn revoke(state: &RestState, principal: &Principal) -> Result<(), RestError> {
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

/// 32 random bytes, URL-safe base64.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
