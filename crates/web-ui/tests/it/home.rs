//! Home: counts, health, pools, import errors, failures with links to their logs.

use updraft_rest_api::auth::Role;
use updraft_store::JobKind;

use crate::fixture::Ui;
use crate::world::{self, EVIL_ERROR};

#[tokio::test]
async fn home_shows_failures_with_log_links_health_pools_and_escaped_import_errors() {
    let ui = Ui::start().await;
    world::publish(ui.store.as_ref()).await;
    world::failed_run(ui.store.as_ref(), "etl", "manual__1").await;
    let running = world::run(ui.store.as_ref(), "hourly", "manual__2", 1).await;
    world::start(ui.store.as_ref(), &running, "a").await;
    world::beat(ui.store.as_ref(), "sched-1", JobKind::Scheduler, &[]).await;

    let mut browser = ui.signed_in(Role::Viewer).await;
    let home = browser.get("/").await.ok();
    assert!(
        home.contains(r#"<span class="stat-value" data-count="dags">3</span>"#),
        "{home}"
    );
    assert!(home.contains(r#"data-count="failed-runs">1<"#), "{home}");
    assert!(home.contains(r#"data-count="running-tasks">1<"#), "{home}");
    assert!(home.contains(r#"data-count="import-errors">1<"#), "{home}");
    // The failed try links to its log.
    assert!(
        home.contains(r#"<a href="/dags/etl/runs/manual__1/tasks/a?try=1" data-log-link>"#),
        "{home}"
    );
    // Health: the database and the scheduler that beat; no workers.
    assert!(home.contains("<th scope=\"row\">Database</th>"), "{home}");
    assert!(home.contains("<th scope=\"row\">Schedulers</th>\n        <td><span class=\"health-ok\">healthy</span>"), "{home}");
    assert!(
        home.contains(
            "<th scope=\"row\">Workers</th>\n        <td><span class=\"health-bad\">none</span>"
        ),
        "{home}"
    );
    // The default pool with its running task.
    assert!(home.contains("<td>default_pool</td>"), "{home}");
    // The import error: file, line, message — escaped.
    assert!(home.contains("<code>dags/broken.yaml</code>"), "{home}");
    assert!(home.contains(r#"<td class="num">2:1</td>"#), "{home}");
    assert!(!home.contains(EVIL_ERROR), "{home}");
    assert!(
        home.contains("bad key &#60;script&#62;alert(&#39;err&#39;)&#60;/script&#62;"),
        "{home}"
    );
    // The live region answers on its own.
    let fragment = browser.get("/?fragment=status").await.ok();
    assert!(
        fragment.starts_with("<div id=\"home-status\" data-live="),
        "{fragment}"
    );
    assert!(!fragment.contains("<html"));
}
