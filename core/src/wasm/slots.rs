//! Plugin slots: one per plugin id, holding the version that serves and the counters that
//! survive reloads. Loading in the background (what is compiling and how far), reloading (atomic
//! swap: in-flight calls keep their version) and the operator's on/off switch, shared through
//! the database by every instance.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{DatabaseConnection, EntityTrait, Set};
use serde_json::json;
use tokio::sync::Semaphore;

use super::WasmHost;
use super::entity::plugin_state;
use super::host::PluginServices;
use super::manifest::Manifest;
use super::runtime::{self, Prepared};

/// A plugin version being compiled: what the list shows meanwhile, and the routes that answer
/// 503 until it is ready.
pub(super) struct Compiling {
    manifest: Arc<Manifest>,
    bytes: u64,
    started: Instant,
    from_cache: bool,
}

/// One loaded version of a plugin.
pub(super) struct Loaded {
    pub(super) services: Arc<PluginServices>,
    pub(super) prepared: Prepared,
    pub(super) sha256: String,
    pub(super) loaded_at: DateTime<Utc>,
}

/// One plugin id: its current version and its counters, which survive reloads.
pub(super) struct Slot {
    loaded: RwLock<Arc<Loaded>>,
    pub(super) enabled: AtomicBool,
    pub(super) tripped: Mutex<Option<String>>,
    pub(super) permits: Arc<Semaphore>,
    pub(super) failures: AtomicU32,
    pub(super) calls: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) busy_micros: AtomicU64,
}

