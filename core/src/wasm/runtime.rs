//! Compiling, caching and calling components: one engine with epoch interruption and a pooling
//! instance allocator, a compile cache on disk keyed by content hash and engine, a pre-instantiated component per plugin, and a
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
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

use super::bindings::{raw, typed, typed_v2};
use super::host::{HostState, PluginServices};
use crate::config::WasmConfig;

/// How often the epoch advances: the granularity of deadlines and of yielding to the runtime.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// The engine every plugin shares, with its epoch ticker. Instances come from a pool of
/// pre-reserved slots whose memories start as copy-on-write images of the component's data, so
/// a fresh instance per call costs microseconds; if the pool cannot be reserved (a small
/// address space, `ulimit -v`), the engine allocates on demand and says so.
pub(crate) fn engine(settings: &WasmConfig) -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.memory_init_cow(true);
    let engine = if settings.pool_instances > 0 {
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool(settings)));
        match Engine::new(&config) {
            Ok(engine) => engine,
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "cannot reserve the wasm instance pool; allocating instances on demand");
                config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
                Engine::new(&config).map_err(|error| anyhow::anyhow!("cannot start the wasm engine: {error}"))?
            }
        }
    } else {
        Engine::new(&config).map_err(|error| anyhow::anyhow!("cannot start the wasm engine: {error}"))?
    };
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

