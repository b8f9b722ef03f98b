//! Resident memory of the real `thub` binary (its allocator included) on SQLite: idle after
//! start, the peak while the registry is seeded and loaded, and after `--rss-wait` seconds
//! (default 60) of rest, read from `/proc/PID/status`. Target: back within 2× of idle.
//!
//! Spawns `thub` from the bench's own folder (`target/release/thub`); `scripts/bench` builds it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use thub_tests::bench::{Measurement, TABLE_HEADER, get, measure, requests};

use crate::Options;

pub(crate) async fn run(options: &Options) {
    let binary = thub_binary();
    let folder = tempfile::tempdir().unwrap();
    // The seeding registers 100 owners from one address.
    std::fs::write(folder.path().join("thub.toml"), "[auth]\nregistrations_per_address_per_minute = 100000\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = std::fs::File::create(folder.path().join("serve.log")).unwrap();
    let mut command = thub_tests::thub_command(binary.to_str().unwrap(), folder.path());
    command.args(["serve", "--port", &port.to_string()]).stdout(log.try_clone().unwrap()).stderr(log);
    let mut child = tokio::process::Command::from(command).kill_on_drop(true).spawn().unwrap();
    let pid = child.id().expect("thub is running");
    let base = format!("http://127.0.0.1:{port}");
    let client = thub_tests::http_client();
    let started = Instant::now();
    while !client.get(format!("{base}/health")).send().await.is_ok_and(|response| response.status().is_success()) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "thub serve did not answer /health: {}",
            std::fs::read_to_string(folder.path().join("serve.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Idle: started and answered, nothing else yet.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = status_kib(pid, "VmRSS");

    let seeding = Instant::now();
    let last_owner = crate::registry::seed(&client, &base, 100).await;
    let seeded = seeding.elapsed();
    let after_seeding = status_kib(pid, "VmRSS");
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
    let after_load = status_kib(pid, "VmRSS");
    let peak = status_kib(pid, "VmHWM");
    // Nothing but the bench's own idle connections from now on.
    drop(client);
    eprintln!("resting {} s before the last reading (--rss-wait)", options.rss_wait);
    tokio::time::sleep(Duration::from_secs(options.rss_wait)).await;
    let rested = status_kib(pid, "VmRSS");
    child.kill().await.unwrap();

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

/// `target/<profile>/thub`, beside the bench binary.
fn thub_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let binary = exe.parent().unwrap().join("thub");
    assert!(
        binary.exists(),
        "{} is missing: build it first (cargo build --release -p thub-core --bin thub)",
        binary.display()
    );
    binary
}

/// A `kB` line of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}
