//! A synthetic catalogue for the `search` and `web` suites: endpoints created through
//! `POST /api/v1/endpoints/sync` in batches of 5 000 (the production write path, so the search
//! index is kept in step as it is in use), and the SQLite write-ahead log sampled meanwhile.
//!
//! Every endpoint carries 10 of the 20 words below (name, description, tags, README), so each
//! word is in half of them: [`COMMON_WORD`] is as common as a word gets. One in ten is private.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sea_orm::ConnectionTrait;
use thub_core::config::Config;
use thub_tests::{Backend, TestHub, TestServer};

/// The words every synthetic endpoint is made of (also the registry suite's).
pub(crate) const VOCABULARY: &[&str] = &[
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

/// A word in half of the endpoints.
pub(crate) const COMMON_WORD: &str = "vision";
/// Three words, each in half of the endpoints.
pub(crate) const THREE_WORDS: &str = "genomics classifier satellite";

/// Endpoints per sync (and per owner).
const BATCH: usize = 5_000;

/// Hub settings the catalogue needs: many sign-ups from one address, large syncs.
pub(crate) fn configure(config: &mut Config) {
    config.auth.registrations_per_address_per_minute = u32::MAX;
    config.plugins.set_key("registry", "max_sync_endpoints", serde_json::json!(BATCH));
}

/// A second instance of `hub` with the registry's read caches off (no bytes for them), served:
/// every request is answered anew, as the first after a change is (a search from the search
/// index, the rest from the database). The bench's hard case beside the cached one. The index
/// keeps its default lifetime: it is what search is, not a cache of answers.
pub(crate) async fn uncached_instance(hub: &TestHub) -> (thub_core::Hub, TestServer) {
    let uncached = hub
        .another_instance(|config| config.plugins.set_key("registry", "listing_cache_bytes", serde_json::json!(0)))
        .await;
    let server = thub_tests::serve(&uncached).await;
    (uncached, server)
}

/// The catalogue seeded so far.
pub(crate) struct Catalog {
    /// Owners' names, one owner per batch.
    pub(crate) owners: Vec<String>,
    /// Endpoints created.
    pub(crate) endpoints: usize,
    /// Time spent creating them.
    pub(crate) seeding: Duration,
    wal: Option<WalSampler>,
}

impl Catalog {
    /// An empty catalogue on `hub`; on SQLite, its `-wal` file is sampled from now on.
    pub(crate) fn new(hub: &TestHub, backend: Backend) -> Self {
        let wal = match backend {
            Backend::Sqlite => thub_core::storage::sqlite_file(&hub.database.url).map(WalSampler::start),
            Backend::Postgres => None,
        };
        Self { owners: Vec::new(), endpoints: 0, seeding: Duration::ZERO, wal }
    }

    /// Adds endpoints until there are `target`.
    pub(crate) async fn grow_to(&mut self, hub: &TestHub, server: &TestServer, target: usize) {
        let client = thub_tests::http_client();
        let started = Instant::now();
        while self.endpoints < target {
            let name = format!("owner{:03}", self.owners.len());
            let owner = hub.register(&name).await;
            let first = self.endpoints;
            let count = BATCH.min(target - first);
            let endpoints: Vec<serde_json::Value> = (first..first + count).map(endpoint).collect();
            let response = client
                .post(server.url("/api/v1/endpoints/sync"))
                .header("authorization", owner.bearer())
                .json(&serde_json::json!({"endpoints": endpoints}))
                .send()
                .await
                .expect("sync");
            assert!(response.status().is_success(), "seeding failed: {}", response.status());
            self.owners.push(name);
            self.endpoints += count;
            if self.endpoints.is_multiple_of(20_000) {
                eprintln!("seeded {} endpoints", self.endpoints);
            }
        }
        // PostgreSQL plans from statistics, which autovacuum refreshes a minute or so after a
        // bulk load; measured right after seeding, the planner would still plan for an empty
        // table. Refresh them as it would.
        if hub.hub.db.get_database_backend() == sea_orm::DbBackend::Postgres {
            hub.hub.db.execute_unprepared("ANALYZE endpoints").await.expect("ANALYZE");
        }
        self.seeding += started.elapsed();
    }

    /// The largest `-wal` file seen so far, and where it is (SQLite only).
    pub(crate) fn wal_peak(&self) -> Option<(u64, PathBuf)> {
        self.wal.as_ref().map(|wal| (wal.peak.load(Ordering::Relaxed), wal.file.clone()))
    }
}

impl Drop for Catalog {
    fn drop(&mut self) {
        if let Some(wal) = &self.wal {
            wal.stop.store(true, Ordering::Relaxed);
        }
    }
}

/// Endpoint number `number`: 10 consecutive words of the vocabulary, shifted per endpoint.
fn endpoint(number: usize) -> serde_json::Value {
    let pick = |offset: usize| VOCABULARY[(number / 100 * 7 + number * 3 + offset) % VOCABULARY.len()];
    let kind = ["model", "data_source", "agent"][number % 3];
    serde_json::json!({
        "name": format!("{} {} {number}", pick(0), pick(1)),
        "type": kind,
        "visibility": if number % 10 == 9 { "private" } else { "public" },
        "description": format!("A {} {} for {}", pick(2), pick(3), pick(4)),
        "tags": [pick(5), pick(6)],
        "readme": format!("# {}\n\nServes {} and {} requests.", pick(7), pick(8), pick(9)),
    })
}

/// Polls the size of a database's `-wal` file every 10 ms on a thread of its own (the
/// runtime is busy seeding) and keeps the largest.
struct WalSampler {
    file: PathBuf,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl WalSampler {
    fn start(database: PathBuf) -> Self {
        let file = PathBuf::from(format!("{}-wal", database.display()));
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (watched, largest, stopped) = (file.clone(), peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let size = std::fs::metadata(&watched).map(|metadata| metadata.len()).unwrap_or(0);
                largest.fetch_max(size, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Self { file, peak, stop }
    }
}
