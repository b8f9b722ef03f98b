//! The API proxy against a real local upstream: secret headers added, client credentials kept
//! back, queries and bodies intact, `..` refused, streaming, timeouts and failures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use poem::http::StatusCode;
use poem::web::sse::{Event, SSE};
use poem::{Request, Response, Route, handler};
use serde_json::json;
use thub_tests::{Backend, Session, TestHub, TestServer};

#[handler]
async fn echo(request: &Request, body: Vec<u8>) -> Response {
    let headers: BTreeMap<String, String> = request
        .headers()
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("?").to_owned()))
        .collect();
    let reply = json!({
        "method": request.method().as_str(),
        "path": request.uri().path(),
        "query": request.uri().query(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    Response::builder()
        .status(if request.method() == poem::http::Method::POST { StatusCode::CREATED } else { StatusCode::OK })
        .content_type("application/json")
        .header("set-cookie", "upstream=1")
        .header("www-authenticate", "Basic")
        .header("x-custom", "kept")
        .header("connection", "keep-alive")
        .body(reply.to_string())
}

#[handler]
fn events() -> SSE {
    let stream = futures_util::stream::unfold(0, |index| async move {
        if index == 3 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(if index == 0 { 0 } else { 400 })).await;
        Some((Event::message(format!("tick {index}")), index + 1))
    });
    SSE::new(stream)
}

#[handler]
async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(5)).await;
    "late"
}

#[handler]
fn redirect() -> Response {
    Response::builder().status(StatusCode::FOUND).header("location", "/v1/echo?from=redirect").finish()
}

async fn upstream() -> TestServer {
    let app = Route::new()
        .at("/v1/echo", echo)
        .at("/v1/a/*rest", echo)
        .at("/v1/events", events)
        .at("/v1/slow", slow)
        .at("/v1/redirect", redirect)
        .at("/outside", echo);
    TestServer::start(poem::EndpointExt::map_to_response(app)).await
}

