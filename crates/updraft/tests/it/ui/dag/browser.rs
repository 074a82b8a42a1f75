//! What the DAG view tests add to the shared browser harness (`super::super`): a home with
//! an Admin of their own, a signed-in session, waits on page conditions and a marker that
//! tells a page was not reloaded.

use std::time::Duration;

use fantoccini::Client;
use serde_json::json;

use crate::fixture::{Home, Standalone};
use crate::ui::{sign_in, Driver};

pub use crate::ui::screenshot;

pub const USER: &str = "ui-admin";
pub const PASSWORD: &str = "correct horse battery staple";
/// The longest a page condition is waited for (an upper bound, not a measurement).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Starts chromedriver (Debian's `chromium-driver`, which `.ci/run` installs).
pub fn chromedriver() -> Driver {
    Driver::start()
}

/// The UI's base URL of a standalone (its health address without the path).
pub fn base_url(standalone: &Standalone) -> String {
    let url = &standalone.health_url;
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => url[..after_scheme + i].to_string(),
        None => url.clone(),
    }
}

/// A home with an Admin user for the browser.
pub fn home_with_user() -> Home {
    let home = Home::new();
    home.ok(&["users", "create", "-u", USER, "-r", "Admin", "-p", PASSWORD]);
    home
}

/// A headless Chromium session, signed in at `base`.
pub async fn signed_in(driver: &Driver, base: &str) -> Client {
    let client = driver.browser().await;
    sign_in(&client, base, USER, PASSWORD).await;
    client
}

/// Waits until the JavaScript expression `condition` is true in the page.
pub async fn wait_until(client: &Client, what: &str, condition: &str) {
    let script = format!("return !!({condition});");
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if let Ok(value) = client.execute(&script, vec![]).await {
            if value == json!(true) {
                return;
            }
        }
        if std::time::Instant::now() > deadline {
            let source = client.source().await.unwrap_or_default();
            panic!("waited in vain for {what} ({condition}); the page:\n{source}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Marks the page, to tell later that it was not reloaded.
pub async fn mark_page(client: &Client) {
    client
        .execute("window.__notReloaded = true; return true;", vec![])
        .await
        .expect("marking the page");
}

pub async fn page_was_not_reloaded(client: &Client) -> bool {
    client
        .execute("return window.__notReloaded === true;", vec![])
        .await
        .map(|v| v == json!(true))
        .unwrap_or(false)
}
