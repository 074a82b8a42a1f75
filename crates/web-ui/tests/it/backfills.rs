//! A DAG's Backfills tab: the list with progress and actions, the create form, and the API
//! calls its script makes (create, dry run, pause, unpause, cancel), whose messages the form
//! shows; a Viewer sees the list only.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use updraft_rest_api::auth::Role;

use crate::dag_world::{self, EVIL_DAG};
use crate::fixture::{Browser, Ui};

/// The body `static/dag.js` sends for `etl` from 00:00 to 05:00 on 2024-01-01 (six hourly
/// dates, the first of which has run `r1`).
fn body() -> Value {
    json!({
        "dag_id": "etl",
        "from_date": "2024-01-01T00:00:00.000Z",
        "to_date": "2024-01-01T05:00:00.000Z",
        "reprocess_behavior": "none",
        "max_active_runs": 3,
        "run_backwards": false,
        "dag_run_conf": {"source": "ui"},
    })
}

/// The page's row of backfill `id` (from its `<tr>` to its `</tr>`).
fn row(page: &str, id: i64) -> String {
    let start = page
        .find(&format!(r#"<tr data-backfill="{id}">"#))
        .unwrap_or_else(|| panic!("no row for backfill {id}:\n{page}"));
    let end = page[start..]
        .find("</tr>")
        .map_or(page.len(), |e| start + e);
    page[start..end].to_string()
}

async fn create(browser: &mut Browser, body: Value) -> i64 {
    let created = browser.api(Method::POST, "/api/v2/backfills", body).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let created: Value = serde_json::from_str(&created.body).expect("JSON");
    created["id"].as_i64().expect("an id")
}

#[tokio::test]
async fn the_form_plans_and_creates_a_backfill_that_the_tab_lists() {
    let ui = Ui::start().await;
    dag_world::etl_with_a_run(ui.store.as_ref()).await;
    let mut admin = ui.signed_in(Role::Admin).await;

    let empty = admin.get("/dags/etl/backfills").await.ok();
    assert!(empty.contains("No backfills yet."), "{empty}");
    assert!(
        empty.contains(r#"href="/dags/etl/backfills" aria-current="page">Backfills</a>"#),
        "the tab is current: {empty}"
    );
    assert!(
        empty.contains(r#"<form class="trigger-form" data-backfill data-backfill-api="/api/v2/backfills" data-dag-id="etl""#),
        "{empty}"
    );
    for field in [
        r#"name="from_date" type="datetime-local""#,
        r#"name="to_date" type="datetime-local""#,
        r#"<select id="backfill-reprocess" name="reprocess_behavior""#,
        r#"name="max_active_runs" type="number" min="1""#,
        r#"name="run_backwards""#,
        r#"name="dag_run_conf""#,
        "data-backfill-dry-run",
        r#"<p class="form-status" data-backfill-status role="alert">"#,
    ] {
        assert!(empty.contains(field), "{field} in {empty}");
    }
    assert!(!empty.contains("has no schedule"), "etl is hourly: {empty}");

    // The dry run lists the dates without r1's, which reprocess_behavior none skips.
    let dry = admin
        .api(Method::POST, "/api/v2/backfills/dry_run", body())
        .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    let dry: Value = serde_json::from_str(&dry.body).expect("JSON");
    let dates: Vec<&str> = dry["backfills"]
        .as_array()
        .expect("dates")
        .iter()
        .filter_map(|d| d["logical_date"].as_str())
        .collect();
    assert_eq!(dates.len(), 5, "{dry}");
    assert!(dates[0].starts_with("2024-01-01T01:00:00"), "{dry}");
    assert!(
        ui.store
            .list_backfills(Some("etl"))
            .await
            .expect("list")
            .is_empty(),
        "a dry run creates nothing"
    );

    let id = create(&mut admin, body()).await;
    let page = admin.get("/dags/etl/backfills").await.ok();
    let row = row(&page, id);
    assert!(
        row.contains(r#"<time datetime="2024-01-01T00:00:00Z""#),
        "{row}"
    );
    assert!(
        row.contains(r#"<time datetime="2024-01-01T05:00:00Z""#),
        "{row}"
    );
    assert!(row.contains("<td>none</td>"), "{row}");
    assert!(row.contains("<td>3</td>"), "{row}");
    assert!(
        row.contains(r#"<span class="state backfill-running">running</span>"#),
        "{row}"
    );
    assert!(
        row.contains("<td data-progress>0 / 5</td>"),
        "no scheduler took a date yet: {row}"
    );
    assert!(
        row.contains(&format!(
            r#"<form data-api="PUT /api/v2/backfills/{id}/pause""#
        )),
        "{row}"
    );
    assert!(
        row.contains(&format!(
            r#"<form data-api="PUT /api/v2/backfills/{id}/cancel" data-confirm="#
        )),
        "{row}"
    );
    assert!(
        !row.contains("/unpause"),
        "a running one is not unpaused: {row}"
    );
    let stored = ui.store.get_backfill(id).await.expect("stored");
    assert_eq!(stored.dag_run_conf.get("source"), Some(&json!("ui")));
}

#[tokio::test]
async fn pause_unpause_and_cancel_change_the_row_and_its_actions() {
    let ui = Ui::start().await;
    dag_world::etl_with_a_run(ui.store.as_ref()).await;
    let mut op = ui.signed_in(Role::Op).await;
    let id = create(&mut op, body()).await;
    let api = format!("/api/v2/backfills/{id}");

    let paused = op
        .api(Method::PUT, &format!("{api}/pause"), json!({}))
        .await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.body);
    let page = op.get("/dags/etl/backfills").await.ok();
    let r = row(&page, id);
    assert!(r.contains(">paused</span>"), "{r}");
    assert!(
        r.contains(&format!(r#"<form data-api="PUT {api}/unpause""#)),
        "{r}"
    );
    assert!(!r.contains(&format!("{api}/pause\"")), "{r}");

    let unpaused = op
        .api(Method::PUT, &format!("{api}/unpause"), json!({}))
        .await;
    assert_eq!(unpaused.status, StatusCode::OK, "{}", unpaused.body);
    let r = row(&op.get("/dags/etl/backfills").await.ok(), id);
    assert!(r.contains(">running</span>"), "{r}");

    let cancelled = op
        .api(Method::PUT, &format!("{api}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    let r = row(&op.get("/dags/etl/backfills").await.ok(), id);
    assert!(
        r.contains(r#"<span class="state backfill-cancelled">cancelled</span>"#),
        "{r}"
    );
    assert!(
        !r.contains("<form"),
        "a cancelled backfill has no actions: {r}"
    );
    assert_eq!(
        r.matches("<time datetime=").count(),
        4,
        "from, to, created and completed: {r}"
    );

    // Cancelled is completed: the DAG may have another one.
    let second = create(&mut op, body()).await;
    let page = op.get("/dags/etl/backfills").await.ok();
    assert!(
        page.find(&format!(r#"data-backfill="{second}""#))
            < page.find(&format!(r#"data-backfill="{id}""#)),
        "newest first: {page}"
    );
}

#[tokio::test]
async fn bad_requests_answer_the_message_the_form_shows() {
    let ui = Ui::start().await;
    dag_world::etl_with_a_run(ui.store.as_ref()).await;
    let mut admin = ui.signed_in(Role::Admin).await;

    let mut reversed = body();
    reversed["from_date"] = json!("2024-01-02T00:00:00Z");
    let mut no_schedule = body();
    no_schedule["dag_id"] = json!(EVIL_DAG);
    let mut array_conf = body();
    array_conf["dag_run_conf"] = json!([1, 2]);
    let mut zero_runs = body();
    zero_runs["max_active_runs"] = json!(0);
    let mut bad_date = body();
    bad_date["to_date"] = json!("2024-13-45T00:00:00Z");
    for (what, request, status, message) in [
        ("a reversed range", reversed, 422, "is after to_date"),
        (
            "a DAG without a schedule",
            no_schedule,
            422,
            "has no schedule",
        ),
        (
            "a conf that is not an object",
            array_conf,
            422,
            "dag_run_conf",
        ),
        ("no run at a time", zero_runs, 422, "at least 1"),
        ("a date that does not exist", bad_date, 422, "to_date"),
    ] {
        for url in ["/api/v2/backfills/dry_run", "/api/v2/backfills"] {
            let answer = admin.api(Method::POST, url, request.clone()).await;
            assert_eq!(
                answer.status.as_u16(),
                status,
                "{what} at {url}: {}",
                answer.body
            );
            let detail: Value = serde_json::from_str(&answer.body).expect("JSON");
            assert!(
                detail["detail"].to_string().contains(message),
                "{what}: {}",
                answer.body
            );
        }
    }
    assert!(ui
        .store
        .list_backfills(None)
        .await
        .expect("list")
        .is_empty());

    // A DAG without a schedule says so above its form, its id escaped.
    let path = format!(
        "/dags/{}/backfills",
        updraft_web_ui::links::encode(EVIL_DAG)
    );
    let page = admin.get(&path).await.ok();
    assert!(page.contains("This DAG has no schedule"), "{page}");
    assert!(!page.contains(EVIL_DAG), "escaped: {page}");

    // One unfinished backfill per DAG: the second is a conflict.
    create(&mut admin, body()).await;
    let again = admin.api(Method::POST, "/api/v2/backfills", body()).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert!(again.body.contains("detail"), "{}", again.body);

    let missing = admin.get("/dags/nope/backfills").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_viewer_sees_the_backfills_but_can_neither_create_nor_cancel() {
    let ui = Ui::start().await;
    dag_world::etl_with_a_run(ui.store.as_ref()).await;
    let mut admin = ui.signed_in(Role::Admin).await;
    let id = create(&mut admin, body()).await;

    let mut viewer = ui.signed_in(Role::Viewer).await;
    let page = viewer.get("/dags/etl/backfills").await.ok();
    let r = row(&page, id);
    assert!(r.contains(">running</span>"), "{r}");
    assert!(!page.contains("data-backfill-api"), "no form: {page}");
    assert!(!page.contains("New backfill"), "{page}");
    assert!(!page.contains("<form data-api="), "no actions: {page}");

    let refused = viewer.api(Method::POST, "/api/v2/backfills", body()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let refused = viewer
        .api(
            Method::PUT,
            &format!("/api/v2/backfills/{id}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let stored = ui.store.get_backfill(id).await.expect("stored");
    assert!(stored.completed_at.is_none(), "still running");
}
