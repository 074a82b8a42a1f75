//! The delivery loop of the notification outbox: claims due notifications (a lease per claim,
//! so entries of a deliverer that died are taken over when it runs out), sends each to its
//! notifier (`send`: webhooks and Slack; `email`: SMTP), and records the outcome: delivered,
//! retried with exponential backoff, or given up after the last attempt. It runs beside the
//! scheduler and never in the way of a run: a failed delivery is logged and written to the
//! event log, and changes no state.

mod email;
mod python;
mod render;
mod send;

pub use python::PythonCallbacks;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, watch};
use tracing::{debug, info, warn};
use updraft_model::Notifier;
use updraft_store::{
    retry_backoff, Change, DeliveryOutcome, NewEventLog, Notification, NotificationClaim, Store,
    StoreExecution,
};

/// How the loop delivers (`[notifications]` in the configuration).
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Names this process's claims (the worker or scheduler id).
    pub deliverer_id: String,
    /// How often the loop looks for due notifications when nothing woke it.
    pub poll_interval: Duration,
    /// How long a claim holds: a deliverer that dies leaves its entries to others after it.
    pub lease: Duration,
    /// Attempts before a notification is given up.
    pub max_attempts: u32,
    /// The delay after the first failed attempt, doubled after each (at most `retry_max`).
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// The limit of one request or SMTP session.
    pub timeout: Duration,
    /// Notifications claimed at once.
    pub batch: u32,
}

impl DeliveryConfig {
    pub fn new(deliverer_id: impl Into<String>) -> Self {
        DeliveryConfig {
            deliverer_id: deliverer_id.into(),
            poll_interval: Duration::from_secs(1),
            lease: Duration::from_secs(60),
            max_attempts: 5,
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(300),
            timeout: Duration::from_secs(30),
            batch: 16,
        }
    }
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The notifier cannot work as written (a missing connection, a bad template or
    /// address): no later attempt can do better.
    #[error("{0}")]
    Permanent(String),
    /// The receiver could not be reached or refused for now (a network error, HTTP 5xx).
    #[error("{0}")]
    Transient(String),
}

pub struct Deliverer {
    store: Arc<dyn Store>,
    config: DeliveryConfig,
    /// Made on the first webhook: making it reads and parses the system's root certificates,
    /// a few milliseconds and a few hundred kilobytes that most deployments never use.
    http: OnceLock<reqwest::Client>,
    python: Option<PythonCallbacks>,
    /// The store's changes, which wake the loop ([`Deliverer::waking_on`]); taken by `run`.
    changes: Mutex<Option<broadcast::Receiver<Change>>>,
}

/// The shortest wait between two looks.
const MIN_WAIT: Duration = Duration::from_millis(20);
/// How often a loop [waking on changes](Deliverer::waking_on) looks while nothing changes:
/// for the notifications a store adds without announcing a change (a deadline alert).
pub const IDLE_RECHECK: Duration = Duration::from_secs(5);

impl Deliverer {
    pub fn new(store: Arc<dyn Store>, config: DeliveryConfig) -> Self {
        Deliverer {
            store,
            config,
            http: OnceLock::new(),
            python: None,
            changes: Mutex::new(None),
        }
    }

    fn http(&self) -> Result<&reqwest::Client, DeliveryError> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        let client = reqwest::Client::builder()
            .timeout(self.config.timeout)
            .build()
            .map_err(|e| DeliveryError::Permanent(format!("cannot make an HTTP client: {e}")))?;
        // Two first webhooks at once may both make one; the second is dropped.
        Ok(self.http.get_or_init(|| client))
    }

    /// Runs Python callbacks (notifiers of kind `python`) with this interpreter and SDK;
    /// without it they fail.
    pub fn with_python(mut self, python: PythonCallbacks) -> Self {
        self.python = Some(python);
        self
    }

    /// Wakes the loop on the store's changes instead of every `poll_interval`: a standalone
    /// process, whose store announces every commit that adds a notification (a try's end, a
    /// run's end, a transition with callbacks) and whose loop then need not look while idle.
    pub fn waking_on(mut self, changes: broadcast::Receiver<Change>) -> Self {
        self.changes = Mutex::new(Some(changes));
        self
    }

