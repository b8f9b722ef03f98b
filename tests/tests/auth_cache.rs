//! The in-process authentication cache never lets a revoked credential or a stale account back
//! in: two hubs on one database and a `redis-server` of the test's own (flushed, killed and
//! restarted mid-test); changes made on one hub are refused or seen on the other as soon as the
//! change returns; the cache is bounded in entries and in time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use poem::http::StatusCode;
use poem::test::TestClient;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use thub_core::Hub;
use thub_tests::{Backend, RedisServer, Session, TestHub, eventually, json, on_every_backend};

async fn own_redis() -> Option<RedisServer> {
    let server = RedisServer::start().await;
    if server.is_none() {
        eprintln!("skipped: redis-server is not installed");
    }
    server
}

/// Two hubs on one database and `redis`, their caches live.
async fn pair_on(redis: &RedisServer, backend: Backend) -> (TestHub, Hub) {
    let url = redis.url();
    let first = TestHub::start_with(backend, move |config| {
        config.redis.url = thub_core::config::Secret::new(url);
    })
    .await;
    let second = Hub::build_with_clock((*first.hub.config).clone(), Arc::new(first.clock.clone())).await.unwrap();
    both_live(&first.hub, &second).await;
    (first, second)
}

async fn both_live(first: &Hub, second: &Hub) {
    eventually("both caches live", 10, async || {
        first.accounts.auth_cache_is_live() && second.accounts.auth_cache_is_live()
    })
    .await;
}

async fn me<E: poem::Endpoint>(client: &TestClient<E>, bearer: &str) -> StatusCode {
    client.get("/api/v1/auth/me").header("authorization", bearer).send().await.0.status()
}

async fn create_api_token<E: poem::Endpoint>(client: &TestClient<E>, owner: &Session) -> (i64, String) {
    let response = client
        .post("/api/v1/auth/tokens")
        .header("authorization", owner.bearer())
        .body_json(&json!({"name": "ci"}))
        .send()
        .await;
    response.assert_status(StatusCode::CREATED);
    let created = json(response).await;
    (created["id"].as_i64().unwrap(), format!("Bearer {}", created["token"].as_str().unwrap()))
}

on_every_backend!(changes_on_one_instance_hold_on_the_other_at_once);

async fn changes_on_one_instance_hold_on_the_other_at_once(backend: Backend) {
    let Some(redis) = own_redis().await else { return };
    let (first, second) = pair_on(&redis, backend).await;
    let (on_first, on_second) = (first.client(), TestClient::new(second.endpoint()));
    let admin = first.admin("root").await;
    let alice = first.register("alice").await;
    let bob = first.register("bob").await;
    let carol = first.register("carol").await;
    let (token_id, token) = create_api_token(&on_first, &alice).await;
    for bearer in [alice.bearer(), bob.bearer(), carol.bearer(), token.clone()] {
        assert_eq!(me(&on_second, &bearer).await, StatusCode::OK);
    }
    assert!(second.accounts.auth_cache_len() >= 4, "the second instance caches what it checked");

    // Logout on the first: the second refuses the very next request.
    on_first
        .post("/api/v1/auth/logout")
        .header("authorization", alice.bearer())
        .send()
        .await
        .assert_status(StatusCode::NO_CONTENT);
    assert_eq!(me(&on_second, &alice.bearer()).await, StatusCode::UNAUTHORIZED);

    // API-token revocation.
    assert_eq!(me(&on_second, &token).await, StatusCode::OK);
    let alice_again = first.login("alice", thub_tests::PASSWORD).await;
    on_first
        .delete(format!("/api/v1/auth/tokens/{token_id}"))
        .header("authorization", alice_again.bearer())
        .send()
        .await
        .assert_status(StatusCode::NO_CONTENT);
    assert_eq!(me(&on_second, &token).await, StatusCode::UNAUTHORIZED);

    // Deactivation.
    on_first
        .patch(format!("/api/v1/users/{}/deactivate", bob.id))
        .header("authorization", admin.bearer())
        .send()
        .await
        .assert_status_is_ok();
    assert_ne!(me(&on_second, &bob.bearer()).await, StatusCode::OK);

    // Role change: the role the second instance reports and enforces is the new one.
    on_second
        .get("/api/v1/users/")
        .header("authorization", carol.bearer())
        .send()
        .await
        .assert_status(StatusCode::FORBIDDEN);
    on_first
        .put(format!("/api/v1/users/{}", carol.id))
        .header("authorization", admin.bearer())
        .body_json(&json!({"role": "admin"}))
        .send()
        .await
        .assert_status_is_ok();
    let seen = json(on_second.get("/api/v1/auth/me").header("authorization", carol.bearer()).send().await).await;
    assert_eq!(seen["role"], "admin");
    on_second.get("/api/v1/users/").header("authorization", carol.bearer()).send().await.assert_status_is_ok();

    // Deletion.
    on_first
        .delete(format!("/api/v1/users/{}", carol.id))
        .header("authorization", admin.bearer())
        .send()
        .await
        .assert_status(StatusCode::NO_CONTENT);
    assert_eq!(me(&on_second, &carol.bearer()).await, StatusCode::UNAUTHORIZED);
}

