//! `GET /dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{try_number}`: a
//! try's log as Airflow 3's structured lines, as JSON with a continuation token or, with
//! `Accept: application/x-ndjson`, as a stream that follows the try until it ends.

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde::{Deserialize, Serialize};
use updraft_model::TaskState;
use updraft_store::{read_try_log, TaskInstance, TryLog};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::common::{PathParams, QueryParams};
use super::task_instances::task_instance_at;
use crate::auth::{Access, Action, Resource};
use crate::{RestError, RestState};

pub(crate) const PERMISSIONS: super::Permissions =
    &[("get_log", Access::Require(Action::Read, Resource::TaskLog))];

pub(crate) fn routes() -> OpenApiRouter<RestState> {
    OpenApiRouter::new().routes(routes!(get_log))
}

/// How often a stream looks for more of a running try's log.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(500);

/// Airflow's `StructuredLogMessage`: one line of a log.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StructuredLogMessage {
    pub timestamp: Option<String>,
    pub event: String,
    /// Who wrote the line (`updraft` for the worker's own lines, `stdout`/`stderr`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logger: Option<String>,
    /// Where the log was read from (only on the opening group line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<String>>,
}

/// Airflow's `TaskInstancesLogResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskInstancesLogResponse {
    pub content: Vec<StructuredLogMessage>,
    pub continuation_token: Option<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// The whole log, whatever the token says.
    pub full_content: Option<bool>,
    /// Only -1: updraft does not map tasks.
    pub map_index: Option<i64>,
    /// Where a previous answer stopped (its `continuation_token`).
    pub token: Option<String>,
}

/// The position a continuation token carries: a byte offset into the log.
#[derive(Debug, Serialize, Deserialize)]
struct Position {
    log_pos: u64,
    end_of_log: bool,
}

/// The continuation token of a position `log_pos` bytes into a try's log that is still being
/// written: a page that shows the first `log_pos` bytes follows the rest from there.
pub fn log_continuation_token(log_pos: u64) -> String {
    encode_token(&Position {
        log_pos,
        end_of_log: false,
    })
}

fn encode_token(position: &Position) -> String {
    let json = serde_json::to_vec(position).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

fn decode_token(token: &str) -> Result<Position, RestError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            RestError::bad_request("Bad Signature. Please use only the tokens provided by the API.")
        })
}

/// One log line as a structured message: `[timestamp] {source} text`, as workers write them,
/// or the bare line.
fn parse_line(line: &str) -> StructuredLogMessage {
    let parsed = line.strip_prefix('[').and_then(|rest| {
        let (timestamp, rest) = rest.split_once("] ")?;
        chrono::DateTime::parse_from_rfc3339(timestamp).ok()?;
        let (logger, event) = match rest.strip_prefix('{').and_then(|r| r.split_once("} ")) {
            Some((logger, event)) => (Some(logger.to_string()), event),
            None => (None, rest),
        };
        Some(StructuredLogMessage {
            timestamp: Some(timestamp.to_string()),
            event: event.to_string(),
            logger,
            sources: None,
        })
    });
    parsed.unwrap_or_else(|| StructuredLogMessage {
        timestamp: None,
        event: line.to_string(),
        logger: None,
        sources: None,
    })
}

/// The group Airflow opens every log with, naming where it was read from.
fn source_lines(log: &TryLog) -> Vec<StructuredLogMessage> {
    let source = match log {
        TryLog::Database { .. } => "database".to_string(),
        TryLog::File { path, .. } | TryLog::Missing { path } => path.display().to_string(),
    };
    vec![
        StructuredLogMessage {
            timestamp: None,
            event: "::group::Log message source details".to_string(),
            logger: None,
            sources: Some(vec![source]),
        },
        StructuredLogMessage {
            timestamp: None,
            event: "::endgroup::".to_string(),
            logger: None,
            sources: None,
        },
    ]
}

/// The complete lines of the log after byte `from` (and, once the try has ended, a last
/// line without its newline), with the offset where the next read starts. `log` holds the
/// log from byte `log.start()` on.
fn lines_after(log: &TryLog, from: u64, ended: bool) -> (Vec<StructuredLogMessage>, u64) {
    let text = log.text().unwrap_or_default();
    let base = log.start();
    let skip = usize::try_from(from.saturating_sub(base))
        .unwrap_or(usize::MAX)
        .min(text.len());
    let Some(rest) = text.get(skip..) else {
        // Not a character boundary: the token was not ours. Read what this part holds.
        return lines_in(text, base, ended);
    };
    lines_in(rest, base + skip as u64, ended)
}

/// The complete lines of `text`, which starts at byte `at` of the log (all of it once the
/// try has ended), and the offset after them.
fn lines_in(text: &str, at: u64, ended: bool) -> (Vec<StructuredLogMessage>, u64) {
    let upto = if ended {
        text.len()
    } else {
        text.rfind('\n').map_or(0, |i| i + 1)
    };
    let lines = text[..upto].lines().map(parse_line).collect();
    (lines, at + upto as u64)
}

/// Whether try `try_number` of `ti` can still write to its log.
fn try_is_live(ti: &TaskInstance, try_number: u32) -> bool {
    ti.try_number == try_number
        && matches!(
            ti.state,
            TaskState::Queued | TaskState::Running | TaskState::Restarting
        )
}

async fn read(
    state: &RestState,
    ti: &TaskInstance,
    try_number: u32,
    from: u64,
) -> Result<TryLog, RestError> {
    Ok(read_try_log(
        state.store().as_ref(),
        &state.config().base_log_folder,
        ti,
        try_number,
        from,
    )
    .await?)
}

