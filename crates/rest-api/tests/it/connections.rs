//! `/api/v2/connections`: CRUD, listing, bulk and test, with secrets never in an answer and
//! encrypted at rest.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use updraft_secrets::FernetCipher;
use updraft_store::Cipher;

use crate::fixture::{Server, FERNET_KEY};

const PASSWORD: &str = "hunter2-very-secret";
const API_KEY: &str = "k-live-123456";

fn warehouse() -> Value {
    json!({
        "connection_id": "warehouse",
        "conn_type": "postgres",
        "host": "db.example",
        "login": "etl",
        "password": PASSWORD,
        "port": 5432,
        "schema": "sales",
        "description": "the warehouse",
        "extra": json!({"api_key": API_KEY, "region": "eu"}).to_string(),
    })
}

/// The connection as the database holds it: (password, extra, is_encrypted, is_extra_encrypted).
fn raw_row(server: &Server, conn_id: &str) -> Option<(Option<String>, Option<String>, bool, bool)> {
    let db = rusqlite::Connection::open(server.dir.path().join("updraft.db")).unwrap();
    db.query_row(
        "SELECT password, extra, is_encrypted, is_extra_encrypted FROM connection WHERE conn_id = ?1",
        [conn_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .ok()
}

fn assert_no_secret(body: &Value) {
    let text = body.to_string();
    assert!(!text.contains(PASSWORD), "password in an answer: {text}");
    assert!(!text.contains(API_KEY), "extra secret in an answer: {text}");
}

#[tokio::test]
async fn a_connection_is_created_read_and_listed_without_its_secrets() {
    let server = Server::start().await;
    let (status, created) = server
        .admin(Method::POST, "/api/v2/connections", Some(warehouse()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_no_secret(&created);
    assert_eq!(created["connection_id"], "warehouse");
    assert_eq!(created["password"], "***");
    assert_eq!(created["host"], "db.example");
    assert_eq!(created["port"], 5432);
    assert_eq!(created["schema"], "sales");
    assert_eq!(created["team_name"], Value::Null);
    let extra: Value = serde_json::from_str(created["extra"].as_str().unwrap()).unwrap();
    assert_eq!(extra, json!({"api_key": "***", "region": "eu"}));

    let (status, got) = server
        .admin(Method::GET, "/api/v2/connections/warehouse", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, created);
    let (status, list) = server.admin(Method::GET, "/api/v2/connections", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total_entries"], 1);
    assert_eq!(list["connections"][0], created);
    assert_no_secret(&list);

    // The store keeps the real values (a worker reads them) ...
    let stored = server
        .store
        .get_connection("warehouse")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.password.as_deref(), Some(PASSWORD));
    // ... encrypted at rest with the Fernet key.
    let (password, extra, encrypted, extra_encrypted) = raw_row(&server, "warehouse").unwrap();
    let (password, extra) = (password.unwrap(), extra.unwrap());
    assert!(encrypted && extra_encrypted);
    assert!(!password.contains(PASSWORD) && !extra.contains(API_KEY));
    let cipher = FernetCipher::new(FERNET_KEY).unwrap();
    assert_eq!(cipher.decrypt(&password).unwrap(), PASSWORD);
    assert!(cipher.decrypt(&extra).unwrap().contains(API_KEY));
}

#[tokio::test]
async fn refused_creations_change_nothing() {
    let server = Server::start().await;
    server
        .admin(Method::POST, "/api/v2/connections", Some(warehouse()))
        .await;
    let mut again = warehouse();
    again["password"] = json!("another");
    let (status, body) = server
        .admin(Method::POST, "/api/v2/connections", Some(again))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("`warehouse`"));
    let stored = server
        .store
        .get_connection("warehouse")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.password.as_deref(), Some(PASSWORD));

    let cases = [
        (
            json!({"connection_id": "bad id!", "conn_type": "x"}),
            "connection_id",
        ),
        (
            json!({"connection_id": "x".repeat(201), "conn_type": "x"}),
            "connection_id",
        ),
        (
            json!({"connection_id": "c2", "conn_type": "x", "extra": "[1]"}),
            "extra",
        ),
        (
            json!({"connection_id": "c2", "conn_type": "x", "port": "x"}),
            "port",
        ),
        (json!({"connection_id": "c2"}), "body"),
    ];
    for (body, field) in cases {
        let (status, answer) = server
            .admin(Method::POST, "/api/v2/connections", Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        let loc = answer["detail"][0]["loc"].as_array().unwrap();
        assert_eq!(loc.last().unwrap(), field, "{body}: {answer}");
    }
    let (_, list) = server.admin(Method::GET, "/api/v2/connections", None).await;
    assert_eq!(list["total_entries"], 1);
}

#[tokio::test]
async fn unknown_connections_are_404() {
    let server = Server::start().await;
    for method in [Method::GET, Method::DELETE] {
        let (status, body) = server
            .admin(method.clone(), "/api/v2/connections/nope", None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(
            body["detail"],
            "The Connection with connection_id: `nope` was not found"
        );
    }
    let (status, _) = server
        .admin(
            Method::PATCH,
            "/api/v2/connections/nope",
            Some(json!({"connection_id": "nope", "conn_type": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(server.store.get_connection("nope").await.unwrap().is_none());
}

#[tokio::test]
async fn patches_change_what_they_name_and_keep_redacted_secrets() {
    let server = Server::start().await;
    server
        .admin(Method::POST, "/api/v2/connections", Some(warehouse()))
        .await;
    // Writing back what was read (password and extra secret as ***) keeps the secrets.
    let (_, read) = server
        .admin(Method::GET, "/api/v2/connections/warehouse", None)
        .await;
    let mut back = read.clone();
    back["host"] = json!("db2.example");
    back.as_object_mut().unwrap().remove("team_name");
    let (status, answer) = server
        .admin(Method::PATCH, "/api/v2/connections/warehouse", Some(back))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["host"], "db2.example");
    let stored = server
        .store
        .get_connection("warehouse")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.password.as_deref(), Some(PASSWORD));
    assert!(stored.extra.unwrap().contains(API_KEY));

    // With a mask, only the named fields change.
    let (status, answer) = server
        .admin(
            Method::PATCH,
            "/api/v2/connections/warehouse?update_mask=port",
            Some(
                json!({"connection_id": "warehouse", "conn_type": "mysql", "port": 6543,
                        "login": "ignored"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["port"], 6543);
    assert_eq!(answer["conn_type"], "postgres");
    assert_eq!(answer["login"], "etl");

    // A new password is taken.
    server
        .admin(
            Method::PATCH,
            "/api/v2/connections/warehouse",
            Some(
                json!({"connection_id": "warehouse", "conn_type": "postgres",
                        "password": "new-password"}),
            ),
        )
        .await;
    let stored = server
        .store
        .get_connection("warehouse")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.password.as_deref(), Some("new-password"));

    // Refused patches change nothing.
    let before = server.store.get_connection("warehouse").await.unwrap();
    let refused = [
        (
            "/api/v2/connections/warehouse",
            json!({"connection_id": "other", "conn_type": "x", "host": "h"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v2/connections/warehouse?update_mask=hots",
            json!({"connection_id": "warehouse", "conn_type": "x"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v2/connections/warehouse",
            json!({"connection_id": "warehouse", "conn_type": "x", "extra": "nope"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (path, body, expected) in refused {
        let (status, answer) = server.admin(Method::PATCH, path, Some(body)).await;
        assert_eq!(status, expected, "{path}: {answer}");
    }
    assert_eq!(
        server.store.get_connection("warehouse").await.unwrap(),
        before
    );

    let (status, _) = server
        .admin(Method::DELETE, "/api/v2/connections/warehouse", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(server
        .store
        .get_connection("warehouse")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn lists_page_sort_and_filter() {
    let server = Server::start().await;
    for (id, conn_type, port) in [
        ("db_a", "postgres", 3),
        ("db_b", "mysql", 1),
        ("api_x", "http", 2),
        ("db_c", "http", 5),
    ] {
        let (status, body) = server
            .admin(
                Method::POST,
                "/api/v2/connections",
                Some(json!({"connection_id": id, "conn_type": conn_type, "port": port})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let ids = |body: &Value| -> Vec<String> {
        body["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["connection_id"].as_str().unwrap().to_string())
            .collect()
    };
    let cases = [
        ("", vec!["api_x", "db_a", "db_b", "db_c"], 4),
        ("?limit=2&offset=1", vec!["db_a", "db_b"], 4),
        (
            "?order_by=-connection_id",
            vec!["db_c", "db_b", "db_a", "api_x"],
            4,
        ),
        (
            "?order_by=conn_type&order_by=-connection_id",
            vec!["db_c", "api_x", "db_b", "db_a"],
            4,
        ),
        ("?order_by=port&limit=2", vec!["db_b", "api_x"], 4),
        (
            "?connection_id_pattern=DB_",
            vec!["db_a", "db_b", "db_c"],
            3,
        ),
        ("?connection_id_pattern=d%25c", vec!["db_c"], 1),
        ("?connection_id_prefix_pattern=api", vec!["api_x"], 1),
    ];
    for (query, expected, total) in cases {
        let (status, body) = server
            .admin(Method::GET, &format!("/api/v2/connections{query}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(ids(&body), expected, "{query}");
        assert_eq!(body["total_entries"], total, "{query}");
    }
    let (status, body) = server
        .admin(Method::GET, "/api/v2/connections?order_by=password", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = server
        .admin(Method::GET, "/api/v2/connections?limit=x", None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["query", "limit"]));
}

#[tokio::test]
async fn bulk_creates_updates_and_deletes() {
    let server = Server::start().await;
    server
        .admin(Method::POST, "/api/v2/connections", Some(warehouse()))
        .await;
    let (status, body) = server
        .admin(
            Method::PATCH,
            "/api/v2/connections",
            Some(json!({"actions": [
                {"action": "create", "entities": [
                    {"connection_id": "new_one", "conn_type": "http", "password": "pw-new-one"}]},
                {"action": "update", "update_mask": ["host"], "entities": [
                    {"connection_id": "warehouse", "conn_type": "x", "host": "bulk.example",
                     "password": "ignored"}]},
                {"action": "delete", "action_on_non_existence": "skip",
                 "entities": ["ghost", "new_one"]},
            ]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["create"]["success"], json!(["new_one"]));
    assert_eq!(body["update"]["success"], json!(["warehouse"]));
    assert_eq!(body["delete"]["success"], json!(["new_one"]));
    let stored = server
        .store
        .get_connection("warehouse")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.host.as_deref(), Some("bulk.example"));
    assert_eq!(stored.password.as_deref(), Some(PASSWORD));
    assert!(server
        .store
        .get_connection("new_one")
        .await
        .unwrap()
        .is_none());

    // One bad entity refuses the whole request, naming it.
    let (status, body) = server
        .admin(
            Method::PATCH,
            "/api/v2/connections",
            Some(json!({"actions": [
                {"action": "create", "entities": [
                    {"connection_id": "fine", "conn_type": "http"},
                    {"connection_id": "not fine", "conn_type": "http"}]}]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["body", "actions", "0", "entities", "1", "connection_id"])
    );
    assert!(server.store.get_connection("fine").await.unwrap().is_none());
}

#[tokio::test]
async fn testing_is_refused_unless_enabled() {
    let server = Server::start().await;
    let (status, body) = server
        .admin(
            Method::POST,
            "/api/v2/connections/test",
            Some(json!({"connection_id": "t", "conn_type": "postgres", "host": "127.0.0.1"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("core.test_connection"));
}

#[tokio::test]
async fn testing_reaches_the_system_and_reports_failure_honestly() {
    let server = Server::start_with(|c| c.test_connection = true).await;
    // A TCP service, and a tiny HTTP server answering 200 then 500.
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    tokio::spawn(async move { while tcp.accept().await.is_ok() {} });
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_port = http.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut answers = ["200 OK", "500 Internal Server Error"].into_iter().cycle();
        while let Ok((mut socket, _)) = http.accept().await {
            let status = answers.next().unwrap();
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await;
        }
    });
    // A port nothing listens on.
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let test = |body: Value| {
        let server = &server;
        async move {
            let (status, answer) = server
                .admin(Method::POST, "/api/v2/connections/test", Some(body))
                .await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            (
                answer["status"].as_bool().unwrap(),
                answer["message"].as_str().unwrap().to_string(),
            )
        }
    };
    let (ok, message) = test(json!({"connection_id": "t", "conn_type": "postgres",
        "host": "127.0.0.1", "port": tcp_port}))
    .await;
    assert!(ok, "{message}");
    assert!(message.contains("not credentials"), "{message}");
    let (ok, message) = test(json!({"connection_id": "t", "conn_type": "postgres",
        "host": "127.0.0.1", "port": closed_port}))
    .await;
    assert!(!ok, "{message}");
    let (ok, message) = test(json!({"connection_id": "t", "conn_type": "http",
        "host": "127.0.0.1", "port": http_port}))
    .await;
    assert!(ok, "{message}");
    let (ok, message) = test(json!({"connection_id": "t", "conn_type": "http",
        "host": "127.0.0.1", "port": http_port}))
    .await;
    assert!(!ok && message.contains("500"), "{message}");
    let (ok, message) = test(json!({"connection_id": "t", "conn_type": "exotic",
        "host": "127.0.0.1"}))
    .await;
    assert!(!ok && message.contains("no port"), "{message}");
    let (ok, _) = test(json!({"connection_id": "t", "conn_type": "postgres"})).await;
    assert!(!ok);
    // Testing stores nothing.
    assert!(server.store.get_connection("t").await.unwrap().is_none());
}

/// Regression: testing a stored connection against another host sent its stored login and
/// password (as HTTP Basic auth) to whatever host the caller named.
#[tokio::test]
async fn testing_a_stored_connection_elsewhere_never_sends_its_secrets() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start_with(|c| c.test_connection = true).await;
    let (status, body) = server
        .admin(
            Method::POST,
            "/api/v2/connections",
            Some(json!({"connection_id": "prod", "conn_type": "postgres",
                "host": "db.internal", "login": "etl", "password": "s3cret-pass"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 8192];
        let n = socket.read(&mut buf).await.unwrap();
        let _ = socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
        String::from_utf8_lossy(&buf[..n]).to_lowercase()
    });
    let (status, answer) = server
        .call(
            Some(updraft_rest_api::auth::Role::Op),
            Method::POST,
            "/api/v2/connections/test",
            Some(json!({"connection_id": "prod", "conn_type": "http",
                "host": "127.0.0.1", "port": port})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let request = received.await.unwrap();
    assert!(request.starts_with("get "), "{request}");
    assert!(
        !request.contains("authorization"),
        "secrets were sent: {request}"
    );
}
