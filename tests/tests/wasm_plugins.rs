//! WebAssembly plugins end to end: the example plugins built from source (`examples/wasm`, by
//! `scripts/build-wasm-examples`) and hostile components written as WAT in this file, loaded by a
//! real hub. Routes, grants, events, tasks, the admin API, hot reload, and containment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use poem::http::Method;
use serde_json::{Value, json};
use thub_core::Config;
use thub_core::config::WasmGrant;
use thub_core::wasm::entity::outbox;
use thub_tests::{Backend, Session, TestHub, eventually, on_every_backend};

/// A hub with a plugins folder of its own.
struct PluginHub {
    hub: TestHub,
    plugins: tempfile::TempDir,
}

/// The folder of an example plugin as `scripts/build-wasm-examples` lays it out.
fn built(id: &str) -> PathBuf {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/wasm/dist").join(id);
    assert!(
        folder.join("plugin.wasm").is_file(),
        "example plugin {id} is not built: run scripts/build-wasm-examples (scripts/test does)"
    );
    folder
}

/// Copies an example plugin into `plugins`.
fn install(plugins: &Path, id: &str) {
    let target = plugins.join(id);
    std::fs::create_dir_all(&target).unwrap();
    for file in ["plugin.toml", "plugin.wasm"] {
        std::fs::copy(built(id).join(file), target.join(file)).unwrap();
    }
}

/// Writes a plugin whose component is `wat` (component text), answering every GET and POST.
fn install_wat(plugins: &Path, id: &str, world: &str, wat: &str) {
    let target = plugins.join(id);
    std::fs::create_dir_all(&target).unwrap();
    let manifest = format!(
        "id = \"{id}\"\nversion = \"0.0.1\"\napi_version = \"0.1.0\"\nworld = \"{world}\"\n\n\
         [[routes]]\npath = \"/*\"\nmethods = [\"GET\", \"POST\"]\npublic = true\n"
    );
    std::fs::write(target.join("plugin.toml"), manifest).unwrap();
    std::fs::write(target.join("plugin.wasm"), wat).unwrap();
}

fn grant(capabilities: &[&str]) -> WasmGrant {
    WasmGrant { capabilities: capabilities.iter().map(|name| (*name).to_owned()).collect(), ..WasmGrant::default() }
}

impl PluginHub {
    async fn start(backend: Backend, setup: impl FnOnce(&Path), configure: impl FnOnce(&mut Config)) -> Self {
        let plugins = tempfile::tempdir().unwrap();
        setup(plugins.path());
        let dir = plugins.path().to_path_buf();
        let hub = TestHub::start_with(backend, |config| {
            config.wasm.dir = dir;
            configure(config);
        })
        .await;
        if let Some(host) = &hub.hub.wasm {
            host.loaded().await;
        }
        Self { hub, plugins }
    }

