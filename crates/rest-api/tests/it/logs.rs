//! `GET …/taskInstances/{task_id}/logs/{try_number}`: from the database, from the local file,
//! with a continuation token, and as an NDJSON stream that ends with the try.

use reqwest::StatusCode;
use serde_json::Value;
use updraft_model::TaskState;
use updraft_rest_api::auth::Role;
use updraft_store::conformance::fixture;
use updraft_store::{log_path, LogChunk};

use crate::fixture::Server;
use crate::world;

fn events(body: &Value) -> Vec<String> {
    body["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["event"].as_str().unwrap().to_string())
        .filter(|e| !e.starts_with("::"))
        .collect()
}

#[tokio::test]
async fn a_shipped_log_is_read_from_the_database_with_a_continuation_token() {
    let server = Server::start().await;
    world::publish(server.store.as_ref()).await;
    let store = server.store.as_ref();
    let run = world::run(store, "solo", "s1", 0).await;
    let claimed = world::claim(store, &run, "a").await;
    let first = "[2024-01-01T00:00:01.000Z] {stdout} one\n";
    let partial = "[2024-01-01T00:00:02.000Z] {stdout} tw";
    store
        .append_log(LogChunk {
            ti_id: claimed.ti.id,
            try_number: 1,
            claim_id: claimed.claim_id.clone(),
            offset: 0,
            data: format!("{first}{partial}"),
        })
        .await
        .unwrap();
    let path = "/api/v2/dags/solo/dagRuns/s1/taskInstances/a/logs/1";
    let (status, body) = server.get(Role::Viewer, path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        events(&body),
        vec!["one"],
        "a running try's partial line waits"
    );
    assert_eq!(body["content"][2]["timestamp"], "2024-01-01T00:00:01.000Z");
    assert_eq!(body["content"][0]["sources"][0], "database");
    let token = body["continuation_token"].as_str().unwrap().to_string();

    store
        .append_log(LogChunk {
            ti_id: claimed.ti.id,
            try_number: 1,
            claim_id: claimed.claim_id.clone(),
            offset: (first.len() + partial.len()) as u64,
            data: "o\n".to_string(),
        })
        .await
        .unwrap();
    let (_, body) = server
        .get(Role::Viewer, &format!("{path}?token={token}"))
        .await;
    assert_eq!(events(&body), vec!["two"]);
    let (_, body) = server
        .get(
            Role::Viewer,
            &format!("{path}?token={token}&full_content=true"),
        )
        .await;
    assert_eq!(events(&body), vec!["one", "two"]);

    let (status, _) = server
        .get(Role::Viewer, &format!("{path}?token=garbage"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/solo/dagRuns/s1/taskInstances/a/logs/2",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/solo/dagRuns/s1/taskInstances/a/logs/one",
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_local_log_file_is_read_and_streamed_until_the_try_ends() {
    let server = Server::start().await;
    world::publish(server.store.as_ref()).await;
    let store = server.store.clone();
    let run = world::run(store.as_ref(), "solo", "s1", 0).await;
    let claimed = world::claim(store.as_ref(), &run, "a").await;
    let file = log_path(&server.dir.path().join("logs"), "solo", "s1", "a", -1, 1);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "[2024-01-01T00:00:01.000Z] {updraft} started\n").unwrap();

    let (status, body) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/solo/dagRuns/s1/taskInstances/a/logs/1",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(events(&body), vec!["started"]);
    assert_eq!(body["content"][2]["logger"], "updraft");

    let response = server
        .client
        .get(format!(
            "{}/api/v2/dags/solo/dagRuns/s1/taskInstances/a/logs/1",
            server.url
        ))
        .bearer_auth(server.token(Role::Viewer))
        .header("Accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Written while the stream is open, then the try ends: the stream carries it and ends.
    std::fs::write(
        &file,
        "[2024-01-01T00:00:01.000Z] {updraft} started\n[2024-01-01T00:00:03.000Z] {stdout} done\n",
    )
    .unwrap();
    fixture::finish(
        store.as_ref(),
        fixture::report(&claimed, TaskState::Success),
    )
    .await;
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events: Vec<&str> = lines
        .iter()
        .map(|l| l["event"].as_str().unwrap())
        .filter(|e| !e.starts_with("::"))
        .collect();
    assert_eq!(events, vec!["started", "done"]);
}
