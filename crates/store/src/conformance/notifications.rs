//! Checks of the notification outbox: stored with the change that causes it (or not at all),
//! claimed by one deliverer at a time, taken over after a claim expires, retried and given up.

use std::time::Duration;

use serde_json::json;
use updraft_model::{DagRunState, NotificationEvent, Notifier, TaskState};

use super::fixture::*;
use super::TestDatabase;
use crate::{
    DeliveryOutcome, NewNotification, NotificationClaim, NotificationState, Transition,
    TransitionNotifications, TransitionResult, TryEffects,
};

fn notification(dag_id: &str, minutes: i64, dedupe_key: Option<&str>) -> NewNotification {
    NewNotification {
        event: NotificationEvent::TaskFailure,
        dag_id: dag_id.into(),
        run_id: Some("r".into()),
        task_id: Some("a".into()),
        map_index: Some(-1),
        try_number: Some(1),
        notifier: Notifier::Webhook {
            url: Some("http://127.0.0.1:9/hook".into()),
            http_conn_id: None,
            endpoint: String::new(),
            headers: Default::default(),
        },
        context: json!({"state": "failed", "exception": "boom"}),
        dedupe_key: dedupe_key.map(Into::into),
        created_at: at(minutes),
    }
}

fn claim(deliverer: &str, minutes: i64, limit: u32) -> NotificationClaim {
    NotificationClaim {
        deliverer: deliverer.into(),
        now: at(minutes),
        lease: Duration::from_secs(60),
        limit,
    }
}

pub async fn notifications_round_trip_and_a_dedupe_key_is_stored_once(db: &dyn TestDatabase) {
    let store = db.open().await;
    let first = notification("d", 1, Some("deadline:1:0"));
    let ids = store
        .add_notifications(vec![first.clone(), notification("e", 2, None)])
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    let again = store
        .add_notifications(vec![notification("d", 3, Some("deadline:1:0"))])
        .await
        .unwrap();
    assert!(again.is_empty(), "a taken dedupe key stores nothing");

    let of_d = store.list_notifications(Some("d"), 10).await.unwrap();
    assert_eq!(of_d.len(), 1);
    let stored = &of_d[0];
    assert_eq!(stored.id, ids[0]);
    assert_eq!(stored.new, first);
    assert_eq!(stored.state, NotificationState::Pending);
    assert_eq!(stored.attempts, 0);
    assert_eq!(stored.next_attempt_at, at(1));
    assert_eq!(stored.claimed_by, None);
    assert_eq!(store.list_notifications(None, 10).await.unwrap().len(), 2);
    assert_eq!(store.next_notification_due().await.unwrap(), Some(at(1)));
}

pub async fn a_notification_is_claimed_by_one_deliverer_until_its_claim_expires(
    db: &dyn TestDatabase,
) {
    let store = db.open().await;
    let other = db.open().await;
    let ids = store
        .add_notifications(vec![notification("d", 1, None), notification("d", 1, None)])
        .await
        .unwrap();
    // Not due yet for a claim before its time.
    assert!(store
        .claim_notifications(claim("w1", 0, 10))
        .await
        .unwrap()
        .is_empty());
    let mine = store.claim_notifications(claim("w1", 1, 1)).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].id, ids[0], "oldest first");
    assert_eq!(mine[0].attempts, 1);
    assert_eq!(mine[0].claimed_by.as_deref(), Some("w1"));
    assert_eq!(mine[0].claim_until, Some(at(2)));

    // Another process only gets the one left.
    let theirs = other.claim_notifications(claim("w2", 1, 10)).await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].id, ids[1]);
    assert_eq!(
        other
            .finish_notification(ids[1], "w2", DeliveryOutcome::Delivered, at(1))
            .await
            .unwrap(),
        TransitionResult::Applied
    );

    // w1's claim ran out at 2: w2 takes it over, as a second attempt, and w1's late report
    // changes nothing.
    let taken = other.claim_notifications(claim("w2", 3, 10)).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].id, mine[0].id);
    assert_eq!(taken[0].attempts, 2);
    assert_eq!(
        store
            .finish_notification(mine[0].id, "w1", DeliveryOutcome::Delivered, at(3))
            .await
            .unwrap(),
        TransitionResult::Conflict
    );
    assert_eq!(
        other
            .finish_notification(taken[0].id, "w2", DeliveryOutcome::Delivered, at(4))
            .await
            .unwrap(),
        TransitionResult::Applied
    );
    let done = store.list_notifications(Some("d"), 10).await.unwrap();
    let delivered = done.iter().find(|n| n.id == mine[0].id).unwrap();
    assert_eq!(delivered.state, NotificationState::Delivered);
    assert_eq!(delivered.delivered_at, Some(at(4)));
    assert_eq!(delivered.claimed_by, None);
    // A delivered notification is never claimed again.
    assert!(store
        .claim_notifications(claim("w3", 100, 10))
        .await
        .unwrap()
        .iter()
        .all(|n| n.id != mine[0].id));
}

pub async fn concurrent_notification_claims_never_share_an_entry(db: &dyn TestDatabase) {
    let store = db.open().await;
    let batch: Vec<_> = (0..40).map(|_| notification("d", 1, None)).collect();
    store.add_notifications(batch).await.unwrap();
    let mut handles = Vec::new();
    for w in 0..4 {
        let store = db.open().await;
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let claimed = store
                    .claim_notifications(claim(&format!("w{w}"), 1, 3))
                    .await
                    .unwrap();
                if claimed.is_empty() {
                    return got;
                }
                got.extend(claimed.into_iter().map(|n| n.id));
            }
        }));
    }
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await.unwrap());
    }
    all.sort();
    let total = all.len();
    all.dedup();
    assert_eq!(total, 40, "every entry claimed");
    assert_eq!(all.len(), 40, "none claimed twice");
}

