//! Filtered, sorted, paged reads for the public API ([`BrowseStore`]), each on one pooled
//! connection outside any write transaction.

mod dag_list;
mod run_list;
mod sql;

use async_trait::async_trait;
use updraft_store::*;

use crate::PostgresStore;

#[async_trait]
impl BrowseStore for PostgresStore {
    async fn query_dags(&self, query: DagQuery) -> Result<Page<DagSummary>> {
        dag_list::query_dags(&mut *self.conn().await?, &query).await
    }
    async fn dag_tags(&self, pattern: Option<LikePattern>, window: Window) -> Result<Page<String>> {
        dag_list::dag_tags(&mut *self.conn().await?, pattern.as_deref(), window).await
    }
    async fn dag_run_counts(&self, dag_ids: Option<Vec<String>>) -> Result<Vec<DagRunCounts>> {
        dag_list::dag_run_counts(&mut *self.conn().await?, dag_ids).await
    }
    async fn dag_versions(&self, dag_id: &str, window: Window) -> Result<Page<DagVersionRecord>> {
        dag_list::dag_versions(&mut *self.conn().await?, dag_id, window).await
    }
    async fn dag_source(&self, dag_id: &str, version: i64) -> Result<String> {
        dag_list::dag_source(&mut *self.conn().await?, dag_id, version).await
    }
    async fn query_dag_runs(&self, query: DagRunQuery) -> Result<Page<DagRun>> {
        run_list::query_dag_runs(&mut *self.conn().await?, &query).await
    }
    async fn query_task_instances(
        &self,
        query: TaskInstanceQuery,
    ) -> Result<Page<TaskInstanceRow>> {
        run_list::query_task_instances(&mut *self.conn().await?, &query).await
    }
    async fn task_instance_summaries(
        &self,
        dag_run_ids: Vec<i64>,
    ) -> Result<Vec<TaskInstanceSummary>> {
        run_list::task_instance_summaries(&mut *self.conn().await?, &dag_run_ids).await
    }
    async fn task_tries(&self, ti_id: i64) -> Result<Vec<TaskTry>> {
        run_list::task_tries(&mut *self.conn().await?, ti_id).await
    }
    async fn query_import_errors(
        &self,
        sort: Vec<Sort<ImportErrorSortField>>,
        window: Window,
    ) -> Result<Page<ImportErrorRow>> {
        dag_list::query_import_errors(&mut *self.conn().await?, &sort, window).await
    }
    async fn get_import_error(&self, id: i64) -> Result<ImportErrorRow> {
        dag_list::get_import_error(&mut *self.conn().await?, id).await
    }
}
