//! A try through [`HttpExecution`](updraft_api::HttpExecution): claim, heartbeat, finish, and
//! the fencing that keeps a worker that lost its claim from overwriting the task.

use chrono::{TimeDelta, Utc};
use serde_json::json;
use updraft_store::{
    FinishReport, JobHeartbeat, JobKind, TaskExecution, TaskState, TransitionResult,
};

use crate::fixture::{claim_request, queue, queued_run, ti, Server, DAG_ID, LEASE};

fn report(ti_id: i64, try_number: u32, claim_id: &str, state: TaskState) -> FinishReport {
    FinishReport {
        ti_id,
        try_number,
        claim_id: claim_id.to_string(),
        state,
        end_date: Utc::now(),
        next_retry_at: None,
        xcom: None,
        infrastructure_failure: false,
        log_tail: None,
        effects: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_heartbeat_finish_records_the_reported_state() {
    let server = Server::start().await;
    let store = server.dyn_store();
    let run = queued_run(store, &["a", "b"]).await;
    let worker = server.client();

    let before_claim = Utc::now();
    let claimed = worker.claim(claim_request("w1", 5)).await.expect("claim");
    assert_eq!(claimed.len(), 2, "{claimed:?}");
    assert_ne!(claimed[0].claim_id, claimed[1].claim_id);
    for c in &claimed {
        assert_eq!(c.dag_run.id, run.id);
        assert_eq!(c.ti.dag_id, DAG_ID);
        let stored = ti(store, run.id, &c.ti.task_id).await;
        assert_eq!(stored.state, TaskState::Running);
        assert_eq!(stored.claim_id.as_deref(), Some(c.claim_id.as_str()));
        assert_eq!(stored.worker_id.as_deref(), Some("w1"));
        assert_eq!(stored.hostname.as_deref(), Some("w1.example"));
        assert_eq!(stored.try_number, 1);
        // The lease is the duration the worker asked for, from the server's clock.
        let lease_until = stored.lease_until.expect("a lease");
        assert!(
            lease_until >= before_claim + LEASE - TimeDelta::seconds(2)
                && lease_until <= Utc::now() + LEASE + TimeDelta::seconds(2),
            "lease until {lease_until}"
        );
    }
    // Nothing is left to claim.
    assert!(worker
        .claim(claim_request("w2", 5))
        .await
        .expect("claim")
        .is_empty());

    let ids: Vec<String> = claimed.iter().map(|c| c.claim_id.clone()).collect();
    let lost = worker
        .heartbeat(&ids, Utc::now() + TimeDelta::hours(1))
        .await
        .expect("heartbeat");
    assert_eq!(lost, Vec::<String>::new());
    for c in &claimed {
        let renewed = ti(store, run.id, &c.ti.task_id).await.lease_until;
        assert!(
            renewed.expect("a lease") > Utc::now() + TimeDelta::minutes(50),
            "{renewed:?}"
        );
    }

    let (a, b) = (&claimed[0], &claimed[1]);
    let results = worker
        .finish(vec![
            FinishReport {
                xcom: Some(json!({"rows": 3})),
                ..report(a.ti.id, a.ti.try_number, &a.claim_id, TaskState::Success)
            },
            report(b.ti.id, b.ti.try_number, &b.claim_id, TaskState::Failed),
        ])
        .await
        .expect("finish");
    assert_eq!(
        results,
        vec![TransitionResult::Applied, TransitionResult::Applied]
    );
    let done = ti(store, run.id, &a.ti.task_id).await;
    assert_eq!(
        (done.state, done.claim_id.as_deref(), done.lease_until),
        (TaskState::Success, Some(a.claim_id.as_str()), None)
    );
    assert_eq!(
        ti(store, run.id, &b.ti.task_id).await.state,
        TaskState::Failed
    );
    let xcoms = store.xcoms_for_run(run.id).await.expect("xcoms_for_run");
    assert_eq!(xcoms.len(), 1);
    assert_eq!(
        (xcoms[0].task_id.as_str(), &xcoms[0].value),
        (a.ti.task_id.as_str(), &json!({"rows": 3}))
    );
    // The worker reads them back through the API too.
    assert_eq!(worker.xcoms_for_run(run.id).await.expect("xcoms"), xcoms);

    // A finished try's claims are lost, and so are claims the server never handed out.
    let with_unknown = vec![ids[0].clone(), "no-such-claim".to_string()];
    let lost = worker
        .heartbeat(&with_unknown, Utc::now() + LEASE)
        .await
        .expect("heartbeat");
    assert_eq!(lost, with_unknown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finish_with_a_stale_claim_is_refused_and_changes_nothing() {
    let server = Server::start().await;
    let store = server.dyn_store();
    let run = queued_run(store, &["a"]).await;
    let first = server.client();
    let second = server.client();

    let old = first
        .claim(claim_request("w1", 1))
        .await
        .expect("claim")
        .remove(0);
    // A claim id the server never handed out does not finish the try.
    let impostor = report(old.ti.id, old.ti.try_number, "impostor", TaskState::Success);
    assert_eq!(
        first.finish(vec![impostor]).await.expect("finish"),
        vec![TransitionResult::Conflict]
    );
    let running = ti(store, run.id, "a").await;
    assert_eq!(
        (running.state, running.claim_id.as_deref()),
        (TaskState::Running, Some(old.claim_id.as_str()))
    );

    // Cleared while running, queued again and claimed by another worker: the first worker's
    // claim is gone.
    let cleared = store
        .clear_task_instances(run.id, &["a".to_string()], Utc::now())
        .await
        .expect("clear");
    assert_eq!(cleared, 1);
    assert_eq!(
        first
            .heartbeat(std::slice::from_ref(&old.claim_id), Utc::now() + LEASE)
            .await
            .expect("heartbeat"),
        vec![old.claim_id.clone()],
        "the heartbeat tells the first worker to stop"
    );
    assert_eq!(
        first
            .finish(vec![report(
                old.ti.id,
                old.ti.try_number,
                &old.claim_id,
                TaskState::Failed
            )])
            .await
            .expect("finish"),
        vec![TransitionResult::Conflict],
        "a cleared try is not the worker's any more"
    );
    queue(store, &[ti(store, run.id, "a").await]).await;
    let new = second
        .claim(claim_request("w2", 1))
        .await
        .expect("claim")
        .remove(0);
    assert_eq!(new.ti.try_number, old.ti.try_number + 1);

    // The first worker's late report, for its old try or (confused) the new one, is fenced.
    let late = vec![
        report(
            old.ti.id,
            old.ti.try_number,
            &old.claim_id,
            TaskState::Success,
        ),
        report(
            new.ti.id,
            new.ti.try_number,
            &old.claim_id,
            TaskState::Success,
        ),
    ];
    assert_eq!(
        first.finish(late).await.expect("finish"),
        vec![TransitionResult::Conflict, TransitionResult::Conflict]
    );
    let stored = ti(store, run.id, "a").await;
    assert_eq!(
        (stored.state, stored.try_number, stored.claim_id.as_deref()),
        (
            TaskState::Running,
            new.ti.try_number,
            Some(new.claim_id.as_str())
        )
    );
    assert_eq!(stored.worker_id.as_deref(), Some("w2"));

    // The owner finishes; a second report of the finished try changes nothing.
    let own = report(
        new.ti.id,
        new.ti.try_number,
        &new.claim_id,
        TaskState::Success,
    );
    assert_eq!(
        second.finish(vec![own.clone()]).await.expect("finish"),
        vec![TransitionResult::Applied]
    );
    let again = FinishReport {
        state: TaskState::Failed,
        ..own
    };
    assert_eq!(
        second.finish(vec![again]).await.expect("finish"),
        vec![TransitionResult::Conflict]
    );
    assert_eq!(ti(store, run.id, "a").await.state, TaskState::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_read_the_dag_and_variables_and_announce_themselves() {
    let server = Server::start().await;
    let store = server.dyn_store();
    queued_run(store, &["a", "b"]).await;
    store.set_variable("k", "v").await.expect("set_variable");
    let worker = server.client();

    let dag = worker.dag_version(DAG_ID, 1).await.expect("dag_version");
    assert_eq!(dag, store.get_dag_version(DAG_ID, 1).await.expect("dag"));
    let missing = worker
        .dag_version(DAG_ID, 2)
        .await
        .expect_err("no version 2");
    assert!(
        matches!(&missing, updraft_store::StoreError::NotFound(_)),
        "{missing:?}"
    );
    // A dag_id that needs escaping in a path reaches the server whole.
    let odd = worker
        .dag_version("a b/c", 1)
        .await
        .expect_err("no such DAG");
    assert!(
        matches!(&odd, updraft_store::StoreError::NotFound(what) if what.contains("a b/c")),
        "{odd:?}"
    );
    assert_eq!(
        worker.variables().await.expect("variables"),
        vec![("k".to_string(), "v".to_string())]
    );
    // A Python task's needs: the DAG file at the run's version, and Variable.set.
    let source = worker.dag_source(DAG_ID, 1).await.expect("dag_source");
    let local = updraft_store::StoreExecution(server.store.clone())
        .dag_source(DAG_ID, 1)
        .await
        .expect("dag_source in-process");
    assert_eq!(source, local);
    assert!(!source.fileloc.is_empty());
    let missing = worker
        .dag_source(DAG_ID, 2)
        .await
        .expect_err("no version 2");
    assert!(
        matches!(&missing, updraft_store::StoreError::NotFound(_)),
        "{missing:?}"
    );
    worker.set_variable("k", "v2").await.expect("set_variable");
    worker.set_variable("new", "n").await.expect("set_variable");
    assert_eq!(
        store.get_variable("k").await.unwrap().as_deref(),
        Some("v2")
    );
    assert_eq!(
        store.get_variable("new").await.unwrap().as_deref(),
        Some("n")
    );
    // Connections, whole: the worker's templates read them (and its log masks them).
    let connection = updraft_store::ConnectionRecord {
        conn_id: "db".into(),
        conn_type: "postgres".into(),
        host: Some("db.example".into()),
        password: Some("secret-pw".into()),
        extra: Some(r#"{"sslmode":"require"}"#.into()),
        ..Default::default()
    };
    store
        .put_connection(connection.clone())
        .await
        .expect("put_connection");
    assert_eq!(
        worker.connections().await.expect("connections"),
        vec![connection]
    );

    worker
        .worker_heartbeat(JobHeartbeat {
            id: "w1".into(),
            kind: JobKind::Worker,
            hostname: "w1.example".into(),
            queues: vec!["default".into(), "gpu".into()],
            state: "draining".into(),
            now: chrono::DateTime::UNIX_EPOCH,
        })
        .await
        .expect("worker_heartbeat");
    let alive_since = Utc::now() - TimeDelta::minutes(1);
    let workers = store
        .list_jobs(Some(JobKind::Worker), alive_since)
        .await
        .expect("list_jobs");
    assert_eq!(workers.len(), 1, "{workers:?}");
    assert_eq!(
        (
            workers[0].id.as_str(),
            workers[0].state.as_str(),
            workers[0].queues.clone()
        ),
        (
            "w1",
            "draining",
            vec!["default".to_string(), "gpu".to_string()]
        )
    );
}
