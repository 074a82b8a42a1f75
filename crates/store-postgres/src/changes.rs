//! Change notifications between processes: writers `pg_notify` on one channel inside their
//! transaction (PostgreSQL delivers at commit, and drops them on rollback); each store's
//! listener turns them into [`Change`]s, leaving out its own. A scheduler's listener
//! ([`listen`]) feeds one receiver; the watchers' listener ([`watch_others`]) feeds the
//! store's broadcast channel, next to the store's own commits.
//!
//! Changes only readers care about — claims, the scheduler's own transitions, notes — go on
//! a second channel, [`WATCH_CHANNEL`], that only the watchers' listener listens on: a UI on
//! another server sees a task start at once, and schedulers and claim waiters are not woken
//! for what they need not react to.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use sqlx::PgConnection;
use tokio::sync::{broadcast, mpsc, watch};
use updraft_store::{Change, FinishedTry, Result, StoreError};

use crate::{db_err, redact};

/// The channel every updraft process notifies and listens on.
pub const CHANNEL: &str = "updraft_changes";

/// The channel of changes that concern only watchers ([`notify_watchers`]).
pub const WATCH_CHANNEL: &str = "updraft_watch";

/// PostgreSQL refuses payloads of 8000 bytes or more; a longer change says "everything".
pub(crate) const MAX_PAYLOAD: usize = 7900;

/// How many changes may wait for the receiver before the listener waits for it.
const BUFFER: usize = 1024;

/// A change as announced (the wire form of [`Change`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "of", rename_all = "snake_case")]
pub enum Announce {
    Runs(Vec<i64>),
    WorkQueued(Vec<String>),
    /// On the watchers' channel only.
    Jobs,
    Everything,
}

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    /// The store that wrote it.
    origin: String,
    change: Announce,
    /// Runs whose task instances changed too (the runs of queued work), for watchers; older
    /// processes ignore it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    runs: Vec<i64>,
    /// The tries a finish applied, for schedulers ([`Change::TriesFinished`]); `change` names
    /// their runs as well, for watchers and older processes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    finished: Vec<FinishedTry>,
    /// With `finished`: the runs the finish changed beyond those tries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    reread: Vec<i64>,
    /// A scheduler left places free it could not fill ([`Change::PlacesFree`]); `change`
    /// then names no run, which an older scheduler answers with a pass that queues.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    places_free: bool,
}

impl From<Announce> for Change {
    fn from(a: Announce) -> Self {
        match a {
            Announce::Runs(ids) => Change::Runs(ids),
            Announce::WorkQueued(queues) => Change::WorkQueued(queues),
            Announce::Jobs => Change::Jobs,
            Announce::Everything => Change::Everything,
        }
    }
}

/// The tries a finish applied and the runs it changed beyond them, as announced.
#[derive(Debug, Clone, Copy, Default)]
pub struct TriesEnded<'a> {
    pub tries: &'a [FinishedTry],
    pub reread: &'a [i64],
}

/// The payload, made smaller until PostgreSQL takes it: without the tries (schedulers read
/// their runs again), then "everything".
fn encode(origin: &str, change: &Announce, runs: &[i64], ended: TriesEnded) -> Result<String> {
    let payload = |change: &Announce, runs: &[i64], ended: TriesEnded| {
        serde_json::to_string(&Payload {
            origin: origin.to_string(),
            change: change.clone(),
            runs: runs.to_vec(),
            finished: ended.tries.to_vec(),
            reread: ended.reread.to_vec(),
            places_free: false,
        })
        .map_err(|e| StoreError::Corrupt(format!("cannot encode a change: {e}")))
    };
    for ended in [ended, TriesEnded::default()] {
        let text = payload(change, runs, ended)?;
        if text.len() <= MAX_PAYLOAD {
            return Ok(text);
        }
    }
    payload(&Announce::Everything, &[], TriesEnded::default())
}

