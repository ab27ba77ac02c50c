//! The one mapping from errors to HTTP responses: `{"error": {"code", "message"}}`.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::Error;
use crate::store::StoreError;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<&'static str>,
    limit: Option<u64>,
    retry_after: Option<u64>,
    problems: Option<Box<serde_json::Value>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// The body of every error response.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail {
    /// Stable, machine-readable code.
    code: &'static str,
    /// Human-readable explanation.
    message: String,
    /// The request field at fault, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'static str>,
    /// The limit that was exceeded, in bytes, for `413` responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u64>,
    /// Every problem of a workflow model that does not deploy (`invalid_model`), each with
    /// its `element`, `line` and `message`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    problems: Option<Box<serde_json::Value>>,
}

impl ApiError {
    /// An error with a status, a stable code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            limit: None,
            retry_after: None,
            problems: None,
        }
    }

    /// A 500 whose detail is logged under an opaque reference the client can quote.
    pub fn internal(detail: &dyn std::fmt::Display) -> ApiError {
        let reference = uuid::Uuid::now_v7();
        tracing::error!(%reference, error = %detail, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("something went wrong on our side (reference {reference})"),
        )
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                field: self.field,
                limit: self.limit,
                problems: self.problems,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        use StatusCode as S;
        let message = err.to_string();
        match err {
            Error::Invalid(p) => ApiError {
                field: Some(p.field),
                ..ApiError::new(S::UNPROCESSABLE_ENTITY, "validation_failed", message)
            },
            Error::Unauthenticated { code, .. } => ApiError::new(S::UNAUTHORIZED, code, message),
            Error::InvalidCredentials => {
                ApiError::new(S::UNAUTHORIZED, "invalid_credentials", message)
            }
            Error::RefreshTokenReused => {
                ApiError::new(S::UNAUTHORIZED, "refresh_token_reused", message)
            }
            Error::Throttled {
                retry_after_seconds,
            } => ApiError {
                retry_after: Some(retry_after_seconds),
                ..ApiError::new(S::TOO_MANY_REQUESTS, "too_many_attempts", message)
            },
            Error::RateLimited {
                code,
                retry_after_seconds,
                ..
            } => ApiError {
                retry_after: Some(retry_after_seconds),
                ..ApiError::new(S::TOO_MANY_REQUESTS, code, message)
            },
            Error::Busy {
                code,
                retry_after_seconds,
                ..
            } => ApiError {
                retry_after: Some(retry_after_seconds),
                ..ApiError::new(S::SERVICE_UNAVAILABLE, code, message)
            },
            Error::Forbidden(_) => ApiError::new(S::FORBIDDEN, "forbidden", message),
            Error::MissingScope { .. } => ApiError::new(S::FORBIDDEN, "missing_scope", message),
            Error::NotGrantable(_) => ApiError::new(S::FORBIDDEN, "role_not_grantable", message),
            Error::SsoRequired => ApiError::new(S::FORBIDDEN, "sso_required", message),
            Error::SsoFailed { code, upstream, .. } => {
                let status = if upstream {
                    S::BAD_GATEWAY
                } else {
                    S::UNAUTHORIZED
                };
                ApiError::new(status, code, message)
            }
            Error::Refused { code, .. } => ApiError::new(S::UNPROCESSABLE_ENTITY, code, message),
            Error::Denied { code, .. } => ApiError::new(S::FORBIDDEN, code, message),
            Error::InvalidModel { code, problems, .. } => ApiError {
                problems: Some(Box::new(problems)),
                ..ApiError::new(S::UNPROCESSABLE_ENTITY, code, message)
            },
            Error::NotFound(_) => ApiError::new(S::NOT_FOUND, "not_found", message),
            Error::Conflict { code, .. } => ApiError::new(S::CONFLICT, code, message),
            Error::PreconditionFailed { code, .. } => {
                ApiError::new(S::PRECONDITION_FAILED, code, message)
            }
            Error::Gone { code, .. } => ApiError::new(S::GONE, code, message),
            Error::Upstream { code, .. } => ApiError::new(S::BAD_GATEWAY, code, message),
            Error::TooLarge { code, limit, .. } => ApiError {
                limit: Some(limit),
                ..ApiError::new(S::PAYLOAD_TOO_LARGE, code, message)
            },
            Error::Store(StoreError::ShuttingDown) => ApiError::new(
                S::SERVICE_UNAVAILABLE,
                "unavailable",
                "the server is shutting down",
            ),
            Error::Store(e) => ApiError::internal(&e),
            Error::Internal(e) => ApiError::internal(&e),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        use StatusCode as S;
        match rejection {
            JsonRejection::JsonSyntaxError(e) => {
                ApiError::new(S::BAD_REQUEST, "invalid_json", e.body_text())
            }
            JsonRejection::JsonDataError(e) => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, "invalid_body", e.body_text())
            }
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ),
            JsonRejection::BytesRejection(e) if e.status() == S::PAYLOAD_TOO_LARGE => {
                ApiError::new(
                    S::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "the request body is larger than the limit",
                )
            }
            other => ApiError::new(S::BAD_REQUEST, "invalid_body", other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            rejection.body_text(),
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            rejection.body_text(),
        )
    }
}

impl From<crate::workflow::dashboard::RangeError> for ApiError {
    fn from(err: crate::workflow::dashboard::RangeError) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_range", err.to_string())
    }
}

impl From<crate::domain::ParseError> for ApiError {
    fn from(err: crate::domain::ParseError) -> Self {
        Error::Invalid(err).into()
    }
}
