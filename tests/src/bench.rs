//! A small closed-loop load generator for `bench`: N concurrent clients send one kind of request
//! for a fixed time; we report requests/s and latency percentiles. Figures on a shared machine
//! are noisy, so every suite also measures a trivial route in the same run and reports ratios.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One measured scenario.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Scenario name.
    pub name: String,
    /// Completed requests per second.
    pub per_second: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th-percentile latency.
    pub p99: Duration,
    /// Requests that did not answer as expected.
    pub errors: usize,
}

impl Measurement {
    /// A table row; `baseline` gives the ratio column.
    pub fn row(&self, baseline: Option<&Measurement>) -> String {
        let ratio = baseline.map_or(String::from("-"), |base| format!("{:.3}", self.per_second / base.per_second));
        format!(
            "| {} | {:.0} | {:.2} | {:.2} | {} | {} |",
            self.name,
            self.per_second,
            self.p50.as_secs_f64() * 1000.0,
            self.p99.as_secs_f64() * 1000.0,
            ratio,
            self.errors
        )
    }
}

/// The header of [`Measurement::row`] tables.
pub const TABLE_HEADER: &str =
    "| scenario | req/s | p50 ms | p99 ms | req/s ÷ baseline | errors |\n|---|---|---|---|---|---|";

/// Runs `request` from `concurrency` loops for `duration` (after a short warm-up). `request`
/// returns whether the answer was the expected one.
pub async fn measure<F, Fut>(name: &str, concurrency: usize, duration: Duration, request: F) -> Measurement
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    // Warm-up: connections, caches.
    for _ in 0..concurrency.min(8) {
        request().await;
    }
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let begun = Instant::now();
                if !request().await {
                    errors += 1;
                }
                latencies.push(begun.elapsed());
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mut task_latencies, task_errors) = task.await.unwrap_or_default();
        latencies.append(&mut task_latencies);
        errors += task_errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let percentile = |fraction: f64| {
        latencies
            .get(((latencies.len() as f64 * fraction) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Measurement {
        name: name.to_owned(),
        per_second: latencies.len() as f64 / elapsed,
        p50: percentile(0.50),
        p99: percentile(0.99),
        errors,
    }
}

/// What [`requests`] hands to [`measure`]: one request, answering whether it got a 2xx.
pub type Attempt = Pin<Box<dyn Future<Output = bool> + Send>>;

/// A request source for [`measure`]: each call sends what `build` makes on `client` and
/// expects a 2xx.
pub fn requests<B>(client: &reqwest::Client, build: B) -> impl Fn() -> Attempt + Send + Sync + 'static
where
    B: Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let client = client.clone();
    move || {
        let request = build(&client);
        Box::pin(async move { request.send().await.is_ok_and(|response| response.status().is_success()) })
    }
}

/// [`requests`] of a plain `GET url`.
pub fn get(client: &reqwest::Client, url: String) -> impl Fn() -> Attempt + Send + Sync + 'static {
    requests(client, move |http| http.get(&url))
}
