//! Checks of what several processes share: queueing within limits, which scheduler owns which
//! run, process heartbeats, pools, and logs sent by remote workers.

use std::sync::Arc;

use super::fixture::*;
use super::TestDatabase;
use crate::{
    FinishReport, JobHeartbeat, JobKind, LogAppend, LogChunk, LogTail, OwnRuns, PoolRecord,
    QueueItem, Store, TaskState, TransitionResult,
};

/// Moves every task of run `dag_run_id` to `scheduled`; returns the queue items for them.
async fn scheduled_items(
    store: &dyn Store,
    dag_run_id: i64,
    pool: &str,
    max_active_tasks: u32,
) -> Vec<QueueItem> {
    let mut items = Vec::new();
    for ti in store
        .task_instances(dag_run_id)
        .await
        .expect("task_instances")
    {
        apply(store, transition(&ti, TaskState::Scheduled)).await;
        items.push(QueueItem {
            ti_id: ti.id,
            try_number: ti.try_number,
            dag_id: ti.dag_id.clone(),
            pool: pool.to_string(),
            queue: ti.queue.clone(),
            dag_run_id: ti.dag_run_id,
            max_active_tasks,
            task_limits: None,
            resumes: false,
        });
    }
    items
}

/// An instance named twice in one queueing is queued by the item that matches it, and once.
pub async fn queue_takes_the_matching_one_of_an_instance_named_twice(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    let run = create(&*store, new_run("d", "r", vec![task("a")])).await;
    let items = scheduled_items(&*store, run.id, "default_pool", 16).await;
    let stale = QueueItem {
        try_number: items[0].try_number + 1,
        ..items[0].clone()
    };
    let named_thrice = vec![stale, items[0].clone(), items[0].clone()];
    let results = store.queue(named_thrice, at(1)).await.expect("queue");
    use TransitionResult::*;
    assert_eq!(results, vec![Conflict, Applied, Conflict]);
    let a = ti(&*store, run.id, "a").await;
    assert_eq!((a.state, a.try_number), (TaskState::Queued, 1));
}

