//! The static site: the hub folder's files for logged-in users, as Tufts Hub served them, without
//! its holes.
//!
//! - Routes: every `GET`/`HEAD` path no other route or plugin claimed (a fallback, after the
//!   owner pages); `/` only when the folder has an `index.html`. `GET /_thub/reload` (server-sent
//!   events) when live reload is on.
//! - Never served, at any depth and however the path is spelled: `thub.toml`, `config.json`,
//!   keys and certificates, databases and their journals, dot-files and dot-folders, the data
//!   folder, anything outside the folder (segments are decoded and checked one by one, `..` is
//!   refused, and the resolved path, symlinks followed, must stay inside the folder).
//! - Config: `[plugins.site]` `reload`, `deny`.
//! - Events: none. Tables: none.

mod config;
mod paths;
mod reload;
mod site;

use std::sync::Arc;

use thub_plugin_sdk::{Mount, Plugin, PluginContext, PluginError};

pub use config::SiteConfig;
pub use paths::{Resolution, resolve};

/// The site plugin.
pub struct SitePlugin;

impl Plugin for SitePlugin {
    const ID: &'static str = "site";
    type Config = SiteConfig;
    type Api = ();

    async fn build(context: &PluginContext, config: SiteConfig) -> Result<Mount<()>, PluginError> {
        let root = context.root.canonicalize().map_err(|error| {
            PluginError::Config(format!("hub folder {} is not readable: {error}", context.root.display()))
        })?;
        let reloads = if config.reload { Some(reload::Reloads::watch(&root)?) } else { None };
        let site = Arc::new(site::Site::new(root, context.data_dir.clone(), config.deny.clone(), reloads.clone()));
        let mut routes: Vec<(String, poem::endpoint::BoxEndpoint<'static>)> = Vec::new();
        if let Some(reloads) = reloads {
            routes.push(("/_thub/reload".to_owned(), reload::endpoint(reloads)));
        }
        Ok(Mount { api: (), routes, fallback: Some(site) })
    }
}
