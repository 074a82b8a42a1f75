//! `crates/rest-api/openapi.json` is the document the server serves, committed so that an API
//! change shows in review. After changing the API, regenerate it with
//! `UPDATE_OPENAPI=1 cargo test -p updraft-rest-api --test it openapi_file`.

use reqwest::StatusCode;
use serde_json::Value;

use crate::fixture::Server;

const UPDATE_VARIABLE: &str = "UPDATE_OPENAPI";

fn committed_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json")
}

#[tokio::test]
async fn the_committed_openapi_json_is_what_the_server_serves() {
    let server = Server::start().await;
    let response = server
        .client
        .get(format!("{}/openapi.json", server.url))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let served: Value = response.json().await.expect("a JSON document");
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
