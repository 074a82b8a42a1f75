//! Checks of assets: publishing registers them and their references, a successful try emits
//! one event per outlet and queues it for unpaused consumers only, an external event does
//! the same, creating an asset-triggered run consumes its queued events once (on two
//! handles too) and links its triggering events, and queued events are listed and deleted.

use super::fixture::*;
use super::TestDatabase;
use crate::{
    AssetEventQuery, AssetQuery, AssetTriggeredRun, DagRunState, NewAssetEvent, QueuedEventFilter,
    RunType, Store, TaskState,
};
use updraft_model::{Asset, AssetCondition, Dag, Schedule};

fn asset(name: &str) -> Asset {
    Asset::new(Some(name), None).expect("an asset")
}

/// `producer` (task `a` updates `raw`) and `consumer` (scheduled on `raw`).
fn producer_and_consumer() -> Vec<Dag> {
    let mut producer = dag("producer", Schedule::None, &["a", "b"]);
    producer.tasks[0].outlets = vec![
        asset("raw"),
        Asset::new(Some("clean"), Some("s3://c")).unwrap(),
    ];
    producer.tasks[1].inlets = vec![asset("raw")];
    let mut consumer = dag("consumer", Schedule::None, &["a"]);
    consumer.asset_schedule = Some(AssetCondition::Asset(asset("raw")));
    vec![producer, consumer]
}

async fn publish_assets(store: &dyn Store, dags: Vec<Dag>) {
    sync(store, dags.into_iter().map(|d| upsert(d, "h1")).collect()).await;
}

fn query() -> AssetQuery {
    AssetQuery {
        limit: 100,
        ..AssetQuery::default()
    }
}

fn events() -> AssetEventQuery {
    AssetEventQuery {
        limit: 100,
        ..AssetEventQuery::default()
    }
}

/// Runs task `a` of a new run of `producer` to `state`; answers the run id.
async fn run_producer(store: &dyn Store, run_id: &str, state: TaskState) -> String {
    queued_run(store, "producer", run_id, vec![task("a")]).await;
    let claimed = claim_one(store, "w1").await;
    finish(store, report(&claimed, state)).await;
    run_id.to_string()
}

fn asset_run(
    dag_id: &str,
    consumed: Vec<(i64, chrono::DateTime<chrono::Utc>)>,
    run_id: &str,
) -> AssetTriggeredRun {
    let logical = consumed.iter().map(|(_, at)| *at).max().unwrap_or(at(0));
    AssetTriggeredRun {
        consumed,
        run: crate::NewDagRun {
            run_type: RunType::AssetTriggered,
            logical_date: logical,
            data_interval_start: logical,
            data_interval_end: logical,
            ..new_run(dag_id, run_id, vec![task("a")])
        },
    }
}

pub async fn publishing_registers_assets_and_their_references(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish_assets(&*store, producer_and_consumer()).await;
    let (assets, total) = store.list_assets(query()).await.expect("list_assets");
    assert_eq!(total, 2);
    let names: Vec<(&str, &str)> = assets
        .iter()
        .map(|a| (a.name.as_str(), a.uri.as_str()))
        .collect();
    assert_eq!(names, [("raw", "raw"), ("clean", "s3://c")]);
    let raw = &assets[0];
    assert_eq!(raw.group, "asset");
    let consumers: Vec<&str> = raw
        .scheduled_dags
        .iter()
        .map(|d| d.dag_id.as_str())
        .collect();
    assert_eq!(consumers, ["consumer"]);
    let producers: Vec<(&str, &str)> = raw
        .producing_tasks
        .iter()
        .map(|t| (t.dag_id.as_str(), t.task_id.as_str()))
        .collect();
    assert_eq!(producers, [("producer", "a")]);
    assert_eq!(store.get_asset(raw.id).await.expect("get_asset"), *raw);
    assert!(matches!(
        store.get_asset(9999).await,
        Err(crate::StoreError::NotFound(_))
    ));

    // Filters: by name, by URI, by DAG.
    let by_uri = AssetQuery {
        uri_pattern: Some("S3://".into()),
        ..query()
    };
    let (found, n) = store.list_assets(by_uri).await.expect("by uri");
    assert_eq!((n, found[0].name.as_str()), (1, "clean"));
    let by_dag = AssetQuery {
        dag_ids: vec!["consumer".into()],
        ..query()
    };
    assert_eq!(store.list_assets(by_dag).await.expect("by dag").1, 1);
    let paged = AssetQuery {
        limit: 1,
        offset: 1,
        ..query()
    };
    let (page, n) = store.list_assets(paged).await.expect("paged");
    assert_eq!((n, page.len(), page[0].name.as_str()), (2, 1, "clean"));

    // A new version that no longer schedules on `raw` drops the reference.
    let mut dags = producer_and_consumer();
    dags[1].asset_schedule = None;
    sync(&*store, dags.into_iter().map(|d| upsert(d, "h2")).collect()).await;
    let raw = store.get_asset(raw.id).await.expect("get_asset");
    assert!(raw.scheduled_dags.is_empty());
}

