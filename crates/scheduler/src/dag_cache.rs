//! DAG versions loaded from the store once and kept, as graphs, for the life of the process.
//! A version never changes once written, so the cache needs no invalidation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use updraft_store::{Store, StoreError};

use crate::graph::DagGraph;

pub struct DagCache {
    store: Arc<dyn Store>,
    graphs: Mutex<HashMap<(String, i64), Arc<DagGraph>>>,
}

impl DagCache {
    pub fn new(store: Arc<dyn Store>) -> Self {
        DagCache {
            store,
            graphs: Mutex::new(HashMap::new()),
        }
    }

    pub async fn get(&self, dag_id: &str, version: i64) -> Result<Arc<DagGraph>, StoreError> {
        let key = (dag_id.to_string(), version);
        if let Some(graph) = self.graphs.lock().ok().and_then(|g| g.get(&key).cloned()) {
            return Ok(graph);
        }
        let dag = self.store.get_dag_version(dag_id, version).await?;
        let graph = Arc::new(DagGraph::new(Arc::new(dag)));
        if let Ok(mut graphs) = self.graphs.lock() {
            graphs.insert(key, graph.clone());
        }
        Ok(graph)
    }
}
