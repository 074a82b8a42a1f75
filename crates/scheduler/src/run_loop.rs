//! The run loop: what wakes a pass, and which pass answers what the scheduler was told.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tracing::warn;

use crate::signal::Told;
use crate::{earliest, PassOutcome, Scheduler, SchedulerError};

/// How often the sweep reads the kept runs' task instances again, in case a change went
/// unseen. Every change a scheduler must react to is told to it (a lost notification
/// connection tells it that everything changed), so this is the safety net's safety net;
/// reading a run of 50,000 task instances on every sweep cost a big DAG's run a tenth of its
/// scheduler's time.
const KEPT_REFRESH: Duration = Duration::from_secs(30);

impl Scheduler {
    /// Runs passes until `shutdown` turns true: on every signal, at the next due instant,
    /// and at least every sweep interval.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        self.signal.everything_changed();
        let mut last_full = Instant::now();
        let mut last_reread = last_full;
        let mut retry_full = false;
        // The earliest due instant seen by the last full pass; passes over changed runs only
        // do not look at schedules, so they must not forget it.
        let mut known_due: Option<DateTime<Utc>> = None;
        loop {
            if *shutdown.borrow() {
                if let Err(e) = self.hand_over().await {
                    warn!(error = %e, "could not hand the runs over; others adopt them when the lease runs out");
                }
                return;
            }
            let told = self.signal.take();
            let (mut full, mut reread) = (told.full.due, told.full.reread);
            if retry_full {
                (full, reread) = (true, true);
            }
            if last_full.elapsed() >= self.config.sweep_interval {
                full = true;
            }
            let wait = if !full && told.is_empty() {
                // A wake-up left by a signal that the last look took with another: nothing
                // to answer (a pass would read every unfinished run and the occupancy).
                let now = self.clock.now();
                let until_due = known_due.map(|due| (due - now).to_std().unwrap_or_default());
                let until_sweep = self
                    .config
                    .sweep_interval
                    .saturating_sub(last_full.elapsed());
                until_due.map_or(until_sweep, |d| d.min(until_sweep))
            } else {
                if full && last_reread.elapsed() >= KEPT_REFRESH {
                    reread = true;
                }
                if full {
                    last_full = Instant::now();
                }
                if reread {
                    last_reread = last_full;
                }
                retry_full = false;
                let pass_started = Instant::now();
                match self.answer(told, full, reread).await {
                    Ok(outcome) => {
                        if let Some(metrics) = updraft_metrics::get() {
                            metrics.scheduler_loop(pass_started.elapsed());
                        }
                        let now = self.clock.now();
                        self.heartbeat
                            .store(now.timestamp_micros(), Ordering::Relaxed);
                        if full {
                            // A due instant the full pass could not act on (a paused DAG's
                            // retry) waits for the sweep rather than spinning.
                            known_due = outcome.next_due.filter(|due| *due > now);
                        } else {
                            known_due = earliest(known_due, outcome.next_due);
                        }
                        let sweep = self.config.sweep_interval;
                        known_due
                            .map(|due| (due - now).to_std().unwrap_or(Duration::ZERO))
                            .map_or(sweep, |d| d.min(sweep))
                    }
                    Err(e) => {
                        if let Ok(mut last) = self.last_failure.lock() {
                            *last = Some(self.clock.now());
                        }
                        // Back off for real: a signal here would make the next wait return
                        // at once.
                        warn!(error = %e, "scheduler pass failed; retrying");
                        retry_full = true;
                        Duration::from_millis(500)
                    }
                }
            };
            if wait.is_zero() {
                known_due = None;
                self.signal.sweep_due();
                continue;
            }
            tokio::select! {
                _ = self.signal.notify.notified() => {}
                _ = tokio::time::sleep(wait) => self.signal.sweep_due(),
                _ = shutdown.changed() => {}
            }
        }
    }

    /// The pass that answers what the scheduler was `told`: a full pass, one over the runs
    /// and tries named, and the places another scheduler left free filled.
    async fn answer(
        &self,
        told: Told,
        full: bool,
        reread: bool,
    ) -> Result<PassOutcome, SchedulerError> {
        if told.places_free {
            // The occupancy kept does not know of the places other schedulers freed.
            self.keep_occupancy(None);
        }
        let fill_only = told.places_free
            && !full
            && !told.read_runs
            && told.dirty.is_empty()
            && told.finished.is_empty();
        let mut outcome = if fill_only {
            PassOutcome::default()
        } else {
            self.pass_reading(full, reread, told.read_runs, told.dirty, told.finished)
                .await?
        };
        // A full pass queues within the occupancy it reads; any other fills the places after
        // answering the rest (a pass over other schedulers' tries queues nothing by itself,
        // one over its own within the occupancy it keeps).
        if told.places_free && !full {
            outcome.queued += self.fill_free_places().await?.queued;
        }
        Ok(outcome)
    }
}