/// A pass's plan and its queueing together: the items see what the plan scheduled, a
/// transition that lost its race changes nothing and leaves its item unqueued, and the limits
/// hold as in a queueing of its own.
pub async fn queue_planned_queues_what_its_plan_schedules(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d", "e"]).await;
    let run = create(
        &*store,
        new_run("d", "r", vec![task("a"), task("b"), task("c")]),
    )
    .await;
    let (a, b, c) = (
        ti(&*store, run.id, "a").await,
        ti(&*store, run.id, "b").await,
        ti(&*store, run.id, "c").await,
    );
    let item = |ti: &crate::TaskInstance| QueueItem {
        ti_id: ti.id,
        try_number: ti.try_number,
        dag_id: ti.dag_id.clone(),
        pool: ti.pool.clone(),
        queue: ti.queue.clone(),
        dag_run_id: ti.dag_run_id,
        max_active_tasks: 1,
        task_limits: None,
        resumes: false,
    };
    let plan = vec![
        transition(&a, TaskState::Scheduled),
        transition(&b, TaskState::Scheduled),
        crate::Transition {
            try_number: 7,
            ..transition(&c, TaskState::Scheduled)
        },
    ];
    let (applied, queued) = store
        .queue_planned(plan, vec![item(&c), item(&a), item(&b)], 32, at(2))
        .await
        .expect("queue_planned");
    use TransitionResult::*;
    assert_eq!(applied, vec![Applied, Applied, Conflict]);
    assert_eq!(
        queued,
        vec![Conflict, Applied, Conflict],
        "c was not scheduled; b does not fit in the DAG's one place a took"
    );
    let a = ti(&*store, run.id, "a").await;
    assert_eq!(
        (a.state, a.try_number, a.queued_at),
        (TaskState::Queued, 1, Some(at(2)))
    );
    assert_eq!(ti(&*store, run.id, "b").await.state, TaskState::Scheduled);
    assert_eq!(
        ti(&*store, run.id, "c").await,
        c,
        "a conflict changes nothing"
    );

    // Without a plan it is a queueing: b fits once a has finished.
    let claimed = claim_one(&*store, "w").await;
    assert_eq!(
        finish(&*store, report(&claimed, TaskState::Success)).await,
        Applied
    );
    let b = ti(&*store, run.id, "b").await;
    assert_eq!(
        store
            .queue_planned(Vec::new(), vec![item(&b)], 32, at(3))
            .await
            .expect("queue_planned"),
        (Vec::new(), vec![Applied])
    );

    // A plan the state machine forbids is refused whole.
    let b = ti(&*store, run.id, "b").await;
    let refused = store
        .queue_planned(
            vec![
                transition(&c, TaskState::Scheduled),
                transition(&b, TaskState::Scheduled),
            ],
            Vec::new(),
            32,
            at(4),
        )
        .await;
    assert!(
        matches!(refused, Err(crate::StoreError::IllegalTransition(_))),
        "{refused:?}"
    );
    assert_eq!(ti(&*store, run.id, "c").await, c);

    // The scheduler's parallelism counts the instances of every DAG: b holds the one place.
    let other = create(&*store, new_run("e", "r", vec![task("x")])).await;
    let x = ti(&*store, other.id, "x").await;
    assert_eq!(
        store
            .queue_planned(
                vec![transition(&x, TaskState::Scheduled)],
                vec![item(&x)],
                1,
                at(5)
            )
            .await
            .expect("queue_planned"),
        (vec![Applied], vec![Conflict])
    );
    assert_eq!(ti(&*store, other.id, "x").await.state, TaskState::Scheduled);
    assert_eq!(
        store
            .queue_planned(Vec::new(), vec![item(&x)], 2, at(5))
            .await
            .expect("queue_planned"),
        (Vec::new(), vec![Applied])
    );

    // Two changes of one instance apply in order.
    let third = create(&*store, new_run("e", "r2", vec![task("y")])).await;
    let y = ti(&*store, third.id, "y").await;
    let scheduled = transition(&y, TaskState::Scheduled);
    let skipped = crate::Transition {
        from: TaskState::Scheduled,
        ..transition(&y, TaskState::Skipped)
    };
    assert_eq!(
        store
            .queue_planned(vec![scheduled, skipped], Vec::new(), 32, at(6))
            .await
            .expect("queue_planned"),
        (vec![Applied, Applied], Vec::new())
    );
    assert_eq!(ti(&*store, third.id, "y").await.state, TaskState::Skipped);
}

pub async fn queue_admits_within_max_active_tasks(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    let run = create(
        &*store,
        new_run("d", "r", vec![task("a"), task("b"), task("c")]),
    )
    .await;
    let items = scheduled_items(&*store, run.id, "default_pool", 2).await;
    let results = store.queue(items.clone(), at(1)).await.expect("queue");
    use TransitionResult::*;
    assert_eq!(results, vec![Applied, Applied, Conflict]);
    let a = ti(&*store, run.id, "a").await;
    assert_eq!(
        (a.state, a.try_number, a.queued_at),
        (TaskState::Queued, 1, Some(at(1)))
    );
    assert_eq!(ti(&*store, run.id, "c").await.state, TaskState::Scheduled);
    // Already queued: a compare-and-set on `scheduled` no longer matches.
    let again = store
        .queue(items[..1].to_vec(), at(1))
        .await
        .expect("queue");
    assert_eq!(again, vec![Conflict]);
    // A finished task frees its place.
    let claimed = claim_one(&*store, "w").await;
    assert_eq!(
        finish(&*store, report(&claimed, TaskState::Success)).await,
        Applied
    );
    let results = store
        .queue(items[2..].to_vec(), at(6))
        .await
        .expect("queue");
    assert_eq!(results, vec![Applied]);
}

