//! `/api/v2/pools`: list, get, create, patch, delete and the bulk PATCH, with slot counts
//! from the task instances, and the audit rows they write.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use updraft_rest_api::auth::Role;
use updraft_store::conformance::fixture::{create, new_run, publish, queue, task, ti};

use crate::fixture::Server;

fn pool(name: &str, slots: i64, description: Value) -> Value {
    json!({
        "name": name, "slots": slots, "description": description, "include_deferred": false,
        "occupied_slots": 0, "running_slots": 0, "queued_slots": 0, "scheduled_slots": 0,
        "open_slots": slots, "deferred_slots": 0, "team_name": null,
    })
}

async fn names(server: &Server, query: &str) -> (Vec<String>, u64) {
    let (status, body) = server
        .get(Role::Viewer, &format!("/api/v2/pools{query}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let names = body["pools"]
        .as_array()
        .expect("pools")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_string())
        .collect();
    (names, body["total_entries"].as_u64().expect("total"))
}

#[tokio::test]
async fn the_default_pool_is_listed_with_its_slot_counts() {
    let server = Server::start().await;
    let (status, body) = server.get(Role::Viewer, "/api/v2/pools").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"pools": [pool("default_pool", 128, json!("Default pool"))], "total_entries": 1})
    );

    // A queued task instance occupies a slot; a scheduled one is counted apart.
    let store = &*server.store;
    publish(store, &["etl"]).await;
    let run = create(store, new_run("etl", "r1", vec![task("a")])).await;
    queue(store, &ti(store, run.id, "a").await).await;
    let (_, body) = server.get(Role::Viewer, "/api/v2/pools/default_pool").await;
    assert_eq!(body["queued_slots"], 1);
    assert_eq!(body["occupied_slots"], 1);
    assert_eq!(body["running_slots"], 0);
    assert_eq!(body["open_slots"], 127);
}

