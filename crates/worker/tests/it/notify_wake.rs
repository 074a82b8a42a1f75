//! The notification loop of a standalone process wakes on the store's changes: it looks after
//! a change, and not while nothing changes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use updraft_model::{NotificationEvent, Notifier};
use updraft_store::{Change, NewNotification, Store};
use updraft_store_sqlite::SqliteStore;
use updraft_worker::notify::{Deliverer, DeliveryConfig, IDLE_RECHECK};

/// A URL nothing listens on: each attempt fails at once, and is counted.
fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/hook")
}

fn notification(url: String) -> NewNotification {
    NewNotification {
        event: NotificationEvent::DeadlineMissed,
        dag_id: "late".into(),
        run_id: Some("manual__1".into()),
        task_id: None,
        map_index: None,
        try_number: None,
        notifier: Notifier::Webhook {
            url: Some(url),
            http_conn_id: None,
            endpoint: String::new(),
            headers: BTreeMap::new(),
        },
        context: serde_json::json!({}),
        dedupe_key: None,
        created_at: Utc::now(),
    }
}

async fn attempts(store: &dyn Store) -> u32 {
    let listed = store.list_notifications(Some("late"), 10).await.unwrap();
    listed.iter().map(|n| n.attempts).sum()
}

#[tokio::test]
async fn a_deliverer_waking_on_changes_looks_after_a_change_and_not_while_idle() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("u.db")).unwrap());
    let mut config = DeliveryConfig::new("deliverer-1");
    config.poll_interval = Duration::from_millis(50);
    // A failed attempt is retried only after the test.
    config.retry_base = Duration::from_secs(3600);
    config.retry_max = Duration::from_secs(3600);
    let deliverer = Deliverer::new(store.clone(), config).waking_on(store.watch());
    let (stop, shutdown) = watch::channel(false);
    let running = tokio::spawn(Arc::new(deliverer).run(shutdown));
    // Its first look finds nothing.
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Stored with no change announced (as a deadline alert is): a loop polling every 50 ms
    // would have claimed it many times over by the end of the wait.
    store
        .add_notifications(vec![notification(refused_url())])
        .await
        .unwrap();
    tokio::time::sleep(IDLE_RECHECK / 5).await;
    assert_eq!(attempts(store.as_ref()).await, 0, "the idle loop looked");

    store.announce(Change::Everything);
    let end = tokio::time::Instant::now() + IDLE_RECHECK / 2;
    while attempts(store.as_ref()).await == 0 {
        assert!(
            tokio::time::Instant::now() < end,
            "the loop did not look after a change"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The attempt is counted when it is claimed; its failure is recorded once the refused
    // connection comes back, a moment later.
    let listed = loop {
        let listed = store.list_notifications(Some("late"), 10).await.unwrap();
        if listed.iter().all(|n| n.last_error.is_some()) || tokio::time::Instant::now() >= end {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].attempts, 1);
    assert!(
        listed[0].last_error.is_some(),
        "the attempt's failure is recorded: {:?}",
        listed[0]
    );

    stop.send(true).unwrap();
    running.await.unwrap();
}
