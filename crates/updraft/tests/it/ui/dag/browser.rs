//! What the DAG view tests add to the shared browser harness (`super::super`): a home with
//! an Admin of their own, a signed-in session, waits on page conditions and a marker that
//! tells a page was not reloaded.

use fantoccini::Client;
use serde_json::json;

use crate::fixture::{Home, Standalone};
use crate::ui::{sign_in, Driver};

pub use crate::ui::screenshot;

/// Waits until `task_id` of the run `run_id` of `dag_id` is in `state`, as the CLI reads it.
pub fn wait_for_task(home: &Home, dag_id: &str, run_id: &str, task_id: &str, state: &str) {
    crate::fixture::eventually(std::time::Duration::from_secs(60), || {
        let states = home.json(&["tasks", "states-for-dag-run", dag_id, run_id]);
        (crate::fixture::state_of(&states, task_id) == state).then_some(())
    })
    .unwrap_or_else(|| panic!("{dag_id}.{task_id} of {run_id} never became {state}"));
}

pub const USER: &str = "ui-admin";
pub const PASSWORD: &str = "correct horse battery staple";

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

pub use crate::ui::{click_current, wait_until};

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