pub async fn a_failed_attempt_waits_for_its_retry_and_a_last_one_gives_up(db: &dyn TestDatabase) {
    let store = db.open().await;
    store
        .add_notifications(vec![notification("d", 1, None)])
        .await
        .unwrap();
    let first = store.claim_notifications(claim("w", 1, 1)).await.unwrap();
    let id = first[0].id;
    let retry = DeliveryOutcome::Retry {
        error: "connection refused".into(),
        retry_at: at(5),
    };
    assert_eq!(
        store
            .finish_notification(id, "w", retry, at(1))
            .await
            .unwrap(),
        TransitionResult::Applied
    );
    assert!(store
        .claim_notifications(claim("w", 4, 1))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.next_notification_due().await.unwrap(), Some(at(5)));
    let second = store.claim_notifications(claim("w", 5, 1)).await.unwrap();
    assert_eq!(second[0].id, id);
    assert_eq!(second[0].attempts, 2);
    assert_eq!(second[0].last_error.as_deref(), Some("connection refused"));
    let give_up = DeliveryOutcome::GaveUp {
        error: "HTTP 500".into(),
    };
    store
        .finish_notification(id, "w", give_up, at(5))
        .await
        .unwrap();
    let stored = &store.list_notifications(Some("d"), 1).await.unwrap()[0];
    assert_eq!(stored.state, NotificationState::Failed);
    assert_eq!(stored.last_error.as_deref(), Some("HTTP 500"));
    assert_eq!(store.next_notification_due().await.unwrap(), None);
    assert!(store
        .claim_notifications(claim("w", 100, 1))
        .await
        .unwrap()
        .is_empty());
}

pub async fn notifications_are_stored_only_with_the_change_that_causes_them(db: &dyn TestDatabase) {
    let store = db.open().await;
    let run = queued_run(&*store, "d", "r", vec![task("a")]).await;
    let claimed = claim_one(&*store, "w").await;
    let mut stale = report(&claimed, TaskState::Failed);
    stale.claim_id = "someone-else".into();
    stale.effects = TryEffects {
        notifications: vec![notification("d", 5, None)],
        ..TryEffects::default()
    };
    assert_eq!(finish(&*store, stale).await, TransitionResult::Conflict);
    assert!(store
        .list_notifications(Some("d"), 10)
        .await
        .unwrap()
        .is_empty());

    let mut failed = report(&claimed, TaskState::Failed);
    failed.effects.notifications = vec![notification("d", 5, None)];
    assert_eq!(finish(&*store, failed).await, TransitionResult::Applied);
    assert_eq!(
        store.list_notifications(Some("d"), 10).await.unwrap().len(),
        1
    );

    // A run's end: stored with the change; a lost compare-and-set stores nothing.
    let mut dag_failure = notification("d", 6, None);
    dag_failure.event = NotificationEvent::DagFailure;
    dag_failure.task_id = None;
    let lost = store
        .end_dag_run(
            run.id,
            DagRunState::Running,
            DagRunState::Failed,
            at(6),
            vec![dag_failure.clone()],
        )
        .await
        .unwrap();
    assert_eq!(lost, TransitionResult::Conflict, "the run is still queued");
    assert_eq!(
        store.list_notifications(Some("d"), 10).await.unwrap().len(),
        1
    );
    let ended = store
        .end_dag_run(
            run.id,
            DagRunState::Queued,
            DagRunState::Failed,
            at(6),
            vec![dag_failure],
        )
        .await
        .unwrap();
    assert_eq!(ended, TransitionResult::Applied);
    let stored = store.list_notifications(Some("d"), 10).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1].new.event, NotificationEvent::DagFailure);
    assert_eq!(
        store.get_dag_run_by_id(run.id).await.unwrap().state,
        DagRunState::Failed
    );
}

pub async fn a_plans_notifications_are_stored_only_with_their_applied_transitions(
    db: &dyn TestDatabase,
) {
    let store = db.open().await;
    publish(&*store, &["p"]).await;
    let run = create(&*store, new_run("p", "r", vec![task("a"), task("b")])).await;
    let a = ti(&*store, run.id, "a").await;
    let b = ti(&*store, run.id, "b").await;
    let mut for_a = notification("p", 1, None);
    for_a.task_id = Some("a".into());
    let mut for_b = notification("p", 1, None);
    for_b.task_id = Some("b".into());
    // b's compare-and-set is stale (it is not `scheduled`): its notification goes with it.
    let stale_b = Transition {
        from: TaskState::Scheduled,
        ..transition(&b, TaskState::Success)
    };
    let results = store
        .apply_plan_notifying(
            vec![transition(&a, TaskState::Success), stale_b],
            Vec::new(),
            vec![
                TransitionNotifications {
                    ti_id: a.id,
                    notifications: vec![for_a],
                },
                TransitionNotifications {
                    ti_id: b.id,
                    notifications: vec![for_b],
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        results,
        vec![TransitionResult::Applied, TransitionResult::Conflict]
    );
    let stored = store.list_notifications(Some("p"), 10).await.unwrap();
    let tasks: Vec<Option<&str>> = stored.iter().map(|n| n.new.task_id.as_deref()).collect();
    assert_eq!(tasks, vec![Some("a")]);
}
