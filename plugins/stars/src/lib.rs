//! Stars on endpoints.
//!
//! - Tables: `endpoint_stars` (one row per user and endpoint). The endpoint's `stars_count`
//!   (registry's column) changes in the same transaction as a row here, by SQL increment, so
//!   counts stay right under concurrent stars; deleting an endpoint takes its rows along, and
//!   deleting a user gives back the stars they gave (an account hook).
//! - Routes: `POST`/`DELETE /api/v1/endpoints/{id}/star`, `GET /api/v1/endpoints/{id}/starred`.
//! - Config: `[plugins.stars]` (only `enabled`).
//! - Events: `endpoint.starred`, `endpoint.unstarred`.
//! - Needs: the registry plugin's [`thub_registry::RegistryService`].

pub mod api;
mod config;
pub mod entity;
mod error;
mod service;

use std::sync::Arc;

use thub_plugin_sdk::{Mount, Plugin, PluginContext, PluginError};
use thub_registry::RegistryService;

pub use api::StarsApi;
pub use config::StarsConfig;
pub use error::StarsError;
pub use service::StarsService;

/// The stars plugin.
pub struct StarsPlugin;

impl Plugin for StarsPlugin {
    const ID: &'static str = "stars";
    type Config = StarsConfig;
    type Api = StarsApi;

    async fn build(context: &PluginContext, _config: StarsConfig) -> Result<Mount<StarsApi>, PluginError> {
        let registry = context.service::<RegistryService>()?;
        let service =
            Arc::new(StarsService::new(context.db.clone(), registry, context.events.clone(), context.clock.clone()));
        context.add_account_hooks(service.clone());
        context.provide(service.clone());
        Ok(Mount::api(StarsApi::new(service)))
    }
}
