//! `GET /api/v2/version`.

use reqwest::StatusCode;
use updraft_rest_api::auth::Role;

use crate::fixture::Server;

#[tokio::test]
async fn version_answers_the_package_version() {
    let server = Server::start().await;
    let (status, body) = server.get(Role::Viewer, "/api/v2/version").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}
