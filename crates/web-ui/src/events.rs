//! `/ui/events`: the server-sent events that keep open pages current. Each committed change
//! the store announces ([`Store::watch`](updraft_store::Store::watch)) becomes one `change`
//! event saying what changed, and `app.js` re-fetches only the regions it concerns. Between
//! changes the stream sends nothing but a keep-alive comment now and then: no polling on
//! either side.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use updraft_rest_api::RestState;
use updraft_store::Change;

use crate::session::Session;

/// How often an idle stream sends a comment, so proxies do not close it.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// What a `change` event carries (its `data`, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeEvent {
    /// `runs` (task instances of `runs` changed, or the runs were created), `queues` (work
    /// was queued), `dags` (a DAG's next scheduled run moved) or `everything`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<String>,
    /// Set when the page should refresh every live region.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub everything: bool,
}

impl From<Change> for ChangeEvent {
    fn from(change: Change) -> Self {
        let nothing = ChangeEvent {
            kind: "everything",
            runs: Vec::new(),
            queues: Vec::new(),
            everything: false,
        };
        match change {
            Change::Runs(runs) => ChangeEvent {
                kind: "runs",
                runs,
                ..nothing
            },
            // Only schedulers hear this; as a run change it is still what a page would want.
            Change::TriesFinished { tries, reread } => ChangeEvent {
                kind: "runs",
                runs: tries.iter().map(|t| t.dag_run_id).chain(reread).collect(),
                ..nothing
            },
            Change::WorkQueued(queues) => ChangeEvent {
                kind: "queues",
                queues,
                ..nothing
            },
            Change::Dags(_) => ChangeEvent {
                kind: "dags",
                ..nothing
            },
            Change::Jobs => ChangeEvent {
                kind: "jobs",
                ..nothing
            },
            // Only schedulers hear it: it changes nothing a page shows.
            Change::PlacesFree => ChangeEvent {
                kind: "places",
                ..nothing
            },
            Change::Everything => ChangeEvent {
                everything: true,
                ..nothing
            },
        }
    }
}

impl ChangeEvent {
    fn to_event(&self) -> Event {
        let data = serde_json::to_string(self).unwrap_or_else(|_| {
            // Serializing ints and strings cannot fail; "everything" is always right.
            r#"{"kind":"everything","everything":true}"#.to_string()
        });
        Event::default().event("change").data(data)
    }
}

/// `GET /ui/events`.
pub async fn events(
    State(state): State<RestState>,
    session: Session,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    tracing::debug!(username = %session.username(), "live updates connected");
    let receiver = state.store().watch();
    let changes = stream::unfold(receiver, |mut receiver| async move {
        let change = match receiver.recv().await {
            Ok(change) => change,
            // Missed some: whatever they were, refreshing everything covers them.
            Err(RecvError::Lagged(_)) => Change::Everything,
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(ChangeEvent::from(change).to_event()), receiver))
    });
    // The stream ends when the session's token does: the browser reconnects, is refused, and
    // the page goes to the login form.
    // (A token is valid through the second of its `exp`: the stream ends just after it.)
    let left = session.principal.expires_at + 1 - chrono::Utc::now().timestamp();
    let expiry = tokio::time::sleep(Duration::from_secs(left.max(0) as u64));
    Sse::new(changes.take_until(expiry)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_say_what_changed() {
        let json = |change| serde_json::to_string(&ChangeEvent::from(change)).unwrap();
        assert_eq!(
            json(Change::Runs(vec![3, 4])),
            r#"{"kind":"runs","runs":[3,4]}"#
        );
        assert_eq!(
            json(Change::WorkQueued(vec!["default".into()])),
            r#"{"kind":"queues","queues":["default"]}"#
        );
        assert_eq!(json(Change::Jobs), r#"{"kind":"jobs"}"#);
        assert_eq!(
            json(Change::Everything),
            r#"{"kind":"everything","everything":true}"#
        );
    }
}
