//! `bench`: throughput and latency of thub's hot paths, with ratios to a trivial route measured
//! in the same run (this machine is shared and noisy).
//!
//! ```sh
//! cargo run --release -p thub-tests --bin bench -- [accounts] [registry] [hub] [wasm] [--seconds 5] [--concurrency 16]
//! ```
//!
//! The `wasm` suite loads the example plugins from `examples/wasm/dist`; build them first:
//!
//! ```sh
//! scripts/build-wasm-examples
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use thub_tests::bench::{Measurement, TABLE_HEADER, get, measure, requests};
use thub_tests::{Backend, PASSWORD, TestHub};

struct Options {
    suites: Vec<String>,
    seconds: u64,
    concurrency: usize,
}

fn options() -> Options {
    let mut options = Options { suites: Vec::new(), seconds: 5, concurrency: 16 };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => options.seconds = args.next().and_then(|value| value.parse().ok()).expect("--seconds N"),
            "--concurrency" => {
                options.concurrency = args.next().and_then(|value| value.parse().ok()).expect("--concurrency N")
            }
            suite => options.suites.push(suite.to_owned()),
        }
    }
    if options.suites.is_empty() {
        options.suites = vec!["accounts".to_owned()];
    }
    options
}

#[tokio::main]
async fn main() {
    let options = options();
    for suite in &options.suites {
        match suite.as_str() {
            "accounts" => accounts(&options).await,
            "registry" => registry(&options).await,
            "hub" => pyscript_hub(&options).await,
            "wasm" => wasm(&options).await,
            other => panic!("unknown suite {other}; known: accounts, registry, hub, wasm"),
        }
    }
}

async fn accounts(options: &Options) {
    let hub = TestHub::start_now(Backend::Sqlite).await;
    let alice = hub.register("alice").await;
    let service = hub.register("weather-svc").await;
    let server = hub.serve().await;
    let client = thub_tests::http_client();
    let duration = Duration::from_secs(options.seconds);
    let concurrency = options.concurrency;

    let mut results: Vec<Measurement> = Vec::new();
    results.push(measure("GET /health (baseline)", concurrency, duration, get(&client, server.url("/health"))).await);
    results.push(
        measure(
            "GET /.well-known/jwks.json",
            concurrency,
            duration,
            get(&client, server.url("/.well-known/jwks.json")),
        )
        .await,
    );
    let (url, bearer) = (server.url("/api/v1/auth/me"), alice.bearer());
    results.push(
        measure(
            "GET /api/v1/auth/me (session check)",
            concurrency,
            duration,
            requests(&client, move |http| http.get(&url).header("authorization", &bearer)),
        )
        .await,
    );
    let (url, bearer) = (server.url("/api/v1/token?aud=weather-svc"), alice.bearer());
    results.push(
        measure(
            "GET /api/v1/token (RS256 mint)",
            concurrency,
            duration,
            requests(&client, move |http| http.get(&url).header("authorization", &bearer)),
        )
        .await,
    );

    let token: serde_json::Value = client
        .get(server.url("/api/v1/token?aud=weather-svc"))
        .header("authorization", alice.bearer())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let body = serde_json::json!({"token": token["target_token"]}).to_string();
    let (url, bearer) = (server.url("/api/v1/verify"), service.bearer());
    results.push(
        measure(
            "POST /api/v1/verify",
            concurrency,
            duration,
            requests(&client, move |http| {
                http.post(&url)
                    .header("authorization", &bearer)
                    .header("content-type", "application/json")
                    .body(body.clone())
            }),
        )
        .await,
    );

    // Logins are bounded by argon2id (19 MiB, t=2) and the per-address limit; lift the limit
    // for the benchmark by using a hub configured without it.
    drop(server);
    let hub = TestHub::start_at_now_with(Backend::Sqlite, |config| {
        config.auth.logins_per_address_per_minute = u32::MAX;
        config.auth.login_attempts_per_account = u32::MAX;
    })
    .await;
    hub.register("alice").await;
    let server = hub.serve().await;
    let form = format!("username=alice&password={PASSWORD}");
    let url = server.url("/api/v1/auth/login");
    results.push(
        measure(
            "POST /api/v1/auth/login (argon2id)",
            concurrency,
            duration,
            requests(&client, move |http| {
                http.post(&url).header("content-type", "application/x-www-form-urlencoded").body(form.clone())
            }),
        )
        .await,
    );

    println!("\n## accounts ({} s per scenario, {} concurrent clients, SQLite)\n", options.seconds, concurrency);
    println!("{TABLE_HEADER}");
    let baseline = results[0].clone();
    for result in &results {
        println!("{}", result.row(Some(&baseline)));
    }
}

const WORDS: &[&str] = &[
    "image",
    "vision",
    "classifier",
    "language",
    "model",
    "weather",
    "data",
    "genomics",
    "chat",
    "agent",
    "speech",
    "translation",
    "finance",
    "health",
    "retrieval",
    "embedding",
    "satellite",
    "traffic",
    "energy",
    "audio",
];

