//! The plugin host for built-ins: static assembly in dependency order, the enable switch, and
//! the fallback chain (owner pages, static files) for paths no route matched.

use std::collections::HashMap;
use std::sync::Arc;

use poem::endpoint::BoxEndpoint;
use poem::http::Method;
use poem_openapi::OpenApi;
use poem_openapi::registry::{MetaApi, Registry};
use thub_plugin_sdk::{Fallback, Plugin, PluginContext, PluginSection};

use crate::config::PluginsConfig;

/// The OpenAPI routes of every built-in plugin, in assembly order.
pub type PluginApis = (
    Toggle<thub_organizations::OrganizationsApi>,
    Toggle<thub_registry::EndpointsApi>,
    Toggle<thub_stars::StarsApi>,
    Toggle<thub_channels::ChannelsApi>,
);

/// What the built-in plugins contributed besides their OpenAPI routes.
#[derive(Default)]
pub struct Assembly {
    /// Raw routes (WebSockets, HTML) as `(path pattern, endpoint)`.
    pub routes: Vec<(String, BoxEndpoint<'static>)>,
    /// Fallbacks in plugin order.
    pub fallbacks: Vec<Arc<dyn Fallback>>,
    /// Ids of mounted plugins, in order.
    pub enabled: Vec<&'static str>,
    /// Ids of plugins switched off in config: their routes are unmounted and their operations
    /// (tagged with the plugin id) are pruned from the OpenAPI document.
    pub disabled: Vec<&'static str>,
}

/// Builds every built-in plugin in dependency order: a plugin may use the services of those
/// above it.
pub async fn assemble(context: &PluginContext, config: &PluginsConfig) -> anyhow::Result<(PluginApis, Assembly)> {
    let mut assembly = Assembly::default();
    let organizations =
        mount::<thub_organizations::OrganizationsPlugin>(context, &config.organizations, &mut assembly).await?;
    let registry = mount::<thub_registry::RegistryPlugin>(context, &config.registry, &mut assembly).await?;
    let stars = mount::<thub_stars::StarsPlugin>(context, &config.stars, &mut assembly).await?;
    let channels = mount::<thub_channels::ChannelsPlugin>(context, &config.channels, &mut assembly).await?;
    mount::<thub_proxy::ProxyPlugin>(context, &config.proxy, &mut assembly).await?;
    // Before the site: its pages and its 404 page for owner-shaped paths win over static files.
    mount::<thub_web::WebPlugin>(context, &config.web, &mut assembly).await?;
    // Last: its fallback serves whatever the owner pages did not claim.
    mount::<thub_site::SitePlugin>(context, &config.site, &mut assembly).await?;
    Ok(((organizations, registry, stars, channels), assembly))
}

/// Builds one plugin if its section enables it.
pub async fn mount<P: Plugin>(
    context: &PluginContext,
    section: &PluginSection<P::Config>,
    assembly: &mut Assembly,
) -> anyhow::Result<Toggle<P::Api>> {
    if !section.enabled {
        assembly.disabled.push(P::ID);
        return Ok(Toggle(None));
    }
    let mount = P::build(context, section.settings.clone())
        .await
        .map_err(|error| anyhow::anyhow!("plugin {}: {error}", P::ID))?;
    assembly.routes.extend(mount.routes);
    assembly.fallbacks.extend(mount.fallback);
    assembly.enabled.push(P::ID);
    Ok(Toggle(Some(mount.api)))
}

/// A plugin's API that is mounted only when the plugin is enabled. Its operations are always
/// in the static metadata (poem-openapi combines APIs at compile time); the host prunes those of
/// disabled plugins from the served document.
pub struct Toggle<T>(pub Option<T>);

impl<T: OpenApi> OpenApi for Toggle<T> {
    fn meta() -> Vec<MetaApi> {
        T::meta()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn add_routes(self, route_table: &mut HashMap<String, HashMap<Method, BoxEndpoint<'static>>>) {
        if let Some(api) = self.0 {
            api.add_routes(route_table);
        }
    }
}

/// Removes from an OpenAPI document the operations tagged with a disabled plugin's id, and
/// paths left with no operation.
pub fn prune_spec(spec: &mut serde_json::Value, disabled: &[&str]) {
    if disabled.is_empty() {
        return;
    }
    let Some(paths) = spec.get_mut("paths").and_then(serde_json::Value::as_object_mut) else { return };
    for operations in paths.values_mut() {
        if let Some(operations) = operations.as_object_mut() {
            operations.retain(|_, operation| {
                let tags = operation.get("tags").and_then(serde_json::Value::as_array);
                !tags.is_some_and(|tags| tags.iter().any(|tag| tag.as_str().is_some_and(|tag| disabled.contains(&tag))))
            });
        }
    }
    paths.retain(|_, operations| operations.as_object().is_some_and(|operations| !operations.is_empty()));
    if let Some(tags) = spec.get_mut("tags").and_then(serde_json::Value::as_array_mut) {
        tags.retain(|tag| {
            !tag.get("name").and_then(serde_json::Value::as_str).is_some_and(|name| disabled.contains(&name))
        });
    }
}
