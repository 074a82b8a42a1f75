//! Totals of run lists kept for a moment: counting every matching run for `total_entries` is
//! most of the work of listing a DAG with a long history, and the count changes only when
//! runs are created, change state or are deleted — changes the store announces.
//!
//! A kept total is dropped when the store announces a change of runs or "everything"
//! ([`Store::watch`]), when the watch fell behind, and after [`TTL`] in any case (a change
//! another process makes reaches this server by the database's notifications, or, on SQLite
//! without them, not at all). A total counted while a change was being announced is not kept.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::TryRecvError;
use tokio::sync::broadcast::Receiver;
use updraft_store::{Change, Store};

/// How long a total is kept at most.
pub const TTL: Duration = Duration::from_secs(2);

/// Beyond this many kept totals, all are dropped.
const MAX_ENTRIES: usize = 1_000;

pub(crate) struct CountCache {
    ttl: Duration,
    state: Mutex<State>,
}

struct State {
    entries: HashMap<String, (u64, Instant)>,
    /// Counts the times everything kept was dropped.
    generation: u64,
    changes: Receiver<Change>,
}

/// What a lookup found: the total, or the generation to hand back with the counted one.
pub(crate) enum Lookup {
    Kept(u64),
    Missing { generation: u64 },
}

impl CountCache {
    pub fn new(store: &dyn Store) -> Self {
        Self::with(store.watch(), TTL)
    }

    fn with(changes: Receiver<Change>, ttl: Duration) -> Self {
        CountCache {
            ttl,
            state: Mutex::new(State {
                entries: HashMap::new(),
                generation: 0,
                changes,
            }),
        }
    }

    pub fn get(&self, key: &str) -> Lookup {
        let Ok(mut state) = self.state.lock() else {
            return Lookup::Missing { generation: 0 };
        };
        state.forget_changed();
        match state.entries.get(key) {
            Some(&(total, until)) if until > Instant::now() => Lookup::Kept(total),
            _ => Lookup::Missing {
                generation: state.generation,
            },
        }
    }

    /// Keeps `total`, counted after a [`get`](Self::get) answered `generation`, unless
    /// something changed since.
    pub fn put(&self, key: String, total: u64, generation: u64) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.forget_changed();
        if state.generation != generation {
            return;
        }
        if state.entries.len() >= MAX_ENTRIES {
            state.entries.clear();
        }
        state
            .entries
            .insert(key, (total, Instant::now() + self.ttl));
    }
}

impl State {
    fn forget_changed(&mut self) {
        loop {
            match self.changes.try_recv() {
                // Neither changes which runs there are nor their states.
                Ok(Change::WorkQueued(_) | Change::PlacesFree | Change::Dags(_) | Change::Jobs) => {
                }
                Ok(Change::Runs(_) | Change::TriesFinished { .. } | Change::Everything)
                | Err(TryRecvError::Lagged(_)) => {
                    self.entries.clear();
                    self.generation += 1;
                }
                // The store is gone: nothing can be known to stay.
                Err(TryRecvError::Closed) => {
                    self.entries.clear();
                    self.generation += 1;
                    return;
                }
                Err(TryRecvError::Empty) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(cache: &CountCache, key: &str) -> Option<u64> {
        match cache.get(key) {
            Lookup::Kept(total) => Some(total),
            Lookup::Missing { .. } => None,
        }
    }

    fn generation(cache: &CountCache, key: &str) -> u64 {
        match cache.get(key) {
            Lookup::Kept(_) => panic!("{key} is kept"),
            Lookup::Missing { generation } => generation,
        }
    }

    #[test]
    fn totals_are_kept_until_runs_change() {
        let (tx, rx) = tokio::sync::broadcast::channel(8);
        let cache = CountCache::with(rx, TTL);
        let g = generation(&cache, "a");
        cache.put("a".into(), 7, g);
        assert_eq!(kept(&cache, "a"), Some(7));
        assert_eq!(kept(&cache, "b"), None);
        tx.send(Change::WorkQueued(vec!["default".into()])).unwrap();
        assert_eq!(kept(&cache, "a"), Some(7), "queued work changes no run");
        tx.send(Change::Runs(vec![1])).unwrap();
        assert_eq!(kept(&cache, "a"), None);
        let g = generation(&cache, "a");
        cache.put("a".into(), 8, g);
        tx.send(Change::Everything).unwrap();
        assert_eq!(kept(&cache, "a"), None);
    }

    #[test]
    fn a_total_counted_across_a_change_is_not_kept() {
        let (tx, rx) = tokio::sync::broadcast::channel(8);
        let cache = CountCache::with(rx, TTL);
        let g = generation(&cache, "a");
        tx.send(Change::Runs(vec![1])).unwrap();
        cache.put("a".into(), 7, g);
        assert_eq!(kept(&cache, "a"), None);
    }

    #[test]
    fn totals_expire_and_a_lagging_watch_drops_them() {
        let (tx, rx) = tokio::sync::broadcast::channel(2);
        let cache = CountCache::with(rx, Duration::ZERO);
        cache.put("a".into(), 7, generation(&cache, "a"));
        assert_eq!(kept(&cache, "a"), None, "expired");

        let (tx2, rx2) = tokio::sync::broadcast::channel(2);
        let cache = CountCache::with(rx2, TTL);
        cache.put("a".into(), 7, generation(&cache, "a"));
        for _ in 0..5 {
            tx2.send(Change::WorkQueued(vec![])).unwrap();
        }
        assert_eq!(kept(&cache, "a"), None, "lagged");
        drop(tx);
    }
}