/// 10 000 endpoints (100 owners × 100, created through `sync`), then browse, trending, search
/// and `/{owner}/{slug}`.
async fn registry(options: &Options) {
    let hub = TestHub::start_at_now_with(Backend::Sqlite, |config| {
        config.auth.registrations_per_address_per_minute = u32::MAX;
    })
    .await;
    let server = hub.serve().await;
    let client = thub_tests::http_client();
    let seeding = std::time::Instant::now();
    let mut last_owner = String::new();
    for owner in 0..100 {
        let name = format!("owner{owner:03}");
        let session = hub.register(&name).await;
        let endpoints: Vec<serde_json::Value> = (0..100)
            .map(|index| {
                let pick = |offset: usize| WORDS[(owner * 7 + index * 3 + offset) % WORDS.len()];
                serde_json::json!({
                    "name": format!("{} {} {index}", pick(0), pick(1)),
                    "type": if index % 3 == 0 { "data_source" } else { "model" },
                    "description": format!("A {} {} for {}", pick(2), pick(3), pick(4)),
                    "tags": [pick(5), pick(6)],
                    "readme": format!("# {}\n\nServes {} and {} requests.", pick(7), pick(8), pick(9)),
                })
            })
            .collect();
        let response = client
            .post(server.url("/api/v1/endpoints/sync"))
            .header("authorization", session.bearer())
            .json(&serde_json::json!({"endpoints": endpoints}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "seeding failed: {}", response.status());
        last_owner = name;
        if owner % 20 == 0 {
            eprintln!("seeded {} owners", owner + 1);
        }
    }
    let seeded = seeding.elapsed();
    let duration = Duration::from_secs(options.seconds);
    let concurrency = options.concurrency;
    let path = |path: &str| get(&client, server.url(path));
    let mut results: Vec<Measurement> = Vec::new();
    results.push(measure("GET /health (baseline)", concurrency, duration, path("/health")).await);
    results.push(
        measure(
            "GET /api/v1/endpoints/public?limit=20",
            concurrency,
            duration,
            path("/api/v1/endpoints/public?limit=20"),
        )
        .await,
    );
    results.push(
        measure(
            "GET /api/v1/endpoints/public?skip=5000&limit=20",
            concurrency,
            duration,
            path("/api/v1/endpoints/public?skip=5000&limit=20"),
        )
        .await,
    );
    results.push(
        measure(
            "GET /api/v1/endpoints/trending?limit=20",
            concurrency,
            duration,
            path("/api/v1/endpoints/trending?limit=20"),
        )
        .await,
    );
    let owner_slug = {
        // The first endpoint of the last owner; its slug follows from the generator above.
        let (_, listed) = hub.get_json(None, &format!("/{last_owner}?limit=1")).await;
        format!("/{last_owner}/{}", listed[0]["slug"].as_str().unwrap_or("missing"))
    };
    results.push(measure("GET /{owner}/{slug} (JSON)", concurrency, duration, path(&owner_slug)).await);
    let url = server.url(&owner_slug);
    results.push(
        measure(
            "GET /{owner}/{slug} (HTML)",
            concurrency,
            duration,
            requests(&client, move |http| http.get(&url).header("accept", "text/html")),
        )
        .await,
    );
    for query in ["vision", "genomics classifier", "translation energy satellite"] {
        let url = server.url("/api/v1/endpoints/search");
        let body = serde_json::json!({"query": query, "top_k": 10}).to_string();
        results.push(
            measure(
                &format!("POST /api/v1/endpoints/search \"{query}\""),
                concurrency,
                duration,
                requests(&client, move |http| {
                    http.post(&url).header("content-type", "application/json").body(body.clone())
                }),
            )
            .await,
        );
    }

    println!(
        "\n## registry (10 000 endpoints seeded in {:.1} s; {} s per scenario, {} concurrent clients, SQLite)\n",
        seeded.as_secs_f64(),
        options.seconds,
        concurrency
    );
    println!("{TABLE_HEADER}");
    let baseline = results[0].clone();
    for result in &results {
        println!("{}", result.row(Some(&baseline)));
    }
}

/// The PyScript hub: static files, the proxy against a direct call, and channel fan-out to
/// 1 000 subscribers.
async fn pyscript_hub(options: &Options) {
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

/// Plugin routes against the trivial native route, middleware on every request, and loading.
async fn wasm(options: &Options) {
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/wasm/dist");
    assert!(dist.join("hello/plugin.wasm").is_file(), "build the examples first: scripts/build-wasm-examples");
    let copy = |plugins: &std::path::Path, ids: &[&str]| {
        for id in ids {
            std::fs::create_dir_all(plugins.join(id)).unwrap();
            for file in ["plugin.toml", "plugin.wasm"] {
                std::fs::copy(dist.join(id).join(file), plugins.join(id).join(file)).unwrap();
            }
        }
    };
    let grant = |capabilities: &[&str]| thub_core::config::WasmGrant {
        capabilities: capabilities.iter().map(|name| (*name).to_owned()).collect(),
        ..Default::default()
    };
    let duration = Duration::from_secs(options.seconds);
    let concurrency = options.concurrency;
    let client = thub_tests::http_client();

    let plugins = tempfile::tempdir().unwrap();
    copy(plugins.path(), &["hello", "misbehaving", "pyhello", "jshello"]);
    let dir = plugins.path().to_path_buf();
    let hub = TestHub::start_at_now_with(Backend::Sqlite, |config| {
        config.wasm.dir = dir;
        config.wasm.grants.insert("hello".to_owned(), grant(&["kv"]));
    })
    .await;
    let pool = &hub.hub.config.wasm;
    println!(
        "\ninstance pool: {} instances, memories capped at {} MiB, {} KiB kept resident per freed memory",
        pool.pool_instances, pool.memory_mb, pool.pool_keep_resident_kb
    );
    hub.hub.wasm.as_ref().unwrap().loaded().await;
    let server = hub.serve().await;
    let mut results: Vec<Measurement> = Vec::new();
    results.push(measure("GET /health (baseline)", concurrency, duration, get(&client, server.url("/health"))).await);
    results.push(
        measure("GET /ready (native, one database query)", concurrency, duration, get(&client, server.url("/ready")))
            .await,
    );
    results.push(
        measure(
            "GET /plugins/misbehaving/ok (plugin, no host calls)",
            concurrency,
            duration,
            get(&client, server.url("/plugins/misbehaving/ok")),
        )
        .await,
    );
    results.push(
        measure(
            "GET /plugins/hello/count (plugin, one kv read)",
            concurrency,
            duration,
            get(&client, server.url("/plugins/hello/count")),
        )
        .await,
    );
    results.push(
        measure(
            "GET /plugins/pyhello/ping (Python plugin, no host calls)",
            concurrency,
            duration,
            get(&client, server.url("/plugins/pyhello/ping")),
        )
        .await,
    );
    results.push(
        measure(
            "GET /plugins/jshello/ping (JavaScript plugin, no host calls)",
            concurrency,
            duration,
            get(&client, server.url("/plugins/jshello/ping")),
        )
        .await,
    );
    let host = hub.hub.wasm.clone().unwrap();
    let mean_ms =
        |id: &str| host.list().into_iter().find(|plugin| plugin.id == id).map_or(0.0, |plugin| plugin.mean_ms);
    let (bare_call, kv_call) = (mean_ms("misbehaving"), mean_ms("hello"));
    let (python_call, javascript_call) = (mean_ms("pyhello"), mean_ms("jshello"));
    drop(server);

    // The same trivial route with a middleware plugin in front of every request.
    let guarded_plugins = tempfile::tempdir().unwrap();
    copy(guarded_plugins.path(), &["maintenance"]);
    let dir = guarded_plugins.path().to_path_buf();
    let guarded = TestHub::start_at_now_with(Backend::Sqlite, |config| {
        config.wasm.dir = dir;
        config.wasm.grants.insert("maintenance".to_owned(), grant(&["kv", "middleware"]));
    })
    .await;
    guarded.hub.wasm.as_ref().unwrap().loaded().await;
    let guarded_server = guarded.serve().await;
    results.push(
        measure(
            "GET /health behind a middleware plugin",
            concurrency,
            duration,
            get(&client, guarded_server.url("/health")),
        )
        .await,
    );

    println!("\n## wasm ({} s per scenario, {} concurrent clients)\n", options.seconds, concurrency);
    println!("{TABLE_HEADER}");
    let baseline = results[0].clone();
    for result in &results {
        println!("{}", result.row(Some(&baseline)));
    }
    println!(
        "\nmean time inside the host per plugin call (fresh instance + call): Rust {bare_call:.3} ms without host calls, {kv_call:.3} ms with one kv read; Python {python_call:.3} ms; JavaScript {javascript_call:.3} ms"
    );

    // Loading: compile from source vs from the on-disk cache of compiled code.
    let plugins = tempfile::tempdir().unwrap();
    copy(plugins.path(), &["hello", "misbehaving"]);
    let cache = tempfile::tempdir().unwrap();
    let mut timings = Vec::new();
    for _ in 0..2 {
        let started = std::time::Instant::now();
        let loaded = thub_core::wasm::WasmHost::start(
            hub.hub.config.wasm.clone(),
            plugins.path().to_path_buf(),
            cache.path().to_path_buf(),
            hub.hub.db.clone(),
            hub.hub.events.clone(),
            hub.hub.clock.clone(),
            thub_core::wasm::HostDirectory::default(),
        )
        .await
        .unwrap();
        loaded.loaded().await;
        timings.push(started.elapsed());
        assert!(loaded.list().iter().all(|plugin| plugin.problem.is_none()));
    }
    println!(
        "loading 2 plugins ({} KiB of components): {:.1} ms compiling, {:.1} ms from the cache ({:.0}× faster)",
        ["hello", "misbehaving"]
            .iter()
            .map(|id| std::fs::metadata(dist.join(id).join("plugin.wasm")).map_or(0, |meta| meta.len()))
            .sum::<u64>()
            / 1024,
        timings[0].as_secs_f64() * 1000.0,
        timings[1].as_secs_f64() * 1000.0,
        timings[0].as_secs_f64() / timings[1].as_secs_f64(),
    );
}