pub async fn a_successful_try_emits_its_outlets_and_queues_them(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish_assets(&*store, producer_and_consumer()).await;
    run_producer(&*store, "failed", TaskState::Failed).await;
    assert_eq!(
        store.list_asset_events(events()).await.expect("events").1,
        0
    );
    run_producer(&*store, "ok", TaskState::Success).await;
    let (emitted, total) = store.list_asset_events(events()).await.expect("events");
    assert_eq!(total, 2, "one event per outlet");
    let raw = emitted
        .iter()
        .find(|e| e.name == "raw")
        .expect("raw's event");
    assert_eq!(raw.source_dag_id.as_deref(), Some("producer"));
    assert_eq!(raw.source_task_id.as_deref(), Some("a"));
    assert_eq!(raw.source_run_id.as_deref(), Some("ok"));
    assert_eq!((raw.source_map_index, raw.timestamp), (-1, at(5)));
    let queued = store
        .queued_asset_events(QueuedEventFilter::default())
        .await
        .expect("queued");
    let queued: Vec<(&str, &str)> = queued
        .iter()
        .map(|q| (q.dag_id.as_str(), q.name.as_str()))
        .collect();
    assert_eq!(
        queued,
        [("consumer", "raw")],
        "only the DAG scheduled on it"
    );
    let only_raw = AssetEventQuery {
        asset_id: Some(raw.asset_id),
        source_run_id: Some("ok".into()),
        ..events()
    };
    assert_eq!(
        store.list_asset_events(only_raw).await.expect("filtered").1,
        1
    );
    let later = AssetEventQuery {
        timestamp_gte: Some(at(6)),
        ..events()
    };
    assert_eq!(store.list_asset_events(later).await.expect("later").1, 0);
    let asset = store.get_asset(raw.asset_id).await.expect("asset");
    assert_eq!(asset.last_event.map(|e| e.id), Some(raw.id));
}

pub async fn a_paused_consumer_gets_nothing_queued(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish_assets(&*store, producer_and_consumer()).await;
    store.set_paused("consumer", true).await.expect("pause");
    run_producer(&*store, "ok", TaskState::Success).await;
    let raw = store.list_assets(query()).await.expect("assets").0[0].id;
    store
        .create_asset_event(NewAssetEvent {
            asset_id: raw,
            extra: Default::default(),
            now: at(7),
        })
        .await
        .expect("external event");
    assert_eq!(
        store.list_asset_events(events()).await.expect("events").1,
        3
    );
    let queued = store
        .queued_asset_events(QueuedEventFilter::default())
        .await
        .expect("queued");
    assert!(queued.is_empty(), "{queued:?}");
}

pub async fn an_external_event_is_recorded_and_queued(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish_assets(&*store, producer_and_consumer()).await;
    let raw = store.list_assets(query()).await.expect("assets").0[0].id;
    let mut extra = serde_json::Map::new();
    extra.insert("rows".into(), serde_json::json!(42));
    let event = store
        .create_asset_event(NewAssetEvent {
            asset_id: raw,
            extra,
            now: at(3),
        })
        .await
        .expect("create_asset_event");
    assert_eq!(
        (event.asset_id, event.source_dag_id.as_deref()),
        (raw, None)
    );
    assert_eq!(
        (event.extra["rows"].clone(), event.timestamp),
        (serde_json::json!(42), at(3))
    );
    let queued = store
        .queued_asset_events(QueuedEventFilter {
            dag_id: Some("consumer".into()),
            ..Default::default()
        })
        .await
        .expect("queued");
    assert_eq!(queued.len(), 1);
    assert_eq!((queued[0].asset_id, queued[0].created_at), (raw, at(3)));
    assert!(matches!(
        store
            .create_asset_event(NewAssetEvent {
                asset_id: 9999,
                extra: Default::default(),
                now: at(3)
            })
            .await,
        Err(crate::StoreError::NotFound(_))
    ));
}

