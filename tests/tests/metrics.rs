//! `/metrics`: off by default, Prometheus text when switched on, behind its token when one is
//! set, with request series by route template and the sampled pool and outbox gauges.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use poem::http::StatusCode;
use thub_tests::{Backend, TestHub};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_off_by_default() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let alice = hub.register("alice").await;
    // No route: the path is the static site's like any other (here: no such file).
    let response = hub.client().get("/metrics").header("authorization", alice.bearer()).send().await;
    response.assert_status(StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_in_prometheus_text_behind_a_token() {
    let hub = TestHub::start_with(Backend::Sqlite, |config| {
        config.metrics.enabled = true;
        config.metrics.token = thub_core::config::Secret::new("scrape-me");
    })
    .await;
    let alice = hub.register("alice").await;
    let client = hub.client();
    client.get("/api/v1/auth/me").header("authorization", alice.bearer()).send().await.assert_status_is_ok();
    client.get(format!("/api/v1/users/{}", alice.id)).header("authorization", alice.bearer()).send().await;
    client.get("/health").send().await.assert_status_is_ok();

    client.get("/metrics").send().await.assert_status(StatusCode::UNAUTHORIZED);
    client.get("/metrics").header("authorization", "Bearer wrong").send().await.assert_status(StatusCode::UNAUTHORIZED);
    let response = client.get("/metrics").header("authorization", "Bearer scrape-me").send().await;
    response.assert_status_is_ok();
    let content_type = response.0.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = response.0.into_body().into_string().await.unwrap();

    assert!(text.contains("# TYPE thub_http_requests_total counter"), "{text}");
    assert!(text.contains("# TYPE thub_http_request_duration_seconds histogram"), "{text}");
    let me = text
        .lines()
        .find(|line| line.starts_with("thub_http_requests_total{") && line.contains("route=\"/api/v1/auth/me\""))
        .unwrap_or_else(|| panic!("a series for /api/v1/auth/me: {text}"));
    assert!(me.contains("status=\"200\"") && me.contains("method=\"GET\"") && me.ends_with(" 1"), "{me}");
    // Templates, not raw paths: ids never become label values.
    assert!(!text.contains(&format!("/api/v1/users/{}\"", alice.id)), "{text}");
    assert!(text.lines().any(|line| line.contains("route=\"/api/v1/users/:")), "{text}");
    assert!(text.contains("thub_db_pool_connections{state=\"in_use\"}"), "{text}");
    assert!(text.contains("thub_db_pool_acquire_seconds_bucket"), "{text}");
    assert!(text.contains("thub_wasm_outbox_pending"), "{text}");
    // Every sample line is `name{labels} value`.
    for line in text.lines().filter(|line| !line.starts_with('#') && !line.is_empty()) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok() || value == "+Inf" || value == "NaN", "{line}");
    }
}
