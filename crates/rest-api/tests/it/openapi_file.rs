//! `crates/rest-api/openapi.json` is the document the server serves, committed so that an API
//! change shows in review. After changing the API, regenerate it with
//! `UPDATE_OPENAPI=1 cargo test -p updraft-rest-api --test it openapi_file`.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::net::TcpListener;
use updraft_rest_api::{router, RestConfig, RestState};
use updraft_store_sqlite::SqliteStore;

use crate::fixture::JWT_SECRET;

const UPDATE_VARIABLE: &str = "UPDATE_OPENAPI";

fn committed_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json")
}

#[tokio::test]
async fn the_committed_openapi_json_is_what_the_server_serves() {
    // The document needs no user: a server on an empty store serves it.
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Arc::new(SqliteStore::open(&dir.path().join("updraft.db")).expect("open"));
    let state = RestState::new(store, RestConfig::new(JWT_SECRET), Arc::new(|| {})).expect("state");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let app = router(state).expect("router");
    let serving = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let response = reqwest::get(format!("{url}/openapi.json"))
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let served: Value = response.json().await.expect("a JSON document");
    serving.abort();
    // The library's own document is the one served: nothing is added on the way out.
    let generated = serde_json::to_value(updraft_rest_api::openapi_document()).expect("JSON");
    assert_eq!(served, generated);

    let path = committed_path();
    let pretty = serde_json::to_string_pretty(&served).expect("JSON") + "\n";
    if std::env::var_os(UPDATE_VARIABLE).is_some_and(|v| !v.is_empty() && v != "0") {
        std::fs::write(&path, &pretty).expect("write openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let committed_value: Value = serde_json::from_str(&committed).unwrap_or(Value::Null);
    assert!(
        committed_value == served,
        "{} differs from the document the server serves: the API changed. Regenerate it with \
         `{UPDATE_VARIABLE}=1 cargo test -p updraft-rest-api --test it openapi_file` and commit \
         it.",
        path.display()
    );
}
