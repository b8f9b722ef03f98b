//! Registry search (`POST /api/v1/endpoints/search`) at 10 000 and 100 000 endpoints: a common
//! word, three words, and hostile queries; on SQLite and, with `TEST_DATABASE_URL`, on
//! PostgreSQL. On SQLite also the largest write-ahead log seen while seeding 100 000 endpoints,
//! and whether a `-wal` file is left after a clean stop.

use std::time::Duration;

use thub_tests::bench::{Attempt, Measurement, TABLE_HEADER, get, measure};
use thub_tests::{Backend, TestHub, TestServer};

use crate::Options;
use crate::catalog::{COMMON_WORD, Catalog, THREE_WORDS, configure, uncached_instance};

/// Catalogue sizes measured, in order (each grows the previous one).
const SIZES: [usize; 2] = [10_000, 100_000];

pub(crate) async fn run(options: &Options) {
    run_on(Backend::Sqlite, options).await;
    if thub_tests::postgres_url().is_some() {
        run_on(Backend::Postgres, options).await;
    } else {
        println!("\n## search on PostgreSQL: skipped (TEST_DATABASE_URL not set)");
    }
}

async fn run_on(backend: Backend, options: &Options) {
    let hub = TestHub::start_at_now_with(backend, configure).await;
    let server = hub.serve().await;
    let (uncached_hub, uncached) = uncached_instance(&hub).await;
    let mut catalog = Catalog::new(&hub, backend);
    for size in SIZES {
        catalog.grow_to(&hub, &server, size).await;
        let results = scenarios(&server, &uncached, options).await;
        println!(
            "\n## search at {size} endpoints, {backend:?} (seeded in {:.1} s so far; {} s per scenario, {} concurrent clients unless a row says otherwise; \"uncached\": a second instance with the caches off; target p99 ≤ 20 ms)\n",
            catalog.seeding.as_secs_f64(),
            options.seconds,
            options.concurrency
        );
        println!("{TABLE_HEADER}");
        for result in &results {
            println!("{}", result.row(Some(&results[0])));
        }
    }
    if let Some((peak, file)) = catalog.wal_peak() {
        // The log goes with the database's last connection: both instances stop.
        drop((server, uncached));
        thub_core::storage::close(uncached_hub.db.clone()).await;
        thub_core::storage::close(hub.hub.db.clone()).await;
        println!(
            "\nSQLite write-ahead log: largest {:.1} MB while seeding {} endpoints (limit 64 MB); after a clean stop: {}",
            peak as f64 / 1_000_000.0,
            catalog.endpoints,
            if file.exists() { "a -wal file is left" } else { "no -wal file left" }
        );
    }
}

async fn scenarios(server: &TestServer, uncached: &TestServer, options: &Options) -> Vec<Measurement> {
    let client = thub_tests::http_client();
    let duration = Duration::from_secs(options.seconds);
    let concurrency = options.concurrency;
    let search_on = |server: &TestServer, query: String, accept: Accept| {
        let body = serde_json::json!({"query": query, "top_k": 10}).to_string();
        answered(&client, server.url("/api/v1/endpoints/search"), Some(body), accept)
    };
    let api = |query: String, accept: Accept| search_on(server, query, accept);
    let page =
        |query: String| answered(&client, server.url(&format!("/search?q={}", query.replace(' ', "+"))), None, success);
    let many_words: Vec<String> = (0..1000).map(|index| format!("{}{index}", &COMMON_WORD[..3])).collect();
    let many_words = many_words.join(" ");
    let mut results =
        vec![measure("GET /health (baseline)", concurrency, duration, get(&client, server.url("/health"))).await];
    let scenarios = [
        (format!("search \"{COMMON_WORD}\" (common word)"), api(COMMON_WORD.to_owned(), success)),
        (format!("search \"{THREE_WORDS}\""), api(THREE_WORDS.to_owned(), success)),
        ("search: stop-words only".to_owned(), api("the a of and for to".to_owned(), success)),
        (
            "search: FTS syntax".to_owned(),
            api(format!("\"{COMMON_WORD}\" NEAR(image* -chat) AND (data:x) OR ^a*"), success),
        ),
        ("search: the first 500 characters of 1 000 words".to_owned(), api(many_words[..500].to_owned(), success)),
        ("search: 1 000 words (422)".to_owned(), api(many_words.clone(), rejected)),
        ("search: 10 KB (422)".to_owned(), api("x".repeat(10 * 1024), rejected)),
        ("web /search?q= 1 000 words".to_owned(), page(many_words)),
        ("web /search?q= 10 KB".to_owned(), page(format!("{COMMON_WORD} ").repeat(10 * 1024 / 7))),
    ];
    for (name, request) in scenarios {
        results.push(measure(&name, concurrency, duration, request).await);
    }
    // The targets' two queries ranked anew every time (no cached answers); from one client too:
    // latency without queueing behind the others.
    for clients in [concurrency, 1] {
        for query in [COMMON_WORD, THREE_WORDS] {
            let name = format!("search \"{query}\", uncached, {clients} client(s)");
            results.push(measure(&name, clients, duration, search_on(uncached, query.to_owned(), success)).await);
        }
    }
    results
}

/// Whether a status is the expected answer.
type Accept = fn(reqwest::StatusCode) -> bool;

fn success(status: reqwest::StatusCode) -> bool {
    status.is_success()
}

/// Bad input: a 422, never a 5xx.
fn rejected(status: reqwest::StatusCode) -> bool {
    status == reqwest::StatusCode::UNPROCESSABLE_ENTITY
}

/// A request (a JSON `POST` with `body`, else a `GET` for HTML) whose answer `accept`s.
fn answered(
    client: &reqwest::Client,
    url: String,
    body: Option<String>,
    accept: Accept,
) -> impl Fn() -> Attempt + Send + Sync + 'static {
    let client = client.clone();
    move || {
        let request = match &body {
            Some(body) => client.post(&url).header("content-type", "application/json").body(body.clone()),
            None => client.get(&url).header("accept", "text/html"),
        };
        Box::pin(async move { request.send().await.is_ok_and(|response| accept(response.status())) })
    }
}
