//! The one error shape of the HTTP boundary.
//!
//! Every handler, built-in or plugin, fails with [`ApiError`]; the host turns framework errors
//! (unknown routes, malformed JSON, oversized bodies, panics) into the same shape. The body is
//! `{"detail": …, "code": "<plugin>.<snake_case>"}`: `detail` is what the `syfthub-sdk` client
//! parses (a string, an object, or a list of field errors for 422), `code` is a stable machine
//! code. 5xx bodies never carry the cause; they carry the request id instead, and the cause is
//! logged once by the host's access-log middleware.

use std::borrow::Cow;
use std::fmt;

use poem::http::{HeaderName, HeaderValue, StatusCode, header};
use poem::{IntoResponse, Response};
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiResponse, Object};
use serde::Serialize;
use serde_json::Value;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Runs `future` with `request_id` visible to [`ApiError`] responses built inside it.
/// The host's request-id middleware calls this once per request.
pub async fn with_request_id<F: Future>(request_id: String, future: F) -> F::Output {
    REQUEST_ID.scope(request_id, future).await
}

/// The id of the request being served, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The error body every 4xx and 5xx response carries.
#[derive(Debug, Clone, Serialize, Object)]
pub struct ErrorBody {
    /// Human-readable detail: a string, an object (`{"error","message"}` for satellite-token
    /// errors) or a list of [`FieldError`]s for 422.
    pub detail: Value,
    /// Stable machine code, `<area>.<snake_case>`.
    pub code: String,
    /// Request id, on server errors only, to quote when reporting the problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub request_id: Option<String>,
}

/// One failing field of a 422 response, in the shape FastAPI clients know.
#[derive(Debug, Clone, Serialize, Object)]
pub struct FieldError {
    /// Error type, e.g. `string_too_short`, `value_error`, `missing`.
    #[serde(rename = "type")]
    #[oai(rename = "type")]
    pub kind: String,
    /// Where: `["body", "password"]`, `["query", "limit"]`, `["path", "id"]`.
    pub loc: Vec<Value>,
    /// Human-readable message.
    pub msg: String,
    /// The offending input, or null.
    pub input: Value,
}

impl FieldError {
    /// A field error at `loc` (e.g. `["body", "password"]`).
    pub fn new(kind: &str, loc: &[&str], msg: impl Into<String>, input: Value) -> Self {
        Self {
            kind: kind.to_owned(),
            loc: loc.iter().map(|part| Value::String((*part).to_owned())).collect(),
            msg: msg.into(),
            input,
        }
    }
}

/// The cause of a 5xx response, attached to the response for the access log and never sent.
#[derive(Debug, Clone)]
pub struct InternalErrorReport(pub String);

/// An HTTP error: status, stable code, detail, and optional extra headers. Boxed, so the
/// `Result`s that carry it stay small.
#[derive(Debug, Clone)]
pub struct ApiError(Box<Inner>);

#[derive(Debug, Clone)]
struct Inner {
    status: StatusCode,
    code: Cow<'static, str>,
    detail: Value,
    headers: Vec<(HeaderName, HeaderValue)>,
    report: Option<String>,
}

impl ApiError {
    /// An error with a string detail.
    pub fn new(status: StatusCode, code: impl Into<Cow<'static, str>>, detail: impl Into<String>) -> Self {
        Self::with_detail(status, code, Value::String(detail.into()))
    }

    /// An error whose detail is any JSON value (an object or a list).
    pub fn with_detail(status: StatusCode, code: impl Into<Cow<'static, str>>, detail: Value) -> Self {
        Self(Box::new(Inner { status, code: code.into(), detail, headers: Vec::new(), report: None }))
    }

