//! Checks of the audit log: round trips, every filter, sorting and paging.

use super::fixture::*;
use super::TestDatabase;
use crate::{
    EventLogQuery, EventLogRecord, EventLogSortField, NewEventLog, Page, Sort, StoreError,
    TimeRange, Window,
};

fn event(minutes: i64, event: &str, owner: &str, dag_id: Option<&str>) -> NewEventLog {
    NewEventLog {
        when: at(minutes),
        event: event.into(),
        owner: Some(owner.into()),
        dag_id: dag_id.map(Into::into),
        ..NewEventLog::default()
    }
}

fn ids(page: &Page<EventLogRecord>) -> Vec<i64> {
    page.items.iter().map(|e| e.id).collect()
}

pub async fn event_logs_are_added_and_read_back(db: &dyn TestDatabase) {
    let store = db.open().await;
    let full = NewEventLog {
        when: at(3),
        event: "clear".into(),
        owner: Some("ada".into()),
        dag_id: Some("d".into()),
        run_id: Some("r".into()),
        task_id: Some("t".into()),
        map_index: Some(-1),
        try_number: Some(2),
        logical_date: Some(at(-60)),
        extra: Some(r#"{"only_failed": true}"#.into()),
    };
    let first = store.add_event_log(full.clone()).await.unwrap();
    let second = store
        .add_event_log(event(4, "cli_dags_pause", "cli:root", None))
        .await
        .unwrap();
    assert!(second > first, "ids grow");
    assert_eq!(
        store.get_event_log(first).await.unwrap(),
        EventLogRecord {
            id: first,
            event: full
        }
    );
    assert_eq!(
        store.get_event_log(second).await.unwrap().event,
        event(4, "cli_dags_pause", "cli:root", None)
    );
    assert!(matches!(
        error(store.get_event_log(second + 1000).await),
        StoreError::NotFound(_)
    ));
}

pub async fn event_logs_are_filtered_sorted_and_paged(db: &dyn TestDatabase) {
    let store = db.open().await;
    let mut id = Vec::new();
    for e in [
        event(5, "trigger", "ada", Some("d1")),
        event(1, "pause", "bob", Some("d2")),
        event(3, "trigger", "bob", Some("d1")),
        event(2, "delete_variable", "ada", None),
        NewEventLog {
            run_id: Some("r".into()),
            task_id: Some("t".into()),
            map_index: Some(2),
            try_number: Some(1),
            ..event(4, "clear", "cy", Some("d1"))
        },
    ] {
        id.push(store.add_event_log(e).await.unwrap());
    }
    let query = |q: EventLogQuery| {
        let store = store.clone();
        async move { store.query_event_logs(q).await.unwrap() }
    };

    let all = query(EventLogQuery::default()).await;
    assert_eq!(all.total, 5);
    assert_eq!(ids(&all), id, "by id, ascending, without a sort");

    let by_when = query(EventLogQuery {
        sort: vec![Sort {
            field: EventLogSortField::When,
            descending: true,
        }],
        ..EventLogQuery::default()
    })
    .await;
    assert_eq!(ids(&by_when), vec![id[0], id[4], id[2], id[3], id[1]]);

    let by_owner_then_event = query(EventLogQuery {
        sort: vec![
            Sort {
                field: EventLogSortField::Owner,
                descending: false,
            },
            Sort {
                field: EventLogSortField::Event,
                descending: true,
            },
        ],
        ..EventLogQuery::default()
    })
    .await;
    assert_eq!(
        ids(&by_owner_then_event),
        vec![id[0], id[3], id[2], id[1], id[4]]
    );

    let paged = query(EventLogQuery {
        window: Window {
            limit: 2,
            offset: 1,
        },
        ..EventLogQuery::default()
    })
    .await;
    assert_eq!((paged.total, ids(&paged)), (5, vec![id[1], id[2]]));

    let trigger = query(EventLogQuery {
        event: Some("trigger".into()),
        ..EventLogQuery::default()
    })
    .await;
    assert_eq!((trigger.total, ids(&trigger)), (2, vec![id[0], id[2]]));

    let of_d1_by_bob = query(EventLogQuery {
        dag_id: Some("d1".into()),
        owner: Some("bob".into()),
        ..EventLogQuery::default()
    })
    .await;
    assert_eq!(ids(&of_d1_by_bob), vec![id[2]]);

    let of_a_try = query(EventLogQuery {
        run_id: Some("r".into()),
        task_id: Some("t".into()),
        map_index: Some(2),
        try_number: Some(1),
        ..EventLogQuery::default()
    })
    .await;
    assert_eq!(ids(&of_a_try), vec![id[4]]);
    let other_try = query(EventLogQuery {
        try_number: Some(2),
        ..EventLogQuery::default()
    })
    .await;
    assert_eq!(other_try.total, 0);

    let included = query(EventLogQuery {
        included_events: vec!["pause".into(), "clear".into()],
        ..EventLogQuery::default()
    })
    .await;
    assert_eq!(ids(&included), vec![id[1], id[4]]);
    let excluded = query(EventLogQuery {
        excluded_events: vec!["trigger".into(), "pause".into()],
        ..EventLogQuery::default()
    })
    .await;
    assert_eq!(ids(&excluded), vec![id[3], id[4]]);

    let window = query(EventLogQuery {
        when: TimeRange {
            gte: Some(at(2)),
            lt: Some(at(5)),
            ..TimeRange::default()
        },
        ..EventLogQuery::default()
    })
    .await;
    assert_eq!((window.total, ids(&window)), (3, vec![id[2], id[3], id[4]]));
    let open_bounds = query(EventLogQuery {
        when: TimeRange {
            gt: Some(at(2)),
            lte: Some(at(5)),
            ..TimeRange::default()
        },
        ..EventLogQuery::default()
    })
    .await;
    assert_eq!(ids(&open_bounds), vec![id[0], id[2], id[4]]);
}
