//! Compiling, caching and calling components: one engine with epoch interruption, a compile
//! cache on disk keyed by content hash and engine, a pre-instantiated component per plugin, and a
//! fresh, memory-capped instance per call that yields to the runtime every epoch tick and is
//! dropped at its wall-clock deadline.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store};

use super::bindings::{raw, typed};
use super::host::{HostState, PluginServices};

/// How often the epoch advances: the granularity of deadlines and of yielding to the runtime.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// The engine every plugin shares, with its epoch ticker.
pub(crate) fn engine() -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    let engine = Engine::new(&config).map_err(|error| anyhow::anyhow!("cannot start the wasm engine: {error}"))?;
    let ticking = engine.weak();
    std::thread::Builder::new()
        .name("thub-wasm-epoch".to_owned())
        .spawn(move || {
            while let Some(engine) = ticking.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .context("cannot start the epoch ticker")?;
    Ok(engine)
}

/// A stable name for this engine's compiled-code format.
fn engine_key(engine: &Engine) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Compiles `bytes`, or loads the compiled form cached under `cache_dir` (keyed by the SHA-256 of
/// the bytes and the engine), writing it there on a miss.
pub(crate) async fn compile(
    engine: &Engine,
    bytes: Arc<Vec<u8>>,
    cache_dir: &Path,
) -> anyhow::Result<(Component, String)> {
    let sha256 = hex::encode(Sha256::digest(bytes.as_slice()));
    let cached = cache_dir.join(format!("{sha256}-{}.cwasm", engine_key(engine)));
    let engine = engine.clone();
    let component = tokio::task::spawn_blocking(move || -> anyhow::Result<Component> {
        if cached.is_file() {
            // SAFETY: `deserialize_file` trusts its input to be wasmtime's own output. This file
            // is: it was written below by `Component::serialize`, into the host's private data
            // folder, under a name that binds it to the source's hash and this engine's
            // compatibility hash; a file that does not deserialize is discarded.
            #[allow(unsafe_code)]
            let loaded = unsafe { Component::deserialize_file(&engine, &cached) };
            match loaded {
                Ok(component) => return Ok(component),
                Err(error) => {
                    tracing::warn!(path = %cached.display(), error = %error, "discarding an unusable compiled plugin");
                    let _ = std::fs::remove_file(&cached);
                }
            }
        }
        let component = Component::new(&engine, bytes.as_slice())
            .map_err(|error| anyhow::anyhow!("not a valid component: {error:#}"))?;
        if let Ok(serialized) = component.serialize() {
            let _ = std::fs::create_dir_all(cached.parent().unwrap_or(Path::new(".")));
            let temporary = cached.with_extension("tmp");
            if std::fs::write(&temporary, serialized).is_ok() {
                let _ = std::fs::rename(&temporary, &cached);
            }
        }
        Ok(component)
    })
    .await
    .context("compile task")??;
    Ok((component, sha256))
}

/// A component ready to instantiate, in its world.
pub(crate) enum Prepared {
    /// `thub:plugin/plugin`.
    Typed(typed::PluginPre<HostState>),
    /// `thub:plugin/raw`.
    Raw(raw::RawPre<HostState>),
}

/// One hook invocation.
pub(crate) enum Hook {
    /// `handle-request` (raw: `handle("request", …)`).
    Request(typed::thub::plugin::types::Request),
    /// `on-event` (raw: `handle("event", …)`).
    Event(typed::thub::plugin::types::Event),
    /// `run-task` (raw: `handle("task", name)`).
    Task(String),
}

/// What a hook answered, when it did not fail.
pub(crate) enum Output {
    /// A route's response.
    Response(typed::thub::plugin::types::Response),
    /// An event or task handled.
    Done,
}

impl Prepared {
    /// Instantiates the component in `store` and calls `hook`. The outer error is a trap or an
    /// instantiation failure; the inner one is the plugin's own `Err`.
    pub(crate) async fn invoke(
        &self,
        store: &mut Store<HostState>,
        hook: Hook,
    ) -> wasmtime::Result<Result<Output, String>> {
        match self {
            Prepared::Typed(pre) => {
                let instance = pre.instantiate_async(&mut *store).await?;
                let hooks = instance.thub_plugin_hooks();
                Ok(match hook {
                    Hook::Request(request) => {
                        hooks.call_handle_request(&mut *store, &request).await?.map(Output::Response)
                    }
                    Hook::Event(event) => hooks.call_on_event(&mut *store, &event).await?.map(|()| Output::Done),
                    Hook::Task(name) => hooks.call_run_task(&mut *store, &name).await?.map(|()| Output::Done),
                })
            }
            Prepared::Raw(pre) => {
                let instance = pre.instantiate_async(&mut *store).await?;
                let (kind, input) = match &hook {
                    Hook::Request(request) => ("request", raw_request(request)),
                    Hook::Event(event) => {
                        ("event", serde_json::to_vec(&super::outbox::StoredEvent::from(event)).unwrap_or_default())
                    }
                    Hook::Task(name) => ("task", name.as_bytes().to_vec()),
                };
                let answer = instance.call_handle(&mut *store, kind, &input).await?;
                Ok(match hook {
                    Hook::Request(_) => answer.and_then(|bytes| raw_response(&bytes)).map(Output::Response),
                    Hook::Event(_) | Hook::Task(_) => answer.map(|_| Output::Done),
                })
            }
        }
    }
}

/// A route request as JSON, for raw plugins.
fn raw_request(request: &typed::thub::plugin::types::Request) -> Vec<u8> {
    let headers: BTreeMap<&str, &str> =
        request.headers.iter().map(|header| (header.name.as_str(), header.value.as_str())).collect();
    serde_json::to_vec(&json!({
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "headers": headers,
        "body": String::from_utf8_lossy(&request.body),
        "user": {"id": request.principal.user_id, "username": request.principal.username, "role": request.principal.role},
        "request_id": request.request_id,
    }))
    .unwrap_or_default()
}

/// A raw plugin's JSON answer: `{"status", "headers", "body"}`.
fn raw_response(bytes: &[u8]) -> Result<typed::thub::plugin::types::Response, String> {
    #[derive(serde::Deserialize)]
    struct RawResponse {
        #[serde(default = "ok")]
        status: u16,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default)]
        body: String,
    }
    fn ok() -> u16 {
        200
    }
    let answer: RawResponse = serde_json::from_slice(bytes)
        .map_err(|error| format!("the answer is not JSON {{status, headers, body}}: {error}"))?;
    Ok(typed::thub::plugin::types::Response {
        status: answer.status,
        headers: answer
            .headers
            .into_iter()
            .map(|(name, value)| typed::thub::plugin::types::Header { name, value })
            .collect(),
        body: answer.body.into_bytes(),
    })
}