#[tokio::test]
async fn a_pool_is_created_read_patched_and_deleted() {
    let server = Server::start().await;
    let (status, body) = server
        .call(
            Some(Role::Op),
            Method::POST,
            "/api/v2/pools",
            Some(json!({"name": "etl", "slots": 4, "description": "nightly"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body, pool("etl", 4, json!("nightly")));
    let (status, body) = server.get(Role::Viewer, "/api/v2/pools/etl").await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, pool("etl", 4, json!("nightly")))
    );

    // Only the masked field changes.
    let (status, body) = server
        .call(
            Some(Role::Op),
            Method::PATCH,
            "/api/v2/pools/etl?update_mask=slots",
            Some(json!({"slots": 9, "description": "ignored"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, pool("etl", 9, json!("nightly")));

    // A rename through `pool`.
    let (status, body) = server
        .call(
            Some(Role::Op),
            Method::PATCH,
            "/api/v2/pools/etl",
            Some(json!({"pool": "etl2", "slots": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "etl2");
    assert_eq!(
        server.get(Role::Viewer, "/api/v2/pools/etl").await.0,
        StatusCode::NOT_FOUND
    );

    let (status, _) = server
        .call(Some(Role::Op), Method::DELETE, "/api/v2/pools/etl2", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server.get(Role::Viewer, "/api/v2/pools/etl2").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["detail"].as_str().expect("detail").contains("etl2"));
}

#[tokio::test]
async fn refused_pool_writes_change_nothing() {
    let server = Server::start().await;
    let before = server.get(Role::Viewer, "/api/v2/pools").await.1;

    let (status, body) = server
        .call(
            Some(Role::Op),
            Method::POST,
            "/api/v2/pools",
            Some(json!({"name": "p", "slots": -1})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "slots"]));

    let (status, body) = server
        .call(
            Some(Role::Op),
            Method::POST,
            "/api/v2/pools",
            Some(json!({"name": "default_pool", "slots": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let (status, body) = server
        .call(
            Some(Role::Op),
            Method::PATCH,
            "/api/v2/pools/default_pool",
            Some(json!({"description": "no slots given"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "slots"]));

    let (status, _) = server
        .call(
            Some(Role::Op),
            Method::PATCH,
            "/api/v2/pools/default_pool",
            Some(json!({"pool": "renamed", "slots": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, body) = server
        .call(
            Some(Role::Op),
            Method::DELETE,
            "/api/v2/pools/default_pool",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, _) = server
        .call(
            Some(Role::Op),
            Method::PATCH,
            "/api/v2/pools/nowhere",
            Some(json!({"slots": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .call(
            Some(Role::Op),
            Method::DELETE,
            "/api/v2/pools/nowhere",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A Viewer may not create.
    let (status, _) = server
        .call(
            Some(Role::Viewer),
            Method::POST,
            "/api/v2/pools",
            Some(json!({"name": "v", "slots": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    assert_eq!(server.get(Role::Viewer, "/api/v2/pools").await.1, before);
}

#[tokio::test]
async fn pools_are_filtered_sorted_and_paged() {
    let server = Server::start().await;
    for (name, slots) in [("alpha", 3), ("beta", 1), ("alphabet", 2)] {
        let (status, body) = server
            .call(
                Some(Role::Op),
                Method::POST,
                "/api/v2/pools",
                Some(json!({"name": name, "slots": slots})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    assert_eq!(
        names(&server, "").await,
        (
            vec![
                "alpha".into(),
                "alphabet".into(),
                "beta".into(),
                "default_pool".into()
            ],
            4
        )
    );
    assert_eq!(
        names(&server, "?pool_name_pattern=ALPH").await,
        (vec!["alpha".into(), "alphabet".into()], 2)
    );
    assert_eq!(
        names(&server, "?pool_name_prefix_pattern=be").await,
        (vec!["beta".into()], 1)
    );
    assert_eq!(
        names(&server, "?order_by=-name&limit=2&offset=1").await,
        (vec!["beta".into(), "alphabet".into()], 4)
    );
    assert_eq!(
        names(&server, "?order_by=slots&limit=3").await.0,
        vec!["beta", "alphabet", "alpha"]
    );
    let (status, body) = server
        .get(Role::Viewer, "/api/v2/pools?order_by=colour")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().expect("detail").contains("colour"));
    let (status, body) = server.get(Role::Viewer, "/api/v2/pools?limit=many").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["query", "limit"]));
}

async fn bulk(server: &Server, actions: Value) -> Value {
    let (status, body) = server
        .call(
            Some(Role::Op),
            Method::PATCH,
            "/api/v2/pools",
            Some(json!({ "actions": actions })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn bulk_pools_follow_each_existence_policy() {
    let server = Server::start().await;

    let body = bulk(
        &server,
        json!([{"action": "create", "entities": [
        {"name": "a", "slots": 1}, {"name": "b", "slots": 2}]}]),
    )
    .await;
    assert_eq!(
        body,
        json!({"create": {"success": ["a", "b"], "errors": []},
        "update": null, "delete": null})
    );

    // fail (the default): nothing of the action is written.
    let body = bulk(
        &server,
        json!([{"action": "create", "entities": [
        {"name": "a", "slots": 5}, {"name": "c", "slots": 3}]}]),
    )
    .await;
    assert_eq!(body["create"]["success"], json!([]));
    assert_eq!(body["create"]["errors"][0]["status_code"], 409);
    assert_eq!(names(&server, "").await.1, 3);

    let body = bulk(
        &server,
        json!([
            {"action": "create", "action_on_existence": "skip", "entities": [
                {"name": "a", "slots": 5}, {"name": "c", "slots": 3}]},
            {"action": "create", "action_on_existence": "overwrite", "entities": [
                {"name": "b", "slots": 7, "description": "over"}]},
        ]),
    )
    .await;
    assert_eq!(body["create"]["success"], json!(["c", "b"]));
    let a = server.get(Role::Viewer, "/api/v2/pools/a").await.1;
    assert_eq!(a["slots"], 1);
    let b = server.get(Role::Viewer, "/api/v2/pools/b").await.1;
    assert_eq!(
        (b["slots"].clone(), b["description"].clone()),
        (json!(7), json!("over"))
    );

    let body = bulk(&server, json!([
        {"action": "update", "entities": [{"name": "a", "slots": 6}, {"name": "ghost", "slots": 1}]},
        {"action": "update", "action_on_non_existence": "skip", "update_mask": ["slots"],
         "entities": [{"name": "b", "slots": 8, "description": "kept?"}, {"name": "ghost", "slots": 1}]},
    ]))
    .await;
    assert_eq!(body["update"]["success"], json!(["b"]));
    assert_eq!(body["update"]["errors"][0]["status_code"], 404);
    assert_eq!(
        server.get(Role::Viewer, "/api/v2/pools/a").await.1["slots"],
        1
    );
    let b = server.get(Role::Viewer, "/api/v2/pools/b").await.1;
    assert_eq!(
        (b["slots"].clone(), b["description"].clone()),
        (json!(8), json!("over"))
    );

    let body = bulk(
        &server,
        json!([
            {"action": "delete", "entities": ["a", "ghost"]},
            {"action": "delete", "action_on_non_existence": "skip",
             "entities": ["c", {"name": "ghost", "slots": 0}, "default_pool"]},
        ]),
    )
    .await;
    assert_eq!(body["delete"]["success"], json!(["c"]));
    let codes: Vec<u64> = body["delete"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["status_code"].as_u64().expect("code"))
        .collect();
    assert_eq!(codes, vec![404, 400]);
    assert_eq!(names(&server, "").await.0, vec!["a", "b", "default_pool"]);
}

#[tokio::test]
async fn a_malformed_bulk_entity_is_a_422_naming_it_and_changes_nothing() {
    let server = Server::start().await;
    let (status, body) = server
        .call(
            Some(Role::Op),
            Method::PATCH,
            "/api/v2/pools",
            Some(json!({"actions": [
                {"action": "create", "entities": [{"name": "ok", "slots": 1}]},
                {"action": "create", "entities": [{"name": "x", "slots": "many"}]}]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["body", "actions", "1", "entities", "0", "slots"])
    );
    let (status, body) = server
        .call(
            Some(Role::Op),
            Method::PATCH,
            "/api/v2/pools",
            Some(
                json!({"actions": [{"action": "create", "entities": [{"name": "", "slots": 1}]}]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["body", "actions", "0", "entities", "0", "name"])
    );
    assert_eq!(names(&server, "").await.1, 1);
}
