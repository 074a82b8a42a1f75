//! Change notifications between processes: writers `pg_notify` on one channel inside their
//! transaction (PostgreSQL delivers at commit, and drops them on rollback); each store's
//! listener turns them into [`Change`]s, leaving out its own.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use sqlx::PgConnection;
use tokio::sync::{mpsc, watch};
use updraft_store::{Change, Result, StoreError};

use crate::{db_err, redact};

/// The channel every updraft process notifies and listens on.
pub const CHANNEL: &str = "updraft_changes";

/// PostgreSQL refuses payloads of 8000 bytes or more; a longer change says "everything".
const MAX_PAYLOAD: usize = 7900;

/// How many changes may wait for the receiver before the listener waits for it.
const BUFFER: usize = 1024;

/// A change as announced (the wire form of [`Change`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "of", rename_all = "snake_case")]
pub enum Announce {
    Runs(Vec<i64>),
    WorkQueued(Vec<String>),
    Everything,
}

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    /// The store that wrote it.
    origin: String,
    change: Announce,
}

impl From<Announce> for Change {
    fn from(a: Announce) -> Self {
        match a {
            Announce::Runs(ids) => Change::Runs(ids),
            Announce::WorkQueued(queues) => Change::WorkQueued(queues),
            Announce::Everything => Change::Everything,
        }
    }
}

fn encode(origin: &str, change: &Announce) -> Result<String> {
    let payload = |change: &Announce| {
        serde_json::to_string(&Payload {
            origin: origin.to_string(),
            change: change.clone(),
        })
        .map_err(|e| StoreError::Corrupt(format!("cannot encode a change: {e}")))
    };
    let text = payload(change)?;
    if text.len() <= MAX_PAYLOAD {
        Ok(text)
    } else {
        payload(&Announce::Everything)
    }
}

/// Announces `change` inside the caller's transaction.
pub async fn notify(conn: &mut PgConnection, origin: &str, change: &Announce) -> Result<()> {
    let payload = encode(origin, change)?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// What a notification means to the store `origin`: nothing if it wrote it.
fn decode(payload: &str, origin: &str) -> Option<Change> {
    match serde_json::from_str::<Payload>(payload) {
        Ok(p) if p.origin == origin => None,
        Ok(p) => Some(p.change.into()),
        Err(e) => {
            tracing::warn!(error = %e, payload, "unreadable change notification");
            Some(Change::Everything)
        }
    }
}

async fn connect(url: &str) -> Result<PgListener> {
    let mut listener = PgListener::connect(url)
        .await
        .map_err(|e| StoreError::Database(format!("cannot listen at {}: {e}", redact(url))))?;
    // Reconnect inside `try_recv` before reporting a lost connection, so that nothing is
    // missed between the report and the next `try_recv`.
    listener.eager_reconnect(true);
    listener.listen(CHANNEL).await.map_err(db_err)?;
    Ok(listener)
}

/// Starts listening (before it returns, so every change committed afterwards is seen) and
/// spawns the task that forwards changes until the receiver or the store is dropped.
pub async fn listen(
    url: &str,
    origin: String,
    closed: watch::Receiver<()>,
) -> Result<mpsc::Receiver<Change>> {
    let listener = connect(url).await?;
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(forward(listener, url.to_string(), origin, tx, closed));
    Ok(rx)
}

enum Event {
    Stop,
    Received(std::result::Result<Option<sqlx::postgres::PgNotification>, sqlx::Error>),
}

async fn forward(
    mut listener: PgListener,
    url: String,
    origin: String,
    tx: mpsc::Sender<Change>,
    mut closed: watch::Receiver<()>,
) {
    loop {
        let event = tokio::select! {
            _ = tx.closed() => Event::Stop,
            _ = closed.changed() => Event::Stop,
            received = listener.try_recv() => Event::Received(received),
        };
        let change = match event {
            Event::Stop => return,
            Event::Received(Ok(Some(notification))) => {
                match decode(notification.payload(), &origin) {
                    Some(change) => change,
                    None => continue,
                }
            }
            Event::Received(Ok(None)) => {
                tracing::warn!("change notifications: connection lost and restored");
                Change::Everything
            }
            Event::Received(Err(e)) => {
                tracing::warn!(error = %e, "change notifications: connection lost");
                match reconnect(&url, &tx, &mut closed).await {
                    Some(fresh) => listener = fresh,
                    None => return,
                }
                tracing::info!("change notifications: listening again");
                Change::Everything
            }
        };
        let sent = tokio::select! {
            sent = tx.send(change) => sent.is_ok(),
            _ = closed.changed() => false,
        };
        if !sent {
            return;
        }
    }
}

/// A new listener, retried with backoff; `None` when the receiver or the store went away.
async fn reconnect(
    url: &str,
    tx: &mpsc::Sender<Change>,
    closed: &mut watch::Receiver<()>,
) -> Option<PgListener> {
    let mut delay = Duration::from_millis(100);
    loop {
        tokio::select! {
            _ = tx.closed() => return None,
            _ = closed.changed() => return None,
            _ = tokio::time::sleep(delay) => {}
        }
        match connect(url).await {
            Ok(listener) => return Some(listener),
            Err(e) => {
                tracing::warn!(error = %e, "change notifications: cannot reconnect yet");
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_skip_their_origin() {
        for change in [
            Announce::Runs(vec![1, 2]),
            Announce::WorkQueued(vec!["default".into()]),
            Announce::Everything,
        ] {
            let text = encode("me", &change).unwrap();
            assert_eq!(decode(&text, "me"), None);
            assert_eq!(decode(&text, "other"), Some(change.into()));
        }
        assert_eq!(decode("garbage", "me"), Some(Change::Everything));
    }

    #[test]
    fn oversized_changes_become_everything() {
        let many = Announce::Runs((0..10_000).collect());
        let text = encode("me", &many).unwrap();
        assert!(text.len() <= MAX_PAYLOAD);
        assert_eq!(decode(&text, "other"), Some(Change::Everything));
    }
}
