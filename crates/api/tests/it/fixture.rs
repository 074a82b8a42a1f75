//! The world the tests drive: an API server serving a fresh SQLite store, raw HTTP requests
//! to it, clients, and the store's side of the protocol (a published DAG, queued tasks).

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;
use updraft_api::{serve, ApiError, ApiState, HttpExecution, HttpExecutionOptions};
use updraft_model::Schedule;
use updraft_store::conformance::fixture::{dag, new_run, task, upsert};
use updraft_store::{
    ClaimRequest, DagRun, DagSync, QueueItem, Store, TaskInstance, TaskState, Transition,
    TransitionResult,
};
use updraft_store_sqlite::SqliteStore;

/// The worker token of every test server.
pub const TOKEN: &str = "test-worker-token";

/// The lease the tests' claims ask for.
pub const LEASE: TimeDelta = TimeDelta::seconds(30);

/// The DAG every test publishes (`publish`), with the tasks it asks for.
pub const DAG_ID: &str = "d";

/// An API server on 127.0.0.1 (a free port) over a SQLite store of its own.
pub struct Server {
    pub store: Arc<dyn Store>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// What a scheduler in the server's process pokes when it queued work.
    pub work_queued: Arc<Notify>,
    stop: Option<oneshot::Sender<()>>,
    serving: Option<JoinHandle<Result<(), ApiError>>>,
    _dir: tempfile::TempDir,
}

impl Server {
    pub async fn start() -> Server {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("updraft.db")).expect("open"));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let state = ApiState::new(store.clone(), TOKEN);
        let work_queued = state.work_queued.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(serve(listener, state, async move {
            let _ = stopped.await;
        }));
        Server {
            store,
            url,
            work_queued,
            stop: Some(stop),
            serving: Some(serving),
            _dir: dir,
        }
    }

    pub fn dyn_store(&self) -> &dyn Store {
        &*self.store
    }

    /// Asks the server to shut down (as SIGTERM does to `api-server`); `stopped` waits for it.
    pub fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits until the server stopped serving, and returns how `serve` ended.
    pub async fn stopped(&mut self) -> Result<(), ApiError> {
        let serving = self.serving.take().expect("the server was already awaited");
        tokio::time::timeout(Duration::from_secs(30), serving)
            .await
            .expect("the server did not stop within 30 s")
            .expect("the server task panicked")
    }

    /// A client of this server alone, whose claims answer at once.
    pub fn client(&self) -> HttpExecution {
        client(vec![self.url.clone()], TOKEN, Duration::ZERO)
    }

    /// `GET /execution/v1/PATH` with `token` (none: no `Authorization` header).
    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        let mut request = reqwest::Client::new().get(self.execution_url(path));
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        Answer::of(request).await
    }

    /// `POST /execution/v1/PATH` with the right token and `body` as JSON.
    pub async fn post(&self, path: &str, body: &str) -> Answer {
        let request = reqwest::Client::new()
            .post(self.execution_url(path))
            .header(AUTHORIZATION, format!("Bearer {TOKEN}"))
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string());
        Answer::of(request).await
    }

    pub fn execution_url(&self, path: &str) -> String {
        format!("{}/execution/v1/{}", self.url, path.trim_start_matches('/'))
    }
}

/// A client of `servers` presenting `token`, whose claims wait up to `claim_wait`.
pub fn client(servers: Vec<String>, token: &str, claim_wait: Duration) -> HttpExecution {
    HttpExecution::new(
        servers,
        token.to_string(),
        HttpExecutionOptions {
            claim_wait,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
        },
    )
    .expect("client")
}

/// An HTTP answer, its body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    /// `Null` when the body is not JSON.
    pub json: Value,
}

impl Answer {
    pub async fn of(request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            text,
            json,
        }
    }

    /// The `detail` of an error answer; panics when the body is not the API's error shape.
    pub fn detail(&self) -> &str {
        self.json["detail"].as_str().unwrap_or_else(|| {
            panic!(
                "HTTP {} without a JSON detail: {:?}",
                self.status, self.text
            )
        })
    }
}

/// An address where nothing listens (a port that was free a moment ago).
pub fn dead_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("local address");
    drop(listener);
    format!("http://{address}")
}

/// Publishes the manual DAG [`DAG_ID`] with bash tasks `task_ids`.
pub async fn publish(store: &dyn Store, task_ids: &[&str]) {
    store
        .sync_dags(DagSync {
            dags: vec![upsert(dag(DAG_ID, Schedule::None, task_ids), "h1")],
            now: Utc::now(),
            ..DagSync::default()
        })
        .await
        .expect("sync_dags");
}

/// Creates run `run_id` of [`DAG_ID`] with every task of `task_ids` in state `none`.
pub async fn create_run(store: &dyn Store, run_id: &str, task_ids: &[&str]) -> DagRun {
    store
        .create_dag_run(new_run(
            DAG_ID,
            run_id,
            task_ids.iter().map(|id| task(id)).collect(),
        ))
        .await
        .expect("create_dag_run")
}

/// Queues `tis` as a scheduler does: `none` → `scheduled`, then [`Store::queue`] (new try).
pub async fn queue(store: &dyn Store, tis: &[TaskInstance]) {
    let now = Utc::now();
    let scheduled = tis
        .iter()
        .map(|ti| Transition {
            ti_id: ti.id,
            try_number: ti.try_number,
            from: ti.state,
            to: TaskState::Scheduled,
            now,
            new_try: false,
            next_retry_at: None,
        })
        .collect();
    let results = store.apply_transitions(scheduled).await.expect("schedule");
    assert!(
        results.iter().all(|r| *r == TransitionResult::Applied),
        "{results:?}"
    );
    let items = tis
        .iter()
        .map(|ti| QueueItem {
            ti_id: ti.id,
            try_number: ti.try_number,
            dag_id: ti.dag_id.clone(),
            pool: ti.pool.clone(),
            queue: ti.queue.clone(),
            dag_run_id: ti.dag_run_id,
            max_active_tasks: 16,
            task_limits: None,
            resumes: false,
        })
        .collect();
    let results = store.queue(items, now).await.expect("queue");
    assert!(
        results.iter().all(|r| *r == TransitionResult::Applied),
        "{results:?}"
    );
}

/// Publishes [`DAG_ID`] with `task_ids`, creates run `r` and queues every task of it.
pub async fn queued_run(store: &dyn Store, task_ids: &[&str]) -> DagRun {
    publish(store, task_ids).await;
    let run = create_run(store, "r", task_ids).await;
    queue(store, &tis(store, run.id).await).await;
    run
}

/// Every task instance of run `dag_run_id`.
pub async fn tis(store: &dyn Store, dag_run_id: i64) -> Vec<TaskInstance> {
    store
        .task_instances(dag_run_id)
        .await
        .expect("task_instances")
}

/// The task instance `task_id` of run `dag_run_id`.
pub async fn ti(store: &dyn Store, dag_run_id: i64, task_id: &str) -> TaskInstance {
    tis(store, dag_run_id)
        .await
        .into_iter()
        .find(|ti| ti.task_id == task_id)
        .unwrap_or_else(|| panic!("no task instance {task_id:?} in run #{dag_run_id}"))
}

/// A claim of up to `limit` tasks of any queue by `worker_id`, with a lease of [`LEASE`].
pub fn claim_request(worker_id: &str, limit: usize) -> ClaimRequest {
    let now = Utc::now();
    ClaimRequest {
        worker_id: worker_id.to_string(),
        hostname: format!("{worker_id}.example"),
        queues: None,
        dag_run_id: None,
        limit,
        now,
        lease_until: now + LEASE,
    }
}
