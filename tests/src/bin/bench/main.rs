//! `bench`: throughput and latency of thub's hot paths, with ratios to a trivial route measured
//! in the same run (this machine is shared and noisy).
//!
//! ```sh
//! scripts/bench                      # every suite: cargo run --release -p thub-tests --bin bench -- all
//! cargo run --release -p thub-tests --bin bench -- [all|accounts|registry|search|web|hub|wasm|memory ...] [--seconds 5] [--concurrency 16] [--rss-wait 60]
//! ```
//!
//! The `memory` suite spawns the real `thub` binary built beside the bench
//! (`cargo build --release -p thub-core --bin thub`; `scripts/bench` does) and reads its RSS
//! `--rss-wait` seconds after the loads.
//!
//! One module per suite; each prints a table whose ratio column divides by `GET /health`
//! measured in the same suite. `search` and `web` also run on PostgreSQL when
//! `TEST_DATABASE_URL` is set; their catalogue comes from `catalog.rs`.
//!
//! The `hub` suite runs the real `thub` binary in its own process, found beside the bench
//! executable: `cargo build --release -p thub-core --bin thub` first (`scripts/bench` does).
//!
//! The `wasm` suite loads the example plugins from `examples/wasm/dist`; build them first:
//!
//! ```sh
//! scripts/build-wasm-examples
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod catalog;
mod hub;
mod memory;
mod registry;
mod search;
mod wasm;
mod web;

/// Every suite, in the order `all` runs them.
const SUITES: &[&str] = &["accounts", "registry", "search", "web", "hub", "wasm", "memory"];

pub(crate) struct Options {
    suites: Vec<String>,
    pub(crate) seconds: u64,
    pub(crate) concurrency: usize,
    /// Seconds the `memory` suite rests after its loads before reading RSS.
    pub(crate) rss_wait: u64,
}

fn options() -> Options {
    let mut options = Options { suites: Vec::new(), seconds: 5, concurrency: 16, rss_wait: 60 };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => options.seconds = args.next().and_then(|value| value.parse().ok()).expect("--seconds N"),
            "--concurrency" => {
                options.concurrency = args.next().and_then(|value| value.parse().ok()).expect("--concurrency N")
            }
            "--rss-wait" => options.rss_wait = args.next().and_then(|value| value.parse().ok()).expect("--rss-wait N"),
            suite => options.suites.push(suite.to_owned()),
        }
    }
    if options.suites.is_empty() {
        options.suites = vec!["all".to_owned()];
    }
    options
}

/// Set in a child's environment to make this binary run as `thub` itself: the start-up scenario
/// spawns the real command line of this very build (`thub_core::cli::main`, all that the `thub`
/// binary's `main` does), without depending on a separately built binary.
pub(crate) const RUN_AS_THUB: &str = "BENCH_RUN_AS_THUB";

fn main() -> std::process::ExitCode {
    if std::env::var_os(RUN_AS_THUB).is_some() {
        return thub_core::cli::main();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("async runtime");
    runtime.block_on(bench());
    std::process::ExitCode::SUCCESS
}

async fn bench() {
    let options = options();
    for suite in &options.suites {
        match suite.as_str() {
            "all" => {
                for suite in SUITES {
                    run(suite, &options).await;
                }
            }
            suite => run(suite, &options).await,
        }
    }
}

async fn run(suite: &str, options: &Options) {
    match suite {
        "accounts" => accounts::run(options).await,
        "registry" => registry::run(options).await,
        "search" => search::run(options).await,
        "web" => web::run(options).await,
        "hub" => hub::run(options).await,
        "wasm" => wasm::run(options).await,
        "memory" => memory::run(options).await,
        other => panic!("unknown suite {other}; known: all, {}", SUITES.join(", ")),
    }
}
