//! The WebAssembly plugin host: third-party plugins as sandboxed components.
//!
//! A plugin is a folder in the plugins folder with `plugin.toml` and a component built for
//! `thub:plugin@0.1.0`. The host compiles it (cached on disk), and for every call makes a fresh
//! instance with capped memory and a wall-clock deadline. Routes live under `/plugins/<id>/…`,
//! events arrive through a database outbox (at least once, retried with backoff, never on the
//! request path), scheduled tasks run on their interval, and middleware may answer requests
//! before routing. What a plugin may call is what the operator granted in `[wasm.grants.<id>]`.
//! A plugin that keeps failing is disabled; a changed plugin file is swapped in while in-flight
//! calls finish on the old one. Only this module (and `wasm/`) knows wasmtime and WIT types.

mod admin;
pub mod api;
mod bindings;
pub mod entity;
mod host;
pub mod manifest;
mod runtime;
pub mod scaffold;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::json;
use thub_plugin_sdk::{Clock, EventBus};
use tokio::sync::Semaphore;
use wasmtime::Engine;

use crate::config::WasmConfig;
use bindings::typed;
use entity::{outbox, plugin_state};
use host::PluginServices;
use manifest::Manifest;
use runtime::{CallFailure, Hook, Output, Prepared};

/// The largest component loaded: Python and JavaScript guests are 12–18 MB.
const MAX_COMPONENT_BYTES: usize = 32 << 20;

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
    /// Why it is not serving (load error, failures, the operator's switch), if it is not.
    pub problem: Option<String>,
    /// Its routes, as `METHOD /plugins/<id><path>`.
    pub routes: Vec<String>,
    /// Event kinds it receives.
    pub events: Vec<String>,
    /// Calls so far.
    pub calls: u64,
    /// Failed calls so far (traps, timeouts, errors).
    pub errors: u64,
    /// Mean call duration, in milliseconds.
    pub mean_ms: f64,
    /// SHA-256 of the component.
    pub sha256: String,
    /// When this version was loaded.
    pub loaded_at: Option<DateTime<Utc>>,
}

struct Loaded {
    services: Arc<PluginServices>,
    prepared: Prepared,
    sha256: String,
    loaded_at: DateTime<Utc>,
}

/// One plugin id: its current version and its counters, which survive reloads.
struct Slot {
    loaded: RwLock<Arc<Loaded>>,
    enabled: AtomicBool,
    tripped: Mutex<Option<String>>,
    permits: Arc<Semaphore>,
    failures: AtomicU32,
    calls: AtomicU64,
    errors: AtomicU64,
    busy_micros: AtomicU64,
}

