//! Cross-cutting HTTP behaviour, applied once around every route: request ids, the JSON access
//! log, panics, the one error shape, the origin policy (CORS, CSRF on cookie requests, WebSocket
//! Origin), body limits, and the cross-origin-isolation headers PyScript needs.

use std::sync::Arc;
use std::time::Instant;

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response};
use thub_plugin_sdk::{ApiError, FieldError, InternalErrorReport, with_request_id};
use tracing::Instrument;

use crate::client::TrustedProxies;

/// The response header carrying the request id (also accepted on requests).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What the outermost layer needs to know.
#[derive(Debug, Clone)]
pub struct Edge {
    /// Whose forwarding headers are believed.
    pub proxies: TrustedProxies,
    /// Record request metrics (`[metrics] enabled`).
    pub metrics: bool,
    /// Log one in this many successful (< 400) requests; 1 logs all, 0 none. Failures are
    /// always logged.
    pub access_log_every: u64,
}

impl Default for Edge {
    fn default() -> Self {
        Self { proxies: TrustedProxies::default(), metrics: false, access_log_every: 1 }
    }
}

/// The outermost layer: resolves the client (behind trusted proxies, from the forwarding
/// headers) into request data, gives the request an id, runs it inside a tracing span carrying
/// that id, turns every framework error and panic into the one error shape, records metrics by
/// route template, and writes at most one access log line (never with the query string: it
/// may hold `?token=`; successful requests sampled by `[log] access_sample_rate`).
pub fn observe<E: Endpoint + 'static>(inner: E, edge: Edge) -> impl Endpoint<Output = Response> {
    let inner = Arc::new(inner.catch_panic());
    let successes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    poem::endpoint::make(move |mut request: Request| {
        let inner = inner.clone();
        let client = edge.proxies.resolve(&request);
        request.set_data(client);
        let route = crate::metrics::RouteSlot::default();
        request.set_data(route.clone());
        let metrics = edge.metrics;
        let every = edge.access_log_every;
        let successes = successes.clone();
        async move {
            let request_id = incoming_request_id(&request).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let span = tracing::info_span!("request", request_id = %request_id);
            let method = request.method().clone();
            let path = request.uri().path().to_owned();
            let started = Instant::now();
            let response = with_request_id(request_id.clone(), async move {
                let mut response = match inner.call(request).await {
                    Ok(response) => response.into_response(),
                    Err(error) => normalize_error(error).into_response(),
                };
                if let Ok(value) = HeaderValue::from_str(&request_id) {
                    response.headers_mut().insert(REQUEST_ID_HEADER, value);
                }
                let status = response.status().as_u16();
                let elapsed = started.elapsed();
                if metrics {
                    crate::metrics::http_request(method.as_str(), route.template(), status, elapsed);
                }
                let duration_ms = elapsed.as_secs_f64() * 1000.0;
                let client = client.address_text();
                match response.extensions().get::<InternalErrorReport>() {
                    Some(InternalErrorReport(cause)) => tracing::error!(
                        target: "thub::access", %method, %path, status, duration_ms, client, error = %cause, "request failed"
                    ),
                    None if status >= 400 || sampled(&successes, every) => {
                        tracing::info!(target: "thub::access", %method, %path, status, duration_ms, client, "request")
                    }
                    None => {}
                }
                response
            })
            .instrument(span)
            .await;
            Ok::<_, poem::Error>(response)
        }
    })
}

/// One in `every` calls says yes (0: never).
fn sampled(counter: &std::sync::atomic::AtomicU64, every: u64) -> bool {
    match every {
        0 => false,
        1 => true,
        every => counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed).is_multiple_of(every),
    }
}

trait CatchPanicExt: Endpoint + Sized {
    fn catch_panic(self) -> impl Endpoint {
        self.with(poem::middleware::CatchPanic::new().with_handler(|panic: Box<dyn std::any::Any + Send>| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|message| (*message).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_owned());
            ApiError::internal(format!("handler panicked: {message}"))
        }))
    }
}

