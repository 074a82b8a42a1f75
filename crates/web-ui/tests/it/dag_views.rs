//! The DAG views: grid, graph, gantt, durations, code, details, runs, tasks, audit, trigger,
//! run and task-instance pages — status, key elements, role-dependent actions, escaping.

use axum::http::StatusCode;
use updraft_model::TaskState;
use updraft_rest_api::auth::Role;
use updraft_store::conformance::fixture;

use crate::dag_world::{self, EVIL_CONF, EVIL_DAG, EVIL_LOG, EVIL_PARAM};
use crate::fixture::Ui;

/// `body` with askama's numeric character references written as the named ones the
/// assertions use (`&#60;` → `&lt;`, …), so they do not depend on the escaper's style.
fn norm(body: String) -> String {
    body.replace("&#60;", "&lt;")
        .replace("&#62;", "&gt;")
        .replace("&#38;", "&amp;")
        .replace("&#34;", "&quot;")
        .replace("&#x27;", "&#39;")
}

/// No user text comes out as markup.
fn assert_escaped(body: &str) {
    for evil in [EVIL_DAG, EVIL_PARAM, EVIL_CONF, EVIL_LOG] {
        assert!(!body.contains(evil), "unescaped {evil} in:\n{body}");
    }
    assert!(!body.contains("<script>alert"), "{body}");
}

