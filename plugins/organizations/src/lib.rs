//! Organizations: a shared owner for endpoints, with members in roles owner, admin and member.
//!
//! - Tables: `organizations`, `organization_members`.
//! - Routes: `/api/v1/organizations` (create, list mine, get, update, delete; members add,
//!   change role, remove; site-admin switches).
//! - Config: `[plugins.organizations]` (only `enabled`).
//! - Events: `org.created`, `org.deleted`, `org.member_added`, `org.member_removed`,
//!   `org.member_role_changed`.
//! - Services: [`OrganizationService`] (look-ups by slug, a user's role in an organization).
//! - Account hooks: organization slugs and usernames share the `/{owner}` namespace; a user who
//!   is the last owner of an organization cannot be deleted until it has another owner.

pub mod api;
mod config;
pub mod entity;
mod error;
mod service;

use std::sync::Arc;

use thub_plugin_sdk::{Mount, Plugin, PluginContext, PluginError};

pub use api::OrganizationsApi;
pub use config::OrganizationsConfig;
pub use error::OrganizationsError;
pub use service::{NewOrganization, OrgRole, OrganizationService, OrganizationSummary};

/// The organizations plugin.
pub struct OrganizationsPlugin;

impl Plugin for OrganizationsPlugin {
    const ID: &'static str = "organizations";
    type Config = OrganizationsConfig;
    type Api = OrganizationsApi;

    async fn build(
        context: &PluginContext,
        _config: OrganizationsConfig,
    ) -> Result<Mount<OrganizationsApi>, PluginError> {
        let service = Arc::new(OrganizationService::new(
            context.db.clone(),
            context.accounts.clone(),
            context.events.clone(),
            context.clock.clone(),
        ));
        context.provide(service.clone());
        context.add_account_hooks(service.clone());
        Ok(Mount::api(OrganizationsApi::new(service)))
    }
}