impl<E: Endpoint> CatchPanicExt for E {}

fn incoming_request_id(request: &Request) -> Option<String> {
    let value = request.headers().get(REQUEST_ID_HEADER)?.to_str().ok()?;
    let valid = !value.is_empty()
        && value.len() <= 64
        && value.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'));
    valid.then(|| value.to_owned())
}

/// Maps a framework error to the one error shape. Handler errors are already [`ApiError`]s.
pub fn normalize_error(error: poem::Error) -> ApiError {
    use poem::error::{MethodNotAllowedError, NotFoundError, ReadBodyError};
    use poem_openapi::error::{
        AuthorizationError, ContentTypeError, ParseMultipartError, ParseParamError, ParsePathError,
        ParseRequestPayloadError,
    };

    if let Some(error) = error.downcast_ref::<ApiError>() {
        return error.clone();
    }
    if error.is::<NotFoundError>() {
        return ApiError::not_found("route.not_found", "Not Found");
    }
    if error.is::<MethodNotAllowedError>() {
        return ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "route.method_not_allowed", "Method Not Allowed");
    }
    if error.is::<AuthorizationError>() {
        return ApiError::invalid_credentials();
    }
    if let Some(error) = error.downcast_ref::<ParseRequestPayloadError>() {
        return payload_error(&error.reason);
    }
    if let Some(error) = error.downcast_ref::<ParseParamError>() {
        return ApiError::validation(vec![FieldError::new(
            "value_error",
            &["query", error.name],
            error.reason.clone(),
            serde_json::Value::Null,
        )]);
    }
    if let Some(error) = error.downcast_ref::<ParsePathError>() {
        return ApiError::validation(vec![FieldError::new(
            "value_error",
            &["path", error.name],
            error.reason.clone(),
            serde_json::Value::Null,
        )]);
    }
    if let Some(error) = error.downcast_ref::<ParseMultipartError>() {
        return payload_error(&error.reason);
    }
    if let Some(error) = error.downcast_ref::<ContentTypeError>() {
        return ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "request.unsupported_media_type", error.to_string());
    }
    if let Some(error) = error.downcast_ref::<ReadBodyError>() {
        return read_body_error(error);
    }
    let status = error.status();
    if status.is_client_error() {
        let reason = status.canonical_reason().unwrap_or("Bad Request");
        return ApiError::new(status, "request.invalid", reason);
    }
    ApiError::internal(format!("{error}"))
}

fn payload_error(reason: &str) -> ApiError {
    if reason.contains(BODY_TOO_LARGE) {
        return ApiError::payload_too_large("Request body too large");
    }
    if reason.contains(crate::server::BODY_READ_TIMED_OUT) {
        return ApiError::new(StatusCode::REQUEST_TIMEOUT, "request.body_timeout", "Request body read timed out");
    }
    // poem-openapi reports JSON syntax errors as serde_json messages, and schema errors as
    // `failed to parse "Type": …`.
    let kind = if reason.starts_with("failed to parse") { "value_error" } else { "json_invalid" };
    ApiError::validation(vec![FieldError::new(kind, &["body"], reason, serde_json::Value::Null)])
}

fn read_body_error(error: &poem::error::ReadBodyError) -> ApiError {
    use poem::error::ReadBodyError;
    match error {
        ReadBodyError::PayloadTooLarge => ApiError::payload_too_large("Request body too large"),
        ReadBodyError::Io(io) if io.to_string().contains(BODY_TOO_LARGE) => {
            ApiError::payload_too_large("Request body too large")
        }
        ReadBodyError::Io(io)
            if io.kind() == std::io::ErrorKind::TimedOut
                || io.to_string().contains(crate::server::BODY_READ_TIMED_OUT) =>
        {
            ApiError::new(StatusCode::REQUEST_TIMEOUT, "request.body_timeout", "Request body read timed out")
        }
        other => ApiError::bad_request("request.unreadable_body", other.to_string()),
    }
}

const BODY_TOO_LARGE: &str = "request body exceeds the limit";