impl Slot {
    fn current(&self) -> Arc<Loaded> {
        self.loaded.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    fn problem(&self) -> Option<String> {
        if !self.enabled.load(Ordering::Relaxed) {
            return Some("disabled by the operator".to_owned());
        }
        self.tripped.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
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
    slots: RwLock<BTreeMap<String, Arc<Slot>>>,
    load_errors: Mutex<BTreeMap<String, String>>,
    task_state: Mutex<HashMap<(String, String), (Instant, bool)>>,
    intake: Mutex<tokio::sync::broadcast::Receiver<Arc<thub_plugin_sdk::Event>>>,
}

impl WasmHost {
    /// Loads every plugin in the plugins folder (a broken one is reported, not fatal) and starts
    /// the outbox worker, the scheduler, the folder watcher and the state poller.
    pub async fn start(
        config: WasmConfig,
        dir: PathBuf,
        cache_dir: PathBuf,
        db: DatabaseConnection,
        events: EventBus,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Arc<Self>> {
        let host = Arc::new(Self {
            engine: runtime::engine()?,
            config,
            dir,
            cache_dir,
            db,
            events: events.clone(),
            clock,
            slots: RwLock::default(),
            load_errors: Mutex::default(),
            task_state: Mutex::default(),
            intake: Mutex::new(events.subscribe()),
        });
        for manifest_path in runtime::manifest_paths(&host.dir) {
            host.load(&manifest_path).await;
        }
        host.apply_switches().await;
        tokio::spawn(background(Arc::downgrade(&host)));
        watch(Arc::downgrade(&host));
        Ok(host)
    }

    /// The plugins folder.
    pub fn dir(&self) -> &Path {
        &self.dir
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

    /// Loads (or reloads) the plugin described by `manifest_path`. In-flight calls keep the
    /// version they started with. Failures are logged and shown in the list.
    async fn load(&self, manifest_path: &Path) {
        let folder_id =
            manifest_path.parent().and_then(Path::file_name).and_then(|name| name.to_str()).unwrap_or("?").to_owned();
        match self.compile(manifest_path).await {
            Ok(loaded) => {
                let id = loaded.services.id.to_string();
                self.load_errors.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&folder_id);
                let existing = self.slot(&id);
                match existing {
                    Some(slot) => {
                        let current = slot.current();
                        if current.sha256 == loaded.sha256 && current.services.manifest == loaded.services.manifest {
                            // A build touches files several times; the same plugin again is no change.
                            return;
                        }
                        *slot.loaded.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(loaded);
                        *slot.tripped.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
                        slot.failures.store(0, Ordering::Relaxed);
                        tracing::info!(plugin = %id, "wasm plugin reloaded");
                    }
                    None => {
                        let slot = Arc::new(Slot {
                            loaded: RwLock::new(Arc::new(loaded)),
                            enabled: AtomicBool::new(true),
                            tripped: Mutex::new(None),
                            permits: Arc::new(Semaphore::new(self.config.max_concurrency.max(1))),
                            failures: AtomicU32::new(0),
                            calls: AtomicU64::new(0),
                            errors: AtomicU64::new(0),
                            busy_micros: AtomicU64::new(0),
                        });
                        self.slots.write().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(id.clone(), slot);
                        tracing::info!(plugin = %id, "wasm plugin loaded");
                    }
                }
            }
            Err(error) => {
                let message = format!("{error:#}");
                tracing::error!(plugin = %folder_id, error = %message, "wasm plugin not loaded");
                self.load_errors.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(folder_id, message);
            }
        }
    }

    async fn compile(&self, manifest_path: &Path) -> anyhow::Result<Loaded> {
        let manifest = Manifest::read(manifest_path)?;
        let folder = manifest_path.parent().unwrap_or(Path::new("."));
        anyhow::ensure!(
            folder.file_name().is_some_and(|name| name == manifest.id.as_str()),
            "plugin {} must be in a folder named {} (found {})",
            manifest.id,
            manifest.id,
            folder.display()
        );
        let wasm_path = folder.join(&manifest.wasm);
        let bytes = tokio::fs::read(&wasm_path)
            .await
            .map_err(|error| anyhow::anyhow!("cannot read {}: {error}", wasm_path.display()))?;
        anyhow::ensure!(
            bytes.len() <= MAX_COMPONENT_BYTES,
            "plugin {}: the component is {} bytes; the most this host loads is {MAX_COMPONENT_BYTES}",
            manifest.id,
            bytes.len()
        );
        let (component, sha256) = runtime::compile(&self.engine, Arc::new(bytes), &self.cache_dir).await?;
        if let Some(expected) = &manifest.sha256 {
            anyhow::ensure!(
                expected.eq_ignore_ascii_case(&sha256),
                "plugin {}: the component's SHA-256 is {sha256}, the manifest expects {expected}",
                manifest.id
            );
        }
        let prepared = runtime::prepare(&self.engine, &component, &manifest.world)
            .map_err(|error| anyhow::anyhow!("plugin {}: {error:#}", manifest.id))?;
        let mut grant = self.config.grants.get(&manifest.id).cloned().unwrap_or_default();
        for (key, value) in grant.config.iter_mut() {
            *value = thub_plugin_sdk::expand_secret(value)
                .map_err(|error| anyhow::anyhow!("plugin {}: config {key}: {error}", manifest.id))?;
        }
        let services = Arc::new(PluginServices {
            id: Arc::from(manifest.id.as_str()),
            manifest,
            grant,
            db: self.db.clone(),
            events: self.events.clone(),
            clock: self.clock.clone(),
            http_permits: Semaphore::new(4),
        });
        Ok(Loaded { services, prepared, sha256, loaded_at: self.clock.now() })
    }

    /// Reloads a plugin from its folder now.
    pub async fn reload(&self, id: &str) -> Result<(), String> {
        let path = self.dir.join(id).join("plugin.toml");
        if !path.is_file() {
            return Err(format!("no plugin folder {}", path.display()));
        }
        self.load(&path).await;
        match self.load_errors.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(id) {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// Switches a plugin on or off for every instance sharing the database.
    pub async fn set_enabled(&self, id: &str, enabled: bool) -> Result<(), sea_orm::DbErr> {
        set_switch(&self.db, id, enabled, self.clock.now()).await?;
        if let Some(slot) = self.slot(id) {
            slot.enabled.store(enabled, Ordering::Relaxed);
            if enabled {
                *slot.tripped.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
                slot.failures.store(0, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    async fn apply_switches(&self) {
        if self.slots.read().unwrap_or_else(|poisoned| poisoned.into_inner()).is_empty() {
            return;
        }
        let Ok(switches) = plugin_state::Entity::find().all(&self.db).await else { return };
        for switch in switches {
            if let Some(slot) = self.slot(&switch.id) {
                let was = slot.enabled.swap(switch.enabled, Ordering::Relaxed);
                if switch.enabled && !was {
                    *slot.tripped.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
                    slot.failures.store(0, Ordering::Relaxed);
                }
            }
        }
    }

    /// Every plugin, loaded or not.
    pub fn list(&self) -> Vec<PluginInfo> {
        let load_errors = self.load_errors.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
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
                PluginInfo {
                    id,
                    version: manifest.version.clone(),
                    api_version: manifest.api_version.clone(),
                    world: manifest.world.clone(),
                    enabled: slot.enabled.load(Ordering::Relaxed),
                    problem,
                    routes: manifest
                        .routes
                        .iter()
                        .flat_map(|route| {
                            route.methods.iter().map(move |method| {
                                format!("{} /plugins/{}{}", method.to_uppercase(), manifest.id, route.path)
                            })
                        })
                        .collect(),
                    events: manifest.events.clone(),
                    calls,
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
        for (id, error) in &load_errors {
            if !infos.iter().any(|info| &info.id == id) {
                infos.push(PluginInfo {
                    id: id.clone(),
                    version: String::new(),
                    api_version: String::new(),
                    world: String::new(),
                    enabled: false,
                    problem: Some(error.clone()),
                    routes: Vec::new(),
                    events: Vec::new(),
                    calls: 0,
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

    /// Calls a plugin's route. `path` is the part after `/plugins/<id>`.
    pub async fn handle_request(
        &self,
        id: &str,
        request: typed::thub::plugin::types::Request,
    ) -> Result<typed::thub::plugin::types::Response, Refusal> {
        let slot = self.slot(id).ok_or(Refusal::NotFound)?;
        let deadline = Duration::from_millis(self.config.request_timeout_ms);
        let request_id = request.request_id.clone();
        let outcome = self
            .call(&slot, request_id, deadline, move |loaded, store| {
                Box::pin(async move { loaded.prepared.invoke(store, Hook::Request(request)).await })
            })
            .await?;
        let response = match outcome {
            Ok(Output::Response(response)) => response,
            Ok(Output::Done) => return Err(Refusal::Failed("the plugin gave no response".to_owned())),
            Err(message) => {
                slot.errors.fetch_add(1, Ordering::Relaxed);
                return Err(Refusal::Failed(format!("the plugin returned an error: {message}")));
            }
        };
        if response.body.len() > self.config.max_response_bytes {
            slot.errors.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Failed(format!(
                "the response is larger than {} bytes",
                self.config.max_response_bytes
            )));
        }
        Ok(response)
    }

    /// Whether any loaded plugin is a granted middleware (so requests need the detour).
    pub fn has_middleware(&self) -> bool {
        self.all_slots().iter().any(|(_, slot)| {
            let loaded = slot.current();
            loaded.services.manifest.middleware && loaded.services.granted("middleware")
        })
    }

    /// Runs middleware plugins on `request`: the first that answers ends the request; failures
    /// and timeouts let it through (fail-open).
    pub async fn middleware(
        &self,
        request: &typed::thub::plugin::types::Request,
    ) -> Option<typed::thub::plugin::types::Response> {
        for (id, slot) in self.all_slots() {
            let loaded = slot.current();
            let services = &loaded.services;
            if !services.manifest.middleware || !services.granted("middleware") {
                continue;
            }
            if !matches!(loaded.prepared, Prepared::Typed(_)) {
                continue;
            }
            let request = request.clone();
            let deadline = Duration::from_millis(self.config.middleware_timeout_ms);
            let verdict = self
                .call(&slot, request.request_id.clone(), deadline, move |loaded, store| {
                    Box::pin(async move {
                        let Prepared::Typed(pre) = &loaded.prepared else {
                            return Ok(typed::thub::plugin::types::Verdict::Continue);
                        };
                        let instance = pre.instantiate_async(&mut *store).await?;
                        instance.thub_plugin_hooks().call_on_request(&mut *store, &request).await
                    })
                })
                .await;
            match verdict {
                Ok(typed::thub::plugin::types::Verdict::Respond(response)) => return Some(response),
                Ok(typed::thub::plugin::types::Verdict::Continue) => {}
                Err(refusal) => {
                    tracing::warn!(plugin = %id, refusal = ?refusal, "middleware failed; request let through")
                }
            }
        }
        None
    }

    /// The instance lifecycle every hook shares: availability, the concurrency cap, a fresh
    /// store, the deadline, metrics, and the failure circuit.
    async fn call<T>(
        &self,
        slot: &Arc<Slot>,
        request_id: String,
        deadline: Duration,
        run: impl for<'a> FnOnce(
            Arc<Loaded>,
            &'a mut wasmtime::Store<host::HostState>,
        ) -> std::pin::Pin<Box<dyn Future<Output = wasmtime::Result<T>> + Send + 'a>>,
    ) -> Result<T, Refusal> {
        if let Some(problem) = slot.problem() {
            return Err(Refusal::Unavailable(problem));
        }
        let _permit = slot.permits.clone().try_acquire_owned().map_err(|_| Refusal::Busy)?;
        let loaded = slot.current();
        let id = loaded.services.id.clone();
        let memory = usize::try_from(self.config.memory_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        let mut store = runtime::store(&self.engine, loaded.services.clone(), request_id.clone(), memory);
        let started = Instant::now();
        let outcome = runtime::with_deadline(deadline, run(loaded, &mut store)).await;
        store.data().flush_output();
        drop(store);
        slot.calls.fetch_add(1, Ordering::Relaxed);
        slot.busy_micros.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        metrics::counter!("thub_wasm_calls_total", "plugin" => id.to_string()).increment(1);
        metrics::histogram!("thub_wasm_call_duration_seconds", "plugin" => id.to_string())
            .record(started.elapsed().as_secs_f64());
        if outcome.is_err() {
            metrics::counter!("thub_wasm_errors_total", "plugin" => id.to_string()).increment(1);
        }
        match outcome {
            Ok(value) => {
                slot.failures.store(0, Ordering::Relaxed);
                Ok(value)
            }
            Err(failure) => {
                slot.errors.fetch_add(1, Ordering::Relaxed);
                let failures = slot.failures.fetch_add(1, Ordering::Relaxed) + 1;
                let reason = match &failure {
                    CallFailure::Timeout => format!("ran past its {} ms deadline", deadline.as_millis()),
                    CallFailure::Trap(message) => message.clone(),
                };
                tracing::error!(plugin = %id, request_id = %request_id, failures, reason = %reason, "wasm plugin call failed");
                if failures >= self.config.failure_threshold {
                    let disabled = format!("disabled after {failures} consecutive failures; last: {reason}");
                    *slot.tripped.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(disabled.clone());
                    self.events.emit("plugin.disabled", json!({"plugin_id": id.to_string(), "reason": disabled}));
                    tracing::error!(plugin = %id, "wasm plugin disabled after repeated failures");
                }
                Err(match failure {
                    CallFailure::Timeout => Refusal::Timeout,
                    CallFailure::Trap(message) => Refusal::Failed(message),
                })
            }
        }
    }

    async fn deliver(&self, row: &outbox::Model) -> Result<(), String> {
        let slot = self.slot(&row.plugin_id).ok_or("the plugin is not loaded")?;
        let event: typed::thub::plugin::types::Event =
            serde_json::from_str::<StoredEvent>(&row.event).map_err(|error| error.to_string())?.into();
        let deadline = Duration::from_millis(self.config.event_timeout_ms);
        self.call(&slot, format!("event-{}", event.id), deadline, move |loaded, store| {
            Box::pin(async move { loaded.prepared.invoke(store, Hook::Event(event)).await })
        })
        .await
        .map_err(|refusal| format!("{refusal:?}"))?
        .map(|_| ())
    }

    async fn run_task(&self, id: &str, name: String) -> Result<(), String> {
        let slot = self.slot(id).ok_or("the plugin is not loaded")?;
        let deadline = Duration::from_millis(self.config.task_timeout_ms);
        self.call(&slot, format!("task-{id}-{name}"), deadline, move |loaded, store| {
            Box::pin(async move { loaded.prepared.invoke(store, Hook::Task(name)).await })
        })
        .await
        .map_err(|refusal| format!("{refusal:?}"))?
        .map(|_| ())
    }

    /// Plugins that want `kind` and are allowed events.
    fn subscribers(&self, kind: &str) -> Vec<String> {
        self.all_slots()
            .into_iter()
            .filter(|(_, slot)| {
                let loaded = slot.current();
                loaded.services.manifest.wants_event(kind) && loaded.services.granted("events")
            })
            .map(|(id, _)| id)
            .collect()
    }

    /// Copies the bus events plugins subscribe to into the outbox. Delivery happens later, so a
    /// slow plugin never slows the request that emitted an event. One-shot commands (`thub
    /// adduser`) call this before exiting so their events are not lost with the process.
    pub async fn queue_events(&self) {
        let mut pending = Vec::new();
        {
            let mut intake = self.intake.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            loop {
                match intake.try_recv() {
                    Ok(event) => pending.push(event),
                    Err(tokio::sync::broadcast::error::TryRecvError::Lagged(missed)) => {
                        tracing::error!(missed, "the plugin event intake fell behind; events were missed");
                    }
                    Err(_) => break,
                }
            }
        }
        for event in pending {
            let subscribers = self.subscribers(&event.kind);
            if subscribers.is_empty() {
                continue;
            }
            let stored = StoredEvent {
                kind: event.kind.clone(),
                id: event.id.to_string(),
                occurred_at_ms: event.occurred_at.timestamp_millis().max(0) as u64,
                data: event.data.clone(),
            };
            let text = serde_json::to_string(&stored).unwrap_or_default();
            for plugin in subscribers {
                let row = outbox::ActiveModel {
                    plugin_id: Set(plugin),
                    event: Set(text.clone()),
                    attempts: Set(0),
                    next_attempt_at: Set(self.clock.now()),
                    last_error: Set(None),
                    dead: Set(false),
                    created_at: Set(self.clock.now()),
                    ..Default::default()
                };
                if let Err(error) = row.insert(&self.db).await {
                    tracing::error!(error = %error, "cannot queue an event for a plugin");
                }
            }
        }
    }

    /// Claims a due outbox row for this instance: moves its next attempt past the delivery
    /// deadline, only if no other instance did first. Instances sharing a database thus rarely
    /// deliver the same event twice (at-least-once still allows it after a crash).
    async fn claim(&self, row: &outbox::Model) -> bool {
        let lease = chrono::Duration::milliseconds(self.config.event_timeout_ms as i64 + 5_000);
        outbox::Entity::update_many()
            .col_expr(outbox::Column::NextAttemptAt, sea_orm::sea_query::Expr::value(self.clock.now() + lease))
            .filter(outbox::Column::Id.eq(row.id))
            .filter(outbox::Column::NextAttemptAt.eq(row.next_attempt_at))
            .exec(&self.db)
            .await
            .is_ok_and(|result| result.rows_affected == 1)
    }

    async fn work_outbox(&self) {
        // Nothing can be delivered without a subscriber: spare the database the poll.
        let any_subscriber = self.all_slots().iter().any(|(_, slot)| {
            let loaded = slot.current();
            !loaded.services.manifest.events.is_empty() && loaded.services.granted("events")
        });
        if !any_subscriber {
            return;
        }
        let now = self.clock.now();
        let due = outbox::Entity::find()
            .filter(outbox::Column::Dead.eq(false))
            .filter(outbox::Column::NextAttemptAt.lte(now))
            .order_by_asc(outbox::Column::Id)
            .limit(32)
            .all(&self.db)
            .await
            .unwrap_or_default();
        for row in due {
            if !self.claim(&row).await {
                continue;
            }
            match self.deliver(&row).await {
                Ok(()) => {
                    let _ = outbox::Entity::delete_by_id(row.id).exec(&self.db).await;
                }
                Err(error) => {
                    let attempts = row.attempts + 1;
                    let backoff = Duration::from_secs(2u64.saturating_pow(attempts as u32).min(300));
                    let mut retry: outbox::ActiveModel = row.clone().into();
                    retry.attempts = Set(attempts);
                    retry.next_attempt_at =
                        Set(self.clock.now() + chrono::Duration::from_std(backoff).unwrap_or_default());
                    retry.last_error = Set(Some(error.chars().take(1000).collect()));
                    retry.dead = Set(attempts >= 8);
                    let _ = retry.update(&self.db).await;
                    tracing::warn!(plugin = %row.plugin_id, attempts, error = %error, "event delivery failed; will retry");
                }
            }
        }
    }

    async fn run_schedules(self: &Arc<Self>) {
        let minimum = Duration::from_secs(self.config.min_schedule_seconds.max(1));
        for (id, slot) in self.all_slots() {
            let loaded = slot.current();
            if slot.problem().is_some() || !loaded.services.granted("tasks") {
                continue;
            }
            for task in loaded.services.manifest.schedule.clone() {
                let every = Duration::from_secs(task.every_seconds).max(minimum);
                let key = (id.clone(), task.name.clone());
                let due = {
                    let mut state = self.task_state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    let entry = state.entry(key.clone()).or_insert((Instant::now() + every, false));
                    let due = !entry.1 && Instant::now() >= entry.0;
                    if due {
                        *entry = (Instant::now() + every, true);
                    }
                    due
                };
                if due {
                    let host = self.clone();
                    let (id, name) = key;
                    tokio::spawn(async move {
                        if let Err(error) = host.run_task(&id, name.clone()).await {
                            tracing::warn!(plugin = %id, task = %name, error = %error, "scheduled task failed");
                        }
                        if let Some(entry) =
                            host.task_state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get_mut(&(id, name))
                        {
                            entry.1 = false;
                        }
                    });
                }
            }
        }
    }
}

async fn set_switch(
    db: &DatabaseConnection,
    id: &str,
    enabled: bool,
    now: DateTime<Utc>,
) -> Result<(), sea_orm::DbErr> {
    plugin_state::Entity::insert(plugin_state::ActiveModel {
        id: Set(id.to_owned()),
        enabled: Set(enabled),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(plugin_state::Column::Id)
            .update_columns([plugin_state::Column::Enabled, plugin_state::Column::UpdatedAt])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

/// Switches a plugin on or off in the database (`thub plugin enable|disable`); running
/// instances pick it up within seconds.
pub async fn switch(db: &DatabaseConnection, id: &str, enabled: bool) -> Result<(), sea_orm::DbErr> {
    set_switch(db, id, enabled, Utc::now()).await
}

/// An event as stored in the outbox and handed to raw plugins.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct StoredEvent {
    kind: String,
    id: String,
    occurred_at_ms: u64,
    data: serde_json::Value,
}

impl From<StoredEvent> for typed::thub::plugin::types::Event {
    fn from(stored: StoredEvent) -> Self {
        Self {
            kind: stored.kind,
            id: stored.id,
            occurred_at_ms: stored.occurred_at_ms,
            data_json: stored.data.to_string(),
        }
    }
}

impl From<&typed::thub::plugin::types::Event> for StoredEvent {
    fn from(event: &typed::thub::plugin::types::Event) -> Self {
        Self {
            kind: event.kind.clone(),
            id: event.id.clone(),
            occurred_at_ms: event.occurred_at_ms,
            data: serde_json::from_str(&event.data_json).unwrap_or_default(),
        }
    }
}

/// The outbox worker, the scheduler and the switch poller, on one timer.
async fn background(host: std::sync::Weak<WasmHost>) {
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    let mut rounds: u64 = 0;
    loop {
        ticker.tick().await;
        let Some(host) = host.upgrade() else { return };
        host.queue_events().await;
        host.work_outbox().await;
        host.run_schedules().await;
        rounds += 1;
        if rounds.is_multiple_of(10) {
            host.apply_switches().await;
        }
    }
}

/// Reloads a plugin when a file in its folder changes.
fn watch(host: std::sync::Weak<WasmHost>) {
    let Some(strong) = host.upgrade() else { return };
    let dir = strong.dir.clone();
    drop(strong);
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let (changes, mut changed) = tokio::sync::mpsc::unbounded_channel::<String>();
    let watched = dir.clone();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        for path in event.paths {
            // Only a manifest or a component matters: a cargo build in a plugin crate touches
            // thousands of other files.
            let relevant = path.file_name().is_some_and(|name| name == "plugin.toml")
                || path.extension().is_some_and(|extension| extension == "wasm");
            if !relevant {
                continue;
            }
            if let Some(id) = path
                .strip_prefix(&watched)
                .ok()
                .and_then(|inside| inside.components().next())
                .and_then(|first| first.as_os_str().to_str())
            {
                let _ = changes.send(id.to_owned());
            }
        }
    });
    let Ok(mut watcher) = watcher else { return };
    if notify::Watcher::watch(&mut watcher, &dir, notify::RecursiveMode::Recursive).is_err() {
        return;
    }
    tokio::spawn(async move {
        let _watcher = watcher;
        while let Some(first) = changed.recv().await {
            // A build writes several files: let the burst settle, then reload each plugin once.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut ids = vec![first];
            while let Ok(id) = changed.try_recv() {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            let Some(host) = host.upgrade() else { return };
            for id in ids {
                let manifest = host.dir.join(&id).join("plugin.toml");
                if manifest.is_file() {
                    host.load(&manifest).await;
                }
            }
        }
    });
}

/// Wraps `inner` so granted middleware plugins see every request (except the plugin routes and
/// the plugin admin API) before routing. Headers only; fail-open.
pub fn middleware<E: poem::Endpoint + 'static>(
    inner: E,
    host: Option<Arc<WasmHost>>,
) -> impl poem::Endpoint<Output = poem::Response> {
    use poem::{EndpointExt, IntoResponse};
    inner.around(move |inner, request| {
        let host = host.clone();
        async move {
            let path = request.uri().path();
            let exempt = path.starts_with("/plugins/") || path.starts_with("/api/v1/plugins");
            if let Some(host) = host.filter(|host| !exempt && host.has_middleware()) {
                let headers = request
                    .headers()
                    .iter()
                    .filter(|(name, _)| !matches!(name.as_str(), "authorization" | "cookie" | "proxy-authorization"))
                    .filter_map(|(name, value)| {
                        Some(typed::thub::plugin::types::Header {
                            name: name.to_string(),
                            value: value.to_str().ok()?.to_owned(),
                        })
                    })
                    .collect();
                let seen = typed::thub::plugin::types::Request {
                    method: request.method().to_string(),
                    path: path.to_owned(),
                    query: request.uri().query().unwrap_or_default().to_owned(),
                    headers,
                    body: Vec::new(),
                    principal: typed::thub::plugin::types::Principal { user_id: None, username: None, role: None },
                    request_id: thub_plugin_sdk::current_request_id().unwrap_or_default(),
                };
                if let Some(answer) = host.middleware(&seen).await {
                    return Ok(api::plugin_response(answer));
                }
            }
            inner.call(request).await.map(IntoResponse::into_response)
        }
    })
}