    /// Delivers until `shutdown` turns true. Looks for due notifications every
    /// `poll_interval`, or, [waking on changes](Self::waking_on), after a change (at most once
    /// every `poll_interval`), at the next one due, and every [`IDLE_RECHECK`] for those added
    /// without a change announced (deadline alerts).
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut changes = self.changes.lock().ok().and_then(|mut c| c.take());
        loop {
            if *shutdown.borrow() {
                return;
            }
            let looked_at = tokio::time::Instant::now();
            if let Some(receiver) = changes.as_mut() {
                // What changed up to now is seen by this look.
                while !matches!(
                    receiver.try_recv(),
                    Err(broadcast::error::TryRecvError::Empty
                        | broadcast::error::TryRecvError::Closed)
                ) {}
            }
            let delivered = match self.deliver_due().await {
                Ok(n) => n,
                Err(e) => {
                    warn!(error = %e, "cannot claim notifications");
                    0
                }
            };
            if delivered > 0 {
                continue;
            }
            let until_due = match self.store.next_notification_due().await {
                Ok(Some(due)) => Some((due - Utc::now()).to_std().unwrap_or_default()),
                Ok(None) => None,
                Err(_) => Some(self.config.poll_interval),
            };
            let Some(receiver) = changes.as_mut() else {
                let wait = until_due.map_or(self.config.poll_interval, |until| {
                    until.min(self.config.poll_interval)
                });
                tokio::select! {
                    _ = tokio::time::sleep(wait.max(MIN_WAIT)) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            };
            let wait = until_due.map_or(IDLE_RECHECK, |until| until.min(IDLE_RECHECK));
            tokio::select! {
                _ = tokio::time::sleep(wait.max(MIN_WAIT)) => {}
                received = receiver.recv() => {
                    if matches!(received, Err(broadcast::error::RecvError::Closed)) {
                        changes = None;
                    }
                    // Changes come in bursts (a run's tries ending one after another): one
                    // look per `poll_interval` at most, as when polling.
                    tokio::select! {
                        _ = tokio::time::sleep_until(looked_at + self.config.poll_interval) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Claims what is due now and delivers it, each notification in a task of its own; the
    /// number claimed.
    pub async fn deliver_due(&self) -> Result<usize, updraft_store::StoreError> {
        let claimed = self
            .store
            .claim_notifications(NotificationClaim {
                deliverer: self.config.deliverer_id.clone(),
                now: Utc::now(),
                lease: self.config.lease,
                limit: self.config.batch,
            })
            .await?;
        let count = claimed.len();
        let attempts = claimed.into_iter().map(|n| self.attempt(n));
        futures_util::future::join_all(attempts).await;
        Ok(count)
    }

    async fn attempt(&self, notification: Notification) {
        // A Python callback keeps to its own limit (and is not retried past it).
        let limit = match notification.new.notifier {
            Notifier::Python { .. } => self.config.timeout + Duration::from_secs(5),
            _ => self.config.timeout,
        };
        let result = tokio::time::timeout(limit, self.send(&notification))
            .await
            .unwrap_or_else(|_| {
                Err(DeliveryError::Transient(format!(
                    "no answer within {:?}",
                    self.config.timeout
                )))
            });
        let now = Utc::now();
        let outcome = match result {
            Ok(()) => {
                debug!(
                    id = notification.id,
                    event = notification.new.event.name(),
                    "notification delivered"
                );
                DeliveryOutcome::Delivered
            }
            Err(DeliveryError::Transient(error))
                if notification.attempts < self.config.max_attempts =>
            {
                let delay = retry_backoff(
                    notification.attempts,
                    self.config.retry_base,
                    self.config.retry_max,
                );
                let retry_at = now + chrono::Duration::from_std(delay).unwrap_or_default();
                info!(id = notification.id, attempt = notification.attempts, %error, %retry_at, "notification not delivered; trying again later");
                DeliveryOutcome::Retry { error, retry_at }
            }
            Err(e) => {
                let error = e.to_string();
                warn!(id = notification.id, dag_id = %notification.new.dag_id, kind = notification.new.notifier.kind(), attempts = notification.attempts, %error, "notification given up");
                self.record_failure(&notification, &error, now).await;
                DeliveryOutcome::GaveUp { error }
            }
        };
        if let Err(e) = self
            .store
            .finish_notification(notification.id, &self.config.deliverer_id, outcome, now)
            .await
        {
            warn!(id = notification.id, error = %e, "cannot record a notification's delivery");
        }
    }

    /// A notification that was given up goes to the event log, where the UI and
    /// `GET /api/v2/eventLogs` show it.
    async fn record_failure(&self, notification: &Notification, error: &str, now: DateTime<Utc>) {
        let new = &notification.new;
        let extra = serde_json::json!({
            "notification_id": notification.id,
            "event": new.event.name(),
            "notifier": new.notifier.kind(),
            "attempts": notification.attempts,
            "error": error,
        });
        let event = NewEventLog {
            when: now,
            event: "notification_failed".into(),
            owner: Some("updraft".into()),
            dag_id: Some(new.dag_id.clone()),
            run_id: new.run_id.clone(),
            task_id: new.task_id.clone(),
            map_index: new.map_index,
            try_number: new.try_number,
            logical_date: None,
            extra: Some(extra.to_string()),
        };
        if let Err(e) = self.store.add_event_log(event).await {
            warn!(id = notification.id, error = %e, "cannot record a failed notification in the event log");
        }
    }

    async fn send(&self, notification: &Notification) -> Result<(), DeliveryError> {
        let context = render::Context::of(&notification.new.context);
        match &notification.new.notifier {
            Notifier::Webhook {
                url,
                http_conn_id,
                endpoint,
                headers,
            } => {
                let target = match (url, http_conn_id) {
                    (Some(url), _) => context.render(url)?,
                    (None, Some(conn_id)) => {
                        let connection = self.connection(conn_id).await?;
                        send::join_url(&send::base_url(&connection), &context.render(endpoint)?)
                    }
                    (None, None) => {
                        return Err(DeliveryError::Permanent(
                            "the webhook has neither `url` nor `http_conn_id`".into(),
                        ))
                    }
                };
                let body = serde_json::json!({
                    "event": notification.new.event.name(),
                    "notification_id": notification.id,
                    "context": notification.new.context,
                });
                send::post_json(self.http()?, &target, headers, &body).await
            }
            Notifier::Slack {
                webhook_url,
                slack_webhook_conn_id,
                text,
                blocks,
                attachments,
                unfurl_links,
                unfurl_media,
            } => {
                let target = match webhook_url {
                    Some(url) => url.clone(),
                    None => send::slack_url(&self.connection(slack_webhook_conn_id).await?)?,
                };
                let mut body = serde_json::json!({ "text": context.render(text)? });
                let fields = [
                    ("blocks", blocks.clone()),
                    ("attachments", attachments.clone()),
                    ("unfurl_links", unfurl_links.map(Into::into)),
                    ("unfurl_media", unfurl_media.map(Into::into)),
                ];
                for (key, value) in fields {
                    if let Some(value) = value {
                        body[key] = value;
                    }
                }
                send::post_json(self.http()?, &target, &Default::default(), &body).await
            }
            Notifier::Smtp {
                to,
                from_email,
                smtp_conn_id,
                subject,
                html_content,
                cc,
                bcc,
            } => {
                let connection = self.connection(smtp_conn_id).await?;
                let mail = email::Mail {
                    to,
                    cc,
                    bcc,
                    from_email: from_email.as_deref(),
                    subject: &context.render(subject)?,
                    html_content: &context.render(html_content)?,
                };
                email::send(&connection, &mail, self.config.timeout).await
            }
            Notifier::Python {
                task_id,
                callback,
                index,
            } => {
                let callback = python::CallbackRef {
                    task_id: task_id.as_deref(),
                    callback,
                    index: *index,
                };
                python::run(
                    &self.store,
                    self.python.as_ref(),
                    notification,
                    callback,
                    self.config.timeout,
                )
                .await
            }
        }
    }

    async fn connection(
        &self,
        conn_id: &str,
    ) -> Result<updraft_template::TemplateConnection, DeliveryError> {
        let execution = StoreExecution(self.store.clone());
        let connections = crate::secrets::template_connections(&execution)
            .await
            .map_err(|e| DeliveryError::Transient(format!("cannot read the connections: {e}")))?;
        connections
            .get(conn_id)
            .or_else(|| {
                connections
                    .iter()
                    .find(|(id, _)| id.eq_ignore_ascii_case(conn_id))
                    .map(|(_, c)| c)
            })
            .cloned()
            .ok_or_else(|| {
                DeliveryError::Permanent(format!("the connection `{conn_id}` is not defined"))
            })
    }
}