/// The instance pool: `pool_instances` component instances alive at once (across plugins), each
/// with room for the core instances, memories and tables a Python or JavaScript component needs
/// (a CPython component has about a dozen core instances). Memories are capped at `memory_mb`,
/// as the per-call limit is; slots are reserved address space, committed only when touched.
///
/// What a call costs is mostly what its instance's memory costs: pages it writes are faulted in
/// (copied from the component's image) and, when the instance is freed, set back. With
/// `PAGEMAP_SCAN` (Linux 6.7+) the pool finds the pages a call wrote and copies the image back
/// over just those, keeping them mapped (up to `pool_keep_resident_kb` per memory), so the next
/// call on that slot takes no page faults; without it, the first `pool_keep_resident_kb` are
/// reset by hand whether written or not and the rest handed back to the kernel, so the
/// resident part is then kept small ([`RESIDENT_WITHOUT_PAGEMAP`]).
fn pool(settings: &WasmConfig) -> PoolingAllocationConfig {
    let instances = settings.pool_instances;
    let memory = usize::try_from(settings.memory_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
    let mut keep_resident = settings.pool_keep_resident_kb.saturating_mul(1024);
    let pagemap = PoolingAllocationConfig::is_pagemap_scan_available();
    if !pagemap {
        keep_resident = keep_resident.min(RESIDENT_WITHOUT_PAGEMAP);
    }
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .total_memories(instances.saturating_mul(MEMORIES_PER_COMPONENT))
        .total_tables(instances.saturating_mul(TABLES_PER_COMPONENT))
        .total_stacks(instances)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .max_memory_size(memory)
        .pagemap_scan(if pagemap { Enabled::Yes } else { Enabled::No })
        .linear_memory_keep_resident(keep_resident)
        // Function tables are reset the same way: a CPython component's tables span hundreds
        // of KiB, faulted in again on every call if handed back.
        .table_keep_resident(keep_resident);
    pool
}

/// Per-component room in the pool.
const CORE_INSTANCES_PER_COMPONENT: u32 = 32;
const MEMORIES_PER_COMPONENT: u32 = 4;
const TABLES_PER_COMPONENT: u32 = 16;
/// Without `PAGEMAP_SCAN`, every byte kept resident is reset on every call, written or not.
const RESIDENT_WITHOUT_PAGEMAP: usize = 64 * 1024;

/// A stable name for this engine's compiled-code format.
fn engine_key(engine: &Engine) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// A component's bytes, and where its compiled form is cached (keyed by the SHA-256 of the
/// bytes and the engine).
pub(crate) struct Source {
    engine: Engine,
    bytes: Vec<u8>,
    sha256: String,
    cached: PathBuf,
}

impl Source {
    /// Hashes `bytes` (tens of milliseconds for a big component) on a blocking thread.
    pub(crate) async fn new(engine: &Engine, bytes: Vec<u8>, cache_dir: &Path) -> anyhow::Result<Self> {
        let (engine, cache_dir) = (engine.clone(), cache_dir.to_owned());
        tokio::task::spawn_blocking(move || {
            let sha256 = hex::encode(Sha256::digest(bytes.as_slice()));
            let cached = cache_dir.join(format!("{sha256}-{}.cwasm", engine_key(&engine)));
            Self { engine, bytes, sha256, cached }
        })
        .await
        .context("hashing task")
    }

    /// Its size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether a compiled form is cached (loading it takes milliseconds, not seconds).
    pub(crate) fn is_cached(&self) -> bool {
        self.cached.is_file()
    }

    /// Compiles the component, or loads its cached compiled form, writing the cache on a miss,
    /// and links it for `world` ([`prepare`]). Runs on a thread of its own at the lowest CPU
    /// priority: compiling an 18 MB component takes a core for seconds, and the requests the
    /// hub serves meanwhile come first.
    pub(crate) async fn compile(self, world: &str) -> anyhow::Result<(Prepared, String)> {
        let Self { engine, bytes, sha256, cached } = self;
        let world = world.to_owned();
        let (done, outcome) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("thub-wasm-compile".to_owned())
            .spawn(move || {
                lower_priority();
                let prepared = load_or_compile(&engine, &bytes, &cached)
                    .and_then(|component| prepare(&engine, &component, &world));
                // The receiver is gone only if the load was abandoned.
                let _ = done.send(prepared);
            })
            .context("cannot start a compile thread")?;
        let prepared = outcome.await.context("the compile thread stopped")??;
        Ok((prepared, sha256))
    }
}

/// The component from the cache, or compiled (and cached).
fn load_or_compile(engine: &Engine, bytes: &[u8], cached: &Path) -> anyhow::Result<Component> {
    if cached.is_file() {
        // SAFETY: `deserialize_file` trusts its input to be wasmtime's own output. This file is:
        // it was written below by `Component::serialize`, into the host's private data folder,
        // under a name that binds it to the source's hash and this engine's compatibility hash;
        // a file that does not deserialize is discarded.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize_file(engine, cached) };
        match loaded {
            Ok(component) => return Ok(component),
            Err(error) => {
                tracing::warn!(path = %cached.display(), error = %error, "discarding an unusable compiled plugin");
                if let Err(error) = std::fs::remove_file(cached) {
                    tracing::warn!(path = %cached.display(), error = %error, "cannot remove it");
                }
            }
        }
    }
    let component =
        Component::new(engine, bytes).map_err(|error| anyhow::anyhow!("not a valid component: {error:#}"))?;
    if let Err(error) = write_cache(&component, cached) {
        // The plugin works; only the next start compiles it again.
        tracing::warn!(path = %cached.display(), error = %format!("{error:#}"), "cannot cache a compiled plugin");
    }
    Ok(component)
}

/// Puts the calling thread at the lowest CPU priority (nice 19; on Linux the nice value is
/// per thread). Failing to is logged: compiling then competes with requests as equals.
fn lower_priority() {
    if let Err(error) = rustix::process::setpriority_process(None, 19) {
        tracing::warn!(error = %error, "cannot lower the compile thread's priority");
    }
}

/// Writes the compiled form next to its final name and renames it, so a reader never sees half.
fn write_cache(component: &Component, cached: &Path) -> anyhow::Result<()> {
    let serialized = component.serialize().map_err(|error| anyhow::anyhow!("{error:#}"))?;
    std::fs::create_dir_all(cached.parent().unwrap_or(Path::new(".")))?;
    let temporary = cached.with_extension("tmp");
    std::fs::write(&temporary, serialized)?;
    std::fs::rename(&temporary, cached)?;
    Ok(())
}

/// A component ready to instantiate, in its world and version.
pub(crate) enum Prepared {
    /// `thub:plugin/plugin@0.1.x`.
    Typed(typed::PluginPre<HostState>),
    /// `thub:plugin/plugin@0.2.x`.
    TypedV2(typed_v2::PluginPre<HostState>),
    /// `thub:plugin/raw@0.1.x`.
    Raw(raw::RawPre<HostState>),
}

/// One hook invocation.
pub(crate) enum Hook {
    /// `handle-request` (raw: `handle("request", …)`).
    Request(typed::thub::plugin::types::Request),
    /// `on-request` (typed worlds only; raw plugins let the request through).
    Middleware(typed::thub::plugin::types::Request),
    /// `on-response` (0.2 only; others set no headers).
    AfterResponse(typed::thub::plugin::types::Request, typed::thub::plugin::types::Response),
    /// `on-event` (raw: `handle("event", …)`).
    Event(typed::thub::plugin::types::Event),
    /// `run-task` (raw: `handle("task", name)`).
    Task(String),
}

/// What a hook answered, when it did not fail.
pub(crate) enum Output {
    /// A route's response.
    Response(typed::thub::plugin::types::Response),
    /// A middleware decision.
    Verdict(typed::thub::plugin::types::Verdict),
    /// Headers an `on-response` hook sets.
    Headers(Vec<typed::thub::plugin::types::Header>),
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
                    Hook::Middleware(request) => {
                        Ok(Output::Verdict(hooks.call_on_request(&mut *store, &request).await?))
                    }
                    Hook::AfterResponse(..) => Ok(Output::Headers(Vec::new())),
                    Hook::Event(event) => hooks.call_on_event(&mut *store, &event).await?.map(|()| Output::Done),
                    Hook::Task(name) => hooks.call_run_task(&mut *store, &name).await?.map(|()| Output::Done),
                })
            }
            Prepared::TypedV2(pre) => {
                use super::host_v2::{
                    event_to_new, headers_to_old, request_to_new, response_to_new, response_to_old, verdict_to_old,
                };
                let instance = pre.instantiate_async(&mut *store).await?;
                let hooks = instance.thub_plugin_hooks();
                Ok(match hook {
                    Hook::Request(request) => hooks
                        .call_handle_request(&mut *store, &request_to_new(request))
                        .await?
                        .map(|response| Output::Response(response_to_old(response))),
                    Hook::Middleware(request) => {
                        let verdict = hooks.call_on_request(&mut *store, &request_to_new(request)).await?;
                        Ok(Output::Verdict(verdict_to_old(verdict)))
                    }
                    Hook::AfterResponse(request, response) => {
                        let headers = hooks
                            .call_on_response(&mut *store, &request_to_new(request), &response_to_new(response))
                            .await?;
                        Ok(Output::Headers(headers_to_old(headers)))
                    }
                    Hook::Event(event) => {
                        hooks.call_on_event(&mut *store, &event_to_new(event)).await?.map(|()| Output::Done)
                    }
                    Hook::Task(name) => hooks.call_run_task(&mut *store, &name).await?.map(|()| Output::Done),
                })
            }
            Prepared::Raw(pre) => {
                let (kind, input) = match &hook {
                    Hook::Request(request) => ("request", raw_request(request)),
                    Hook::Middleware(_) => {
                        return Ok(Ok(Output::Verdict(typed::thub::plugin::types::Verdict::Continue)));
                    }
                    Hook::AfterResponse(..) => return Ok(Ok(Output::Headers(Vec::new()))),
                    Hook::Event(event) => {
                        ("event", serde_json::to_vec(&super::bindings::StoredEvent::from(event)).unwrap_or_default())
                    }
                    Hook::Task(name) => ("task", name.as_bytes().to_vec()),
                };
                let instance = pre.instantiate_async(&mut *store).await?;
                let answer = instance.call_handle(&mut *store, kind, &input).await?;
                Ok(match hook {
                    Hook::Request(_) => answer.and_then(|bytes| raw_response(&bytes)).map(Output::Response),
                    _ => answer.map(|_| Output::Done),
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
    // The version of `thub:plugin/hooks` it exports picks the bindings; none: the current one,
    // whose check then names the missing export.
    let mut minor = super::manifest::CURRENT_API.1;
    if let Some(hooks) = exported.iter().find(|name| name.starts_with("thub:plugin/hooks@")) {
        let version = hooks.trim_start_matches("thub:plugin/hooks@");
        minor = super::manifest::parse_version(version)
            .filter(|(major, minor, _)| super::manifest::SUPPORTED_APIS.contains(&(*major, *minor)))
            .map(|(_, minor, _)| minor)
            .with_context(|| {
                format!(
                    "the component implements thub:plugin {version}; this host supports {}",
                    super::manifest::supported()
                )
            })?;
    }
    let mut linker: Linker<HostState> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|error| anyhow::anyhow!("{error}"))?;
    let prepared = match (world, minor) {
        ("raw", _) => {
            raw::Raw::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            let pre = linker.instantiate_pre(component).map_err(|error| anyhow::anyhow!("{error:#}"))?;
            Prepared::Raw(raw::RawPre::new(pre).map_err(|error| anyhow::anyhow!("{error:#}"))?)
        }
        (_, 1) => {
            typed::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            let pre = linker.instantiate_pre(component).map_err(|error| anyhow::anyhow!("{error:#}"))?;
            Prepared::Typed(typed::PluginPre::new(pre).map_err(|error| anyhow::anyhow!("{error:#}"))?)
        }
        _ => {
            typed_v2::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            let pre = linker.instantiate_pre(component).map_err(|error| anyhow::anyhow!("{error:#}"))?;
            Prepared::TypedV2(typed_v2::PluginPre::new(pre).map_err(|error| anyhow::anyhow!("{error:#}"))?)
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
    caller: Option<thub_plugin_sdk::Principal>,
    memory_bytes: usize,
) -> Store<HostState> {
    let mut store = Store::new(engine, HostState::new(services, request_id, caller, memory_bytes));
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
