//! Shared test support: a hub per test on a fresh database (SQLite in a temp folder, or a fresh
//! PostgreSQL database when `TEST_DATABASE_URL` is set), in-process clients, real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

pub mod bench;

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
    /// Its clock, stopped (at 2026-01-01T00:00:00Z, or the start time) until advanced.
    pub clock: ManualClock,
    /// The database, kept alive for the hub.
    pub database: TestDatabase,
}

impl TestHub {
    /// A hub with test defaults.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// A hub whose clock starts at the real current time, for clients that check token times
    /// against their own clock (PyJWT, browsers).
    pub async fn start_now(backend: Backend) -> Self {
        Self::start_at(backend, Utc::now(), |_| {}).await
    }

    /// [`TestHub::start_now`] adjusted by `configure`.
    pub async fn start_at_now_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> Self {
        Self::start_at(backend, Utc::now(), configure).await
    }

    /// A hub with test defaults adjusted by `configure`.
    pub async fn start_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> Self {
        Self::start_at(backend, Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(), configure).await
    }

    async fn start_at(backend: Backend, start: chrono::DateTime<Utc>, configure: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = TestDatabase::create(backend, dir.path()).await;
        let mut config = test_config(dir.path());
        config.database.url = thub_core::config::Secret::new(database.url.clone());
        configure(&mut config);
        let clock = ManualClock::new(start);
        let hub = Hub::build_with_clock(config, Arc::new(clock.clone())).await.expect("hub builds");
        Self { hub, dir, clock, database }
    }

    /// A second instance of this hub, as a cluster would run it: its own `Hub` on the same
    /// database, folder and clock, with this one's settings adjusted by `configure`.
    pub async fn another_instance(&self, configure: impl FnOnce(&mut Config)) -> Hub {
        let mut config = (*self.hub.config).clone();
        configure(&mut config);
        Hub::build_with_clock(config, Arc::new(self.clock.clone())).await.expect("hub builds")
    }

    /// An in-process client through the same endpoint the server uses.
    pub fn client(&self) -> TestClient<impl Endpoint<Output = Response>> {
        TestClient::new(self.hub.endpoint())
    }

    /// Serves the hub on a real socket on 127.0.0.1; stops when the returned server is dropped.
    pub async fn serve(&self) -> TestServer {
        serve(&self.hub).await
    }
}

/// Serves `hub` on a real socket on 127.0.0.1; stops when the returned server is dropped.
pub async fn serve(hub: &Hub) -> TestServer {
    let limits = thub_core::server::ConnectionLimits::from_config(&hub.config.server);
    TestServer::start_with_limits(hub.endpoint(), limits).await
}

/// Points `config` at the test Redis with a key prefix of its own, so concurrent tests never
/// share counters. Returns false (and the test should skip) when `TEST_REDIS_URL` is unset.
pub fn use_redis(config: &mut Config, prefix: &str) -> bool {
    let Some(url) = redis_url() else { return false };
    config.redis.url = thub_core::config::Secret::new(url);
    config.redis.key_prefix = format!("thub-test:{prefix}:");
    true
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
    /// Serves `endpoint` on a fresh loopback port with the default connection limits.
    pub async fn start(endpoint: impl Endpoint<Output = Response> + 'static) -> Self {
        Self::start_with_limits(endpoint, thub_core::server::ConnectionLimits::default()).await
    }

    /// Serves `endpoint` on a fresh loopback port through thub's own connection loop.
    pub async fn start_with_limits(
        endpoint: impl Endpoint<Output = Response> + 'static,
        limits: thub_core::server::ConnectionLimits,
    ) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let stopped = async {
                let _ = stopped.await;
            };
            let grace = std::time::Duration::from_secs(5);
            let _ = thub_core::server::serve(endpoint, listener, None, limits, stopped, grace).await;
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

/// A logged-in user in a test.
#[derive(Debug, Clone)]
pub struct Session {
    /// User id.
    pub id: i64,
    /// Access token.
    pub access: String,
    /// Refresh token.
    pub refresh: String,
}

impl Session {
    /// `Bearer <access token>`.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.access)
    }
}

/// The password every test user gets.
pub const PASSWORD: &str = "correct-horse-1";

impl TestHub {
    /// Registers `username` through the API and returns its session.
    pub async fn register(&self, username: &str) -> Session {
        let response = self
            .client()
            .post("/api/v1/auth/register")
            .body_json(&serde_json::json!({
                "username": username,
                "email": format!("{username}@example.com"),
                "full_name": format!("{username} Example"),
                "password": PASSWORD,
            }))
            .send()
            .await;
        response.assert_status(poem::http::StatusCode::CREATED);
        let body: serde_json::Value = response.0.into_body().into_json().await.expect("JSON");
        Session {
            id: body["user"]["id"].as_i64().expect("id"),
            access: body["access_token"].as_str().expect("access").to_owned(),
            refresh: body["refresh_token"].as_str().expect("refresh").to_owned(),
        }
    }

