//! The SDK's [`PluginAdmin`] over the [`WasmHost`]: what the web's `/admin/plugins` page calls.
//! The same rules and audit events as the admin API in `api.rs`.

use async_trait::async_trait;
use thub_plugin_sdk::{ApiError, PluginAdmin, WasmPluginState};

use super::WasmHost;

#[async_trait]
impl PluginAdmin for WasmHost {
    fn plugins(&self) -> Vec<WasmPluginState> {
        self.list()
            .into_iter()
            .map(|info| WasmPluginState {
                id: info.id,
                version: info.version,
                enabled: info.enabled,
                problem: info.problem,
                routes: info.routes,
                calls: info.calls,
                errors: info.errors,
                mean_ms: info.mean_ms,
                loaded_at: info.loaded_at,
            })
            .collect()
    }

    async fn set_enabled(&self, id: &str, enabled: bool) -> Result<(), ApiError> {
        if !self.list().iter().any(|plugin| plugin.id == id) {
            return Err(ApiError::not_found("plugins.not_found", format!("No plugin '{id}'")));
        }
        WasmHost::set_enabled(self, id, enabled).await?;
        crate::audit::plugin_switched(id, enabled);
        Ok(())
    }

    async fn reload(&self, id: &str) -> Result<(), ApiError> {
        WasmHost::reload(self, id).await.map_err(|error| {
            ApiError::bad_request("plugins.load_failed", format!("Plugin '{id}' did not load: {error}"))
        })
    }
}
