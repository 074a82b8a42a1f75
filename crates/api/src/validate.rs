//! What the server checks in a request body before it touches the store: JSON decoding as the
//! routes do it, then the limits on each body. Pure (the clock is passed in), so that the
//! checks are tested and fuzzed without a server, a runtime or a database (`fuzz/`).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::de::DeserializeOwned;
use updraft_store::{
    ClaimRequest, FinishReport, JobHeartbeat, JobKind, LogChunk, TriggerDagRunRequest,
};

use crate::wire::{
    ClaimBody, HeartbeatBody, VariableBody, MAX_CLAIM_LIMIT, MAX_LEASE_SECS, MAX_WAIT_MS,
};

/// Why a request body is refused; the server answers it with status 422 and this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBody {
    /// Not JSON, or JSON of another shape than the route's body (as the route's JSON
    /// extractor reports it).
    #[error("{0}")]
    Malformed(String),
    /// Well-formed, but a value is out of its bounds.
    #[error("{0}")]
    OutOfBounds(String),
}

/// The routes of `/execution/v1/` that take a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRoute {
    Claim,
    Heartbeat,
    Finish,
    Logs,
    TriggerDagRun,
    SetVariable,
    WorkerHeartbeat,
}

impl BodyRoute {
    pub const ALL: [BodyRoute; 7] = [
        BodyRoute::Claim,
        BodyRoute::Heartbeat,
        BodyRoute::Finish,
        BodyRoute::Logs,
        BodyRoute::TriggerDagRun,
        BodyRoute::SetVariable,
        BodyRoute::WorkerHeartbeat,
    ];
}

/// A body that passed its route's checks, as the store is then asked with it.
#[derive(Debug, Clone)]
pub enum AcceptedBody {
    Claim(ClaimRequest),
    /// The claims to renew, until when.
    Heartbeat {
        claim_ids: Vec<String>,
        lease_until: DateTime<Utc>,
    },
    Finish(Vec<FinishReport>),
    Logs(LogChunk),
    TriggerDagRun(TriggerDagRunRequest),
    SetVariable(VariableBody),
    WorkerHeartbeat(JobHeartbeat),
}

/// Decodes `bytes` as `route`'s body and checks it, with `now` as the server's clock: the
/// whole of what the server does with a body before the store sees it.
pub fn accept_body(
    route: BodyRoute,
    bytes: &[u8],
    now: DateTime<Utc>,
) -> Result<AcceptedBody, InvalidBody> {
    Ok(match route {
        BodyRoute::Claim => AcceptedBody::Claim(claim_request(&decode(bytes)?, now)?),
        BodyRoute::Heartbeat => {
            let body: HeartbeatBody = decode(bytes)?;
            AcceptedBody::Heartbeat {
                lease_until: lease_until(now, body.lease_secs)?,
                claim_ids: body.claim_ids,
            }
        }
        BodyRoute::Finish => AcceptedBody::Finish(decode(bytes)?),
        BodyRoute::Logs => AcceptedBody::Logs(decode(bytes)?),
        BodyRoute::TriggerDagRun => {
            let request = decode(bytes)?;
            check_trigger_dag_run(&request)?;
            AcceptedBody::TriggerDagRun(request)
        }
        BodyRoute::SetVariable => AcceptedBody::SetVariable(decode(bytes)?),
        BodyRoute::WorkerHeartbeat => {
            let beat = decode(bytes)?;
            check_worker_heartbeat(&beat)?;
            AcceptedBody::WorkerHeartbeat(beat)
        }
    })
}

/// The store's claim for `body`, its lease counted from `now`.
pub fn claim_request(body: &ClaimBody, now: DateTime<Utc>) -> Result<ClaimRequest, InvalidBody> {
    if body.worker_id.is_empty() {
        return Err(out_of_bounds("worker_id must not be empty"));
    }
    if body.limit > MAX_CLAIM_LIMIT {
        return Err(out_of_bounds(format!(
            "limit {} is above the maximum of {MAX_CLAIM_LIMIT}",
            body.limit
        )));
    }
    Ok(ClaimRequest {
        worker_id: body.worker_id.clone(),
        hostname: body.hostname.clone(),
        queues: body.queues.clone(),
        dag_run_id: body.dag_run_id,
        limit: body.limit,
        now,
        lease_until: lease_until(now, body.lease_secs)?,
    })
}

/// How long a claim that finds nothing may wait for work on the server.
pub fn claim_wait(body: &ClaimBody) -> Duration {
    Duration::from_millis(body.wait_ms.min(MAX_WAIT_MS))
}

