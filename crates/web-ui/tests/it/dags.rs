//! The DAGs list: filters, sorting, pages, the role's controls, escaping.

use axum::http::{Method, StatusCode};
use serde_json::json;
use updraft_rest_api::auth::Role;

use crate::fixture::Ui;
use crate::world::{self, EVIL_DAG};

fn dag_ids(html: &str) -> Vec<String> {
    html.split("<tr data-dag-id=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn the_list_filters_sorts_and_escapes_dag_ids() {
    let ui = Ui::start().await;
    world::publish(ui.store.as_ref()).await;
    world::failed_run(ui.store.as_ref(), "etl", "manual__1").await;
    let mut browser = ui.signed_in(Role::User).await;

    let all = browser.get("/dags").await.ok();
    assert_eq!(
        dag_ids(&all),
        [
            "&#60;script&#62;alert(&#39;dag&#39;)&#60;/script&#62;",
            "etl",
            "hourly"
        ],
        "{all}"
    );
    assert!(!all.contains(EVIL_DAG), "an unescaped DAG id: {all}");
    assert!(!all.contains("<b>users</b>"), "descriptions are escaped");
    // The failed run is a red square with its state in words, linking to the run.
    assert!(
        all.contains(r#"<li><a class="run-square state-failed" href="/dags/etl/runs/manual__1""#),
        "{all}"
    );
    assert!(all.contains("aria-label=\"manual__1 · failed ·"), "{all}");
    // Controls for a User: pause switches and trigger buttons.
    assert!(all.contains(r#"data-pause="etl""#));
    assert!(all.contains(r#"<a class="button" href="/dags/etl/trigger""#));
    // The cron DAG's schedule.
    assert!(all.contains("<code>0 * * * *</code>"), "{all}");

    let searched = browser.get("/dags?search=our").await.ok();
    assert_eq!(dag_ids(&searched), ["hourly"]);
    let tagged = browser.get("/dags?tags=etl&tags=misc").await.ok();
    assert_eq!(dag_ids(&tagged), ["etl", "hourly"]);
    let failed = browser.get("/dags?status=failed").await.ok();
    assert_eq!(dag_ids(&failed), ["etl"]);
    let sorted = browser.get("/dags?sort=-dag_id").await.ok();
    assert_eq!(dag_ids(&sorted)[0], "hourly");
    assert!(sorted.contains(r#"aria-sort="descending""#));
    let paged = browser.get("/dags?limit=2&page=2").await.ok();
    assert_eq!(dag_ids(&paged), ["hourly"]);
    assert!(paged.contains("3–3 of 3"), "{paged}");
    assert!(
        paged.contains(r#"href="/dags?limit=2" rel="prev""#),
        "{paged}"
    );
    // A page far past the end (even the largest number) is an empty page, not a crash.
    let far = browser
        .get("/dags?limit=2&page=18446744073709551615")
        .await
        .ok();
    assert!(dag_ids(&far).is_empty(), "{far}");

    assert_eq!(
        browser.get("/dags?sort=nope").await.status,
        StatusCode::BAD_REQUEST
    );
    // A malformed value is the UI's error page naming the parameter, on every view.
    for path in ["/dags/etl?fragment=gird", "/dags/etl/graph?fragment=nope"] {
        let answer = browser.get(path).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(
            answer.body.contains("has no fragment"),
            "{path}: {}",
            answer.body
        );
    }
    for path in [
        "/dags?page=abc",
        "/dags/etl?runs=-1",
        "/admin/variables?page=x",
    ] {
        let answer = browser.get(path).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(
            answer.body.contains("<!doctype html>"),
            "{path}: {}",
            answer.body
        );
        assert!(
            answer.body.contains("bad query parameter"),
            "{path}: {}",
            answer.body
        );
    }

    // Pausing through the API (as the switch does) shows in the paused filter.
    let answer = browser
        .api(
            Method::PATCH,
            "/api/v2/dags/etl?update_mask=is_paused",
            json!({"is_paused": true}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let paused = browser.get("/dags?status=paused").await.ok();
    assert_eq!(dag_ids(&paused), ["etl"]);
    let active = browser.get("/dags?status=active").await.ok();
    assert_eq!(dag_ids(&active).len(), 2);

    let fragment = browser.get("/dags?status=paused&fragment=table").await.ok();
    assert!(
        fragment.starts_with(
            "<div id=\"dag-table\" data-live=\"/dags?status=paused&#38;fragment=table\""
        ),
        "{fragment}"
    );
}

#[tokio::test]
async fn a_viewer_gets_no_pause_switch_or_trigger_button_and_the_api_refuses() {
    let ui = Ui::start().await;
    world::publish(ui.store.as_ref()).await;
    let mut browser = ui.signed_in(Role::Viewer).await;
    let page = browser.get("/dags").await.ok();
    assert!(page.contains(r#"<tr data-dag-id="etl">"#));
    assert!(!page.contains("data-pause=\""), "{page}");
    assert!(!page.contains("data-trigger"), "{page}");
    let answer = browser
        .api(
            Method::PATCH,
            "/api/v2/dags/etl?update_mask=is_paused",
            json!({"is_paused": true}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn many_dags_are_shown_a_page_at_a_time() {
    use updraft_model::Schedule;
    use updraft_store::conformance::fixture;
    let ui = Ui::start().await;
    let dags = (0..60)
        .map(|i| {
            fixture::upsert(
                fixture::dag(&format!("dag_{i:03}"), Schedule::None, &["a"]),
                "h1",
            )
        })
        .collect();
    fixture::sync(ui.store.as_ref(), dags).await;
    let mut browser = ui.signed_in(Role::Viewer).await;
    let first = browser.get("/dags").await.ok();
    let ids = dag_ids(&first);
    assert_eq!(ids.len(), 25);
    assert_eq!(ids[0], "dag_000");
    assert!(first.contains("1–25 of 60"), "{first}");
    assert!(
        first.contains(r#"href="/dags?page=2" rel="next""#),
        "{first}"
    );
    let last = browser.get("/dags?page=3").await.ok();
    assert_eq!(dag_ids(&last).len(), 10);
    assert!(!last.contains("rel=\"next\""));
}
