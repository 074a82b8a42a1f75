//! Filtered, sorted, paged reads for the public API ([`BrowseStore`]), on the read path of the
//! one connection.

mod dag_list;
mod run_list;
mod sql;

use async_trait::async_trait;
use updraft_store::*;

use crate::SqliteStore;

#[async_trait]
impl BrowseStore for SqliteStore {
    async fn query_dags(&self, query: DagQuery) -> Result<Page<DagSummary>> {
        self.read(move |c| dag_list::query_dags(c, &query)).await
    }
    async fn dag_tags(&self, pattern: Option<LikePattern>, window: Window) -> Result<Page<String>> {
        self.read(move |c| dag_list::dag_tags(c, pattern.as_deref(), window))
            .await
    }
    async fn dag_run_counts(&self, dag_ids: Option<Vec<String>>) -> Result<Vec<DagRunCounts>> {
        self.read(move |c| dag_list::dag_run_counts(c, dag_ids))
            .await
    }
    async fn dag_versions(&self, dag_id: &str, window: Window) -> Result<Page<DagVersionRecord>> {
        let dag_id = dag_id.to_string();
        self.read(move |c| dag_list::dag_versions(c, &dag_id, window))
            .await
    }
    async fn dag_source(&self, dag_id: &str, version: i64) -> Result<String> {
        let dag_id = dag_id.to_string();
        self.read(move |c| dag_list::dag_source(c, &dag_id, version))
            .await
    }
    async fn query_dag_runs(&self, query: DagRunQuery) -> Result<Page<DagRun>> {
        self.read(move |c| run_list::query_dag_runs(c, &query))
            .await
    }
    async fn query_task_instances(
        &self,
        query: TaskInstanceQuery,
    ) -> Result<Page<TaskInstanceRow>> {
        self.read(move |c| run_list::query_task_instances(c, &query))
            .await
    }
    async fn task_instance_summaries(
        &self,
        dag_run_ids: Vec<i64>,
    ) -> Result<Vec<TaskInstanceSummary>> {
        self.read(move |c| run_list::task_instance_summaries(c, &dag_run_ids))
            .await
    }
    async fn task_tries(&self, ti_id: i64) -> Result<Vec<TaskTry>> {
        self.read(move |c| run_list::task_tries(c, ti_id)).await
    }
    async fn query_import_errors(
        &self,
        sort: Vec<Sort<ImportErrorSortField>>,
        window: Window,
    ) -> Result<Page<ImportErrorRow>> {
        self.read(move |c| dag_list::query_import_errors(c, &sort, window))
            .await
    }
    async fn get_import_error(&self, id: i64) -> Result<ImportErrorRow> {
        self.read(move |c| dag_list::get_import_error(c, id)).await
    }
}
