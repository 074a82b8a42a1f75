//! Logging in and out: tokens from JSON and form bodies, the one answer to wrong
//! credentials, the failed-login limits, revocation shared through the database, the UI's
//! cookie with its CSRF check, CORS, and tokens whose user or role changed.

use std::sync::Arc;

use chrono::Utc;
use reqwest::header::{HeaderMap, COOKIE, ORIGIN, RETRY_AFTER, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use updraft_rest_api::auth::login::{MAX_FAILURES_PER_ADDRESS, MAX_FAILURES_PER_USER};
use updraft_rest_api::auth::{allows, Access, Claims, Role};
use updraft_rest_api::openapi::{access_of, openapi_document, operations};
use updraft_rest_api::{router, RestConfig, RestState};
use updraft_store::Store;
use updraft_store_sqlite::SqliteStore;

use crate::fixture::{Server, JWT_SECRET, PASSWORD};

const VERSION: &str = "/api/v2/version";

/// `POST /auth/token` with a JSON body: status and body.
async fn token_json(server: &Server, body: Value) -> (StatusCode, HeaderMap, Value) {
    let response = server
        .client
        .post(format!("{}/auth/token", server.url))
        .json(&body)
        .send()
        .await
        .expect("request");
    let (status, headers) = (response.status(), response.headers().clone());
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

async fn login(server: &Server, user: &str, password: &str) -> (StatusCode, HeaderMap, Value) {
    token_json(server, json!({"username": user, "password": password})).await
}

/// A request with `token` as the bearer token.
async fn with_token(url: &str, method: Method, path: &str, token: &str) -> StatusCode {
    reqwest::Client::new()
        .request(method, format!("{url}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .status()
}

#[tokio::test]
async fn a_json_login_answers_a_token_that_works_and_records_the_login() {
    let server = Server::start().await;
    let before = server.store.get_user("op").await.unwrap().unwrap();
    assert_eq!(before.last_login, None);

    let (status, _, body) = login(&server, "op", PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = body["access_token"].as_str().expect("access_token");
    assert_eq!(
        body.as_object().unwrap().len(),
        1,
        "only access_token: {body}"
    );
    assert_eq!(
        with_token(&server.url, Method::GET, VERSION, token).await,
        StatusCode::OK
    );
    let after = server.store.get_user("op").await.unwrap().unwrap();
    assert!(after.last_login.is_some(), "last_login recorded");
}

#[tokio::test]
async fn a_form_login_answers_a_token_too() {
    let server = Server::start().await;
    let response = server
        .client
        .post(format!("{}/auth/token", server.url))
        .form(&[("username", "viewer"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().expect("access_token");
    assert_eq!(
        with_token(&server.url, Method::GET, VERSION, token).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let server = Server::start().await;
    let (wrong_password, headers, body_a) = login(&server, "admin", "not it").await;
    let (unknown_user, _, body_b) = login(&server, "nobody", PASSWORD).await;
    assert_eq!(wrong_password, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_user, StatusCode::UNAUTHORIZED);
    assert_eq!(body_a, body_b, "the answer must not tell which was wrong");
    assert_eq!(body_a["detail"], "Invalid credentials");
    assert_eq!(headers["www-authenticate"], "Bearer");
    // An inactive user is refused the same way, with the right password.
    let mut user = server.store.get_user("user").await.unwrap().unwrap();
    user.active = false;
    server.store.update_user(user).await.unwrap();
    let (status, _, body) = login(&server, "user", PASSWORD).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, body_a));
    // No login was recorded for the refused attempts.
    let admin = server.store.get_user("admin").await.unwrap().unwrap();
    assert_eq!(admin.last_login, None);
}

#[tokio::test]
async fn malformed_login_bodies_name_the_field_or_the_media_type() {
    let server = Server::start().await;
    let (status, _, body) = token_json(&server, json!({"username": "admin"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "password"]));
    let (status, _, body) = token_json(
        &server,
        json!({"username": "admin", "password": PASSWORD, "role": "Admin"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "role"]));
    let (status, _, body) = token_json(&server, json!({"username": 7, "password": "x"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "username"]));
    let response = server
        .client
        .post(format!("{}/auth/token", server.url))
        .header("content-type", "text/plain")
        .body("admin:secret")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // None of these counted as a failed login.
    let since = Utc::now() - chrono::Duration::hours(1);
    assert_eq!(
        server
            .store
            .login_failures("user:admin", since)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn failed_logins_lock_the_user_at_that_address_even_for_the_right_password_until_cleared() {
    let server = Server::start().await;
    for _ in 0..MAX_FAILURES_PER_USER {
        let (status, _, _) = login(&server, "viewer", "guess").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, headers, body) = login(&server, "viewer", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let retry_after: u64 = headers[RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 0);
    assert!(body["detail"].is_string());
    // Another user is not locked by it.
    let (status, _, _) = login(&server, "op", PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED);

    server
        .store
        .clear_login_failures("user:viewer@127.0.0.1")
        .await
        .unwrap();
    let (status, _, _) = login(&server, "viewer", PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED);
}

async fn login_from(server: &Server, client: &str, user: &str, password: &str) -> StatusCode {
    server
        .client
        .post(format!("{}/auth/token", server.url))
        .header("x-forwarded-for", client)
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .expect("request")
        .status()
}

#[tokio::test]
async fn behind_a_trusted_proxy_guesses_from_one_client_do_not_lock_the_user_out_elsewhere() {
    let server = Server::start_with(|config| {
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    for _ in 0..MAX_FAILURES_PER_USER {
        let status = login_from(&server, "203.0.113.66", "viewer", "guess").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        login_from(&server, "203.0.113.66", "viewer", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The user, from their own address, still gets in.
    assert_eq!(
        login_from(&server, "198.51.100.7", "viewer", PASSWORD).await,
        StatusCode::CREATED
    );
    // The failures were counted against the client, not the proxy.
    let since = Utc::now() - chrono::Duration::hours(1);
    let failures = |key: &'static str| {
        let store = server.store.clone();
        async move { store.login_failures(key, since).await.unwrap() }
    };
    assert_eq!(failures("addr:203.0.113.66").await, MAX_FAILURES_PER_USER);
    assert_eq!(failures("addr:127.0.0.1").await, 0);
}

#[tokio::test]
async fn without_trusted_proxies_forwarded_for_is_ignored() {
    let server = Server::start().await;
    for i in 0..MAX_FAILURES_PER_USER {
        let status = login_from(&server, &format!("203.0.113.{i}"), "viewer", "guess").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        login_from(&server, "198.51.100.7", "viewer", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn failed_logins_from_one_address_lock_it_for_every_user() {
    let server = Server::start().await;
    // Spread over many usernames so that no user reaches its own limit.
    for i in 0..MAX_FAILURES_PER_ADDRESS {
        let (status, _, _) = login(&server, &format!("someone-{i}"), "guess").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, headers, _) = login(&server, "admin", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key(RETRY_AFTER));
    server
        .store
        .clear_login_failures("addr:127.0.0.1")
        .await
        .unwrap();
    let (status, _, _) = login(&server, "admin", PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED);
}

/// A second server of the API on the first one's database file, as another api-server of a
/// cluster would be. It reads who a token acts as on every request: with its cache (a few
/// seconds), a logout elsewhere takes effect within the cache's lifetime instead.
async fn second_server(first: &Server) -> (String, tokio::task::JoinHandle<()>) {
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&first.dir.path().join("updraft.db")).expect("open"));
    let config = RestConfig {
        auth_cache_ttl: std::time::Duration::ZERO,
        ..RestConfig::new(JWT_SECRET)
    };
    let state = RestState::new(store, config, Arc::new(|| {})).unwrap();
    let app = router(state).expect("router");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let serving = tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let _ = axum::serve(listener, app).await;
    });
    (url, serving)
}

#[tokio::test]
async fn logout_revokes_the_token_on_every_server() {
    let server = Server::start().await;
    let (second, serving) = second_server(&server).await;
    let (_, _, body) = login(&server, "user", PASSWORD).await;
    let token = body["access_token"].as_str().unwrap().to_string();
    let (_, _, body) = login(&server, "user", PASSWORD).await;
    let other_token = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        with_token(&second, Method::GET, VERSION, &token).await,
        StatusCode::OK
    );

    assert_eq!(
        with_token(&server.url, Method::POST, "/auth/logout", &token).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        with_token(&server.url, Method::GET, VERSION, &token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        with_token(&second, Method::GET, VERSION, &token).await,
        StatusCode::UNAUTHORIZED,
        "revoked on the other server too"
    );
    // Only that token: the user's other login still works, and GET logs out as well.
    assert_eq!(
        with_token(&second, Method::GET, VERSION, &other_token).await,
        StatusCode::OK
    );
    assert_eq!(
        with_token(&second, Method::GET, "/auth/logout", &other_token).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        with_token(&server.url, Method::GET, VERSION, &other_token).await,
        StatusCode::UNAUTHORIZED
    );
    serving.abort();
}

/// The `name=value` part of each `Set-Cookie`, and the whole header, by cookie name.
fn set_cookies(headers: &HeaderMap) -> Vec<(String, String, String)> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| {
            let text = v.to_str().unwrap().to_string();
            let pair = text.split(';').next().unwrap().to_string();
            let (name, value) = pair.split_once('=').unwrap();
            (name.to_string(), value.to_string(), text)
        })
        .collect()
}

async fn cookie_login(server: &Server) -> (String, String, Vec<String>) {
    let response = server
        .client
        .post(format!("{}/auth/login", server.url))
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cookies = set_cookies(response.headers());
    let find = |name: &str| {
        cookies
            .iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("cookie {name} in {cookies:?}"))
            .clone()
    };
    let (_, token, token_header) = find("_token");
    let (_, csrf, csrf_header) = find("_csrf");
    (token, csrf, vec![token_header, csrf_header])
}

#[tokio::test]
async fn the_cookie_login_needs_the_csrf_header_on_state_changing_requests() {
    let server = Server::start().await;
    let (token, csrf, headers) = cookie_login(&server).await;
    let token_header = headers[0].to_ascii_lowercase();
    assert!(token_header.contains("httponly"), "{token_header}");
    assert!(token_header.contains("samesite=lax"), "{token_header}");
    assert!(token_header.contains("path=/"), "{token_header}");
    assert!(
        !token_header.contains("secure"),
        "plain HTTP by default: {token_header}"
    );
    let csrf_header = headers[1].to_ascii_lowercase();
    assert!(!csrf_header.contains("httponly"), "{csrf_header}");
    assert!(csrf.len() >= 32, "a random CSRF token: {csrf}");
    let (_, other_csrf, _) = cookie_login(&server).await;
    assert_ne!(csrf, other_csrf);

    let cookie = format!("_token={token}; _csrf={csrf}");
    let client = &server.client;
    // Reading needs no CSRF header.
    let status = client
        .get(format!("{}{VERSION}", server.url))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    // A state-changing request without the header, or with another value, is refused and
    // changes nothing: the token still works.
    for header in [None, Some("forged")] {
        let mut request = client
            .post(format!("{}/auth/logout", server.url))
            .header(COOKIE, &cookie);
        if let Some(value) = header {
            request = request.header("x-csrf-token", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let body: Value = response.json().await.unwrap();
        assert!(body["detail"].as_str().unwrap().contains("CSRF"), "{body}");
    }
    assert_eq!(
        with_token(&server.url, Method::GET, VERSION, &token).await,
        StatusCode::OK
    );
    // With the header it passes: the logout revokes the token and clears the cookies.
    let response = client
        .post(format!("{}/auth/logout", server.url))
        .header(COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cleared = set_cookies(response.headers());
    for name in ["_token", "_csrf"] {
        let (_, value, _) = cleared
            .iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("{name} cleared in {cleared:?}"));
        assert_eq!(value, "");
    }
    let status = client
        .get(format!("{}{VERSION}", server.url))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn cookies_are_secure_when_configured() {
    let server = Server::start_with(|c| c.secure_cookies = true).await;
    let (_, _, headers) = cookie_login(&server).await;
    for header in headers {
        assert!(header.to_ascii_lowercase().contains("secure"), "{header}");
    }
}

async fn preflight(server: &Server, origin: &str) -> HeaderMap {
    server
        .client
        .request(Method::OPTIONS, format!("{}{VERSION}", server.url))
        .header(ORIGIN, origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap()
        .headers()
        .clone()
}

#[tokio::test]
async fn cors_headers_are_sent_only_when_origins_are_configured() {
    let origin = "https://ui.example.com";
    let off = Server::start().await;
    let headers = preflight(&off, origin).await;
    assert!(!headers.contains_key("access-control-allow-origin"));
    let response = off
        .client
        .get(format!("{}{VERSION}", off.url))
        .bearer_auth(off.token(Role::Viewer))
        .header(ORIGIN, origin)
        .send()
        .await
        .unwrap();
    assert!(!response
        .headers()
        .contains_key("access-control-allow-origin"));

    let on = Server::start_with(|c| c.allow_origins = vec![origin.to_string()]).await;
    let headers = preflight(&on, origin).await;
    assert_eq!(headers["access-control-allow-origin"], origin);
    assert_eq!(headers["access-control-allow-credentials"], "true");
    let methods = headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        methods.contains("PATCH") && methods.contains("DELETE"),
        "{methods}"
    );
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("x-csrf-token"),
        "{allowed}"
    );
    let response = on
        .client
        .get(format!("{}{VERSION}", on.url))
        .bearer_auth(on.token(Role::Viewer))
        .header(ORIGIN, origin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["access-control-allow-origin"], origin);
    // Another origin gets nothing.
    let headers = preflight(&on, "https://evil.example.com").await;
    assert!(!headers.contains_key("access-control-allow-origin"));
}

#[test]
fn an_invalid_origin_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("u.db")).unwrap());
    let mut config = RestConfig::new(JWT_SECRET);
    config.allow_origins = vec!["not an origin".into()];
    let state = RestState::new(store, config, Arc::new(|| {})).unwrap();
    let err = router(state).expect_err("refused");
    assert!(err.to_string().contains("not an origin"), "{err}");
}

fn sign(claims: &Claims, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn claims(user: &str, role: Role, expires_in: i64) -> Claims {
    let now = Utc::now().timestamp();
    Claims {
        sub: user.into(),
        role,
        jti: uuid::Uuid::new_v4().to_string(),
        iat: now - 3600,
        exp: now + expires_in,
        iss: "updraft".into(),
    }
}

#[tokio::test]
async fn expired_and_foreign_tokens_are_unauthorized() {
    let server = Server::start().await;
    let valid = sign(&claims("admin", Role::Admin, 600), JWT_SECRET);
    assert_eq!(
        with_token(&server.url, Method::GET, VERSION, &valid).await,
        StatusCode::OK,
        "the hand-made token is otherwise right"
    );
    let expired = sign(&claims("admin", Role::Admin, -10), JWT_SECRET);
    let response = server
        .client
        .get(format!("{}{VERSION}", server.url))
        .bearer_auth(&expired)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    let foreign = sign(
        &claims("admin", Role::Admin, 600),
        "another-secret-another-secret-another",
    );
    assert_eq!(
        with_token(&server.url, Method::GET, VERSION, &foreign).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_deleted_users_token_is_unauthorized() {
    let server = Server::start().await;
    let token = server.token(Role::Op).to_string();
    assert_eq!(
        with_token(&server.url, Method::GET, VERSION, &token).await,
        StatusCode::OK
    );
    assert!(server.store.delete_user("op").await.unwrap());
    assert_eq!(
        with_token(&server.url, Method::GET, VERSION, &token).await,
        StatusCode::UNAUTHORIZED
    );
}

/// A GET operation Admin may call and Viewer may not, if the router has one.
fn admin_only_read() -> Option<String> {
    operations(&openapi_document())
        .into_iter()
        .find(|(method, path, id)| {
            *method == Method::GET
                && !path.contains('{')
                && matches!(access_of(id), Some(Access::Require(action, resource))
                    if allows(Role::Admin, action, resource, None)
                        && !allows(Role::Viewer, action, resource, None))
        })
        .map(|(_, path, _)| path)
}

#[tokio::test]
async fn a_role_changed_in_the_database_takes_effect_at_once() {
    // The configuration is exposed, so that reading it is refused only for the role.
    let server = Server::start_with(|c| c.expose_config = true).await;
    let token = server.token(Role::Admin).to_string();
    let set_role = |role: &'static str| {
        let store = server.store.clone();
        async move {
            let mut user = store.get_user("admin").await.unwrap().unwrap();
            user.role = role.into();
            store.update_user(user).await.unwrap();
        }
    };
    if let Some(path) = admin_only_read() {
        assert_ne!(
            with_token(&server.url, Method::GET, &path, &token).await,
            StatusCode::FORBIDDEN
        );
        set_role("Viewer").await;
        assert_eq!(
            with_token(&server.url, Method::GET, &path, &token).await,
            StatusCode::FORBIDDEN,
            "{path} after demotion"
        );
    }
    // A role the server does not know grants nothing, not even reading.
    set_role("Superuser").await;
    assert_eq!(
        with_token(&server.url, Method::GET, VERSION, &token).await,
        StatusCode::FORBIDDEN
    );
    set_role("Admin").await;
    assert_eq!(
        with_token(&server.url, Method::GET, VERSION, &token).await,
        StatusCode::OK
    );
}
