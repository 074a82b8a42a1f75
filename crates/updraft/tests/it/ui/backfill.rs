//! A backfill made from a DAG's Backfills tab in a real browser: a bad conf is refused on
//! the form, the dry run lists the dates, and the created backfill is listed and runs to
//! the end (the standalone's scheduler creates its runs).

use std::time::{Duration, Instant};

use fantoccini::Client;

use super::dag::browser::{
    base_url, chromedriver, click_current, home_with_user, signed_in, wait_until,
};

const DAG: &str = "dag_id: ui_backfill\nschedule: \"@daily\"\nstart_date: 2024-01-01\n\
catchup: false\ntasks:\n  - task_id: t\n    bash_command: 'echo {{ ds }} {{ dag_run.conf.k }}'\n";

/// Sets an input's value as typing a whole value would (a `datetime-local` takes its value
/// in one piece more reliably than as keystrokes).
async fn set(client: &Client, css: &str, value: &str) {
    client
        .execute(
            "document.querySelector(arguments[0]).value = arguments[1]; return null;",
            vec![css.into(), value.into()],
        )
        .await
        .unwrap_or_else(|e| panic!("setting {css}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_created_from_the_form_is_listed_and_completes() {
    let home = home_with_user();
    home.write_dag("ui_backfill.yaml", DAG);
    let standalone = home.standalone();
    let base = base_url(&standalone);
    let driver = chromedriver();
    let client = signed_in(&driver, &base).await;
    let page = format!("{base}/dags/ui_backfill/backfills");
    client.goto(&page).await.expect("backfills page");
    wait_until(
        &client,
        "the empty list and the form",
        "document.body.textContent.includes('No backfills yet.') && document.querySelector('form[data-backfill]') !== null",
    )
    .await;

    set(&client, "#backfill-from", "2024-01-01T00:00").await;
    set(&client, "#backfill-to", "2024-01-03T00:00").await;
    set(&client, "#backfill-max-active", "2").await;
    set(&client, "#backfill-conf", "{nope").await;
    click_current(&client, "form[data-backfill] button[type=submit]").await;
    wait_until(
        &client,
        "the bad conf refused on the form",
        "document.querySelector('[data-backfill-status]').classList.contains('error') && document.querySelector('[data-backfill-status]').textContent.includes('not valid JSON')",
    )
    .await;

    // The API's own refusal shows there too: the range is reversed.
    set(&client, "#backfill-conf", r#"{"k": "from-ui"}"#).await;
    set(&client, "#backfill-from", "2024-01-05T00:00").await;
    click_current(&client, "[data-backfill-dry-run]").await;
    wait_until(
        &client,
        "the reversed range refused",
        "document.querySelector('[data-backfill-status]').textContent.includes('is after to_date')",
    )
    .await;

    set(&client, "#backfill-from", "2024-01-01T00:00").await;
    click_current(&client, "[data-backfill-dry-run]").await;
    wait_until(
        &client,
        "three dates in the preview",
        "!document.querySelector('[data-backfill-preview]').hidden && document.querySelectorAll('[data-backfill-preview] li').length === 3 && document.querySelector('[data-backfill-preview] li').textContent.startsWith('2024-01-01T00:00:00')",
    )
    .await;
    assert!(
        home.json(&["backfill", "list", "--dag-id", "ui_backfill"])
            .as_array()
            .is_some_and(|b| b.is_empty()),
        "a dry run creates nothing"
    );

    click_current(&client, "form[data-backfill] button[type=submit]").await;
    wait_until(
        &client,
        "the backfill listed",
        "document.querySelector('tr[data-backfill] [data-progress]') !== null && document.querySelector('tr[data-backfill] [data-progress]').textContent.trim().endsWith('/ 3')",
    )
    .await;
    let listed = home.json(&["backfill", "list", "--dag-id", "ui_backfill"]);
    let backfill = &listed.as_array().expect("a list")[0];
    assert_eq!(backfill["max_active_runs"], 2, "{listed:#}");
    assert_eq!(backfill["dag_run_conf"]["k"], "from-ui", "{listed:#}");

    // The scheduler runs the three dates; the page shows it on a reload.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        client.goto(&page).await.expect("reload");
        let done = client
            .execute(
                "var r = document.querySelector('tr[data-backfill]'); return !!r && r.textContent.includes('completed') && r.querySelector('[data-progress]').textContent.trim() === '3 / 3';",
                vec![],
            )
            .await
            .ok()
            == Some(serde_json::json!(true));
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the backfill never completed: {}",
            client.source().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let runs = home.json(&["dags", "list-runs", "ui_backfill"]);
    let backfill_runs = runs
        .as_array()
        .expect("runs")
        .iter()
        .filter(|r| r["run_type"] == "backfill" && r["state"] == "success")
        .count();
    assert_eq!(backfill_runs, 3, "{runs:#}");
    client.close().await.expect("closing the browser");
}