    /// Sends a request; returns status, body text and the `code` of an error body.
    async fn send(
        &self,
        method: Method,
        session: Option<&Session>,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (u16, String, poem::http::HeaderMap) {
        let client = self.hub.client();
        let mut request = client.request(method, path).body(body.to_owned());
        if let Some(session) = session {
            request = request.header("authorization", session.bearer());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await;
        let status = response.0.status().as_u16();
        let headers = response.0.headers().clone();
        (status, response.0.into_body().into_string().await.unwrap(), headers)
    }

    async fn get(&self, session: Option<&Session>, path: &str) -> (u16, String) {
        let (status, body, _) = self.send(Method::GET, session, path, "", &[]).await;
        (status, body)
    }

    async fn list(&self, admin: &Session) -> Vec<Value> {
        let (status, body) = self.hub.get_json(Some(admin), "/api/v1/plugins").await;
        assert_eq!(status, 200, "{body}");
        body.as_array().unwrap().clone()
    }

    async fn plugin(&self, admin: &Session, id: &str) -> Value {
        self.list(admin).await.into_iter().find(|plugin| plugin["id"] == id).unwrap_or_else(|| panic!("no {id}"))
    }

    async fn outbox(&self) -> Vec<outbox::Model> {
        use sea_orm::EntityTrait;
        outbox::Entity::find().all(&self.hub.hub.db).await.unwrap()
    }
}

fn error_code(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .map(|error| error["code"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

async fn hello_serves_routes_with_kv_config_and_principal(backend: Backend) {
    // The greeting is a secret kept in a file, as operators keep API keys.
    let secrets = tempfile::tempdir().unwrap();
    let greeting = secrets.path().join("greeting");
    std::fs::write(&greeting, "hi\n").unwrap();
    let hub = PluginHub::start(
        backend,
        |plugins| install(plugins, "hello"),
        |config| {
            let mut hello = grant(&["kv", "config"]);
            hello.config.insert("greeting".to_owned(), format!("${{file:{}}}", greeting.display()));
            config.wasm.grants.insert("hello".to_owned(), hello);
            config.wasm.max_request_bytes = 1024;
        },
    )
    .await;
    let alice = hub.hub.register("alice").await;

    assert_eq!(hub.get(Some(&alice), "/plugins/hello/greet").await, (200, "hi, alice! visit #1".to_owned()));
    let (status, body, headers) = hub.send(Method::GET, Some(&alice), "/plugins/hello/greet", "", &[]).await;
    assert_eq!((status, body.as_str()), (200, "hi, alice! visit #2"));
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    // Public route, anonymous caller; the count survived both calls' instances.
    assert_eq!(hub.get(None, "/plugins/hello/count").await, (200, "{\"visits\": 2}".to_owned()));
    // A route that is not public needs a login.
    let (status, body) = hub.get(None, "/plugins/hello/greet").await;
    assert_eq!((status, error_code(&body).as_str()), (401, "auth.invalid_credentials"), "{body}");

    let (status, ..) = hub.send(Method::PUT, Some(&alice), "/plugins/hello/note", "remember the milk", &[]).await;
    assert_eq!(status, 204);
    assert_eq!(hub.get(Some(&alice), "/plugins/hello/note").await, (200, "remember the milk".to_owned()));
    // Too large a body is refused before the plugin runs, and the stored note is untouched.
    let (status, body, _) = hub.send(Method::PUT, Some(&alice), "/plugins/hello/note", &"x".repeat(2048), &[]).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(hub.get(Some(&alice), "/plugins/hello/note").await, (200, "remember the milk".to_owned()));

    // Undeclared methods, paths and plugins are 404 without instantiating anything.
    for (method, path) in [
        (Method::POST, "/plugins/hello/greet"),
        (Method::GET, "/plugins/hello/nope"),
        (Method::GET, "/plugins/ghost/x"),
    ] {
        let (status, body, _) = hub.send(method.clone(), Some(&alice), path, "", &[]).await;
        assert_eq!((status, error_code(&body).as_str()), (404, "plugins.not_found"), "{method} {path}: {body}");
    }
    let admin = hub.hub.admin("root").await;
    assert_eq!(hub.plugin(&admin, "hello").await["calls"], 6, "the 404s never reached the plugin");
}

async fn events_are_delivered_from_the_outbox(backend: Backend) {
    let hub = PluginHub::start(
        backend,
        |plugins| install(plugins, "events"),
        |config| {
            config.wasm.grants.insert("events".to_owned(), grant(&["kv", "emit", "events"]));
        },
    )
    .await;
    let mut bus = hub.hub.hub.events.subscribe();
    let bob = hub.hub.register("bob").await;
    hub.hub
        .endpoint(&bob, json!({"name": "Weather", "slug": "weather", "type": "model", "visibility": "public"}))
        .await;
    eventually("both events counted", 15, || async {
        hub.get(None, "/plugins/events/stats").await.1 == r#"{"user.registered": 1, "endpoint.created": 1, "tick": 0}"#
    })
    .await;
    // The plugin's own events are namespaced under its id.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(5), bus.recv()).await.unwrap().unwrap();
        if event.kind == "plugin.events.seen" {
            seen.push(event.data["kind"].as_str().unwrap().to_owned());
        }
    }
    seen.sort();
    assert_eq!(seen, ["endpoint.created", "user.registered"]);
    eventually("the outbox emptied", 5, || async { hub.outbox().await.is_empty() }).await;
}

on_every_backend!(hello_serves_routes_with_kv_config_and_principal, events_are_delivered_from_the_outbox);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_decide_what_a_plugin_may_call() {
    // kv granted, config not: the configured greeting stays hidden.
    let hub = PluginHub::start(
        Backend::Sqlite,
        |plugins| {
            install(plugins, "hello");
            install(plugins, "misbehaving");
        },
        |config| {
            let mut hello = grant(&["kv"]);
            hello.config.insert("greeting".to_owned(), "hi".to_owned());
            config.wasm.grants.insert("hello".to_owned(), hello);
        },
    )
    .await;
    let alice = hub.hub.register("alice").await;
    assert_eq!(hub.get(Some(&alice), "/plugins/hello/greet").await, (200, "hello, alice! visit #1".to_owned()));
    let (status, body) = hub.get(None, "/plugins/misbehaving/exfiltrate").await;
    assert_eq!((status, body.as_str()), (403, "refused: capability http is not granted"));
    // Granted storage still has limits: a value over 64 KiB is refused and the old one kept.
    let (status, ..) = hub.send(Method::PUT, Some(&alice), "/plugins/hello/note", "small", &[]).await;
    assert_eq!(status, 204);
    let (status, body, _) = hub.send(Method::PUT, Some(&alice), "/plugins/hello/note", &"x".repeat(70_000), &[]).await;
    assert_eq!((status, error_code(&body).as_str()), (502, "plugins.failed"), "{body}");
    assert_eq!(hub.get(Some(&alice), "/plugins/hello/note").await, (200, "small".to_owned()));

    // A secret that cannot be read keeps the plugin from loading, and says why.
    let unreadable = PluginHub::start(
        Backend::Sqlite,
        |plugins| install(plugins, "hello"),
        |config| {
            let mut hello = grant(&["config"]);
            hello.config.insert("greeting".to_owned(), "${file:/nonexistent/greeting}".to_owned());
            config.wasm.grants.insert("hello".to_owned(), hello);
        },
    )
    .await;
    let problem = unreadable.hub.hub.wasm.as_ref().unwrap().list()[0].problem.clone().unwrap();
    assert!(problem.contains("config greeting: cannot read /nonexistent/greeting"), "{problem}");
    assert_eq!(unreadable.get(None, "/plugins/hello/count").await.0, 404);

    // Nothing granted: storage writes fail (the route answers 502), reads see nothing.
    let bare = PluginHub::start(Backend::Sqlite, |plugins| install(plugins, "hello"), |_| {}).await;
    let alice = bare.hub.register("alice").await;
    let (status, body) = bare.get(Some(&alice), "/plugins/hello/greet").await;
    assert_eq!((status, error_code(&body).as_str()), (502, "plugins.failed"), "{body}");
    assert_eq!(bare.get(None, "/plugins/hello/count").await, (200, "{\"visits\": 0}".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_http_follows_the_grant_and_refuses_internal_addresses() {
    #[poem::handler]
    fn data(request: &poem::Request) -> String {
        let credentials = request.headers().contains_key("authorization") || request.headers().contains_key("cookie");
        format!("upstream says hi; credentials seen: {credentials}")
    }
    let upstream = thub_tests::TestServer::start(poem::Route::new().at("/data", poem::get(data))).await;
    let url = upstream.url("/data");
    let hosts = |grant: &mut WasmGrant| grant.http_hosts = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];

    let guarded = PluginHub::start(
        Backend::Sqlite,
        |plugins| install(plugins, "misbehaving"),
        |config| {
            let mut granted = grant(&["http"]);
            hosts(&mut granted);
            config.wasm.grants.insert("misbehaving".to_owned(), granted);
        },
    )
    .await;
    let localhost = url.replace("127.0.0.1", "localhost");
    for (target, refusal) in [
        (url.as_str(), "resolves to a private or loopback address"),
        (localhost.as_str(), "resolves to a private or loopback address"),
        ("http://example.com/", "host example.com is not granted"),
        ("file:///etc/passwd", "only http and https URLs"),
        ("http://169.254.169.254/latest/meta-data/", "host 169.254.169.254 is not granted"),
    ] {
        let (status, body) = guarded.get(None, &format!("/plugins/misbehaving/fetch?{target}")).await;
        assert_eq!(status, 403, "{target}: {body}");
        assert!(body.contains(refusal), "{target}: {body}");
    }

    let open = PluginHub::start(
        Backend::Sqlite,
        |plugins| install(plugins, "misbehaving"),
        |config| {
            let mut granted = grant(&["http"]);
            hosts(&mut granted);
            granted.allow_private_network = true;
            config.wasm.grants.insert("misbehaving".to_owned(), granted);
        },
    )
    .await;
    let alice = open.hub.register("alice").await;
    let (status, body, _) = open
        .send(
            Method::GET,
            Some(&alice),
            &format!("/plugins/misbehaving/fetch?{url}"),
            "",
            &[("cookie", "session=secret")],
        )
        .await;
    assert_eq!((status, body.as_str()), (200, "upstream says hi; credentials seen: false"));
    // The plugin never saw the caller's credentials in the first place.
    let (status, body, _) = open
        .send(Method::GET, Some(&alice), "/plugins/misbehaving/headers", "", &[("cookie", "a=b"), ("x-trace", "1")])
        .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = body.lines().collect();
    assert!(names.contains(&"x-trace"), "{body}");
    assert!(!names.iter().any(|name| ["authorization", "cookie", "proxy-authorization"].contains(name)), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_retried_with_backoff_then_dead_lettered() {
    // `events` without `kv`: every delivery fails in the plugin.
    let hub = PluginHub::start(
        Backend::Sqlite,
        |plugins| install(plugins, "events"),
        |config| {
            config.wasm.grants.insert("events".to_owned(), grant(&["events"]));
        },
    )
    .await;
    hub.hub.register("carol").await;
    eventually("the first attempt failed", 10, || async {
        hub.outbox().await.first().is_some_and(|row| row.attempts == 1)
    })
    .await;
    let row = hub.outbox().await.remove(0);
    assert!(row.last_error.as_deref().unwrap_or_default().contains("kv is not granted"), "{row:?}");
    assert!(!row.dead);
    // Nothing happens before the backoff has passed: a whole round finds nothing due…
    let host = hub.hub.hub.wasm.clone().unwrap();
    host.run_due_work().await;
    assert_eq!(hub.outbox().await[0].attempts, 1);
    // …and every later attempt waits longer, until the event is set aside.
    let mut attempts = 1;
    while attempts < 8 {
        hub.hub.clock.advance(chrono::Duration::seconds(400));
        eventually("another attempt", 10, || async { hub.outbox().await[0].attempts > attempts }).await;
        attempts = hub.outbox().await[0].attempts;
    }
    let row = hub.outbox().await.remove(0);
    assert!(row.dead, "{row:?}");
    hub.hub.clock.advance(chrono::Duration::seconds(4000));
    host.run_due_work().await;
    assert_eq!(hub.outbox().await[0].attempts, 8, "dead letters are not retried");
    // A failing event handler is the plugin's answer, not a crash: the plugin still serves.
    assert_eq!(hub.get(None, "/plugins/events/stats").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_tasks_run_when_granted() {
    let every_second = |plugins: &Path| {
        install(plugins, "events");
        let manifest = plugins.join("events/plugin.toml");
        let text = std::fs::read_to_string(&manifest).unwrap().replace("every_seconds = 3600", "every_seconds = 1");
        std::fs::write(manifest, text).unwrap();
    };
    let hub = PluginHub::start(Backend::Sqlite, every_second, |config| {
        config.wasm.min_schedule_seconds = 1;
        config.wasm.grants.insert("events".to_owned(), grant(&["kv", "tasks"]));
    })
    .await;
    async fn ticks(hub: &PluginHub) -> u64 {
        let (_, stats) = hub.get(None, "/plugins/events/stats").await;
        serde_json::from_str::<Value>(&stats).unwrap()["tick"].as_u64().unwrap()
    }
    // The schedule runs on the hub's clock: a round sees the task, and it is due one interval
    // later, however long the test itself takes.
    let host = hub.hub.hub.wasm.clone().unwrap();
    host.run_due_work().await;
    for expected in 1..=2 {
        hub.hub.clock.advance(chrono::Duration::seconds(1));
        host.run_due_work().await;
        eventually("the task ran", 10, || async { ticks(&hub).await >= expected }).await;
    }

    let ungranted = PluginHub::start(Backend::Sqlite, every_second, |config| {
        config.wasm.min_schedule_seconds = 1;
        config.wasm.grants.insert("events".to_owned(), grant(&["kv"]));
    })
    .await;
    let host = ungranted.hub.hub.wasm.clone().unwrap();
    for _ in 0..3 {
        host.run_due_work().await;
        ungranted.hub.clock.advance(chrono::Duration::hours(1));
    }
    host.run_due_work().await;
    assert_eq!(ticks(&ungranted).await, 0, "tasks need their grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_plugins_are_contained_and_tripped() {
    let hub = PluginHub::start(
        Backend::Sqlite,
        |plugins| install(plugins, "misbehaving"),
        |config| {
            config.wasm.request_timeout_ms = 500;
            config.wasm.memory_mb = 32;
            config.wasm.failure_threshold = 3;
        },
    )
    .await;
    let mut bus = hub.hub.hub.events.subscribe();
    let started = Instant::now();
    let (status, body) = hub.get(None, "/plugins/misbehaving/spin").await;
    assert_eq!((status, error_code(&body).as_str()), (504, "plugins.timeout"), "{body}");
    // Deadline plus scheduling slack; the loop itself would never end.
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    for case in ["spin", "bomb", "panic"] {
        if case != "spin" {
            let (status, body) = hub.get(None, &format!("/plugins/misbehaving/{case}")).await;
            assert_eq!((status, error_code(&body).as_str()), (502, "plugins.failed"), "{case}: {body}");
        }
        // The next call gets a fresh instance and works; the hub itself never noticed.
        assert_eq!(hub.get(None, "/plugins/misbehaving/ok").await, (200, "fine".to_owned()), "after {case}");
        assert_eq!(hub.get(None, "/health").await.0, 200);
    }
    let admin = hub.hub.admin("root").await;
    let plugin = hub.plugin(&admin, "misbehaving").await;
    assert_eq!((plugin["calls"].as_u64(), plugin["errors"].as_u64()), (Some(6), Some(3)), "{plugin}");
    assert!(plugin["problem"].is_null(), "successes reset the streak: {plugin}");

    for _ in 0..3 {
        assert_eq!(hub.get(None, "/plugins/misbehaving/panic").await.0, 502);
    }
    let (status, body) = hub.get(None, "/plugins/misbehaving/ok").await;
    assert_eq!((status, error_code(&body).as_str()), (503, "plugins.unavailable"), "{body}");
    assert!(body.contains("disabled after 3 consecutive failures"), "{body}");
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), bus.recv()).await.unwrap().unwrap();
        if event.kind == "plugin.disabled" {
            assert_eq!(event.data["plugin_id"], "misbehaving");
            break;
        }
    }
    // An administrator switches it back on.
    let (status, _) = hub.hub.post_json(Some(&admin), "/api/v1/plugins/misbehaving/enable", json!({})).await;
    assert_eq!(status, 204);
    assert_eq!(hub.get(None, "/plugins/misbehaving/ok").await, (200, "fine".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_plugin_answers_503_with_retry_after() {
    let hub = PluginHub::start(
        Backend::Sqlite,
        |plugins| install(plugins, "misbehaving"),
        |config| {
            config.wasm.max_concurrency = 1;
            config.wasm.request_timeout_ms = 2000;
        },
    )
    .await;
    let spinning = hub.get(None, "/plugins/misbehaving/spin");
    let meanwhile = async {
        let host = hub.hub.hub.wasm.clone().unwrap();
        let spin_running = || host.list().iter().any(|plugin| plugin.id == "misbehaving" && plugin.in_flight == 1);
        thub_tests::eventually("the spinning call runs", 5, async || spin_running()).await;
        hub.send(Method::GET, None, "/plugins/misbehaving/ok", "", &[]).await
    };
    let ((spin_status, _), (status, body, headers)) = tokio::join!(spinning, meanwhile);
    assert_eq!(spin_status, 504);
    assert_eq!((status, error_code(&body).as_str()), (503, "plugins.busy"), "{body}");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(hub.get(None, "/plugins/misbehaving/ok").await, (200, "fine".to_owned()));
}

async fn the_admin_api_switches_and_reloads_plugins(backend: Backend) {
    let hub = PluginHub::start(
        backend,
        |plugins| {
            install(plugins, "hello");
            install(plugins, "events");
        },
        |config| {
            config.wasm.grants.insert("hello".to_owned(), grant(&["kv"]));
        },
    )
    .await;
    let admin = hub.hub.admin("root").await;
    let alice = hub.hub.register("alice").await;
    assert_eq!(hub.hub.get_json(None, "/api/v1/plugins").await.0, 401);
    assert_eq!(hub.hub.get_json(Some(&alice), "/api/v1/plugins").await.0, 403);
    let ids: Vec<Value> = hub.list(&admin).await.iter().map(|plugin| plugin["id"].clone()).collect();
    assert_eq!(ids, [json!("events"), json!("hello")]);
    let hello = hub.plugin(&admin, "hello").await;
    assert!(hello["routes"].as_array().unwrap().contains(&json!("GET /plugins/hello/greet")), "{hello}");
    let bytes = std::fs::read(hub.plugins.path().join("hello/plugin.wasm")).unwrap();
    assert_eq!(hello["sha256"], sha256_hex(&bytes));
    assert_eq!((hello["enabled"].as_bool(), hello["world"].as_str()), (Some(true), Some("plugin")));

    let greet = || hub.get(Some(&alice), "/plugins/hello/greet");
    assert_eq!(hub.hub.post_json(Some(&alice), "/api/v1/plugins/hello/disable", json!({})).await.0, 403);
    assert_eq!(hub.hub.post_json(Some(&admin), "/api/v1/plugins/ghost/disable", json!({})).await.0, 404);
    assert_eq!(hub.hub.post_json(Some(&admin), "/api/v1/plugins/hello/disable", json!({})).await.0, 204);
    let (status, body) = greet().await;
    assert_eq!((status, error_code(&body).as_str()), (503, "plugins.unavailable"), "{body}");
    assert_eq!(hub.plugin(&admin, "hello").await["problem"], "disabled by the operator");
    assert_eq!(hub.hub.post_json(Some(&admin), "/api/v1/plugins/hello/enable", json!({})).await.0, 204);
    assert_eq!(greet().await.0, 200);

    // Another instance (or `thub plugin disable`) flips the switch in the database.
    thub_core::wasm::switch(&hub.hub.hub.db, "hello", false).await.unwrap();
    eventually("the switch reached this instance", 10, || async { greet().await.0 == 503 }).await;
    thub_core::wasm::switch(&hub.hub.hub.db, "hello", true).await.unwrap();
    eventually("the switch came back", 10, || async { greet().await.0 == 200 }).await;

    // A broken new version is refused; the previous one keeps serving.
    std::fs::write(hub.plugins.path().join("hello/plugin.wasm"), b"\0asm broken").unwrap();
    let (status, body) = hub.hub.post_json(Some(&admin), "/api/v1/plugins/hello/reload", json!({})).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("plugins.load_failed")), "{body}");
    assert!(body["detail"].as_str().unwrap().contains("not a valid component"), "{body}");
    assert_eq!(greet().await.0, 200);
    let problem = hub.plugin(&admin, "hello").await["problem"].as_str().unwrap().to_owned();
    assert!(problem.starts_with("the new version did not load"), "{problem}");
    std::fs::write(hub.plugins.path().join("hello/plugin.wasm"), &bytes).unwrap();
    assert_eq!(hub.hub.post_json(Some(&admin), "/api/v1/plugins/hello/reload", json!({})).await.0, 204);
    assert!(hub.plugin(&admin, "hello").await["problem"].is_null());
    // The store outlived every switch and reload.
    let (_, count) = hub.get(None, "/plugins/hello/count").await;
    let visits = serde_json::from_str::<Value>(&count).unwrap()["visits"].as_u64().unwrap();
    assert!(visits >= 4, "{count}");
    assert_eq!(greet().await, (200, format!("hello, alice! visit #{}", visits + 1)));
}

on_every_backend!(the_admin_api_switches_and_reloads_plugins);

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_component_is_swapped_in_while_serving() {
    let hub = PluginHub::start(Backend::Sqlite, |plugins| install(plugins, "hello"), |_| {}).await;
    assert_eq!(hub.get(None, "/plugins/hello/count").await, (200, "{\"visits\": 0}".to_owned()));
    // Replace the component in place: the folder watcher loads it; the manifest's routes stay.
    let replacement = std::fs::read(built("events").join("plugin.wasm")).unwrap();
    let path = hub.plugins.path().join("hello/plugin.wasm");
    std::fs::write(&path, replacement).unwrap();
    eventually("the new component answers", 10, || async {
        hub.get(None, "/plugins/hello/count").await == (404, "no such page".to_owned())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_routes_are_in_the_openapi_document() {
    let hub = PluginHub::start(Backend::Sqlite, |plugins| install(plugins, "hello"), |_| {}).await;
    let (status, spec) = hub.hub.get_json(None, "/openapi.json").await;
    assert_eq!(status, 200);
    let greet = &spec["paths"]["/plugins/hello/greet"]["get"];
    assert_eq!(greet["tags"], json!(["plugin:hello"]), "{greet}");
    assert_eq!(greet["summary"], "Greet the caller (counts the visit).");
    assert!(spec["paths"]["/plugins/hello/note"]["put"].is_object());
    assert!(spec["paths"]["/api/v1/plugins"]["get"].is_object());
}

async fn middleware_answers_before_routing_when_granted(backend: Backend) {
    let hub = PluginHub::start(
        backend,
        |plugins| install(plugins, "maintenance"),
        |config| {
            config.wasm.grants.insert("maintenance".to_owned(), grant(&["kv", "middleware"]));
        },
    )
    .await;
    let admin = hub.hub.admin("root").await;
    let alice = hub.hub.register("alice").await;
    let endpoint = json!({"name": "Weather", "slug": "weather", "type": "model", "visibility": "public"});
    hub.hub.endpoint(&alice, endpoint.clone()).await;

    let set = |session: &Session, mode: &'static str| {
        let session = session.clone();
        let hub = &hub;
        async move { hub.send(Method::PUT, Some(&session), "/plugins/maintenance/mode", mode, &[]).await.0 }
    };
    assert_eq!(set(&alice, "on").await, 403);
    assert_eq!(set(&admin, "maybe").await, 422);
    assert_eq!(set(&admin, "on").await, 204);
    assert_eq!(hub.get(Some(&alice), "/plugins/maintenance/mode").await, (200, "on".to_owned()));

    // Writes are answered by the plugin; reads and signing in go through.
    let second = json!({"name": "Tides", "slug": "tides", "type": "model", "visibility": "public"});
    let (status, body) = hub.hub.post_json(Some(&alice), "/api/v1/endpoints", second.clone()).await;
    assert_eq!((status, body["code"].as_str()), (503, Some("maintenance")), "{body}");
    let (status, body, headers) = hub.send(Method::DELETE, Some(&alice), "/api/v1/endpoints/weather", "", &[]).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(headers["retry-after"], "600");
    assert_eq!(hub.hub.get_json(Some(&alice), "/api/v1/endpoints").await.0, 200);
    hub.hub.login("alice", thub_tests::PASSWORD).await;

    assert_eq!(set(&admin, "off").await, 204);
    assert_eq!(hub.hub.post_json(Some(&alice), "/api/v1/endpoints", second).await.0, 201);
}

on_every_backend!(middleware_answers_before_routing_when_granted);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn middleware_needs_its_grant() {
    // Without the grant the manifest's `middleware = true` is ignored.
    let hub = PluginHub::start(
        Backend::Sqlite,
        |plugins| install(plugins, "maintenance"),
        |config| {
            config.wasm.grants.insert("maintenance".to_owned(), grant(&["kv"]));
        },
    )
    .await;
    let admin = hub.hub.admin("root").await;
    let (status, ..) = hub.send(Method::PUT, Some(&admin), "/plugins/maintenance/mode", "on", &[]).await;
    assert_eq!(status, 204);
    let endpoint = json!({"name": "Weather", "slug": "weather", "type": "model", "visibility": "public"});
    assert_eq!(hub.hub.post_json(Some(&admin), "/api/v1/endpoints", endpoint).await.0, 201);
}

// ----- hostile components, as component text -----

/// A raw-world component around a core module (its fields) that exports `memory`, `cabi_realloc` and
/// `handle(kind_ptr, kind_len, input_ptr, input_len) -> answer_ptr`.
fn raw_component(core: &str) -> String {
    format!(
        r#"(component
  (core module $m {core})
  (core instance $i (instantiate $m))
  (func (export "handle") (param "kind" string) (param "input" (list u8)) (result (result (list u8) (error string)))
    (canon lift (core func $i "handle") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))))
)"#
    )
}

/// The canonical-ABI plumbing every raw core module here shares: a bump allocator above 4 KiB,
/// and `$answer`, which writes `ok(list)` to the return area at 0. `memory` is the memory line.
fn abi(memory: &str) -> String {
    format!(
        r#"
    {memory}
    (global $heap (mut i32) (i32.const 4096))
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
      (local $at i32)
      (local.set $at (global.get $heap))
      (global.set $heap (i32.add (global.get $heap) (i32.and (i32.add (local.get 3) (i32.const 7)) (i32.const -8))))
      (local.get $at))
    (func $answer (param $ptr i32) (param $len i32) (result i32)
      (i32.store8 (i32.const 0) (i32.const 0))
      (i32.store (i32.const 4) (local.get $ptr))
      (i32.store (i32.const 8) (local.get $len))
      (i32.const 0))"#
    )
}

const MEMORY: &str = r#"(memory (export "memory") 1)"#;

/// A data segment at `at` holding `text`, and its length.
fn data(at: u32, text: &str) -> (String, usize) {
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
    (format!(r#"(data (i32.const {at}) "{escaped}")"#), text.len())
}

/// A raw component whose `handle` runs `body` and then answers `answer` (a JSON response).
fn raw_plugin(body: &str, answer: &str) -> String {
    let (segment, length) = data(16, answer);
    raw_component(&format!(
        "{abi}\n    {segment}\n    (func (export \"handle\") (param i32 i32 i32 i32) (result i32)\n      {body}\n      (call $answer (i32.const 16) (i32.const {length})))",
        abi = abi(MEMORY)
    ))
}

const OK: &str = r#"{"status": 200, "body": "ok"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_components_are_contained() {
    // `good` says whether its instance is fresh: state must never leak from one call to the next.
    let (fresh, fresh_length) = data(16, r#"{"status": 200, "body": "fresh"}"#);
    let (reused, reused_length) = data(64, r#"{"status": 200, "body": "reused"}"#);
    let good = raw_component(&format!(
        r#"{abi}
    {fresh}
    {reused}
    (global $calls (mut i32) (i32.const 0))
    (func (export "handle") (param i32 i32 i32 i32) (result i32)
      (if (result i32) (i32.eqz (global.get $calls))
        (then (global.set $calls (i32.const 1)) (call $answer (i32.const 16) (i32.const {fresh_length})))
        (else (call $answer (i32.const 64) (i32.const {reused_length})))))"#,
        abi = abi(MEMORY)
    ));
    let start_loop = raw_component(&format!(
        r#"{abi}
    (func $spin (loop $forever (br $forever)))
    (start $spin)
    (func (export "handle") (param i32 i32 i32 i32) (result i32) (call $answer (i32.const 16) (i32.const 0)))"#,
        abi = abi(MEMORY)
    ));
    let big_memory = raw_component(&format!(
        r#"{abi}
    (func (export "handle") (param i32 i32 i32 i32) (result i32) (call $answer (i32.const 16) (i32.const 0)))"#,
        abi = abi(r#"(memory (export "memory") 2000)"#)
    ));
    let recursion = raw_component(&format!(
        r#"{abi}
    (func $down (param i32) (result i32) (call $down (i32.add (local.get 0) (i32.const 1))))
    (func (export "handle") (param i32 i32 i32 i32) (result i32) (call $down (i32.const 0)))"#,
        abi = abi(MEMORY)
    ));
    let (lie, _) = data(16, "x");
    let lying_length = raw_component(&format!(
        r#"{abi}
    {lie}
    (func (export "handle") (param i32 i32 i32 i32) (result i32) (call $answer (i32.const 16) (i32.const 2147483647)))"#,
        abi = abi(MEMORY)
    ));
    let (message, message_length) = data(16, "I refuse");
    let guest_error = raw_component(&format!(
        r#"{abi}
    {message}
    (func (export "handle") (param i32 i32 i32 i32) (result i32)
      (i32.store8 (i32.const 0) (i32.const 1))
      (i32.store (i32.const 4) (i32.const 16))
      (i32.store (i32.const 8) (i32.const {message_length}))
      (i32.const 0))"#,
        abi = abi(MEMORY)
    ));
    let oversized = raw_plugin("", &format!(r#"{{"status": 200, "body": "{}"}}"#, "a".repeat(8000)));

    // (id, component, expected status) for components that load but fail when called.
    let failing: Vec<(&str, String, u16)> = vec![
        ("handler-loop", raw_plugin("(loop $forever (br $forever))", OK), 504),
        ("start-loop", start_loop, 504),
        (
            "grow-until-refused",
            raw_plugin(
                "(loop $more (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) unreachable",
                OK,
            ),
            502,
        ),
        ("grow-forever", raw_plugin("(loop $more (drop (memory.grow (i32.const 16))) (br $more))", OK), 504),
        ("stack-overflow", recursion, 502),
        ("unreachable", raw_plugin("unreachable", OK), 502),
        ("divide-by-zero", raw_plugin("(drop (i32.div_u (i32.const 1) (i32.const 0)))", OK), 502),
        ("out-of-bounds", raw_plugin("(drop (i32.load (i32.const 2147483632)))", OK), 502),
        ("lying-length", lying_length, 502),
        ("guest-error", guest_error, 502),
        ("not-json", raw_plugin("", "hello"), 502),
        ("oversized", oversized, 502),
    ];
    // (id, world, component, words the load error must contain) for components refused at load.
    let refused: Vec<(&str, &str, String, &str)> = vec![
        // The instance pool's memories are capped at `memory_mb`: too big an initial memory is
        // refused when the plugin loads, before any call.
        ("big-memory", "raw", big_memory, "memory"),
        ("garbage", "raw", "\0asm\u{1}\0\0\0garbage".to_owned(), "not a valid component"),
        (
            "wrong-signature",
            "raw",
            r#"(component
  (core module $m (func (export "handle")))
  (core instance $i (instantiate $m))
  (func (export "handle") (canon lift (core func $i "handle"))))"#
                .to_owned(),
            "handle",
        ),
        ("missing-export", "raw", "(component)".to_owned(), "handle"),
        (
            "wrong-version",
            "plugin",
            r#"(component (instance $hooks) (export "thub:plugin/hooks@0.9.0" (instance $hooks)))"#.to_owned(),
            "implements thub:plugin 0.9.0; this host supports 0.1.x and 0.2.x",
        ),
        (
            "unknown-import",
            "raw",
            format!(
                r#"(component
  (import "evil:host/spawner" (instance $evil (export "spawn" (func))))
  (core func $spawn (canon lower (func $evil "spawn")))
  (core instance $imports (export "spawn" (func $spawn)))
  (core module $m
    (import "evil" "spawn" (func $spawn))
    {abi}
    (func (export "handle") (param i32 i32 i32 i32) (result i32) (call $spawn) (call $answer (i32.const 16) (i32.const 0))))
  (core instance $i (instantiate $m (with "evil" (instance $imports))))
  (func (export "handle") (param "kind" string) (param "input" (list u8)) (result (result (list u8) (error string)))
    (canon lift (core func $i "handle") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc")))))"#,
                abi = abi(MEMORY)
            ),
            "evil:host/spawner",
        ),
    ];

    let hub = PluginHub::start(
        Backend::Sqlite,
        |plugins| {
            install_wat(plugins, "good", "raw", &good);
            for (id, wat, _) in &failing {
                install_wat(plugins, id, "raw", wat);
            }
            for (id, world, wat, _) in &refused {
                install_wat(plugins, id, world, wat);
            }
        },
        |config| {
            config.wasm.request_timeout_ms = 300;
            config.wasm.memory_mb = 16;
            config.wasm.failure_threshold = 1000;
            config.wasm.max_response_bytes = 4096;
        },
    )
    .await;
    let admin = hub.hub.admin("root").await;
    assert_eq!(hub.get(None, "/plugins/good/x").await, (200, "fresh".to_owned()));
    for (id, _, expected) in &failing {
        let (status, body) = hub.get(None, &format!("/plugins/{id}/x")).await;
        assert_eq!(status, *expected, "{id}: {body}");
        let code = if *expected == 504 { "plugins.timeout" } else { "plugins.failed" };
        assert_eq!(error_code(&body), code, "{id}: {body}");
        assert!(!body.contains("wasm") && !body.contains("trap"), "internals stay in the log: {body}");
        assert_eq!(hub.get(None, "/plugins/good/x").await, (200, "fresh".to_owned()), "after {id}");
        assert_eq!(hub.get(None, "/health").await.0, 200, "after {id}");
        assert_eq!(hub.plugin(&admin, id).await["errors"], 1, "{id}");
    }
    for (id, _, _, words) in &refused {
        let plugin = hub.plugin(&admin, id).await;
        let problem = plugin["problem"].as_str().unwrap_or_default();
        assert!(problem.contains(words), "{id}: {plugin}");
        assert_eq!(plugin["enabled"], false, "{id}");
        assert_eq!(hub.get(None, &format!("/plugins/{id}/x")).await.0, 404, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_can_be_switched_off_entirely() {
    let hub =
        PluginHub::start(Backend::Sqlite, |plugins| install(plugins, "hello"), |config| config.wasm.enabled = false)
            .await;
    assert!(hub.hub.hub.wasm.is_none());
    assert_eq!(hub.get(None, "/plugins/hello/count").await.0, 404);
    let admin = hub.hub.admin("root").await;
    let (status, body) = hub.hub.get_json(Some(&admin), "/api/v1/plugins").await;
    assert_eq!((status, body["code"].as_str()), (503, Some("plugins.off")), "{body}");
}

// ----- the command line -----

/// Runs `thub ARGS` in `folder`; returns success and what it printed.
fn thub(folder: &Path, args: &[&str]) -> (bool, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_thub-cli"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("THUB_")) {
        command.env_remove(name);
    }
    let output = command.current_dir(folder).args(args).output().unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), printed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugin_command_lists_switches_and_reloads() {
    let folder = tempfile::tempdir().unwrap();
    let plugins = folder.path().join(".thub/plugins");
    install(&plugins, "hello");
    let (ok, printed) = thub(folder.path(), &["plugin", "list"]);
    assert!(ok, "{printed}");
    assert!(printed.contains("hello 0.1.0 (API 0.2.0, plugin): serving"), "{printed}");
    assert!(printed.contains("GET /plugins/hello/greet"), "{printed}");

    assert!(thub(folder.path(), &["plugin", "disable", "hello"]).0);
    let (_, printed) = thub(folder.path(), &["plugin", "list"]);
    assert!(printed.contains("hello 0.1.0 (API 0.2.0, plugin): disabled by the operator"), "{printed}");
    let (ok, printed) = thub(folder.path(), &["plugin", "enable", "ghost"]);
    assert!(!ok && printed.contains("no plugin 'ghost'"), "{printed}");
    assert!(thub(folder.path(), &["plugin", "enable", "hello"]).0);
    assert!(thub(folder.path(), &["plugin", "list"]).1.contains("serving"));

    let (ok, printed) = thub(folder.path(), &["plugin", "reload", "hello"]);
    assert!(ok && printed.contains("Plugin 'hello' loads"), "{printed}");
    std::fs::write(plugins.join("hello/plugin.wasm"), "not wasm").unwrap();
    let (ok, printed) = thub(folder.path(), &["plugin", "reload", "hello"]);
    assert!(!ok && printed.contains("plugin 'hello' does not load"), "{printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_plugin_crate_builds_and_serves() {
    let crates = tempfile::tempdir().unwrap();
    let dir = crates.path().to_str().unwrap();
    for (name, refusal) in [("Bad_Name", "lowercase letters"), ("9lives", "starting with a letter")] {
        let (ok, printed) = thub(crates.path(), &["plugin", "new", name, "--dir", dir]);
        assert!(!ok && printed.contains(refusal), "{name}: {printed}");
    }
    let (ok, printed) = thub(crates.path(), &["plugin", "new", "greeter", "--dir", dir]);
    assert!(ok, "{printed}");
    assert!(printed.contains("cargo build --release --target wasm32-wasip2"), "{printed}");
    let (ok, printed) = thub(crates.path(), &["plugin", "new", "greeter", "--dir", dir]);
    assert!(!ok && printed.contains("already exists"), "{printed}");

    // Build it as an author would, reusing the examples' lock file and build cache.
    let crate_dir = crates.path().join("greeter");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/wasm");
    std::fs::copy(examples.join("Cargo.lock"), crate_dir.join("Cargo.lock")).unwrap();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("wasm"),
        None => examples.join("target"),
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = std::process::Command::new(cargo)
        .current_dir(&crate_dir)
        .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"])
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // The manifest points into the crate's own target folder; put the build where it looks.
    let component = crate_dir.join("target/wasm32-wasip2/release/greeter.wasm");
    std::fs::create_dir_all(component.parent().unwrap()).unwrap();
    std::fs::copy(target.join("wasm32-wasip2/release/greeter.wasm"), &component).unwrap();

    let plugins = crates.path().to_path_buf();
    let hub = TestHub::start_with(Backend::Sqlite, |config| {
        config.wasm.dir = plugins;
        config.wasm.grants.insert("greeter".to_owned(), grant(&["kv"]));
    })
    .await;
    hub.hub.wasm.as_ref().unwrap().loaded().await;
    let alice = hub.register("alice").await;
    let (status, body) = hub.get_json(Some(&alice), "/plugins/greeter/hello").await;
    assert_eq!((status, body), (200, json!("hello, alice (greeting #1)")));
}

// ----- Python plugins (examples/wasm-python, built with componentize-py) -----

/// A compile cache shared by the tests that load the 18 MB Python component: each such test
/// would otherwise compile it again.
fn shared_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wasm-cache")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_plugin_uses_kv_config_events_and_http_and_is_contained() {
    #[poem::handler]
    fn data() -> &'static str {
        "upstream says hi"
    }
    let upstream = thub_tests::TestServer::start(poem::Route::new().at("/data", poem::get(data))).await;
    let hub = PluginHub::start(
        Backend::Sqlite,
        |plugins| install(plugins, "pyhello"),
        |config| {
            let mut granted = grant(&["kv", "config", "events", "emit", "http"]);
            granted.config.insert("greeting".to_owned(), "hi".to_owned());
            granted.http_hosts = vec!["127.0.0.1".to_owned()];
            granted.allow_private_network = true;
            config.wasm.grants.insert("pyhello".to_owned(), granted);
            config.wasm.cache_dir = shared_cache();
            config.wasm.request_timeout_ms = 3000;
            config.wasm.failure_threshold = 1000;
        },
    )
    .await;
    let admin = hub.hub.admin("root").await;
    assert_eq!(hub.plugin(&admin, "pyhello").await["state"], "serving");
    let alice = hub.hub.register("alice").await;

    // kv and config.
    assert_eq!(hub.get(Some(&alice), "/plugins/pyhello/hello").await, (200, "hi, alice (greeting #1)".to_owned()));
    assert_eq!(hub.get(Some(&alice), "/plugins/pyhello/hello").await, (200, "hi, alice (greeting #2)".to_owned()));
    assert_eq!(hub.get(None, "/plugins/pyhello/hello").await.0, 401);

    // Events, from the outbox, answered with the plugin's own event.
    let mut bus = hub.hub.hub.events.subscribe();
    hub.hub.register("bob").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, stats) = hub.get(None, "/plugins/pyhello/stats").await;
        // root (the administrator), alice and bob.
        if serde_json::from_str::<Value>(&stats).is_ok_and(|stats| stats["user.registered"] == 3) {
            break;
        }
        let pending = hub.outbox().await;
        assert!(Instant::now() < deadline, "the Python plugin did not count the registrations: {stats}; {pending:?}");
        // A failed delivery is retried after its backoff, on the hub's clock.
        if pending.iter().any(|row| row.attempts > 0) {
            eprintln!("a delivery failed and is retried: {pending:?}");
            hub.hub.clock.advance(chrono::Duration::seconds(60));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), bus.recv()).await.unwrap().unwrap();
        if event.kind == "plugin.pyhello.seen" {
            assert_eq!(event.data["kind"], "user.registered");
            break;
        }
    }

    // Outbound HTTP: a granted host answers; any other is refused by the host.
    let (status, body) = hub.get(None, &format!("/plugins/pyhello/fetch?{}", upstream.url("/data"))).await;
    assert_eq!((status, body.as_str()), (200, "upstream says hi"));
    let (status, body) = hub.get(None, "/plugins/pyhello/fetch?http://example.com/").await;
    assert_eq!((status, body.as_str()), (403, "refused: host example.com is not granted"));

    // Misbehaviour: each is contained, the plugin's next call and the hub go on.
    for (how, expected) in [("loop", 504), ("bomb", 502), ("raise", 502), ("import", 502), ("forbidden-call", 502)] {
        let (status, body) = hub.get(None, &format!("/plugins/pyhello/misbehave/{how}")).await;
        assert_eq!(status, expected, "{how}: {body}");
        assert!(!body.contains("Traceback") && !body.contains("wasm"), "internals stay in the log: {body}");
        assert_eq!(hub.get(None, "/health").await.0, 200, "after {how}");
        let (status, stats) = hub.get(None, "/plugins/pyhello/stats").await;
        assert_eq!(status, 200, "after {how}: {stats}");
    }
    let plugin = hub.plugin(&admin, "pyhello").await;
    assert_eq!(plugin["errors"], 5, "{plugin}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_compile_in_the_background_while_the_hub_serves() {
    // A cold cache: the Python component compiles for seconds; a broken plugin beside it.
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_path_buf();
    let setup = |plugins: &Path| {
        install(plugins, "pyhello");
        install_wat(plugins, "garbage", "raw", "\0asm\u{1}\0\0\0garbage");
    };
    let configure = |config: &mut Config| {
        config.wasm.cache_dir = cache_dir.clone();
        config.wasm.grants.insert("pyhello".to_owned(), grant(&["kv"]));
    };
    let plugins = tempfile::tempdir().unwrap();
    setup(plugins.path());
    let dir = plugins.path().to_path_buf();
    let started = Instant::now();
    let hub = TestHub::start_with(Backend::Sqlite, |config| {
        config.wasm.dir = dir.clone();
        configure(config);
    })
    .await;
    let host = hub.hub.wasm.clone().unwrap();
    assert_eq!(hub.get_json(None, "/health").await.0, 200);
    let built_and_answered = started.elapsed();
    let admin = hub.admin("root").await;
    let (_, list) = hub.get_json(Some(&admin), "/api/v1/plugins").await;
    let pyhello = list.as_array().unwrap().iter().find(|plugin| plugin["id"] == "pyhello").unwrap().clone();
    assert_eq!(pyhello["state"], "compiling", "{pyhello}");
    assert!(pyhello["progress"].as_str().unwrap().starts_with("compiling 17."), "{pyhello}");
    assert!(pyhello["routes"].as_array().unwrap().contains(&json!("GET /plugins/pyhello/stats")), "{pyhello}");
    // Its routes say when to come back; unknown ones are still 404.
    let response = hub.client().get("/plugins/pyhello/stats").send().await;
    assert_eq!(response.0.status().as_u16(), 503);
    assert_eq!(response.0.headers()["retry-after"], "2");
    let body = response.0.into_body().into_string().await.unwrap();
    assert_eq!(error_code(&body), "plugins.compiling", "{body}");
    assert_eq!(hub.get_json(None, "/plugins/pyhello/nope").await.0, 404);
    // The broken one is reported at once, not after the big one.
    let garbage = list.as_array().unwrap().iter().find(|plugin| plugin["id"] == "garbage").unwrap().clone();
    assert_eq!(garbage["state"], "failed", "{garbage}");
    assert!(garbage["problem"].as_str().unwrap().contains("not a valid component"), "{garbage}");

    host.loaded().await;
    let compiled_in = started.elapsed();
    assert_eq!(hub.get_json(None, "/plugins/pyhello/stats").await.0, 200);
    assert!(built_and_answered < compiled_in / 4, "answered in {built_and_answered:?}, compiled in {compiled_in:?}");

    // A restart finds the compiled code in the cache.
    drop(hub);
    let restarted = TestHub::start_with(Backend::Sqlite, |config| {
        config.wasm.dir = dir.clone();
        configure(config);
    })
    .await;
    let host = restarted.hub.wasm.clone().unwrap();
    let pyhello = host.list().into_iter().find(|plugin| plugin.id == "pyhello").unwrap();
    assert!(
        pyhello.state == "serving"
            || pyhello.progress.as_deref().is_some_and(|progress| progress.contains("from the cache")),
        "{pyhello:?}"
    );
    let restart = Instant::now();
    host.loaded().await;
    assert!(restart.elapsed() < compiled_in / 4, "cached load took {:?}", restart.elapsed());
    assert_eq!(restarted.get_json(None, "/plugins/pyhello/stats").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_plugins_are_refused_with_reasons() {
    let hub = PluginHub::start(
        Backend::Sqlite,
        |plugins| {
            install(plugins, "pyhello");
            // A route under another plugin's prefix.
            install_wat(plugins, "squatter", "raw", "(component)");
            let manifest = plugins.join("squatter/plugin.toml");
            let text =
                std::fs::read_to_string(&manifest).unwrap().replace("path = \"/*\"", "path = \"/plugins/pyhello/x\"");
            std::fs::write(manifest, text).unwrap();
        },
        |config| config.wasm.max_component_mb = 4,
    )
    .await;
    let admin = hub.hub.admin("root").await;
    let pyhello = hub.plugin(&admin, "pyhello").await;
    let problem = pyhello["problem"].as_str().unwrap();
    assert!(problem.contains("this host loads at most 4 MiB (wasm.max_component_mb)"), "{problem}");
    let squatter = hub.plugin(&admin, "squatter").await;
    let problem = squatter["problem"].as_str().unwrap();
    assert!(problem.contains("squatter") && problem.contains("belongs to plugin pyhello"), "{problem}");

    // The build script without componentize-py says how to install it.
    let python =
        std::process::Command::new("python3").args(["-c", "import sys; print(sys.executable)"]).output().unwrap();
    let python = String::from_utf8(python.stdout).unwrap();
    let empty = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/wasm-python/build");
    let output = std::process::Command::new(python.trim()).arg(script).env("PATH", empty.path()).output().unwrap();
    let printed = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(printed.contains("componentize-py is not installed"), "{printed}");
    assert!(printed.contains("python3 -m pip install 'componentize-py==0.25.1'"), "{printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_python_plugin_builds_and_serves() {
    let plugins = tempfile::tempdir().unwrap();
    let dir = plugins.path().to_str().unwrap();
    let (ok, printed) = thub(plugins.path(), &["plugin", "new", "greeter", "--lang", "python", "--dir", dir]);
    assert!(ok, "{printed}");
    assert!(printed.contains("./build"), "{printed}");
    let folder = plugins.path().join("greeter");
    for file in ["app.py", "plugin.toml", "build", "wit/plugin.wit"] {
        assert!(folder.join(file).is_file(), "{file}");
    }
    let output = std::process::Command::new(folder.join("build")).current_dir(&folder).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(folder.join("stubs/wit_world/imports/kv.py").is_file(), "typed stubs");
    assert!(folder.join("plugin.wasm").is_file());

    let plugins_dir = plugins.path().to_path_buf();
    let hub = TestHub::start_with(Backend::Sqlite, |config| {
        config.wasm.dir = plugins_dir;
        config.wasm.cache_dir = shared_cache();
        config.wasm.grants.insert("greeter".to_owned(), grant(&["kv"]));
    })
    .await;
    hub.hub.wasm.as_ref().unwrap().loaded().await;
    let alice = hub.register("alice").await;
    let (status, body) = hub.get_json(Some(&alice), "/plugins/greeter/hello").await;
    assert_eq!((status, body), (200, json!("hello, alice (greeting #1)")));

    // Edit, rebuild: the running hub compiles the new build in the background and swaps it in.
    let app = folder.join("app.py");
    let edited = std::fs::read_to_string(&app).unwrap().replace("f\"hello, {who}", "f\"hi, {who}");
    std::fs::write(&app, edited).unwrap();
    let output = std::process::Command::new(folder.join("build")).current_dir(&folder).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    eventually("the rebuilt plugin answers", 180, || async {
        let (_, body) = hub.get_json(Some(&alice), "/plugins/greeter/hello").await;
        body.as_str().is_some_and(|text| text.starts_with("hi, alice"))
    })
    .await;
}

// ----- JavaScript plugins (examples/wasm-js, built with componentize-js) -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_plugin_serves_and_is_contained() {
    let hub = PluginHub::start(
        Backend::Sqlite,
        |plugins| install(plugins, "jshello"),
        |config| {
            let mut granted = grant(&["kv", "config", "events", "emit"]);
            granted.config.insert("greeting".to_owned(), "hey".to_owned());
            config.wasm.grants.insert("jshello".to_owned(), granted);
            config.wasm.cache_dir = shared_cache();
            config.wasm.request_timeout_ms = 3000;
        },
    )
    .await;
    let alice = hub.hub.register("alice").await;
    assert_eq!(hub.get(Some(&alice), "/plugins/jshello/hello").await, (200, "hey, alice (greeting #1)".to_owned()));
    assert_eq!(hub.get(Some(&alice), "/plugins/jshello/hello").await, (200, "hey, alice (greeting #2)".to_owned()));
    eventually("the JavaScript plugin counted the registration", 30, || async {
        hub.get(None, "/plugins/jshello/stats").await == (200, r#"{"user.registered":1}"#.to_owned())
    })
    .await;
    for (how, expected) in [("loop", 504), ("throw", 502)] {
        let (status, body) = hub.get(None, &format!("/plugins/jshello/misbehave/{how}")).await;
        assert_eq!(status, expected, "{how}: {body}");
        assert_eq!(hub.get(None, "/health").await.0, 200, "after {how}");
        assert_eq!(hub.get(None, "/plugins/jshello/stats").await.0, 200, "after {how}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_reads_the_grants_again() {
    let hub = PluginHub::start(Backend::Sqlite, |plugins| install(plugins, "hello"), |_| {}).await;
    let host = hub.hub.hub.wasm.clone().unwrap();
    // The operator's file, as `thub serve` reads it again on every reload.
    let grants = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
    let source = grants.clone();
    host.read_grants_from(Box::new(move || Ok(source.lock().unwrap().clone())));
    let admin = hub.hub.admin("root").await;
    let alice = hub.hub.register("alice").await;
    let (status, body) = hub.get(Some(&alice), "/plugins/hello/greet").await;
    assert_eq!((status, error_code(&body).as_str()), (502, "plugins.failed"), "kv is not granted yet: {body}");

    grants.lock().unwrap().insert("hello".to_owned(), grant(&["kv"]));
    assert_eq!(hub.hub.post_json(Some(&admin), "/api/v1/plugins/hello/reload", json!({})).await.0, 204);
    assert_eq!(hub.get(Some(&alice), "/plugins/hello/greet").await, (200, "hello, alice! visit #1".to_owned()));

    grants.lock().unwrap().clear();
    assert_eq!(hub.hub.post_json(Some(&admin), "/api/v1/plugins/hello/reload", json!({})).await.0, 204);
    assert_eq!(hub.get(Some(&alice), "/plugins/hello/greet").await.0, 502, "revoked without a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn middleware_runs_in_the_operators_order_and_may_fail_closed() {
    // Two copies of the maintenance plugin: `gate` runs first and is critical.
    let hub = PluginHub::start(
        Backend::Sqlite,
        |plugins| {
            install(plugins, "maintenance");
            install(plugins, "maintenance");
            std::fs::rename(plugins.join("maintenance"), plugins.join("gate")).unwrap();
            let manifest = plugins.join("gate/plugin.toml");
            let text = std::fs::read_to_string(&manifest).unwrap().replace("id = \"maintenance\"", "id = \"gate\"");
            std::fs::write(manifest, text).unwrap();
            install(plugins, "maintenance");
        },
        |config| {
            config.wasm.middleware_order = vec!["gate".to_owned()];
            config.wasm.grants.insert("maintenance".to_owned(), grant(&["kv", "middleware"]));
            let mut gate = grant(&["kv", "middleware"]);
            gate.fail_closed = true;
            config.wasm.grants.insert("gate".to_owned(), gate);
        },
    )
    .await;
    let admin = hub.hub.admin("root").await;
    for id in ["gate", "maintenance"] {
        let (status, ..) = hub.send(Method::PUT, Some(&admin), &format!("/plugins/{id}/mode"), "on", &[]).await;
        assert_eq!(status, 204);
    }
    let calls = |plugin: Value| plugin["calls"].as_u64().unwrap();
    let (gate_before, maintenance_before) =
        (calls(hub.plugin(&admin, "gate").await), calls(hub.plugin(&admin, "maintenance").await));
    let endpoint = json!({"name": "Weather", "slug": "weather", "type": "model", "visibility": "public"});
    let (status, body) = hub.hub.post_json(Some(&admin), "/api/v1/endpoints", endpoint.clone()).await;
    assert_eq!((status, body["code"].as_str()), (503, Some("maintenance")), "{body}");
    assert_eq!(calls(hub.plugin(&admin, "gate").await), gate_before + 1, "gate answered first");
    assert_eq!(calls(hub.plugin(&admin, "maintenance").await), maintenance_before, "and alone");

    for id in ["gate", "maintenance"] {
        let (status, ..) = hub.send(Method::PUT, Some(&admin), &format!("/plugins/{id}/mode"), "off", &[]).await;
        assert_eq!(status, 204);
    }
    // A fail-open middleware that cannot run lets requests through…
    assert_eq!(hub.hub.post_json(Some(&admin), "/api/v1/plugins/maintenance/disable", json!({})).await.0, 204);
    assert_eq!(hub.hub.get_json(Some(&admin), "/api/v1/endpoints").await.0, 200);
    // …a fail-closed one refuses them until it runs again.
    assert_eq!(hub.hub.post_json(Some(&admin), "/api/v1/plugins/gate/disable", json!({})).await.0, 204);
    let (status, body) = hub.hub.get_json(Some(&admin), "/api/v1/endpoints").await;
    assert_eq!((status, body["code"].as_str()), (503, Some("plugins.middleware_unavailable")), "{body}");
    assert_eq!(hub.hub.post_json(Some(&admin), "/api/v1/plugins/gate/enable", json!({})).await.0, 204);
    assert_eq!(hub.hub.post_json(Some(&admin), "/api/v1/endpoints", endpoint).await.0, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_the_outbox_in_the_transaction_of_their_change() {
    // `events` without `kv`: deliveries fail, so rows stay where the test can see them.
    let hub = PluginHub::start(
        Backend::Sqlite,
        |plugins| install(plugins, "events"),
        |config| {
            config.wasm.grants.insert("events".to_owned(), grant(&["events"]));
        },
    )
    .await;
    // The row is there the moment the registration answers: no background round copied it.
    let alice = hub.hub.register("alice").await;
    let kinds = |rows: Vec<outbox::Model>| -> Vec<String> {
        rows.iter().map(|row| serde_json::from_str::<Value>(&row.event).unwrap()["kind"].to_string()).collect()
    };
    assert_eq!(kinds(hub.outbox().await), ["\"user.registered\""]);
    hub.hub.endpoint(&alice, json!({"name": "Model", "type": "model", "visibility": "public"})).await;
    assert_eq!(kinds(hub.outbox().await), ["\"user.registered\"", "\"endpoint.created\""]);
    // A change that fails records nothing: the slug is taken, the transaction never commits.
    let (status, _) = hub
        .hub
        .post_json(Some(&alice), "/api/v1/endpoints", json!({"name": "Model", "slug": "model", "type": "model"}))
        .await;
    assert_eq!(status, 400);
    // Rounds copy bus events; they must not copy a recorded one a second time.
    hub.hub.hub.wasm.clone().unwrap().run_due_work().await;
    assert_eq!(kinds(hub.outbox().await), ["\"user.registered\"", "\"endpoint.created\""]);
}

// ----- API 0.2: users, registry, on-response -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_0_2_plugins_look_up_users_and_endpoints_when_granted() {
    let hub = PluginHub::start(
        Backend::Sqlite,
        |plugins| install(plugins, "hello"),
        |config| {
            config.wasm.grants.insert("hello".to_owned(), grant(&["users", "registry"]));
        },
    )
    .await;
    let alice = hub.hub.register("alice").await;
    hub.hub
        .endpoint(&alice, json!({"name": "Weather", "slug": "weather", "type": "model", "visibility": "public"}))
        .await;
    hub.hub.endpoint(&alice, json!({"name": "Diary", "slug": "diary", "type": "model", "visibility": "private"})).await;

    let (status, body) = hub.get(None, "/plugins/hello/whois?alice").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("alice is "), "{body}");
    assert_eq!(hub.get(None, "/plugins/hello/whois?nobody").await, (404, "no such user".to_owned()));
    // What the registry shows depends on who calls: the owner sees the private one too.
    assert_eq!(hub.get(None, "/plugins/hello/endpoints?alice").await, (200, "alice/weather (public)".to_owned()));
    let (status, mine) = hub.get(Some(&alice), "/plugins/hello/endpoints?alice").await;
    assert_eq!(status, 200);
    let mut mine: Vec<&str> = mine.lines().collect();
    mine.sort();
    assert_eq!(mine, ["alice/diary (private)", "alice/weather (public)"]);

    // Without the grants the same calls find nothing.
    let bare = PluginHub::start(Backend::Sqlite, |plugins| install(plugins, "hello"), |_| {}).await;
    let alice = bare.hub.register("alice").await;
    bare.hub
        .endpoint(&alice, json!({"name": "Weather", "slug": "weather", "type": "model", "visibility": "public"}))
        .await;
    assert_eq!(bare.get(None, "/plugins/hello/whois?alice").await, (404, "no such user".to_owned()));
    assert_eq!(bare.get(Some(&alice), "/plugins/hello/endpoints?alice").await, (200, String::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_response_hook_sets_headers_on_every_response() {
    let hub = PluginHub::start(
        Backend::Sqlite,
        |plugins| install(plugins, "maintenance"),
        |config| {
            config.wasm.grants.insert("maintenance".to_owned(), grant(&["kv", "middleware"]));
        },
    )
    .await;
    let admin = hub.hub.admin("root").await;
    let (_, _, headers) = hub.send(Method::GET, Some(&admin), "/api/v1/endpoints", "", &[]).await;
    assert!(!headers.contains_key("x-read-only"));
    let (status, ..) = hub.send(Method::PUT, Some(&admin), "/plugins/maintenance/mode", "on", &[]).await;
    assert_eq!(status, 204);
    let (status, _, headers) = hub.send(Method::GET, Some(&admin), "/api/v1/endpoints", "", &[]).await;
    assert_eq!((status, headers.get("x-read-only").map(|value| value.to_str().unwrap())), (200, Some("on")));
    let (status, _, headers) = hub.send(Method::GET, None, "/health", "", &[]).await;
    assert_eq!((status, headers.get("x-read-only").map(|value| value.to_str().unwrap())), (200, Some("on")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_javascript_plugin_builds_and_serves() {
    let plugins = tempfile::tempdir().unwrap();
    let dir = plugins.path().to_str().unwrap();
    let (ok, printed) = thub(plugins.path(), &["plugin", "new", "greeter", "--lang", "js", "--dir", dir]);
    assert!(ok, "{printed}");
    assert!(printed.contains("npm install && ./build"), "{printed}");
    let folder = plugins.path().join("greeter");
    for file in ["app.js", "plugin.toml", "package.json", "build", "wit/plugin.wit"] {
        assert!(folder.join(file).is_file(), "{file}");
    }
    // The example's componentize-js (scripts/build-wasm-examples installs it) stands in for
    // `npm install`, which would fetch the same pinned package.
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/wasm-js/node_modules");
    std::os::unix::fs::symlink(tools.canonicalize().unwrap(), folder.join("node_modules")).unwrap();
    let output = std::process::Command::new(folder.join("build")).current_dir(&folder).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let plugins_dir = plugins.path().to_path_buf();
    let hub = TestHub::start_with(Backend::Sqlite, |config| {
        config.wasm.dir = plugins_dir;
        config.wasm.cache_dir = shared_cache();
        config.wasm.grants.insert("greeter".to_owned(), grant(&["kv"]));
    })
    .await;
    hub.hub.wasm.as_ref().unwrap().loaded().await;
    let alice = hub.register("alice").await;
    let (status, body) = hub.get_json(Some(&alice), "/plugins/greeter/hello").await;
    assert_eq!((status, body), (200, json!("hello, alice (greeting #1)")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thub_serve_answers_at_once_while_a_big_plugin_compiles() {
    use std::io::{BufRead, BufReader};
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    // A project folder with the Python plugin and no compiled code yet.
    let folder = tempfile::tempdir().unwrap();
    install(&folder.path().join(".thub/plugins"), "pyhello");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_thub-cli"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("THUB_")) {
        command.env_remove(name);
    }
    let started = Instant::now();
    let mut child = command
        .current_dir(folder.path())
        .args(["serve", "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let _child = Stop(child);
    let address = loop {
        let line = lines.next().expect("start-up line").unwrap();
        let event: Value = serde_json::from_str(&line).unwrap();
        if let Some(address) = event["address"].as_str() {
            break address.to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let http = thub_tests::http_client();
    let health = http.get(format!("http://{address}/health")).send().await.unwrap();
    let answered = started.elapsed();
    assert_eq!(health.status().as_u16(), 200);
    // Meanwhile the plugin compiles: its routes say so.
    let stats = http.get(format!("http://{address}/plugins/pyhello/stats")).send().await.unwrap();
    assert_eq!(stats.status().as_u16(), 503, "answered in {answered:?}");
    assert_eq!(stats.headers()["retry-after"], "2");
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let stats = http.get(format!("http://{address}/plugins/pyhello/stats")).send().await.unwrap();
        if stats.status().as_u16() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the plugin never became ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "/health answered {answered:?} after the process started; the plugin served after {:?}",
        started.elapsed()
    );
}
