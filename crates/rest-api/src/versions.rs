//! The version records of DAGs, kept between requests: run and task-instance lists show the
//! version of every row, and a version, once published, does not change. A DAG deleted and
//! published again starts its versions afresh, so what is kept is dropped whenever the store
//! announces "everything" (DAGs published or deleted, [`Store::watch`]), when the watch fell
//! behind, and after [`TTL`] in any case (a process whose changes this server does not hear).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::TryRecvError;
use tokio::sync::broadcast::Receiver;
use updraft_store::{Change, DagVersionRecord, Store};

/// How long a DAG's versions are kept at most.
pub const TTL: Duration = Duration::from_secs(10);

/// A DAG's versions by number.
pub(crate) type DagVersions = Arc<HashMap<i64, DagVersionRecord>>;

pub(crate) struct VersionCache {
    state: Mutex<State>,
}

struct State {
    by_dag: HashMap<String, (DagVersions, Instant)>,
    changes: Receiver<Change>,
}

/// Beyond this many DAGs, all are dropped.
const MAX_DAGS: usize = 10_000;

impl VersionCache {
    pub fn new(store: &dyn Store) -> Self {
        Self::with(store.watch())
    }

    fn with(changes: Receiver<Change>) -> Self {
        VersionCache {
            state: Mutex::new(State {
                by_dag: HashMap::new(),
                changes,
            }),
        }
    }

    /// The kept versions of `dag_id`, if they hold `version`.
    pub fn get(&self, dag_id: &str, version: i64) -> Option<DagVersions> {
        let mut state = self.state.lock().ok()?;
        state.forget_changed();
        let (versions, until) = state.by_dag.get(dag_id)?;
        (*until > Instant::now() && versions.contains_key(&version)).then(|| versions.clone())
    }

    pub fn put(&self, dag_id: &str, versions: DagVersions) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.forget_changed();
        if state.by_dag.len() >= MAX_DAGS {
            state.by_dag.clear();
        }
        state
            .by_dag
            .insert(dag_id.to_string(), (versions, Instant::now() + TTL));
    }
}

impl State {
    fn forget_changed(&mut self) {
        loop {
            match self.changes.try_recv() {
                Ok(
                    Change::Runs(_)
                    | Change::TriesFinished { .. }
                    | Change::PlacesFree
                    | Change::WorkQueued(_)
                    | Change::Dags(_)
                    | Change::Jobs,
                ) => {}
                Ok(Change::Everything) | Err(TryRecvError::Lagged(_)) => self.by_dag.clear(),
                Err(TryRecvError::Closed) => {
                    self.by_dag.clear();
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

    fn record(version: i64) -> DagVersionRecord {
        DagVersionRecord {
            dag_id: "d".into(),
            version,
            content_hash: format!("h{version}"),
            created_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn versions_are_kept_until_dags_change() {
        let (tx, rx) = tokio::sync::broadcast::channel(8);
        let cache = VersionCache::with(rx);
        assert!(cache.get("d", 1).is_none());
        cache.put("d", Arc::new(HashMap::from([(1, record(1))])));
        assert_eq!(cache.get("d", 1).unwrap()[&1], record(1));
        assert!(cache.get("d", 2).is_none(), "a version published since");
        tx.send(Change::Runs(vec![1])).unwrap();
        assert!(cache.get("d", 1).is_some());
        tx.send(Change::Everything).unwrap();
        assert!(cache.get("d", 1).is_none());
    }
}
