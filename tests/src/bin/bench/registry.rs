//! The registry at 10 000 endpoints: browse, trending, owner pages and search.

use std::time::Duration;

use thub_tests::bench::{Measurement, TABLE_HEADER, get, measure, requests};
use thub_tests::{Backend, TestHub};

use crate::Options;

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
pub(crate) async fn run(options: &Options) {
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
