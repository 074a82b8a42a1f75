//! Finishes in one round trip (`updraft_finish`): what they store and announce is what the
//! general path stores and announces, and a batch with any report the function cannot take
//! (a fenced try, a log tail that does not continue the stored log) goes the general way
//! whole, written once.

use std::time::Duration;

use tokio::sync::mpsc::Receiver;
use updraft_store::conformance::fixture::*;
use updraft_store::{
    BrowseStore, Change, ClaimedTask, FinishReport, FinishedTry, LogTail, Store, TaskState,
    TransitionResult,
};
use updraft_store_postgres::testing::TestPostgres;
use updraft_store_postgres::PostgresStore;

/// What the tests finish: three claimed tries of one run, and a scheduler's change stream on
/// another store (kept open with it).
struct Claimed {
    store: PostgresStore,
    scheduler: Listening,
    run: i64,
    claimed: Vec<ClaimedTask>,
}

/// A scheduler's change stream, with the store whose listener feeds it.
struct Listening {
    changes: Receiver<Change>,
    _store: PostgresStore,
}

async fn claimed_three(db: &TestPostgres) -> Claimed {
    claimed_tries(db, 3).await
}

async fn claimed_tries(db: &TestPostgres, count: usize) -> Claimed {
    let scheduler_store = db.open().await;
    let scheduler = scheduler_store
        .changes()
        .await
        .unwrap()
        .expect("PostgreSQL announces changes");
    let worker_side = db.open().await;
    let names: Vec<String> = (0..count)
        .map(|i| match i {
            0..3 => ["a", "b", "c"][i].to_string(),
            _ => format!("t{i:03}"),
        })
        .collect();
    let run = queued_run(
        &worker_side,
        "d",
        "r",
        names.iter().map(|name| task(name)).collect(),
    )
    .await;
    let mut claimed = claim(&worker_side, claim_request("w", None, count)).await;
    claimed.sort_by_key(|c| c.ti.task_id.clone());
    assert_eq!(claimed.len(), count);
    Claimed {
        store: worker_side,
        scheduler: Listening {
            changes: scheduler,
            _store: scheduler_store,
        },
        run: run.id,
        claimed,
    }
}

impl Listening {
    /// The tries the scheduler hears of, waiting for them a long while at most.
    async fn tries_heard(&mut self) -> Vec<FinishedTry> {
        loop {
            let change = tokio::time::timeout(Duration::from_secs(30), self.changes.recv())
                .await
                .expect("no finish heard")
                .expect("the change stream ended");
            if let Change::TriesFinished { tries, reread } = change {
                assert!(reread.is_empty(), "nothing to read again: {reread:?}");
                return tries;
            }
        }
    }
}

