//! Cluster (`/cluster`): the schedulers, API servers and workers from their job records —
//! host, queues, running tasks, last heartbeat and state — what Flower showed for Celery.
//! A `standalone` process is its own scheduler, API server and worker.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use updraft_rest_api::RestState;
use updraft_store::{JobKind, JobRecord, TaskInstance};

use crate::layout::Page;
use crate::links;
use crate::query::QueryParams;
use crate::session::Session;
use crate::time::{ago, Moment};
use crate::UiError;

/// Running tasks listed per process (the count is complete).
const TASKS_SHOWN: usize = 5;

#[derive(Debug, Default, Deserialize)]
pub struct ClusterQuery {
    #[serde(default)]
    fragment: Option<String>,
}

pub struct TaskLink {
    pub label: String,
    pub href: String,
}

pub struct ProcessRow {
    pub id: String,
    pub kind: &'static str,
    pub hostname: String,
    pub queues: String,
    pub state: String,
    pub healthy: bool,
    pub started: Moment,
    pub heartbeat: Moment,
    pub heartbeat_ago: String,
    pub running: usize,
    pub tasks: Vec<TaskLink>,
}

pub struct Section {
    pub id: &'static str,
    pub title: &'static str,
    pub rows: Vec<ProcessRow>,
    pub shows_tasks: bool,
}

pub struct Cluster {
    pub sections: Vec<Section>,
}

#[derive(Template)]
#[template(path = "cluster.html")]
struct ClusterPage {
    page: Page,
    cluster: Cluster,
}

#[derive(Template)]
#[template(path = "cluster/sections.html")]
struct SectionsFragment {
    cluster: Cluster,
}

/// `GET /cluster` (`?fragment=sections`: the live part only).
pub async fn page(
    State(state): State<RestState>,
    session: Session,
    QueryParams(query): QueryParams<ClusterQuery>,
) -> Result<Response, UiError> {
    let store = state.store();
    let now = Utc::now();
    // Records of the last day: a process gone for longer is not worth a row.
    let (jobs, running) = tokio::try_join!(
        store.list_jobs(None, now - chrono::Duration::days(1)),
        store.running_task_instances(),
    )?;
    let stale_after = chrono::Duration::from_std(state.config().health.stale_after)
        .unwrap_or(chrono::Duration::MAX);
    let cluster = cluster(jobs, running, now, stale_after);
    match query.fragment.as_deref() {
        Some("sections") => Ok(super::html(&SectionsFragment { cluster })?.into_response()),
        Some(other) => Err(UiError::BadRequest(format!("no fragment {other:?}"))),
        None => Ok(super::html(&ClusterPage {
            page: Page::new(&session, "cluster"),
            cluster,
        })?
        .into_response()),
    }
}

/// The sections of the page from the job records and the running task instances.
pub fn cluster(
    mut jobs: Vec<JobRecord>,
    running: Vec<TaskInstance>,
    now: DateTime<Utc>,
    stale_after: chrono::Duration,
) -> Cluster {
    jobs.sort_by(|a, b| a.hostname.cmp(&b.hostname).then(a.id.cmp(&b.id)));
    let mut by_worker: HashMap<&str, Vec<&TaskInstance>> = HashMap::new();
    for ti in &running {
        if let Some(worker) = ti.worker_id.as_deref() {
            by_worker.entry(worker).or_default().push(ti);
        }
    }
    let row = |job: &JobRecord, with_tasks: bool| {
        let tasks = if with_tasks {
            by_worker.get(job.id.as_str()).cloned().unwrap_or_default()
        } else {
            Vec::new()
        };
        let fresh = now - job.latest_heartbeat <= stale_after;
        ProcessRow {
            id: job.id.clone(),
            kind: job.kind.as_str(),
            hostname: job.hostname.clone(),
            queues: if job.queues.is_empty() {
                if matches!(job.kind, JobKind::Worker | JobKind::Standalone) {
                    "all".to_string()
                } else {
                    String::new()
                }
            } else {
                job.queues.join(", ")
            },
            state: if fresh {
                job.state.clone()
            } else {
                "lost (no heartbeat)".to_string()
            },
            healthy: fresh && job.state == "running",
            started: Moment::new(job.started_at),
            heartbeat: Moment::new(job.latest_heartbeat),
            heartbeat_ago: ago(job.latest_heartbeat, now),
            running: tasks.len(),
            tasks: tasks
                .iter()
                .take(TASKS_SHOWN)
                .map(|ti| TaskLink {
                    label: format!("{}.{} ({})", ti.dag_id, ti.task_id, ti.run_id),
                    href: links::task_try(&ti.dag_id, &ti.run_id, &ti.task_id, ti.try_number),
                })
                .collect(),
        }
    };
    let of = |kind: JobKind| {
        jobs.iter()
            .filter(move |j| j.kind == kind || j.kind == JobKind::Standalone)
    };
    Cluster {
        sections: vec![
            Section {
                id: "schedulers",
                title: "Schedulers",
                rows: of(JobKind::Scheduler).map(|j| row(j, false)).collect(),
                shows_tasks: false,
            },
            Section {
                id: "api-servers",
                title: "API servers",
                rows: of(JobKind::ApiServer).map(|j| row(j, false)).collect(),
                shows_tasks: false,
            },
            Section {
                id: "workers",
                title: "Workers",
                rows: of(JobKind::Worker).map(|j| row(j, true)).collect(),
                shows_tasks: true,
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, kind: JobKind, beat_secs_ago: i64, now: DateTime<Utc>) -> JobRecord {
        JobRecord {
            id: id.into(),
            number: 1,
            kind,
            hostname: format!("host-{id}"),
            queues: Vec::new(),
            state: "running".into(),
            started_at: now - chrono::Duration::hours(1),
            latest_heartbeat: now - chrono::Duration::seconds(beat_secs_ago),
        }
    }

    #[test]
    fn a_standalone_is_in_every_section_and_a_silent_process_is_lost() {
        let now = Utc::now();
        let jobs = vec![
            job("s", JobKind::Standalone, 1, now),
            job("w", JobKind::Worker, 120, now),
        ];
        let cluster = cluster(jobs, Vec::new(), now, chrono::Duration::seconds(30));
        let ids = |i: usize| -> Vec<&str> {
            cluster.sections[i]
                .rows
                .iter()
                .map(|r| r.id.as_str())
                .collect()
        };
        assert_eq!(ids(0), ["s"]);
        assert_eq!(ids(1), ["s"]);
        assert_eq!(ids(2), ["s", "w"]);
        let lost = &cluster.sections[2].rows[1];
        assert!(!lost.healthy);
        assert!(lost.state.starts_with("lost"), "{}", lost.state);
        assert_eq!(cluster.sections[2].rows[0].queues, "all");
    }
}
