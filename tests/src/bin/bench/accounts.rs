//! Sign-in, tokens and verification against the trivial route.

use std::time::Duration;

use thub_tests::bench::{Measurement, TABLE_HEADER, get, measure, requests};
use thub_tests::{Backend, PASSWORD, TestHub};

use crate::Options;

pub(crate) async fn run(options: &Options) {
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
