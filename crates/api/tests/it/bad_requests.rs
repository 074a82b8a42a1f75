//! Requests the server cannot act on: malformed or incomplete bodies, bad path ids, unknown
//! routes. Each is a 4xx with a JSON `detail` that says what is wrong, and changes nothing.

use chrono::DateTime;
use reqwest::header::AUTHORIZATION;
use reqwest::StatusCode;
use serde_json::json;
use updraft_store::TaskState;

use crate::fixture::{queued_run, tis, Answer, Server, TOKEN};

/// Asserts an error answer with `status` whose detail mentions every one of `words`.
fn assert_refused(answer: &Answer, status: StatusCode, words: &[&str]) {
    assert_eq!(answer.status, status, "{answer:?}");
    let detail = answer.detail();
    for word in words {
        assert!(detail.contains(word), "expected {word:?} in {detail:?}");
    }
}

fn claim_body() -> serde_json::Value {
    json!({
        "worker_id": "w", "hostname": "h", "queues": null, "limit": 1, "lease_secs": 30
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_claims_are_refused_and_claim_nothing() {
    let server = Server::start().await;
    let run = queued_run(server.dyn_store(), &["a"]).await;
    let before = tis(server.dyn_store(), run.id).await;

    let without = |field: &str| {
        let mut body = claim_body();
        body.as_object_mut().expect("an object").remove(field);
        body.to_string()
    };
    let with = |field: &str, value: serde_json::Value| {
        let mut body = claim_body();
        body[field] = value;
        body.to_string()
    };
    let cases: Vec<(String, StatusCode, Vec<&str>)> = vec![
        ("{not json".into(), StatusCode::BAD_REQUEST, vec!["JSON"]),
        ("".into(), StatusCode::BAD_REQUEST, vec![]),
        ("[]".into(), StatusCode::UNPROCESSABLE_ENTITY, vec![]),
        (
            without("lease_secs"),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["lease_secs"],
        ),
        (
            without("worker_id"),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["worker_id"],
        ),
        (
            with("limit", json!("ten")),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["limit"],
        ),
        (
            with("limit", json!(-1)),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["limit"],
        ),
        (
            with("limit", json!(100_000)),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["limit", "maximum"],
        ),
        (
            with("lease_secs", json!(0)),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["lease_secs"],
        ),
        (
            with("lease_secs", json!(10_000_000)),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["lease_secs"],
        ),
        (
            with("worker_id", json!("")),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["worker_id"],
        ),
    ];
    for (body, status, words) in cases {
        let answer = server.post("claim", &body).await;
        assert_refused(&answer, status, &words);
    }

    // Without a JSON content type the body is not read.
    let plain = Answer::of(
        reqwest::Client::new()
            .post(server.execution_url("claim"))
            .header(AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(claim_body().to_string()),
    )
    .await;
    assert_refused(
        &plain,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        &["Content-Type"],
    );

    assert_eq!(tis(server.dyn_store(), run.id).await, before);
    assert_eq!(before[0].state, TaskState::Queued);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_finish_reports_change_nothing() {
    let server = Server::start().await;
    let run = queued_run(server.dyn_store(), &["a"]).await;
    let claimed = server
        .post("claim", &claim_body().to_string())
        .await
        .json
        .clone();
    let claim_id = claimed[0]["claim_id"]
        .as_str()
        .expect("a claim")
        .to_string();
    let ti_id = claimed[0]["ti"]["id"].as_i64().expect("a task instance id");
    let before = tis(server.dyn_store(), run.id).await;
    assert_eq!(before[0].state, TaskState::Running);

    let report = |state: &str| {
        json!([{
            "ti_id": ti_id,
            "try_number": 1,
            "claim_id": claim_id,
            "state": state,
            "end_date": DateTime::UNIX_EPOCH,
            "next_retry_at": null,
            "xcom": {"rows": 1},
            "infrastructure_failure": false,
        }])
    };
    let mut missing_state = report("success");
    missing_state[0]
        .as_object_mut()
        .expect("an object")
        .remove("state");
    let cases = [
        (
            json!({"ti_id": ti_id}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec![],
        ),
        (
            missing_state.to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["state"],
        ),
        (
            report("finished-ish").to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["finished-ish"],
        ),
        // A well-formed report of a state a try cannot end in.
        (
            report("queued").to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["queued"],
        ),
        ("[{".to_string(), StatusCode::BAD_REQUEST, vec![]),
    ];
    for (body, status, words) in cases {
        let answer = server.post("finish", &body).await;
        assert_refused(&answer, status, &words);
    }
    assert_eq!(tis(server.dyn_store(), run.id).await, before);
    assert_eq!(
        server
            .store
            .xcoms_for_run(run.id)
            .await
            .expect("xcoms_for_run"),
        vec![]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_path_ids_and_unknown_things_are_4xx() {
    let server = Server::start().await;
    queued_run(server.dyn_store(), &["a"]).await;
    let token = Some(TOKEN);
    // The answer names the parameter that does not parse, and its value.
    for (path, value) in [
        ("dags/d/versions/latest", "latest"),
        ("dags/d/versions/1.5", "1.5"),
    ] {
        let answer = server.get(path, token).await;
        assert_refused(&answer, StatusCode::BAD_REQUEST, &["`version`", value]);
    }
    let answer = server.get("runs/abc/xcoms", token).await;
    assert_refused(&answer, StatusCode::BAD_REQUEST, &["`dag_run_id`", "abc"]);

    let answer = server.get("dags/nope/versions/1", token).await;
    assert_refused(&answer, StatusCode::NOT_FOUND, &["nope", "not found"]);
    let answer = server.get("dags/d/versions/7", token).await;
    assert_refused(&answer, StatusCode::NOT_FOUND, &["not found"]);
    let answer = server.get("dags/d/versions/1", token).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.json["dag_id"], "d");

    let answer = server.get("no/such/route", token).await;
    assert_refused(&answer, StatusCode::NOT_FOUND, &["no such route"]);
    let answer = server.get("claim", token).await;
    assert_refused(&answer, StatusCode::METHOD_NOT_ALLOWED, &["method"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_heartbeats_record_workers_only() {
    let server = Server::start().await;
    let beat = |kind: &str, id: &str| {
        json!({
            "id": id, "kind": kind, "hostname": "h", "queues": ["default"],
            "state": "running", "now": DateTime::UNIX_EPOCH,
        })
        .to_string()
    };
    let answer = server
        .post("workers/heartbeat", &beat("scheduler", "s1"))
        .await;
    assert_refused(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        &["workers only", "scheduler"],
    );
    let answer = server.post("workers/heartbeat", &beat("worker", "")).await;
    assert_refused(&answer, StatusCode::UNPROCESSABLE_ENTITY, &["id"]);
    let answer = server
        .post("workers/heartbeat", &beat("gardener", "g1"))
        .await;
    assert_refused(&answer, StatusCode::UNPROCESSABLE_ENTITY, &["gardener"]);
    let jobs = server
        .store
        .list_jobs(None, DateTime::UNIX_EPOCH)
        .await
        .expect("list_jobs");
    assert_eq!(jobs, vec![]);

    // A worker's beat is recorded at the server's time, not at the one it sent.
    let answer = server
        .post("workers/heartbeat", &beat("worker", "w1"))
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{answer:?}");
    let jobs = server
        .store
        .list_jobs(None, DateTime::UNIX_EPOCH)
        .await
        .expect("list_jobs");
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].id, "w1");
    assert!(jobs[0].latest_heartbeat > DateTime::UNIX_EPOCH + chrono::TimeDelta::days(365));
}