/// SQL of a query announcing, on the channel bound as `$channel`, the runs (the `dag_run_id`
/// column) of the rows of `rows` as [`Announce::Runs`] from the store bound as `$origin` (the
/// wire form of [`Payload`]; "everything" when that would be too long for PostgreSQL), for a
/// statement that announces its own changes as it makes them. Announces nothing when `rows`
/// has none; yields one row (a count) either way, so a statement can join it to make sure it
/// runs.
pub fn announce_runs_sql(rows: &str, channel: u8, origin: u8) -> String {
    format!(
        "SELECT count(*) FROM ( \
             SELECT pg_notify(${channel}, CASE WHEN octet_length(runs) <= {MAX_PAYLOAD} \
                 THEN runs ELSE json_build_object('origin', ${origin}::text, \
                     'change', json_build_object('kind', 'everything'))::text END) \
             FROM (SELECT json_build_object('origin', ${origin}::text, \
                       'change', json_build_object('kind', 'runs', \
                           'of', json_agg(DISTINCT dag_run_id ORDER BY dag_run_id)))::text AS runs \
                   FROM {rows} HAVING count(*) > 0) announcement) announced_runs"
    )
}

/// The payload announcing `change` and, for watchers, `runs` whose task instances changed,
/// for a statement that notifies by itself.
pub fn announcement(origin: &str, change: &Announce, runs: &[i64]) -> Result<String> {
    encode(origin, change, runs, TriesEnded::default())
}

/// Announces `change` (and, for watchers, `runs` whose task instances changed too; for
/// schedulers, the tries that `ended`) inside the caller's transaction.
pub async fn notify(
    conn: &mut PgConnection,
    origin: &str,
    change: &Announce,
    runs: &[i64],
    ended: TriesEnded<'_>,
) -> Result<()> {
    let payload = encode(origin, change, runs, ended)?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Announces `change` to the watchers of other processes only (on [`WATCH_CHANNEL`]), inside
/// the caller's transaction.
pub async fn notify_watchers(
    conn: &mut PgConnection,
    origin: &str,
    change: &Announce,
) -> Result<()> {
    let payload = encode(origin, change, &[], TriesEnded::default())?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(WATCH_CHANNEL)
        .bind(payload)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Announces to the other schedulers that places are free which the store `origin`'s
/// scheduler could not fill, at once (outside any transaction: nothing is committed with it).
pub async fn notify_places_free(conn: &mut PgConnection, origin: &str) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(places_free_payload(origin)?)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

fn places_free_payload(origin: &str) -> Result<String> {
    serde_json::to_string(&Payload {
        origin: origin.to_string(),
        change: Announce::Runs(Vec::new()),
        runs: Vec::new(),
        finished: Vec::new(),
        reread: Vec::new(),
        places_free: true,
    })
    .map_err(|e| StoreError::Corrupt(format!("cannot encode a change: {e}")))
}

/// What a notification means to the store `origin`: nothing if it wrote it. A scheduler hears
/// the announced change (the tries of a finish in place of its runs); watchers hear it and
/// the runs it touched.
fn decode(payload: &str, origin: &str, for_scheduler: bool) -> Vec<Change> {
    match serde_json::from_str::<Payload>(payload) {
        Ok(p) if p.origin == origin => Vec::new(),
        // Watchers show what is committed; free places change nothing they show.
        Ok(p) if p.places_free => {
            if for_scheduler {
                vec![Change::PlacesFree]
            } else {
                Vec::new()
            }
        }
        Ok(p) if for_scheduler && !p.finished.is_empty() => vec![Change::TriesFinished {
            tries: p.finished,
            reread: p.reread,
        }],
        Ok(p) if for_scheduler => vec![p.change.into()],
        Ok(p) => {
            let mut changes = vec![p.change.into()];
            if !p.runs.is_empty() {
                changes.push(Change::Runs(p.runs));
            }
            changes
        }
        Err(e) => {
            tracing::warn!(error = %e, payload, "unreadable change notification");
            vec![Change::Everything]
        }
    }
}

/// Where a listener's changes go.
enum Sink {
    /// A scheduler's receiver: only the announced changes, in order, waiting for room.
    Scheduler(mpsc::Sender<Change>),
    /// The store's watchers: everything, never waiting (a receiver that lags is told so).
    Watchers(broadcast::Sender<Change>),
}

impl Sink {
    /// What it listens on: watchers hear also what concerns only them.
    fn channels(&self) -> &'static [&'static str] {
        match self {
            Sink::Scheduler(_) => &[CHANNEL],
            Sink::Watchers(_) => &[CHANNEL, WATCH_CHANNEL],
        }
    }

    /// Resolves when nobody can receive any more (never for watchers: the store may make
    /// new receivers until it is dropped).
    async fn closed(&self) {
        match self {
            Sink::Scheduler(tx) => tx.closed().await,
            Sink::Watchers(_) => std::future::pending().await,
        }
    }

    /// Whether the changes could be handed on.
    async fn send(&self, changes: Vec<Change>, closed: &mut watch::Receiver<()>) -> bool {
        match self {
            Sink::Scheduler(tx) => {
                let Some(change) = changes.into_iter().next() else {
                    return true;
                };
                tokio::select! {
                    sent = tx.send(change) => sent.is_ok(),
                    _ = closed.changed() => false,
                }
            }
            Sink::Watchers(tx) => {
                for change in changes {
                    // An error only means that nobody watches right now.
                    let _ = tx.send(change);
                }
                true
            }
        }
    }
}

async fn connect(url: &str, channels: &[&str]) -> Result<PgListener> {
    let mut listener = PgListener::connect(url)
        .await
        .map_err(|e| StoreError::database(format!("cannot listen at {}: {e}", redact(url))))?;
    // Reconnect inside `try_recv` before reporting a lost connection, so that nothing is
    // missed between the report and the next `try_recv`.
    listener.eager_reconnect(true);
    listener
        .listen_all(channels.iter().copied())
        .await
        .map_err(db_err)?;
    Ok(listener)
}

/// Starts listening (before it returns, so every change committed afterwards is seen) and
/// spawns the task that forwards changes until the receiver or the store is dropped.
pub async fn listen(
    url: &str,
    origin: String,
    closed: watch::Receiver<()>,
) -> Result<mpsc::Receiver<Change>> {
    let (tx, rx) = mpsc::channel(BUFFER);
    let sink = Sink::Scheduler(tx);
    let listener = connect(url, sink.channels()).await?;
    tokio::spawn(forward(listener, url.to_string(), origin, sink, closed));
    Ok(rx)
}

/// Spawns the task that forwards other processes' changes to `watchers` until the store is
/// dropped. It connects in the background (retrying), and sends [`Change::Everything`] once
/// it listens, since changes committed before were not seen.
pub fn watch_others(
    url: String,
    origin: String,
    watchers: broadcast::Sender<Change>,
    mut closed: watch::Receiver<()>,
) {
    tokio::spawn(async move {
        let sink = Sink::Watchers(watchers);
        let listener = match connect(&url, sink.channels()).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(error = %e, "change notifications for watchers: cannot listen yet");
                match reconnect(&url, &sink, &mut closed).await {
                    Some(listener) => listener,
                    None => return,
                }
            }
        };
        if sink.send(vec![Change::Everything], &mut closed).await {
            forward(listener, url, origin, sink, closed).await;
        }
    });
}

