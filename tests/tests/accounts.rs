//! Accounts over HTTP: registration, login, sessions (refresh rotation, reuse detection,
//! revocation), passwords, users administration, and the bad inputs of each.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Duration;
use poem::http::StatusCode;
use serde_json::json;
use thub_tests::{Backend, PASSWORD, TestHub, json, on_every_backend};

on_every_backend!(
    registration_and_its_bad_inputs,
    login_by_username_or_email_and_failures,
    bad_and_wrong_kind_tokens_are_401,
    refresh_rotates_and_reuse_revokes_the_session,
    logout_revokes_access_and_refresh,
    password_change_revokes_other_sessions,
    users_administration,
    deleted_users_ids_are_never_reused,
);

async fn registration_and_its_bad_inputs(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let client = hub.client();

    let response = client
        .post("/api/v1/auth/register")
        .body_json(&json!({
            "username": "Alice", "email": "Alice@Example.com", "full_name": "Alice A",
            "password": PASSWORD, "age": 31
        }))
        .send()
        .await;
    response.assert_status(StatusCode::CREATED);
    let body = json(response).await;
    assert_eq!(body["user"]["username"], "alice", "stored lowercase");
    assert_eq!(body["user"]["email"], "alice@example.com");
    assert_eq!(body["user"]["role"], "user");
    assert_eq!(body["user"]["is_active"], true);
    assert_eq!(body["token_type"], "bearer");
    assert!(body["access_token"].as_str().unwrap().split('.').count() == 3);

    // Duplicates, case-insensitively.
    let duplicate = |username: &str, email: &str| json!({"username": username, "email": email, "full_name": "X", "password": PASSWORD});
    let response =
        client.post("/api/v1/auth/register").body_json(&duplicate("ALICE", "other@example.com")).send().await;
    response.assert_status(StatusCode::BAD_REQUEST);
    response.assert_json(json!({"detail": "Username already exists", "code": "accounts.username_taken"})).await;
    let response = client.post("/api/v1/auth/register").body_json(&duplicate("bob", "ALICE@example.COM")).send().await;
    response.assert_status(StatusCode::BAD_REQUEST);
    response.assert_json(json!({"detail": "Email already exists", "code": "accounts.email_taken"})).await;

    // Every failing field is listed; passwords are never echoed.
    let response = client
        .post("/api/v1/auth/register")
        .body_json(&json!({"username": "a!", "email": "x@localhost", "full_name": "", "password": "short"}))
        .send()
        .await;
    response.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    let body = json(response).await;
    let locations: Vec<String> =
        body["detail"].as_array().unwrap().iter().map(|error| error["loc"][1].to_string()).collect();
    assert_eq!(locations, ["\"username\"", "\"email\"", "\"full_name\"", "\"password\""]);
    assert!(!body.to_string().contains("short"), "password not echoed: {body}");

    // Reserved names would shadow hub routes.
    let response = client.post("/api/v1/auth/register").body_json(&duplicate("api", "api@example.com")).send().await;
    response.assert_status(StatusCode::UNPROCESSABLE_ENTITY);

    // Malformed JSON, a missing field, a wrong type, a wrong media type, an oversized body.
    let response =
        client.post("/api/v1/auth/register").content_type("application/json").body("{\"username\":").send().await;
    response.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json(response).await["detail"][0]["type"], "json_invalid");
    let response = client.post("/api/v1/auth/register").body_json(&json!({"username": "carol"})).send().await;
    response.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    let response = client
        .post("/api/v1/auth/register")
        .body_json(&json!({"username": 5, "email": "c@example.com", "full_name": "C", "password": PASSWORD}))
        .send()
        .await;
    response.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    let response = client.post("/api/v1/auth/register").content_type("text/plain").body("hello").send().await;
    response.assert_status(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge =
        json!({"username": "dave", "email": "d@example.com", "full_name": "x".repeat(3 << 20), "password": PASSWORD});
    let response = client.post("/api/v1/auth/register").body_json(&huge).send().await;
    response.assert_status(StatusCode::PAYLOAD_TOO_LARGE);

    // Nothing already stored was touched by any of that.
    let me = hub.login("alice", PASSWORD).await;
    assert_eq!(me.id, 1);
    let count = hub.hub.accounts.list_users(0, 100).await.unwrap().len();
    assert_eq!(count, 1);
}