    /// 400.
    pub fn bad_request(code: impl Into<Cow<'static, str>>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 401 with `WWW-Authenticate: Bearer`.
    pub fn unauthorized(code: impl Into<Cow<'static, str>>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    /// 401 `Could not validate credentials`: the answer to every bad or missing credential.
    pub fn invalid_credentials() -> Self {
        Self::unauthorized("auth.invalid_credentials", "Could not validate credentials")
    }

    /// 403.
    pub fn forbidden(code: impl Into<Cow<'static, str>>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }

    /// 404.
    pub fn not_found(code: impl Into<Cow<'static, str>>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }

    /// 409.
    pub fn conflict(code: impl Into<Cow<'static, str>>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    /// 413.
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "request.too_large", detail)
    }

    /// 422 listing every failing field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = serde_json::to_value(errors).unwrap_or(Value::Null);
        Self::with_detail(StatusCode::UNPROCESSABLE_ENTITY, "request.validation", detail)
    }

    /// 422 for one field.
    pub fn invalid_field(loc: &[&str], msg: impl Into<String>, input: Value) -> Self {
        Self::validation(vec![FieldError::new("value_error", loc, msg, input)])
    }

    /// 429 with `Retry-After` in whole seconds.
    pub fn too_many_requests(code: impl Into<Cow<'static, str>>, retry_after_secs: u64) -> Self {
        let value = HeaderValue::from(retry_after_secs.max(1));
        Self::new(StatusCode::TOO_MANY_REQUESTS, code, "Too many requests, try again later")
            .with_header(header::RETRY_AFTER, value)
    }

    /// 503.
    pub fn unavailable(code: impl Into<Cow<'static, str>>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
    }

    /// 503 with `Retry-After` in whole seconds: a dependency is away and should be back soon.
    pub fn unavailable_for(
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<String>,
        retry_after_secs: u64,
    ) -> Self {
        let value = HeaderValue::from(retry_after_secs.max(1));
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail).with_header(header::RETRY_AFTER, value)
    }

    /// An internal error (500): the client sees a generic message and the request id; `cause`,
    /// with its source chain, goes to the log.
    pub fn internal(cause: impl fmt::Display) -> Self {
        let mut error = Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal Server Error");
        error.0.report = Some(format!("{cause:#}"));
        error
    }

    /// An internal error (500) from an error with a source chain, kept in the report.
    pub fn internal_error(cause: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = cause.to_string();
        let mut source = cause.source();
        while let Some(next) = source {
            chain.push_str(": ");
            chain.push_str(&next.to_string());
            source = next.source();
        }
        Self::internal(chain)
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.0.headers.push((name, value));
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The stable machine code.
    pub fn code(&self) -> &str {
        &self.0.code
    }

    /// The detail value.
    pub fn detail(&self) -> &Value {
        &self.0.detail
    }

    /// The body this error serialises to.
    pub fn body(&self) -> ErrorBody {
        let request_id = if self.0.status.is_server_error() { current_request_id() } else { None };
        ErrorBody { detail: self.0.detail.clone(), code: self.0.code.to_string(), request_id }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.detail {
            Value::String(detail) => write!(f, "{} {}: {detail}", self.0.status.as_u16(), self.0.code),
            detail => write!(f, "{} {}: {detail}", self.0.status.as_u16(), self.0.code),
        }
    }
}

impl std::error::Error for ApiError {}

impl poem::error::ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        self.0.status
    }

    fn as_response(&self) -> Response {
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut response = Response::builder().status(self.0.status).content_type("application/json").body(body);
        for (name, value) in &self.0.headers {
            response.headers_mut().append(name.clone(), value.clone());
        }
        if let Some(report) = &self.0.report {
            response.extensions_mut().insert(InternalErrorReport(report.clone()));
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        poem::error::ResponseError::as_response(&self)
    }
}

impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "Error: `{\"detail\": …, \"code\": …}`; 422 lists failing fields in `detail`.",
                status: None,
                status_range: None,
                content: vec![MetaMediaType { content_type: "application/json", schema: ErrorBody::schema_ref() }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        ErrorBody::register(registry);
    }
}

impl From<sea_orm::DbErr> for ApiError {
    /// A database that cannot be reached is a 503 with `Retry-After` (the pool recovers by
    /// itself); any other database error is a 500. Either way the cause goes to the log only.
    fn from(error: sea_orm::DbErr) -> Self {
        match error {
            sea_orm::DbErr::ConnectionAcquire(_) | sea_orm::DbErr::Conn(_) => {
                let mut unavailable =
                    Self::unavailable("storage.unavailable", "The database is unavailable; try again shortly")
                        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"));
                unavailable.0.report = Some(error.to_string());
                unavailable
            }
            error => Self::internal_error(&error),
        }
    }
}

impl From<sea_orm::TransactionError<ApiError>> for ApiError {
    fn from(error: sea_orm::TransactionError<ApiError>) -> Self {
        match error {
            sea_orm::TransactionError::Connection(error) => error.into(),
            sea_orm::TransactionError::Transaction(error) => error,
        }
    }
}
