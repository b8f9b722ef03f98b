//! The WebAssembly plugin host: third-party plugins as sandboxed components.
//!
//! A plugin is a folder in the plugins folder with `plugin.toml` and a component built for
//! `thub:plugin@0.1.0`. The host compiles it in the background (several at once, cached on
//! disk; its routes answer 503 until it is ready, so the hub listens at once), and for every
//! call makes a fresh instance, from a pool of pre-reserved slots with copy-on-write memory
//! images, with capped memory and a wall-clock deadline. Routes live under `/plugins/<id>/…`,
//! events arrive through a database outbox (at least once, retried with backoff, never on the
//! request path), scheduled tasks run on their interval, and middleware may answer requests
//! before routing. What a plugin may call is what the operator granted in `[wasm.grants.<id>]`.
//! A plugin that keeps failing is disabled; a changed plugin file is swapped in while in-flight
//! calls finish on the old one. Only this module (and `wasm/`) knows wasmtime and WIT types.
//!
//! One file per job: `slots` (loading, reloading and switching plugins), `calls` (the instance
//! lifecycle every hook shares, the failure circuit and middleware), `outbox` (events),
//! `scheduler` (tasks), `watcher` (the plugins folder); this file holds the host itself, what it
//! shows, and the background round that drives the outbox and the scheduler.

mod admin;
pub mod api;
mod bindings;
mod calls;
pub mod entity;
mod host;
mod host_v2;
pub mod manifest;
mod outbox;
mod runtime;
pub mod scaffold;
mod scheduler;
mod slots;
mod watcher;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use serde_json::json;
use thub_plugin_sdk::{Clock, EventBus};
use wasmtime::Engine;

use crate::config::{WasmConfig, WasmGrant};
pub use calls::middleware;
pub use host::HostDirectory;
use outbox::Intake;
use scheduler::Schedule;
pub use slots::switch;
use slots::{Compiling, Slot};

/// A plugin as the admin API and `thub plugin list` show it.
#[derive(Debug, Clone, poem_openapi::Object)]
pub struct PluginInfo {
    /// Plugin id.
    pub id: String,
    /// Its version, from the manifest.
    pub version: String,
    /// The API it was built for.
    pub api_version: String,
    /// `plugin` or `raw`.
    pub world: String,
    /// The operator's switch.
    pub enabled: bool,
    /// `compiling` (not serving yet), `serving`, `disabled` (by the operator or by its
    /// failures) or `failed` (did not load).
    pub state: String,
    /// What compiling has done so far (`compiling 17.6 MiB for 3.2 s, about 40%`), while a
    /// version of it compiles.
    pub progress: Option<String>,
    /// Why it is not serving (load error, failures, the operator's switch), if it is not.
    pub problem: Option<String>,
    /// Its routes, as `METHOD /plugins/<id><path>`.
    pub routes: Vec<String>,
    /// Event kinds it receives.
    pub events: Vec<String>,
    /// Calls so far.
    pub calls: u64,
    /// Calls running now.
    pub in_flight: u64,
    /// Failed calls so far (traps, timeouts, errors).
    pub errors: u64,
    /// Mean call duration, in milliseconds.
    pub mean_ms: f64,
    /// SHA-256 of the component.
    pub sha256: String,
    /// When this version was loaded.
    pub loaded_at: Option<DateTime<Utc>>,
}

/// Why a call to a plugin gave no answer, for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such plugin (or route).
    NotFound,
    /// Disabled by the operator or by its failures.
    Unavailable(String),
    /// All its concurrent slots are busy.
    Busy,
    /// It ran past its deadline.
    Timeout,
    /// It trapped, failed to instantiate, returned an error, or answered too much.
    Failed(String),
}

/// The WebAssembly plugin host.
pub struct WasmHost {
    engine: Engine,
    config: WasmConfig,
    dir: PathBuf,
    cache_dir: PathBuf,
    db: DatabaseConnection,
    events: EventBus,
    clock: Arc<dyn Clock>,
    directory: HostDirectory,
    slots: RwLock<BTreeMap<String, Arc<Slot>>>,
    load_errors: Mutex<BTreeMap<String, String>>,
    /// Plugins being compiled now, by id (a first version or a new one).
    compiling: Mutex<BTreeMap<String, Compiling>>,
    /// How many loads are under way; `loaded()` waits for zero.
    loads_under_way: tokio::sync::watch::Sender<usize>,
    /// Compiles at once: one per core, so a big component never starves the others.
    compile_permits: tokio::sync::Semaphore,
    /// Compile speed seen so far (bytes per second), for the progress estimate.
    compile_speed: std::sync::atomic::AtomicU64,
    schedule: Schedule,
    intake: Intake,
    /// The operator's grants as last read, by plugin id.
    grants: RwLock<BTreeMap<String, WasmGrant>>,
    /// Where grants are read again on every (re)load, so `thub plugin reload` applies a changed
    /// `[wasm.grants]` without a restart; `None`: the grants given at start stay.
    grant_source: RwLock<Option<GrantSource>>,
}