enum Event {
    Stop,
    Received(std::result::Result<Option<sqlx::postgres::PgNotification>, sqlx::Error>),
}

async fn forward(
    mut listener: PgListener,
    url: String,
    origin: String,
    sink: Sink,
    mut closed: watch::Receiver<()>,
) {
    loop {
        let event = tokio::select! {
            _ = sink.closed() => Event::Stop,
            _ = closed.changed() => Event::Stop,
            received = listener.try_recv() => Event::Received(received),
        };
        let changes = match event {
            Event::Stop => return,
            Event::Received(Ok(Some(notification))) => {
                let for_scheduler = matches!(sink, Sink::Scheduler(_));
                let changes = decode(notification.payload(), &origin, for_scheduler);
                if changes.is_empty() {
                    continue;
                }
                changes
            }
            Event::Received(Ok(None)) => {
                tracing::warn!("change notifications: connection lost and restored");
                vec![Change::Everything]
            }
            Event::Received(Err(e)) => {
                tracing::warn!(error = %e, "change notifications: connection lost");
                match reconnect(&url, &sink, &mut closed).await {
                    Some(fresh) => listener = fresh,
                    None => return,
                }
                tracing::info!("change notifications: listening again");
                vec![Change::Everything]
            }
        };
        if !sink.send(changes, &mut closed).await {
            return;
        }
    }
}

