//! The plugin host for built-ins: static assembly in dependency order, the enable switch, and
//! the fallback chain (owner pages, static files) for paths no route matched.

use std::collections::HashMap;
use std::sync::Arc;

use poem::endpoint::BoxEndpoint;
use poem::http::Method;
use poem_openapi::OpenApi;
use poem_openapi::registry::{MetaApi, Registry};
use thub_plugin_sdk::{Fallback, Plugin, PluginContext, PluginSections};

/// The built-in plugins, in dependency order: the one list of them. A plugin may use the
/// services of those before it (stars needs the registry, the registry needs organizations); the
/// site comes last because its fallback serves whatever the owner pages did not claim.
pub type BuiltIns = (
    thub_organizations::OrganizationsPlugin,
    thub_registry::RegistryPlugin,
    thub_stars::StarsPlugin,
    thub_channels::ChannelsPlugin,
    thub_proxy::ProxyPlugin,
    // Before the site: the web's pages (and its 404 page for owner-shaped paths that are no
    // owner and no file) win over static files.
    thub_web::WebPlugin,
    thub_site::SitePlugin,
);

/// The OpenAPI routes of every built-in plugin, in assembly order.
pub type PluginApis = <BuiltIns as PluginList>::Apis;

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

/// Builds every built-in plugin in dependency order. A `[plugins.<id>]` section that names no
/// built-in plugin is refused before anything is built.
pub async fn assemble(context: &PluginContext, sections: &PluginSections) -> anyhow::Result<(PluginApis, Assembly)> {
    check_ids(sections)?;
    let mut assembly = Assembly::default();
    let apis = BuiltIns::mount_all(context, sections, &mut assembly).await?;
    Ok((apis, assembly))
}

/// Every built-in plugin's effective section, defaults filled in and secrets redacted: what
/// `thub config` prints and what the example config is checked against.
pub fn effective_sections(sections: &PluginSections) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    check_ids(sections)?;
    let mut effective = serde_json::Map::new();
    BuiltIns::resolve_all(sections, &mut effective)?;
    Ok(effective)
}

fn check_ids(sections: &PluginSections) -> anyhow::Result<()> {
    for id in sections.ids() {
        anyhow::ensure!(
            BuiltIns::IDS.contains(&id),
            "invalid configuration: unknown plugin `{id}` in [plugins]; built-in plugins are {}",
            BuiltIns::IDS.join(", ")
        );
    }
    Ok(())
}

/// Builds one plugin if its section enables it.
async fn mount<P: Plugin>(
    context: &PluginContext,
    sections: &PluginSections,
    assembly: &mut Assembly,
) -> anyhow::Result<Toggle<P::Api>> {
    let section = sections.section::<P>()?;
    if !section.enabled {
        assembly.disabled.push(P::ID);
        return Ok(Toggle(None));
    }
    let mount =
        P::build(context, section.settings).await.map_err(|error| anyhow::anyhow!("plugin {}: {error}", P::ID))?;
    assembly.routes.extend(mount.routes);
    assembly.fallbacks.extend(mount.fallback);
    assembly.enabled.push(P::ID);
    Ok(Toggle(Some(mount.api)))
}

/// A tuple of plugin types, mounted in order. Implemented for tuples so [`BuiltIns`] stays a
/// plain list.
pub trait PluginList {
    /// The plugins' OpenAPI types, each behind its enable switch.
    type Apis: OpenApi;
    /// The plugins' ids, in order.
    const IDS: &'static [&'static str];
    /// Mounts every plugin in order.
    fn mount_all(
        context: &PluginContext,
        sections: &PluginSections,
        assembly: &mut Assembly,
    ) -> impl Future<Output = anyhow::Result<Self::Apis>> + Send;
    /// Parses every plugin's section into `effective`.
    fn resolve_all(
        sections: &PluginSections,
        effective: &mut serde_json::Map<String, serde_json::Value>,
    ) -> anyhow::Result<()>;
}

macro_rules! plugin_list {
    ($($plugin:ident),+) => {
        impl<$($plugin: Plugin),+> PluginList for ($($plugin,)+) {
            type Apis = ($(Toggle<$plugin::Api>,)+);
            const IDS: &'static [&'static str] = &[$($plugin::ID),+];

            async fn mount_all(
                context: &PluginContext,
                sections: &PluginSections,
                assembly: &mut Assembly,
            ) -> anyhow::Result<Self::Apis> {
                Ok(($(mount::<$plugin>(context, sections, assembly).await?,)+))
            }

            fn resolve_all(
                sections: &PluginSections,
                effective: &mut serde_json::Map<String, serde_json::Value>,
            ) -> anyhow::Result<()> {
                $(effective.insert($plugin::ID.to_owned(), serde_json::to_value(sections.section::<$plugin>()?)?);)+
                Ok(())
            }
        }
    };
}

plugin_list!(A, B, C, D, E, F);
plugin_list!(A, B, C, D, E, F, G);
plugin_list!(A, B, C, D, E, F, G, H);

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
