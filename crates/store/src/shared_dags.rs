//! DAG versions as one process holds them. A version never changes once written, so every
//! reader of a version in the process (the scheduler, the local worker, the API) can share
//! one copy while any of them holds it: a DAG of 50,000 tasks is tens of megabytes a copy.
//! Nothing is kept for its own sake: a version no reader holds is read again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use updraft_model::Dag;

#[derive(Debug, Default)]
pub struct SharedDags {
    held: Mutex<HashMap<(String, i64), Weak<Dag>>>,
}

impl SharedDags {
    /// The copy of version `version` of `dag_id` some reader holds.
    pub fn get(&self, dag_id: &str, version: i64) -> Option<Arc<Dag>> {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.get(&(dag_id.to_string(), version))
            .and_then(Weak::upgrade)
    }

    /// Shares `dag`, just written as version `version` by whoever holds it (the DAG processor
    /// that loaded it): a reader of the version gets that copy rather than reading its own.
    pub fn keep(&self, dag: &Arc<Dag>, version: i64) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.retain(|_, copy| copy.strong_count() > 0);
        held.insert((dag.dag_id.clone(), version), Arc::downgrade(dag));
    }

    /// Shares `dag`, just read as version `version`: the copy another reader read meanwhile
    /// wins, so there is still one.
    pub fn share(&self, dag: Dag, version: i64) -> Arc<Dag> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (dag.dag_id.clone(), version);
        if let Some(shared) = held.get(&key).and_then(Weak::upgrade) {
            return shared;
        }
        held.retain(|_, copy| copy.strong_count() > 0);
        let dag = Arc::new(dag);
        held.insert(key, Arc::downgrade(&dag));
        dag
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use updraft_model::Schedule;

    #[test]
    fn readers_share_a_version_while_one_holds_it() {
        let shared = SharedDags::default();
        let first = shared.share(Dag::new("d", Schedule::None), 1);
        let again = shared.share(Dag::new("d", Schedule::None), 1);
        assert!(Arc::ptr_eq(&first, &again));
        assert!(Arc::ptr_eq(&first, &shared.get("d", 1).unwrap()));
        assert!(shared.get("d", 2).is_none());
        drop((first, again));
        assert!(shared.get("d", 1).is_none(), "nobody holds it: read again");
    }
}
