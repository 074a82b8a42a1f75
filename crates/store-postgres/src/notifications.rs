//! The notification outbox ([`NotificationStore`]). Claims take rows with
//! `FOR UPDATE SKIP LOCKED`, so deliverers in several processes never claim the same entry.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::PgConnection;
use updraft_model::{DagRunState, NotificationEvent};
use updraft_store::*;

use crate::codec::{col, col_instant, col_opt_instant, micros, opt_instant, to_u32};
use crate::{db_err, runs, Announce, PostgresStore};

const COLUMNS: &str = "id, event, dag_id, run_id, task_id, map_index, try_number, notifier, \
    context, dedupe_key, state, attempts, next_attempt_at, claimed_by, claim_until, last_error, \
    created_at, delivered_at";

fn from_row(row: &PgRow) -> Result<Notification> {
    let event: String = col(row, 1)?;
    let state: String = col(row, 10)?;
    let try_number: Option<i64> = col(row, 6)?;
    let notifier: String = col(row, 7)?;
    let context: String = col(row, 8)?;
    Ok(Notification {
        id: col(row, 0)?,
        new: NewNotification {
            event: NotificationEvent::from_name(&event)
                .ok_or_else(|| StoreError::Corrupt(format!("notification event {event:?}")))?,
            dag_id: col(row, 2)?,
            run_id: col(row, 3)?,
            task_id: col(row, 4)?,
            map_index: col(row, 5)?,
            try_number: try_number.map(to_u32).transpose()?,
            notifier: serde_json::from_str(&notifier)
                .map_err(|e| StoreError::Corrupt(format!("notifier: {e}")))?,
            context: serde_json::from_str(&context)
                .map_err(|e| StoreError::Corrupt(format!("notification context: {e}")))?,
            dedupe_key: col(row, 9)?,
            created_at: col_instant(row, 16)?,
        },
        state: NotificationState::from_name(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("notification state {state:?}")))?,
        attempts: to_u32(col(row, 11)?)?,
        next_attempt_at: col_instant(row, 12)?,
        claimed_by: col(row, 13)?,
        claim_until: col_opt_instant(row, 14)?,
        last_error: col(row, 15)?,
        delivered_at: col_opt_instant(row, 17)?,
    })
}

/// Stores `notifications` (those whose `dedupe_key` is taken are left out); their ids.
pub(crate) async fn insert(
    conn: &mut PgConnection,
    notifications: &[NewNotification],
) -> Result<Vec<i64>> {
    let mut ids = Vec::new();
    for n in notifications {
        let notifier = serde_json::to_string(&n.notifier)
            .map_err(|e| StoreError::Corrupt(format!("notifier: {e}")))?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO notification (event, dag_id, run_id, task_id, map_index, try_number, \
             notifier, context, dedupe_key, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
             ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        )
        .bind(n.event.name())
        .bind(&n.dag_id)
        .bind(&n.run_id)
        .bind(&n.task_id)
        .bind(n.map_index)
        .bind(n.try_number.map(i64::from))
        .bind(notifier)
        .bind(n.context.to_string())
        .bind(&n.dedupe_key)
        .bind(micros(n.created_at))
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
        ids.extend(id);
    }
    Ok(ids)
}

#[async_trait]
impl NotificationStore for PostgresStore {
    async fn add_notifications(&self, notifications: Vec<NewNotification>) -> Result<Vec<i64>> {
        let mut tx = self.begin().await?;
        let ids = insert(&mut tx, &notifications).await?;
        self.commit(tx, None).await?;
        Ok(ids)
    }

    async fn claim_notifications(&self, claim: NotificationClaim) -> Result<Vec<Notification>> {
        let now = micros(claim.now);
        let until = micros(claim.now + chrono::Duration::from_std(claim.lease).unwrap_or_default());
        let rows = sqlx::query(&format!(
            "UPDATE notification SET claimed_by = $1, claim_until = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM notification WHERE state = 'pending' \
                 AND next_attempt_at <= $3 AND (claim_until IS NULL OR claim_until <= $3) \
                 ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
             RETURNING {COLUMNS}"
        ))
        .bind(&claim.deliverer)
        .bind(until)
        .bind(now)
        .bind(i64::from(claim.limit))
        .fetch_all(&mut *self.conn().await?)
        .await
        .map_err(db_err)?;
        let mut claimed = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
        claimed.sort_by_key(|n| (n.next_attempt_at, n.id));
        Ok(claimed)
    }

    async fn finish_notification(
        &self,
        id: i64,
        deliverer: &str,
        outcome: DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> Result<TransitionResult> {
        let (state, error, next, delivered) = match &outcome {
            DeliveryOutcome::Delivered => ("delivered", None, None, Some(micros(now))),
            DeliveryOutcome::Retry { error, retry_at } => (
                "pending",
                Some(error.as_str()),
                Some(micros(*retry_at)),
                None,
            ),
            DeliveryOutcome::GaveUp { error } => ("failed", Some(error.as_str()), None, None),
        };
        let changed = sqlx::query(
            "UPDATE notification SET state = $3, last_error = COALESCE($4, last_error), \
             next_attempt_at = COALESCE($5, next_attempt_at), delivered_at = $6, \
             claimed_by = NULL, claim_until = NULL \
             WHERE id = $1 AND claimed_by = $2 AND state = 'pending'",
        )
        .bind(id)
        .bind(deliverer)
        .bind(state)
        .bind(error)
        .bind(next)
        .bind(delivered)
        .execute(&mut *self.conn().await?)
        .await
        .map_err(db_err)?
        .rows_affected();
        Ok(if changed == 1 {
            TransitionResult::Applied
        } else {
            TransitionResult::Conflict
        })
    }

    async fn list_notifications(
        &self,
        dag_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Notification>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM notification WHERE ($1::text IS NULL OR dag_id = $1) \
             ORDER BY id LIMIT $2"
        ))
        .bind(dag_id)
        .bind(i64::from(limit))
        .fetch_all(&mut *self.conn().await?)
        .await
        .map_err(db_err)?;
        rows.iter().map(from_row).collect()
    }

    async fn next_notification_due(&self) -> Result<Option<DateTime<Utc>>> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(GREATEST(next_attempt_at, COALESCE(claim_until, 0))) \
             FROM notification WHERE state = 'pending'",
        )
        .fetch_one(&mut *self.conn().await?)
        .await
        .map_err(db_err)?;
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
        let mut tx = self.begin().await?;
        let result = runs::set_state(&mut tx, id, expected, to, now).await?;
        if result == TransitionResult::Applied {
            insert(&mut tx, &notifications).await?;
        }
        let change = (result == TransitionResult::Applied).then(|| Announce::Runs(vec![id]));
        self.commit(tx, change).await?;
        Ok(result)
    }
}
