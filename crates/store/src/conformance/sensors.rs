//! Checks of sensors' waits: a rescheduled sensor between pokes (its try goes on, its first
//! poke's start is kept, it holds no slot) and a wait the scheduler holds (`deferred`).

use super::fixture::*;
use super::TestDatabase;
use crate::{ClaimRequest, FinishReport, QueueItem, TaskState, Transition, TransitionResult};

fn next_poke(ti: &crate::TaskInstance) -> QueueItem {
    QueueItem {
        ti_id: ti.id,
        try_number: ti.try_number,
        dag_id: ti.dag_id.clone(),
        pool: ti.pool.clone(),
        queue: ti.queue.clone(),
        dag_run_id: ti.dag_run_id,
        max_active_tasks: 16,
        task_limits: None,
        resumes: true,
    }
}

pub async fn a_rescheduled_sensor_keeps_its_try_and_its_first_poke(db: &dyn TestDatabase) {
    let store = db.open().await;
    let run = queued_run(&*store, "d", "r", vec![task("a")]).await;
    let first = claim_one(&*store, "w").await;
    assert_eq!((first.ti.try_number, first.ti.start_date), (1, Some(at(2))));
    let result = finish(
        &*store,
        FinishReport {
            next_retry_at: Some(at(8)),
            ..report(&first, TaskState::UpForReschedule)
        },
    )
    .await;
    assert_eq!(result, TransitionResult::Applied);
    let waiting = ti(&*store, run.id, "a").await;
    assert_eq!(waiting.state, TaskState::UpForReschedule);
    assert_eq!(waiting.try_number, 1);
    assert_eq!(waiting.next_retry_at, Some(at(8)));
    assert_eq!(
        waiting.start_date,
        Some(at(2)),
        "the try started at its first poke"
    );
    // Between pokes it holds no slot, it is no finished try, and the scheduler wakes for it.
    assert_eq!(store.occupancy().await.unwrap().total, 0);
    assert!(store.task_tries(waiting.id).await.unwrap().is_empty());
    assert_eq!(store.earliest_retry().await.unwrap(), Some(at(8)));
    // A new try from `scheduled` is not what a rescheduled sensor is queued as.
    let results = store
        .queue(
            vec![QueueItem {
                resumes: false,
                ..next_poke(&waiting)
            }],
            at(9),
        )
        .await
        .unwrap();
    assert_eq!(results, vec![TransitionResult::Conflict]);
    let results = store.queue(vec![next_poke(&waiting)], at(9)).await.unwrap();
    assert_eq!(results, vec![TransitionResult::Applied]);
    let queued = ti(&*store, run.id, "a").await;
    assert_eq!((queued.state, queued.try_number), (TaskState::Queued, 1));
    assert_eq!(queued.next_retry_at, None);
    let second = claim(
        &*store,
        ClaimRequest {
            now: at(9),
            ..claim_request("w", None, 1)
        },
    )
    .await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].ti.try_number, 1);
    assert_eq!(
        second[0].ti.start_date,
        Some(at(2)),
        "the claim keeps the first poke"
    );
    assert_ne!(
        second[0].claim_id, first.claim_id,
        "each poke is a claim of its own"
    );
    // A report of the earlier poke (sent again, say) is fenced off the current one.
    let stale = report(&first, TaskState::Success);
    assert_eq!(finish(&*store, stale).await, TransitionResult::Conflict);
    let mut done = report(&second[0], TaskState::Success);
    done.end_date = at(11);
    assert_eq!(finish(&*store, done).await, TransitionResult::Applied);
    let tries = store.task_tries(waiting.id).await.unwrap();
    assert_eq!(tries.len(), 1, "one try however many pokes: {tries:?}");
    assert_eq!(
        (tries[0].try_number, tries[0].state),
        (1, TaskState::Success)
    );
    assert_eq!(tries[0].start_date, Some(at(2)));
}

pub async fn a_deferred_wait_holds_no_slot_and_ends_where_it_stands(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    let run = create(&*store, new_run("d", "r", vec![task("a")])).await;
    let none = ti(&*store, run.id, "a").await;
    apply(
        &*store,
        Transition {
            next_retry_at: Some(at(30)),
            ..transition(&none, TaskState::Deferred)
        },
    )
    .await;
    let waiting = ti(&*store, run.id, "a").await;
    assert_eq!(waiting.state, TaskState::Deferred);
    assert_eq!(waiting.try_number, 0, "no process, no try");
    assert_eq!(store.earliest_retry().await.unwrap(), Some(at(30)));
    assert_eq!(store.occupancy().await.unwrap().total, 0);
    assert!(store
        .claim(claim_request("w", None, 10))
        .await
        .unwrap()
        .is_empty());
    apply(&*store, transition(&waiting, TaskState::Success)).await;
    let done = ti(&*store, run.id, "a").await;
    assert_eq!(done.state, TaskState::Success);
    assert_eq!(done.end_date, Some(at(1)));
    assert_eq!(store.earliest_retry().await.unwrap(), None);
}

pub async fn marking_a_rescheduled_sensor_ends_its_try(db: &dyn TestDatabase) {
    let store = db.open().await;
    let run = queued_run(&*store, "d", "r", vec![task("a")]).await;
    let first = claim_one(&*store, "w").await;
    let waiting = FinishReport {
        next_retry_at: Some(at(8)),
        ..report(&first, TaskState::UpForReschedule)
    };
    assert_eq!(finish(&*store, waiting).await, TransitionResult::Applied);
    let waiting = ti(&*store, run.id, "a").await;
    let marked = store
        .mark_task_instances(crate::MarkTaskInstances {
            ti_ids: vec![waiting.id],
            state: TaskState::Success,
            now: at(9),
        })
        .await
        .unwrap();
    assert_eq!(marked.len(), 1);
    assert_eq!(marked[0].state, TaskState::Success);
    assert_eq!(marked[0].next_retry_at, None);
    assert_eq!(marked[0].end_date, Some(at(9)));
    let tries = store.task_tries(waiting.id).await.unwrap();
    assert_eq!(tries.len(), 1);
    assert_eq!(
        (tries[0].try_number, tries[0].state),
        (1, TaskState::Success)
    );
}
