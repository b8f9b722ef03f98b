//! WebSocket channels on real sockets: relay to everyone but the sender, binary frames, isolation,
//! authentication and Origin checks, size limits, bursts and slow consumers at the default send
//! budget, counts, presence, and fan-out across two instances through Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use thub_tests::{Backend, Session, TestHub, TestServer, eventually, redis_url, use_redis};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &TestServer, channel: &str, session: &Session) -> Socket {
    let url = format!("ws://{}/channel/{channel}?token={}", server.addr, session.access);
    tokio_tungstenite::connect_async(url).await.expect("connected").0
}

async fn next_data(socket: &mut Socket) -> Message {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a message in time")
            .unwrap()
            .unwrap();
        if matches!(message, Message::Text(_) | Message::Binary(_) | Message::Close(_)) {
            return message;
        }
    }
}

async fn silent(socket: &mut Socket) -> bool {
    match tokio::time::timeout(Duration::from_millis(300), socket.next()).await {
        Err(_) => true,
        Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => true,
        Ok(_) => false,
    }
}

async fn counts(hub: &TestHub, session: &Session) -> serde_json::Value {
    hub.get_json(Some(session), "/api/v1/channels").await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_relay_text_and_binary() {
    let hub = TestHub::start_now(Backend::Sqlite).await;
    let server = hub.serve().await;
    let (alice, bob, carol) = (hub.register("alice").await, hub.register("bob").await, hub.register("carol").await);
    let mut a = connect(&server, "chat", &alice).await;
    let mut b = connect(&server, "chat", &bob).await;
    let mut c = connect(&server, "chat", &carol).await;
    let mut other = connect(&server, "notifications", &carol).await;
    eventually("the counts", 5, async || {
        counts(&hub, &alice).await
            == serde_json::json!([{"name": "chat", "connections": 3}, {"name": "notifications", "connections": 1}])
    })
    .await;

    a.send(Message::text("hello from alice")).await.unwrap();
    assert_eq!(next_data(&mut b).await, Message::text("hello from alice"));
    assert_eq!(next_data(&mut c).await, Message::text("hello from alice"));
    assert!(silent(&mut a).await, "the sender does not get its own message");
    assert!(silent(&mut other).await, "other channels are isolated");

    b.send(Message::binary(vec![0u8, 159, 146, 150])).await.unwrap();
    assert_eq!(next_data(&mut a).await, Message::binary(vec![0u8, 159, 146, 150]));
    assert_eq!(next_data(&mut c).await, Message::binary(vec![0u8, 159, 146, 150]));
    c.send(Message::text("")).await.unwrap();
    assert_eq!(next_data(&mut a).await, Message::text(""));

    // Leaving is counted; the last one out closes the channel.
    a.close(None).await.unwrap();
    eventually("two connections counted", 5, async || counts(&hub, &bob).await[0]["connections"] == 2).await;
    b.send(Message::text("still here")).await.unwrap();
    assert_eq!(next_data(&mut c).await, Message::text("still here"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_logged_in_same_origin_clients_connect() {
    let hub = TestHub::start_now(Backend::Sqlite).await;
    let server = hub.serve().await;
    let alice = hub.register("alice").await;
    let refused = |result: Result<_, WsError>| match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => 101,
    };
    let base = format!("ws://{}/channel/room", server.addr);
    assert_eq!(refused(tokio_tungstenite::connect_async(base.clone()).await), 401);
    assert_eq!(refused(tokio_tungstenite::connect_async(format!("{base}?token=invalid")).await), 401);
    // The session cookie works, as in Tufts Hub.
    let mut request = base.clone().into_client_request().unwrap();
    request.headers_mut().insert("cookie", format!("session={}", alice.access).parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket.close(None).await.unwrap();
    // A page on another origin cannot open a socket with the user's cookie.
    let mut request = base.clone().into_client_request().unwrap();
    request.headers_mut().insert("cookie", format!("session={}", alice.access).parse().unwrap());
    request.headers_mut().insert("origin", "https://evil.example".parse().unwrap());
    assert_eq!(refused(tokio_tungstenite::connect_async(request).await), 403);
    // A revoked session is refused too.
    hub.client().post("/api/v1/auth/logout").header("authorization", alice.bearer()).send().await;
    assert_eq!(refused(tokio_tungstenite::connect_async(format!("{base}?token={}", alice.access)).await), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames_and_slow_consumers_do_not_hurt_the_others() {
    let hub = TestHub::start_at_now_with(Backend::Sqlite, |config| {
        config.plugins.set_key("channels", "max_message_bytes", serde_json::json!(1024));
        config.plugins.set_key("channels", "send_queue_bytes", serde_json::json!(64 * 1024));
    })
    .await;
    let server = hub.serve().await;
    let (alice, bob, carol) = (hub.register("alice").await, hub.register("bob").await, hub.register("carol").await);
    let mut a = connect(&server, "room", &alice).await;
    let mut b = connect(&server, "room", &bob).await;

    // Too big: the sender is closed with 1009; nobody gets the frame; the server goes on.
    a.send(Message::text("x".repeat(4096))).await.unwrap();
    match next_data(&mut a).await {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1009),
        other => panic!("expected a 1009 close, got {other:?}"),
    }
    assert!(silent(&mut b).await);
    let mut a = connect(&server, "room", &alice).await;

    // Carol stops reading; Alice floods while Bob reads along, never more than 16 frames
    // behind. Carol is dropped instead of stalling them once her outbox passes its budget,
    // which happens after the kernel's buffers for her socket are full: on loopback they grow
    // to megabytes, so Alice goes on until Carol is gone (at most 20 MB). Bob gets everything
    // in order.
    let _carol_not_reading = connect(&server, "room", &carol).await;
    let window = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
    let read_window = window.clone();
    let bob_reads = tokio::spawn(async move {
        let mut index = 0usize;
        loop {
            let received = next_data(&mut b).await;
            if matches!(received, Message::Text(ref text) if text.as_str() == "end") {
                return index;
            }
            assert!(
                matches!(received, Message::Text(ref text) if text.starts_with(&format!("{index:05}"))),
                "bob got message {index}: {received:?}"
            );
            index += 1;
            read_window.add_permits(1);
        }
    });
    let payload = "y".repeat(1000);
    let mut sent = 0usize;
    let mut carol_dropped = false;
    while !carol_dropped && sent < 20_000 {
        for _ in 0..500 {
            window.acquire().await.unwrap().forget();
            a.send(Message::text(format!("{sent:05}{}", &payload[5..]))).await.unwrap();
            sent += 1;
        }
        carol_dropped = counts(&hub, &alice).await[0]["connections"] == 2;
    }
    a.send(Message::text("end")).await.unwrap();
    let read = tokio::time::timeout(Duration::from_secs(60), bob_reads).await.expect("bob kept up").unwrap();
    assert_eq!(read, sent, "bob got every frame");
    assert!(carol_dropped, "carol, who never read, was closed after {sent} frames of 1 000 B");
    hub.client().get("/health").send().await.assert_status_is_ok();
}

/// A member socket whose kernel receive buffer is as small as the system allows, so a client
/// that stops reading pushes back on the hub at once instead of after megabytes of kernel buffers.
async fn connect_with_small_receive_buffer(server: &TestServer, channel: &str, session: &Session) -> Socket {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let url = format!("ws://{}/channel/{channel}?token={}", server.addr, session.access);
    tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)).await.expect("connected").0
}

/// Reads `expected` text frames, checking they come in order (`{index:04}` prefixes).
async fn read_in_order(mut socket: Socket, expected: usize) -> Socket {
    for index in 0..expected {
        let received = next_data(&mut socket).await;
        assert!(
            matches!(received, Message::Text(ref text) if text.starts_with(&format!("{index:04}"))),
            "message {index} in order: {received:?}"
        );
    }
    socket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_small_frames_reaches_every_subscriber_at_the_defaults() {
    // The case was 500 subscribers; 40 keep a debug build quick, and each still gets
    // the whole burst (the budget is per member, so the count does not change what each sees).
    let hub = TestHub::start_now(Backend::Sqlite).await;
    let server = hub.serve().await;
    let (alice, bob) = (hub.register("alice").await, hub.register("bob").await);
    let subscribers = 40;
    let frames = 1000;
    let mut readers = Vec::new();
    for _ in 0..subscribers {
        let socket = connect(&server, "burst", &bob).await;
        readers.push(tokio::spawn(read_in_order(socket, frames)));
    }
    let mut publisher = connect(&server, "burst", &alice).await;
    eventually("every subscriber joined", 5, async || counts(&hub, &alice).await[0]["connections"] == subscribers + 1)
        .await;
    // 1 000 frames of 100 bytes, back to back, without waiting for anyone.
    for index in 0..frames {
        publisher.feed(Message::text(format!("{index:04}{}", "b".repeat(96)))).await.unwrap();
    }
    publisher.flush().await.unwrap();
    let mut sockets = Vec::new();
    for reader in readers {
        sockets.push(reader.await.expect("every frame, in order"));
    }
    assert_eq!(counts(&hub, &alice).await[0]["connections"], subscribers + 1, "nobody was dropped as slow");
    for socket in &mut sockets {
        assert!(silent(socket).await, "nothing more");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_stops_reading_is_closed_with_1013_and_the_others_get_everything() {
    let hub = TestHub::start_now(Backend::Sqlite).await;
    let server = hub.serve().await;
    let (alice, bob, carol) = (hub.register("alice").await, hub.register("bob").await, hub.register("carol").await);
    let mut publisher = connect(&server, "flood", &alice).await;
    let reader = connect(&server, "flood", &bob).await;
    let mut stalled = connect_with_small_receive_buffer(&server, "flood", &carol).await;
    eventually("three members", 5, async || counts(&hub, &alice).await[0]["connections"] == 3).await;

    // 10 MB in frames of 1 000 bytes. Bob reads along, never more than 64 frames behind (a
    // client that keeps up); Carol reads nothing until the burst is over.
    let total = 10_000;
    let window = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let read_window = window.clone();
    let bob_reads = tokio::spawn(async move {
        let mut socket = reader;
        for index in 0..total {
            let received = next_data(&mut socket).await;
            assert!(
                matches!(received, Message::Text(ref text) if text.starts_with(&format!("{index:05}"))),
                "bob got message {index}: {received:?}"
            );
            read_window.add_permits(1);
        }
        socket
    });
    let payload = "z".repeat(1000);
    for index in 0..total {
        window.acquire().await.unwrap().forget();
        publisher.send(Message::text(format!("{index:05}{}", &payload[5..]))).await.unwrap();
    }
    let _bob = tokio::time::timeout(Duration::from_secs(120), bob_reads).await.expect("bob kept up").unwrap();
    eventually("carol dropped, alice and bob still there", 5, async || {
        counts(&hub, &alice).await[0]["connections"] == 2
    })
    .await;

    // Carol reads now: what was already on its way, then the close frame with 1013.
    let mut delivered = 0;
    let code = loop {
        match next_data(&mut stalled).await {
            Message::Text(_) => delivered += 1,
            Message::Close(frame) => break frame.map(|frame| u16::from(frame.code)),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(code, Some(1013), "closed as too slow (try again later)");
    assert!(delivered < total, "carol was cut off, not fed the whole burst: {delivered} frames");
    hub.client().get("/health").send().await.assert_status_is_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_frames_when_enabled() {
    let hub = TestHub::start_at_now_with(Backend::Sqlite, |config| {
        config.plugins.set_key("channels", "presence", serde_json::json!(true))
    })
    .await;
    let server = hub.serve().await;
    let (alice, bob) = (hub.register("alice").await, hub.register("bob").await);
    let mut a = connect(&server, "room", &alice).await;
    let b = connect(&server, "room", &bob).await;
    let joined: serde_json::Value = match next_data(&mut a).await {
        Message::Text(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(joined, serde_json::json!({"type": "presence", "event": "join", "user": "bob", "channel": "room"}));
    drop(b);
    let left: serde_json::Value = match next_data(&mut a).await {
        Message::Text(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(left["event"], "leave");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_cross_instances_through_redis() {
    if redis_url().is_none() {
        eprintln!("skipped: TEST_REDIS_URL not set");
        return;
    }
    let prefix = uuid::Uuid::new_v4().simple().to_string();
    let first = TestHub::start_at_now_with(Backend::Sqlite, |config| assert!(use_redis(config, &prefix))).await;
    // A second instance on the same database and Redis.
    let second =
        thub_core::Hub::build_with_clock((*first.hub.config).clone(), std::sync::Arc::new(first.clock.clone()))
            .await
            .unwrap();
    let server_one = first.serve().await;
    let server_two = TestServer::start(second.endpoint()).await;
    let (alice, bob, carol) =
        (first.register("alice").await, first.register("bob").await, first.register("carol").await);
    let mut a = connect(&server_one, "shared", &alice).await;
    let mut b = connect(&server_two, "shared", &bob).await;
    let mut c = connect(&server_two, "shared", &carol).await;
    a.send(Message::text("across")).await.unwrap();
    assert_eq!(next_data(&mut b).await, Message::text("across"));
    assert_eq!(next_data(&mut c).await, Message::text("across"));
    assert!(silent(&mut a).await, "not echoed to the sender through Redis");
    b.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(next_data(&mut a).await, Message::binary(vec![1u8, 2, 3]));
    assert_eq!(next_data(&mut c).await, Message::binary(vec![1u8, 2, 3]));
    assert!(silent(&mut b).await);
}
