//! Raw routes (channels, proxy, static site, owner pages) authenticate by the one rule of the SDK
//! helpers: an inactive account is refused the same way everywhere, and a database that cannot
//! answer is a 503, never an anonymous caller.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use poem::http::StatusCode;
use serde_json::json;
use thub_tests::{Backend, TestHub};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A WebSocket channel, a proxy API, a static file and an owner page.
const RAW_ROUTES: [&str; 4] = ["/channel/room", "/proxy/none/x", "/page.html", "/alice/model"];

/// The status (and `Location`) `path` answers a caller presenting `authorization`. Channels are
/// opened as real WebSockets on a real socket; the rest go through the in-process client.
async fn status(hub: &TestHub, path: &str, authorization: &str, html: bool) -> (StatusCode, Option<String>) {
    if path.starts_with("/channel/") {
        let server = hub.serve().await;
        let mut request = format!("ws://{}{path}", server.addr).into_client_request().unwrap();
        request.headers_mut().insert("authorization", authorization.parse().unwrap());
        return match tokio_tungstenite::connect_async(request).await {
            Ok(_) => (StatusCode::SWITCHING_PROTOCOLS, None),
            Err(WsError::Http(response)) => (StatusCode::from_u16(response.status().as_u16()).unwrap(), None),
            Err(error) => panic!("{path}: {error}"),
        };
    }
    let client = hub.client();
    let request = client
        .get(path)
        .header("authorization", authorization)
        .header("accept", if html { "text/html" } else { "application/json" });
    let response = request.send().await;
    let location = response.0.headers().get("location").map(|value| value.to_str().unwrap().to_owned());
    (response.0.status(), location)
}

#[tokio::test]
async fn an_inactive_account_is_refused_alike_on_every_raw_route() {
    let hub = TestHub::start(Backend::Sqlite).await;
    std::fs::write(hub.dir.path().join("page.html"), "<p>hi</p>").unwrap();
    let admin = hub.admin("root").await;
    let alice = hub.register("alice").await;
    hub.endpoint(&alice, json!({"name": "Model", "type": "model", "visibility": "public"})).await;
    let (created, token) = hub.post_json(Some(&alice), "/api/v1/auth/tokens", json!({"name": "ci"})).await;
    assert_eq!(created, 201, "{token}");
    let token = format!("Bearer {}", token["token"].as_str().unwrap());

    let (deactivated, body) = hub
        .send_json(
            poem::http::Method::PATCH,
            Some(&admin),
            &format!("/api/v1/users/{}/deactivate", alice.id),
            json!({}),
        )
        .await;
    assert_eq!(deactivated, 200, "{body}");

    // Routes that need a user answer what `CurrentUser` answers: 400 `Inactive user`.
    let (api, _) = status(&hub, "/api/v1/auth/me", &token, false).await;
    assert_eq!(api, StatusCode::BAD_REQUEST);
    for path in ["/channel/room", "/proxy/none/x"] {
        assert_eq!(status(&hub, path, &token, false).await.0, StatusCode::BAD_REQUEST, "{path}");
    }
    // Routes open to anonymous callers treat an inactive account as anonymous: the site asks
    // browsers to log in and API clients for credentials; the public endpoint page still shows.
    let (site, location) = status(&hub, "/page.html", &token, true).await;
    assert_eq!((site, location.as_deref()), (StatusCode::SEE_OTHER, Some("/login?next=/page.html")));
    assert_eq!(status(&hub, "/page.html", &token, false).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&hub, "/alice/model", &token, false).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_database_that_cannot_answer_is_a_503_never_anonymous() {
    // The authentication cache off, so every check asks the database (a cached session would be
    // answered without it).
    let hub = TestHub::start_with(Backend::Sqlite, |config| config.auth.cache_seconds = 0).await;
    std::fs::write(hub.dir.path().join("page.html"), "<p>hi</p>").unwrap();
    let alice = hub.register("alice").await;
    hub.endpoint(&alice, json!({"name": "Model", "type": "model", "visibility": "public"})).await;

    // Closing a clone closes the pool every service shares.
    hub.hub.db.clone().close().await.unwrap();

    for path in RAW_ROUTES {
        for html in [false, true] {
            let (code, location) = status(&hub, path, &alice.bearer(), html).await;
            assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{path} (html: {html}) answered {code} {location:?}");
        }
    }
    let response = hub.client().get("/api/v1/auth/me").header("authorization", alice.bearer()).send().await;
    response.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    response.assert_header("retry-after", "1");
}
