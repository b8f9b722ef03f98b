//! The HTTP boundary: meta routes, the OpenAPI document, the one error shape, request ids,
//! body limits, the origin policy and the PyScript isolation headers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use poem::http::StatusCode;
use serde_json::json;
use thub_tests::{Backend, TestHub, on_every_backend};

on_every_backend!(health_ready_and_docs, unknown_routes_and_methods_are_json);

async fn health_ready_and_docs(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let client = hub.client();

    let response = client.get("/health").send().await;
    response.assert_status_is_ok();
    response.assert_json(json!({"status": "healthy", "version": env!("CARGO_PKG_VERSION")})).await;

    let response = client.get("/ready").send().await;
    response.assert_status_is_ok();
    response.assert_json(json!({"status": "ready", "database": "ok", "redis": "disabled"})).await;

    let response = client.get("/openapi.json").send().await;
    response.assert_status_is_ok();
    let document = response.json().await;
    let document = document.value();
    assert_eq!(document.object().get("openapi").string(), "3.0.0");
    assert!(document.object().get("paths").object().get_opt("/health").is_some());

    let response = client.get("/docs").send().await;
    response.assert_status_is_ok();
    response.assert_content_type("text/html; charset=utf-8");
}

async fn unknown_routes_and_methods_are_json(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let client = hub.client();

    let response = client.get("/api/v1/nothing/here").send().await;
    response.assert_status(StatusCode::NOT_FOUND);
    response.assert_content_type("application/json");
    response.assert_json(json!({"detail": "Not Found", "code": "route.not_found"})).await;

    let response = client.delete("/health").send().await;
    response.assert_status(StatusCode::METHOD_NOT_ALLOWED);
    response.assert_json(json!({"detail": "Method Not Allowed", "code": "route.method_not_allowed"})).await;
}

#[tokio::test]
async fn root_without_a_site_answers_the_welcome_document() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let response = hub.client().get("/").send().await;
    response.assert_status_is_ok();
    let body = response.json().await;
    assert_eq!(body.value().object().get("docs").string(), "/docs");
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_isolation_headers() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let client = hub.client();

    let response = client.get("/health").send().await;
    let generated = response.0.headers().get("x-request-id").expect("request id").to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    response.assert_header("cross-origin-opener-policy", "same-origin");
    response.assert_header("cross-origin-embedder-policy", "require-corp");
    response.assert_header("cross-origin-resource-policy", "cross-origin");

    // A well-formed incoming id is kept, so logs correlate across services; a hostile one is not.
    let response = client.get("/nope").header("x-request-id", "abc-123").send().await;
    response.assert_header("x-request-id", "abc-123");
    let response = client.get("/health").header("x-request-id", "bad id\"<script>").send().await;
    assert_ne!(response.0.headers().get("x-request-id").unwrap(), "bad id\"<script>");
}

#[tokio::test]
async fn origin_policy_allows_only_listed_origins() {
    let hub = TestHub::start_with(Backend::Sqlite, |config| {
        config.server.cors_origins = vec!["https://app.example.com".to_owned()];
    })
    .await;
    let client = hub.client();

    // Listed origin: CORS headers, credentials allowed.
    let response = client.get("/health").header("origin", "https://app.example.com").send().await;
    response.assert_status_is_ok();
    response.assert_header("access-control-allow-origin", "https://app.example.com");
    response.assert_header("access-control-allow-credentials", "true");

    // Preflight from a listed origin.
    let response = client
        .options("/api/v1/auth/me")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await;
    response.assert_status(StatusCode::NO_CONTENT);
    response.assert_header("access-control-allow-headers", "authorization");

    // Foreign origin: no CORS headers, preflight refused.
    let response = client.get("/health").header("origin", "https://evil.example").send().await;
    response.assert_status_is_ok();
    response.assert_header_is_not_exist("access-control-allow-origin");
    let response = client
        .options("/health")
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await;
    response.assert_status(StatusCode::FORBIDDEN);

    // A cookie-carrying unsafe request from a foreign origin is refused (CSRF), as is a
    // WebSocket upgrade from one.
    let response = client
        .post("/api/v1/auth/logout")
        .header("origin", "https://evil.example")
        .header("cookie", "session=x")
        .send()
        .await;
    response.assert_status(StatusCode::FORBIDDEN);
    response.assert_json(json!({"detail": "Origin not allowed", "code": "request.origin_not_allowed"})).await;

    // Same origin (Origin matches Host) is always fine, with or without cookies.
    let response = client
        .get("/health")
        .header("host", "hub.local:8000")
        .header("origin", "http://hub.local:8000")
        .header("cookie", "session=x")
        .send()
        .await;
    response.assert_status_is_ok();
    response.assert_header_is_not_exist("access-control-allow-origin");
}

#[tokio::test]
async fn committed_openapi_document_matches_the_generated_one() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let committed = include_str!("../../openapi.json");
    assert!(
        committed.trim_end() == hub.hub.openapi_json().trim_end(),
        "openapi.json is out of date: regenerate it with `cargo run -q -- openapi > openapi.json`"
    );
}