pub async fn queue_admits_within_pool_slots(db: &dyn TestDatabase) {
    let store = db.open().await;
    store
        .set_pool(PoolRecord {
            name: "small".into(),
            slots: 1,
            description: None,
        })
        .await
        .expect("set_pool");
    publish(&*store, &["d", "e"]).await;
    let first = create(&*store, new_run("d", "r", vec![task("a"), task("b")])).await;
    let second = create(&*store, new_run("e", "r", vec![task("a")])).await;
    let mut items = scheduled_items(&*store, first.id, "small", 16).await;
    items.extend(scheduled_items(&*store, second.id, "small", 16).await);
    let results = store.queue(items, at(1)).await.expect("queue");
    use TransitionResult::*;
    assert_eq!(
        results,
        vec![Applied, Conflict, Conflict],
        "one slot across DAGs"
    );
    // A pool without a row is unlimited.
    let third = create(&*store, new_run("d", "r2", vec![task("a"), task("b")])).await;
    let items = scheduled_items(&*store, third.id, "nowhere", 16).await;
    let results = store.queue(items, at(1)).await.expect("queue");
    assert_eq!(results, vec![Applied, Applied]);
}

pub async fn pools_can_be_set_listed_and_deleted(db: &dyn TestDatabase) {
    let store = db.open().await;
    let names = |pools: Vec<PoolRecord>| -> Vec<(String, u32)> {
        pools.into_iter().map(|p| (p.name, p.slots)).collect()
    };
    assert_eq!(
        names(store.list_pools().await.expect("list_pools")),
        vec![("default_pool".to_string(), 128)]
    );
    let gpu = PoolRecord {
        name: "gpu".into(),
        slots: 2,
        description: Some("two cards".into()),
    };
    store.set_pool(gpu.clone()).await.expect("set_pool");
    store
        .set_pool(PoolRecord {
            slots: 4,
            ..gpu.clone()
        })
        .await
        .expect("set_pool");
    let pools = store.list_pools().await.expect("list_pools");
    assert_eq!(pools[1], PoolRecord { slots: 4, ..gpu });
    assert!(store.delete_pool("gpu").await.expect("delete_pool"));
    assert!(!store.delete_pool("gpu").await.expect("delete_pool"));
    assert_eq!(store.list_pools().await.expect("list_pools").len(), 1);
}

fn own(scheduler_id: &str, now: i64, lease_until: i64, max_owned: usize) -> OwnRuns {
    OwnRuns {
        scheduler_id: scheduler_id.to_string(),
        now: at(now),
        lease_until: at(lease_until),
        max_owned,
    }
}

fn run_ids(runs: &[crate::DagRun]) -> Vec<&str> {
    runs.iter().map(|r| r.run_id.as_str()).collect()
}

pub async fn own_dag_runs_adopts_unowned_runs_up_to_max_owned(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    for run_id in ["r1", "r2", "r3"] {
        create(&*store, new_run("d", run_id, vec![task("a")])).await;
    }
    let first = store.own_dag_runs(own("s1", 1, 5, 2)).await.expect("own");
    assert_eq!(run_ids(&first), vec!["r1", "r2"]);
    let second = store.own_dag_runs(own("s2", 1, 5, 10)).await.expect("own");
    assert_eq!(
        run_ids(&second),
        vec!["r3"],
        "runs of a live owner are left to it"
    );
    // Renewing keeps what is owned, even beyond a smaller share.
    let renewed = store.own_dag_runs(own("s1", 2, 6, 1)).await.expect("own");
    assert_eq!(run_ids(&renewed), vec!["r1", "r2"]);
}

pub async fn own_dag_runs_adopts_runs_whose_owner_lease_ran_out(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    create(&*store, new_run("d", "r1", vec![task("a")])).await;
    assert_eq!(
        store
            .own_dag_runs(own("s1", 1, 5, 10))
            .await
            .expect("own")
            .len(),
        1
    );
    assert!(store
        .own_dag_runs(own("s2", 4, 8, 10))
        .await
        .expect("own")
        .is_empty());
    let adopted = store.own_dag_runs(own("s2", 6, 10, 10)).await.expect("own");
    assert_eq!(run_ids(&adopted), vec!["r1"]);
    assert!(
        store
            .own_dag_runs(own("s1", 7, 11, 10))
            .await
            .expect("own")
            .is_empty(),
        "the old owner lost it"
    );
}