async fn login_by_username_or_email_and_failures(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    let client = hub.client();
    let form = |username: &str, password: &str| format!("username={username}&password={password}");
    let login = |body: String| {
        client.post("/api/v1/auth/login").content_type("application/x-www-form-urlencoded").body(body).send()
    };

    login(form("alice", PASSWORD)).await.assert_status_is_ok();
    login(form("ALICE%40example.com", PASSWORD)).await.assert_status_is_ok();

    let response = login(form("alice", "wrong-password-1")).await;
    response.assert_status(StatusCode::UNAUTHORIZED);
    response.assert_json(json!({"detail": "Invalid credentials", "code": "accounts.invalid_login"})).await;
    let response = login(form("nobody", PASSWORD)).await;
    response.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(json(response).await["detail"], "Invalid credentials", "unknown users look like wrong passwords");

    // Empty password and a very long username are ordinary failures, never a 500.
    login(form("alice", "")).await.assert_status(StatusCode::UNAUTHORIZED);
    login(form(&"a".repeat(300), PASSWORD)).await.assert_status(StatusCode::UNAUTHORIZED);

    let response = login(format!("{}&grant_type=client_credentials", form("alice", PASSWORD))).await;
    response.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    let response =
        client.post("/api/v1/auth/login").body_json(&json!({"username": "alice", "password": PASSWORD})).send().await;
    response.assert_status(StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Deactivated: refused, but only after the right password.
    let admin = hub.admin("root").await;
    client
        .patch(format!("/api/v1/users/{}/deactivate", alice.id))
        .header("authorization", admin.bearer())
        .send()
        .await
        .assert_status_is_ok();
    let response = login(form("alice", PASSWORD)).await;
    response.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(json(response).await["detail"], "Account is deactivated");
    assert_eq!(json(login(form("alice", "wrong-1")).await).await["detail"], "Invalid credentials");
}

async fn bad_and_wrong_kind_tokens_are_401(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    let client = hub.client();
    let me = |authorization: String| client.get("/api/v1/auth/me").header("authorization", authorization).send();

    let response = me(alice.bearer()).await;
    response.assert_status_is_ok();
    assert_eq!(json(response).await["username"], "alice");
    me(format!("bearer {}", alice.access)).await.assert_status_is_ok();

    let response = client.get("/api/v1/auth/me").send().await;
    response.assert_status(StatusCode::UNAUTHORIZED);
    response.assert_header("www-authenticate", "Bearer");
    response.assert_json(json!({"detail": "Could not validate credentials", "code": "auth.invalid_credentials"})).await;

    for bad in [
        "Bearer garbage".to_owned(),
        format!("Basic {}", alice.access),
        format!("Bearer {}", alice.refresh),
        format!("Bearer {}x", alice.access),
    ] {
        me(bad).await.assert_status(StatusCode::UNAUTHORIZED);
    }

    // alg: none with the same claims.
    let claims = alice.access.split('.').nth(1).unwrap();
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{claims}.");
    me(format!("Bearer {none}")).await.assert_status(StatusCode::UNAUTHORIZED);

    // An RS256 satellite token is not a hub session token (no HS/RS confusion).
    let satellite =
        json(client.get("/api/v1/token?aud=syftai-space").header("authorization", alice.bearer()).send().await).await;
    let satellite = satellite["target_token"].as_str().unwrap();
    me(format!("Bearer {satellite}")).await.assert_status(StatusCode::UNAUTHORIZED);

    // Expiry follows the clock, with no leeway.
    hub.clock.advance(Duration::minutes(30));
    me(alice.bearer()).await.assert_status(StatusCode::UNAUTHORIZED);
}

async fn refresh_rotates_and_reuse_revokes_the_session(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    let client = hub.client();
    let refresh = |token: &str| client.post("/api/v1/auth/refresh").body_json(&json!({"refresh_token": token})).send();

    let rotated = json(refresh(&alice.refresh).await).await;
    let new_access = rotated["access_token"].as_str().unwrap().to_owned();
    let new_refresh = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new_refresh, alice.refresh);
    client
        .get("/api/v1/auth/me")
        .header("authorization", format!("Bearer {new_access}"))
        .send()
        .await
        .assert_status_is_ok();

    // The old refresh token again: refused, and the whole session is revoked.
    let response = refresh(&alice.refresh).await;
    response.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(json(response).await["detail"], "Invalid refresh token");
    client
        .get("/api/v1/auth/me")
        .header("authorization", format!("Bearer {new_access}"))
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    refresh(&new_refresh).await.assert_status(StatusCode::UNAUTHORIZED);

    // An access token is not a refresh token; garbage is refused; a missing field is 422.
    let bob = hub.register("bob").await;
    refresh(&bob.access).await.assert_status(StatusCode::UNAUTHORIZED);
    refresh("garbage").await.assert_status(StatusCode::UNAUTHORIZED);
    client
        .post("/api/v1/auth/refresh")
        .body_json(&json!({}))
        .send()
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    // Bob's own session was not disturbed.
    refresh(&bob.refresh).await.assert_status_is_ok();

    // Refresh tokens expire too.
    let carol = hub.register("carol").await;
    hub.clock.advance(Duration::days(7));
    refresh(&carol.refresh).await.assert_status(StatusCode::UNAUTHORIZED);
}

