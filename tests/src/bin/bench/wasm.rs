//! WebAssembly plugins beside native routes, and loading.

use std::time::Duration;

use thub_tests::bench::{Measurement, TABLE_HEADER, get, measure};
use thub_tests::{Backend, TestHub};

use crate::Options;

/// Plugin routes against the trivial native route, middleware on every request, and loading.
pub(crate) async fn run(options: &Options) {
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/wasm/dist");
    assert!(dist.join("hello/plugin.wasm").is_file(), "build the examples first: scripts/build-wasm-examples");
    let copy = |plugins: &std::path::Path, ids: &[&str]| {
        for id in ids {
            std::fs::create_dir_all(plugins.join(id)).unwrap();
            for file in ["plugin.toml", "plugin.wasm"] {
                std::fs::copy(dist.join(id).join(file), plugins.join(id).join(file)).unwrap();
            }
        }
    };
    let grant = |capabilities: &[&str]| thub_core::config::WasmGrant {
        capabilities: capabilities.iter().map(|name| (*name).to_owned()).collect(),
        ..Default::default()
    };
    let duration = Duration::from_secs(options.seconds);
    let concurrency = options.concurrency;
    let client = thub_tests::http_client();

    let plugins = tempfile::tempdir().unwrap();
    copy(plugins.path(), &["hello", "misbehaving", "pyhello", "jshello"]);
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
    hub.hub.wasm.as_ref().unwrap().loaded().await;
    let server = hub.serve().await;
    let mut results: Vec<Measurement> = Vec::new();
    results.push(measure("GET /health (baseline)", concurrency, duration, get(&client, server.url("/health"))).await);
    results.push(
        measure("GET /ready (native, one database query)", concurrency, duration, get(&client, server.url("/ready")))
            .await,
    );
    results.push(
        measure(
            "GET /plugins/misbehaving/ok (plugin, no host calls)",
            concurrency,
            duration,
            get(&client, server.url("/plugins/misbehaving/ok")),
        )
        .await,
    );
    results.push(
        measure(
            "GET /plugins/hello/count (plugin, one kv read)",
            concurrency,
            duration,
            get(&client, server.url("/plugins/hello/count")),
        )
        .await,
    );
    results.push(
        measure(
            "GET /plugins/pyhello/ping (Python plugin, no host calls)",
            concurrency,
            duration,
            get(&client, server.url("/plugins/pyhello/ping")),
        )
        .await,
    );
    results.push(
        measure(
            "GET /plugins/jshello/ping (JavaScript plugin, no host calls)",
            concurrency,
            duration,
            get(&client, server.url("/plugins/jshello/ping")),
        )
        .await,
    );
    let host = hub.hub.wasm.clone().unwrap();
    let mean_ms =
        |id: &str| host.list().into_iter().find(|plugin| plugin.id == id).map_or(0.0, |plugin| plugin.mean_ms);
    let (bare_call, kv_call) = (mean_ms("misbehaving"), mean_ms("hello"));
    let (python_call, javascript_call) = (mean_ms("pyhello"), mean_ms("jshello"));
    drop(server);

    // The same trivial route with a middleware plugin in front of every request.
    let guarded_plugins = tempfile::tempdir().unwrap();
    copy(guarded_plugins.path(), &["maintenance"]);
    let dir = guarded_plugins.path().to_path_buf();
    let guarded = TestHub::start_at_now_with(Backend::Sqlite, |config| {
        config.wasm.dir = dir;
        config.wasm.grants.insert("maintenance".to_owned(), grant(&["kv", "middleware"]));
    })
    .await;
    guarded.hub.wasm.as_ref().unwrap().loaded().await;
    let guarded_server = guarded.serve().await;
    results.push(
        measure(
            "GET /health behind a middleware plugin",
            concurrency,
            duration,
            get(&client, guarded_server.url("/health")),
        )
        .await,
    );

    println!("\n## wasm ({} s per scenario, {} concurrent clients)\n", options.seconds, concurrency);
    println!("{TABLE_HEADER}");
    let baseline = results[0].clone();
    for result in &results {
        println!("{}", result.row(Some(&baseline)));
    }
    println!(
        "\nmean time inside the host per plugin call (fresh instance + call): Rust {bare_call:.3} ms without host calls, {kv_call:.3} ms with one kv read; Python {python_call:.3} ms; JavaScript {javascript_call:.3} ms"
    );

    // Loading: compile from source vs from the on-disk cache of compiled code.
    let plugins = tempfile::tempdir().unwrap();
    copy(plugins.path(), &["hello", "misbehaving"]);
    let cache = tempfile::tempdir().unwrap();
    let mut timings = Vec::new();
    for _ in 0..2 {
        let started = std::time::Instant::now();
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
        "loading 2 plugins ({} KiB of components): {:.1} ms compiling, {:.1} ms from the cache ({:.0}× faster)",
        ["hello", "misbehaving"]
            .iter()
            .map(|id| std::fs::metadata(dist.join(id).join("plugin.wasm")).map_or(0, |meta| meta.len()))
            .sum::<u64>()
            / 1024,
        timings[0].as_secs_f64() * 1000.0,
        timings[1].as_secs_f64() * 1000.0,
        timings[0].as_secs_f64() / timings[1].as_secs_f64(),
    );
}
