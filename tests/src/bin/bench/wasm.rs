//! WebAssembly plugins beside native routes, loading, and `thub serve`'s start-up while a big
//! component compiles.

use std::path::Path;
use std::time::{Duration, Instant};

use thub_tests::bench::{Measurement, TABLE_HEADER, get, measure};
use thub_tests::{Backend, TestHub};

use crate::Options;

/// The routes measured side by side: native ones, then plugin routes (plugin id, path).
const ROUTES: &[(&str, &str, Option<&str>)] = &[
    ("GET /health (baseline)", "/health", None),
    ("GET /ready (native, one database query)", "/ready", None),
    ("GET /plugins/misbehaving/ok (Rust plugin, no host calls)", "/plugins/misbehaving/ok", Some("misbehaving")),
    ("GET /plugins/hello/count (Rust plugin, one kv read)", "/plugins/hello/count", Some("hello")),
    ("GET /plugins/pyhello/ping (Python plugin, no host calls)", "/plugins/pyhello/ping", Some("pyhello")),
    ("GET /plugins/jshello/ping (JavaScript plugin, no host calls)", "/plugins/jshello/ping", Some("jshello")),
];

/// Plugin routes against the native routes, with one client (the latency of one call) and with
/// `--concurrency` clients (throughput on this machine's cores); middleware on every request;
/// loading; start-up with a cold compile cache.
pub(crate) async fn run(options: &Options) {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/wasm/dist");
    assert!(dist.join("hello/plugin.wasm").is_file(), "build the examples first: scripts/build-wasm-examples");
    let grant = |capabilities: &[&str]| thub_core::config::WasmGrant {
        capabilities: capabilities.iter().map(|name| (*name).to_owned()).collect(),
        ..Default::default()
    };
    let duration = Duration::from_secs(options.seconds);
    let client = thub_tests::http_client();

    let plugins = tempfile::tempdir().unwrap();
    copy_plugins(&dist, plugins.path(), &["hello", "misbehaving", "pyhello", "jshello"]);
    let dir = plugins.path().to_path_buf();
    let hub = TestHub::start_at_now_with(Backend::Sqlite, |config| {
        config.wasm.dir = dir;
        config.wasm.grants.insert("hello".to_owned(), grant(&["kv"]));
    })
    .await;
    let pool = &hub.hub.config.wasm;
    println!(
        "\ninstance pool: {} instances, memories capped at {} MiB, {} KiB kept resident per freed memory",
        pool.pool_instances, pool.memory_mb, pool.pool_keep_resident_kb
    );
    let host = hub.hub.wasm.clone().unwrap();
    host.loaded().await;
    let server = hub.serve().await;
    // Calls and total in-host time per plugin so far, to give each pass its own mean.
    let busy = |id: &str| {
        host.list()
            .into_iter()
            .find(|plugin| plugin.id == id)
            .map_or((0, 0.0), |plugin| (plugin.calls, plugin.calls as f64 * plugin.mean_ms))
    };
    let mut passes = vec![1];
    if options.concurrency != 1 {
        passes.push(options.concurrency);
    }
    let mut last_baseline = None;
    for concurrency in passes {
        let mut results: Vec<Measurement> = Vec::new();
        let mut in_host = Vec::new();
        for (name, path, plugin) in ROUTES {
            let before = plugin.map(busy);
            results.push(measure(name, concurrency, duration, get(&client, server.url(path))).await);
            if let (Some(id), Some((calls, total))) = (plugin, before) {
                let (calls_after, total_after) = busy(id);
                let mean = (total_after - total) / (calls_after - calls).max(1) as f64;
                in_host.push(format!("{id} {:.1} µs", mean * 1000.0));
            }
        }
        println!("\n## wasm: {concurrency} concurrent client(s), {} s per scenario\n", options.seconds);
        println!("{TABLE_HEADER}");
        let baseline = results[0].clone();
        for result in &results {
            println!("{}", result.row(Some(&baseline)));
        }
        let native = results[1].p50.as_secs_f64();
        let over_native = |index: usize| (results[index].p50.as_secs_f64() - native) * 1e6;
        println!(
            "\np50 over the native GET /ready: Rust {:+.0} µs without host calls, {:+.0} µs with one kv read; Python {:+.0} µs; JavaScript {:+.0} µs",
            over_native(2),
            over_native(3),
            over_native(4),
            over_native(5),
        );
        println!("mean time inside the host per call (fresh instance + call): {}", in_host.join(", "));
        last_baseline = Some(baseline);
    }
    drop(server);

    // The same trivial route with a middleware plugin in front of every request.
    let guarded_plugins = tempfile::tempdir().unwrap();
    copy_plugins(&dist, guarded_plugins.path(), &["maintenance"]);
    let dir = guarded_plugins.path().to_path_buf();
    let guarded = TestHub::start_at_now_with(Backend::Sqlite, |config| {
        config.wasm.dir = dir;
        config.wasm.grants.insert("maintenance".to_owned(), grant(&["kv", "middleware"]));
    })
    .await;
    guarded.hub.wasm.as_ref().unwrap().loaded().await;
    let guarded_server = guarded.serve().await;
    let behind = measure(
        "GET /health behind a middleware plugin",
        options.concurrency,
        duration,
        get(&client, guarded_server.url("/health")),
    )
    .await;
    println!("\n{TABLE_HEADER}\n{}", behind.row(last_baseline.as_ref()));

    // Loading: compile from source vs from the on-disk cache of compiled code.
    let plugins = tempfile::tempdir().unwrap();
    copy_plugins(&dist, plugins.path(), &["hello", "misbehaving"]);
    let cache = tempfile::tempdir().unwrap();
    let mut timings = Vec::new();
    for _ in 0..2 {
        let started = Instant::now();
        let loaded = thub_core::wasm::WasmHost::start(
            hub.hub.config.wasm.clone(),
            plugins.path().to_path_buf(),
            cache.path().to_path_buf(),
            hub.hub.db.clone(),
            hub.hub.events.clone(),
            hub.hub.clock.clone(),
            thub_core::wasm::HostDirectory::default(),
        )
        .await
        .unwrap();
        loaded.loaded().await;
        timings.push(started.elapsed());
        assert!(loaded.list().iter().all(|plugin| plugin.problem.is_none()));
    }
    println!(
        "\nloading 2 plugins ({} KiB of components): {:.1} ms compiling, {:.1} ms from the cache ({:.0}× faster)",
        ["hello", "misbehaving"]
            .iter()
            .map(|id| std::fs::metadata(dist.join(id).join("plugin.wasm")).map_or(0, |meta| meta.len()))
            .sum::<u64>()
            / 1024,
        timings[0].as_secs_f64() * 1000.0,
        timings[1].as_secs_f64() * 1000.0,
        timings[0].as_secs_f64() / timings[1].as_secs_f64(),
    );

    start_up(&dist).await;
}

