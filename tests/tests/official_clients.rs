//! The official clients besides the Python SDK: the TypeScript SDK (`@syfthub/sdk`) and the
//! SyftHub web app. Each request has the shape those clients send: the login form without
//! `grant_type`, `Authorization: Bearer` and `Accept: application/json` on `/{owner}/{slug}`,
//! and bodiless `PATCH …/star` / `…/unstar` without a content type.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use poem::http::StatusCode;
use serde_json::json;
use thub_tests::{Backend, PASSWORD, TestHub, json, on_every_backend};

on_every_backend!(
    login_answers_the_user_with_the_tokens,
    owner_slug_json_carries_the_id_for_signed_in_viewers,
    stars_by_patch_as_the_typescript_sdk_sends_them
);

async fn login_answers_the_user_with_the_tokens(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;

    // `auth.login(username, password)`: a urlencoded form of exactly these two fields.
    let response = hub
        .client()
        .post("/api/v1/auth/login")
        .content_type("application/x-www-form-urlencoded")
        .body(format!("username=alice&password={PASSWORD}"))
        .send()
        .await;
    response.assert_status_is_ok();
    let body = json(response).await;
    assert_eq!(body["user"]["id"], alice.id);
    assert_eq!(body["user"]["username"], "alice");
    assert_eq!(body["user"]["email"], "alice@example.com");
    assert_eq!(body["user"]["role"], "user");
    assert_eq!(body["token_type"], "bearer");
    let access = body["access_token"].as_str().expect("access token");
    assert!(body["refresh_token"].is_string());

    // The SDK keeps the tokens and calls on with them.
    let me = hub.client().get("/api/v1/auth/me").header("authorization", format!("Bearer {access}")).send().await;
    me.assert_status_is_ok();
    assert_eq!(json(me).await["id"], alice.id);
}

async fn owner_slug_json_carries_the_id_for_signed_in_viewers(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    let bob = hub.register("bob").await;
    let public = hub.endpoint(&alice, json!({"name": "Open Model", "type": "model"})).await;
    let internal = hub.endpoint(&alice, json!({"name": "Team Model", "type": "model", "visibility": "internal"})).await;

    // The owner gets the full shape; another signed-in user the public shape with the id, so
    // the web app can star or open it by id.
    let (status, mine) = hub.get_json(Some(&alice), "/alice/open-model").await;
    assert_eq!(status, 200);
    assert_eq!(mine["id"], public["id"]);
    let (status, seen) = hub.get_json(Some(&bob), "/alice/open-model").await;
    assert_eq!(status, 200);
    assert_eq!(seen["id"], public["id"]);
    assert_eq!(seen["owner_username"], "alice");
    let (status, seen) = hub.get_json(Some(&bob), "/alice/team-model").await;
    assert_eq!(status, 200);
    assert_eq!(seen["id"], internal["id"]);

    // Anonymous callers get no id.
    let (status, anonymous) = hub.get_json(None, "/alice/open-model").await;
    assert_eq!(status, 200);
    assert!(anonymous.get("id").is_none(), "{anonymous}");
    assert_eq!(anonymous["slug"], "open-model");

    // The id it hands out works with the id routes.
    let id = seen["id"].as_i64().unwrap();
    assert_eq!(hub.get_json(Some(&bob), &format!("/api/v1/endpoints/{id}")).await.0, 200);
}

async fn stars_by_patch_as_the_typescript_sdk_sends_them(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    let bob = hub.register("bob").await;
    let id = hub.endpoint(&alice, json!({"name": "Starry", "type": "model"})).await["id"].as_i64().unwrap();
    let patch = |path: String, bearer: Option<String>| {
        let client = hub.client();
        async move {
            let mut request = client.patch(path);
            if let Some(bearer) = bearer {
                request = request.header("authorization", bearer);
            }
            request.send().await
        }
    };
    let stars = || async { hub.get_json(None, &format!("/api/v1/endpoints/{id}")).await.1["stars_count"].clone() };
    let starred = || async { hub.get_json(Some(&bob), &format!("/api/v1/endpoints/{id}/starred")).await.1 };

    let response = patch(format!("/api/v1/endpoints/{id}/star"), Some(bob.bearer())).await;
    response.assert_status_is_ok();
    assert_eq!(json(response).await, json!({"starred": true, "changed": true}));
    let response = patch(format!("/api/v1/endpoints/{id}/star"), Some(bob.bearer())).await;
    assert_eq!(json(response).await, json!({"starred": true, "changed": false}), "starring twice counts once");
    assert_eq!(stars().await, 1);
    assert_eq!(starred().await, json!({"starred": true}));

    let response = patch(format!("/api/v1/endpoints/{id}/unstar"), Some(bob.bearer())).await;
    response.assert_status_is_ok();
    assert_eq!(json(response).await, json!({"starred": false, "changed": true}));
    let response = patch(format!("/api/v1/endpoints/{id}/unstar"), Some(bob.bearer())).await;
    assert_eq!(json(response).await, json!({"starred": false, "changed": false}));
    assert_eq!(stars().await, 0);
    assert_eq!(starred().await, json!({"starred": false}));

    // The same rules as POST/DELETE: a login, and an endpoint the caller may see.
    patch(format!("/api/v1/endpoints/{id}/star"), None).await.assert_status(StatusCode::UNAUTHORIZED);
    patch("/api/v1/endpoints/9999/star".to_owned(), Some(bob.bearer())).await.assert_status(StatusCode::NOT_FOUND);
}
