//! The worker token: every `/execution/v1/` route wants `Authorization: Bearer <token>`.

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use serde_json::json;
use updraft_store::{StoreError, TaskExecution, TaskState};

use crate::fixture::{client, queued_run, ti, Answer, Server, TOKEN};

fn assert_unauthorized(answer: &Answer, detail: &str) {
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
    assert_eq!(
        answer
            .headers
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok()),
        Some("Bearer"),
        "{answer:?}"
    );
    assert!(
        answer.detail().contains(detail),
        "expected {detail:?} in {answer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_token_are_refused_with_401() {
    let server = Server::start().await;
    server
        .store
        .set_variable("greeting", "hello")
        .await
        .expect("set_variable");

    let missing = server.get("variables", None).await;
    assert_unauthorized(&missing, "missing bearer token");
    assert_eq!(
        missing
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    assert_unauthorized(
        &server.get("variables", Some("not-the-token")).await,
        "invalid worker token",
    );
    // Another scheme is no bearer token at all.
    let basic = Answer::of(
        reqwest::Client::new()
            .get(server.execution_url("variables"))
            .header(AUTHORIZATION, format!("Basic {TOKEN}")),
    )
    .await;
    assert_unauthorized(&basic, "missing bearer token");

    let allowed = server.get("variables", Some(TOKEN)).await;
    assert_eq!(allowed.status, StatusCode::OK, "{allowed:?}");
    assert_eq!(allowed.json, json!([["greeting", "hello"]]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_with_a_wrong_token_claims_nothing() {
    let server = Server::start().await;
    let run = queued_run(server.dyn_store(), &["a"]).await;
    let body = json!({
        "worker_id": "w", "hostname": "h", "queues": null, "limit": 1, "lease_secs": 30
    })
    .to_string();
    let answer = Answer::of(
        reqwest::Client::new()
            .post(server.execution_url("claim"))
            .header(AUTHORIZATION, "Bearer wrong")
            .header(CONTENT_TYPE, "application/json")
            .body(body),
    )
    .await;
    assert_unauthorized(&answer, "invalid worker token");

    let intruder = client(vec![server.url.clone()], "wrong", std::time::Duration::ZERO);
    let refused = intruder
        .claim(crate::fixture::claim_request("w", 1))
        .await
        .expect_err("a wrong token claims nothing");
    assert!(
        matches!(&refused, StoreError::Unauthorized(detail) if detail.contains("invalid worker token")),
        "{refused:?}"
    );
    let a = ti(server.dyn_store(), run.id, "a").await;
    assert_eq!((a.state, a.claim_id), (TaskState::Queued, None));
}
