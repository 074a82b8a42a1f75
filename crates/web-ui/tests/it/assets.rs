//! The assets page: every asset with its consuming DAGs, producing tasks and last event.

use updraft_model::{Asset, AssetCondition, Schedule};
use updraft_rest_api::auth::Role;
use updraft_store::conformance::fixture::{dag, sync, upsert};
use updraft_store::NewAssetEvent;

use crate::fixture::Ui;

#[tokio::test]
async fn the_assets_page_lists_each_asset_with_its_dags_and_last_event() {
    let ui = Ui::start().await;
    let mut browser = ui.signed_in(Role::Viewer).await;
    let empty = browser.get("/assets").await.ok();
    assert!(empty.contains("No DAG names an asset yet"), "{empty}");

    let mut producer = dag("producer", Schedule::None, &["load"]);
    producer.tasks[0].outlets =
        vec![Asset::new(Some("orders"), Some("s3://raw/<orders>")).unwrap()];
    let mut consumer = dag("consumer", Schedule::None, &["use"]);
    consumer.asset_schedule = Some(AssetCondition::Asset(
        Asset::new(Some("orders"), Some("s3://raw/<orders>")).unwrap(),
    ));
    sync(
        ui.store.as_ref(),
        vec![upsert(producer, "h1"), upsert(consumer, "h1")],
    )
    .await;
    let page = browser.get("/assets").await.ok();
    assert!(
        page.contains("<code>s3://raw/&#60;orders&#62;</code>"),
        "{page}"
    );
    assert!(
        page.contains(r#"<a href="/dags/consumer">consumer</a>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<a href="/dags/producer">producer.load</a>"#),
        "{page}"
    );
    assert!(page.contains("never"), "{page}");

    let (assets, _) = ui
        .store
        .list_assets(updraft_store::AssetQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    ui.store
        .create_asset_event(NewAssetEvent {
            asset_id: assets[0].id,
            extra: Default::default(),
            now: chrono::Utc::now(),
        })
        .await
        .unwrap();
    let page = browser.get("/assets").await.ok();
    assert!(
        !page.contains(r#"<span class="muted">never</span>"#),
        "{page}"
    );
}
