//! `/api/v2/config`: refused unless exposed; secrets hidden when exposed.

use reqwest::StatusCode;
use serde_json::json;
use updraft_rest_api::auth::Role;
use updraft_rest_api::{hide_config_secrets, HIDDEN};

use crate::fixture::Server;

fn configuration() -> serde_json::Value {
    hide_config_secrets(&json!({
        "core": {"dags_folder": "/srv/dags", "fernet_key": "k3y"},
        "api": {"port": 8080, "worker_token": "w0rker", "jwt_secret": "jwt"},
        "database": {"url": "postgres://u:pw@db/updraft"},
    }))
}

#[tokio::test]
async fn config_is_refused_unless_exposed() {
    let server = Server::start_with(|c| c.config = configuration()).await;
    let (status, body) = server.get(Role::Admin, "/api/v2/config").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["detail"].as_str().expect("detail").contains("expose"));
    let (status, _) = server
        .get(
            Role::Admin,
            "/api/v2/config/section/core/option/dags_folder",
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn exposed_config_hides_its_secrets() {
    let server = Server::start_with(|c| {
        c.expose_config = true;
        c.config = configuration();
    })
    .await;
    let (status, body) = server.get(Role::Admin, "/api/v2/config").await;
    assert_eq!(status, StatusCode::OK);
    let text = body.to_string();
    for secret in ["k3y", "w0rker", "\"jwt\"", "pw@db"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    // Sections and options are in name order.
    assert_eq!(
        body["sections"][0],
        json!({"name": "api", "options": [
            {"key": "jwt_secret", "value": HIDDEN},
            {"key": "port", "value": "8080"},
            {"key": "worker_token", "value": HIDDEN}]})
    );

    let (_, body) = server
        .get(Role::Admin, "/api/v2/config?section=database")
        .await;
    assert_eq!(
        body,
        json!({"sections": [{"name": "database", "options": [{"key": "url", "value": HIDDEN}]}]})
    );
    let (status, _) = server.get(Role::Admin, "/api/v2/config?section=nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = server
        .get(
            Role::Admin,
            "/api/v2/config/section/core/option/dags_folder",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"sections": [{"name": "core", "options": [{"key": "dags_folder", "value": "/srv/dags"}]}]})
    );
    let (status, _) = server
        .get(Role::Admin, "/api/v2/config/section/core/option/nope")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let response = server
        .client
        .get(format!("{}/api/v2/config?section=core", server.url))
        .bearer_auth(server.token(Role::Admin))
        .header("accept", "text/plain")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.expect("text");
    assert_eq!(
        text,
        format!("[core]\ndags_folder = /srv/dags\nfernet_key = {HIDDEN}\n\n")
    );
}
