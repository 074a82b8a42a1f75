//! Admin: variables, connections, pools, users and config, each limited to the roles the API
//! allows, with writes through the API as the pages' scripts send them.

use axum::http::{Method, StatusCode};
use serde_json::json;
use updraft_rest_api::auth::Role;
use updraft_store::ConnectionRecord;

use crate::fixture::Ui;

const EVIL_VALUE: &str = "<script>alert('var')</script>";

#[tokio::test]
async fn variables_are_listed_escaped_and_edited_through_the_api() {
    let ui = Ui::start().await;
    let mut op = ui.signed_in(Role::Op).await;
    let created = op
        .api(
            Method::POST,
            "/api/v2/variables",
            json!({"key": "greeting", "value": EVIL_VALUE, "description": "said <b>first</b>"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    op.api(
        Method::POST,
        "/api/v2/variables",
        json!({"key": "db_password", "value": "hunter2"}),
    )
    .await;

    let page = op.get("/admin/variables").await.ok();
    assert!(page.contains(r#"<tr data-variable="greeting">"#), "{page}");
    assert!(!page.contains(EVIL_VALUE), "unescaped value: {page}");
    assert!(page.contains("&#60;script&#62;alert(&#39;var&#39;)&#60;/script&#62;"));
    assert!(!page.contains("<b>first</b>"));
    // A sensitive name's value is hidden, and not offered for editing.
    assert!(!page.contains("hunter2"), "{page}");
    assert!(page.contains(r#"data-api="PATCH /api/v2/variables/greeting""#));
    assert!(!page.contains(r#"data-edit-variable="db_password""#));
    assert!(page.contains(r#"data-api="DELETE /api/v2/variables/greeting" data-confirm="Delete the variable greeting?""#));

    let edited = op
        .api(
            Method::PATCH,
            "/api/v2/variables/greeting",
            json!({"key": "greeting", "value": "hello", "description": ""}),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    let page = op.get("/admin/variables?search=greet").await.ok();
    assert!(
        page.contains(r#"<pre class="error-text" data-value>hello</pre>"#),
        "{page}"
    );
    assert!(!page.contains("db_password"), "the search filters: {page}");

    let deleted = op
        .api(Method::DELETE, "/api/v2/variables/greeting", json!(null))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    let page = op.get("/admin/variables").await.ok();
    assert!(!page.contains(r#"data-variable="greeting""#));
}

#[tokio::test]
async fn roles_see_only_the_admin_pages_they_may_use() {
    let ui = Ui::start().await;
    let mut viewer = ui.signed_in(Role::Viewer).await;
    assert_eq!(
        viewer.get("/admin/variables").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        viewer.get("/admin/connections").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        viewer.get("/admin/users").await.status,
        StatusCode::FORBIDDEN
    );
    let admin_home = viewer.get("/admin").await;
    assert_eq!(admin_home.location(), Some("/admin/pools"));
    let pools = viewer.get("/admin/pools").await.ok();
    assert!(
        pools.contains(r#"<tr data-pool="default_pool">"#),
        "{pools}"
    );
    assert!(
        !pools.contains("data-api="),
        "a Viewer gets no forms: {pools}"
    );
    assert!(!pools.contains(r#"href="/admin/variables""#), "{pools}");
    // And the API refuses what the page does not offer.
    let refused = viewer
        .api(
            Method::POST,
            "/api/v2/variables",
            json!({"key": "k", "value": "v"}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let mut op = ui.signed_in(Role::Op).await;
    let pools = op.get("/admin/pools").await.ok();
    assert!(
        pools.contains(r#"data-api="PATCH /api/v2/pools/default_pool""#),
        "{pools}"
    );
    assert!(!pools.contains(r#"data-api="DELETE /api/v2/pools/default_pool""#));
    assert_eq!(op.get("/admin/users").await.status, StatusCode::FORBIDDEN);
    assert_eq!(op.get("/admin/config").await.status, StatusCode::FORBIDDEN);

    let mut admin = ui.signed_in(Role::Admin).await;
    let users = admin.get("/admin/users").await.ok();
    for name in ["viewer", "user", "op", "admin"] {
        assert!(
            users.contains(&format!(r#"<tr data-user="{name}">"#)),
            "{users}"
        );
    }
    assert!(users.contains("1–4 of 4"), "{users}");
    let searched = admin.get("/admin/users?search=OP").await.ok();
    assert!(searched.contains(r#"<tr data-user="op">"#), "{searched}");
    assert!(
        !searched.contains(r#"<tr data-user="viewer">"#),
        "{searched}"
    );
    assert!(searched.contains("1–1 of 1"), "{searched}");
    let config = admin.get("/admin/config").await.ok();
    assert!(
        config.contains("The configuration is not exposed"),
        "{config}"
    );
}

#[tokio::test]
async fn the_config_is_shown_when_exposed() {
    let ui = Ui::start_with(|config| {
        config.expose_config = true;
        config.config = json!({"core": {"parallelism": 8, "fernet_key": "< hidden >"}});
    })
    .await;
    let mut admin = ui.signed_in(Role::Admin).await;
    let page = admin.get("/admin/config").await.ok();
    assert!(page.contains("[core]"), "{page}");
    assert!(
        page.contains("<td><code>parallelism</code></td><td><code>8</code></td>"),
        "{page}"
    );
    assert!(page.contains("&#60; hidden &#62;"), "{page}");
}

#[tokio::test]
async fn a_connection_password_is_never_shown_and_kept_by_an_edit_without_one() {
    let ui = Ui::start().await;
    ui.store
        .put_connection(ConnectionRecord {
            conn_id: "warehouse".into(),
            conn_type: "postgres".into(),
            host: Some("db.example".into()),
            login: Some("etl".into()),
            password: Some("s3cret-pw".into()),
            port: Some(5432),
            extra: Some(r#"{"token": "tok-123", "sslmode": "require"}"#.into()),
            ..Default::default()
        })
        .await
        .expect("connection");
    let mut op = ui.signed_in(Role::Op).await;
    let page = op.get("/admin/connections").await.ok();
    assert!(
        page.contains(r#"<tr data-connection="warehouse">"#),
        "{page}"
    );
    assert!(!page.contains("s3cret-pw"), "{page}");
    assert!(
        !page.contains("tok-123"),
        "sensitive extra keys are hidden: {page}"
    );
    assert!(page.contains("require"));
    assert!(page.contains("<td>set</td>"));
    assert!(page.contains(
        r#"name="password" type="password" autocomplete="new-password" placeholder="unchanged""#
    ));

    // The edit form leaves an empty password out, which keeps the stored one.
    let edited = op
        .api(
            Method::PATCH,
            "/api/v2/connections/warehouse",
            json!({"connection_id": "warehouse", "conn_type": "postgres", "host": "db2.example"}),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    let stored = ui
        .store
        .get_connection("warehouse")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(stored.host.as_deref(), Some("db2.example"));
    assert_eq!(stored.password.as_deref(), Some("s3cret-pw"));
}
