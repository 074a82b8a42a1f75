//! DAG versions loaded from the store once and kept, as graphs, for the life of the process.
//! A version never changes once written, so the cache needs no invalidation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;
use updraft_store::{Store, StoreError};

use crate::graph::DagGraph;

/// One cell per version, filled once however many ask for it at the same time.
pub struct DagCache {
    store: Arc<dyn Store>,
    graphs: Mutex<HashMap<(String, i64), Arc<GraphCell>>>,
}

type GraphCell = OnceCell<Arc<DagGraph>>;

impl DagCache {
    pub fn new(store: Arc<dyn Store>) -> Self {
        DagCache {
            store,
            graphs: Mutex::new(HashMap::new()),
        }
    }

    pub async fn get(&self, dag_id: &str, version: i64) -> Result<Arc<DagGraph>, StoreError> {
        let cell = {
            let mut graphs = self
                .graphs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            graphs
                .entry((dag_id.to_string(), version))
                .or_default()
                .clone()
        };
        cell.get_or_try_init(|| async {
            let dag = self.store.get_dag_version(dag_id, version).await?;
            Ok(Arc::new(DagGraph::new(dag)))
        })
        .await
        .cloned()
    }
}
