//! CORS: off unless `api.access_control_allow_origins` names origins. Then those origins may
//! call the API from a browser with credentials (the UI's cookie) and the methods and headers
//! the API uses; `*` lets any origin call it, but without credentials (browsers refuse
//! credentials with a wildcard, and the cookie must not be offered to every site).

use axum::http::{header, HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use crate::auth::CSRF_HEADER;
use crate::ApiError;

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// The layer for `origins`; `None` when the list is empty.
pub(crate) fn layer(origins: &[String]) -> Result<Option<CorsLayer>, ApiError> {
    let origins: Vec<&str> = origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .collect();
    if origins.is_empty() {
        return Ok(None);
    }
    let headers = [
        header::AUTHORIZATION,
        header::CONTENT_TYPE,
        header::ACCEPT,
        HeaderName::from_static(CSRF_HEADER),
    ];
    let layer = CorsLayer::new()
        .allow_methods(METHODS)
        .allow_headers(headers)
        .expose_headers([header::RETRY_AFTER, header::WWW_AUTHENTICATE]);
    if origins.contains(&"*") {
        return Ok(Some(layer.allow_origin(Any)));
    }
    let mut allowed = Vec::new();
    for origin in origins {
        let origin = origin.trim_end_matches('/');
        let value = HeaderValue::from_str(origin)
            .ok()
            .filter(|_| origin.contains("://"));
        let value = value.ok_or_else(|| {
            ApiError::Config(format!(
                "api.access_control_allow_origins: {origin:?} is not an origin (scheme://host[:port])"
            ))
        })?;
        allowed.push(value);
    }
    Ok(Some(
        layer
            .allow_origin(AllowOrigin::list(allowed))
            .allow_credentials(true),
    ))
}