pub async fn own_dag_runs_leaves_finished_runs_and_runs_with_a_runner(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    let done = create(&*store, new_run("d", "done", vec![task("a")])).await;
    store
        .set_dag_run_state(done.id, done.state, crate::DagRunState::Success, at(1))
        .await
        .expect("set_dag_run_state");
    let tested = create(
        &*store,
        crate::NewDagRun {
            runner: Some("cli:1".into()),
            ..new_run("d", "tested", vec![task("a")])
        },
    )
    .await;
    assert!(store
        .own_dag_runs(own("s1", 1, 5, 10))
        .await
        .expect("own")
        .is_empty());
    store
        .release_dag_run(tested.id)
        .await
        .expect("release_dag_run");
    let owned = store.own_dag_runs(own("s1", 1, 5, 10)).await.expect("own");
    assert_eq!(run_ids(&owned), vec!["tested"]);
}

pub async fn released_runs_are_adopted_at_once(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    create(&*store, new_run("d", "r1", vec![task("a")])).await;
    assert_eq!(
        store
            .own_dag_runs(own("s1", 1, 50, 10))
            .await
            .expect("own")
            .len(),
        1
    );
    store.release_owned_dag_runs("s1").await.expect("release");
    let adopted = store.own_dag_runs(own("s2", 2, 6, 10)).await.expect("own");
    assert_eq!(run_ids(&adopted), vec!["r1"]);
}

fn beat(id: &str, kind: JobKind, minutes: i64) -> JobHeartbeat {
    JobHeartbeat {
        id: id.to_string(),
        kind,
        hostname: "host-a".to_string(),
        queues: vec!["default".to_string(), "gpu".to_string()],
        state: "running".to_string(),
        now: at(minutes),
    }
}

pub async fn job_heartbeats_are_listed_while_alive_and_forgotten_when_ended(db: &dyn TestDatabase) {
    let store = db.open().await;
    store
        .job_heartbeat(beat("w1", JobKind::Worker, 1))
        .await
        .expect("beat");
    store
        .job_heartbeat(beat("s1", JobKind::Scheduler, 1))
        .await
        .expect("beat");
    store
        .job_heartbeat(JobHeartbeat {
            state: "draining".into(),
            ..beat("w1", JobKind::Worker, 3)
        })
        .await
        .expect("beat");
    let all = store.list_jobs(None, at(0)).await.expect("list_jobs");
    let ids: Vec<&str> = all.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, vec!["s1", "w1"], "ordered by kind, then id");
    let worker = &all[1];
    assert_eq!(worker.kind, JobKind::Worker);
    assert_eq!(worker.state, "draining");
    assert_eq!(worker.queues, vec!["default", "gpu"]);
    assert_eq!((worker.started_at, worker.latest_heartbeat), (at(1), at(3)));
    let alive = store.list_jobs(None, at(2)).await.expect("list_jobs");
    assert_eq!(alive.len(), 1, "s1 last beat before at(2)");
    let schedulers = store
        .list_jobs(Some(JobKind::Scheduler), at(0))
        .await
        .expect("list_jobs");
    assert_eq!(schedulers.len(), 1);
    store.end_job("w1").await.expect("end_job");
    assert_eq!(
        store.list_jobs(None, at(0)).await.expect("list_jobs").len(),
        1
    );
}

fn chunk(claimed: &crate::ClaimedTask, offset: u64, data: &str) -> LogChunk {
    LogChunk {
        ti_id: claimed.ti.id,
        try_number: claimed.ti.try_number,
        claim_id: claimed.claim_id.clone(),
        offset,
        data: data.to_string(),
    }
}

