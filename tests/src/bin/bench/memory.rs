//! Resident memory of the real `thub` binary (its allocator included) on SQLite: idle after
//! start, the peak while the registry is seeded and loaded, and after `--rss-wait` seconds
//! (default 60) of rest, read from `/proc/PID/status`. Target: back within 2× of idle.
//!
//! Spawns `thub` from the bench's own folder (`target/release/thub`); `scripts/bench` builds it.

use std::time::{Duration, Instant};

use thub_tests::bench::{Measurement, TABLE_HEADER, ThubProcess, get, measure, requests};

use crate::Options;

pub(crate) async fn run(options: &Options) {
    let folder = tempfile::tempdir().unwrap();
    // The seeding registers 100 owners from one address.
    std::fs::write(folder.path().join("thub.toml"), "[auth]\nregistrations_per_address_per_minute = 100000\n").unwrap();
    let process = ThubProcess::start(folder.path()).await;
    let base = process.url("");
    let client = thub_tests::http_client();
    // Idle: started and answered, nothing else yet.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = process.status_kib("VmRSS");

    let seeding = Instant::now();
    let last_owner = crate::registry::seed(&client, &base, 100).await;
    let seeded = seeding.elapsed();
    let after_seeding = process.status_kib("VmRSS");
    let duration = Duration::from_secs(options.seconds);
    let concurrency = options.concurrency;
    let mut results: Vec<Measurement> = Vec::new();
    for path in [
        "/health".to_owned(),
        "/api/v1/endpoints/public?limit=20".to_owned(),
        "/api/v1/endpoints/public?skip=5000&limit=100".to_owned(),
        "/api/v1/endpoints/trending?limit=20".to_owned(),
        format!("/{last_owner}?limit=100"),
    ] {
        results
            .push(measure(&format!("GET {path}"), concurrency, duration, get(&client, format!("{base}{path}"))).await);
    }
    for query in ["vision", "genomics classifier"] {
        let url = format!("{base}/api/v1/endpoints/search");
        let body = serde_json::json!({"query": query, "top_k": 50}).to_string();
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
    let after_load = process.status_kib("VmRSS");
    let peak = process.status_kib("VmHWM");
    // Nothing but the bench's own idle connections from now on.
    drop(client);
    eprintln!("resting {} s before the last reading (--rss-wait)", options.rss_wait);
    tokio::time::sleep(Duration::from_secs(options.rss_wait)).await;
    let rested = process.status_kib("VmRSS");
    drop(process);

    println!(
        "\n## memory (real `thub` binary, SQLite; 10 000 endpoints seeded in {:.1} s; {} s per load, {} concurrent clients)\n",
        seeded.as_secs_f64(),
        options.seconds,
        concurrency
    );
    println!("{TABLE_HEADER}");
    let baseline = results[0].clone();
    for result in &results {
        println!("{}", result.row(Some(&baseline)));
    }
    println!("\n| RSS | MiB | ÷ idle |\n|---|---|---|");
    for (label, kib) in [
        ("idle after start".to_owned(), idle),
        ("after seeding".to_owned(), after_seeding),
        ("right after the loads".to_owned(), after_load),
        ("peak (VmHWM)".to_owned(), peak),
        (format!("{} s after the loads (target ≤ 2× idle)", options.rss_wait), rested),
    ] {
        println!("| {label} | {:.1} | {:.2} |", kib as f64 / 1024.0, kib as f64 / idle.max(1) as f64);
    }
}
