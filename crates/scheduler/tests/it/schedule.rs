//! Creating scheduled runs as the clock moves: catch-up, the latest tick only, end dates,
//! paused DAGs and daylight saving time.

use chrono::Duration;
use updraft_model::{Dag, DagRunState, RunType, Schedule};
use updraft_store::Store;

use crate::fixture::{bash, dag, empty, new_year, utc, World};

/// A daily DAG whose one task needs no worker, so its runs finish by themselves.
fn daily(catchup: bool) -> Dag {
    Dag {
        catchup,
        ..dag("daily", "0 0 * * *", vec![empty("noop")])
    }
}

#[tokio::test]
async fn catchup_creates_the_missed_runs_oldest_first_one_per_pass() {
    let world = World::at(utc("2025-01-04T12:00:00Z")).await;
    world.publish(vec![daily(true)]).await;
    let expected = [
        "2025-01-01T00:00:00+00:00",
        "2025-01-02T00:00:00+00:00",
        "2025-01-03T00:00:00+00:00",
        "2025-01-04T00:00:00+00:00",
    ];
    for n in 1..=expected.len() {
        world.pass().await;
        assert_eq!(
            world.logical_dates("daily").await,
            expected[..n],
            "pass {n}"
        );
    }
    let outcome = world.pass().await;
    assert_eq!(
        world.logical_dates("daily").await,
        expected,
        "nothing is due before the next tick"
    );
    assert_eq!(outcome.next_due, Some(utc("2025-01-05T00:00:00Z")));
    let record = world.store.get_dag("daily").await.unwrap();
    assert_eq!(record.next_dagrun, Some(utc("2025-01-05T00:00:00Z")));

    // Runs were created in logical-date order, and are scheduled runs named after it.
    let runs = world.runs("daily").await;
    assert!(runs.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(
        runs[0].run_id,
        "scheduled__2025-01-01T00:00:00.000000+00:00"
    );
    assert!(runs.iter().all(|r| r.run_type == RunType::Scheduled));
    assert!(runs.iter().all(|r| r.state == DagRunState::Success));

    // The clock reaches the next tick: one more run, not before.
    world.clock.set(utc("2025-01-04T23:59:59Z"));
    world.pass().await;
    assert_eq!(world.runs("daily").await.len(), 4);
    world.clock.set(utc("2025-01-05T00:00:00Z"));
    world.pass().await;
    assert_eq!(
        world.logical_dates("daily").await.last().unwrap(),
        "2025-01-05T00:00:00+00:00"
    );
}

#[tokio::test]
async fn without_catchup_only_the_latest_missed_tick_runs() {
    let world = World::at(utc("2025-01-10T12:00:00Z")).await;
    world.publish(vec![daily(false)]).await;
    world.passes(3).await;
    assert_eq!(
        world.logical_dates("daily").await,
        ["2025-01-10T00:00:00+00:00"]
    );
    let record = world.store.get_dag("daily").await.unwrap();
    assert_eq!(record.next_dagrun, Some(utc("2025-01-11T00:00:00Z")));

    world.clock.set(utc("2025-01-11T00:00:00Z"));
    world.passes(2).await;
    assert_eq!(
        world.logical_dates("daily").await,
        ["2025-01-10T00:00:00+00:00", "2025-01-11T00:00:00+00:00"]
    );
}

#[tokio::test]
async fn end_date_stops_creating_runs_after_its_tick() {
    let world = World::at(utc("2025-01-01T05:30:00Z")).await;
    let hourly = Dag {
        catchup: true,
        end_date: Some(utc("2025-01-01T02:00:00Z")),
        ..dag("hourly", "@hourly", vec![empty("noop")])
    };
    world.publish(vec![hourly]).await;
    world.passes(6).await;
    let expected = [
        "2025-01-01T00:00:00+00:00",
        "2025-01-01T01:00:00+00:00",
        "2025-01-01T02:00:00+00:00",
    ];
    assert_eq!(world.logical_dates("hourly").await, expected);
    let record = world.store.get_dag("hourly").await.unwrap();
    assert_eq!(record.next_dagrun, None);

    world.clock.advance(Duration::days(2));
    world.passes(2).await;
    assert_eq!(world.logical_dates("hourly").await, expected);
}

#[tokio::test]
async fn paused_dags_create_no_runs_and_their_runs_do_not_advance() {
    let world = World::at(utc("2025-01-01T12:00:00Z")).await;
    let chain = dag("chain", "@daily", vec![bash("a", &[]), bash("b", &["a"])]);
    world.publish_paused(vec![chain]).await;
    world.passes(2).await;
    assert!(world.runs("chain").await.is_empty(), "paused at creation");

    world.set_paused("chain", false).await;
    world.pass().await;
    let run = world.runs("chain").await.remove(0);
    assert_eq!(world.states(&run).await, "a=queued b=none");
    let a = world.claim_one().await;

    // Paused with `a` running: `a` may finish, but nothing downstream moves, and no new
    // run is created when the next tick passes.
    world.set_paused("chain", true).await;
    world.succeed(&a).await;
    world.clock.set(utc("2025-01-02T12:00:00Z"));
    world.passes(2).await;
    assert_eq!(world.states(&run).await, "a=success b=none");
    assert_eq!(world.run(run.id).await.state, DagRunState::Running);
    assert_eq!(world.runs("chain").await.len(), 1);

    world.set_paused("chain", false).await;
    world.pass().await;
    assert_eq!(world.states(&run).await, "a=success b=queued");
    assert_eq!(
        world.logical_dates("chain").await,
        ["2025-01-01T00:00:00+00:00", "2025-01-02T00:00:00+00:00"],
        "unpaused, the latest tick runs"
    );
}

/// Regression: the queueing step took every `scheduled` task instance, so a DAG paused while
/// its tasks waited for a free slot kept having them queued.
#[tokio::test]
async fn scheduled_tasks_of_a_paused_dag_are_not_queued() {
    let config = updraft_scheduler::SchedulerConfig {
        parallelism: 1,
        ..Default::default()
    };
    let world = World::new(config, new_year()).await;
    world
        .publish(vec![dag(
            "pair",
            "@daily",
            vec![bash("a", &[]), bash("b", &[])],
        )])
        .await;
    world.pass().await;
    let run = world.runs("pair").await.remove(0);
    assert_eq!(world.states(&run).await, "a=queued b=scheduled");

    world.set_paused("pair", true).await;
    let a = world.claim_one().await;
    world.succeed(&a).await;
    world.passes(2).await;
    assert_eq!(world.states(&run).await, "a=success b=scheduled");

    world.set_paused("pair", false).await;
    world.pass().await;
    assert_eq!(world.states(&run).await, "a=success b=queued");
}

/// `30 1 * * *` in Europe/Amsterdam fires at 01:30 local time every day: 00:30 UTC in winter
/// (CET) and 23:30 UTC the day before in summer (CEST). 01:30 is neither skipped nor repeated
/// in Amsterdam (the clocks change at 02:00/03:00), so every day has exactly one run.
#[tokio::test]
async fn amsterdam_0130_runs_at_the_right_utc_instants_across_dst_changes() {
    let spring = [
        "2025-03-29T00:30:00Z", // Saturday, CET
        "2025-03-30T00:30:00Z", // Sunday: 01:30 is still CET, the change comes at 02:00
        "2025-03-30T23:30:00Z", // Monday, CEST: 23 hours later
        "2025-03-31T23:30:00Z",
    ];
    let autumn = [
        "2025-10-24T23:30:00Z", // Saturday, CEST
        "2025-10-25T23:30:00Z", // Sunday: 01:30 is still CEST, the change comes at 03:00
        "2025-10-27T00:30:00Z", // Monday, CET: 25 hours later
        "2025-10-28T00:30:00Z",
    ];
    for (start, ticks) in [
        ("2025-03-28T12:00:00Z", spring),
        ("2025-10-24T12:00:00Z", autumn),
    ] {
        let world = World::at(utc(start)).await;
        let amsterdam = Dag {
            timezone: "Europe/Amsterdam".parse().unwrap(),
            start_date: Some(utc(start)),
            catchup: true,
            ..dag("amsterdam", "30 1 * * *", vec![empty("noop")])
        };
        world.publish(vec![amsterdam]).await;
        world.pass().await;
        let mut created = Vec::new();
        for (i, tick) in ticks.iter().enumerate() {
            let tick = utc(tick);
            world.clock.set(tick - Duration::seconds(1));
            world.pass().await;
            assert_eq!(
                world.runs("amsterdam").await.len(),
                i,
                "no run a second before {tick}"
            );
            world.clock.set(tick);
            world.pass().await;
            created.push(tick);
            let runs = world.runs("amsterdam").await;
            let dates: Vec<_> = runs.iter().map(|r| r.logical_date).collect();
            assert_eq!(dates, created, "at {tick}");
            assert_eq!(runs[i].state, DagRunState::Success);
        }
        let record = world.store.get_dag("amsterdam").await.unwrap();
        let next = if start.starts_with("2025-03") {
            "2025-04-01T23:30:00Z"
        } else {
            "2025-10-29T00:30:00Z"
        };
        assert_eq!(record.next_dagrun, Some(utc(next)));
    }
}

#[tokio::test]
async fn a_dag_without_a_schedule_gets_no_runs() {
    let world = World::at(new_year()).await;
    let manual = Dag {
        schedule: Schedule::None,
        ..dag("manual", "@daily", vec![empty("noop")])
    };
    world.publish(vec![manual]).await;
    for _ in 0..3 {
        world.clock.advance(Duration::days(1));
        world.pass().await;
    }
    assert!(world.runs("manual").await.is_empty());
}
