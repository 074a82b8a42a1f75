//! Data-aware scheduling: a producer's successful try queues asset events, and the scheduler
//! creates one `asset_triggered` run of each consumer whose condition they satisfy.

use chrono::Duration;
use updraft_model::{Asset, AssetCondition, Dag, DagRunState, RunType, Schedule, Task};
use updraft_scheduler::{new_dag_run, TriggerRequest};
use updraft_store::{AssetQuery, AssetStore, NewAssetEvent, QueuedEventFilter, Store};

use crate::fixture::{bash, dag, utc, World};

fn asset(name: &str) -> Asset {
    Asset::new(Some(name), None).unwrap()
}

fn on(name: &str) -> AssetCondition {
    AssetCondition::Asset(asset(name))
}

/// A manual DAG whose task `t` updates `outlets`.
fn producer(dag_id: &str, outlets: &[&str]) -> Dag {
    let task = Task {
        outlets: outlets.iter().map(|n| asset(n)).collect(),
        ..bash("t", &[])
    };
    Dag {
        schedule: Schedule::None,
        ..dag(dag_id, "@daily", vec![task])
    }
}

fn consumer(dag_id: &str, condition: AssetCondition) -> Dag {
    Dag {
        schedule: Schedule::None,
        asset_schedule: Some(condition),
        ..dag(dag_id, "@daily", vec![bash("c", &[])])
    }
}

/// Triggers `dag` by hand, runs what is queued to success, and passes.
async fn produce(world: &World, dag: &Dag) {
    world
        .store
        .create_dag_run(new_dag_run(
            dag,
            1,
            TriggerRequest {
                run_id: Some(format!("manual__{}", world.now().timestamp_micros())),
                ..TriggerRequest::manual()
            },
            world.now(),
            None,
        ))
        .await
        .unwrap();
    world.pass().await;
    // Everything queued succeeds: the producer's task, and any earlier consumer run's.
    for claimed in world.claim(100).await {
        world.succeed(&claimed).await;
    }
    world.pass().await;
}

#[tokio::test]
async fn a_producers_success_triggers_its_consumer_once() {
    let world = World::at(utc("2025-01-05T12:00:00Z")).await;
    let p = producer("p", &["raw"]);
    world
        .publish(vec![p.clone(), consumer("c", on("raw"))])
        .await;
    world.pass().await;
    assert!(world.runs("c").await.is_empty());

    produce(&world, &p).await;
    let runs = world.runs("c").await;
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.run_type, RunType::AssetTriggered);
    assert!(
        run.run_id.starts_with("asset_triggered__"),
        "{}",
        run.run_id
    );
    assert_eq!(
        run.logical_date,
        utc("2025-01-05T12:00:00Z"),
        "when the event was queued"
    );
    assert_eq!(
        run.state,
        DagRunState::Running,
        "adopted and started in the same pass"
    );
    let events = world.store.triggering_asset_events(run.id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].source_dag_id.as_deref(), Some("p"));
    assert!(world
        .store
        .queued_asset_events(QueuedEventFilter::default())
        .await
        .unwrap()
        .is_empty());

    // More passes make no second run; another success does.
    world.passes(3).await;
    assert_eq!(world.runs("c").await.len(), 1);
    world.clock.advance(Duration::minutes(1));
    produce(&world, &p).await;
    assert_eq!(world.runs("c").await.len(), 2);
}

#[tokio::test]
async fn a_condition_waits_for_all_and_any_of_its_assets() {
    let world = World::at(utc("2025-01-05T12:00:00Z")).await;
    let (a, b, c) = (
        producer("pa", &["a"]),
        producer("pb", &["b"]),
        producer("pc", &["c"]),
    );
    let condition = AssetCondition::All(vec![on("a"), AssetCondition::Any(vec![on("b"), on("c")])]);
    world
        .publish(vec![
            a.clone(),
            b.clone(),
            c.clone(),
            consumer("d", condition),
        ])
        .await;
    produce(&world, &c).await;
    assert!(world.runs("d").await.is_empty(), "c alone");
    world.clock.advance(Duration::minutes(1));
    produce(&world, &b).await;
    assert!(world.runs("d").await.is_empty(), "b or c, without a");
    world.clock.advance(Duration::minutes(1));
    produce(&world, &a).await;
    let runs = world.runs("d").await;
    assert_eq!(runs.len(), 1, "a and (b or c)");
    let events = world
        .store
        .triggering_asset_events(runs[0].id)
        .await
        .unwrap();
    let mut names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c"]);
}

#[tokio::test]
async fn a_paused_consumer_ignores_events_and_gets_no_run() {
    let world = World::at(utc("2025-01-05T12:00:00Z")).await;
    let p = producer("p", &["raw"]);
    world
        .publish(vec![p.clone(), consumer("c", on("raw"))])
        .await;
    world.set_paused("c", true).await;
    produce(&world, &p).await;
    world.set_paused("c", false).await;
    world.passes(2).await;
    assert!(
        world.runs("c").await.is_empty(),
        "Airflow queues nothing for a paused DAG"
    );

    // Queued before the pause: it waits, and the run comes after the unpause.
    world.clock.advance(Duration::minutes(1));
    world
        .store
        .create_asset_event(NewAssetEvent {
            asset_id: world
                .store
                .list_assets(AssetQuery {
                    limit: 10,
                    ..Default::default()
                })
                .await
                .unwrap()
                .0[0]
                .id,
            extra: Default::default(),
            now: world.now(),
        })
        .await
        .unwrap();
    world.set_paused("c", true).await;
    world.passes(2).await;
    assert!(world.runs("c").await.is_empty());
    world.set_paused("c", false).await;
    world.pass().await;
    assert_eq!(world.runs("c").await.len(), 1);
}

#[tokio::test]
async fn asset_or_time_schedule_runs_on_both() {
    let world = World::at(utc("2025-01-05T12:00:00Z")).await;
    let p = producer("p", &["raw"]);
    let both = Dag {
        asset_schedule: Some(on("raw")),
        ..dag("both", "0 13 * * *", vec![bash("c", &[])])
    };
    world.publish(vec![p.clone(), both]).await;
    world.pass().await;
    produce(&world, &p).await;
    world.clock.set(utc("2025-01-05T13:00:00Z"));
    world.passes(2).await;
    let types: Vec<RunType> = world
        .runs("both")
        .await
        .iter()
        .map(|r| r.run_type)
        .collect();
    // Without catch-up the latest missed tick (the 4th, 13:00) runs first, as in Airflow.
    assert_eq!(
        types,
        [
            RunType::Scheduled,
            RunType::AssetTriggered,
            RunType::Scheduled
        ]
    );
}

#[tokio::test]
async fn two_schedulers_seeing_one_event_make_one_run() {
    let world = World::at(utc("2025-01-05T12:00:00Z")).await;
    let p = producer("p", &["raw"]);
    world
        .publish(vec![p.clone(), consumer("c", on("raw"))])
        .await;
    let other = world.another_scheduler("other");
    let asset_id = world
        .store
        .list_assets(AssetQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .0[0]
        .id;
    world
        .store
        .create_asset_event(NewAssetEvent {
            asset_id,
            extra: Default::default(),
            now: world.now(),
        })
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        world.scheduler.pass(true, Default::default()),
        other.pass(true, Default::default())
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(world.runs("c").await.len(), 1);
}
