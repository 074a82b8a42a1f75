//! The DAG versions this worker has run tries of: a version never changes once published, so
//! each is fetched once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use updraft_model::Dag;
use updraft_store::{StoreError, TaskExecution};

#[derive(Default)]
pub(super) struct DagCache {
    dags: Mutex<HashMap<(String, i64), Arc<Dag>>>,
}

impl DagCache {
    /// Version `version` of `dag_id`, fetched through `execution` the first time.
    pub(super) async fn get(
        &self,
        execution: &dyn TaskExecution,
        dag_id: &str,
        version: i64,
    ) -> Result<Arc<Dag>, StoreError> {
        let key = (dag_id.to_string(), version);
        if let Some(dag) = self.dags.lock().ok().and_then(|d| d.get(&key).cloned()) {
            return Ok(dag);
        }
        let dag = Arc::new(execution.dag_version(dag_id, version).await?);
        if let Ok(mut dags) = self.dags.lock() {
            dags.insert(key, dag.clone());
        }
        Ok(dag)
    }
}