#[tokio::test]
async fn the_grid_shows_runs_as_columns_and_cells_that_lead_to_task_instances() {
    let ui = Ui::start().await;
    dag_world::etl_with_a_run(ui.store.as_ref()).await;
    let mut browser = ui.signed_in(Role::Admin).await;
    let body = norm(browser.get("/dags/etl").await.ok());
    assert!(body.contains("<h1>etl</h1>"), "{body}");
    // A cell is its state and duration; its column and row say where it leads.
    assert!(
        body.contains(r#"<th scope="col" class="run-col" data-cells="/dags/etl/runs/r1/tasks/" data-run="r1">"#),
        "{body}"
    );
    assert!(
        body.contains(r#"<th scope="row" class="task-col" data-task="extract">"#),
        "{body}"
    );
    assert!(
        body.contains(r#"<td class="state-success"></td>"#),
        "{body}"
    );
    assert!(
        body.contains(r#"<tr data-ms=""#),
        "durations once per row: {body}"
    );
    assert!(body.contains(r#"<td class="state-failed""#), "{body}");
    assert!(
        body.contains(r#"aria-describedby="grid-help""#),
        "the grid says how to use it"
    );
    assert!(body.contains(r#"href="/dags/etl/runs/r1""#));
    assert!(body.contains(r#"data-live="/dags/etl?runs=25&amp;fragment=grid""#));
    assert!(body.contains(">Trigger</a>"), "an Admin may trigger");
    assert!(body.contains(r#"data-pause="etl""#));
    for tab in [
        "/dags/etl/graph",
        "/dags/etl/gantt",
        "/dags/etl/code",
        "/dags/etl/details",
        "/dags/etl/audit",
    ] {
        assert!(body.contains(&format!(r#"href="{tab}""#)), "tab {tab}");
    }
    let fragment = norm(browser.get("/dags/etl?fragment=grid").await.ok());
    assert!(
        fragment.starts_with("<section class=\"grid-region\""),
        "{fragment}"
    );
    assert!(!fragment.contains("<html"));
}

#[tokio::test]
async fn the_grid_is_bounded_by_the_runs_asked_for() {
    let ui = Ui::start().await;
    dag_world::publish(ui.store.as_ref()).await;
    for i in 0..4 {
        dag_world::run(ui.store.as_ref(), "etl", &format!("run-{i}"), i).await;
    }
    let mut browser = ui.signed_in(Role::Viewer).await;
    let body = norm(browser.get("/dags/etl?runs=2").await.ok());
    assert!(body.contains("run-3") && body.contains("run-2"));
    assert!(!body.contains("run-1") && !body.contains("run-0"), "{body}");
    // Newest right: run-2's column comes before run-3's.
    assert!(body.find("/runs/run-2\"") < body.find("/runs/run-3\""));
}

#[tokio::test]
async fn a_viewer_is_not_offered_writes_and_cannot_open_the_trigger_form() {
    let ui = Ui::start().await;
    dag_world::etl_with_a_run(ui.store.as_ref()).await;
    let mut browser = ui.signed_in(Role::Viewer).await;
    let grid = norm(browser.get("/dags/etl").await.ok());
    assert!(!grid.contains(">Trigger</a>"));
    assert!(!grid.contains("data-pause="));
    let run = norm(browser.get("/dags/etl/runs/r1").await.ok());
    assert!(!run.contains("data-clear"), "no clear for a Viewer");
    assert!(!run.contains("data-mark"), "no marks for a Viewer");
    let trigger = browser.get("/dags/etl/trigger").await;
    assert_eq!(trigger.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_missing_dag_or_run_is_a_404_page() {
    let ui = Ui::start().await;
    dag_world::publish(ui.store.as_ref()).await;
    let mut browser = ui.signed_in(Role::Admin).await;
    for path in [
        "/dags/nope",
        "/dags/nope/graph",
        "/dags/etl/runs/nope",
        "/dags/etl/runs/nope/tasks/extract",
        "/dags/etl/code?version=99",
    ] {
        let answer = browser.get(path).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn graph_gantt_and_durations_are_svg_charts_with_links() {
    let ui = Ui::start().await;
    dag_world::etl_with_a_run(ui.store.as_ref()).await;
    let mut browser = ui.signed_in(Role::Viewer).await;
    let graph = norm(browser.get("/dags/etl/graph").await.ok());
    assert!(
        graph.contains(r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart graph""#),
        "{graph}"
    );
    assert!(graph.contains(
        r#"<a href="/dags/etl/runs/r1/tasks/extract?try=1"><g class="node state-success""#
    ));
    assert!(graph.contains(r#"class="node state-failed" data-task-id="transform""#));
    assert!(graph.contains(r#"class="edge""#));
    assert!(graph.contains("data-graph-zoom=\"in\""));
    let fragment = norm(
        browser
            .get("/dags/etl/graph?run_id=r1&fragment=graph")
            .await
            .ok(),
    );
    assert!(fragment.starts_with("<figure"), "{fragment}");
    let gantt = norm(browser.get("/dags/etl/gantt?run_id=r1").await.ok());
    assert!(gantt.contains(r#"class="chart gantt""#));
    assert!(gantt.contains(r#"<rect class="ran""#));
    assert!(gantt.contains(r#"<option value="r1" selected>"#));
    let durations = norm(browser.get("/dags/etl/durations").await.ok());
    assert!(durations.contains(r#"class="chart durations""#));
    assert!(durations.contains(r#"<a href="/dags/etl/runs/r1"><rect class="bar state-"#));
}

#[tokio::test]
async fn code_shows_numbered_lines_and_a_diff_between_versions() {
    let ui = Ui::start().await;
    dag_world::publish(ui.store.as_ref()).await;
    let mut browser = ui.signed_in(Role::Viewer).await;
    let code = norm(browser.get("/dags/etl/code").await.ok());
    assert!(
        code.contains(
            r##"<tr id="L1"><td class="ln"><a href="#L1">1</a></td><td><code># etl h2</code>"##
        ),
        "{code}"
    );
    assert!(code.contains(r#"<option value="2" selected>"#));
    let old = norm(browser.get("/dags/etl/code?version=1").await.ok());
    assert!(old.contains("<code># etl h1</code>"));
    let diff = norm(browser.get("/dags/etl/code?version=2&diff=1").await.ok());
    assert!(
        diff.contains(r#"<tr class="diff-delete"><td class="ln">1</td><td class="ln"></td>"#),
        "{diff}"
    );
    assert!(diff.contains("<code># etl h2</code>"));
    assert!(diff.contains("Changes from version 1 to version 2"));
}

#[tokio::test]
async fn details_show_the_schedule_next_fire_times_and_params() {
    let ui = Ui::start().await;
    dag_world::publish(ui.store.as_ref()).await;
    let mut browser = ui.signed_in(Role::Viewer).await;
    let body = norm(browser.get("/dags/etl/details").await.ok());
    assert!(body.contains("<code>0 * * * *</code>"), "{body}");
    assert!(body.contains("<dt>Run timeout</dt><dd>none</dd>"), "{body}");
    assert!(
        body.contains("<dt>Pause after failed runs</dt><dd>never</dd>"),
        "{body}"
    );
    assert_eq!(
        body.matches("<li><time datetime=").count(),
        5,
        "five fire times"
    );
    assert!(body.contains("<code>count</code>"));
    assert!(body.contains("(none: required)"), "day has no default");
    assert!(
        body.contains("<dt><code>retries</code></dt><dd><code>2</code></dd>"),
        "{body}"
    );
    assert!(
        body.contains("<dt><code>retry_delay</code></dt><dd><code>5m</code></dd>"),
        "{body}"
    );
    assert!(body.contains("&lt;b&gt;etl&lt;/b&gt;"), "{body}");
    assert!(body.contains("one of <code>&quot;dev&quot;</code>"));
    assert!(
        body.contains("&lt;script&gt;alert(&#39;param&#39;)&lt;/script&gt;"),
        "{body}"
    );
    assert_escaped(&body);
}

#[tokio::test]
async fn runs_tasks_and_audit_tables() {
    let ui = Ui::start().await;
    dag_world::etl_with_a_run(ui.store.as_ref()).await;
    let mut browser = ui.signed_in(Role::Admin).await;
    let runs = norm(browser.get("/dags/etl/runs").await.ok());
    assert!(
        runs.contains(r#"<th scope="row"><a href="/dags/etl/runs/r1">r1</a></th>"#),
        "{runs}"
    );
    assert!(runs.contains("1–1 of 1"));
    // Pages count from 1, as on the DAG list: 51 runs are two pages of 50.
    for i in 2..=51 {
        dag_world::run(ui.store.as_ref(), "etl", &format!("r{i}"), i).await;
    }
    let first = norm(browser.get("/dags/etl/runs").await.ok());
    assert!(first.contains("1–50 of 51"), "{first}");
    assert!(first.contains(r#"href="/dags/etl/runs?page=2""#), "{first}");
    let second = norm(browser.get("/dags/etl/runs?page=2").await.ok());
    assert!(second.contains("51–51 of 51"), "{second}");
    assert!(second.contains(r#"href="/dags/etl/runs""#), "{second}");
    assert!(
        second.contains(r#"<a href="/dags/etl/runs/r1">r1</a>"#),
        "the oldest last"
    );
    let tasks = norm(browser.get("/dags/etl/tasks").await.ok());
    assert!(tasks.contains(r#"<tr id="task-transform">"#));
    assert!(tasks.contains("<td>all_success</td>"));
    // A change through the API is in the DAG's audit log.
    let paused = browser
        .api(
            axum::http::Method::PATCH,
            "/api/v2/dags/etl",
            serde_json::json!({"is_paused": true}),
        )
        .await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.body);
    let audit = norm(browser.get("/dags/etl/audit").await.ok());
    assert!(audit.contains("<code>patch_dag</code>"), "{audit}");
    assert!(audit.contains("<td>admin</td>"));
}

#[tokio::test]
async fn the_trigger_form_is_generated_from_the_params() {
    let ui = Ui::start().await;
    dag_world::publish(ui.store.as_ref()).await;
    let mut browser = ui.signed_in(Role::User).await;
    let body = norm(browser.get("/dags/etl/trigger").await.ok());
    assert!(
        body.contains(r#"data-api="/api/v2/dags/etl/dagRuns""#),
        "{body}"
    );
    assert!(
        body.contains(r#"type="number" data-param="count" data-type="integer" value="2""#),
        "{body}"
    );
    assert!(
        body.contains(r#"min="1""#) && body.contains(r#"max="9""#) && body.contains(r#"step="1""#)
    );
    assert!(
        body.contains(r#"<option value="prod" >prod</option>"#)
            || body.contains(r#"<option value="prod">prod</option>"#),
        "{body}"
    );
    assert!(body.contains(r#"type="date" data-param="day""#));
    let day = body.split(r#"data-param="day""#).nth(1).unwrap_or_default();
    assert!(
        day.split('>')
            .next()
            .unwrap_or_default()
            .contains("required"),
        "day has no default"
    );
    assert!(
        body.contains(r#"data-param="table" data-type="""#),
        "an untyped param is JSON"
    );
    assert!(body.contains("data-conf-json"));
    assert_escaped(&body);
}

#[tokio::test]
async fn the_run_page_lists_task_instances_conf_and_actions() {
    let ui = Ui::start().await;
    dag_world::etl_with_a_run(ui.store.as_ref()).await;
    let mut browser = ui.signed_in(Role::Op).await;
    let body = norm(browser.get("/dags/etl/runs/r1").await.ok());
    assert!(
        body.contains(r#"<a href="/dags/etl/runs/r1/tasks/transform?try=1">transform</a>"#),
        "{body}"
    );
    assert!(body.contains(r#"<span class="state state-failed">failed</span>"#));
    assert!(body
        .contains(r#"data-clear data-api="/api/v2/dags/etl/clearTaskInstances" data-run-id="r1""#));
    assert!(body.contains(r#"data-mark="failed""#));
    assert!(body.contains("data-note"));
    assert!(
        body.contains("&lt;script&gt;alert("),
        "the conf is shown, escaped"
    );
    assert_escaped(&body);
    let fragment = norm(browser.get("/dags/etl/runs/r1?fragment=run").await.ok());
    assert!(fragment.starts_with("<section class=\"run-region\""));
}

#[tokio::test]
async fn the_task_instance_page_shows_the_log_with_line_links_xcoms_and_tries() {
    let ui = Ui::start().await;
    dag_world::etl_with_a_run(ui.store.as_ref()).await;
    let mut browser = ui.signed_in(Role::Op).await;
    let body = norm(
        browser
            .get("/dags/etl/runs/r1/tasks/extract?try=1")
            .await
            .ok(),
    );
    assert!(body.contains(r##"<span class="log-line" id="L2"><a href="#L2" class="line-number" aria-label="Line 2">2</a>[2024-01-01T00:00:01+00:00] {stdout} extracting</span>"##), "{body}");
    assert!(body.contains(r#"id="L3""#));
    assert!(
        body.contains("&lt;script&gt;alert("),
        "the log line is shown, escaped"
    );
    assert!(
        !body.contains("data-follow=") && !body.contains("data-await-try"),
        "an ended try is not followed"
    );
    assert!(body.contains("<code>return_value</code>"));
    assert!(
        body.contains("&lt;b&gt;128&lt;/b&gt;"),
        "XCom values are escaped"
    );
    assert!(body.contains("Try 1: success"));
    assert!(body
        .contains(r#"data-deps="/api/v2/dags/etl/dagRuns/r1/taskInstances/extract/dependencies""#));
    assert!(
        body.contains("<code>echo extract</code>"),
        "the command as written"
    );
    assert!(
        body.contains(r#"data-rendered><code>echo extract --rendered</code>"#),
        "the command as rendered"
    );
    assert_escaped(&body);

    let download = browser
        .get("/dags/etl/runs/r1/tasks/extract/log?try=1")
        .await;
    assert_eq!(download.status, StatusCode::OK);
    assert!(
        download.body.contains(EVIL_LOG),
        "the download is the raw text"
    );
    let disposition = download
        .headers
        .get("content-disposition")
        .and_then(|v| v.to_str().ok());
    assert_eq!(
        disposition,
        Some("attachment; filename=\"etl-r1-extract-1.log\"")
    );
    assert!(download
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/plain")));
}

#[tokio::test]
async fn a_running_try_is_followed_from_where_the_page_stopped() {
    let ui = Ui::start().await;
    dag_world::publish(ui.store.as_ref()).await;
    let run = dag_world::run(ui.store.as_ref(), "etl", "live", 0).await;
    let ti = updraft_store::conformance::fixture::ti(ui.store.as_ref(), run.id, "extract").await;
    updraft_store::conformance::fixture::queue(ui.store.as_ref(), &ti).await;
    let mut browser = ui.signed_in(Role::Viewer).await;
    let body = norm(browser.get("/dags/etl/runs/live/tasks/extract").await.ok());
    let token = updraft_rest_api::log_continuation_token(0);
    assert!(
        body.contains(&format!(r#"data-follow="/api/v2/dags/etl/dagRuns/live/taskInstances/extract/logs/1?token={token}""#)),
        "{body}"
    );
}

#[tokio::test]
async fn a_dag_id_with_markup_is_escaped_on_every_page() {
    let ui = Ui::start().await;
    dag_world::publish(ui.store.as_ref()).await;
    dag_world::run(ui.store.as_ref(), EVIL_DAG, "r1", 0).await;
    let mut browser = ui.signed_in(Role::Admin).await;
    let base = format!("/dags/{}", updraft_web_ui::links::encode(EVIL_DAG));
    for tab in [
        "",
        "/graph",
        "/gantt",
        "/durations",
        "/code",
        "/details",
        "/runs",
        "/tasks",
        "/audit",
        "/trigger",
        "/runs/r1",
        "/runs/r1/tasks/a",
    ] {
        let body = norm(browser.get(&format!("{base}{tab}")).await.ok());
        assert!(
            body.contains("&lt;script&gt;alert("),
            "{tab}: the id is shown"
        );
        assert_escaped(&body);
    }
}

#[tokio::test]
async fn a_task_groups_tasks_fold_under_its_summary_row_in_the_grid() {
    let ui = Ui::start().await;
    let mut grouped = fixture::dag(
        "grouped",
        updraft_model::Schedule::None,
        &["start", "etl.extract", "etl.load"],
    );
    grouped.tasks[1].task_group = Some("etl".into());
    grouped.tasks[2].task_group = Some("etl".into());
    fixture::sync(ui.store.as_ref(), vec![fixture::upsert(grouped, "h1")]).await;
    let run = dag_world::run(ui.store.as_ref(), "grouped", "r1", 0).await;
    dag_world::finish(
        ui.store.as_ref(),
        &run,
        "etl.extract",
        TaskState::Failed,
        "boom\n",
        None,
    )
    .await;
    let mut browser = ui.signed_in(Role::Viewer).await;
    let body = norm(browser.get("/dags/grouped").await.ok());
    let body = body.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        body.contains(r#"<tr class="group-row"> <th scope="row" class="task-col"><button type="button" class="group-toggle" aria-expanded="true" data-group-toggle="etl">etl</button></th> <td class="state-failed"></td>"#),
        "the group's row sums its tasks up as failed: {body}"
    );
    assert!(
        body.contains(r#"data-in-group="etl"> <th scope="row" class="task-col in-group" data-task="etl.extract">"#),
        "{body}"
    );
    assert!(!body.contains(
        r#"data-in-group="etl"> <th scope="row" class="task-col in-group" data-task="start">"#
    ));
}

/// A grid of many tasks sends the rows past the first screen in a `<template>`, which the
/// page's script moves into the table after the first paint; without scripts, a link shows
/// them all, and the live fragment always has them all (it replaces a grid already shown).
#[tokio::test]
async fn a_big_grid_sends_the_rows_past_the_first_screen_after_it() {
    let ui = Ui::start().await;
    let ids: Vec<String> = (0..60).map(|i| format!("task_{i:02}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let wide = fixture::dag("wide", updraft_model::Schedule::None, &ids);
    fixture::sync(ui.store.as_ref(), vec![fixture::upsert(wide, "h1")]).await;
    dag_world::run(ui.store.as_ref(), "wide", "r1", 0).await;
    let mut browser = ui.signed_in(Role::Viewer).await;
    let rows_in = |html: &str| html.matches("<tr data-ms=").count();

    let page = norm(browser.get("/dags/wide").await.ok());
    let (table, rest) = page
        .split_once("<template data-grid-rest>")
        .expect("the later rows in a template");
    let (later, _) = rest.split_once("</template>").expect("the template ends");
    assert_eq!(rows_in(table), 40, "{table}");
    assert_eq!(rows_in(later), 20, "{later}");
    assert!(table.contains(r#"data-task="task_39""#) && later.contains(r#"data-task="task_40""#));
    assert!(
        page.contains(r#"<a href="/dags/wide?runs=25&amp;rows=all">Show all rows</a>"#),
        "{page}"
    );

    for path in ["/dags/wide?rows=all", "/dags/wide?fragment=grid"] {
        let all = norm(browser.get(path).await.ok());
        assert!(!all.contains("<template"), "{path}: {all}");
        assert_eq!(rows_in(&all), 60, "{path}");
    }
}

#[tokio::test]
async fn a_mapped_tasks_page_shows_one_instance_with_a_map_index_selector() {
    let ui = Ui::start().await;
    let store = ui.store.as_ref();
    dag_world::publish(store).await;
    let run = dag_world::run(store, "etl", "m1", 0).await;
    let placeholder = fixture::ti(store, run.id, "transform").await;
    store
        .apply_plan(
            vec![fixture::transition(&placeholder, TaskState::Scheduled)],
            vec![updraft_store::Expansion {
                ti_id: placeholder.id,
                count: 3,
            }],
        )
        .await
        .unwrap();
    let mut browser = ui.signed_in(Role::Op).await;
    let body = norm(
        browser
            .get("/dags/etl/runs/m1/tasks/transform?map_index=2")
            .await
            .ok(),
    );
    assert!(body.contains("<code>transform</code> [2] of run"), "{body}");
    assert!(
        body.contains(r#"<select id="map-index" name="map_index">"#),
        "{body}"
    );
    for i in 0..3 {
        assert!(
            body.contains(&format!(r#"<option value="{i}""#)),
            "instance {i} offered: {body}"
        );
    }
    assert!(
        body.contains(r#"<option value="2" selected>2 · scheduled</option>"#),
        "{body}"
    );
    // The actions name the instance: marked through …/{task_id}/{map_index}, cleared as
    // Airflow's [task_id, map_index].
    assert!(body.contains(r#"data-api="/api/v2/dags/etl/dagRuns/m1/taskInstances/transform/2""#));
    assert!(
        body.contains(r#"data-task-id="transform" data-map-index="2""#),
        "{body}"
    );
    assert!(body.contains(
        r#"data-deps="/api/v2/dags/etl/dagRuns/m1/taskInstances/transform/2/dependencies""#
    ));

    // Without a map index: the first instance; an index it does not have is a 404 page.
    let body = norm(browser.get("/dags/etl/runs/m1/tasks/transform").await.ok());
    assert!(body.contains(r#"<option value="0" selected>"#), "{body}");
    let missing = browser
        .get("/dags/etl/runs/m1/tasks/transform?map_index=9")
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // A task that is not mapped has no selector.
    let body = norm(browser.get("/dags/etl/runs/m1/tasks/extract").await.ok());
    assert!(!body.contains("map-index"), "{body}");
}