pub async fn logs_are_stored_once_in_order(db: &dyn TestDatabase) {
    let store = db.open().await;
    queued_run(&*store, "d", "r", vec![task("a")]).await;
    let claimed = claim_one(&*store, "w").await;
    let (id, try_number) = (claimed.ti.id, claimed.ti.try_number);
    assert_eq!(
        store.read_log(id, try_number).await.expect("read_log"),
        None
    );
    let append = |c| store.append_log(c);
    assert_eq!(
        append(chunk(&claimed, 0, "one\n")).await.expect("append"),
        LogAppend::Stored { length: 4 }
    );
    assert_eq!(
        append(chunk(&claimed, 0, "one\n")).await.expect("append"),
        LogAppend::Stored { length: 4 },
        "a chunk sent twice is kept once"
    );
    assert_eq!(
        append(chunk(&claimed, 9, "later\n")).await.expect("append"),
        LogAppend::Gap { length: 4 }
    );
    assert_eq!(
        append(chunk(&claimed, 0, "one\ntwo\n"))
            .await
            .expect("append"),
        LogAppend::Stored { length: 8 },
        "an overlapping chunk adds only what is new"
    );
    assert_eq!(
        append(chunk(&claimed, 8, "thrée\n")).await.expect("append"),
        LogAppend::Stored { length: 15 }
    );
    assert_eq!(
        store
            .read_log(id, try_number)
            .await
            .expect("read_log")
            .as_deref(),
        Some("one\ntwo\nthrée\n")
    );
    assert_eq!(
        store.read_log(id, try_number + 1).await.expect("read_log"),
        None
    );
    // Chunks: "one\n" at 0, "two\n" at 4, "thrée\n" at 8. A follower at byte 6 gets the
    // chunk holding it and what follows, never the chunks before.
    let from = |at| store.read_log_from(id, try_number, at);
    assert_eq!(
        from(6).await.expect("read_log_from"),
        Some((4, "two\nthrée\n".to_string()))
    );
    assert_eq!(
        from(8).await.expect("read_log_from"),
        Some((8, "thrée\n".to_string()))
    );
    assert_eq!(
        from(0).await.expect("read_log_from"),
        Some((0, "one\ntwo\nthrée\n".to_string()))
    );
    assert_eq!(
        from(100).await.expect("read_log_from"),
        Some((8, "thrée\n".to_string())),
        "past the end: the last chunk, which the reader skips"
    );
}

pub async fn logs_from_a_claim_that_lost_the_try_are_fenced(db: &dyn TestDatabase) {
    let store = db.open().await;
    let run = queued_run(&*store, "d", "r", vec![task("a")]).await;
    let claimed = claim_one(&*store, "w").await;
    let stale = crate::ClaimedTask {
        claim_id: "not-the-claim".into(),
        ..claimed.clone()
    };
    assert_eq!(
        store
            .append_log(chunk(&stale, 0, "x\n"))
            .await
            .expect("append"),
        LogAppend::Fenced
    );
    // Cleared while running, then run again: the old claim may not write the new try.
    store
        .clear_task_instances(run.id, &["a".to_string()], at(3))
        .await
        .expect("clear");
    assert_eq!(
        finish(&*store, report(&claimed, TaskState::Failed)).await,
        TransitionResult::Conflict,
        "a cleared try is reset to none"
    );
    let again = ti(&*store, run.id, "a").await;
    queue(&*store, &again).await;
    let retry = claim_one(&*store, "w2").await;
    assert_eq!(
        store
            .append_log(chunk(&claimed, 0, "old\n"))
            .await
            .expect("append"),
        LogAppend::Fenced
    );
    assert_eq!(
        store
            .append_log(chunk(&retry, 0, "new\n"))
            .await
            .expect("append"),
        LogAppend::Stored { length: 4 }
    );
    assert_eq!(
        store
            .append_log(LogChunk {
                try_number: claimed.ti.try_number,
                ..chunk(&retry, 4, "x")
            })
            .await
            .expect("append"),
        LogAppend::Fenced,
        "the try number must match too"
    );
}