    /// Creates a site administrator (the seeding hook the API deliberately lacks) and logs in.
    pub async fn admin(&self, username: &str) -> Session {
        let new = thub_core::accounts::NewUser {
            username: username.to_owned(),
            email: Some(format!("{username}@example.com")),
            full_name: "Admin".to_owned(),
            password: PASSWORD.to_owned(),
            role: thub_plugin_sdk::Role::Admin,
        };
        self.hub.accounts.create_user(new).await.expect("admin created");
        self.login(username, PASSWORD).await
    }

    /// Logs in through the OAuth2 form.
    pub async fn login(&self, username: &str, password: &str) -> Session {
        let response = self
            .client()
            .post("/api/v1/auth/login")
            .content_type("application/x-www-form-urlencoded")
            .body(format!("username={username}&password={password}"))
            .send()
            .await;
        response.assert_status_is_ok();
        let body: serde_json::Value = response.0.into_body().into_json().await.expect("JSON");
        let access = body["access_token"].as_str().expect("access").to_owned();
        let me: serde_json::Value = self
            .client()
            .get("/api/v1/auth/me")
            .header("authorization", format!("Bearer {access}"))
            .send()
            .await
            .0
            .into_body()
            .into_json()
            .await
            .expect("JSON");
        Session {
            id: me["id"].as_i64().expect("id"),
            access,
            refresh: body["refresh_token"].as_str().expect("refresh").to_owned(),
        }
    }
}

/// Reads a test response as JSON.
pub async fn json(response: poem::test::TestResponse) -> serde_json::Value {
    response.0.into_body().into_json().await.expect("a JSON body")
}

/// Runs a Python client script from `tests/python/` with `args`; panics with its output unless
/// it exits 0. The clients are installed by `scripts/test` (tests/python/requirements.txt).
pub async fn run_python(script: &str, args: &[&str]) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python").join(script);
    let output = tokio::process::Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .await
        .expect("python3 runs (scripts/test installs the Python clients)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    stdout
}

impl TestHub {
    /// `POST` JSON as `session` (or anonymously), returning status and body.
    pub async fn post_json(
        &self,
        session: Option<&Session>,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let client = self.client();
        let mut request = client.post(path).body_json(&body);
        if let Some(session) = session {
            request = request.header("authorization", session.bearer());
        }
        answer(request.send().await).await
    }

    /// `GET` as `session` (or anonymously), returning status and body.
    pub async fn get_json(&self, session: Option<&Session>, path: &str) -> (u16, serde_json::Value) {
        let client = self.client();
        let mut request = client.get(path).header("accept", "application/json");
        if let Some(session) = session {
            request = request.header("authorization", session.bearer());
        }
        answer(request.send().await).await
    }

    /// `PATCH`/`PUT`/`DELETE` with a JSON body as `session`, returning status and body.
    pub async fn send_json(
        &self,
        method: poem::http::Method,
        session: Option<&Session>,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let client = self.client();
        let mut request = client.request(method, path).body_json(&body);
        if let Some(session) = session {
            request = request.header("authorization", session.bearer());
        }
        answer(request.send().await).await
    }

    /// Creates an endpoint as `session` and returns it (panics unless 201).
    pub async fn endpoint(&self, session: &Session, body: serde_json::Value) -> serde_json::Value {
        let (status, created) = self.post_json(Some(session), "/api/v1/endpoints", body).await;
        assert_eq!(status, 201, "{created}");
        created
    }
}

async fn answer(response: poem::test::TestResponse) -> (u16, serde_json::Value) {
    let status = response.0.status().as_u16();
    let text = response.0.into_body().into_string().await.expect("body");
    let value = if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
    };
    (status, value)
}

/// Polls `check` every 20 ms until it holds, and fails the test naming `what` if it has not
/// after `seconds`. The one way tests wait for something asynchronous: a sleep is never a proof.
pub async fn eventually<F: AsyncFnMut() -> bool>(what: &str, seconds: u64, mut check: F) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "timed out after {seconds} s waiting for: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A `redis-server` of the test's own on a free port, for killing and restarting mid-test
/// (the shared `TEST_REDIS_URL` one must never be stopped). Killed on drop.
pub struct RedisServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<std::process::Child>,
}

impl RedisServer {
    /// Starts one, or returns `None` when `redis-server` is not installed.
    pub async fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let mut server = Self { port, child: None };
        server.restart().await.then_some(server)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL: an outage, not a shutdown) and waits until the port refuses.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty, and waits until it answers PING.
    pub async fn restart(&mut self) -> bool {
        self.kill();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut connection) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING").query_async::<String>(&mut connection).await.is_ok()
            {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        false
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A command for the real `thub` binary at `binary` (`env!("CARGO_BIN_EXE_thub")` in the tests
/// that Cargo hands it to) in `folder`, without the developer's `THUB_*` or `RUST_LOG`.
pub fn thub_command(binary: &str, folder: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(binary);
    command.current_dir(folder);
    for (name, _) in std::env::vars() {
        if name.starts_with("THUB_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
}
