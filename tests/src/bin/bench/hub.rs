//! The PyScript hub: static files, the proxy, channel fan-out.

use std::time::Duration;

use thub_tests::bench::{Measurement, TABLE_HEADER, get, measure, requests};
use thub_tests::{Backend, TestHub};

use crate::Options;

/// The PyScript hub: static files, the proxy against a direct call, and channel fan-out to
/// 1 000 subscribers.
pub(crate) async fn run(options: &Options) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let upstream = thub_tests::TestServer::start(poem::EndpointExt::map_to_response(
        poem::Route::new().at("/v1/data", poem::endpoint::make_sync(|_| "{\"temperature\": 21.5}")),
    ))
    .await;
    let base = upstream.url("/v1");
    let hub = TestHub::start_at_now_with(Backend::Sqlite, move |config| {
        let apis = serde_json::json!({"weather": {"base_url": base, "timeout_seconds": 10}});
        config.plugins.set_key("proxy", "apis", apis);
    })
    .await;
    std::fs::write(hub.dir.path().join("app.js"), "x".repeat(4096)).unwrap();
    let viewer = hub.register("viewer").await;
    let server = hub.serve().await;
    let client = thub_tests::http_client();
    let duration = Duration::from_secs(options.seconds);
    let concurrency = options.concurrency;
    let signed_in = |url: String| {
        let bearer = viewer.bearer();
        requests(&client, move |http| http.get(&url).header("authorization", &bearer))
    };
    let mut results: Vec<Measurement> = Vec::new();
    results.push(measure("GET /health (baseline)", concurrency, duration, get(&client, server.url("/health"))).await);
    results.push(
        measure("GET /app.js (4 KiB static file, logged in)", concurrency, duration, signed_in(server.url("/app.js")))
            .await,
    );
    results.push(
        measure("GET upstream /v1/data directly", concurrency, duration, get(&client, upstream.url("/v1/data"))).await,
    );
    results.push(
        measure("GET /proxy/weather/data", concurrency, duration, signed_in(server.url("/proxy/weather/data"))).await,
    );
    println!("\n## hub ({} s per scenario, {} concurrent clients)\n", options.seconds, concurrency);
    println!("{TABLE_HEADER}");
    let baseline = results[0].clone();
    for result in &results {
        println!("{}", result.row(Some(&baseline)));
    }
    let (direct, proxied) = (&results[2], &results[3]);
    println!(
        "\nproxy overhead: p50 {:.2} ms → {:.2} ms (+{:.2} ms), p99 {:.2} ms → {:.2} ms (+{:.2} ms)",
        direct.p50.as_secs_f64() * 1000.0,
        proxied.p50.as_secs_f64() * 1000.0,
        (proxied.p50.as_secs_f64() - direct.p50.as_secs_f64()) * 1000.0,
        direct.p99.as_secs_f64() * 1000.0,
        proxied.p99.as_secs_f64() * 1000.0,
        (proxied.p99.as_secs_f64() - direct.p99.as_secs_f64()) * 1000.0,
    );

    // Channels: 1 000 subscribers, one publisher; each message carries its send time.
    let subscribers = 1000;
    let messages = 200u64;
    let url = format!("ws://{}/channel/bench?token={}", server.addr, viewer.access);
    let started = std::time::Instant::now();
    let mut readers = Vec::new();
    let (latencies_sender, mut latencies) = tokio::sync::mpsc::unbounded_channel::<Duration>();
    for _ in 0..subscribers {
        let (socket, _) = tokio_tungstenite::connect_async(url.clone()).await.expect("subscriber connects");
        let (_, mut stream) = socket.split();
        let sender = latencies_sender.clone();
        let origin = started;
        readers.push(tokio::spawn(async move {
            let mut received = 0;
            while received < messages {
                match stream.next().await {
                    Some(Ok(Message::Text(text))) => {
                        let sent: f64 = text.parse().unwrap_or_default();
                        let _ = sender.send(origin.elapsed().saturating_sub(Duration::from_secs_f64(sent)));
                        received += 1;
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                }
            }
            received
        }));
    }
    drop(latencies_sender);
    let (publisher, _) = tokio_tungstenite::connect_async(url).await.expect("publisher connects");
    let (mut publisher, _) = publisher.split();
    let fan_out = std::time::Instant::now();
    for _ in 0..messages {
        publisher.send(Message::text(started.elapsed().as_secs_f64().to_string())).await.unwrap();
        // About 100 messages a second: a busy chat, not a flood.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut delivered = 0;
    for reader in readers {
        delivered += reader.await.unwrap_or(0);
    }
    let elapsed = fan_out.elapsed().as_secs_f64();
    let mut all: Vec<Duration> = Vec::new();
    while let Ok(latency) = latencies.try_recv() {
        all.push(latency);
    }
    all.sort();
    let percentile = |fraction: f64| {
        all.get(((all.len() as f64 * fraction) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or_default()
    };
    println!(
        "\nchannels: {subscribers} subscribers, {messages} messages: {delivered} deliveries in {elapsed:.2} s = {:.0} deliveries/s; latency p50 {:.2} ms, p99 {:.2} ms",
        delivered as f64 / elapsed,
        percentile(0.5).as_secs_f64() * 1000.0,
        percentile(0.99).as_secs_f64() * 1000.0,
    );
}
