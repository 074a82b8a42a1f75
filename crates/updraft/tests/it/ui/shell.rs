//! The shell and the non-DAG views in a browser: signing in, the example DAGs, pausing one,
//! editing a variable, the worker on the cluster page, and a Viewer without controls.

use fantoccini::{Client, Locator};

use super::{
    admin_password, screenshot, sign_in, standalone_with_examples, wait_for, wait_until, Driver,
};
use crate::fixture::Home;

const EXAMPLES: [&str; 3] = ["branching", "hello_world", "users_etl"];

/// The texts of the elements `css` selects, read in one step: a live region swapped in
/// between two reads would leave the first one's elements stale.
async fn texts(browser: &Client, css: &str) -> Vec<String> {
    let found = browser
        .execute(
            "return Array.from(document.querySelectorAll(arguments[0])).map((e) => e.innerText.trim());",
            vec![serde_json::json!(css)],
        )
        .await
        .expect("read the texts");
    serde_json::from_value(found).expect("a list of texts")
}

async fn attrs(browser: &Client, css: &str, attr: &str) -> Vec<String> {
    let mut found = Vec::new();
    for element in browser.find_all(Locator::Css(css)).await.expect("find") {
        if let Some(value) = element.attr(attr).await.expect("attr") {
            found.push(value);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_sees_the_examples_pauses_a_dag_edits_a_variable_and_sees_the_worker() {
    let home = Home::new();
    let (_standalone, base) = standalone_with_examples(&home);
    let password = admin_password(&home);
    let driver = Driver::start();
    let browser = driver.browser().await;

    // A page without a session leads to the form, and back after signing in.
    browser.goto(&format!("{base}/dags")).await.expect("goto");
    wait_for(&browser, "form[action='/login']").await;
    sign_in(&browser, &base, "admin", &password).await;
    let title = wait_for(&browser, "main h1")
        .await
        .text()
        .await
        .expect("text");
    assert_eq!(title, "Home");
    wait_for(&browser, "#health").await;
    screenshot(&browser, "home").await;
    // The theme toggle switches to the other theme and remembers it.
    let theme = "return document.documentElement.dataset.theme || '';";
    browser
        .find(Locator::Css(".user-menu summary"))
        .await
        .expect("user menu")
        .click()
        .await
        .expect("open");
    browser
        .find(Locator::Css("[data-theme-toggle]"))
        .await
        .expect("toggle")
        .click()
        .await
        .expect("click");
    let first = browser.execute(theme, vec![]).await.expect("script");
    assert!(matches!(first.as_str(), Some("dark" | "light")), "{first}");
    browser.refresh().await.expect("reload");
    wait_for(&browser, "#health").await;
    assert_eq!(browser.execute(theme, vec![]).await.expect("script"), first);
    // Back to the light theme for the screenshots.
    if first.as_str() == Some("dark") {
        browser
            .execute("localStorage.removeItem('updraft.theme');", vec![])
            .await
            .expect("script");
        browser.refresh().await.expect("reload");
        wait_for(&browser, "#health").await;
    }

    // The example DAGs, once the DAG processor published them.
    browser.goto(&format!("{base}/dags")).await.expect("goto");
    for dag_id in EXAMPLES {
        let row = format!("tr[data-dag-id='{dag_id}']");
        browser
            .wait()
            .at_most(super::PATIENCE)
            .for_element(Locator::Css(&row))
            .await
            .ok();
        if browser.find(Locator::Css(&row)).await.is_err() {
            browser.refresh().await.expect("reload");
            wait_for(&browser, &row).await;
        }
    }
    screenshot(&browser, "dags").await;

    // Pause hello_world with its switch: the page says so, and the server agrees.
    wait_for(&browser, "input[data-pause='hello_world']").await;
    // Read and click in one step: a live refresh may swap the table between two steps.
    let was_active = browser
        .execute(
            "const s = document.querySelector(\"input[data-pause='hello_world']\"); \
             const was = s.checked; s.click(); return was;",
            vec![],
        )
        .await
        .expect("click the switch");
    let was_active = was_active.as_bool().expect("checked or not");
    let label = "[data-pause-label='hello_world']";
    let expected = if was_active { "paused" } else { "active" };
    browser
        .wait()
        .at_most(super::PATIENCE)
        .for_element(Locator::XPath(&format!(
            "//span[@data-pause-label='hello_world' and text()='{expected}']"
        )))
        .await
        .unwrap_or_else(|e| panic!("the label never said {expected}: {e}"));
    let filter = if was_active { "paused" } else { "active" };
    browser
        .goto(&format!("{base}/dags?status={filter}"))
        .await
        .expect("goto");
    let shown = attrs(&browser, "tr[data-dag-id]", "data-dag-id").await;
    assert!(shown.contains(&"hello_world".to_string()), "{shown:?}");
    assert_eq!(texts(&browser, label).await, [expected]);

    // Add a variable with the form, then edit it.
    browser
        .goto(&format!("{base}/admin/variables"))
        .await
        .expect("goto");
    wait_for(&browser, "#variable-new").await;
    browser
        .find(Locator::Css("#variable-new"))
        .await
        .expect("form")
        .find(Locator::XPath("./ancestor::details/summary"))
        .await
        .expect("summary")
        .click()
        .await
        .expect("open");
    browser
        .find(Locator::Id("new-key"))
        .await
        .expect("key")
        .send_keys("ui_greeting")
        .await
        .expect("type");
    browser
        .find(Locator::Id("new-value"))
        .await
        .expect("value")
        .send_keys("hello <b>there</b>")
        .await
        .expect("type");
    browser
        .find(Locator::Css("#variable-new button[type=submit]"))
        .await
        .expect("add")
        .click()
        .await
        .expect("click");
    let value = wait_for(&browser, "tr[data-variable='ui_greeting'] [data-value]").await;
    assert_eq!(value.text().await.expect("text"), "hello <b>there</b>");
    browser
        .find(Locator::Css(
            "tr[data-variable='ui_greeting'] details summary",
        ))
        .await
        .expect("edit")
        .click()
        .await
        .expect("open the editor");
    let editor = browser
        .find(Locator::Css(
            "form[data-edit-variable='ui_greeting'] textarea",
        ))
        .await
        .expect("the value field");
    editor.clear().await.expect("clear");
    editor.send_keys("edited in a browser").await.expect("type");
    browser
        .find(Locator::Css(
            "form[data-edit-variable='ui_greeting'] button[type=submit]",
        ))
        .await
        .expect("save")
        .click()
        .await
        .expect("click");
    // Saving reloads the page: a lookup during the reload is tried again.
    super::find_eventually(
        &browser,
        Locator::XPath("//tr[@data-variable='ui_greeting']//pre[text()='edited in a browser']"),
    )
    .await;
    screenshot(&browser, "admin").await;
    let stored = home.ok(&["variables", "get", "ui_greeting"]);
    assert!(stored.contains("edited in a browser"), "{stored}");

    // The standalone process is the worker on the cluster page.
    browser
        .goto(&format!("{base}/cluster"))
        .await
        .expect("goto");
    let workers = wait_for(&browser, "table[data-section='workers'] tbody tr").await;
    let row = workers.text().await.expect("text");
    assert!(row.contains("running"), "{row}");
    screenshot(&browser, "cluster").await;
    // The next heartbeat shows without a reload.
    let beat_of_the_worker =
        "document.querySelector(\"table[data-section='workers'] tbody tr time\").getAttribute('datetime')";
    let first_beat = browser
        .execute(
            &format!("window.__notReloaded = true; return {beat_of_the_worker};"),
            vec![],
        )
        .await
        .expect("the heartbeat shown");
    let first_beat = first_beat.as_str().expect("a datetime").to_string();
    wait_until(
        &browser,
        "the next heartbeat",
        &format!("{beat_of_the_worker} !== '{first_beat}' && window.__notReloaded === true"),
    )
    .await;

    // Logging out ends the session.
    browser.goto(&format!("{base}/logout")).await.expect("goto");
    browser
        .find(Locator::Css("main form[action='/logout'] button"))
        .await
        .expect("log out")
        .click()
        .await
        .expect("click");
    wait_for(&browser, "form[action='/login']").await;
    browser.goto(&format!("{base}/")).await.expect("goto");
    wait_for(&browser, "form[action='/login']").await;
    browser.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_follows_changes_live_but_gets_no_pause_or_trigger_controls_and_the_api_refuses_them(
) {
    let home = Home::new();
    let (_standalone, base) = standalone_with_examples(&home);
    home.ok(&[
        "users",
        "create",
        "-u",
        "vera",
        "-r",
        "Viewer",
        "-p",
        "vera's password",
    ]);
    let driver = Driver::start();
    let browser = driver.browser().await;
    sign_in(&browser, &base, "vera", "vera's password").await;
    browser.goto(&format!("{base}/dags")).await.expect("goto");
    let row = "tr[data-dag-id='hello_world']";
    if browser
        .wait()
        .at_most(super::PATIENCE)
        .for_element(Locator::Css(row))
        .await
        .is_err()
    {
        browser.refresh().await.expect("reload");
        wait_for(&browser, row).await;
    }
    assert!(browser
        .find_all(Locator::Css("[data-pause]"))
        .await
        .expect("find")
        .is_empty());
    assert!(browser
        .find_all(Locator::Css("[data-trigger]"))
        .await
        .expect("find")
        .is_empty());
    assert_eq!(
        texts(&browser, "[data-pause-label='hello_world']")
            .await
            .len(),
        1
    );

    // The page follows changes made elsewhere without reloading: a pause from the CLI
    // reaches it over /ui/events once its stream is open.
    let mut open = false;
    for _ in 0..300 {
        let state = browser
            .execute(
                "return window.updraft && window.updraft.live ? window.updraft.live.readyState : -1;",
                vec![],
            )
            .await
            .expect("script");
        if state.as_i64() == Some(1) {
            open = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(open, "the event stream never opened");
    let label = "[data-pause-label='hello_world']";
    let before = texts(&browser, label).await;
    let (verb, after) = if before == ["paused"] {
        ("unpause", "active")
    } else {
        ("pause", "paused")
    };
    home.ok(&["dags", verb, "hello_world"]);
    browser
        .wait()
        .at_most(super::PATIENCE)
        .for_element(Locator::XPath(&format!(
            "//span[@data-pause-label='hello_world' and text()='{after}']"
        )))
        .await
        .unwrap_or_else(|e| panic!("the page never showed hello_world {after}: {e}"));

    // What the page does not offer, the API refuses anyway.
    let answer = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             window.updraft.api('PATCH', '/api/v2/dags/hello_world?update_mask=is_paused',
                                {is_paused: true})
               .then(() => done('allowed'), (e) => done(e.message));",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(
        answer
            .as_str()
            .map(|s| s.split(':').next().unwrap_or_default()),
        Some("403"),
        "{answer}"
    );
    let trigger = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             window.updraft.api('POST', '/api/v2/dags/hello_world/dagRuns', {})
               .then(() => done('allowed'), (e) => done(e.message));",
            vec![],
        )
        .await
        .expect("script");
    assert!(
        trigger.as_str().is_some_and(|s| s.starts_with("403")),
        "{trigger}"
    );
    // The Admin link leads a Viewer to the pools.
    browser.goto(&format!("{base}/admin")).await.expect("goto");
    wait_for(&browser, "tr[data-pool='default_pool']").await;
    assert!(browser
        .find_all(Locator::Css("form[data-api]"))
        .await
        .expect("find")
        .is_empty());
    browser.close().await.expect("close");
}