/// The end of a log sent with the finish report is stored with it, like a chunk: after what
/// the server has, once, and never for a claim that lost its try.
pub async fn a_log_tail_is_stored_with_the_finish_report(db: &dyn TestDatabase) {
    let store = db.open().await;
    queued_run(&*store, "d", "r", vec![task("a"), task("b")]).await;
    let log = |claimed: &crate::ClaimedTask| {
        let store = Arc::clone(&store);
        let (id, try_number) = (claimed.ti.id, claimed.ti.try_number);
        async move { store.read_log(id, try_number).await.expect("read_log") }
    };
    let tail = |offset: u64, data: &str| {
        Some(LogTail {
            offset,
            data: data.to_string(),
        })
    };
    let first = claim_one(&*store, "w").await;
    store
        .append_log(chunk(&first, 0, "one\n"))
        .await
        .expect("append");
    let done = FinishReport {
        log_tail: tail(0, "one\ntwo\n"),
        ..report(&first, TaskState::Success)
    };
    assert_eq!(
        finish(&*store, done.clone()).await,
        TransitionResult::Applied
    );
    assert_eq!(
        log(&first).await.as_deref(),
        Some("one\ntwo\n"),
        "only what the server did not have is added"
    );
    assert_eq!(
        finish(&*store, done).await,
        TransitionResult::Conflict,
        "a report sent twice"
    );
    assert_eq!(
        log(&first).await.as_deref(),
        Some("one\ntwo\n"),
        "and its tail are applied once"
    );

    let second = claim_one(&*store, "w").await;
    let fenced = FinishReport {
        claim_id: "not-the-claim".into(),
        log_tail: tail(0, "lost\n"),
        ..report(&second, TaskState::Success)
    };
    assert_eq!(finish(&*store, fenced).await, TransitionResult::Conflict);
    assert_eq!(
        log(&second).await,
        None,
        "another claim may not write the try's log"
    );
    let done = FinishReport {
        log_tail: tail(0, "two\n"),
        ..report(&second, TaskState::Failed)
    };
    assert_eq!(finish(&*store, done).await, TransitionResult::Applied);
    assert_eq!(log(&second).await.as_deref(), Some("two\n"));

    // Several reports in one finish: a tail that continues the stored log, one that overlaps
    // it, one whose claim lost the try, one that starts a log.
    queued_run(
        &*store,
        "d",
        "r2",
        vec![task("a"), task("b"), task("c"), task("e")],
    )
    .await;
    let claimed = claim(&*store, claim_request("w", None, 4)).await;
    assert_eq!(claimed.len(), 4);
    let (continued, overlapping, lost, fresh) =
        (&claimed[0], &claimed[1], &claimed[2], &claimed[3]);
    for (c, text) in [(continued, "1\n"), (overlapping, "1\n2\n")] {
        store.append_log(chunk(c, 0, text)).await.expect("append");
    }
    let reports = vec![
        FinishReport {
            log_tail: tail(2, "2\n"),
            ..report(continued, TaskState::Success)
        },
        FinishReport {
            log_tail: tail(2, "2\n3\n"),
            ..report(overlapping, TaskState::Success)
        },
        FinishReport {
            claim_id: "not-the-claim".into(),
            log_tail: tail(0, "lost\n"),
            ..report(lost, TaskState::Success)
        },
        FinishReport {
            log_tail: tail(0, "only\n"),
            ..report(fresh, TaskState::Failed)
        },
    ];
    let results = store.finish(reports).await.expect("finish");
    use TransitionResult::{Applied, Conflict};
    assert_eq!(results, vec![Applied, Applied, Conflict, Applied]);
    assert_eq!(log(continued).await.as_deref(), Some("1\n2\n"));
    assert_eq!(log(overlapping).await.as_deref(), Some("1\n2\n3\n"));
    assert_eq!(log(lost).await, None);
    assert_eq!(log(fresh).await.as_deref(), Some("only\n"));
}
