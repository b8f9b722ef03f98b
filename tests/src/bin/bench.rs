//! `bench`: throughput and latency of thub's hot paths, with ratios to a trivial route measured
//! in the same run (this machine is shared and noisy).
//!
//! ```sh
//! cargo run --release -p thub-tests --bin bench -- [accounts] [--seconds 5] [--concurrency 16]
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
            other => panic!("unknown suite {other}; known: accounts"),
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
