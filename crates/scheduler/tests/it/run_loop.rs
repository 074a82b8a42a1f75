//! The run loop: a pass for every thing told, none for a wake-up with nothing to answer.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use updraft_scheduler::{SchedulerConfig, SchedulerSignal};

use crate::fixture::{utc, World};

/// Waits until the loop made a pass (it stores its heartbeat after each).
async fn until_a_pass(heartbeat: &AtomicI64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while heartbeat.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no pass in 10 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every signal wakes the loop, and two signals taken in one look leave a wake-up behind:
/// that one makes no pass (which would read every unfinished run and the occupancy), while
/// an asked read of the runs does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wake_up_with_nothing_told_makes_no_pass() {
    let world = World::at(utc("2025-01-05T12:00:00Z")).await;
    let signal = Arc::new(SchedulerSignal::default());
    let heartbeat = Arc::new(AtomicI64::new(0));
    let scheduler = world.another_signalled_scheduler(
        SchedulerConfig {
            scheduler_id: "looped".to_string(),
            sweep_interval: Duration::from_secs(600),
            ..Default::default()
        },
        signal.clone(),
        heartbeat.clone(),
    );
    let (stop, stopped) = watch::channel(false);
    let tell_and_watch = async {
        until_a_pass(&heartbeat).await;
        heartbeat.store(0, Ordering::SeqCst);
        // Nothing ended, twice: the first wake-up and the one it leaves find nothing to do.
        signal.tries_finished(std::iter::empty());
        signal.tries_finished(std::iter::empty());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(heartbeat.load(Ordering::SeqCst), 0, "a pass over nothing");
        // Asked to read the runs (a queued run may start), with no run named: a pass.
        signal.runs_changed(std::iter::empty());
        until_a_pass(&heartbeat).await;
        stop.send(true).unwrap();
    };
    tokio::join!(scheduler.run(stopped), tell_and_watch);
}
