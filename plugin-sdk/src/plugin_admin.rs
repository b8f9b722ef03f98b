//! The WebAssembly plugins as an administrator manages them from a page (the web plugin's
//! `/admin/plugins`): their state and counters, the on/off switch and reload. The host starts
//! its WebAssembly runtime after the built-in plugins are built, so it provides an empty
//! [`PluginAdminSlot`] first and fills it once the runtime runs.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::ApiError;

/// One WebAssembly plugin's state.
#[derive(Debug, Clone)]
pub struct WasmPluginState {
    /// Plugin id.
    pub id: String,
    /// Version, from its manifest.
    pub version: String,
    /// The operator's switch.
    pub enabled: bool,
    /// Why it is not serving, if it is not.
    pub problem: Option<String>,
    /// Its routes, as `METHOD /plugins/<id><path>`.
    pub routes: Vec<String>,
    /// Calls so far.
    pub calls: u64,
    /// Failed calls so far.
    pub errors: u64,
    /// Mean call duration in milliseconds.
    pub mean_ms: f64,
    /// When this version was loaded.
    pub loaded_at: Option<DateTime<Utc>>,
}

/// Managing WebAssembly plugins. Callers check that the caller is a site administrator.
#[async_trait]
pub trait PluginAdmin: Send + Sync + 'static {
    /// Every plugin, loaded or not.
    fn plugins(&self) -> Vec<WasmPluginState>;
    /// Switches a plugin on (clearing a failure trip) or off, for every instance. Unknown ids
    /// are 404.
    async fn set_enabled(&self, id: &str, enabled: bool) -> Result<(), ApiError>;
    /// Loads a plugin again from its folder; a load failure is a 400 naming the cause.
    async fn reload(&self, id: &str) -> Result<(), ApiError>;
}

/// Where the host puts its [`PluginAdmin`] once the WebAssembly runtime runs; empty when the
/// runtime is switched off.
#[derive(Default)]
pub struct PluginAdminSlot(OnceLock<Arc<dyn PluginAdmin>>);

impl PluginAdminSlot {
    /// Fills the slot (once; later calls are ignored).
    pub fn set(&self, admin: Arc<dyn PluginAdmin>) {
        let _ = self.0.set(admin);
    }

    /// The plugin admin, if the runtime runs.
    pub fn get(&self) -> Option<&Arc<dyn PluginAdmin>> {
        self.0.get()
    }
}
