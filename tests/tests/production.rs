//! Production behaviour of a real hub on real sockets: hostile clients cannot starve `/health`,
//! early answers close the connection cleanly, and clients behind a trusted proxy are told apart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use poem::http::StatusCode;
use thub_tests::{Backend, PASSWORD, TestHub};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn get_health(address: std::net::SocketAddr) -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await.unwrap().unwrap();
    assert!(response.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&response));
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_stays_fast_with_5000_idle_sockets_and_100_slowloris_clients() {
    // Both ends of every socket live in this process.
    let limit = thub_core::server::raise_open_file_limit();
    assert!(limit >= 10_600, "the test needs ~10 600 open files; the hard limit is {limit}");
    let hub = TestHub::start(Backend::Sqlite).await;
    let server = hub.serve().await;

    let mut idle = Vec::with_capacity(5_000);
    for _ in 0..5_000 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut slowloris = Vec::new();
    for _ in 0..100 {
        let stop = stop.clone();
        let address = server.addr;
        slowloris.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(address).await.unwrap();
            if stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await.is_err() {
                return;
            }
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if stream.write_all(b"X-Slow: 1\r\n").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }

    let mut times = Vec::new();
    for _ in 0..21 {
        times.push(get_health(server.addr).await);
    }
    times.sort();
    let median = times[times.len() / 2];
    eprintln!("GET /health with 5 000 idle and 100 slowloris sockets: median {median:?}, worst {:?}", times[20]);
    assert!(median < Duration::from_millis(50), "median {median:?}");

    // And the idle sockets are closed at the header deadline instead of being held forever.
    let mut probe = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(30), idle[0].read(&mut probe)).await;
    assert!(matches!(closed, Ok(Ok(0) | Err(_))), "an idle socket is closed by the server");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in slowloris {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_401_while_the_body_arrives_says_connection_close() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let server = hub.serve().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"POST /api/v1/endpoints HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"name\":",
        )
        .await
        .unwrap();
    let mut buffer = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await.unwrap().unwrap();
    let head = String::from_utf8_lossy(&buffer[..read]).to_lowercase();
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
}

