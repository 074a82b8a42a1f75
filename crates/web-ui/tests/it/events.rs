//! `/ui/events`: a change committed to the store reaches an open page as an event.

use std::time::Duration;

use axum::http::StatusCode;
use http_body_util::BodyExt;
use updraft_rest_api::auth::Role;

use crate::fixture::Ui;
use crate::world;

#[tokio::test]
async fn a_committed_change_is_sent_to_open_pages() {
    let ui = Ui::start().await;
    world::publish(ui.store.as_ref()).await;
    let mut browser = ui.signed_in(Role::Viewer).await;
    let response = browser.open("/ui/events").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();

    let run = world::run(ui.store.as_ref(), "etl", "manual__1", 0).await;
    // A guard against a hang, not a measurement.
    let frame = tokio::time::timeout(Duration::from_secs(30), body.frame())
        .await
        .expect("an event")
        .expect("a frame")
        .expect("no error");
    let data = frame.into_data().expect("data");
    let text = String::from_utf8_lossy(&data);
    assert!(text.starts_with("event: change\n"), "{text}");
    assert!(
        text.contains(&format!(r#"data: {{"kind":"runs","runs":[{}]}}"#, run.id)),
        "{text}"
    );
}

#[tokio::test]
async fn the_stream_needs_a_session() {
    let ui = Ui::start().await;
    let mut browser = ui.browser();
    assert_eq!(
        browser.get("/ui/events").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_stream_ends_when_the_session_does() {
    let ui = Ui::start_with(|config| config.jwt_expiration = Duration::from_secs(5)).await;
    let mut browser = ui.signed_in(Role::Viewer).await;
    let response = browser.open("/ui/events").await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    // No change happens: the first thing the stream does is end, at the token's expiry.
    let end = tokio::time::timeout(Duration::from_secs(30), body.frame())
        .await
        .expect("the stream ends");
    assert!(end.is_none(), "a frame instead of the end");
    // And reconnecting is refused.
    assert_eq!(
        browser.get("/ui/events").await.status,
        StatusCode::UNAUTHORIZED
    );
}
