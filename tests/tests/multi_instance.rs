//! Several instances on one database (and one Redis): a session revoked on one instance is
//! refused by the others, and the login rate limit is counted once for all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use poem::http::StatusCode;
use poem::test::TestClient;
use thub_core::Hub;
use thub_tests::{Backend, PASSWORD, TestHub, on_every_backend, redis_url, use_redis};

on_every_backend!(revocation_holds_across_instances_sharing_the_database);

async fn revocation_holds_across_instances_sharing_the_database(backend: Backend) {
    // Without Redis no instance hears of another's changes, so instances sharing a database
    // without Redis turn the authentication cache off (`auth.cache_seconds = 0`, as the example
    // configuration says); the database then decides every request.
    let first = TestHub::start_with(backend, |config| config.auth.cache_seconds = 0).await;
    let second = Hub::build_with_clock((*first.hub.config).clone(), Arc::new(first.clock.clone())).await.unwrap();
    let alice = first.register("alice").await;

    let on_second = TestClient::new(second.endpoint());
    on_second.get("/api/v1/auth/me").header("authorization", alice.bearer()).send().await.assert_status_is_ok();
    first
        .client()
        .post("/api/v1/auth/logout")
        .header("authorization", alice.bearer())
        .send()
        .await
        .assert_status(StatusCode::NO_CONTENT);
    on_second
        .get("/api/v1/auth/me")
        .header("authorization", alice.bearer())
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_and_rate_limits_go_through_redis() {
    if redis_url().is_none() || thub_tests::postgres_url().is_none() {
        eprintln!("skipped: TEST_REDIS_URL and TEST_DATABASE_URL are both needed");
        return;
    }
    let prefix = uuid::Uuid::new_v4().simple().to_string();
    let first = TestHub::start_with(Backend::Postgres, |config| {
        assert!(use_redis(config, &prefix));
        config.auth.login_attempts_per_account = 2;
    })
    .await;
    assert!(first.hub.shared.is_redis());
    let second = Hub::build_with_clock((*first.hub.config).clone(), Arc::new(first.clock.clone())).await.unwrap();
    let alice = first.register("alice").await;
    let on_first = TestClient::new(first.hub.endpoint());
    let on_second = TestClient::new(second.endpoint());

    // Revoked on the second instance, refused on the first; the mark is in Redis.
    on_second
        .post("/api/v1/auth/logout")
        .header("authorization", alice.bearer())
        .send()
        .await
        .assert_status(StatusCode::NO_CONTENT);
    on_first
        .get("/api/v1/auth/me")
        .header("authorization", alice.bearer())
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    let claims: serde_json::Value = jsonwebtoken::dangerous::insecure_decode(&alice.access).unwrap().claims;
    let sid = claims["sid"].as_str().unwrap();
    let mut redis =
        redis::Client::open(redis_url().unwrap()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let marked: bool = redis::cmd("EXISTS")
        .arg(format!("thub-test:{prefix}:revoked:session:{sid}"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(marked, "the revocation mark is in Redis");

    // Failed logins counted across instances: one on each, then the account is locked on both.
    attempt(&on_first, "wrong-1").await.assert_status(StatusCode::UNAUTHORIZED);
    attempt(&on_second, "wrong-2").await.assert_status(StatusCode::UNAUTHORIZED);
    attempt(&on_first, PASSWORD).await.assert_status(StatusCode::TOO_MANY_REQUESTS);
}

async fn attempt<E: poem::Endpoint>(client: &TestClient<E>, password: &str) -> poem::test::TestResponse {
    client
        .post("/api/v1/auth/login")
        .content_type("application/x-www-form-urlencoded")
        .body(format!("username=alice&password={password}"))
        .send()
        .await
}
