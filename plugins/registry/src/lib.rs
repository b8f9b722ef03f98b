//! The endpoint registry: AI/ML endpoints (models, data sources, both, agents) owned by users
//! or organizations, with one visibility rule for every surface, discovery, trending, full-text
//! search and GitHub-style owner pages.
//!
//! - Tables: `endpoints`. The full-text search index of public, active endpoints is kept in
//!   memory ([`search`]).
//! - Routes: `/api/v1/endpoints` (create, list mine, public, trending, search, sync, get,
//!   update, delete, by slug, admin); `GET /{owner}` and `GET /{owner}/{slug}` (fallback).
//! - Config: `[plugins.registry]` `max_readme_chars`, `max_sync_endpoints`,
//!   `listing_cache_seconds`, `listing_cache_bytes`.
//! - Events: `endpoint.created`, `endpoint.updated`, `endpoint.deleted`, `endpoint.synced`.
//! - Services: [`RegistryService`] (visibility checks and the star counter, for the stars plugin).
//! - Needs: the organizations plugin's [`thub_organizations::OrganizationService`].

pub mod access;
pub mod api;
mod config;
pub mod entity;
mod error;
mod explore;
pub mod listings;
pub mod model;
pub mod pages;
pub mod search;
mod service;

use std::sync::Arc;

use thub_organizations::OrganizationService;
use thub_plugin_sdk::{Mount, Plugin, PluginContext, PluginError};

pub use api::EndpointsApi;
pub use config::RegistryConfig;
pub use error::RegistryError;
pub use explore::{Exploration, OwnerKind, SortOrder};
pub use listings::Discovered;
pub use service::{Listing, Owner, RegistryService, connections_of, contributors_of, policies_of, tags_of};

/// The registry plugin.
pub struct RegistryPlugin;

impl Plugin for RegistryPlugin {
    const ID: &'static str = "registry";
    type Config = RegistryConfig;
    type Api = EndpointsApi;

    async fn build(context: &PluginContext, config: RegistryConfig) -> Result<Mount<EndpointsApi>, PluginError> {
        let organizations = context.service::<OrganizationService>()?;
        let service = Arc::new(RegistryService::new(
            context.db.clone(),
            context.accounts.clone(),
            organizations,
            context.events.clone(),
            context.clock.clone(),
            config,
        ));
        service.follow(&context.events);
        context.provide(service.clone());
        Ok(Mount {
            api: EndpointsApi::new(service.clone()),
            routes: Vec::new(),
            fallback: Some(Arc::new(pages::OwnerPages::new(service))),
        })
    }
}