pub async fn an_asset_triggered_run_consumes_its_events_once(db: &dyn TestDatabase) {
    let store = db.open().await;
    let other = db.open().await;
    publish_assets(&*store, producer_and_consumer()).await;
    let raw = store.list_assets(query()).await.expect("assets").0[0].id;
    for minutes in [3, 4] {
        store
            .create_asset_event(NewAssetEvent {
                asset_id: raw,
                extra: Default::default(),
                now: at(minutes),
            })
            .await
            .expect("event");
    }
    let seen = store
        .queued_asset_events(QueuedEventFilter::default())
        .await
        .expect("queued");
    assert_eq!(seen.len(), 1, "one queue row per asset and DAG");
    let consumed = vec![(raw, seen[0].created_at)];
    let (a, b) = tokio::join!(
        store.create_asset_triggered_run(asset_run("consumer", consumed.clone(), "r1")),
        other.create_asset_triggered_run(asset_run("consumer", consumed.clone(), "r2")),
    );
    let created: Vec<_> = [a.expect("create"), b.expect("create")]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(created.len(), 1, "exactly one handle creates the run");
    let run = &created[0];
    assert_eq!(
        (run.run_type, run.state, run.logical_date),
        (RunType::AssetTriggered, DagRunState::Queued, at(3))
    );
    assert_eq!(
        store.list_dag_runs("consumer").await.expect("runs").len(),
        1
    );
    assert!(store
        .queued_asset_events(QueuedEventFilter::default())
        .await
        .expect("queued")
        .is_empty());
    // As Airflow: the events up to the run's logical date (the queue row's time); the one
    // absorbed into the queued row later waits for the next run.
    let triggering = store
        .triggering_asset_events(run.id)
        .await
        .expect("triggering");
    assert_eq!(
        triggering.iter().map(|e| e.timestamp).collect::<Vec<_>>(),
        [at(3)]
    );
    let (listed, _) = store.list_asset_events(events()).await.expect("events");
    let linked: Vec<usize> = listed.iter().map(|e| e.created_dagruns.len()).collect();
    assert_eq!(linked, [1, 0]);
    assert_eq!(listed[0].created_dagruns[0].run_id, run.run_id);

    // The next run takes only events after the previous one.
    store
        .create_asset_event(NewAssetEvent {
            asset_id: raw,
            extra: Default::default(),
            now: at(9),
        })
        .await
        .expect("event");
    let seen = store
        .queued_asset_events(QueuedEventFilter::default())
        .await
        .expect("queued");
    let next = store
        .create_asset_triggered_run(asset_run("consumer", vec![(raw, seen[0].created_at)], "r3"))
        .await
        .expect("create")
        .expect("a second run");
    let triggering = store
        .triggering_asset_events(next.id)
        .await
        .expect("triggering");
    assert_eq!(
        triggering.iter().map(|e| e.timestamp).collect::<Vec<_>>(),
        [at(4), at(9)]
    );
    // Stale: nothing queued any more.
    assert!(store
        .create_asset_triggered_run(asset_run("consumer", vec![(raw, at(9))], "r4"))
        .await
        .expect("create")
        .is_none());
}

pub async fn a_paused_dag_gets_no_asset_triggered_run(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish_assets(&*store, producer_and_consumer()).await;
    let raw = store.list_assets(query()).await.expect("assets").0[0].id;
    store
        .create_asset_event(NewAssetEvent {
            asset_id: raw,
            extra: Default::default(),
            now: at(3),
        })
        .await
        .expect("event");
    store.set_paused("consumer", true).await.expect("pause");
    let created = store
        .create_asset_triggered_run(asset_run("consumer", vec![(raw, at(3))], "r1"))
        .await
        .expect("create");
    assert!(created.is_none());
    // What was queued before the pause stays queued.
    assert_eq!(
        store
            .queued_asset_events(QueuedEventFilter::default())
            .await
            .expect("queued")
            .len(),
        1
    );
}

pub async fn queued_events_are_deleted_by_dag_asset_and_time(db: &dyn TestDatabase) {
    let store = db.open().await;
    let mut dags = producer_and_consumer();
    let mut second = dag("second", Schedule::None, &["a"]);
    second.asset_schedule = Some(AssetCondition::All(vec![
        AssetCondition::Asset(asset("raw")),
        AssetCondition::Asset(Asset::new(Some("clean"), Some("s3://c")).unwrap()),
    ]));
    dags.push(second);
    publish_assets(&*store, dags).await;
    let assets = store.list_assets(query()).await.expect("assets").0;
    let (raw, clean) = (assets[0].id, assets[1].id);
    for (asset_id, minutes) in [(raw, 3), (clean, 4)] {
        store
            .create_asset_event(NewAssetEvent {
                asset_id,
                extra: Default::default(),
                now: at(minutes),
            })
            .await
            .expect("event");
    }
    let all = store
        .queued_asset_events(QueuedEventFilter::default())
        .await
        .expect("queued");
    assert_eq!(all.len(), 3);
    let before = QueuedEventFilter {
        before: Some(at(4)),
        ..Default::default()
    };
    assert_eq!(
        store
            .queued_asset_events(before)
            .await
            .expect("before")
            .len(),
        2
    );
    let one = QueuedEventFilter {
        dag_id: Some("second".into()),
        asset_id: Some(clean),
        before: None,
    };
    assert_eq!(
        store.delete_queued_asset_events(one).await.expect("delete"),
        1
    );
    let of_raw = QueuedEventFilter {
        asset_id: Some(raw),
        ..Default::default()
    };
    assert_eq!(
        store
            .delete_queued_asset_events(of_raw)
            .await
            .expect("delete"),
        2
    );
    assert!(store
        .queued_asset_events(QueuedEventFilter::default())
        .await
        .expect("queued")
        .is_empty());
}
