//! The worker: runs claimed task tries as real processes (process groups, timeouts, logs, XCom).

mod local;
pub mod log_shipper;
pub mod notify;
pub mod process;
mod secrets;
mod waiting;

pub use local::{
    FinishedHook, LocalWorker, LocalWorkerConfig, ReadOnlyExecution, Reported, TaskTry, TestOutcome,
};

pub use process::{
    kill_orphan_containers, kill_orphans, log_path, reaper_main, run_task, run_task_guarded,
    FailureReason, Reaper, TaskLaunch, TaskOutcome, CLAIM_ID_ENV, DEFAULT_KILL_GRACE,
};