async fn logout_revokes_access_and_refresh(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    let second = hub.login("alice", PASSWORD).await;
    let client = hub.client();

    client
        .post("/api/v1/auth/logout")
        .header("authorization", alice.bearer())
        .send()
        .await
        .assert_status(StatusCode::NO_CONTENT);
    client
        .get("/api/v1/auth/me")
        .header("authorization", alice.bearer())
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    client
        .post("/api/v1/auth/refresh")
        .body_json(&json!({"refresh_token": alice.refresh}))
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    client
        .post("/api/v1/auth/logout")
        .header("authorization", alice.bearer())
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    // Another session of the same user is untouched.
    client.get("/api/v1/auth/me").header("authorization", second.bearer()).send().await.assert_status_is_ok();

    // Revocation survives a restart: a new hub on the same database still refuses the token.
    let restarted = thub_core::Hub::build_with_clock((*hub.hub.config).clone(), std::sync::Arc::new(hub.clock.clone()))
        .await
        .unwrap();
    let client = poem::test::TestClient::new(restarted.endpoint());
    client
        .get("/api/v1/auth/me")
        .header("authorization", alice.bearer())
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    client.get("/api/v1/auth/me").header("authorization", second.bearer()).send().await.assert_status_is_ok();
}

async fn password_change_revokes_other_sessions(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let current = hub.register("alice").await;
    let other = hub.login("alice", PASSWORD).await;
    let client = hub.client();
    let change = |current_password: &str, new_password: &str| {
        client
            .put("/api/v1/auth/me/password")
            .header("authorization", current.bearer())
            .body_json(&json!({"current_password": current_password, "new_password": new_password}))
            .send()
    };

    let response = change("wrong-password-1", "new-password-2").await;
    response.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(json(response).await["detail"], "Current password is incorrect");
    change(PASSWORD, "short").await.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    change(PASSWORD, "new-password-2").await.assert_status(StatusCode::NO_CONTENT);

    client.get("/api/v1/auth/me").header("authorization", current.bearer()).send().await.assert_status_is_ok();
    client
        .get("/api/v1/auth/me")
        .header("authorization", other.bearer())
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    hub.login("alice", "new-password-2").await;
    let response = client
        .post("/api/v1/auth/login")
        .content_type("application/x-www-form-urlencoded")
        .body(format!("username=alice&password={PASSWORD}"))
        .send()
        .await;
    response.assert_status(StatusCode::UNAUTHORIZED);
}

