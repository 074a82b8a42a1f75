//! What every kind of try waits on besides its own work: a cancel, and a time limit that may
//! not be set.

use std::time::Duration;

use tokio::sync::watch;

/// Resolves once the watched value is `true`; never if the sender is gone first.
pub(crate) async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    loop {
        if *cancel.borrow_and_update() {
            return;
        }
        if cancel.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Resolves after `limit`, never without one.
pub(crate) async fn after(limit: Option<Duration>) {
    match limit {
        Some(limit) => tokio::time::sleep(limit).await,
        None => std::future::pending().await,
    }
}
