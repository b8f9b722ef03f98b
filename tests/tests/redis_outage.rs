//! Redis is a cache and a meeting point, never the truth: a flushed or restarted Redis never
//! revives a revoked token, an outage degrades instead of failing requests, channel fan-out
//! across instances resumes by itself, and instances starting together make one signing key.
//! Each test runs its own `redis-server` so it can kill and restart it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use poem::http::StatusCode;
use poem::test::TestClient;
use sea_orm::{ConnectionTrait, Statement};
use thub_core::Hub;
use thub_tests::{Backend, PASSWORD, RedisServer, TestHub, eventually, on_every_backend};
use tokio_tungstenite::tungstenite::Message;

async fn own_redis() -> Option<RedisServer> {
    let server = RedisServer::start().await;
    if server.is_none() {
        eprintln!("skipped: redis-server is not installed");
    }
    server
}

async fn hub_on(redis: &RedisServer, backend: Backend) -> TestHub {
    let url = redis.url();
    TestHub::start_at_now_with(backend, move |config| {
        config.redis.url = thub_core::config::Secret::new(url);
    })
    .await
}

async fn sibling(first: &TestHub) -> Hub {
    Hub::build_with_clock((*first.hub.config).clone(), Arc::new(first.clock.clone())).await.unwrap()
}

async fn me<E: poem::Endpoint>(client: &TestClient<E>, bearer: &str) -> StatusCode {
    client.get("/api/v1/auth/me").header("authorization", bearer).send().await.0.status()
}

on_every_backend!(a_revoked_token_stays_revoked_when_redis_is_flushed);

async fn a_revoked_token_stays_revoked_when_redis_is_flushed(backend: Backend) {
    let Some(mut redis) = own_redis().await else { return };
    let first = hub_on(&redis, backend).await;
    let alice = first.register("alice").await;
    let on_first = first.client();
    on_first
        .post("/api/v1/auth/logout")
        .header("authorization", alice.bearer())
        .send()
        .await
        .assert_status(StatusCode::NO_CONTENT);

    // Redis restarts empty; an instance that never saw the logout is asked.
    assert!(redis.restart().await);
    let second = sibling(&first).await;
    let on_second = TestClient::new(second.endpoint());
    assert_eq!(me(&on_second, &alice.bearer()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&on_first, &alice.bearer()).await, StatusCode::UNAUTHORIZED);
}

on_every_backend!(a_redis_outage_degrades_and_recovers_by_itself);

