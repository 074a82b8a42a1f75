//! The DAG views in a real browser: trigger with params and watch the grid turn green
//! without reloading, the graph with zoom, a live log while the task runs, and clearing a
//! failed task so that it runs again.

pub(super) mod browser;

use std::time::Duration;

use fantoccini::Locator;

use crate::fixture::state_of;
use browser::{
    base_url, chromedriver, click_current, home_with_user, mark_page, page_was_not_reloaded,
    screenshot, signed_in, wait_for_task, wait_until,
};

const PARAMS_DAG: &str = r#"
dag_id: ui_params
params:
  count: {type: integer, default: 2, minimum: 1, description: "How many rows"}
  greeting: {type: string, default: hello, enum: [hello, bye]}
tasks:
  - task_id: first
    bash_command: "sleep 1; echo {{ params.greeting }} {{ params.count }}"
  - task_id: second
    bash_command: "echo second"
    dependencies: [first]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_with_params_and_watch_the_grid_turn_green_without_reloading() {
    let home = home_with_user();
    home.write_dag("ui_params.yaml", PARAMS_DAG);
    let standalone = home.standalone();
    let base = base_url(&standalone);
    let driver = chromedriver();
    let client = signed_in(&driver, &base).await;

    client
        .goto(&format!("{base}/dags/ui_params/trigger"))
        .await
        .expect("trigger page");
    let count = client
        .find(Locator::Css(r#"[data-param="count"]"#))
        .await
        .expect("count field");
    count.clear().await.expect("clearing");
    count.send_keys("0").await.expect("typing");
    screenshot(&client, "trigger").await;
    client
        .find(Locator::Css("form[data-trigger] button[type=submit]"))
        .await
        .expect("submit")
        .click()
        .await
        .expect("click");
    // 0 is below the minimum: the browser refuses it before anything is sent.
    wait_until(
        &client,
        "the form to be refused",
        r#"document.querySelector('[data-param="count"]').matches(':invalid')"#,
    )
    .await;
    assert!(
        home.json(&["dags", "list-runs", "ui_params"])
            .as_array()
            .is_some_and(|r| r.is_empty()),
        "nothing was triggered"
    );

    count.clear().await.expect("clearing");
    count.send_keys("3").await.expect("typing");
    client
        .find(Locator::Css("form[data-trigger] button[type=submit]"))
        .await
        .expect("submit")
        .click()
        .await
        .expect("click");
    wait_until(
        &client,
        "the run page",
        "location.pathname.startsWith('/dags/ui_params/runs/')",
    )
    .await;

    client
        .goto(&format!("{base}/dags/ui_params"))
        .await
        .expect("grid");
    mark_page(&client).await;
    wait_until(
        &client,
        "both cells green",
        "document.querySelectorAll('.grid td.state-success').length === 2",
    )
    .await;
    // The run's end redraws the grid once more: a grid focused before it loses its focus.
    wait_until(
        &client,
        "the run's bar green",
        "document.querySelector('.grid .run-bar.state-success') !== null",
    )
    .await;
    assert!(
        page_was_not_reloaded(&client).await,
        "the grid updated in place"
    );
    screenshot(&client, "grid").await;

    // A cell names its task, run, state and duration when pointed at or focused.
    client
        .execute(
            "document.querySelector('table.grid[data-grid]').focus(); return null;",
            vec![],
        )
        .await
        .expect("focus the grid");
    wait_until(
        &client,
        "the focused cell's label",
        "document.activeElement.matches('td.state-success') && /^first, manual__.*: success, \\d+\\.\\ds$/.test(document.activeElement.getAttribute('aria-label'))",
    )
    .await;
    client
        .execute(
            "document.activeElement.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowDown', bubbles: true})); return null;",
            vec![],
        )
        .await
        .expect("press the down arrow");
    wait_until(
        &client,
        "the cell below focused",
        "/^second, manual__.*: success/.test(document.activeElement.getAttribute('aria-label'))",
    )
    .await;
    // The params reached the task: its log says so.
    click_current(&client, ".grid td.state-success").await;
    wait_until(&client, "the log", "document.querySelector('.log-lines') && document.querySelector('.log-lines').textContent.includes('hello 3')").await;
    screenshot(&client, "task_instance").await;

    // The conf as JSON instead: the editor starts from the form's values.
    client
        .goto(&format!("{base}/dags/ui_params/trigger"))
        .await
        .expect("trigger page");
    client
        .find(Locator::Css("[data-conf-mode]"))
        .await
        .expect("the JSON switch")
        .click()
        .await
        .expect("click");
    wait_until(
        &client,
        "the JSON editor with the defaults",
        r#"JSON.parse(document.querySelector('[data-conf-json]').value).count === 2"#,
    )
    .await;
    client
        .execute(
            r#"document.querySelector('[data-conf-json]').value = '{"count": 5, "greeting": "bye"}'; return true;"#,
            vec![],
        )
        .await
        .expect("editing the JSON");
    client
        .find(Locator::Css("form[data-trigger] button[type=submit]"))
        .await
        .expect("submit")
        .click()
        .await
        .expect("click");
    wait_until(
        &client,
        "the second run's page",
        r#"location.pathname.startsWith('/dags/ui_params/runs/') && document.querySelector('pre.json').textContent.includes('"greeting": "bye"') && document.querySelector('pre.json').textContent.includes('"count": 5')"#,
    )
    .await;
    let runs = home.json(&["dags", "list-runs", "ui_params"]);
    assert_eq!(runs.as_array().map(Vec::len), Some(2), "{runs:#}");
    client.close().await.expect("closing the browser");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graph_is_drawn_with_state_colours_and_zooms() {
    let home = home_with_user();
    home.write_dag("ui_params.yaml", PARAMS_DAG);
    let standalone = home.standalone();
    let run_id = home.trigger("ui_params");
    home.wait_for_run("ui_params", &run_id, Duration::from_secs(60));
    let base = base_url(&standalone);
    let driver = chromedriver();
    let client = signed_in(&driver, &base).await;
    client
        .goto(&format!("{base}/dags/ui_params/graph"))
        .await
        .expect("graph");
    wait_until(
        &client,
        "two green nodes",
        "document.querySelectorAll('svg.graph .node.state-success').length === 2",
    )
    .await;
    let edges = client
        .find_all(Locator::Css("svg.graph path.edge"))
        .await
        .expect("edges");
    assert_eq!(edges.len(), 1);
    let svg = client.find(Locator::Css("svg.graph")).await.expect("svg");
    let before = svg
        .attr("viewBox")
        .await
        .expect("viewBox")
        .unwrap_or_default();
    client
        .find(Locator::Css(r#"[data-graph-zoom="in"]"#))
        .await
        .expect("zoom in")
        .click()
        .await
        .expect("click");
    let after = svg
        .attr("viewBox")
        .await
        .expect("viewBox")
        .unwrap_or_default();
    assert_ne!(before, after, "zooming changes the view box");
    client
        .find(Locator::Css(r#"[data-graph-zoom="reset"]"#))
        .await
        .expect("fit")
        .click()
        .await
        .expect("click");
    let fitted = svg
        .attr("viewBox")
        .await
        .expect("viewBox")
        .unwrap_or_default();
    let numbers = |text: &str| -> Vec<f64> {
        text.split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect()
    };
    assert_eq!(
        numbers(&fitted),
        numbers(&before),
        "Fit shows the whole graph again"
    );
    screenshot(&client, "graph").await;
    client
        .goto(&format!("{base}/dags/ui_params/gantt"))
        .await
        .expect("gantt");
    wait_until(
        &client,
        "two bars",
        "document.querySelectorAll('svg.gantt rect.ran').length === 2",
    )
    .await;
    screenshot(&client, "gantt").await;
    client
        .goto(&format!("{base}/dags/ui_params/code"))
        .await
        .expect("code");
    wait_until(
        &client,
        "the file",
        "document.querySelector('#L2') !== null",
    )
    .await;
    screenshot(&client, "code").await;
    client.close().await.expect("closing the browser");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_tasks_log_is_read_live() {
    let home = home_with_user();
    home.write_dag(
        "ui_live.yaml",
        r#"
dag_id: ui_live
tasks:
  - task_id: talk
    bash_command: "echo line-1; test -f $UPDRAFT_HOME/go || sleep 1; while ! test -f $UPDRAFT_HOME/go; do sleep 0.1; done; echo line-after-go"
  - task_id: after
    dependencies: [talk]
    bash_command: "echo after-line-1; sleep 0.3; echo after-line-2"
"#,
    );
    let standalone = home.standalone();
    let run_id = home.trigger("ui_live");
    wait_for_task(&home, "ui_live", &run_id, "talk", "running");
    let base = base_url(&standalone);
    let driver = chromedriver();
    let client = signed_in(&driver, &base).await;
    let path = format!(
        "{base}/dags/ui_live/runs/{}/tasks/talk",
        crate_encode(&run_id)
    );
    client.goto(&path).await.expect("task instance page");
    wait_until(
        &client,
        "the page to follow the log",
        "document.querySelector('[data-follow]') !== null",
    )
    .await;
    wait_until(
        &client,
        "the first line",
        "document.querySelector('.log-lines').textContent.includes('line-1')",
    )
    .await;
    mark_page(&client).await;
    // A second tab on the task that has not started yet.
    client.new_window(true).await.expect("a second tab");
    let tabs = client.windows().await.expect("the tabs");
    client
        .switch_to_window(tabs[1].clone())
        .await
        .expect("to the second tab");
    client
        .goto(&format!(
            "{base}/dags/ui_live/runs/{}/tasks/after",
            crate_encode(&run_id)
        ))
        .await
        .expect("the waiting task's page");
    wait_until(
        &client,
        "the page to wait for the try",
        "document.querySelector('[data-await-try]') !== null",
    )
    .await;
    mark_page(&client).await;
    // The task goes on only now: what it writes next must arrive in the open page.
    std::fs::write(home.path().join("go"), "").expect("the go file");
    // The task that was waiting starts: its page reads its log without a reload.
    wait_until(
        &client,
        "the waiting task's log",
        "document.querySelector('.log-lines').textContent.includes('after-line-2')",
    )
    .await;
    assert!(
        page_was_not_reloaded(&client).await,
        "the waiting task's log arrived in the open page"
    );
    client
        .switch_to_window(tabs[0].clone())
        .await
        .expect("back to the first tab");
    wait_until(
        &client,
        "the next line",
        "document.querySelector('.log-lines').textContent.includes('line-after-go')",
    )
    .await;
    assert!(
        page_was_not_reloaded(&client).await,
        "the line arrived in the open page"
    );
    client.close().await.expect("closing the browser");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_task_is_cleared_from_the_run_page_and_runs_again() {
    let home = home_with_user();
    home.write_dag(
        "ui_flaky.yaml",
        r#"
dag_id: ui_flaky
tasks:
  - task_id: flaky
    bash_command: "test -f $UPDRAFT_HOME/fixed"
"#,
    );
    let standalone = home.standalone();
    let run_id = home.trigger("ui_flaky");
    let states = home.wait_for_run("ui_flaky", &run_id, Duration::from_secs(60));
    assert_eq!(state_of(&states, "flaky"), "failed");
    std::fs::write(home.path().join("fixed"), "").expect("fixing the task");
    let base = base_url(&standalone);
    let driver = chromedriver();
    let client = signed_in(&driver, &base).await;
    client
        .goto(&format!(
            "{base}/dags/ui_flaky/runs/{}",
            crate_encode(&run_id)
        ))
        .await
        .expect("run page");
    mark_page(&client).await;
    client
        .find(Locator::Css("[data-clear-preview-button]"))
        .await
        .expect("preview")
        .click()
        .await
        .expect("click");
    wait_until(
        &client,
        "the preview",
        "document.querySelector('[data-clear-preview]').textContent.includes('flaky (failed)')",
    )
    .await;
    screenshot(&client, "run").await;
    client
        .find(Locator::Css("[data-clear-confirm]"))
        .await
        .expect("clear")
        .click()
        .await
        .expect("click");
    // app.js asks in a dialog before a destructive action.
    wait_until(
        &client,
        "the confirmation",
        "document.querySelector('dialog[open] button[value=ok]') !== null",
    )
    .await;
    client
        .find(Locator::Css("dialog[open] button[value=ok]"))
        .await
        .expect("confirm")
        .click()
        .await
        .expect("click");
    wait_until(&client, "the task to succeed on its second try", "(() => { const row = document.querySelector('#task-flaky'); return row && row.querySelector('.state-success') && row.children[2].textContent.trim() === '2'; })()").await;
    assert!(
        page_was_not_reloaded(&client).await,
        "the run page updated in place"
    );
    client.close().await.expect("closing the browser");
}

/// A run id as a path segment.
fn crate_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_group_folds_in_the_grid_and_stays_folded_across_a_reload() {
    let home = home_with_user();
    home.write_dag(
        "ui_groups.yaml",
        r#"
dag_id: ui_groups
tasks:
  - task_id: start
    bash_command: "true"
  - task_id: load.users
    task_group: load
    dependencies: [start]
    bash_command: "true"
  - task_id: load.orders
    task_group: load
    dependencies: [start]
    bash_command: "true"
"#,
    );
    let standalone = home.standalone();
    let run_id = home.trigger("ui_groups");
    home.wait_for_run("ui_groups", &run_id, Duration::from_secs(60));
    let base = base_url(&standalone);
    let driver = chromedriver();
    let client = signed_in(&driver, &base).await;
    client
        .goto(&format!("{base}/dags/ui_groups"))
        .await
        .expect("grid");
    wait_until(
        &client,
        "the group's summary row, green, above its two tasks",
        "document.querySelector('.group-row td.state-success') !== null \
         && document.querySelectorAll('tr[data-in-group=\"load\"]:not([hidden])').length === 2",
    )
    .await;
    client
        .find(Locator::Css("[data-group-toggle='load']"))
        .await
        .expect("the group's button")
        .click()
        .await
        .expect("fold");
    wait_until(
        &client,
        "the group folded",
        "document.querySelectorAll('tr[data-in-group=\"load\"][hidden]').length === 2 \
         && document.querySelector('[data-group-toggle=\"load\"]').getAttribute('aria-expanded') === 'false'",
    )
    .await;
    client.refresh().await.expect("reload");
    wait_until(
        &client,
        "still folded after a reload",
        "document.querySelectorAll('tr[data-in-group=\"load\"][hidden]').length === 2",
    )
    .await;
    client
        .find(Locator::Css("[data-group-toggle='load']"))
        .await
        .expect("the group's button")
        .click()
        .await
        .expect("unfold");
    wait_until(
        &client,
        "the group open again",
        "document.querySelectorAll('tr[data-in-group=\"load\"]:not([hidden])').length === 2",
    )
    .await;
    client.close().await.expect("closing the browser");
}

/// A grid of more rows than the first screen holds gets the rest after its first paint: every
/// row ends up in the table, in order, and a task group among the late rows folds as any.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_grid_fills_in_its_later_rows_after_the_first_paint() {
    let home = home_with_user();
    let mut yaml = String::from("dag_id: ui_wide\ntasks:\n");
    for i in 0..50 {
        yaml.push_str(&format!(
            "  - task_id: t{i:02}\n    bash_command: \"true\"\n"
        ));
    }
    for i in 0..10 {
        yaml.push_str(&format!(
            "  - task_id: late.l{i}\n    task_group: late\n    bash_command: \"true\"\n"
        ));
    }
    home.write_dag("ui_wide.yaml", &yaml);
    let standalone = home.standalone();
    let run_id = home.trigger("ui_wide");
    home.wait_for_run("ui_wide", &run_id, Duration::from_secs(120));
    let base = base_url(&standalone);
    let driver = chromedriver();
    let client = signed_in(&driver, &base).await;
    client
        .goto(&format!("{base}/dags/ui_wide"))
        .await
        .expect("grid");
    wait_until(
        &client,
        "every row in the table, the template gone",
        "document.documentElement.hasAttribute('data-grid-complete') \
         && document.querySelector('template[data-grid-rest]') === null \
         && document.querySelectorAll('table.grid tbody tr').length === 61 \
         && document.querySelectorAll('table.grid tbody tr[data-ms] td.state-success').length === 60",
    )
    .await;
    let order = client
        .execute(
            "return Array.from(document.querySelectorAll('table.grid tbody th[data-task]'))\
             .map(function (th) { return th.getAttribute('data-task'); });",
            vec![],
        )
        .await
        .expect("the rows' tasks");
    let order: Vec<String> = serde_json::from_value(order).expect("a list of task ids");
    let mut expected: Vec<String> = (0..50).map(|i| format!("t{i:02}")).collect();
    expected.extend((0..10).map(|i| format!("late.l{i}")));
    assert_eq!(order, expected);
    client
        .find(Locator::Css("[data-group-toggle='late']"))
        .await
        .expect("the late group's button")
        .click()
        .await
        .expect("fold");
    wait_until(
        &client,
        "the late group folded",
        "document.querySelectorAll('tr[data-in-group=\"late\"][hidden]').length === 10",
    )
    .await;
    client.close().await.expect("closing the browser");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapped_tasks_instance_is_chosen_by_its_map_index() {
    let home = home_with_user();
    home.write_dag(
        "ui_mapped.yaml",
        r#"
dag_id: ui_mapped
tasks:
  - task_id: each
    bash_command: echo "instance {{ ti.map_index }} says $WORD"
    expand:
      env: [{WORD: zero}, {WORD: one}, {WORD: two}]
"#,
    );
    let standalone = home.standalone();
    let run_id = home.trigger("ui_mapped");
    home.wait_for_run("ui_mapped", &run_id, Duration::from_secs(60));
    let base = base_url(&standalone);
    let driver = chromedriver();
    let client = signed_in(&driver, &base).await;
    client
        .goto(&format!(
            "{base}/dags/ui_mapped/runs/{}/tasks/each",
            crate_encode(&run_id)
        ))
        .await
        .expect("the task instance page");
    wait_until(
        &client,
        "the first instance's log",
        "document.body.textContent.includes('instance 0 says zero')",
    )
    .await;
    client
        .find(Locator::Css("#map-index option[value='2']"))
        .await
        .expect("instance 2 in the selector")
        .click()
        .await
        .expect("choose instance 2");
    client
        .find(Locator::Css("form.map-index button"))
        .await
        .expect("the Show button")
        .click()
        .await
        .expect("show it");
    wait_until(
        &client,
        "instance 2's page and log",
        "document.querySelector('h2').textContent.includes('[2]') \
         && document.body.textContent.includes('instance 2 says two') \
         && document.querySelector('#map-index').value === '2'",
    )
    .await;
    screenshot(&client, "task_instance_mapped").await;
    client.close().await.expect("closing the browser");
}