/// When a lease of `lease_secs` taken at `now` ends; the lease must be 1 s to a day.
pub fn lease_until(now: DateTime<Utc>, lease_secs: u64) -> Result<DateTime<Utc>, InvalidBody> {
    if lease_secs == 0 || lease_secs > MAX_LEASE_SECS {
        return Err(out_of_bounds(format!(
            "lease_secs must be between 1 and {MAX_LEASE_SECS}, not {lease_secs}"
        )));
    }
    // Bounded above, so the conversions succeed; an error rather than a panic anyway.
    i64::try_from(lease_secs)
        .ok()
        .and_then(TimeDelta::try_seconds)
        .and_then(|lease| now.checked_add_signed(lease))
        .ok_or_else(|| out_of_bounds("the lease ends past the representable time"))
}

/// A trigger names the DAG and the run.
pub fn check_trigger_dag_run(request: &TriggerDagRunRequest) -> Result<(), InvalidBody> {
    if request.dag_id.is_empty() || request.run_id.trim().is_empty() {
        return Err(out_of_bounds("dag_id and run_id must not be empty"));
    }
    Ok(())
}

/// The worker token records workers only, each with an id.
pub fn check_worker_heartbeat(beat: &JobHeartbeat) -> Result<(), InvalidBody> {
    if beat.kind != JobKind::Worker {
        return Err(out_of_bounds(format!(
            "the worker token records workers only, not a {}",
            beat.kind.as_str()
        )));
    }
    if beat.id.is_empty() {
        return Err(out_of_bounds("id must not be empty"));
    }
    Ok(())
}

/// Decodes like the routes' JSON extractor: one JSON value, nothing after it but whitespace.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, InvalidBody> {
    serde_json::from_slice(bytes).map_err(|e| {
        InvalidBody::Malformed(format!(
            "Failed to deserialize the JSON body into the target type: {e}"
        ))
    })
}

fn out_of_bounds(detail: impl Into<String>) -> InvalidBody {
    InvalidBody::OutOfBounds(detail.into())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn refusal(route: BodyRoute, body: &str) -> String {
        match accept_body(route, body.as_bytes(), now()) {
            Ok(accepted) => panic!("{body} was accepted: {accepted:?}"),
            Err(invalid) => invalid.to_string(),
        }
    }

    #[test]
    fn bodies_out_of_bounds_are_refused_with_the_reason() {
        let claim = |fields: &str| {
            format!(r#"{{"worker_id": "w", "hostname": "h", "queues": null, {fields}}}"#)
        };
        let cases = [
            (
                BodyRoute::Claim,
                claim(r#""limit": 1025, "lease_secs": 30"#),
                "limit 1025 is above the maximum of 1024",
            ),
            (
                BodyRoute::Claim,
                claim(r#""limit": 1, "lease_secs": 0"#),
                "lease_secs must be between 1 and 86400, not 0",
            ),
            (
                BodyRoute::Heartbeat,
                r#"{"claim_ids": [], "lease_secs": 86401}"#.to_owned(),
                "lease_secs must be between 1 and 86400, not 86401",
            ),
            (
                BodyRoute::TriggerDagRun,
                r#"{"dag_id": "d", "run_id": " ", "logical_date": "2026-01-01T00:00:00Z"}"#
                    .to_owned(),
                "dag_id and run_id must not be empty",
            ),
            (
                BodyRoute::WorkerHeartbeat,
                r#"{"id": "x", "kind": "scheduler", "hostname": "h", "queues": [],
                    "state": "running", "now": "2026-01-01T00:00:00Z"}"#
                    .to_owned(),
                "the worker token records workers only, not a scheduler",
            ),
        ];
        for (route, body, reason) in cases {
            assert_eq!(refusal(route, &body), reason, "{body}");
        }
    }

    #[test]
    fn malformed_bodies_are_refused_as_such() {
        for body in [
            "",
            "{",
            "[]",
            r#"{"key": "k"} trailing"#,
            r#"{"key": 1, "value": "v"}"#,
        ] {
            let refused = accept_body(BodyRoute::SetVariable, body.as_bytes(), now());
            assert!(
                matches!(refused, Err(InvalidBody::Malformed(_))),
                "{body}: {refused:?}"
            );
        }
    }

    #[test]
    fn a_claim_leases_from_the_given_instant() {
        let body = br#"{"worker_id": "w", "hostname": "h", "queues": ["q"], "limit": 2,
                        "lease_secs": 90, "wait_ms": 99999999}"#;
        let Ok(AcceptedBody::Claim(request)) = accept_body(BodyRoute::Claim, body, now()) else {
            panic!("the claim is valid");
        };
        assert_eq!(request.now, now());
        assert_eq!(request.lease_until, now() + TimeDelta::seconds(90));
        assert_eq!(request.queues, Some(vec!["q".to_owned()]));
    }
}