fn tail(offset: u64, data: &str) -> Option<LogTail> {
    Some(LogTail {
        offset,
        data: data.into(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_of_plain_finishes_is_stored_and_announced_whole() {
    let Some(db) = TestPostgres::create().await else {
        return;
    };
    let Claimed {
        store,
        mut scheduler,
        run,
        claimed,
    } = claimed_three(&db).await;
    let reports = vec![
        FinishReport {
            log_tail: tail(0, "hello\n"),
            ..report(&claimed[0], TaskState::Success)
        },
        FinishReport {
            next_retry_at: Some(at(30)),
            ..report(&claimed[1], TaskState::UpForRetry)
        },
        FinishReport {
            infrastructure_failure: true,
            log_tail: tail(0, ""),
            ..report(&claimed[2], TaskState::Failed)
        },
    ];
    let results = store.finish(reports.clone()).await.unwrap();
    assert_eq!(results, vec![TransitionResult::Applied; 3]);

    let expected: Vec<FinishedTry> = reports
        .iter()
        .map(|r| FinishedTry::from_report(run, r))
        .collect();
    assert_eq!(scheduler.tries_heard().await, expected);

    let states: Vec<(String, TaskState)> = store
        .task_instances(run)
        .await
        .unwrap()
        .into_iter()
        .map(|ti| (ti.task_id, ti.state))
        .collect();
    assert_eq!(
        states,
        vec![
            ("a".to_string(), TaskState::Success),
            ("b".to_string(), TaskState::UpForRetry),
            ("c".to_string(), TaskState::Failed),
        ]
    );
    let b = ti(&store, run, "b").await;
    assert_eq!(b.next_retry_at, Some(at(30)));
    assert_eq!(b.end_date, Some(at(5)));
    let c = ti(&store, run, "c").await;
    assert_eq!(c.infra_failures, 1);
    for (claimed, state, infra) in [
        (&claimed[0], TaskState::Success, false),
        (&claimed[1], TaskState::UpForRetry, false),
        (&claimed[2], TaskState::Failed, true),
    ] {
        let tries = store.task_tries(claimed.ti.id).await.unwrap();
        assert_eq!(tries.len(), 1, "one history row for {}", claimed.ti.task_id);
        assert_eq!(
            (tries[0].state, tries[0].infrastructure_failure),
            (state, infra)
        );
        assert_eq!(tries[0].worker_id.as_deref(), Some("w"));
    }
    let log = store.read_log(claimed[0].ti.id, claimed[0].ti.try_number);
    assert_eq!(log.await.unwrap().as_deref(), Some("hello\n"));
    let log = store.read_log(claimed[2].ti.id, claimed[2].ti.try_number);
    assert_eq!(log.await.unwrap(), None, "an empty tail stores nothing");

    // Reported again (a worker that did not hear the answer): refused, nothing written twice.
    let again = store.finish(reports).await.unwrap();
    assert_eq!(again, vec![TransitionResult::Conflict; 3]);
    let tries = store.task_tries(claimed[0].ti.id).await.unwrap();
    assert_eq!(tries.len(), 1);
    let log = store.read_log(claimed[0].ti.id, claimed[0].ti.try_number);
    assert_eq!(log.await.unwrap().as_deref(), Some("hello\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_with_a_fenced_try_or_a_gap_in_a_log_goes_the_general_way_whole() {
    let Some(db) = TestPostgres::create().await else {
        return;
    };
    let Claimed {
        store,
        mut scheduler,
        run,
        claimed,
    } = claimed_three(&db).await;
    let fenced = FinishReport {
        claim_id: "not-the-claim".into(),
        ..report(&claimed[1], TaskState::Success)
    };
    let results = store
        .finish(vec![
            FinishReport {
                log_tail: tail(0, "first\n"),
                ..report(&claimed[0], TaskState::Success)
            },
            fenced,
        ])
        .await
        .unwrap();
    assert_eq!(
        results,
        vec![TransitionResult::Applied, TransitionResult::Conflict]
    );
    let heard = scheduler.tries_heard().await;
    assert_eq!(heard.len(), 1, "{heard:?}");
    assert_eq!(heard[0].ti_id, claimed[0].ti.id);
    assert_eq!(ti(&store, run, "b").await.state, TaskState::Running);
    assert_eq!(store.task_tries(claimed[0].ti.id).await.unwrap().len(), 1);
    let log = store.read_log(claimed[0].ti.id, claimed[0].ti.try_number);
    assert_eq!(log.await.unwrap().as_deref(), Some("first\n"));

    // A report named twice in one batch: applied once.
    let twice = report(&claimed[1], TaskState::Success);
    let results = store
        .finish(vec![twice.clone(), twice.clone()])
        .await
        .unwrap();
    assert_eq!(
        results,
        vec![TransitionResult::Applied, TransitionResult::Conflict]
    );
    assert_eq!(scheduler.tries_heard().await.len(), 1);
    assert_eq!(store.task_tries(claimed[1].ti.id).await.unwrap().len(), 1);

    // A tail past the end of the stored log (a chunk lost on the way) cannot be placed: the
    // state is recorded all the same.
    let results = store
        .finish(vec![FinishReport {
            log_tail: tail(100, "late\n"),
            ..report(&claimed[2], TaskState::Failed)
        }])
        .await
        .unwrap();
    assert_eq!(results, vec![TransitionResult::Applied]);
    assert_eq!(ti(&store, run, "c").await.state, TaskState::Failed);
    let heard = scheduler.tries_heard().await;
    assert_eq!(
        heard,
        vec![FinishedTry::from_report(
            run,
            &report(&claimed[2], TaskState::Failed)
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_finish_of_more_tries_than_an_announcement_holds_names_the_run_instead() {
    let Some(db) = TestPostgres::create().await else {
        return;
    };
    let Claimed {
        store,
        mut scheduler,
        run,
        claimed,
    } = claimed_tries(&db, 120).await;
    let reports: Vec<FinishReport> = claimed
        .iter()
        .map(|c| report(c, TaskState::Success))
        .collect();
    let results = store.finish(reports).await.unwrap();
    assert_eq!(results, vec![TransitionResult::Applied; 120]);
    // 120 tries do not fit in PostgreSQL's 8000 bytes: the scheduler reads the run instead.
    let heard = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match scheduler.changes.recv().await {
                Some(Change::Runs(runs)) if runs == vec![run] => return true,
                Some(Change::TriesFinished { .. }) | None => return false,
                Some(_) => continue,
            }
        }
    })
    .await
    .expect("no finish heard");
    assert!(heard, "the run named, not its tries");
    let states = store.task_instances(run).await.unwrap();
    assert!(states.iter().all(|ti| ti.state == TaskState::Success));
}
