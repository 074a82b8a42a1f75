//! The role × route matrix, built from the router's own operations: every operation answers
//! 401 without a token (unless public) and 403 to every role below the one it needs, and
//! the router refuses to build with an operation that has no permission.

use reqwest::{Method, StatusCode};
use updraft_rest_api::auth::{allows, Access, Role};
use updraft_rest_api::openapi::{access_of, openapi_document, operations};

use crate::fixture::Server;

/// A concrete path for a template: every parameter becomes a name that exists nowhere.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => in_param = true,
            '}' => {
                in_param = false;
                out.push_str("nothing_here");
            }
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

#[test]
fn every_operation_has_a_permission() {
    let document = openapi_document();
    let operations = operations(&document);
    assert!(!operations.is_empty());
    for (method, path, id) in operations {
        assert!(!id.is_empty(), "{method} {path} has no operation id");
        assert!(
            access_of(&id).is_some(),
            "{id} ({method} {path}) has no permission"
        );
    }
}

#[tokio::test]
async fn roles_below_an_operation_are_refused_and_anonymous_calls_are_unauthorized() {
    // Config answers 403 to everyone unless exposed; exposed, only the role decides.
    let server = Server::start_with(|config| config.expose_config = true).await;
    for (method, path, id) in operations(&openapi_document()) {
        let url = concrete(&path);
        let access = access_of(&id).expect("permission");
        let (status, body) = server
            .call(None, method.clone(), &url, Some(serde_json::json!({})))
            .await;
        if access == Access::Public {
            assert_ne!(status, StatusCode::UNAUTHORIZED, "{id}: public, yet 401");
            continue;
        }
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{id} without a token: {body}"
        );
        assert!(body["detail"].is_string(), "{id}: 401 body {body}");
        let Access::Require(action, resource) = access else {
            continue;
        };
        for role in Role::ALL {
            let (status, body) = server
                .call(
                    Some(role),
                    method.clone(),
                    &url,
                    Some(serde_json::json!({})),
                )
                .await;
            if allows(role, action, resource, None) {
                assert_ne!(status, StatusCode::FORBIDDEN, "{id} as {role:?}: {body}");
                assert_ne!(status, StatusCode::UNAUTHORIZED, "{id} as {role:?}: {body}");
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{id} as {role:?}: {body}");
            }
        }
    }
}

#[tokio::test]
async fn the_document_and_its_reference_page_need_no_token() {
    let server = Server::start().await;
    let (status, document) = server.call(None, Method::GET, "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(document["paths"]["/api/v2/version"]["get"].is_object());
    let page = server
        .client
        .get(format!("{}/docs", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("/openapi.json"));
}
