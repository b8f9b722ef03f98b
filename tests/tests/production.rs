//! Production behaviour of a real hub on real sockets: hostile clients cannot starve `/health`,
//! early answers close the connection cleanly, and clients behind a trusted proxy are told apart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use thub_tests::{Backend, TestHub};
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
