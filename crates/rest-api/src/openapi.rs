//! The router and its OpenAPI 3.1 document, generated from the handlers' own annotations so
//! the two cannot drift; `/openapi.json` serves it and `/docs` renders it.

use std::collections::HashSet;
use std::sync::Arc;

use axum::http::{header, Method};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{middleware, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::auth::{authorize, Access, OperationAccess};
use crate::{routes, ApiError, RestState};

pub const OPENAPI_PATH: &str = "/openapi.json";
pub const DOCS_PATH: &str = "/docs";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "updraft REST API",
        description = "Airflow 3's public REST API (`/api/v2`) for everything updraft has. \
            Get a token with `POST /auth/token` and send it as `Authorization: Bearer <token>`."
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

fn parts() -> (Router<RestState>, Document) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v2", routes::api_v2())
        .merge(routes::auth())
        .split_for_parts()
}

/// The OpenAPI document of the REST API, as `/openapi.json` serves it.
pub fn openapi_document() -> Document {
    parts().1
}

/// Every operation of the document, as (method, path, operation id).
pub fn operations(document: &Document) -> Vec<(Method, String, String)> {
    let mut out = Vec::new();
    for (path, item) in &document.paths.paths {
        let methods = [
            (Method::GET, &item.get),
            (Method::POST, &item.post),
            (Method::PUT, &item.put),
            (Method::PATCH, &item.patch),
            (Method::DELETE, &item.delete),
        ];
        for (method, operation) in methods {
            if let Some(operation) = operation {
                let id = operation.operation_id.clone().unwrap_or_default();
                out.push((method, path.clone(), id));
            }
        }
    }
    out
}

/// The access each operation id needs, from the modules' tables.
pub fn access_of(operation_id: &str) -> Option<Access> {
    routes::PERMISSIONS
        .iter()
        .flat_map(|table| table.iter())
        .find(|(id, _)| *id == operation_id)
        .map(|(_, access)| *access)
}

/// The REST API's routes: `/api/v2/…`, `/auth/…`, `/openapi.json` and `/docs`, each behind
/// the access decision. Fails if an operation has no permission.
pub fn router(state: RestState) -> Result<Router, ApiError> {
    let allow_origins = state.config().allow_origins.clone();
    let (router, document) = parts();
    let mut table = OperationAccess::default();
    let mut seen = HashSet::new();
    for (method, path, id) in operations(&document) {
        let access = access_of(&id).ok_or_else(|| ApiError::MissingPermission(id.clone()))?;
        if !seen.insert(id.clone()) {
            return Err(ApiError::Config(format!("operation id {id} is used twice")));
        }
        let id: &'static str = routes::PERMISSIONS
            .iter()
            .flat_map(|table| table.iter())
            .find(|(known, _)| *known == id)
            .map(|(known, _)| *known)
            .unwrap_or("unknown");
        table.routes.insert((method, path), (id, access));
    }
    let json: Arc<str> = document
        .to_json()
        .map_err(|e| ApiError::Config(format!("cannot serialize the OpenAPI document: {e}")))?
        .into();
    let table = Arc::new(table);
    let router = router
        // Inside the access decision, so the audit log knows the principal.
        .route_layer(middleware::from_fn_with_state(
            (state.clone(), table.clone()),
            crate::audit::record,
        ))
        .route_layer(middleware::from_fn_with_state(
            (state.clone(), table),
            authorize,
        ))
        .layer(middleware::map_response(crate::auth::with_challenge))
        .with_state(state)
        .route(
            OPENAPI_PATH,
            get(move || {
                let json = json.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        json.to_string(),
                    )
                }
            }),
        )
        .route(DOCS_PATH, get(docs));
    Ok(match crate::cors::layer(&allow_origins)? {
        Some(cors) => router.layer(cors),
        None => router,
    })
}

async fn docs() -> impl IntoResponse {
    Html(include_str!("openapi/docs.html"))
}
