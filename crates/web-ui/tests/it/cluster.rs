//! The cluster page: processes from their job records, running tasks per worker.

use updraft_rest_api::auth::Role;
use updraft_store::JobKind;

use crate::fixture::Ui;
use crate::world;

#[tokio::test]
async fn the_cluster_lists_each_process_with_its_running_tasks() {
    let ui = Ui::start().await;
    world::publish(ui.store.as_ref()).await;
    world::beat(ui.store.as_ref(), "sched-1", JobKind::Scheduler, &[]).await;
    world::beat(ui.store.as_ref(), "api-1", JobKind::ApiServer, &[]).await;
    world::beat(
        ui.store.as_ref(),
        "worker-1",
        JobKind::Worker,
        &["default", "<gpu>"],
    )
    .await;
    let run = world::run(ui.store.as_ref(), "etl", "manual__1", 0).await;
    world::start(ui.store.as_ref(), &run, "a").await;

    let mut browser = ui.signed_in(Role::Viewer).await;
    let page = browser.get("/cluster").await.ok();
    for (section, host) in [
        ("schedulers", "sched-1.example"),
        ("api-servers", "api-1.example"),
        ("workers", "worker-1.example"),
    ] {
        let table = page
            .split(&format!("<table data-section=\"{section}\">"))
            .nth(1)
            .and_then(|rest| rest.split("</table>").next())
            .unwrap_or_else(|| panic!("no {section} table: {page}"));
        assert!(
            table.contains(&format!("<td>{host}</td>")),
            "{section}: {table}"
        );
    }
    assert!(page.contains("<td>default, &#60;gpu&#62;</td>"), "{page}");
    assert!(page.contains(r#"<td class="num">1</td>"#), "{page}");
    assert!(
        page.contains(r#"href="/dags/etl/runs/manual__1/tasks/a?try=1""#),
        "{page}"
    );
    assert!(page.contains(r#"<span class="health-ok">running</span>"#));
}