async fn users_administration(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin("root").await;
    let alice = hub.register("alice").await;
    let bob = hub.register("bob").await;
    let client = hub.client();
    let auth = |session: &thub_tests::Session| session.bearer();

    // Listing is for administrators, with working pagination.
    client
        .get("/api/v1/users/")
        .header("authorization", auth(&alice))
        .send()
        .await
        .assert_status(StatusCode::FORBIDDEN);
    for name in ["carol", "dave", "erin"] {
        hub.register(name).await;
    }
    let page =
        json(client.get("/api/v1/users?skip=2&limit=2").header("authorization", auth(&admin)).send().await).await;
    let names: Vec<&str> = page.as_array().unwrap().iter().map(|user| user["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["bob", "carol"]);
    for bad in ["limit=0", "limit=101", "skip=-1", "limit=abc"] {
        client
            .get(format!("/api/v1/users?{bad}"))
            .header("authorization", auth(&admin))
            .send()
            .await
            .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    }

    // Self or admin.
    client
        .get(format!("/api/v1/users/{}", alice.id))
        .header("authorization", auth(&alice))
        .send()
        .await
        .assert_status_is_ok();
    let response = client.get(format!("/api/v1/users/{}", bob.id)).header("authorization", auth(&alice)).send().await;
    response.assert_status(StatusCode::FORBIDDEN);
    client
        .get(format!("/api/v1/users/{}", bob.id))
        .header("authorization", auth(&admin))
        .send()
        .await
        .assert_status_is_ok();
    client
        .get("/api/v1/users/9999")
        .header("authorization", auth(&admin))
        .send()
        .await
        .assert_status(StatusCode::NOT_FOUND);
    client
        .get("/api/v1/users/abc")
        .header("authorization", auth(&admin))
        .send()
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);

    // Profile updates: charset-checked usernames, unique emails, no self-promotion.
    let update = |session: &thub_tests::Session, target: &str, body: serde_json::Value| {
        client.put(format!("/api/v1/users/{target}")).header("authorization", session.bearer()).body_json(&body).send()
    };
    let response =
        update(&alice, "me", json!({"full_name": "Alice Liddell", "avatar_url": "https://img.example.com/a.png"}))
            .await;
    response.assert_status_is_ok();
    let body = json(response).await;
    assert_eq!(body["full_name"], "Alice Liddell");
    assert_eq!(body["username"], "alice");
    update(&alice, "me", json!({"email": "BOB@example.com"})).await.assert_status(StatusCode::BAD_REQUEST);
    update(&alice, "me", json!({"username": "Bob_New!"})).await.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    update(&alice, "me", json!({"role": "admin"})).await.assert_status(StatusCode::FORBIDDEN);
    update(&alice, "me", json!({"is_active": false})).await.assert_status(StatusCode::FORBIDDEN);
    update(&alice, &bob.id.to_string(), json!({"full_name": "Evil"})).await.assert_status(StatusCode::FORBIDDEN);
    // Administrators can promote.
    let response = update(&admin, &bob.id.to_string(), json!({"role": "admin"})).await;
    assert_eq!(json(response).await["role"], "admin");

    // Deactivation: admins only, never themselves, revokes sessions; activation restores login.
    let deactivate = |session: &thub_tests::Session, id: i64| {
        client.patch(format!("/api/v1/users/{id}/deactivate")).header("authorization", session.bearer()).send()
    };
    deactivate(&alice, alice.id).await.assert_status(StatusCode::FORBIDDEN);
    let response = deactivate(&admin, admin.id).await;
    response.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(json(response).await["detail"], "Cannot deactivate your own account");
    deactivate(&admin, 9999).await.assert_status(StatusCode::NOT_FOUND);
    let response = deactivate(&admin, alice.id).await;
    assert_eq!(json(response).await["is_active"], false);
    let response = client.get("/api/v1/auth/me").header("authorization", alice.bearer()).send().await;
    response.assert_status(StatusCode::UNAUTHORIZED);
    let response = client
        .patch(format!("/api/v1/users/{}/activate", alice.id))
        .header("authorization", admin.bearer())
        .send()
        .await;
    assert_eq!(json(response).await["is_active"], true);
    hub.login("alice", PASSWORD).await;

    // Availability checks.
    let client = &client;
    let available =
        |path: &'static str| async move { json(client.get(path).send().await).await["available"].as_bool().unwrap() };
    assert!(!available("/api/v1/users/check-username/ALICE").await);
    assert!(available("/api/v1/users/check-username/zed").await);
    assert!(!available("/api/v1/users/check-username/api").await, "reserved names are not available");
    assert!(!available("/api/v1/users/check-email/alice@example.com").await);
    assert!(available("/api/v1/users/check-email/zed@example.com").await);
}

async fn deleted_users_ids_are_never_reused(backend: Backend) {
    let hub = TestHub::start(backend).await;
    hub.register("alice").await;
    let bob = hub.register("bob").await;
    let client = hub.client();
    client
        .delete(format!("/api/v1/users/{}", bob.id))
        .header("authorization", bob.bearer())
        .send()
        .await
        .assert_status(StatusCode::NO_CONTENT);
    client
        .get("/api/v1/auth/me")
        .header("authorization", bob.bearer())
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    let carol = hub.register("carol").await;
    assert!(carol.id > bob.id, "a deleted user's id is never handed out again ({} vs {})", carol.id, bob.id);
    // Bob's old token does not become Carol's.
    let response = client.get("/api/v1/auth/me").header("authorization", bob.bearer()).send().await;
    response.assert_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_account_and_address() {
    let hub = TestHub::start_with(Backend::Sqlite, |config| {
        config.auth.login_attempts_per_account = 3;
        config.auth.failed_logins_per_address = 5;
    })
    .await;
    hub.register("alice").await;
    let client = hub.client();
    let attempt = |username: &str, password: &str| {
        client
            .post("/api/v1/auth/login")
            .content_type("application/x-www-form-urlencoded")
            .body(format!("username={username}&password={password}"))
            .send()
    };
    for _ in 0..3 {
        attempt("alice", "wrong-1").await.assert_status(StatusCode::UNAUTHORIZED);
    }
    let response = attempt("alice", PASSWORD).await;
    response.assert_status(StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.0.headers().get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry_after));

    // The window passes; the right password works again.
    hub.clock.advance(Duration::seconds(300));
    attempt("alice", PASSWORD).await.assert_status_is_ok();

    // Per address: failures on any account count; then this address is refused for a while.
    for name in ["x1", "x2", "x3", "x4", "x5"] {
        attempt(name, "nope-1").await.assert_status(StatusCode::UNAUTHORIZED);
    }
    let response = attempt("alice", PASSWORD).await;
    response.assert_status(StatusCode::TOO_MANY_REQUESTS);
    assert!(response.0.headers().contains_key("retry-after"));
}
