//! Connection hygiene on real sockets: header and idle deadlines, the body read timeout, the
//! connection cap, `Connection: close` on early answers, and `TCP_NODELAY`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use poem::http::StatusCode;
use poem::{Body, Route, handler, post};
use thub_core::server::ConnectionLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[handler]
fn hello() -> &'static str {
    "hello"
}

#[handler]
async fn echo(body: Body) -> poem::Result<String> {
    Ok(body.into_string().await?)
}

#[handler]
fn chunked() -> Body {
    // Two writes, like a static file sent in chunks: the second waits for an ACK under Nagle.
    let chunks = futures_util::stream::iter(0..2).then(|index| async move {
        tokio::task::yield_now().await;
        Ok::<_, std::io::Error>(vec![b'a' + index as u8; 2048])
    });
    Body::from_bytes_stream(chunks)
}

#[handler]
fn refuse() -> StatusCode {
    // Answers without reading the body, like an authentication check that fails first.
    StatusCode::UNAUTHORIZED
}

struct Served {
    address: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve(limits: ConnectionLimits) -> Served {
    let listener = thub_core::server::bind("127.0.0.1", 0).await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = thub_core::http::observe(
        Route::new().at("/hello", hello).at("/echo", post(echo)).at("/refuse", post(refuse)).at("/stream", chunked),
        Default::default(),
    );
    tokio::spawn(thub_core::server::serve(
        app,
        listener,
        None,
        limits,
        async {
            let _ = stopped.await;
        },
        Duration::from_secs(1),
    ));
    Served { address, _stop: stop }
}

fn limits(header_read: u64, keep_alive: u64, body_read: u64, max_connections: usize) -> ConnectionLimits {
    ConnectionLimits {
        header_read: Duration::from_secs(header_read),
        keep_alive: Duration::from_secs(keep_alive),
        body_read: Duration::from_secs(body_read),
        max_connections,
    }
}

/// Reads until the server closes the socket (or `within` passes: then panics).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut received = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut received))
        .await
        .expect("the server closes the connection in time")
        .ok();
    received
}

/// Sends a request and reads one response head (and a short body) on a kept-alive socket.
async fn exchange(stream: &mut TcpStream, request: &str) -> String {
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buffer = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await.unwrap().unwrap();
    String::from_utf8_lossy(&buffer[..read]).into_owned()
}

#[tokio::test]
async fn a_socket_that_sends_nothing_is_closed_at_the_header_deadline() {
    let served = serve(limits(1, 30, 30, 100)).await;
    let mut idle = TcpStream::connect(served.address).await.unwrap();
    let received = closed_within(&mut idle, Duration::from_secs(5)).await;
    assert!(received.is_empty(), "closed without an answer");
}

#[tokio::test]
async fn a_slowloris_client_is_closed_at_the_header_deadline() {
    let served = serve(limits(1, 30, 30, 100)).await;
    let mut slow = TcpStream::connect(served.address).await.unwrap();
    slow.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = std::time::Instant::now();
    // One header byte every 100 ms keeps a naive server waiting forever.
    let closed = async {
        loop {
            if slow.write_all(b"X").await.is_err() {
                return;
            }
            let mut probe = [0u8; 1];
            let read = tokio::time::timeout(Duration::from_millis(100), slow.read(&mut probe)).await;
            if let Ok(Ok(0) | Err(_)) = read {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), closed).await.expect("the slowloris client is cut off");
    assert!(started.elapsed() >= Duration::from_millis(900), "not before the deadline");
}

#[tokio::test]
async fn a_kept_alive_connection_serves_again_then_closes_when_idle() {
    let served = serve(limits(1, 2, 30, 100)).await;
    let mut stream = TcpStream::connect(served.address).await.unwrap();
    let request = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    assert!(exchange(&mut stream, request).await.starts_with("HTTP/1.1 200"));
    assert!(exchange(&mut stream, request).await.starts_with("HTTP/1.1 200"), "keep-alive works");
    closed_within(&mut stream, Duration::from_secs(6)).await;
}

#[tokio::test]
async fn a_stalled_body_fails_with_408_and_the_connection_closes() {
    let served = serve(limits(5, 30, 1, 100)).await;
    let mut stream = TcpStream::connect(served.address).await.unwrap();
    stream.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b").await.unwrap();
    let received = String::from_utf8(closed_within(&mut stream, Duration::from_secs(5)).await).unwrap();
    assert!(received.starts_with("HTTP/1.1 408"), "{received}");
    assert!(received.to_lowercase().contains("connection: close"), "{received}");
}

#[tokio::test]
async fn an_answer_before_the_body_arrived_says_connection_close() {
    let served = serve(limits(5, 30, 30, 100)).await;
    let mut stream = TcpStream::connect(served.address).await.unwrap();
    let head = exchange(&mut stream, "POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nstart").await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(head.to_lowercase().contains("connection: close"), "keep-alive clients must not reuse it: {head}");

    // A body read to the end keeps the connection open for the next request.
    let mut stream = TcpStream::connect(served.address).await.unwrap();
    let head = exchange(&mut stream, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi").await;
    assert!(head.starts_with("HTTP/1.1 200") && !head.to_lowercase().contains("connection: close"), "{head}");
    let head = exchange(&mut stream, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

#[tokio::test]
async fn past_the_connection_cap_clients_wait_for_a_free_slot() {
    let served = serve(limits(30, 30, 30, 2)).await;
    let mut first = TcpStream::connect(served.address).await.unwrap();
    let request = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    assert!(exchange(&mut first, request).await.starts_with("HTTP/1.1 200"));
    let _second = TcpStream::connect(served.address).await.unwrap();
    let mut third = TcpStream::connect(served.address).await.unwrap();
    third.write_all(request.as_bytes()).await.unwrap();
    let mut buffer = vec![0u8; 1024];
    // Both slots are taken: the third client sits in the backlog, unanswered.
    let early = tokio::time::timeout(Duration::from_millis(300), third.read(&mut buffer)).await;
    assert!(early.is_err(), "no answer while the cap is reached");
    drop(first);
    let read = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buffer)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&buffer[..read]).starts_with("HTTP/1.1 200"), "served once a slot frees");
}

#[tokio::test]
async fn accepted_sockets_have_tcp_nodelay() {
    // Without TCP_NODELAY a small response written in two parts waits ~40 ms for the client's
    // delayed ACK. Measured as the median of sequential requests on one connection.
    let served = serve(limits(5, 30, 30, 100)).await;
    let mut stream = TcpStream::connect(served.address).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut times = Vec::new();
    for _ in 0..11 {
        let started = std::time::Instant::now();
        stream.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut received = Vec::new();
        let mut buffer = vec![0u8; 8192];
        // Chunked: the response ends with the zero-length chunk.
        while !received.ends_with(b"0\r\n\r\n") {
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await.unwrap().unwrap();
            assert!(read > 0, "closed early");
            received.extend_from_slice(&buffer[..read]);
        }
        times.push(started.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    assert!(median < Duration::from_millis(30), "median round trip {median:?}");
}
