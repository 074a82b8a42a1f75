//! Error answers of the server: a status and a JSON `{"detail": …}` body, always.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use updraft_store::StoreError;

use crate::validate::InvalidBody;
use crate::wire::ErrorBody;

/// An error answer.
#[derive(Debug)]
pub(crate) struct HttpError {
    pub status: StatusCode,
    pub detail: String,
}

impl HttpError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        HttpError {
            status,
            detail: detail.into(),
        }
    }

    pub fn unprocessable(detail: impl Into<String>) -> Self {
        HttpError::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }
}

impl IntoResponse for HttpError {
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

/// `NotFound` → 404; database trouble → 503 (another try, maybe on another server, may
/// succeed); a request the store refuses as such → 409/422; anything else → 500.
impl From<StoreError> for HttpError {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::NotFound(_) => StatusCode::NOT_FOUND,
            StoreError::Database(_) | StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            StoreError::AlreadyExists(_) | StoreError::Conflict(_) => StatusCode::CONFLICT,
            StoreError::IllegalTransition(_) => StatusCode::UNPROCESSABLE_ENTITY,
            StoreError::Unauthorized(_)
            | StoreError::SchemaTooNew { .. }
            | StoreError::Corrupt(_)
            | StoreError::Secret(_)
            | StoreError::Unsupported(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::warn!(error = %e, status = status.as_u16(), "store error answering a request");
        }
        HttpError::new(status, e.to_string())
    }
}

impl From<InvalidBody> for HttpError {
    fn from(invalid: InvalidBody) -> Self {
        HttpError::unprocessable(invalid.to_string())
    }
}

impl From<JsonRejection> for HttpError {
    fn from(rejection: JsonRejection) -> Self {
        HttpError::new(rejection.status(), rejection.body_text())
    }
}

impl From<PathRejection> for HttpError {
    fn from(rejection: PathRejection) -> Self {
        HttpError::new(rejection.status(), rejection.body_text())
    }
}

/// A JSON request body whose rejection (malformed JSON, wrong shape, missing content type)
/// is answered in the API's error shape.
pub(crate) struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(rejection.into()),
        }
    }
}

/// Answers requests for unknown routes.
pub(crate) async fn not_found() -> HttpError {
    HttpError::new(StatusCode::NOT_FOUND, "no such route")
}

/// Answers a known route asked with the wrong method.
pub(crate) async fn method_not_allowed() -> HttpError {
    HttpError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this route",
    )
}
