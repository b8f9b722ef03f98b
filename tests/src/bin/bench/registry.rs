//! The registry at 10 000 endpoints: browse, trending and owner pages (search: `search.rs`).

use std::time::Duration;

use thub_tests::bench::{Attempt, Measurement, TABLE_HEADER, get, measure, requests};
use thub_tests::{Backend, TestHub};

use crate::Options;
use crate::catalog::VOCABULARY as WORDS;

/// Registers `owners` owners at `base` (the hub's URL) and gives each 100 endpoints through
/// `sync`; returns the last owner's name.
pub(crate) async fn seed(client: &reqwest::Client, base: &str, owners: usize) -> String {
    let mut last_owner = String::new();
    for owner in 0..owners {
        let name = format!("owner{owner:03}");
        let bearer = format!("Bearer {}", thub_tests::bench::register(client, base, &name).await);
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
            .post(format!("{base}/api/v1/endpoints/sync"))
            .header("authorization", bearer)
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
    last_owner
}

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
    let last_owner = seed(&client, &server.url(""), 100).await;
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
    results.extend(conditional_reads(&client, &server, &last_owner, options).await);

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

/// The owner page listing, and a client revalidating a listing it holds (`If-None-Match` → 304).
async fn conditional_reads(
    client: &reqwest::Client,
    server: &thub_tests::TestServer,
    owner: &str,
    options: &Options,
) -> Vec<Measurement> {
    let duration = Duration::from_secs(options.seconds);
    let concurrency = options.concurrency;
    let mut results = Vec::new();
    results.push(
        measure(
            "GET /{owner}?limit=10 (JSON)",
            concurrency,
            duration,
            get(client, server.url(&format!("/{owner}?limit=10"))),
        )
        .await,
    );
    let url = server.url("/api/v1/endpoints/public?limit=20");
    let etag = client.get(&url).send().await.unwrap().headers()["etag"].to_str().unwrap().to_owned();
    let http = client.clone();
    results.push(
        measure("GET /api/v1/endpoints/public?limit=20 (If-None-Match → 304)", concurrency, duration, move || {
            let request = http.get(&url).header("if-none-match", &etag);
            Box::pin(async move { request.send().await.is_ok_and(|response| response.status() == 304) }) as Attempt
        })
        .await,
    );
    results
}