async fn login_from(client: &reqwest::Client, url: &str, forwarded_for: &str, username: &str, password: &str) -> u16 {
    client
        .post(url)
        .header("x-forwarded-for", forwarded_for)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username={username}&password={password}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_registers_100_and_logs_in_200_times_while_10_failures_lock_an_account() {
    // Defaults: an office or CI runner behind one address is not a single bucket.
    let hub = TestHub::start(Backend::Sqlite).await;
    for index in 0..100 {
        hub.register(&format!("user{index}")).await;
    }
    let client = hub.client();
    for index in 0..200 {
        client
            .post("/api/v1/auth/login")
            .content_type("application/x-www-form-urlencoded")
            .body(format!("username=user{}&password={PASSWORD}", index % 100))
            .send()
            .await
            .assert_status_is_ok();
    }
    for _ in 0..10 {
        client
            .post("/api/v1/auth/login")
            .content_type("application/x-www-form-urlencoded")
            .body("username=user7&password=wrong-guess")
            .send()
            .await
            .assert_status(StatusCode::UNAUTHORIZED);
    }
    let locked = client
        .post("/api/v1/auth/login")
        .content_type("application/x-www-form-urlencoded")
        .body(format!("username=user7&password={PASSWORD}"))
        .send()
        .await;
    locked.assert_status(StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.0.headers().contains_key("retry-after"));
    // Only that account: the others still log in from the same address.
    client
        .post("/api/v1/auth/login")
        .content_type("application/x-www-form-urlencoded")
        .body(format!("username=user8&password={PASSWORD}"))
        .send()
        .await
        .assert_status_is_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_behind_a_trusted_proxy_are_limited_one_by_one() {
    let hub = TestHub::start_with(Backend::Sqlite, |config| {
        config.server.trusted_proxies = vec!["127.0.0.1/32".to_owned()];
        config.auth.failed_logins_per_address = 3;
    })
    .await;
    hub.register("alice").await;
    let server = hub.serve().await;
    let client = thub_tests::http_client();
    let url = server.url("/api/v1/auth/login");
    for attempt in 0..3 {
        let status = login_from(&client, &url, &format!("203.0.113.{attempt}, 198.51.100.1"), "nobody", "x").await;
        assert_eq!(status, 401);
    }
    // The right-most untrusted hop is the client: a forged left part does not escape the limit.
    assert_eq!(login_from(&client, &url, "203.0.113.99, 198.51.100.1", "alice", PASSWORD).await, 429);
    // Another client behind the same proxy is not affected.
    assert_eq!(login_from(&client, &url, "198.51.100.2", "alice", PASSWORD).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let hub = TestHub::start_with(Backend::Sqlite, |config| {
        config.auth.failed_logins_per_address = 3;
    })
    .await;
    hub.register("alice").await;
    let server = hub.serve().await;
    let client = thub_tests::http_client();
    let url = server.url("/api/v1/auth/login");
    for attempt in 0..3 {
        assert_eq!(login_from(&client, &url, &format!("203.0.113.{attempt}"), "nobody", "x").await, 401);
    }
    // A fresh forged address changes nothing: the socket's peer is the client.
    assert_eq!(login_from(&client, &url, "198.51.100.77", "alice", PASSWORD).await, 429);

    // Nor does X-Forwarded-Proto make the cookie Secure.
    let response = client.get(server.url("/logout")).header("x-forwarded-proto", "https").send().await.unwrap();
    let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(!cookie.contains("Secure"), "{cookie}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_at_a_trusted_proxy_makes_cookies_secure() {
    let hub = TestHub::start_with(Backend::Sqlite, |config| {
        config.server.trusted_proxies = vec!["127.0.0.0/8".to_owned()];
    })
    .await;
    let server = hub.serve().await;
    let client = thub_tests::http_client();
    let response = client.get(server.url("/logout")).header("x-forwarded-proto", "https").send().await.unwrap();
    let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("Secure"), "{cookie}");
    let response = client.get(server.url("/logout")).header("forwarded", "for=198.51.100.3;proto=https").send().await;
    let cookie = response.unwrap().headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_are_limited_per_session_not_per_address() {
    let hub = TestHub::start_with(Backend::Sqlite, |config| {
        config.auth.refreshes_per_session_per_minute = 2;
    })
    .await;
    let alice = hub.register("alice").await;
    let bob = hub.register("bob").await;
    let client = hub.client();
    let mut refresh = alice.refresh.clone();
    for _ in 0..2 {
        let response =
            client.post("/api/v1/auth/refresh").body_json(&serde_json::json!({"refresh_token": refresh})).send().await;
        response.assert_status_is_ok();
        let body: serde_json::Value = response.0.into_body().into_json().await.unwrap();
        refresh = body["refresh_token"].as_str().unwrap().to_owned();
    }
    let refused =
        client.post("/api/v1/auth/refresh").body_json(&serde_json::json!({"refresh_token": refresh})).send().await;
    refused.assert_status(StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.0.headers().contains_key("retry-after"));
    // Bob's session, same address, refreshes; and logins are untouched.
    client
        .post("/api/v1/auth/refresh")
        .body_json(&serde_json::json!({"refresh_token": bob.refresh}))
        .send()
        .await
        .assert_status_is_ok();
    hub.login("alice", PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_bearer_wins_over_a_stale_session_cookie() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let stale = hub.register("alice").await;
    let client = hub.client();
    client
        .post("/api/v1/auth/logout")
        .header("authorization", stale.bearer())
        .send()
        .await
        .assert_status(StatusCode::NO_CONTENT);
    let fresh = hub.login("alice", PASSWORD).await;
    let response = client
        .get("/api/v1/auth/me")
        .header("cookie", format!("session={}", stale.access))
        .header("authorization", fresh.bearer())
        .send()
        .await;
    response.assert_status_is_ok();
    // The cookie alone is still refused.
    client
        .get("/api/v1/auth/me")
        .header("cookie", format!("session={}", stale.access))
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_wal_is_bounded_and_truncated_when_writes_pause() {
    use sea_orm::ConnectionTrait;
    let hub = TestHub::start(Backend::Sqlite).await;
    let limit = hub
        .hub
        .db
        .query_one_raw(sea_orm::Statement::from_string(sea_orm::DbBackend::Sqlite, "PRAGMA journal_size_limit"))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    assert_eq!(limit as u64, thub_core::storage::WAL_SIZE_LIMIT);

    for index in 0..5 {
        hub.register(&format!("writer{index}")).await;
    }
    let wal = hub.dir.path().join("test.db-wal");
    assert!(std::fs::metadata(&wal).unwrap().len() > 0, "the writes are in the WAL");
    let url = hub.database.url.clone();
    thub_core::storage::spawn_wal_maintenance(&hub.hub.db, &url, Duration::from_millis(100));
    thub_tests::eventually("the WAL is truncated once writes pause", 10, async || {
        std::fs::metadata(&wal).map(|metadata| metadata.len()).unwrap_or(0) == 0
    })
    .await;
    // Still all there.
    hub.login("writer4", PASSWORD).await;
}
