//! Error answers: a status and Airflow's JSON body `{"detail": …}`, always.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use updraft_store::{DatabaseFailure, StoreError};

/// Why the REST API could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// An operation of the router has no entry in a `PERMISSIONS` table: it would be served
    /// without an access decision, so the router refuses to build.
    #[error("operation {0} has no permission: add it to its module's PERMISSIONS")]
    MissingPermission(String),
    /// The JWT secret is empty or too short to sign tokens safely.
    #[error("api.jwt_secret must be at least 32 characters")]
    WeakJwtSecret,
    #[error("invalid API configuration: {0}")]
    Config(String),
}

/// An error answer of a request.
#[derive(Debug)]
pub struct RestError {
    pub status: StatusCode,
    pub detail: serde_json::Value,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong: a message, or Airflow's list of validation errors.
    #[schema(value_type = serde_json::Value)]
    pub detail: serde_json::Value,
}

impl RestError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        RestError {
            status,
            detail: serde_json::Value::String(detail.into()),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    /// A 422 in Airflow's (FastAPI's) shape: `{"detail": [{"loc": [...], "msg": …,
    /// "type": …}]}`, naming the bad field.
    pub fn invalid(location: &[&str], message: impl Into<String>) -> Self {
        RestError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail: serde_json::json!([{
                "type": "value_error",
                "loc": location,
                "msg": message.into(),
            }]),
        }
    }
}

/// The answer to a path no route serves, for a server whose only routes are this API's
/// (`standalone`): JSON like every other answer.
pub async fn route_not_found() -> RestError {
    RestError::not_found("Not Found: no such route")
}

/// The answer to a known path asked with a method it does not serve.
pub async fn method_not_allowed() -> RestError {
    RestError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                detail: self.detail,
            }),
        )
            .into_response()
    }
}

/// `NotFound` → 404, `AlreadyExists` → 409, database trouble → 503, a refused transition →
/// 409; stored data that cannot be read → 500.
impl From<StoreError> for RestError {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::NotFound(_) => StatusCode::NOT_FOUND,
            StoreError::AlreadyExists(_) | StoreError::Conflict(_) => StatusCode::CONFLICT,
            StoreError::IllegalTransition(_) => StatusCode::CONFLICT,
            // Worth a retry: the database is busy or out of reach. A statement that failed
            // otherwise will fail again.
            StoreError::Database(db) if db.failure == DatabaseFailure::Other => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            StoreError::Database(_) | StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::warn!(error = %e, status = status.as_u16(), "store error answering a request");
        }
        RestError::new(status, e.to_string())
    }
}

impl From<JsonRejection> for RestError {
    fn from(rejection: JsonRejection) -> Self {
        let status = match rejection.status() {
            // A body that parses but has the wrong shape names its field, like FastAPI.
            StatusCode::UNPROCESSABLE_ENTITY => StatusCode::UNPROCESSABLE_ENTITY,
            other => other,
        };
        let message = rejection.body_text();
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            return RestError::invalid(&["body"], message);
        }
        RestError::new(status, message)
    }
}

impl From<PathRejection> for RestError {
    fn from(rejection: PathRejection) -> Self {
        RestError::invalid(&["path"], rejection.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_busy_or_unreachable_database_is_worth_a_retry() {
        let status = |failure| RestError::from(StoreError::database_failure(failure, "x")).status;
        assert_eq!(
            status(DatabaseFailure::Busy),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(DatabaseFailure::Unreachable),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(DatabaseFailure::Other),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
