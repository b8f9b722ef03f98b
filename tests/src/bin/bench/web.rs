//! The web pages at 10 000 endpoints: explore, search, an owner page and an endpoint page
//! (target p99 ≤ 10 ms), their sizes before compression (target ≤ 50 KB each) and the
//! stylesheet and script together (target ≤ 30 KB); on SQLite and, with `TEST_DATABASE_URL`,
//! on PostgreSQL.

use std::time::Duration;

use thub_tests::bench::{Measurement, TABLE_HEADER, get, measure, requests};
use thub_tests::{Backend, TestHub};

use crate::Options;
use crate::catalog::{COMMON_WORD, Catalog, configure, uncached_instance};

const ENDPOINTS: usize = 10_000;

pub(crate) async fn run(options: &Options) {
    run_on(Backend::Sqlite, options).await;
    if thub_tests::postgres_url().is_some() {
        run_on(Backend::Postgres, options).await;
    } else {
        println!("\n## web on PostgreSQL: skipped (TEST_DATABASE_URL not set)");
    }
}

async fn run_on(backend: Backend, options: &Options) {
    let hub = TestHub::start_at_now_with(backend, configure).await;
    let server = hub.serve().await;
    let (_uncached_hub, uncached) = uncached_instance(&hub).await;
    let mut catalog = Catalog::new(&hub, backend);
    catalog.grow_to(&hub, &server, ENDPOINTS).await;
    let client = thub_tests::http_client();
    let owner = catalog.owners.last().expect("an owner").clone();
    let (_, listed) = hub.get_json(None, &format!("/{owner}?limit=1")).await;
    let slug = listed[0]["slug"].as_str().expect("an endpoint of the owner").to_owned();
    let pages = [
        ("GET /explore", "/explore".to_owned()),
        ("GET /explore?type=agent&sort=name&page=3", "/explore?type=agent&sort=name&page=3".to_owned()),
        ("GET /search?q= (common word)", format!("/search?q={COMMON_WORD}")),
        ("GET /{owner}", format!("/{owner}")),
        ("GET /{owner}/{slug}", format!("/{owner}/{slug}")),
    ];

    let html = |path: &str| client.get(server.url(path)).header("accept", "text/html");
    let mut sizes = Vec::new();
    let mut assets = Vec::new();
    for (name, path) in &pages {
        let response = html(path).send().await.expect("page");
        assert!(response.status().is_success(), "{path}: {}", response.status());
        let body = response.text().await.expect("body");
        sizes.push((name.to_string(), body.len()));
        for asset in asset_paths(&body) {
            if !assets.contains(&asset) {
                assets.push(asset);
            }
        }
    }
    for asset in &assets {
        let body = client.get(server.url(asset)).send().await.expect("asset").bytes().await.expect("body");
        sizes.push((asset.clone(), body.len()));
    }

    let duration = Duration::from_secs(options.seconds);
    let concurrency = options.concurrency;
    let mut results: Vec<Measurement> =
        vec![measure("GET /health (baseline)", concurrency, duration, get(&client, server.url("/health"))).await];
    // Cached; uncached; and uncached from one client: a page's own latency, not queued behind
    // fifteen others on two cores.
    for (instance, clients, label) in [
        (&server, concurrency, String::new()),
        (&uncached, concurrency, ", uncached".to_owned()),
        (&uncached, 1, ", uncached, 1 client".to_owned()),
    ] {
        for (name, path) in &pages {
            let url = instance.url(path);
            let request = requests(&client, move |http| http.get(&url).header("accept", "text/html"));
            results.push(measure(&format!("{name}{label}"), clients, duration, request).await);
        }
    }

    println!(
        "\n## web at {ENDPOINTS} endpoints, {backend:?} ({} s per scenario, {} concurrent clients; \"uncached\": a second instance with the caches off; target p99 ≤ 10 ms)\n",
        options.seconds, concurrency
    );
    println!("{TABLE_HEADER}");
    for result in &results {
        println!("{}", result.row(Some(&results[0])));
    }
    println!("\n| page or asset (anonymous, before compression) | bytes |\n|---|---|");
    for (name, bytes) in &sizes {
        println!("| {name} | {bytes} |");
    }
    let asset_bytes: usize = sizes.iter().filter(|(name, _)| assets.contains(name)).map(|(_, bytes)| bytes).sum();
    println!("| stylesheet + script (target ≤ 30 KB) | {asset_bytes} |");
}

/// The web's own assets a page links (`/_thub/web/…`).
fn asset_paths(html: &str) -> Vec<String> {
    html.split('"').filter(|part| part.starts_with("/_thub/web/")).map(str::to_owned).collect()
}
