//! Start slots: a worker holds at most a few tries that it claimed but that have not started
//! yet. A try claimed while every core is busy starting others only waits in the worker,
//! where no other worker can take it; left queued in the store, it goes to the first worker
//! (this one included) that can start it at once. Celery's prefetch limit serves the same end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// However slow a try is to start (a DAG file that takes long to import, say), its start slot
/// is free after this long, so one slow DAG cannot hold back every other.
const START_AT_MOST: Duration = Duration::from_secs(1);

/// The worker's start slots; one is taken for each claimed try until it [`Starting::started`].
pub(crate) struct StartSlots {
    slots: Arc<Semaphore>,
    /// Wakes the claim loop when a slot is free again.
    freed: Arc<Notify>,
}

impl StartSlots {
    pub fn new(slots: usize, freed: Arc<Notify>) -> StartSlots {
        StartSlots {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            freed,
        }
    }

    /// How many tries may be claimed now.
    pub fn free(&self) -> usize {
        self.slots.available_permits()
    }

    /// A slot for a claimed try, given back when it started or at the latest after
    /// [`START_AT_MOST`]. Claims never exceed [`Self::free`], so a slot is there; were it not,
    /// the try starts without one rather than wait.
    pub fn take(&self) -> Starting {
        let starting = Starting {
            permit: Arc::new(Mutex::new(self.slots.clone().try_acquire_owned().ok())),
            freed: self.freed.clone(),
        };
        let deadline = starting.clone();
        tokio::spawn(async move {
            tokio::time::sleep(START_AT_MOST).await;
            deadline.started();
        });
        starting
    }
}

/// One claimed try's start slot.
#[derive(Clone)]
pub(crate) struct Starting {
    permit: Arc<Mutex<Option<OwnedSemaphorePermit>>>,
    freed: Arc<Notify>,
}

impl Starting {
    /// The try's own code runs now (its process started, or its Python callable is about to
    /// run): the slot goes to the next claim.
    pub fn started(&self) {
        let permit = match self.permit.lock() {
            Ok(mut permit) => permit.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if permit.is_some() {
            drop(permit);
            self.freed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_slot_comes_back_once_its_try_started_and_wakes_the_claim_loop() {
        let freed = Arc::new(Notify::new());
        let slots = StartSlots::new(2, freed.clone());
        let first = slots.take();
        let second = slots.take();
        assert_eq!(slots.free(), 0);
        first.started();
        first.started();
        assert_eq!(slots.free(), 1);
        tokio::time::timeout(Duration::from_secs(1), freed.notified())
            .await
            .expect("the claim loop is woken");
        second.started();
        assert_eq!(slots.free(), 2);
    }

    #[tokio::test]
    async fn a_try_slow_to_start_gives_its_slot_back_after_a_second() {
        let slots = StartSlots::new(1, Arc::new(Notify::new()));
        let slow = slots.take();
        assert_eq!(slots.free(), 0);
        tokio::time::sleep(START_AT_MOST + Duration::from_millis(200)).await;
        assert_eq!(slots.free(), 1);
        slow.started();
        assert_eq!(slots.free(), 1);
    }
}
