//! `/api/v2/assets`: listing and reading assets, their events, recording an external event,
//! queued events per asset and per DAG (and deleting them), materializing, the DAG details'
//! `asset_expression`; bad requests answer 4xx with a message.

use reqwest::{Method, StatusCode};
use serde_json::json;
use updraft_model::{Asset, AssetCondition, Schedule};
use updraft_rest_api::auth::Role;
use updraft_store::conformance::fixture::{dag, sync, upsert};

use crate::fixture::Server;

fn asset(name: &str) -> Asset {
    Asset::new(Some(name), None).expect("asset")
}

/// `producer` (task `a` updates `raw` and `s3://clean`) and `consumer` (on `raw | clean`).
async fn publish(server: &Server) {
    let mut producer = dag("producer", Schedule::None, &["a"]);
    producer.tasks[0].outlets = vec![
        asset("raw"),
        Asset::new(Some("clean"), Some("s3://clean")).unwrap(),
    ];
    let mut consumer = dag("consumer", Schedule::None, &["a"]);
    consumer.asset_schedule = Some(AssetCondition::Any(vec![
        AssetCondition::Asset(asset("raw")),
        AssetCondition::Asset(Asset::new(Some("clean"), Some("s3://clean")).unwrap()),
    ]));
    sync(
        &*server.store,
        vec![upsert(producer, "h1"), upsert(consumer, "h1")],
    )
    .await;
}

async fn post_event(server: &Server, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
    server
        .call(
            Some(Role::User),
            Method::POST,
            "/api/v2/assets/events",
            Some(body),
        )
        .await
}

#[tokio::test]
async fn assets_are_listed_and_read_with_their_references() {
    let server = Server::start().await;
    publish(&server).await;
    let (status, listed) = server.get(Role::Viewer, "/api/v2/assets").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["total_entries"], 2);
    let raw = &listed["assets"][0];
    assert_eq!(
        (
            raw["name"].as_str(),
            raw["uri"].as_str(),
            raw["group"].as_str()
        ),
        (Some("raw"), Some("raw"), Some("asset"))
    );
    assert_eq!(raw["scheduled_dags"][0]["dag_id"], "consumer");
    assert_eq!(
        raw["producing_tasks"][0],
        json!({
            "dag_id": "producer", "task_id": "a",
            "created_at": raw["producing_tasks"][0]["created_at"], "updated_at": raw["producing_tasks"][0]["updated_at"],
        })
    );
    assert_eq!(
        raw["last_asset_event"],
        json!({"id": null, "timestamp": null})
    );
    assert_eq!(
        (raw["aliases"].clone(), raw["watchers"].clone()),
        (json!([]), json!([]))
    );

    let id = raw["id"].as_i64().expect("id");
    let (status, got) = server
        .get(Role::Viewer, &format!("/api/v2/assets/{id}"))
        .await;
    assert_eq!((status, &got), (StatusCode::OK, raw));
    let (_, by_uri) = server
        .get(Role::Viewer, "/api/v2/assets?uri_pattern=s3")
        .await;
    assert_eq!(by_uri["total_entries"], 1);
    let (_, by_name) = server
        .get(Role::Viewer, "/api/v2/assets?name_pattern=RA&limit=1")
        .await;
    assert_eq!(
        (
            by_name["total_entries"].clone(),
            by_name["assets"][0]["name"].clone()
        ),
        (json!(1), json!("raw"))
    );
    let (_, by_dag) = server
        .get(Role::Viewer, "/api/v2/assets?dag_ids=nobody")
        .await;
    assert_eq!(by_dag["total_entries"], 0);

    let (status, missing) = server.get(Role::Viewer, "/api/v2/assets/999").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    let (status, bad) = server.get(Role::Viewer, "/api/v2/assets/abc").await;
    assert!(status.is_client_error(), "{status} {bad}");
    let (status, bad) = server.get(Role::Viewer, "/api/v2/assets?limit=many").await;
    assert!(status.is_client_error(), "{status} {bad}");

    // The consumer's details say what it waits for, in Airflow's shape.
    let (_, details) = server
        .get(Role::Viewer, "/api/v2/dags/consumer/details")
        .await;
    assert_eq!(
        details["asset_expression"],
        json!({"any": [
            {"asset": {"name": "raw", "uri": "raw", "group": "asset"}},
            {"asset": {"name": "clean", "uri": "s3://clean", "group": "asset"}},
        ]})
    );
    assert_eq!(details["timetable_summary"], "Asset");
    let (_, producer) = server
        .get(Role::Viewer, "/api/v2/dags/producer/details")
        .await;
    assert!(producer["asset_expression"].is_null());
}