on_every_backend!(redis_flushed_killed_or_restarted_never_brings_a_revoked_token_back);

async fn redis_flushed_killed_or_restarted_never_brings_a_revoked_token_back(backend: Backend) {
    let Some(mut redis) = own_redis().await else { return };
    let (first, second) = pair_on(&redis, backend).await;
    let (on_first, on_second) = (first.client(), TestClient::new(second.endpoint()));
    let [alice, bob, carol] =
        [first.register("alice").await, first.register("bob").await, first.register("carol").await];
    let logout = async |session: &Session| {
        on_first
            .post("/api/v1/auth/logout")
            .header("authorization", session.bearer())
            .send()
            .await
            .assert_status(StatusCode::NO_CONTENT);
    };
    for session in [&alice, &bob, &carol] {
        assert_eq!(me(&on_second, &session.bearer()).await, StatusCode::OK);
    }

    // Flushed: nothing of the cache lives in keys, the channel stays live.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("FLUSHALL").query_async::<()>(&mut connection).await.unwrap();
    logout(&alice).await;
    assert_eq!(me(&on_second, &alice.bearer()).await, StatusCode::UNAUTHORIZED);

    // Killed: the second instance notices, empties its cache and asks the database, so a logout
    // it cannot hear about is refused all the same.
    redis.kill();
    eventually("the second cache bypassed", 10, async || !second.accounts.auth_cache_is_live()).await;
    assert_eq!(second.accounts.auth_cache_len(), 0);
    logout(&bob).await;
    assert_eq!(me(&on_second, &bob.bearer()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&on_second, &carol.bearer()).await, StatusCode::OK);
    assert_eq!(second.accounts.auth_cache_len(), 0, "nothing is cached while the channel is down");

    // Restarted empty: the caches start over; nothing revoked comes back.
    assert!(redis.restart().await);
    both_live(&first.hub, &second).await;
    for bearer in [alice.bearer(), bob.bearer()] {
        assert_eq!(me(&on_first, &bearer).await, StatusCode::UNAUTHORIZED);
        assert_eq!(me(&on_second, &bearer).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(me(&on_second, &carol.bearer()).await, StatusCode::OK);
    logout(&carol).await;
    assert_eq!(me(&on_second, &carol.bearer()).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_is_bounded_in_entries_and_in_time() {
    let hub = TestHub::start_with(Backend::Sqlite, |config| {
        config.auth.cache_entries = 4;
        config.auth.registrations_per_address_per_minute = u32::MAX;
    })
    .await;
    let client = hub.client();
    let mut sessions = Vec::new();
    for index in 0..12 {
        let session = hub.register(&format!("user{index}")).await;
        assert_eq!(me(&client, &session.bearer()).await, StatusCode::OK);
        assert!(hub.hub.accounts.auth_cache_len() <= 3 * 4, "sessions, tokens and users: at most 4 each");
        sessions.push(session);
    }
    // Every session still works, from the database when the cache let it go.
    for session in &sessions {
        assert_eq!(me(&client, &session.bearer()).await, StatusCode::OK);
    }

    // A change nothing tells this instance about (made straight in the database, as another
    // process without Redis would) is seen once the entry's lifetime has passed.
    let user = &sessions[11];
    let seen = json(client.get("/api/v1/auth/me").header("authorization", user.bearer()).send().await).await;
    assert_eq!(seen["role"], "user");
    hub.hub
        .db
        .execute_raw(Statement::from_string(
            hub.hub.db.get_database_backend(),
            format!("UPDATE users SET role = 'admin' WHERE id = {}", user.id),
        ))
        .await
        .unwrap();
    hub.clock.advance(chrono::Duration::seconds(i64::try_from(hub.hub.config.auth.cache_seconds).unwrap()));
    let seen = json(client.get("/api/v1/auth/me").header("authorization", user.bearer()).send().await).await;
    assert_eq!(seen["role"], "admin");
}
