//! Plugin slots: one per plugin id, holding the version that serves and the counters that
//! survive reloads. Loading, reloading (atomic swap: in-flight calls keep their version) and the
//! operator's on/off switch, shared through the database by every instance.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{DatabaseConnection, EntityTrait, Set};
use tokio::sync::Semaphore;

use super::WasmHost;
use super::entity::plugin_state;
use super::host::PluginServices;
use super::manifest::Manifest;
use super::runtime::{self, Prepared};

/// The largest component loaded: Python and JavaScript guests are 12–18 MB.
const MAX_COMPONENT_BYTES: usize = 32 << 20;

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
    /// Loads (or reloads) the plugin described by `manifest_path`. In-flight calls keep the
    /// version they started with. Failures are logged and shown in the list.
    pub(super) async fn load(&self, manifest_path: &Path) {
        let folder_id =
            manifest_path.parent().and_then(Path::file_name).and_then(|name| name.to_str()).unwrap_or("?").to_owned();
        match self.compile(manifest_path).await {
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
                        *slot.loaded.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(loaded);
                        slot.reset_circuit();
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