#[tokio::test]
async fn an_external_event_is_recorded_queued_and_listed() {
    let server = Server::start().await;
    publish(&server).await;
    let (_, listed) = server.get(Role::Viewer, "/api/v2/assets").await;
    let raw = listed["assets"][0]["id"].as_i64().expect("id");

    let (status, created) =
        post_event(&server, json!({"asset_id": raw, "extra": {"rows": 3}})).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["asset_id"], raw);
    assert_eq!(
        (created["name"].clone(), created["uri"].clone()),
        (json!("raw"), json!("raw"))
    );
    assert_eq!(created["extra"], json!({"rows": 3}));
    assert!(created["source_dag_id"].is_null());
    assert_eq!(
        (
            created["source_map_index"].clone(),
            created["created_dagruns"].clone()
        ),
        (json!(-1), json!([]))
    );

    let (status, events) = server
        .get(
            Role::Viewer,
            &format!("/api/v2/assets/events?asset_id={raw}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{events}");
    assert_eq!(events["total_entries"], 1);
    assert_eq!(events["asset_events"][0]["id"], created["id"]);
    let (_, none) = server
        .get(Role::Viewer, "/api/v2/assets/events?source_dag_id=producer")
        .await;
    assert_eq!(none["total_entries"], 0);
    let (_, newest) = server
        .get(Role::Viewer, "/api/v2/assets/events?order_by=-timestamp")
        .await;
    assert_eq!(newest["total_entries"], 1);
    let (status, bad) = server
        .get(Role::Viewer, "/api/v2/assets/events?order_by=color")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert!(
        bad["detail"].as_str().unwrap_or_default().contains("color"),
        "{bad}"
    );

    let (_, asset) = server
        .get(Role::Viewer, &format!("/api/v2/assets/{raw}"))
        .await;
    assert_eq!(asset["last_asset_event"]["id"], created["id"]);

    // Queued for the consumer, by asset and by DAG.
    let (status, queued) = server
        .get(Role::Viewer, &format!("/api/v2/assets/{raw}/queuedEvents"))
        .await;
    assert_eq!(status, StatusCode::OK, "{queued}");
    assert_eq!(queued["total_entries"], 1);
    assert_eq!(queued["queued_events"][0]["dag_id"], "consumer");
    assert_eq!(queued["queued_events"][0]["asset_id"], raw);
    let (_, of_dag) = server
        .get(Role::Viewer, "/api/v2/dags/consumer/assets/queuedEvents")
        .await;
    assert_eq!(of_dag["queued_events"], queued["queued_events"]);
    let (status, one) = server
        .get(
            Role::Viewer,
            &format!("/api/v2/dags/consumer/assets/{raw}/queuedEvents"),
        )
        .await;
    assert_eq!(
        (status, one["dag_id"].clone()),
        (StatusCode::OK, json!("consumer"))
    );
    let (status, none) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/consumer/assets/queuedEvents?before=2000-01-01T00:00:00Z",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{none}");
}

#[tokio::test]
async fn queued_events_are_deleted_per_asset_and_per_dag() {
    let server = Server::start().await;
    publish(&server).await;
    let (_, listed) = server.get(Role::Viewer, "/api/v2/assets").await;
    let raw = listed["assets"][0]["id"].as_i64().expect("id");
    let clean = listed["assets"][1]["id"].as_i64().expect("id");
    for id in [raw, clean] {
        assert_eq!(
            post_event(&server, json!({"asset_id": id})).await.0,
            StatusCode::OK
        );
    }
    let server = &server;
    let delete = |path: String| async move {
        server
            .call(Some(Role::User), Method::DELETE, &path, None)
            .await
            .0
    };
    assert_eq!(
        delete(format!("/api/v2/dags/consumer/assets/{raw}/queuedEvents")).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        delete(format!("/api/v2/dags/consumer/assets/{raw}/queuedEvents")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        delete(format!("/api/v2/assets/{clean}/queuedEvents")).await,
        StatusCode::NO_CONTENT
    );
    let (status, _) = server
        .get(Role::Viewer, "/api/v2/dags/consumer/assets/queuedEvents")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        post_event(server, json!({"asset_id": raw})).await.0,
        StatusCode::OK
    );
    assert_eq!(
        delete("/api/v2/dags/consumer/assets/queuedEvents".into()).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        delete("/api/v2/dags/consumer/assets/queuedEvents".into()).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        delete(format!("/api/v2/assets/{raw}/queuedEvents")).await,
        StatusCode::NOT_FOUND
    );
    // A viewer may read but not delete.
    let (status, _) = server
        .call(
            Some(Role::Viewer),
            Method::DELETE,
            &format!("/api/v2/assets/{raw}/queuedEvents"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bad_event_requests_are_refused_clearly() {
    let server = Server::start().await;
    publish(&server).await;
    let (status, missing) = post_event(&server, json!({"asset_id": 999})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    assert!(
        missing["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("999"),
        "{missing}"
    );
    let (status, bad) = post_event(&server, json!({"uri": "raw"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    let (status, bad) = post_event(&server, json!({"asset_id": 1, "extra": "text"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    let (status, _) = server
        .call(
            Some(Role::Viewer),
            Method::POST,
            "/api/v2/assets/events",
            Some(json!({"asset_id": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn materializing_runs_the_producing_dag() {
    let server = Server::start().await;
    publish(&server).await;
    let (_, listed) = server.get(Role::Viewer, "/api/v2/assets").await;
    let raw = listed["assets"][0]["id"].as_i64().expect("id");
    let (status, run) = server
        .call(
            Some(Role::User),
            Method::POST,
            &format!("/api/v2/assets/{raw}/materialize"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(
        (
            run["dag_id"].clone(),
            run["run_type"].clone(),
            run["state"].clone()
        ),
        (json!("producer"), json!("manual"), json!("queued"))
    );
    let (status, missing) = server
        .call(
            Some(Role::User),
            Method::POST,
            "/api/v2/assets/999/materialize",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
}
