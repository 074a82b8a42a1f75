//! [`HttpExecution`](updraft_api::HttpExecution) with several servers: it moves past servers
//! that cannot be reached or fail, and gives up with `Unavailable` when none answers.

use std::time::Duration;

use axum::http::StatusCode;
use axum::Router;
use updraft_store::{StoreError, TaskExecution, TaskState};

use crate::fixture::{claim_request, client, dead_address, queued_run, ti, Server, TOKEN};

/// A server that answers every request with `status`; its address.
async fn answering(status: StatusCode) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    let router = Router::new().fallback(move || async move { (status, "{\"detail\":\"down\"}") });
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_or_failing_server_is_skipped() {
    let server = Server::start().await;
    let store = server.dyn_store();
    let run = queued_run(store, &["a", "b"]).await;
    store.set_variable("k", "v").await.expect("set_variable");

    let worker = client(
        vec![dead_address(), server.url.clone()],
        TOKEN,
        Duration::ZERO,
    );
    let claimed = worker.claim(claim_request("w", 1)).await.expect("claim");
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    let stored = ti(store, run.id, &claimed[0].ti.task_id).await;
    assert_eq!(stored.state, TaskState::Running);
    assert_eq!(
        worker.variables().await.expect("variables"),
        vec![("k".to_string(), "v".to_string())]
    );

    let failing = answering(StatusCode::SERVICE_UNAVAILABLE).await;
    let worker = client(vec![failing, server.url.clone()], TOKEN, Duration::ZERO);
    let claimed = worker.claim(claim_request("w", 1)).await.expect("claim");
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(
        ti(store, run.id, &claimed[0].ti.task_id).await.state,
        TaskState::Running
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_live_server_calls_fail_as_unavailable() {
    let (first, second) = (dead_address(), dead_address());
    let worker = client(vec![first.clone(), second.clone()], TOKEN, Duration::ZERO);
    let error = worker
        .claim(claim_request("w", 1))
        .await
        .expect_err("nobody answers");
    let StoreError::Unavailable(reason) = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert!(
        reason.contains(&first) && reason.contains(&second),
        "{reason}"
    );
    let error = worker.variables().await.expect_err("nobody answers");
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");

    let failing = answering(StatusCode::INTERNAL_SERVER_ERROR).await;
    let worker = client(vec![failing], TOKEN, Duration::ZERO);
    let error = worker
        .heartbeat(&["c".to_string()], chrono::Utc::now())
        .await
        .expect_err("the only server fails");
    assert!(
        matches!(&error, StoreError::Unavailable(reason) if reason.contains("HTTP 500") && reason.contains("down")),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_not_failed_over() {
    let server = Server::start().await;
    let run = queued_run(server.dyn_store(), &["a"]).await;
    // A server that refuses the token would refuse it everywhere: the answer stands.
    let refusing = answering(StatusCode::UNAUTHORIZED).await;
    let worker = client(vec![refusing, server.url.clone()], TOKEN, Duration::ZERO);
    let error = worker
        .claim(claim_request("w", 1))
        .await
        .expect_err("refused");
    assert!(matches!(error, StoreError::Unauthorized(_)), "{error:?}");
    assert_eq!(
        ti(server.dyn_store(), run.id, "a").await.state,
        TaskState::Queued
    );
}
