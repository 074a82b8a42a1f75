//! Checks of the small keyed values (variables, XComs) and the health check.

use serde_json::json;

use super::fixture::*;
use super::TestDatabase;
use crate::{FinishReport, TaskState, XCom};

pub async fn ping_answers(db: &dyn TestDatabase) {
    let store = db.open().await;
    store.ping().await.expect("ping");
}

pub async fn variables_can_be_set_read_listed_and_deleted(db: &dyn TestDatabase) {
    let store = db.open().await;
    assert_eq!(store.get_variable("k").await.unwrap(), None);
    assert_eq!(store.list_variables().await.unwrap(), vec![]);

    store.set_variable("k", "v1").await.unwrap();
    store.set_variable("a", "").await.unwrap();
    store
        .set_variable("json", r#"{"x": [1, 2], "s": "é ✓"}"#)
        .await
        .unwrap();
    assert_eq!(
        store.get_variable("k").await.unwrap().as_deref(),
        Some("v1")
    );
    assert_eq!(
        store.get_variable("a").await.unwrap().as_deref(),
        Some(""),
        "an empty value is a value"
    );
    store.set_variable("k", "v2").await.unwrap();
    assert_eq!(
        store.get_variable("k").await.unwrap().as_deref(),
        Some("v2")
    );
    assert_eq!(
        store.list_variables().await.unwrap(),
        vec![
            ("a".to_string(), String::new()),
            (
                "json".to_string(),
                r#"{"x": [1, 2], "s": "é ✓"}"#.to_string()
            ),
            ("k".to_string(), "v2".to_string()),
        ],
        "variables are listed by key"
    );

    assert!(store.delete_variable("k").await.unwrap());
    assert!(!store.delete_variable("k").await.unwrap());
    assert_eq!(store.get_variable("k").await.unwrap(), None);
    assert_eq!(store.list_variables().await.unwrap().len(), 2);
}

pub async fn xcoms_belong_to_their_run(db: &dyn TestDatabase) {
    let store = db.open().await;
    let one = queued_run(&*store, "d", "one", vec![task("a")]).await;
    let two = queued_run(&*store, "d", "two", vec![task("a")]).await;
    for (value, expected_run) in [(json!(1), one.id), (json!([2, "two"]), two.id)] {
        let claimed = claim(
            &*store,
            crate::ClaimRequest {
                dag_run_id: Some(expected_run),
                ..claim_request("w", None, 1)
            },
        )
        .await;
        let result = finish(
            &*store,
            FinishReport {
                xcom: Some(value),
                ..report(&claimed[0], TaskState::Success)
            },
        )
        .await;
        assert_eq!(result, crate::TransitionResult::Applied);
    }
    let xcom = |value| XCom {
        task_id: "a".into(),
        map_index: -1,
        key: "return_value".into(),
        value,
    };
    assert_eq!(
        store.xcoms_for_run(one.id).await.unwrap(),
        vec![xcom(json!(1))]
    );
    assert_eq!(
        store.xcoms_for_run(two.id).await.unwrap(),
        vec![xcom(json!([2, "two"]))]
    );
    assert_eq!(store.xcoms_for_run(two.id + 1000).await.unwrap(), vec![]);
}
