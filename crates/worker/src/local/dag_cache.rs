//! The DAG versions this worker has run tries of: a version never changes once published, so
//! each is fetched once.

use std::collections::{HashMap, HashSet};
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;
use updraft_model::{Dag, Task};
use updraft_store::{StoreError, TaskExecution};

/// One cell per version, filled by the first try that asks: the tries of a wide layer start
/// together, and a DAG of 50,000 tasks fetched by each of them at once would be tens of copies.
#[derive(Default)]
pub(super) struct DagCache {
    dags: Mutex<HashMap<(String, i64), Arc<DagCell>>>,
}

type DagCell = OnceCell<Arc<CachedDag>>;

/// A DAG version with what each try looks up in it indexed once: a DAG of 50,000 tasks would
/// otherwise be searched task by task for every try.
pub(super) struct CachedDag {
    dag: Arc<Dag>,
    index: HashMap<String, usize>,
    /// The tasks whose result some mapped task maps over.
    mapped_over: HashSet<String>,
}

impl CachedDag {
    fn new(dag: Arc<Dag>) -> CachedDag {
        let index = dag
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.task_id.clone(), i))
            .collect();
        let mapped_over = dag
            .tasks
            .iter()
            .filter_map(|t| t.mapping.as_ref())
            .flat_map(|m| m.upstream_tasks())
            .map(str::to_owned)
            .collect();
        CachedDag {
            dag,
            index,
            mapped_over,
        }
    }

    pub(super) fn task(&self, task_id: &str) -> Option<&Task> {
        self.index.get(task_id).and_then(|&i| self.dag.tasks.get(i))
    }

    /// Whether a mapped task maps over `task_id`'s result.
    pub(super) fn is_mapped_over(&self, task_id: &str) -> bool {
        self.mapped_over.contains(task_id)
    }
}

impl Deref for CachedDag {
    type Target = Dag;

    fn deref(&self) -> &Dag {
        &self.dag
    }
}

impl DagCache {
    /// Version `version` of `dag_id`, fetched through `execution` the first time.
    pub(super) async fn get(
        &self,
        execution: &dyn TaskExecution,
        dag_id: &str,
        version: i64,
    ) -> Result<Arc<CachedDag>, StoreError> {
        let cell = {
            let mut dags = self
                .dags
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            dags.entry((dag_id.to_string(), version))
                .or_default()
                .clone()
        };
        cell.get_or_try_init(|| async {
            Ok(Arc::new(CachedDag::new(
                execution.dag_version(dag_id, version).await?,
            )))
        })
        .await
        .cloned()
    }
}
