//! What the scheduler writes to the notification outbox: a run's end calls its DAG's
//! callbacks, a try that fails for good because its worker was lost calls the task's
//! `on_failure_callback`, and a deadline alert fires once, at its instant, for a run not
//! finished by then.

use std::time::Duration as StdDuration;

use chrono::Duration;
use updraft_model::{
    DagCallbacks, DeadlineAlert, DeadlineReference, NotificationEvent, Notifier, Task, TaskState,
};
use updraft_store::NotificationStore;

use crate::fixture::{bash, dag, new_year, World, LEASE};

fn hook(path: &str) -> Notifier {
    Notifier::Webhook {
        url: Some(format!("http://127.0.0.1:9/{path}")),
        http_conn_id: None,
        endpoint: String::new(),
        headers: Default::default(),
    }
}

async fn events(world: &World) -> Vec<(NotificationEvent, Option<String>, serde_json::Value)> {
    world
        .store
        .list_notifications(Some("notified"), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.new.event, n.new.task_id, n.new.context))
        .collect()
}

#[tokio::test]
async fn a_lost_try_that_fails_for_good_and_the_failed_run_call_their_callbacks() {
    let world = World::at(new_year()).await;
    let mut task: Task = bash("t", &[]);
    task.callbacks.on_failure_callback = vec![hook("task")];
    let mut notified = dag("notified", "@daily", vec![task]);
    notified.callbacks = DagCallbacks {
        on_failure_callback: vec![hook("dag")],
        on_success_callback: vec![hook("never")],
        deadline: Vec::new(),
    };
    world.publish(vec![notified]).await;
    world.pass().await;
    let run = world.runs("notified").await.remove(0);
    // Lost tries are retried without using up the task's retries, three times; the fourth
    // fails the task for good.
    for lost in 1..=4 {
        let claimed = world.claim_one().await;
        assert_eq!(claimed.ti.try_number, lost);
        world.clock.advance(LEASE + Duration::seconds(1));
        world.pass().await;
        if lost < 4 {
            assert!(
                events(&world).await.is_empty(),
                "no callback for a retried lost try"
            );
        }
    }
    assert_eq!(world.ti(&run, "t").await.state, TaskState::Failed);
    world.pass().await;
    let stored = events(&world).await;
    assert_eq!(stored.len(), 2, "{stored:#?}");
    assert_eq!(stored[0].0, NotificationEvent::TaskFailure);
    assert_eq!(stored[0].1.as_deref(), Some("t"));
    assert_eq!(stored[0].2["exception"], "worker lease expired");
    assert_eq!(stored[0].2["try_number"], 4);
    assert_eq!(stored[1].0, NotificationEvent::DagFailure);
    assert_eq!(stored[1].1, None);
    assert_eq!(stored[1].2["reason"], "task_failure");
    assert_eq!(stored[1].2["run_id"], run.run_id.as_str());
}

#[tokio::test]
async fn a_deadline_fires_once_at_its_instant_for_an_unfinished_run() {
    let world = World::at(new_year()).await;
    let mut notified = dag("notified", "@daily", vec![bash("t", &[])]);
    notified.callbacks.deadline = vec![DeadlineAlert {
        reference: DeadlineReference::DagrunQueuedAt,
        interval: StdDuration::from_secs(600),
        callback: vec![hook("late"), hook("later")],
    }];
    world.publish(vec![notified]).await;
    let outcome = world.pass().await;
    let run = world.runs("notified").await.remove(0);
    let due = run.queued_at + Duration::minutes(10);
    assert!(
        outcome.next_due.is_some_and(|next| next <= due),
        "the scheduler wakes by the deadline: {:?}",
        outcome.next_due
    );
    world.clock.set(due - Duration::seconds(1));
    world.pass().await;
    assert!(events(&world).await.is_empty());
    world.clock.set(due);
    world.pass().await;
    // Later passes see the same missed deadline: nothing more is stored (the outbox keeps one
    // entry per key, whichever scheduler writes it).
    world.clock.advance(Duration::minutes(1));
    world.pass().await;
    world.pass().await;
    let stored = events(&world).await;
    assert_eq!(
        stored.len(),
        2,
        "one per notifier of the alert: {stored:#?}"
    );
    assert!(stored.iter().all(
        |(event, _, context)| *event == NotificationEvent::DeadlineMissed
            && context["deadline"] == due.to_rfc3339()
    ));
}

#[tokio::test]
async fn a_run_that_finished_in_time_misses_no_deadline() {
    let world = World::at(new_year()).await;
    let mut notified = dag("notified", "@daily", vec![bash("t", &[])]);
    notified.callbacks.deadline = vec![DeadlineAlert {
        reference: DeadlineReference::DagrunQueuedAt,
        interval: StdDuration::from_secs(600),
        callback: vec![hook("late")],
    }];
    notified.callbacks.on_success_callback = vec![hook("done")];
    world.publish(vec![notified]).await;
    world.pass().await;
    let claimed = world.claim_one().await;
    world.succeed(&claimed).await;
    world.pass().await;
    world.clock.advance(Duration::hours(1));
    world.pass().await;
    let stored = events(&world).await;
    assert_eq!(stored.len(), 1, "{stored:#?}");
    assert_eq!(stored[0].0, NotificationEvent::DagSuccess);
    assert_eq!(stored[0].2["reason"], "success");
}
