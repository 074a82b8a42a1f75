//! Claims that wait on the server for work (long polling): they answer with work queued while
//! they wait, empty when the wait runs out, and empty at once when the server shuts down.

use std::time::{Duration, Instant};

use updraft_store::{TaskExecution, TaskState};

use crate::fixture::{claim_request, client, create_run, publish, queue, ti, tis, Server, TOKEN};

/// How long the waiting claims may wait: far longer than anything the tests wait for.
const CLAIM_WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_claim_answers_with_work_queued_while_it_waits() {
    let server = Server::start().await;
    let store = server.store.clone();
    publish(&*store, &["a"]).await;
    let run = create_run(&*store, "r", &["a"]).await;
    let worker = client(vec![server.url.clone()], TOKEN, CLAIM_WAIT);
    assert!(worker.long_polls());

    let started = Instant::now();
    let waiting = tokio::spawn(async move { worker.claim(claim_request("w", 1)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the claim answered with no work");
    queue(&*store, &tis(&*store, run.id).await).await;

    let claimed = tokio::time::timeout(CLAIM_WAIT, waiting)
        .await
        .expect("the claim outlived its wait")
        .expect("the claim task panicked")
        .expect("claim");
    assert!(
        started.elapsed() < CLAIM_WAIT,
        "the claim answered only when its wait ran out"
    );
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0].ti.task_id, "a");
    let a = ti(&*store, run.id, "a").await;
    assert_eq!(
        (a.state, a.claim_id.as_deref()),
        (TaskState::Running, Some(claimed[0].claim_id.as_str()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_claim_answers_empty_when_its_wait_runs_out() {
    let server = Server::start().await;
    let worker = client(vec![server.url.clone()], TOKEN, Duration::from_millis(500));
    let claimed = worker.claim(claim_request("w", 1)).await.expect("claim");
    assert!(claimed.is_empty(), "{claimed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_claim_answers_empty_when_the_server_shuts_down() {
    let mut server = Server::start().await;
    let worker = client(vec![server.url.clone()], TOKEN, CLAIM_WAIT);
    let started = Instant::now();
    let waiting = tokio::spawn(async move { worker.claim(claim_request("w", 1)).await });
    // Long enough for the server to have taken the claim in, even on a busy machine.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiting.is_finished(), "the claim answered with no work");

    server.shut_down();
    let claimed = tokio::time::timeout(CLAIM_WAIT, waiting)
        .await
        .expect("the claim outlived its wait")
        .expect("the claim task panicked")
        .expect("a shutting-down server still answers the claim");
    assert!(claimed.is_empty(), "{claimed:?}");
    assert!(
        started.elapsed() < CLAIM_WAIT,
        "the claim answered only when its wait ran out"
    );
    server.stopped().await.expect("the server stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_client_went_away_claims_nothing() {
    let server = Server::start().await;
    let store = server.store.clone();
    publish(&*store, &["a"]).await;
    let run = create_run(&*store, "r", &["a"]).await;
    let body = serde_json::json!({
        "worker_id": "gone", "hostname": "h", "queues": null, "limit": 1, "lease_secs": 30,
        "wait_ms": CLAIM_WAIT.as_millis() as u64,
    });
    let gave_up = reqwest::Client::new()
        .post(server.execution_url("claim"))
        .bearer_auth(TOKEN)
        .json(&body)
        // Long enough for the server to be waiting for work by then, even on a busy machine:
        // a claim that only starts after the work was queued claims it, rightly.
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(
        gave_up.as_ref().is_err_and(|e| e.is_timeout()),
        "{gave_up:?}"
    );

    queue(&*store, &tis(&*store, run.id).await).await;
    server.work_queued.notify_waiters();
    // Longer than a waiting claim takes to look again, with or without the poke.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let a = ti(&*store, run.id, "a").await;
    assert_eq!(
        (a.state, a.worker_id),
        (TaskState::Queued, None),
        "a claim nobody waits for any more took the task"
    );
    let worker = server.client();
    assert_eq!(
        worker
            .claim(claim_request("w", 1))
            .await
            .expect("claim")
            .len(),
        1
    );
}
