//! The notification outbox ([`NotificationStore`]). One writer at a time (the process's write
//! connection, `BEGIN IMMEDIATE` across processes), so a claim's select and update cannot
//! interleave with another's.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Row, Transaction};
use updraft_model::{DagRunState, NotificationEvent};
use updraft_store::*;

use crate::codec::{instant, micros, opt_instant};
use crate::dags::conversion;
use crate::{db_err, runs, SqliteStore};

const COLUMNS: &str = "id, event, dag_id, run_id, task_id, map_index, try_number, notifier, \
    context, dedupe_key, state, attempts, next_attempt_at, claimed_by, claim_until, last_error, \
    created_at, delivered_at";

fn from_row(row: &Row) -> rusqlite::Result<Notification> {
    let text = |i: usize| row.get::<_, String>(i);
    let event = text(1)?;
    let state = text(10)?;
    Ok(Notification {
        id: row.get(0)?,
        new: NewNotification {
            event: NotificationEvent::from_name(&event)
                .ok_or_else(|| conversion(1, StoreError::Corrupt(format!("event {event:?}"))))?,
            dag_id: row.get(2)?,
            run_id: row.get(3)?,
            task_id: row.get(4)?,
            map_index: row.get(5)?,
            try_number: row.get(6)?,
            notifier: serde_json::from_str(&text(7)?)
                .map_err(|e| conversion(7, StoreError::Corrupt(format!("notifier: {e}"))))?,
            context: serde_json::from_str(&text(8)?)
                .map_err(|e| conversion(8, StoreError::Corrupt(format!("context: {e}"))))?,
            dedupe_key: row.get(9)?,
            created_at: instant(row.get(16)?).map_err(|e| conversion(16, e))?,
        },
        state: NotificationState::from_name(&state)
            .ok_or_else(|| conversion(10, StoreError::Corrupt(format!("state {state:?}"))))?,
        attempts: row.get(11)?,
        next_attempt_at: instant(row.get(12)?).map_err(|e| conversion(12, e))?,
        claimed_by: row.get(13)?,
        claim_until: opt_instant(row.get(14)?).map_err(|e| conversion(14, e))?,
        last_error: row.get(15)?,
        delivered_at: opt_instant(row.get(17)?).map_err(|e| conversion(17, e))?,
    })
}

/// Stores `notifications` (those whose `dedupe_key` is taken are left out); their ids.
pub(crate) fn insert(tx: &Transaction, notifications: &[NewNotification]) -> Result<Vec<i64>> {
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO notification (event, dag_id, run_id, task_id, map_index, try_number, \
             notifier, context, dedupe_key, next_attempt_at, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10) \
             ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        )
        .map_err(db_err)?;
    let mut ids = Vec::new();
    for n in notifications {
        let notifier = serde_json::to_string(&n.notifier)
            .map_err(|e| StoreError::Corrupt(format!("notifier: {e}")))?;
        let mut rows = stmt
            .query(params![
                n.event.name(),
                n.dag_id,
                n.run_id,
                n.task_id,
                n.map_index,
                n.try_number,
                notifier,
                n.context.to_string(),
                n.dedupe_key,
                micros(n.created_at),
            ])
            .map_err(db_err)?;
        if let Some(row) = rows.next().map_err(db_err)? {
            ids.push(row.get(0).map_err(db_err)?);
        }
    }
    Ok(ids)
}

fn claim(tx: &Transaction, claim: &NotificationClaim) -> Result<Vec<Notification>> {
    let now = micros(claim.now);
    let until = micros(claim.now + chrono::Duration::from_std(claim.lease).unwrap_or_default());
    let mut stmt = tx
        .prepare_cached(&format!(
            "UPDATE notification SET claimed_by = ?1, claim_until = ?2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM notification WHERE state = 'pending' \
                 AND next_attempt_at <= ?3 AND (claim_until IS NULL OR claim_until <= ?3) \
                 ORDER BY next_attempt_at, id LIMIT ?4) \
             RETURNING {COLUMNS}"
        ))
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![claim.deliverer, until, now, claim.limit], from_row)
        .map_err(db_err)?;
    let mut claimed = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)?;
    claimed.sort_by_key(|n| (n.next_attempt_at, n.id));
    Ok(claimed)
}

fn finish(
    tx: &Transaction,
    id: i64,
    deliverer: &str,
    outcome: &DeliveryOutcome,
    now: DateTime<Utc>,
) -> Result<TransitionResult> {
    let (state, error, next, delivered) = match outcome {
        DeliveryOutcome::Delivered => ("delivered", None, None, Some(micros(now))),
        DeliveryOutcome::Retry { error, retry_at } => (
            "pending",
            Some(error.as_str()),
            Some(micros(*retry_at)),
            None,
        ),
        DeliveryOutcome::GaveUp { error } => ("failed", Some(error.as_str()), None, None),
    };
    let changed = tx
        .execute(
            "UPDATE notification SET state = ?3, last_error = COALESCE(?4, last_error), \
             next_attempt_at = COALESCE(?5, next_attempt_at), delivered_at = ?6, \
             claimed_by = NULL, claim_until = NULL \
             WHERE id = ?1 AND claimed_by = ?2 AND state = 'pending'",
            params![id, deliverer, state, error, next, delivered],
        )
        .map_err(db_err)?;
    Ok(if changed == 1 {
        TransitionResult::Applied
    } else {
        TransitionResult::Conflict
    })
}

#[async_trait]
impl NotificationStore for SqliteStore {
    async fn add_notifications(&self, notifications: Vec<NewNotification>) -> Result<Vec<i64>> {
        self.write(move |tx| insert(tx, &notifications)).await
    }

    async fn claim_notifications(&self, request: NotificationClaim) -> Result<Vec<Notification>> {
        self.write(move |tx| claim(tx, &request)).await
    }

    async fn finish_notification(
        &self,
        id: i64,
        deliverer: &str,
        outcome: DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> Result<TransitionResult> {
        let deliverer = deliverer.to_string();
        self.write(move |tx| finish(tx, id, &deliverer, &outcome, now))
            .await
    }

    async fn list_notifications(
        &self,
        dag_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Notification>> {
        let dag_id = dag_id.map(str::to_string);
        self.read(move |c| {
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM notification WHERE (?1 IS NULL OR dag_id = ?1) \
                     ORDER BY id LIMIT ?2"
                ))
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![dag_id, limit], from_row)
                .map_err(db_err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
        })
        .await
    }

    async fn next_notification_due(&self) -> Result<Option<DateTime<Utc>>> {
        let due: Option<i64> = self
            .read(|c| {
                c.query_row(
                    "SELECT MIN(MAX(next_attempt_at, COALESCE(claim_until, 0))) \
                     FROM notification WHERE state = 'pending'",
                    [],
                    |r| r.get(0),
                )
                .map_err(db_err)
            })
            .await?;
        opt_instant(due)
    }

    async fn end_dag_run(
        &self,
        id: i64,
        expected: DagRunState,
        to: DagRunState,
        now: DateTime<Utc>,
        notifications: Vec<NewNotification>,
    ) -> Result<TransitionResult> {
        let result = self
            .write(move |tx| {
                let result = runs::set_state(tx, id, expected, to, now)?;
                if result == TransitionResult::Applied {
                    insert(tx, &notifications)?;
                }
                Ok(result)
            })
            .await?;
        if result == TransitionResult::Applied {
            self.changed([Change::Runs(vec![id])]);
        }
        Ok(result)
    }
}