/// Rejects bodies larger than `max_bytes`: at once when `Content-Length` says so, otherwise
/// when the streamed body crosses the limit.
pub fn limit_body<E: Endpoint + 'static>(inner: E, max_bytes: usize) -> impl Endpoint<Output = Response> {
    inner.around(move |inner, mut request| async move {
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > max_bytes as u64) {
            return Err(ApiError::payload_too_large("Request body too large").into());
        }
        if declared.is_none() {
            let body = request.take_body();
            let limited = LimitedReader { inner: body.into_async_read(), remaining: max_bytes as u64 + 1 };
            request.set_body(poem::Body::from_async_read(limited));
        }
        inner.call(request).await.map(IntoResponse::into_response)
    })
}

struct LimitedReader<R> {
    inner: R,
    remaining: u64,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for LimitedReader<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &poll {
            let read = (buf.filled().len() - before) as u64;
            self.remaining = self.remaining.saturating_sub(read);
            if self.remaining == 0 {
                return std::task::Poll::Ready(Err(std::io::Error::other(BODY_TOO_LARGE)));
            }
        }
        poll
    }
}

/// Which browser origins may use the hub with the user's cookie.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    /// Allowed origins besides the hub's own, e.g. `https://app.example.com`.
    pub allowed: Vec<String>,
}

impl OriginPolicy {
    /// Whether `origin` is the request's own origin or on the allow-list.
    pub fn allows(&self, request: &Request, origin: &str) -> bool {
        is_same_origin(request, origin) || self.allowed.iter().any(|allowed| allowed.trim_end_matches('/') == origin)
    }
}

/// Whether `origin` (an `Origin` header value) names the host the request was sent to.
pub(crate) fn is_same_origin(request: &Request, origin: &str) -> bool {
    let Some((_, origin_host)) = origin.split_once("://") else { return false };
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| request.uri().authority().map(|authority| authority.as_str()));
    host.is_some_and(|host| host.eq_ignore_ascii_case(origin_host))
}

/// CORS by allow-list, plus the Origin checks a cookie-authenticated hub needs: a WebSocket
/// upgrade or a state-changing request that carries cookies from a foreign origin is refused
/// (403), and foreign origins get no CORS headers.
pub fn apply_origin_policy<E: Endpoint + 'static>(inner: E, policy: OriginPolicy) -> impl Endpoint<Output = Response> {
    let policy = Arc::new(policy);
    inner.around(move |inner, request| {
        let policy = policy.clone();
        async move {
            let Some(origin) = request.headers().get(header::ORIGIN).and_then(|value| value.to_str().ok()) else {
                return inner.call(request).await.map(IntoResponse::into_response);
            };
            let origin = origin.to_owned();
            if is_same_origin(&request, &origin) {
                return inner.call(request).await.map(IntoResponse::into_response);
            }
            let allowed = policy.allows(&request, &origin);
            let is_preflight = request.method() == Method::OPTIONS
                && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
            if is_preflight {
                return Ok(preflight_response(&request, &origin, allowed));
            }
            if !allowed {
                let upgrade = request.headers().get(header::UPGRADE).is_some();
                let unsafe_method = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
                let has_cookie = request.headers().contains_key(header::COOKIE);
                if upgrade || (unsafe_method && has_cookie) {
                    return Err(ApiError::forbidden("request.origin_not_allowed", "Origin not allowed").into());
                }
                return inner.call(request).await.map(IntoResponse::into_response);
            }
            let mut response = inner.call(request).await.map(IntoResponse::into_response)?;
            add_cors_headers(&mut response, &origin);
            Ok(response)
        }
    })
}

fn preflight_response(request: &Request, origin: &str, allowed: bool) -> Response {
    if !allowed {
        return ApiError::forbidden("request.origin_not_allowed", "Origin not allowed").into_response();
    }
    let mut response = Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(header::ACCESS_CONTROL_ALLOW_METHODS, "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT")
        .header(header::ACCESS_CONTROL_MAX_AGE, "600")
        .finish();
    if let Some(requested) = request.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
    }
    add_cors_headers(&mut response, origin);
    response
}