/// Links `component` against the host (WASI with nothing in it, and thub's interfaces) and
/// checks its exports: missing or mistyped exports and imports the host does not provide fail
/// here, at load, with wasmtime's message.
pub(crate) fn prepare(engine: &Engine, component: &Component, world: &str) -> anyhow::Result<Prepared> {
    let exported: Vec<String> = component.component_type().exports(engine).map(|(name, _)| name.to_owned()).collect();
    if let Some(hooks) = exported.iter().find(|name| name.starts_with("thub:plugin/hooks@")) {
        let version = hooks.trim_start_matches("thub:plugin/hooks@");
        let supported = super::manifest::parse_version(version)
            .is_some_and(|(major, minor, _)| (major, minor) == super::manifest::SUPPORTED_API);
        anyhow::ensure!(supported, "the component implements thub:plugin {version}; this host supports 0.1.x");
    }
    let mut linker: Linker<HostState> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|error| anyhow::anyhow!("{error}"))?;
    let prepared = match world {
        "raw" => {
            raw::Raw::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            let pre = linker.instantiate_pre(component).map_err(|error| anyhow::anyhow!("{error:#}"))?;
            Prepared::Raw(raw::RawPre::new(pre).map_err(|error| anyhow::anyhow!("{error:#}"))?)
        }
        _ => {
            typed::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            let pre = linker.instantiate_pre(component).map_err(|error| anyhow::anyhow!("{error:#}"))?;
            Prepared::Typed(typed::PluginPre::new(pre).map_err(|error| anyhow::anyhow!("{error:#}"))?)
        }
    };
    Ok(prepared)
}

/// Why a call produced no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallFailure {
    /// The wall-clock deadline passed.
    Timeout,
    /// The guest trapped (or instantiation failed): the message says how.
    Trap(String),
}

/// A fresh store for one call: memory capped, yielding every tick.
pub(crate) fn store(
    engine: &Engine,
    services: Arc<PluginServices>,
    request_id: String,
    memory_bytes: usize,
) -> Store<HostState> {
    let mut store = Store::new(engine, HostState::new(services, request_id, memory_bytes));
    store.limiter(|state| &mut state.limits);
    store.set_epoch_deadline(1);
    store.epoch_deadline_async_yield_and_update(1);
    store
}

/// Runs `call` under a wall-clock `deadline`; the instance is dropped after, whatever happened.
pub(crate) async fn with_deadline<T>(
    deadline: Duration,
    call: impl Future<Output = wasmtime::Result<T>>,
) -> Result<T, CallFailure> {
    match tokio::time::timeout(deadline, call).await {
        Err(_) => Err(CallFailure::Timeout),
        Ok(Err(error)) => Err(CallFailure::Trap(format!("{error:#}"))),
        Ok(Ok(value)) => Ok(value),
    }
}

/// The plugins folder layout: `<dir>/<id>/plugin.toml`.
pub(crate) fn manifest_paths(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("plugin.toml"))
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    paths
}
