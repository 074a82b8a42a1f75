//! The JSON bodies of the task-execution API that are not store records themselves.
//!
//! Records that cross the wire unchanged ([`ClaimedTask`](updraft_store::ClaimedTask),
//! [`FinishReport`](updraft_store::FinishReport), [`LogChunk`](updraft_store::LogChunk),
//! [`LogAppend`](updraft_store::LogAppend), [`XCom`](updraft_store::XCom),
//! [`JobHeartbeat`](updraft_store::JobHeartbeat), `TransitionResult`, `updraft_model::Dag`)
//! use their own serde form, and so does a DAG's source (`DagSource`). Variables are
//! `[[key, value], …]`.

use serde::{Deserialize, Serialize};

/// The path prefix of the task-execution routes.
pub const EXECUTION_PREFIX: &str = "/execution/v1";

/// `POST /execution/v1/claim`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimBody {
    pub worker_id: String,
    pub hostname: String,
    /// The queues served; `null` serves every queue.
    pub queues: Option<Vec<String>>,
    /// Only claim tasks of this run (`dags test`); absent for ordinary workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dag_run_id: Option<i64>,
    pub limit: usize,
    /// The lease, counted from the server's clock when it claims.
    pub lease_secs: u64,
    /// When nothing can be claimed at once, how long the server may wait for work to be
    /// queued before it answers (capped by the server, at 30 s).
    #[serde(default)]
    pub wait_ms: u64,
}

/// `POST /execution/v1/heartbeat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatBody {
    pub claim_ids: Vec<String>,
    /// The renewed lease, counted from the server's clock.
    pub lease_secs: u64,
}

/// The answer to [`HeartbeatBody`]: the claims the worker lost (stop those tasks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    pub lost: Vec<String>,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub detail: String,
}

/// The longest lease a claim or heartbeat may ask for.
pub const MAX_LEASE_SECS: u64 = 24 * 60 * 60;
/// The most tasks one claim may ask for.
pub const MAX_CLAIM_LIMIT: usize = 1024;
/// The longest a claim waits for work on the server.
pub const MAX_WAIT_MS: u64 = 30_000;

/// `POST /execution/v1/variables`: sets one variable (`Variable.set` in a Python task).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableBody {
    pub key: String,
    pub value: String,
}

/// The answer of `GET /execution/v1/dag-runs/{dag_id}/{run_id}/state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DagRunStateBody {
    pub state: updraft_model::DagRunState,
}
