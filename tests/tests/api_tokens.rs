//! Personal API tokens: created once-shown, stored hashed, usable as Bearer, listed, renamed,
//! revoked and expired, and unable to mint more of themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Duration;
use poem::http::StatusCode;
use sea_orm::EntityTrait;
use serde_json::json;
use thub_tests::{Backend, TestHub, json, on_every_backend};

on_every_backend!(token_lifecycle, token_bad_inputs);

async fn token_lifecycle(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    let client = hub.client();

    let response = client
        .post("/api/v1/auth/tokens")
        .header("authorization", alice.bearer())
        .body_json(&json!({"name": "CI pipeline", "scopes": ["write", "write", "read"]}))
        .send()
        .await;
    response.assert_status(StatusCode::CREATED);
    let created = json(response).await;
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("syft_pat_") && token.len() == 9 + 43, "{token}");
    assert_eq!(created["token_prefix"], token[..16]);
    assert_eq!(created["scopes"], json!(["write", "read"]), "deduplicated");
    let id = created["id"].as_i64().unwrap();

    // Stored hashed: the secret is nowhere in the database.
    let row = thub_core::accounts::entity::api_token::Entity::find_by_id(id).one(&hub.hub.db).await.unwrap().unwrap();
    assert_ne!(row.token_hash, token);
    assert!(!row.token_hash.contains(&token[9..]));

    // Usable as Bearer, and last use is recorded.
    let me = client.get("/api/v1/auth/me").header("authorization", format!("Bearer {token}")).send().await;
    me.assert_status_is_ok();
    assert_eq!(json(me).await["username"], "alice");
    let shown =
        json(client.get(format!("/api/v1/auth/tokens/{id}")).header("authorization", alice.bearer()).send().await)
            .await;
    assert!(shown["last_used_at"].is_string());
    assert!(shown.get("token").is_none(), "the secret is shown only once");

    // An API token cannot mint API tokens.
    client
        .post("/api/v1/auth/tokens")
        .header("authorization", format!("Bearer {token}"))
        .body_json(&json!({"name": "escalation"}))
        .send()
        .await
        .assert_status(StatusCode::FORBIDDEN);

    // Rename, list.
    let renamed = client
        .patch(format!("/api/v1/auth/tokens/{id}"))
        .header("authorization", alice.bearer())
        .body_json(&json!({"name": "Deploys"}))
        .send()
        .await;
    assert_eq!(json(renamed).await["name"], "Deploys");
    let second = json(
        client
            .post("/api/v1/auth/tokens")
            .header("authorization", alice.bearer())
            .body_json(&json!({"name": "two"}))
            .send()
            .await,
    )
    .await;
    let list = json(client.get("/api/v1/auth/tokens").header("authorization", alice.bearer()).send().await).await;
    assert_eq!(list["total"], 2);
    assert_eq!(list["tokens"][0]["name"], "two", "newest first");

    // Revoke: the token stops working; it is listed only with include_inactive.
    client
        .delete(format!("/api/v1/auth/tokens/{id}"))
        .header("authorization", alice.bearer())
        .send()
        .await
        .assert_status(StatusCode::NO_CONTENT);
    let response = client.get("/api/v1/auth/me").header("authorization", format!("Bearer {token}")).send().await;
    response.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(json(response).await["detail"], "API token has been revoked");
    let list = json(client.get("/api/v1/auth/tokens").header("authorization", alice.bearer()).send().await).await;
    assert_eq!(list["total"], 1);
    let list = json(
        client.get("/api/v1/auth/tokens?include_inactive=true").header("authorization", alice.bearer()).send().await,
    )
    .await;
    assert_eq!(list["total"], 2);

    // Someone else's token is not found.
    let bob = hub.register("bob").await;
    let second_id = second["id"].as_i64().unwrap();
    client
        .get(format!("/api/v1/auth/tokens/{second_id}"))
        .header("authorization", bob.bearer())
        .send()
        .await
        .assert_status(StatusCode::NOT_FOUND);
    client
        .delete(format!("/api/v1/auth/tokens/{second_id}"))
        .header("authorization", bob.bearer())
        .send()
        .await
        .assert_status(StatusCode::NOT_FOUND);

    // Expiry follows the clock.
    let expiring = json(
        client
            .post("/api/v1/auth/tokens")
            .header("authorization", alice.bearer())
            .body_json(&json!({"name": "short", "expires_at": "2026-01-01T01:00:00"}))
            .send()
            .await,
    )
    .await;
    let expiring = expiring["token"].as_str().unwrap_or_else(|| panic!("{expiring}")).to_owned();
    client
        .get("/api/v1/auth/me")
        .header("authorization", format!("Bearer {expiring}"))
        .send()
        .await
        .assert_status_is_ok();
    hub.clock.advance(Duration::hours(1));
    let response = client.get("/api/v1/auth/me").header("authorization", format!("Bearer {expiring}")).send().await;
    response.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(json(response).await["detail"], "API token has expired");

    // A token of a deactivated user stops working.
    let admin = hub.admin("root").await;
    let bob = hub.login("bob", thub_tests::PASSWORD).await;
    let bobs = json(
        client
            .post("/api/v1/auth/tokens")
            .header("authorization", bob.bearer())
            .body_json(&json!({"name": "b"}))
            .send()
            .await,
    )
    .await;
    let bobs = bobs["token"].as_str().unwrap().to_owned();
    client
        .patch(format!("/api/v1/users/{}/deactivate", bob.id))
        .header("authorization", admin.bearer())
        .send()
        .await
        .assert_status_is_ok();
    let response = client.get("/api/v1/auth/me").header("authorization", format!("Bearer {bobs}")).send().await;
    response.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(json(response).await["detail"], "Inactive user");
}

async fn token_bad_inputs(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    let client = hub.client();
    let create = |body: serde_json::Value| {
        client.post("/api/v1/auth/tokens").header("authorization", alice.bearer()).body_json(&body).send()
    };
    for body in [
        json!({"name": ""}),
        json!({"name": "x".repeat(101)}),
        json!({"name": "ok", "scopes": []}),
        json!({"name": "ok", "scopes": ["admin"]}),
        json!({"name": "ok", "expires_at": "2020-01-01T00:00:00Z"}),
        json!({"name": "ok", "expires_at": "next tuesday"}),
        json!({"scopes": ["read"]}),
    ] {
        create(body.clone()).await.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    }
    client
        .post("/api/v1/auth/tokens")
        .body_json(&json!({"name": "anon"}))
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    client
        .get("/api/v1/auth/me")
        .header("authorization", "Bearer syft_pat_forged")
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    client
        .get("/api/v1/auth/tokens/abc")
        .header("authorization", alice.bearer())
        .send()
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    let list = json(client.get("/api/v1/auth/tokens").header("authorization", alice.bearer()).send().await).await;
    assert_eq!(list["total"], 0, "nothing was created by bad input");
}
