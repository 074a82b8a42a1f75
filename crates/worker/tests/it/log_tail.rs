//! The end of a log that goes with the finish report: small ends travel with it, long ones
//! are sent as chunks first, so a finish request stays small.

use std::sync::Arc;

use tokio::sync::watch;
use updraft_store::conformance::fixture::{claim_one, queued_run, task};
use updraft_store::{Store, StoreExecution, TaskExecution};
use updraft_store_sqlite::SqliteStore;
use updraft_worker::log_shipper::{LogShipper, MAX_TAIL};

async fn shipper_of_a_claimed_try(dir: &tempfile::TempDir) -> (Arc<dyn Store>, LogShipper, i64) {
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("updraft.db")).expect("open the store"));
    queued_run(&*store, "d", "r", vec![task("a")]).await;
    let claimed = claim_one(&*store, "w").await;
    let execution: Arc<dyn TaskExecution> = Arc::new(StoreExecution(Arc::clone(&store)));
    let shipper = LogShipper::new(
        execution,
        dir.path().join("attempt=1.log"),
        claimed.ti.id,
        claimed.ti.try_number,
        claimed.claim_id,
    );
    (store, shipper, claimed.ti.id)
}

#[tokio::test]
async fn a_short_log_goes_whole_with_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let (store, shipper, ti_id) = shipper_of_a_claimed_try(&dir).await;
    std::fs::write(dir.path().join("attempt=1.log"), "one\ntwo").unwrap();
    let (done_tx, done_rx) = watch::channel(false);
    let (fenced_tx, _fenced_rx) = watch::channel(false);
    let shipping = tokio::spawn(shipper.run(done_rx, fenced_tx));
    done_tx.send(true).unwrap();
    let tail = shipping.await.unwrap().expect("a tail");
    assert_eq!((tail.offset, tail.data.as_str()), (0, "one\ntwo"));
    assert_eq!(
        store.read_log(ti_id, 1).await.unwrap(),
        None,
        "no request of its own"
    );
}

#[tokio::test]
async fn a_long_end_is_sent_as_chunks_and_only_the_last_bytes_go_with_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut shipper, ti_id) = shipper_of_a_claimed_try(&dir).await;
    let line = "x".repeat(99) + "\n";
    let long = line.repeat(3 * MAX_TAIL / 100);
    std::fs::write(dir.path().join("attempt=1.log"), &long).unwrap();
    let tail = shipper.tail().await;
    assert_eq!(tail, None, "everything was sent as chunks");
    let stored = store
        .read_log(ti_id, 1)
        .await
        .unwrap()
        .expect("a stored log");
    assert_eq!(stored.len(), long.len());
    assert_eq!(stored, long);

    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("attempt=1.log"))
        .unwrap();
    std::io::Write::write_all(&mut file, b"last\n").unwrap();
    let tail = shipper.tail().await.expect("a tail");
    assert_eq!(
        (tail.offset, tail.data.as_str()),
        (long.len() as u64, "last\n")
    );
}