/// Reads `[wasm.grants]` again (the configuration file and environment).
pub type GrantSource = Box<dyn Fn() -> anyhow::Result<BTreeMap<String, WasmGrant>> + Send + Sync>;

/// How often the background round runs: the outbox and the scheduler are at most this late.
const ROUND: Duration = Duration::from_millis(200);
/// Every this many rounds, the operator's switches are read from the database.
const ROUNDS_PER_SWITCH_POLL: u64 = 10;

impl WasmHost {
    /// Starts loading every plugin in the plugins folder in the background (a broken one is
    /// reported, not fatal; [`WasmHost::loaded`] waits for them) and starts the outbox worker,
    /// the scheduler, the folder watcher and the state poller. Returns at once.
    pub async fn start(
        config: WasmConfig,
        dir: PathBuf,
        cache_dir: PathBuf,
        db: DatabaseConnection,
        events: EventBus,
        clock: Arc<dyn Clock>,
        directory: HostDirectory,
    ) -> anyhow::Result<Arc<Self>> {
        let grants = RwLock::new(config.grants.clone());
        let host = Arc::new(Self {
            engine: runtime::engine(&config)?,
            grants,
            grant_source: RwLock::new(None),
            config,
            dir,
            cache_dir,
            db,
            events: events.clone(),
            clock,
            directory,
            slots: RwLock::default(),
            load_errors: Mutex::default(),
            compiling: Mutex::default(),
            loads_under_way: tokio::sync::watch::channel(0).0,
            compile_permits: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            ),
            compile_speed: std::sync::atomic::AtomicU64::new(0),
            schedule: Schedule::default(),
            intake: Intake::new(events.subscribe()),
        });
        for manifest_path in runtime::manifest_paths(&host.dir) {
            host.load_in_background(manifest_path);
        }
        events.set_outbox(Arc::new(outbox::TransactionalOutbox::new(Arc::downgrade(&host))));
        tokio::spawn(background(Arc::downgrade(&host)));
        watcher::watch(Arc::downgrade(&host));
        Ok(host)
    }

    /// The plugins folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the grants from `source` on every load and reload from now on.
    pub fn read_grants_from(&self, source: GrantSource) {
        *self.grant_source.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(source);
    }

    /// The grants, read again when there is a source; a source that fails keeps the last ones.
    fn refresh_grants(&self) {
        let source = self.grant_source.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(source) = source.as_ref() else { return };
        match source() {
            Ok(grants) => *self.grants.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = grants,
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "cannot read the plugin grants again; the previous ones stay")
            }
        }
    }

    /// What the operator granted `id` (nothing, unless granted).
    fn grant(&self, id: &str) -> WasmGrant {
        self.grants.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(id).cloned().unwrap_or_default()
    }

    /// Waits until no plugin is loading (each has loaded or failed to), then reads the
    /// operator's switches. Servers never wait for this; commands and tests do.
    pub async fn loaded(&self) {
        let mut under_way = self.loads_under_way.subscribe();
        // The sender lives as long as `self`, so waiting cannot fail.
        let _ = under_way.wait_for(|count| *count == 0).await;
        self.apply_switches().await;
    }

    /// One background round, awaited to the end: queue new events, deliver the due ones, and
    /// run the due tasks (to completion). Due means due on the host's clock, so a test moves a
    /// manual clock and calls this to see exactly what one round does.
    pub async fn run_due_work(self: &Arc<Self>) {
        self.queue_events().await;
        self.work_outbox().await;
        for task in self.run_schedules() {
            if let Err(error) = task.await {
                tracing::error!(error = %error, "a scheduled task panicked");
            }
        }
    }

    fn slot(&self, id: &str) -> Option<Arc<Slot>> {
        self.slots.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(id).cloned()
    }

    fn all_slots(&self) -> Vec<(String, Arc<Slot>)> {
        self.slots
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|(id, slot)| (id.clone(), slot.clone()))
            .collect()
    }

    /// Every plugin, loaded or not.
    pub fn list(&self) -> Vec<PluginInfo> {
        let load_errors = self.load_errors.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let compiling = self.compiling_progress();
        let mut infos: Vec<PluginInfo> = self
            .all_slots()
            .into_iter()
            .map(|(id, slot)| {
                let loaded = slot.current();
                let manifest = &loaded.services.manifest;
                let calls = slot.calls.load(Ordering::Relaxed);
                let problem = slot.problem().or_else(|| {
                    load_errors
                        .get(&id)
                        .map(|error| format!("the new version did not load, the previous one serves: {error}"))
                });
                let state = if slot.problem().is_some() { "disabled" } else { "serving" };
                PluginInfo {
                    state: state.to_owned(),
                    progress: compiling.get(&id).map(|(_, progress)| format!("a new version: {progress}")),
                    version: manifest.version.clone(),
                    api_version: manifest.api_version.clone(),
                    world: manifest.world.clone(),
                    enabled: slot.enabled.load(Ordering::Relaxed),
                    problem,
                    id,
                    routes: manifest_routes(manifest),
                    events: manifest.events.clone(),
                    calls,
                    in_flight: (self.config.max_concurrency.max(1) - slot.permits.available_permits()) as u64,
                    errors: slot.errors.load(Ordering::Relaxed),
                    mean_ms: if calls == 0 {
                        0.0
                    } else {
                        slot.busy_micros.load(Ordering::Relaxed) as f64 / calls as f64 / 1000.0
                    },
                    sha256: loaded.sha256.clone(),
                    loaded_at: Some(loaded.loaded_at),
                }
            })
            .collect();
        for (id, (manifest, progress)) in &compiling {
            if !infos.iter().any(|info| &info.id == id) {
                infos.push(PluginInfo {
                    id: id.clone(),
                    state: "compiling".to_owned(),
                    progress: Some(progress.clone()),
                    version: manifest.version.clone(),
                    api_version: manifest.api_version.clone(),
                    world: manifest.world.clone(),
                    enabled: true,
                    problem: Some(format!("not serving yet: {progress}")),
                    routes: manifest_routes(manifest),
                    events: manifest.events.clone(),
                    calls: 0,
                    in_flight: 0,
                    errors: 0,
                    mean_ms: 0.0,
                    sha256: String::new(),
                    loaded_at: None,
                });
            }
        }
        for (id, error) in &load_errors {
            if !infos.iter().any(|info| &info.id == id) {
                infos.push(PluginInfo {
                    id: id.clone(),
                    state: "failed".to_owned(),
                    progress: None,
                    version: String::new(),
                    api_version: String::new(),
                    world: String::new(),
                    enabled: false,
                    problem: Some(error.clone()),
                    routes: Vec::new(),
                    events: Vec::new(),
                    calls: 0,
                    in_flight: 0,
                    errors: 0,
                    mean_ms: 0.0,
                    sha256: String::new(),
                    loaded_at: None,
                });
            }
        }
        infos.sort_by(|left, right| left.id.cmp(&right.id));
        infos
    }

    /// The OpenAPI path items of every loaded plugin's routes (merged into `/openapi.json`).
    pub fn openapi_paths(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut paths = serde_json::Map::new();
        for (id, slot) in self.all_slots() {
            let loaded = slot.current();
            let manifest = &loaded.services.manifest;
            for route in &manifest.routes {
                let path = format!("/plugins/{id}{}", route.path.trim_end_matches("/*"));
                let entry = paths.entry(path).or_insert_with(|| json!({}));
                for method in &route.methods {
                    entry[method.to_lowercase()] = json!({
                        "tags": [format!("plugin:{id}")],
                        "summary": if route.summary.is_empty() { manifest.description.clone() } else { route.summary.clone() },
                        "description": format!("WebAssembly plugin `{id}` {} (API {}).", manifest.version, manifest.api_version),
                        "responses": {"default": {"description": "The plugin's answer."}},
                    });
                }
            }
        }
        paths
    }
}

/// A manifest's routes as `METHOD /plugins/<id><path>`.
fn manifest_routes(manifest: &manifest::Manifest) -> Vec<String> {
    manifest
        .routes
        .iter()
        .flat_map(|route| {
            route
                .methods
                .iter()
                .map(move |method| format!("{} /plugins/{}{}", method.to_uppercase(), manifest.id, route.path))
        })
        .collect()
}

/// The outbox worker, the scheduler and the switch poller, on one timer. The timer only says
/// how often to look; what is due is decided by the host's clock.
async fn background(host: std::sync::Weak<WasmHost>) {
    let mut ticker = tokio::time::interval(ROUND);
    let mut rounds: u64 = 0;
    loop {
        ticker.tick().await;
        let Some(host) = host.upgrade() else { return };
        host.queue_events().await;
        host.work_outbox().await;
        // Tasks run on their own; the next round does not wait for them.
        drop(host.run_schedules());
        rounds += 1;
        if rounds.is_multiple_of(ROUNDS_PER_SWITCH_POLL) {
            host.apply_switches().await;
        }
    }
}