async fn hub_with(upstream: &TestServer) -> (TestHub, Session) {
    let base = upstream.url("/v1");
    let hub = TestHub::start_at_now_with(Backend::Sqlite, move |config| {
        config.plugins.set_key("proxy", "max_body_bytes", json!(1024));
        let apis = json!({
            "test": {
                "base_url": base,
                "headers": {"Authorization": "Bearer upstream-secret", "X-Api-Version": "2"},
                "timeout_seconds": 1,
            },
            "readonly": {"base_url": "http://127.0.0.1:9/ro", "timeout_seconds": 1, "methods": ["GET"]},
            "down": {"base_url": "http://127.0.0.1:9/v1", "timeout_seconds": 1},
        });
        config.plugins.set_key("proxy", "apis", apis);
    })
    .await;
    let session = hub.register("alice").await;
    (hub, session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_forwarded_with_secrets_and_without_client_credentials() {
    let upstream = upstream().await;
    let (hub, session) = hub_with(&upstream).await;
    let server = hub.serve().await;
    let client = thub_tests::http_client();

    let answer = client
        .get(server.url("/proxy/test/echo?a=1&a=2&b=x%20y"))
        .header("authorization", session.bearer())
        .header("cookie", "tracking=1")
        .header("accept", "application/json")
        .header("x-forwarded-for", "6.6.6.6")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let headers = answer.headers().clone();
    let echoed: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(echoed["path"], "/v1/echo");
    assert_eq!(echoed["query"], "a=1&a=2&b=x%20y", "query forwarded intact, repeated keys included");
    assert_eq!(echoed["headers"]["authorization"], "Bearer upstream-secret", "configured header wins");
    assert_eq!(echoed["headers"]["x-api-version"], "2");
    assert_eq!(echoed["headers"]["accept"], "application/json");
    assert!(echoed["headers"].get("cookie").is_none(), "the client's cookie stays behind");
    assert!(echoed["headers"].get("x-forwarded-for").is_none());
    assert!(!headers.contains_key("set-cookie") && !headers.contains_key("www-authenticate"), "{headers:?}");
    assert_eq!(headers["x-custom"], "kept");
    assert_eq!(headers.get_all("date").iter().count(), 1, "one Date header");

    // A JSON body goes byte for byte, with its content type; the upstream status comes back.
    let body = r#"{"prompt": "héllo", "n": 1}"#;
    let answer = client
        .post(server.url("/proxy/test/echo"))
        .header("authorization", session.bearer())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    let echoed: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(echoed["body"], body);
    assert_eq!(echoed["headers"]["content-type"], "application/json");

    // Encoded characters in the path stay encoded.
    let answer =
        client.get(server.url("/proxy/test/a/b%20c/d")).header("authorization", session.bearer()).send().await.unwrap();
    let echoed: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(echoed["path"], "/v1/a/b%20c/d");

    // Redirects are not followed; a Location inside the base points back through the proxy.
    let answer =
        client.get(server.url("/proxy/test/redirect")).header("authorization", session.bearer()).send().await.unwrap();
    assert_eq!(answer.status(), 302);
    assert_eq!(answer.headers()["location"], "/proxy/test/echo?from=redirect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_and_upstream_failures() {
    let upstream = upstream().await;
    let (hub, session) = hub_with(&upstream).await;
    let server = hub.serve().await;
    let client = thub_tests::http_client();
    let send = |method: reqwest::Method, path: &str| {
        client.request(method, server.url(path)).header("authorization", session.bearer())
    };

    assert_eq!(client.get(server.url("/proxy/test/echo")).send().await.unwrap().status(), 401, "login first");
    let answer = send(reqwest::Method::GET, "/proxy/nope/echo").send().await.unwrap();
    assert_eq!(answer.status(), 404);
    assert!(answer.text().await.unwrap().contains("API 'nope' not configured"));
    for escape in [
        "/proxy/test/../outside",
        "/proxy/test/%2e%2e/outside",
        "/proxy/test/a/.%2E/%2E%2E/outside",
        "/proxy/test/a%2F..%2F..%2Foutside",
    ] {
        let status = send(reqwest::Method::GET, escape).send().await.unwrap().status();
        assert!(status == 400 || status == 404, "{escape}: {status}");
    }
    assert_eq!(send(reqwest::Method::POST, "/proxy/readonly/x").send().await.unwrap().status(), 405);
    let answer = send(reqwest::Method::POST, "/proxy/test/echo").body(vec![b'x'; 4096]).send().await.unwrap();
    assert_eq!(answer.status(), 413, "body over the limit");
    let chunked = futures_util::stream::iter((0..8).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 512])));
    let answer =
        send(reqwest::Method::POST, "/proxy/test/echo").body(reqwest::Body::wrap_stream(chunked)).send().await.unwrap();
    assert_eq!(answer.status(), 413, "streamed body over the limit");

    let answer = send(reqwest::Method::GET, "/proxy/down/anything").send().await.unwrap();
    assert_eq!(answer.status(), 502);
    assert!(answer.text().await.unwrap().contains("Proxy request failed"));
    let started = Instant::now();
    let answer = send(reqwest::Method::GET, "/proxy/test/slow").send().await.unwrap();
    assert_eq!(answer.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(4), "the per-API timeout (1 s) applies");
    // The hub is fine after all that.
    assert_eq!(client.get(server.url("/health")).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sent_events_stream_through() {
    let upstream = upstream().await;
    let (hub, session) = hub_with(&upstream).await;
    let server = hub.serve().await;
    let client = thub_tests::http_client();
    let started = Instant::now();
    let mut answer =
        client.get(server.url("/proxy/test/events")).header("authorization", session.bearer()).send().await.unwrap();
    assert_eq!(answer.headers()["content-type"], "text/event-stream");
    let first = answer.chunk().await.unwrap().unwrap();
    let first_at = started.elapsed();
    assert!(String::from_utf8_lossy(&first).contains("tick 0"));
    let mut rest = String::new();
    while let Some(chunk) = answer.chunk().await.unwrap() {
        rest.push_str(&String::from_utf8_lossy(&chunk));
    }
    let done_at = started.elapsed();
    assert!(rest.contains("tick 2"));
    assert!(
        first_at < Duration::from_millis(400) && done_at >= Duration::from_millis(800),
        "streamed, not buffered: first {first_at:?}, done {done_at:?}"
    );
}

#[test]
fn secrets_come_from_the_environment_or_files_and_never_print() {
    let folder = tempfile::tempdir().unwrap();
    let key = folder.path().join("key");
    std::fs::write(&key, "from-file\n").unwrap();
    let text = format!(
        "[plugins.proxy.apis.x]\nbase_url = \"https://api.example.com\"\nheaders = {{ Authorization = \"Bearer literal-secret\", X-Key = \"${{file:{}}}\" }}\n",
        key.display()
    );
    let config = thub_core::Config::from_toml(&text).unwrap();
    let shown = config.to_redacted_toml().unwrap();
    assert!(!shown.contains("literal-secret"), "{shown}");
    assert!(shown.contains("${file:"), "{shown}");
}