/// A new listener, retried with backoff; `None` when the receiver or the store went away.
async fn reconnect(url: &str, sink: &Sink, closed: &mut watch::Receiver<()>) -> Option<PgListener> {
    let mut delay = Duration::from_millis(100);
    loop {
        tokio::select! {
            _ = sink.closed() => return None,
            _ = closed.changed() => return None,
            _ = tokio::time::sleep(delay) => {}
        }
        match connect(url, sink.channels()).await {
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
    use updraft_store::TaskState;

    fn no_tries() -> TriesEnded<'static> {
        TriesEnded::default()
    }

    #[test]
    fn payloads_round_trip_and_skip_their_origin() {
        for change in [
            Announce::Runs(vec![1, 2]),
            Announce::WorkQueued(vec!["default".into()]),
            Announce::Everything,
        ] {
            let text = encode("me", &change, &[], no_tries()).unwrap();
            for for_scheduler in [false, true] {
                assert_eq!(decode(&text, "me", for_scheduler), vec![]);
                assert_eq!(
                    decode(&text, "other", for_scheduler),
                    vec![change.clone().into()]
                );
            }
        }
        assert_eq!(decode("garbage", "me", true), vec![Change::Everything]);
    }

    #[test]
    fn runs_of_queued_work_reach_watchers_and_older_payloads_still_decode() {
        let queued = Announce::WorkQueued(vec!["default".into()]);
        let text = encode("me", &queued, &[7, 9], no_tries()).unwrap();
        assert_eq!(
            decode(&text, "other", false),
            vec![
                Change::WorkQueued(vec!["default".into()]),
                Change::Runs(vec![7, 9])
            ]
        );
        assert_eq!(
            decode(&text, "other", true),
            vec![Change::WorkQueued(vec!["default".into()])]
        );
        let older = r#"{"origin":"x","change":{"kind":"work_queued","of":["default"]}}"#;
        assert_eq!(
            decode(older, "other", false),
            vec![Change::WorkQueued(vec!["default".into()])]
        );
    }

    fn ended(ti_id: i64) -> FinishedTry {
        FinishedTry {
            dag_run_id: 3,
            ti_id,
            try_number: 2,
            state: TaskState::UpForRetry,
            next_retry_at: chrono::DateTime::from_timestamp(1_700_000_000, 0),
        }
    }

    #[test]
    fn schedulers_hear_the_tries_a_finish_ended_and_watchers_its_runs() {
        let tries = [ended(10), ended(11)];
        let reread = [4];
        let change = Announce::Runs(vec![3, 4]);
        let text = encode(
            "me",
            &change,
            &[],
            TriesEnded {
                tries: &tries,
                reread: &reread,
            },
        )
        .unwrap();
        assert_eq!(
            decode(&text, "other", true),
            vec![Change::TriesFinished {
                tries: tries.to_vec(),
                reread: reread.to_vec()
            }]
        );
        assert_eq!(
            decode(&text, "other", false),
            vec![Change::Runs(vec![3, 4])]
        );
        assert_eq!(decode(&text, "me", true), vec![]);
        // What a process that knows nothing of the tries reads: the runs.
        #[derive(Deserialize)]
        struct Older {
            change: Announce,
        }
        let older: Older = serde_json::from_str(&text).unwrap();
        assert_eq!(older.change, change);
    }

    #[test]
    fn free_places_reach_only_other_schedulers_and_older_ones_read_no_run() {
        let text = places_free_payload("me").unwrap();
        assert_eq!(decode(&text, "other", true), vec![Change::PlacesFree]);
        assert_eq!(decode(&text, "other", false), vec![]);
        assert_eq!(decode(&text, "me", true), vec![]);
        // An older scheduler answers with a pass over no run in particular, which queues.
        #[derive(Deserialize)]
        struct Older {
            change: Announce,
        }
        let older: Older = serde_json::from_str(&text).unwrap();
        assert_eq!(older.change, Announce::Runs(Vec::new()));
    }

    #[test]
    fn oversized_changes_shed_their_tries_then_become_everything() {
        let tries: Vec<FinishedTry> = (0..1_000).map(ended).collect();
        let change = Announce::Runs(vec![3]);
        let text = encode(
            "me",
            &change,
            &[],
            TriesEnded {
                tries: &tries,
                reread: &[],
            },
        )
        .unwrap();
        assert!(text.len() <= MAX_PAYLOAD);
        assert_eq!(decode(&text, "other", true), vec![Change::Runs(vec![3])]);

        let queued = Announce::WorkQueued(vec!["default".into()]);
        let text = encode("me", &queued, &(0..10_000).collect::<Vec<_>>(), no_tries()).unwrap();
        assert_eq!(decode(&text, "other", false), vec![Change::Everything]);
        let many = Announce::Runs((0..10_000).collect());
        let text = encode("me", &many, &[], no_tries()).unwrap();
        assert!(text.len() <= MAX_PAYLOAD);
        assert_eq!(decode(&text, "other", false), vec![Change::Everything]);
    }
}
