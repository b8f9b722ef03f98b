//! `bench`: throughput and latency of thub's hot paths, with ratios to a trivial route measured
//! in the same run (this machine is shared and noisy).
//!
//! ```sh
//! cargo run --release -p thub-tests --bin bench -- [accounts] [registry] [--seconds 5] [--concurrency 16]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use thub_tests::bench::{Measurement, TABLE_HEADER, measure};
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
            other => panic!("unknown suite {other}; known: accounts, registry"),
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
    let ok = |response: Result<reqwest::Response, reqwest::Error>| {
        response.is_ok_and(|response| response.status().is_success())
    };

    let mut results: Vec<Measurement> = Vec::new();
    let (url, http) = (server.url("/health"), client.clone());
    results.push(
        measure("GET /health (baseline)", concurrency, duration, move || {
            let (url, http) = (url.clone(), http.clone());
            async move { ok(http.get(url).send().await) }
        })
        .await,
    );

    let (url, http) = (server.url("/.well-known/jwks.json"), client.clone());
    results.push(
        measure("GET /.well-known/jwks.json", concurrency, duration, move || {
            let (url, http) = (url.clone(), http.clone());
            async move { ok(http.get(url).send().await) }
        })
        .await,
    );

    let (url, http, bearer) = (server.url("/api/v1/auth/me"), client.clone(), alice.bearer());
    results.push(
        measure("GET /api/v1/auth/me (session check)", concurrency, duration, move || {
            let (url, http, bearer) = (url.clone(), http.clone(), bearer.clone());
            async move { ok(http.get(url).header("authorization", bearer).send().await) }
        })
        .await,
    );

    let (url, http, bearer) = (server.url("/api/v1/token?aud=weather-svc"), client.clone(), alice.bearer());
    results.push(
        measure("GET /api/v1/token (RS256 mint)", concurrency, duration, move || {
            let (url, http, bearer) = (url.clone(), http.clone(), bearer.clone());
            async move { ok(http.get(url).header("authorization", bearer).send().await) }
        })
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
    let (url, http, bearer) = (server.url("/api/v1/verify"), client.clone(), service.bearer());
    results.push(
        measure("POST /api/v1/verify", concurrency, duration, move || {
            let (url, http, bearer, body) = (url.clone(), http.clone(), bearer.clone(), body.clone());
            async move {
                ok(http
                    .post(url)
                    .header("authorization", bearer)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await)
            }
        })
        .await,
    );

    // Logins are bounded by argon2id (19 MiB, t=2) and the per-address limit; lift the limit
    // for the benchmark by using a hub configured without it.
    drop(server);
    let hub = TestHub::start_at_now_with(Backend::Sqlite, |config| {
        config.auth.login_attempts_per_address = u32::MAX;
        config.auth.login_attempts_per_account = u32::MAX;
    })
    .await;
    hub.register("alice").await;
    let server = hub.serve().await;
    let form = format!("username=alice&password={PASSWORD}");
    let (url, http) = (server.url("/api/v1/auth/login"), client.clone());
    results.push(
        measure("POST /api/v1/auth/login (argon2id)", concurrency, duration, move || {
            let (url, http, form) = (url.clone(), http.clone(), form.clone());
            async move {
                ok(http.post(url).header("content-type", "application/x-www-form-urlencoded").body(form).send().await)
            }
        })
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
        config.auth.login_attempts_per_address = u32::MAX;
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
    let ok = |response: Result<reqwest::Response, reqwest::Error>| {
        response.is_ok_and(|response| response.status().is_success())
    };
    let get = |path: String| {
        let (url, http) = (server.url(&path), client.clone());
        move || {
            let (url, http) = (url.clone(), http.clone());
            async move { ok(http.get(url).send().await) }
        }
    };
    let mut results: Vec<Measurement> = Vec::new();
    results.push(measure("GET /health (baseline)", concurrency, duration, get("/health".to_owned())).await);
    results.push(
        measure(
            "GET /api/v1/endpoints/public?limit=20",
            concurrency,
            duration,
            get("/api/v1/endpoints/public?limit=20".to_owned()),
        )
        .await,
    );
    results.push(
        measure(
            "GET /api/v1/endpoints/public?skip=5000&limit=20",
            concurrency,
            duration,
            get("/api/v1/endpoints/public?skip=5000&limit=20".to_owned()),
        )
        .await,
    );
    results.push(
        measure(
            "GET /api/v1/endpoints/trending?limit=20",
            concurrency,
            duration,
            get("/api/v1/endpoints/trending?limit=20".to_owned()),
        )
        .await,
    );
    let owner_slug = {
        // The first endpoint of the last owner; its slug follows from the generator above.
        let (_, listed) = hub.get_json(None, &format!("/{last_owner}?limit=1")).await;
        format!("/{last_owner}/{}", listed[0]["slug"].as_str().unwrap_or("missing"))
    };
    results.push(measure("GET /{owner}/{slug} (JSON)", concurrency, duration, get(owner_slug.clone())).await);
    let (url, http) = (server.url(&owner_slug), client.clone());
    results.push(
        measure("GET /{owner}/{slug} (HTML)", concurrency, duration, move || {
            let (url, http) = (url.clone(), http.clone());
            async move { ok(http.get(url).header("accept", "text/html").send().await) }
        })
        .await,
    );
    for query in ["vision", "genomics classifier", "translation energy satellite"] {
        let (url, http) = (server.url("/api/v1/endpoints/search"), client.clone());
        let body = serde_json::json!({"query": query, "top_k": 10}).to_string();
        results.push(
            measure(&format!("POST /api/v1/endpoints/search \"{query}\""), concurrency, duration, move || {
                let (url, http, body) = (url.clone(), http.clone(), body.clone());
                async move { ok(http.post(url).header("content-type", "application/json").body(body).send().await) }
            })
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
