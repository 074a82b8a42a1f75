//! `/api/v2/variables`: CRUD, listing and bulk, with secret values hidden in answers and
//! every value encrypted at rest.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use updraft_secrets::FernetCipher;
use updraft_store::Cipher;

use crate::fixture::{Server, FERNET_KEY};

const SECRET: &str = "hunter2-very-secret";

/// The variable as the database holds it: (val, is_encrypted).
fn raw_row(server: &Server, key: &str) -> Option<(String, bool)> {
    let db = rusqlite::Connection::open(server.dir.path().join("updraft.db")).unwrap();
    db.query_row(
        "SELECT val, is_encrypted FROM variable WHERE key = ?1",
        [key],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .ok()
}

async fn post(server: &Server, body: Value) -> (StatusCode, Value) {
    server
        .admin(Method::POST, "/api/v2/variables", Some(body))
        .await
}

#[tokio::test]
async fn secret_variables_are_hidden_in_answers_and_every_value_is_encrypted() {
    let server = Server::start().await;
    let (status, created) = post(
        &server,
        json!({"key": "db_password", "value": SECRET, "description": "the db"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        created,
        json!({"key": "db_password", "value": "***", "description": "the db",
               "is_encrypted": true, "team_name": null})
    );
    let (status, got) = server
        .admin(Method::GET, "/api/v2/variables/db_password", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, created);

    // JSON values are stored as text; secret keys inside an object are hidden.
    let (status, settings) = post(
        &server,
        json!({"key": "settings", "value": {"region": "eu", "token": SECRET}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{settings}");
    let shown: Value = serde_json::from_str(settings["value"].as_str().unwrap()).unwrap();
    assert_eq!(shown, json!({"region": "eu", "token": "***"}));
    let (_, plain) = post(&server, json!({"key": "bucket", "value": "s3://data"})).await;
    assert_eq!(plain["value"], "s3://data");

    let (_, list) = server.admin(Method::GET, "/api/v2/variables", None).await;
    assert_eq!(list["total_entries"], 3);
    assert!(!list.to_string().contains(SECRET), "{list}");

    // The real values are there for templates, and encrypted in the database.
    assert_eq!(
        server
            .store
            .get_variable("db_password")
            .await
            .unwrap()
            .as_deref(),
        Some(SECRET)
    );
    let cipher = FernetCipher::new(FERNET_KEY).unwrap();
    for key in ["db_password", "settings", "bucket"] {
        let (val, encrypted) = raw_row(&server, key).unwrap();
        assert!(encrypted, "{key}");
        assert!(
            !val.contains(SECRET) && !val.contains("s3://"),
            "{key}: {val}"
        );
        assert!(cipher.decrypt(&val).is_ok(), "{key}");
    }
}

#[tokio::test]
async fn refused_requests_change_nothing() {
    let server = Server::start().await;
    post(&server, json!({"key": "k", "value": "v1"})).await;
    let (status, body) = post(&server, json!({"key": "k", "value": "v2"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["detail"], "The Variable with key: `k` already exists");
    for (body, field) in [
        (json!({"key": "x".repeat(251), "value": "v"}), "key"),
        (json!({"key": "n", "value": null}), "value"),
        (json!({"key": "n"}), "body"),
        (json!({"key": "n", "value": "v", "colour": "red"}), "colour"),
    ] {
        let (status, answer) = post(&server, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        let loc = answer["detail"][0]["loc"].as_array().unwrap();
        assert_eq!(loc.last().unwrap(), field, "{body}: {answer}");
    }
    let (status, body) = server
        .admin(
            Method::PATCH,
            "/api/v2/variables/k",
            Some(json!({"key": "other", "value": "v3"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = server
        .admin(
            Method::PATCH,
            "/api/v2/variables/k?update_mask=colour",
            Some(json!({"key": "k", "value": "v3"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        server.store.get_variable("k").await.unwrap().as_deref(),
        Some("v1")
    );
    let (_, list) = server.admin(Method::GET, "/api/v2/variables", None).await;
    assert_eq!(list["total_entries"], 1);
}

#[tokio::test]
async fn unknown_variables_are_404() {
    let server = Server::start().await;
    for method in [Method::GET, Method::DELETE] {
        let (status, body) = server
            .admin(method.clone(), "/api/v2/variables/nope", None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(
            body["detail"],
            "The Variable with key: `nope` was not found"
        );
    }
    let (status, _) = server
        .admin(
            Method::PATCH,
            "/api/v2/variables/nope",
            Some(json!({"key": "nope", "value": "v"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(server.store.get_variable("nope").await.unwrap(), None);
}

#[tokio::test]
async fn patches_follow_the_mask_and_keep_a_redacted_secret() {
    let server = Server::start().await;
    post(
        &server,
        json!({"key": "api_token", "value": SECRET, "description": "d1"}),
    )
    .await;
    // Writing back what was read keeps the secret; the description changes.
    let (status, answer) = server
        .admin(
            Method::PATCH,
            "/api/v2/variables/api_token",
            Some(json!({"key": "api_token", "value": "***", "description": "d2"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["description"], "d2");
    assert_eq!(
        server
            .store
            .get_variable("api_token")
            .await
            .unwrap()
            .as_deref(),
        Some(SECRET)
    );
    // Only the value, by mask.
    let (status, answer) = server
        .admin(
            Method::PATCH,
            "/api/v2/variables/api_token?update_mask=value",
            Some(json!({"key": "api_token", "value": "rotated-secret", "description": "d3"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["description"], "d2");
    assert_eq!(
        server
            .store
            .get_variable("api_token")
            .await
            .unwrap()
            .as_deref(),
        Some("rotated-secret")
    );
    let (status, _) = server
        .admin(Method::DELETE, "/api/v2/variables/api_token", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(server.store.get_variable("api_token").await.unwrap(), None);
}

#[tokio::test]
async fn lists_page_sort_and_filter() {
    let server = Server::start().await;
    for (key, value, description) in [
        ("b_var", "2", "z"),
        ("a_var", "3", "y"),
        ("c_other", "1", "x"),
    ] {
        post(
            &server,
            json!({"key": key, "value": value, "description": description}),
        )
        .await;
    }
    let keys = |body: &Value| -> Vec<String> {
        body["variables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["key"].as_str().unwrap().to_string())
            .collect()
    };
    for (query, expected, total) in [
        ("", vec!["a_var", "b_var", "c_other"], 3),
        ("?limit=1&offset=1", vec!["b_var"], 3),
        ("?order_by=-key", vec!["c_other", "b_var", "a_var"], 3),
        (
            "?order_by=description",
            vec!["c_other", "a_var", "b_var"],
            3,
        ),
        ("?order_by=_val&limit=2", vec!["c_other", "b_var"], 3),
        ("?variable_key_pattern=VAR", vec!["a_var", "b_var"], 2),
        ("?variable_key_prefix_pattern=c_", vec!["c_other"], 1),
    ] {
        let (status, body) = server
            .admin(Method::GET, &format!("/api/v2/variables{query}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(keys(&body), expected, "{query}");
        assert_eq!(body["total_entries"], total, "{query}");
    }
    let (status, _) = server
        .admin(Method::GET, "/api/v2/variables?order_by=colour", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn sorting_by_value_never_orders_by_a_hidden_secret() {
    let server = Server::start().await;
    // Were secrets sorted by their real value, a client could place its own values around
    // one and bisect it.
    for (key, value) in [("m_plain", "m"), ("api_password", "zzz"), ("a_plain", "a")] {
        post(&server, json!({"key": key, "value": value})).await;
    }
    let (status, body) = server
        .admin(Method::GET, "/api/v2/variables?order_by=_val", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let listed: Vec<(&str, &str)> = body["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["key"].as_str().unwrap(), v["value"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [("api_password", "***"), ("a_plain", "a"), ("m_plain", "m")]
    );
}

#[tokio::test]
async fn bulk_creates_updates_and_deletes() {
    let server = Server::start().await;
    post(
        &server,
        json!({"key": "keep", "value": "1", "description": "old"}),
    )
    .await;
    post(&server, json!({"key": "gone", "value": "1"})).await;
    let (status, body) = server
        .admin(
            Method::PATCH,
            "/api/v2/variables",
            Some(json!({"actions": [
                {"action": "create", "action_on_existence": "skip", "entities": [
                    {"key": "keep", "value": "overwritten?"}, {"key": "new", "value": [1, 2]}]},
                {"action": "update", "update_mask": ["description"], "entities": [
                    {"key": "keep", "value": "ignored", "description": "new"}]},
                {"action": "delete", "entities": ["gone"]},
            ]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["create"]["success"], json!(["new"]));
    assert_eq!(body["update"]["success"], json!(["keep"]));
    assert_eq!(body["delete"]["success"], json!(["gone"]));
    let keep = server
        .store
        .get_variable_record("keep")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (keep.value.as_str(), keep.description.as_deref()),
        ("1", Some("new"))
    );
    assert_eq!(
        server.store.get_variable("new").await.unwrap().as_deref(),
        Some("[1,2]")
    );
    assert_eq!(server.store.get_variable("gone").await.unwrap(), None);

    let (status, body) = server
        .admin(
            Method::PATCH,
            "/api/v2/variables",
            Some(json!({"actions": [{"action": "create", "entities": [
                {"key": "fine", "value": "1"}, {"key": "bad", "value": null}]}]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["body", "actions", "0", "entities", "1", "value"])
    );
    assert_eq!(server.store.get_variable("fine").await.unwrap(), None);
}
