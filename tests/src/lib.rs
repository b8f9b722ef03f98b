//! Shared test support: a hub per test on a fresh database (SQLite in a temp folder, or a fresh
//! PostgreSQL database when `TEST_DATABASE_URL` is set), in-process clients, real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use poem::test::TestClient;
use poem::{Endpoint, Response};
use sea_orm::{ConnectionTrait, Database};
use thub_core::{Config, Hub};
use thub_plugin_sdk::ManualClock;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the test's temp folder.
    Sqlite,
    /// A fresh database on `TEST_DATABASE_URL`.
    Postgres,
}

/// Generates `<name>::sqlite` and `<name>::postgres` tests from `async fn <name>(Backend)`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::postgres_url().is_none() {
                    eprintln!("skipped: TEST_DATABASE_URL not set");
                    return;
                }
                super::$name($crate::Backend::Postgres).await;
            }
        }
    )*};
}

/// The PostgreSQL server tests may create databases on, if configured.
pub fn postgres_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL").ok().filter(|url| !url.is_empty())
}

/// The Redis server tests may use, if configured.
pub fn redis_url() -> Option<String> {
    std::env::var("TEST_REDIS_URL").ok().filter(|url| !url.is_empty())
}

/// A database for one test; a PostgreSQL database is dropped when this is.
pub struct TestDatabase {
    /// Connection URL.
    pub url: String,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// A fresh, empty database on `backend`, its SQLite file under `folder`.
    pub async fn create(backend: Backend, folder: &std::path::Path) -> Self {
        match backend {
            Backend::Sqlite => Self { url: format!("sqlite://{}", folder.join("test.db").display()), postgres: None },
            Backend::Postgres => {
                let server = postgres_url().expect("TEST_DATABASE_URL");
                let name = format!("thub_test_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(&server).await.expect("connect to TEST_DATABASE_URL");
                admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.expect("create database");
                admin.close().await.ok();
                let url = with_database(&server, &name);
                Self { url, postgres: Some((server, name)) }
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((server, name)) = self.postgres.take() else { return };
        // Drop runs outside async context guarantees; use a private runtime on a thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let admin = Database::connect(&server).await.ok()?;
                admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await.ok()?;
                admin.close().await.ok()
            })
        })
        .join();
    }
}

/// `server` (a PostgreSQL URL) pointing at database `name`.
pub fn with_database(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server, None),
    };
    let scheme_end = base.find("://").map(|index| index + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// A hub built in-process for one test, with its own folder, database and manual clock.
pub struct TestHub {
    /// The hub.
    pub hub: Hub,
    /// Its folder (the served root).
    pub dir: tempfile::TempDir,
    /// Its clock, stopped at 2026-01-01T00:00:00Z until advanced.
    pub clock: ManualClock,
    /// The database, kept alive for the hub.
    pub database: TestDatabase,
}

impl TestHub {
    /// A hub with test defaults.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// A hub with test defaults adjusted by `configure`.
    pub async fn start_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = TestDatabase::create(backend, dir.path()).await;
        let mut config = test_config(dir.path());
        config.database.url = thub_core::config::Secret::new(database.url.clone());
        configure(&mut config);
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
        let hub = Hub::build_with_clock(config, Arc::new(clock.clone())).await.expect("hub builds");
        Self { hub, dir, clock, database }
    }

    /// An in-process client through the same endpoint the server uses.
    pub fn client(&self) -> TestClient<impl Endpoint<Output = Response>> {
        TestClient::new(self.hub.endpoint())
    }

    /// Serves the hub on a real socket on 127.0.0.1; stops when the returned server is dropped.
    pub async fn serve(&self) -> TestServer {
        TestServer::start(self.hub.endpoint()).await
    }
}

/// Configuration for tests: the folder as root, a free port, nothing from the environment.
pub fn test_config(root: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.server.root = root.to_path_buf();
    config.server.port = 0;
    config.log.filter = "warn".to_owned();
    config
}

/// A server on `127.0.0.1:0`, stopped on drop.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Serves `endpoint` on a fresh loopback port.
    pub async fn start(endpoint: impl Endpoint<Output = Response> + 'static) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let acceptor = poem::listener::TcpAcceptor::from_std(listener).expect("acceptor");
        let task = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    endpoint,
                    async {
                        let _ = stopped.await;
                    },
                    Some(std::time::Duration::from_secs(5)),
                )
                .await;
        });
        Self { addr, stop: Some(stop), task: Some(task) }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the server and waits for in-flight requests.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A reqwest client for real-socket tests (installs the crypto providers first).
pub fn http_client() -> reqwest::Client {
    thub_core::app::install_crypto_providers();
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}