/// `thub serve` as a process (this build's command line) in a folder whose plugins folder holds
/// the 18 MB Python component: how soon `/health` answers (from spawning the process), how soon
/// the plugin serves, and how `/health` answers while it compiles. Three starts: a fresh folder
/// (new database, signing key and compile cache), the same folder with the compile cache
/// emptied, and the same folder with the cache warm.
async fn start_up(dist: &Path) {
    let folder = tempfile::tempdir().unwrap();
    let data = folder.path().join(".thub");
    copy_plugins(dist, &data.join("plugins"), &["pyhello"]);
    let size = std::fs::metadata(dist.join("pyhello/plugin.wasm")).map_or(0, |meta| meta.len());
    println!(
        "\n## thub serve start-up, the Python plugin ({:.1} MiB) in the plugins folder\n",
        size as f64 / f64::from(1 << 20)
    );
    println!("| start | first /health 200 | plugin serves after | /health while compiling: p50, max (probes) |");
    println!("|---|---|---|---|");
    let starts: [(&str, bool); 3] = [
        ("fresh folder, cold compile cache", false),
        ("existing folder, compile cache emptied", true),
        ("existing folder, warm compile cache", false),
    ];
    for (label, empty_cache) in starts {
        if empty_cache {
            std::fs::remove_dir_all(data.join("wasm-cache")).unwrap();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::fs::File::create(folder.path().join("serve.log")).unwrap();
        let mut command = thub_tests::thub_command(std::env::current_exe().unwrap().to_str().unwrap(), folder.path());
        command
            .env(crate::RUN_AS_THUB, "1")
            .args(["serve", "--port", &port.to_string()])
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let started = Instant::now();
        let mut child = tokio::process::Command::from(command).kill_on_drop(true).spawn().unwrap();
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        let health = format!("http://127.0.0.1:{port}/health");
        let ping = format!("http://127.0.0.1:{port}/plugins/pyhello/ping");
        let answered = |url: String| {
            let client = client.clone();
            async move { client.get(url).send().await.is_ok_and(|response| response.status().is_success()) }
        };
        // Until the port is bound a connection is refused; then the request waits for the server.
        while !answered(health.clone()).await {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "thub serve did not answer /health: {}",
                std::fs::read_to_string(folder.path().join("serve.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let first_health = started.elapsed();
        let mut probes = Vec::new();
        while !answered(ping.clone()).await {
            assert!(started.elapsed() < Duration::from_secs(300), "the Python plugin did not load");
            let probe = Instant::now();
            assert!(answered(health.clone()).await, "/health failed while the plugin compiled");
            probes.push(probe.elapsed());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let serving = started.elapsed();
        child.kill().await.unwrap();
        probes.sort();
        let probe_figures = match (probes.get(probes.len() / 2), probes.last()) {
            (Some(p50), Some(max)) => {
                format!("{:.2} ms, {:.2} ms ({})", p50.as_secs_f64() * 1000.0, max.as_secs_f64() * 1000.0, probes.len())
            }
            _ => "- (served at once)".to_owned(),
        };
        println!(
            "| {label} | {:.0} ms | {:.2} s | {probe_figures} |",
            first_health.as_secs_f64() * 1000.0,
            serving.as_secs_f64()
        );
    }
}

/// Copies built example plugins from `dist` into the plugins folder `plugins`.
fn copy_plugins(dist: &Path, plugins: &Path, ids: &[&str]) {
    for id in ids {
        std::fs::create_dir_all(plugins.join(id)).unwrap();
        for file in ["plugin.toml", "plugin.wasm"] {
            std::fs::copy(dist.join(id).join(file), plugins.join(id).join(file)).unwrap();
        }
    }
}