/// A try's log: JSON (`content`, `continuation_token`), or NDJSON lines with
/// `Accept: application/x-ndjson`, streamed until the try ends.
#[utoipa::path(get, path = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{try_number}",
    operation_id = "get_log", tag = "Task Instance",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), ("task_id" = String, Path),
        ("try_number" = u32, Path), LogQuery),
    responses((status = 200, body = TaskInstancesLogResponse, content_type = "application/json"),
        (status = 200, body = String, content_type = "application/x-ndjson"),
        (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn get_log(
    State(state): State<RestState>,
    PathParams((dag_id, run_id, task_id, try_number)): PathParams<(String, String, String, u32)>,
    QueryParams(query): QueryParams<LogQuery>,
    headers: HeaderMap,
) -> Result<Response, RestError> {
    let map_index = query.map_index.unwrap_or(-1);
    let (_, ti) = task_instance_at(&state, &dag_id, &run_id, &task_id, map_index).await?;
    if try_number == 0 || try_number > ti.try_number {
        return Err(RestError::not_found(format!(
            "TaskInstance {task_id} of run {run_id} has no try {try_number}"
        )));
    }
    let start = match (&query.token, query.full_content.unwrap_or(false)) {
        (Some(token), false) => decode_token(token)?.log_pos,
        _ => 0,
    };
    let ndjson = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/x-ndjson"));
    if ndjson {
        return stream(state, ti, try_number, start).await;
    }
    let live = try_is_live(&ti, try_number);
    let log = read(&state, &ti, try_number, start).await?;
    let (lines, end) = lines_after(&log, start, !live);
    let mut content = if start == 0 {
        source_lines(&log)
    } else {
        Vec::new()
    };
    content.extend(lines);
    Ok(Json(TaskInstancesLogResponse {
        content,
        continuation_token: Some(encode_token(&Position {
            log_pos: end,
            end_of_log: !live,
        })),
    })
    .into_response())
}

/// NDJSON lines of the log from `start`; while the try runs, more as they are written.
async fn stream(
    state: RestState,
    ti: TaskInstance,
    try_number: u32,
    start: u64,
) -> Result<Response, RestError> {
    struct Following {
        state: RestState,
        ti: TaskInstance,
        try_number: u32,
        position: u64,
        first: bool,
        done: bool,
    }
    let following = Following {
        state,
        ti,
        try_number,
        position: start,
        first: true,
        done: false,
    };
    let chunks = futures_util::stream::unfold(following, |mut f| async move {
        loop {
            if f.done {
                return None;
            }
            if !f.first {
                tokio::time::sleep(FOLLOW_INTERVAL).await;
                // The state first, then the log: a try seen ended has written all of it.
                match super::task_instances::task_instance_at(
                    &f.state,
                    &f.ti.dag_id,
                    &f.ti.run_id,
                    &f.ti.task_id,
                    f.ti.map_index,
                )
                .await
                {
                    Ok((_, ti)) => f.ti = ti,
                    Err(_) => return None,
                }
            }
            let live = try_is_live(&f.ti, f.try_number);
            let log = match read(&f.state, &f.ti, f.try_number, f.position).await {
                Ok(log) => log,
                Err(_) => return None,
            };
            let (lines, end) = lines_after(&log, f.position, !live);
            let mut out = String::new();
            let mut messages = if f.first && f.position == 0 {
                source_lines(&log)
            } else {
                Vec::new()
            };
            messages.extend(lines);
            for message in &messages {
                if let Ok(json) = serde_json::to_string(message) {
                    out.push_str(&json);
                    out.push('\n');
                }
            }
            f.first = false;
            f.position = end;
            f.done = !live;
            if !out.is_empty() {
                return Some((Ok::<_, std::convert::Infallible>(out), f));
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(chunks),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_lines_become_structured_messages() {
        let m = parse_line("[2026-01-01T00:00:00.000Z] {updraft} started process 12");
        assert_eq!(m.timestamp.as_deref(), Some("2026-01-01T00:00:00.000Z"));
        assert_eq!(m.logger.as_deref(), Some("updraft"));
        assert_eq!(m.event, "started process 12");
        let m = parse_line("plain output");
        assert_eq!((m.timestamp, m.event.as_str()), (None, "plain output"));
    }

    fn database(start: u64, text: &str) -> TryLog {
        TryLog::Database {
            start,
            text: text.to_string(),
        }
    }

    #[test]
    fn a_live_log_is_read_up_to_its_last_complete_line() {
        let (lines, end) = lines_after(&database(0, "a\nb\npartial"), 0, false);
        assert_eq!(lines.len(), 2);
        assert_eq!(end, 4);
        let (lines, end) = lines_after(&database(0, "a\nb\npartial"), end, true);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].event, "partial");
        assert_eq!(end, 11);
    }

    #[test]
    fn a_part_read_from_the_middle_is_placed_at_its_offset() {
        // The store answered from the chunk at byte 4, for a reader at byte 6.
        let (lines, end) = lines_after(&database(4, "b\nc\nd\npart"), 6, false);
        let events: Vec<&str> = lines.iter().map(|l| l.event.as_str()).collect();
        assert_eq!(events, ["c", "d"]);
        assert_eq!(end, 10);
    }

    #[test]
    fn tokens_round_trip_and_foreign_ones_are_refused() {
        let token = encode_token(&Position {
            log_pos: 42,
            end_of_log: false,
        });
        assert_eq!(decode_token(&token).unwrap().log_pos, 42);
        assert_eq!(
            decode_token("not a token").unwrap_err().status,
            axum::http::StatusCode::BAD_REQUEST
        );
    }
}