fn add_cors_headers(response: &mut Response, origin: &str) {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(REQUEST_ID_HEADER));
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// Adds COOP/COEP/CORP to every response so PyScript pages get `SharedArrayBuffer`.
pub fn isolate_cross_origin<E: Endpoint + 'static>(inner: E) -> impl Endpoint<Output = Response> {
    inner.after(|result: poem::Result<E::Output>| async move {
        let mut response = match result {
            Ok(output) => output.into_response(),
            Err(error) => normalize_error(error).into_response(),
        };
        let headers = response.headers_mut();
        headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
        headers.insert("cross-origin-embedder-policy", HeaderValue::from_static("require-corp"));
        headers.insert("cross-origin-resource-policy", HeaderValue::from_static("cross-origin"));
        headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
        Ok::<_, poem::Error>(response)
    })
}

/// `/api/v1/users/` and `/api/v1/users` are the same route: API paths lose a trailing slash
/// before routing. Static-site paths keep theirs (`/docs/` is a folder there).
pub fn trim_api_trailing_slash<E: Endpoint + 'static>(inner: E) -> impl Endpoint {
    inner.before(|mut request: Request| async move {
        let path = request.uri().path();
        if path.len() > 1 && path.ends_with('/') && path.starts_with("/api/") {
            let trimmed = path.trim_end_matches('/');
            let rebuilt = match request.uri().query() {
                Some(query) => format!("{trimmed}?{query}"),
                None => trimmed.to_owned(),
            };
            let mut parts = request.uri().clone().into_parts();
            parts.path_and_query = rebuilt.parse().ok();
            if let Ok(uri) = poem::http::Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
        }
        Ok(request)
    })
}

#[cfg(test)]
mod tests {
    use poem::test::TestClient;
    use poem::{Route, handler, post};

    use super::*;

    #[handler]
    fn boom() -> &'static str {
        panic!("kaboom with a secret-looking value")
    }

    #[handler]
    async fn echo(body: String) -> String {
        body
    }

    #[tokio::test]
    async fn a_panic_is_a_500_for_that_request_only() {
        let app = observe(Route::new().at("/boom", boom).at("/echo", post(echo)), Edge::default());
        let client = TestClient::new(app);

        let response = client.get("/boom").send().await;
        response.assert_status(StatusCode::INTERNAL_SERVER_ERROR);
        let request_id = response.0.headers().get(REQUEST_ID_HEADER).unwrap().to_str().unwrap().to_owned();
        let body = response.0.into_body().into_string().await.unwrap();
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["detail"], "Internal Server Error");
        assert_eq!(body["request_id"], request_id.as_str(), "5xx bodies carry the request id");
        assert!(!body.to_string().contains("kaboom"), "the cause is never sent");

        // The server goes on.
        let response = client.post("/echo").body("still here").send().await;
        response.assert_text("still here").await;
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_413_declared_or_streamed() {
        let app = observe(limit_body(Route::new().at("/echo", post(echo)), 16), Edge::default());
        let client = TestClient::new(app);

        client.post("/echo").body("small").send().await.assert_text("small").await;

        let response = client.post("/echo").body("x".repeat(17)).send().await;
        response.assert_status(StatusCode::PAYLOAD_TOO_LARGE);

        // No Content-Length: the limit applies while streaming.
        let chunks = futures_util::stream::iter((0..3).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 10])));
        let response = client.post("/echo").body(poem::Body::from_bytes_stream(chunks)).send().await;
        response.assert_status(StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn api_paths_lose_a_trailing_slash_and_site_paths_keep_it() {
        #[handler]
        fn path(request: &Request) -> String {
            request.uri().path().to_owned()
        }
        let app = trim_api_trailing_slash(Route::new().at("/*rest", path));
        let client = TestClient::new(app);
        client.get("/api/v1/users/?x=1").send().await.assert_text("/api/v1/users").await;
        client.get("/docs/").send().await.assert_text("/docs/").await;
    }
}
