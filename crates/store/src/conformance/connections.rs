//! Checks of connections: round trips, replacement, deletion and the paged, filtered list.

use super::TestDatabase;
use crate::{ConnectionRecord, Page, Window};

fn connection(conn_id: &str) -> ConnectionRecord {
    ConnectionRecord {
        conn_id: conn_id.into(),
        conn_type: "http".into(),
        host: Some(format!("{conn_id}.example")),
        port: Some(443),
        ..ConnectionRecord::default()
    }
}

fn ids(page: Page<ConnectionRecord>) -> (u64, Vec<String>) {
    (
        page.total,
        page.items.into_iter().map(|c| c.conn_id).collect(),
    )
}

pub async fn connections_can_be_put_read_replaced_and_deleted(db: &dyn TestDatabase) {
    let store = db.open().await;
    assert_eq!(store.get_connection("api").await.unwrap(), None);
    let full = ConnectionRecord {
        conn_id: "api".into(),
        conn_type: "http".into(),
        description: Some("the API ✓".into()),
        host: Some("api.example".into()),
        schema: Some("https".into()),
        login: Some("me".into()),
        password: Some("pw".into()),
        port: Some(8443),
        extra: Some(r#"{"timeout": 3}"#.into()),
    };
    store.put_connection(full.clone()).await.unwrap();
    assert_eq!(store.get_connection("api").await.unwrap(), Some(full));

    // A put replaces every field; absent ones become absent.
    store.put_connection(connection("api")).await.unwrap();
    assert_eq!(
        store.get_connection("api").await.unwrap(),
        Some(connection("api"))
    );

    assert!(store.delete_connection("api").await.unwrap());
    assert!(!store.delete_connection("api").await.unwrap());
    assert_eq!(store.get_connection("api").await.unwrap(), None);
}

pub async fn connections_are_queried_by_pattern_sorted_and_paged(db: &dyn TestDatabase) {
    let store = db.open().await;
    for id in [
        "aws_default",
        "AWS_backup",
        "http_api",
        "postgres_default",
        "s3",
    ] {
        store.put_connection(connection(id)).await.unwrap();
    }
    let all = Window::default();
    assert_eq!(
        ids(store.query_connections(None, false, all).await.unwrap()),
        (
            5,
            vec![
                "AWS_backup".into(),
                "aws_default".into(),
                "http_api".into(),
                "postgres_default".into(),
                "s3".into()
            ]
        )
    );
    assert_eq!(
        ids(store
            .query_connections(Some("aws".into()), true, all)
            .await
            .unwrap()),
        (2, vec!["aws_default".into(), "AWS_backup".into()]),
        "case-insensitive, descending"
    );
    assert_eq!(
        ids(store
            .query_connections(Some("_default".into()), false, all)
            .await
            .unwrap()),
        (2, vec!["aws_default".into(), "postgres_default".into()])
    );
    let second_page = Window {
        limit: 2,
        offset: 2,
    };
    assert_eq!(
        ids(store
            .query_connections(None, false, second_page)
            .await
            .unwrap()),
        (5, vec!["http_api".into(), "postgres_default".into()])
    );
    let past_the_end = Window {
        limit: 2,
        offset: 10,
    };
    assert_eq!(
        ids(store
            .query_connections(None, false, past_the_end)
            .await
            .unwrap()),
        (5, vec![])
    );
}