impl Slot {
    /// The version serving now.
    pub(super) fn current(&self) -> Arc<Loaded> {
        self.loaded.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Why it does not serve: the operator's switch or a tripped circuit.
    pub(super) fn problem(&self) -> Option<String> {
        if !self.enabled.load(Ordering::Relaxed) {
            return Some("disabled by the operator".to_owned());
        }
        self.tripped.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Closes the failure circuit again.
    pub(super) fn reset_circuit(&self) {
        *self.tripped.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
        self.failures.store(0, Ordering::Relaxed);
    }
}

impl WasmHost {
    /// Loads (or reloads) a plugin on a task of its own; see [`WasmHost::load`].
    pub(super) fn load_in_background(self: &Arc<Self>, manifest_path: PathBuf) {
        // Counted before the task starts, so `loaded()` cannot miss it.
        self.loads_under_way.send_modify(|count| *count += 1);
        let host = self.clone();
        tokio::spawn(async move {
            host.load(&manifest_path).await;
            host.loads_under_way.send_modify(|count| *count -= 1);
        });
    }

    /// Loads (or reloads) the plugin described by `manifest_path`, compiling at most one plugin
    /// per core at once. In-flight calls keep the version they started with; until the first
    /// version is ready its routes answer 503. Failures are logged and shown in the list.
    pub(super) async fn load(&self, manifest_path: &Path) {
        let folder_id =
            manifest_path.parent().and_then(Path::file_name).and_then(|name| name.to_str()).unwrap_or("?").to_owned();
        let compiled = {
            // Closed only when the host is gone.
            let _permit = self.compile_permits.acquire().await;
            let started = Instant::now();
            let compiled = self.compile(manifest_path).await;
            let finished = self.compiling.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&folder_id);
            if let (Ok(_), Some(finished)) = (&compiled, finished)
                && !finished.from_cache
            {
                let speed = finished.bytes as f64 / started.elapsed().as_secs_f64().max(0.001);
                self.compile_speed.store(speed as u64, Ordering::Relaxed);
            }
            compiled
        };
        match compiled {
            Ok(loaded) => {
                let id = loaded.services.id.to_string();
                self.load_errors.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&folder_id);
                match self.slot(&id) {
                    Some(slot) => {
                        let current = slot.current();
                        if current.sha256 == loaded.sha256
                            && current.services.manifest == loaded.services.manifest
                            && current.services.grant == loaded.services.grant
                        {
                            // A build touches files several times; the same plugin again is no change.
                            return;
                        }
                        let version = loaded.services.manifest.version.clone();
                        *slot.loaded.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(loaded);
                        slot.reset_circuit();
                        tracing::info!(plugin = %id, "wasm plugin reloaded");
                        self.events.emit("plugin.reloaded", json!({"plugin_id": id, "version": version}));
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
                        // The operator may have switched it off before it was ever loaded here.
                        match plugin_state::Entity::find_by_id(id.clone()).one(&self.db).await {
                            Ok(switch) => {
                                slot.enabled.store(switch.is_none_or(|switch| switch.enabled), Ordering::Relaxed)
                            }
                            Err(error) => {
                                tracing::error!(plugin = %id, error = %error, "cannot read the plugin's switch; the next poll will")
                            }
                        }
                        let version = slot.current().services.manifest.version.clone();
                        self.slots.write().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(id.clone(), slot);
                        tracing::info!(plugin = %id, "wasm plugin loaded");
                        self.events.emit("plugin.loaded", json!({"plugin_id": id, "version": version}));
                    }
                }
            }
            Err(error) => {
                let message = format!("{error:#}");
                tracing::error!(plugin = %folder_id, error = %message, "wasm plugin not loaded");
                self.events.emit("plugin.load_failed", json!({"plugin_id": folder_id, "error": message}));
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
        let cap = self.config.max_component_mb.saturating_mul(1 << 20);
        anyhow::ensure!(
            bytes.len() as u64 <= cap,
            "plugin {}: the component is {:.1} MiB; this host loads at most {} MiB (wasm.max_component_mb)",
            manifest.id,
            bytes.len() as f64 / f64::from(1 << 20),
            self.config.max_component_mb
        );
        let source = runtime::Source::new(&self.engine, bytes, &self.cache_dir).await?;
        self.compiling.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(
            manifest.id.clone(),
            Compiling {
                manifest: Arc::new(manifest.clone()),
                bytes: source.len() as u64,
                started: Instant::now(),
                from_cache: source.is_cached(),
            },
        );
        let (prepared, sha256) = source
            .compile(&manifest.world)
            .await
            .map_err(|error| anyhow::anyhow!("plugin {}: {error:#}", manifest.id))?;
        if let Some(expected) = &manifest.sha256 {
            anyhow::ensure!(
                expected.eq_ignore_ascii_case(&sha256),
                "plugin {}: the component's SHA-256 is {sha256}, the manifest expects {expected}",
                manifest.id
            );
        }
        self.refresh_grants();
        let mut grant = self.grant(&manifest.id);
        for (key, value) in grant.config.iter_mut() {
            *value = thub_plugin_sdk::expand_secret(value)
                .map_err(|error| anyhow::anyhow!("plugin {}: config {key}: {error}", manifest.id))?;
        }
        let services = Arc::new(PluginServices {
            directory: self.directory.clone(),
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

    /// What is compiling now, by id: its manifest and a line on its progress.
    pub(super) fn compiling_progress(&self) -> BTreeMap<String, (Arc<Manifest>, String)> {
        let speed = self.compile_speed.load(Ordering::Relaxed);
        self.compiling
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|(id, compiling)| {
                let elapsed = compiling.started.elapsed().as_secs_f64();
                let size = compiling.bytes as f64 / f64::from(1 << 20);
                let mut progress = if compiling.from_cache {
                    format!("loading {size:.1} MiB of compiled code from the cache")
                } else {
                    format!("compiling {size:.1} MiB for {elapsed:.1} s")
                };
                // Compiling reports no progress of its own: estimate from the speed seen so far.
                if !compiling.from_cache && speed > 0 {
                    let expected = compiling.bytes as f64 / speed as f64;
                    let percent = (elapsed / expected * 100.0).min(99.0);
                    progress.push_str(&format!(", about {percent:.0}%"));
                }
                (id.clone(), (compiling.manifest.clone(), progress))
            })
            .collect()
    }

    /// Whether `id` is compiling its first version and declares `method path`: such a request
    /// is answered 503 with Retry-After until the plugin is ready.
    pub(super) fn compiling_route(&self, id: &str, method: &str, path: &str) -> bool {
        self.compiling
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(id)
            .is_some_and(|compiling| compiling.manifest.route(method, path).is_some())
    }

    /// Whether `id` is compiling (events for it wait, uncounted, until it is ready).
    pub(super) fn is_compiling(&self, id: &str) -> bool {
        self.compiling.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).contains_key(id)
    }

    /// Manifests and grants of the plugins compiling now, so events emitted before they are
    /// ready are kept for them.
    pub(super) fn compiling_manifests(&self) -> Vec<Arc<Manifest>> {
        self.compiling
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .map(|compiling| compiling.manifest.clone())
            .collect()
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
        let kind = if enabled { "plugin.enabled" } else { "plugin.disabled" };
        // "enabled by the operator" / "disabled by the operator".
        self.events.emit(kind, json!({"plugin_id": id, "reason": format!("{} by the operator", &kind[7..])}));
        if let Some(slot) = self.slot(id) {
            slot.enabled.store(enabled, Ordering::Relaxed);
            if enabled {
                slot.reset_circuit();
            }
        }
        Ok(())
    }

    /// Follows the switches in the database (set by another instance or `thub plugin`).
    pub(super) async fn apply_switches(&self) {
        if self.slots.read().unwrap_or_else(|poisoned| poisoned.into_inner()).is_empty() {
            return;
        }
        let switches = match plugin_state::Entity::find().all(&self.db).await {
            Ok(switches) => switches,
            Err(error) => {
                // The next poll tries again; until then the switches stay as they were.
                tracing::error!(error = %error, "cannot read the plugin switches; will retry");
                return;
            }
        };
        for switch in switches {
            if let Some(slot) = self.slot(&switch.id) {
                let was = slot.enabled.swap(switch.enabled, Ordering::Relaxed);
                if switch.enabled && !was {
                    slot.reset_circuit();
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