async fn a_redis_outage_degrades_and_recovers_by_itself(backend: Backend) {
    let Some(mut redis) = own_redis().await else { return };
    let first = hub_on(&redis, backend).await;
    let second = sibling(&first).await;
    let alice = first.register("alice").await;
    let bob = first.register("bob").await;
    let (on_first, on_second) = (first.client(), TestClient::new(second.endpoint()));

    redis.kill();
    // Authenticated requests are answered (never a 500) while Redis is away.
    assert_eq!(me(&on_first, &alice.bearer()).await, StatusCode::OK);
    assert_eq!(me(&on_second, &bob.bearer()).await, StatusCode::OK);
    let login = on_second
        .post("/api/v1/auth/login")
        .content_type("application/x-www-form-urlencoded")
        .body(format!("username=alice&password={PASSWORD}"))
        .send()
        .await;
    login.assert_status_is_ok();
    // A logout during the outage holds on the other instance: the database decides.
    on_first
        .post("/api/v1/auth/logout")
        .header("authorization", alice.bearer())
        .send()
        .await
        .assert_status(StatusCode::NO_CONTENT);
    assert_eq!(me(&on_second, &alice.bearer()).await, StatusCode::UNAUTHORIZED);

    assert!(redis.restart().await);
    // Back by itself: shared counters reach Redis again.
    let mut probe = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let mut polls = 0;
    eventually("rate-limit counters are shared through Redis again", 10, async || {
        polls += 1;
        if paced(polls) {
            failed_login(&on_second, polls).await;
        }
        counters_in(&mut probe).await > 0
    })
    .await;
    assert_eq!(me(&on_first, &bob.bearer()).await, StatusCode::OK);
    assert_eq!(me(&on_second, &alice.bearer()).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_fan_out_resumes_after_redis_restarts() {
    let Some(mut redis) = own_redis().await else { return };
    let first = hub_on(&redis, Backend::Sqlite).await;
    let second = sibling(&first).await;
    let alice = first.register("alice").await;
    let bob = first.register("bob").await;
    let limits = thub_core::server::ConnectionLimits::default();
    let server_one = first.serve().await;
    let server_two = thub_tests::TestServer::start_with_limits(second.endpoint(), limits).await;
    let connect = |address: std::net::SocketAddr, token: String| async move {
        let url = format!("ws://{address}/channel/room?token={token}");
        tokio_tungstenite::connect_async(url).await.expect("connected").0
    };
    let mut sender = connect(server_one.addr, alice.access.clone()).await;
    let mut receiver = connect(server_two.addr, bob.access.clone()).await;

    redis.kill();
    assert!(redis.restart().await);
    // Publish until a message crosses instances again (the subscription reconnects by itself).
    let mut delivered = false;
    for attempt in 0..100 {
        sender.send(Message::text(format!("after restart {attempt}"))).await.unwrap();
        if let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout(Duration::from_millis(100), receiver.next()).await
        {
            assert!(text.starts_with("after restart"));
            delivered = true;
            break;
        }
    }
    assert!(delivered, "fan-out across instances resumed without a restart");
}

on_every_backend!(instances_starting_together_make_one_signing_key);

async fn instances_starting_together_make_one_signing_key(backend: Backend) {
    let first = TestHub::start(backend).await;
    // Empty the keys the first hub made, then start three instances at once.
    first.hub.db.execute_unprepared("DELETE FROM signing_keys").await.unwrap();
    first.hub.db.execute_unprepared("DELETE FROM settings WHERE key LIKE 'idp.%'").await.unwrap();
    let config = (*first.hub.config).clone();
    let clock = Arc::new(first.clock.clone());
    let builds = (0..3).map(|_| Hub::build_with_clock(config.clone(), clock.clone()));
    let hubs = futures_util::future::join_all(builds).await;
    for hub in &hubs {
        assert!(hub.is_ok(), "every instance starts");
    }
    let backend = first.hub.db.get_database_backend();
    let row = first
        .hub
        .db
        .query_one_raw(Statement::from_string(backend, "SELECT COUNT(*) AS n FROM signing_keys"))
        .await
        .unwrap()
        .unwrap();
    let count: i64 = row.try_get("", "n").unwrap();
    assert_eq!(count, 1, "one signing key for instances that started together");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_started_during_an_outage_joins_when_redis_returns() {
    let Some(mut redis) = own_redis().await else { return };
    let url = redis.url();
    redis.kill();
    let hub = TestHub::start_at_now_with(Backend::Sqlite, move |config| {
        config.redis.url = thub_core::config::Secret::new(url);
    })
    .await;
    let alice = hub.register("alice").await;
    assert_eq!(me(&hub.client(), &alice.bearer()).await, StatusCode::OK, "serves on its own state");
    // Still ready for the balancer, and says why it is degraded.
    let ready = hub.client().get("/ready").send().await;
    ready.assert_status_is_ok();
    let body: serde_json::Value = ready.0.into_body().into_json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["redis"], "unreachable");

    assert!(redis.restart().await);
    let mut probe = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let client = hub.client();
    let mut polls = 0;
    eventually("shared state reaches Redis once it answers", 10, async || {
        polls += 1;
        if paced(polls) {
            failed_login(&client, polls).await;
        }
        counters_in(&mut probe).await > 0
    })
    .await;
}

/// Whether this poll of `eventually` (every 20 ms) sends a failed login: every fifth, one each
/// 100 ms, enough to see Redis come back after its 2 s rest and few enough to stay under the
/// limit of failed logins per address (a 429 counts nothing).
fn paced(poll: u32) -> bool {
    poll % 5 == 1
}

/// A failed login as an unknown user (a rate-limit counter goes up).
async fn failed_login<E: poem::Endpoint>(client: &poem::test::TestClient<E>, attempt: u32) {
    client
        .post("/api/v1/auth/login")
        .content_type("application/x-www-form-urlencoded")
        .body(format!("username=ghost{attempt}&password=wrong-one"))
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
}

/// How many rate-limit counters Redis holds.
async fn counters_in(probe: &mut redis::aio::MultiplexedConnection) -> usize {
    let keys: Vec<String> = redis::cmd("KEYS").arg("*limit:*").query_async(probe).await.unwrap();
    keys.len()
}
