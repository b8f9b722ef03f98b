//! The native plugin contract: what a built-in plugin declares and what it is given.

use std::any::{Any, TypeId, type_name};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use poem::{Request, Response};
use poem_openapi::OpenApi;
use sea_orm::DatabaseConnection;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{AccountDirectory, AccountHookList, AccountHooks, Broker, Clock, EventBus};

/// A built-in plugin. The host assembles plugins statically, in dependency order, so a plugin
/// may use services that plugins built before it provided.
pub trait Plugin: Send + Sync + 'static {
    /// Stable id: the config section `[plugins.<id>]`, the OpenAPI tag, the error-code prefix.
    const ID: &'static str;
    /// The `[plugins.<id>]` section (unknown keys are a start-up error, so use
    /// `#[serde(deny_unknown_fields, default)]`).
    type Config: Serialize + DeserializeOwned + Default + Clone + Send + Sync + 'static;
    /// The plugin's OpenAPI routes.
    type Api: OpenApi + Send + Sync + 'static;

    /// Builds the plugin: opens its services, registers the ones others may use, and returns
    /// what the host mounts.
    fn build(
        context: &PluginContext,
        config: Self::Config,
    ) -> impl Future<Output = Result<Mount<Self::Api>, PluginError>> + Send;
}

/// What a plugin hands the host to mount.
pub struct Mount<A> {
    /// Routes documented in the OpenAPI document.
    pub api: A,
    /// Routes outside the OpenAPI document (WebSockets, HTML pages), as `(path pattern, endpoint)`.
    pub routes: Vec<(String, poem::endpoint::BoxEndpoint<'static>)>,
    /// A handler for paths no route matched (owner pages, static files), tried in plugin order.
    pub fallback: Option<Arc<dyn Fallback>>,
}

impl<A> Mount<A> {
    /// A mount with only OpenAPI routes.
    pub fn api(api: A) -> Self {
        Self { api, routes: Vec::new(), fallback: None }
    }
}

/// Serves requests that no route matched, if it claims them. The host asks each plugin's
/// fallback in plugin order and gives the request to the first that claims it.
#[async_trait]
pub trait Fallback: Send + Sync + 'static {
    /// Whether this fallback serves `request`. Must not consume the body.
    async fn claims(&self, request: &Request) -> bool;
    /// Serves a claimed request.
    async fn handle(&self, request: Request) -> poem::Result<Response>;
}

/// A plugin failed to build; the host reports it and refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// A service another plugin should have provided is missing.
    #[error("plugin needs the {0} service; enable the plugin that provides it")]
    MissingService(&'static str),
    /// The plugin's configuration is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// What a plugin is given at build time.
#[derive(Clone)]
pub struct PluginContext {
    /// The hub database (SQLite or PostgreSQL).
    pub db: DatabaseConnection,
    /// Read-only account lookups.
    pub accounts: Arc<dyn AccountDirectory>,
    /// The event bus.
    pub events: EventBus,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The hub folder `thub serve` serves (the working folder by default).
    pub root: PathBuf,
    /// Where the host keeps its own files (the SQLite database): never to be served.
    pub data_dir: PathBuf,
    /// Messages between instances, when several share one Redis; `None` for a single instance.
    pub broker: Option<Arc<dyn Broker>>,
    account_hooks: AccountHookList,
    services: Arc<Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>>,
}

impl PluginContext {
    /// A context over these host services, with no plugin services yet. `account_hooks` is
    /// the list the host's accounts service consults.
    pub fn new(
        db: DatabaseConnection,
        accounts: Arc<dyn AccountDirectory>,
        account_hooks: AccountHookList,
        events: EventBus,
        clock: Arc<dyn Clock>,
        root: PathBuf,
        data_dir: PathBuf,
    ) -> Self {
        Self { db, accounts, events, clock, root, data_dir, broker: None, account_hooks, services: Arc::default() }
    }

    /// Takes part in account decisions (shared names, user deletion).
    pub fn add_account_hooks(&self, hooks: Arc<dyn AccountHooks>) {
        self.account_hooks.add(hooks);
    }

    /// Makes `service` available to plugins built later (and to the host).
    pub fn provide<T: Send + Sync + 'static>(&self, service: Arc<T>) {
        self.lock().insert(TypeId::of::<T>(), service);
    }

    /// A service provided earlier, or an error naming it.
    pub fn service<T: Send + Sync + 'static>(&self) -> Result<Arc<T>, PluginError> {
        self.try_service().ok_or(PluginError::MissingService(type_name::<T>()))
    }

    /// A service provided earlier, if any.
    pub fn try_service<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        let service = self.lock().get(&TypeId::of::<T>())?.clone();
        service.downcast::<T>().ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TypeId, Arc<dyn Any + Send + Sync>>> {
        self.services.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A `[plugins.<id>]` section: `enabled` (default true) plus the plugin's own keys.
/// Unknown keys are rejected by the plugin's config type.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginSection<T> {
    /// Whether the plugin is mounted. A disabled plugin has no routes and no OpenAPI paths.
    pub enabled: bool,
    /// The plugin's own settings.
    pub settings: T,
}

impl<T: Default> Default for PluginSection<T> {
    fn default() -> Self {
        Self { enabled: true, settings: T::default() }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for PluginSection<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let enabled = match table.remove("enabled") {
            None => true,
            Some(serde_json::Value::Bool(enabled)) => enabled,
            Some(other) => {
                return Err(D::Error::custom(format!("`enabled` must be true or false, not {other}")));
            }
        };
        let settings = serde_json::from_value(serde_json::Value::Object(table)).map_err(D::Error::custom)?;
        Ok(Self { enabled, settings })
    }
}

impl<T: Serialize> Serialize for PluginSection<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut table = serde_json::Map::new();
        table.insert("enabled".to_owned(), serde_json::Value::Bool(self.enabled));
        match serde_json::to_value(&self.settings).map_err(S::Error::custom)? {
            serde_json::Value::Object(settings) => table.extend(settings),
            serde_json::Value::Null => {}
            other => return Err(S::Error::custom(format!("plugin settings must be a table, not {other}"))),
        }
        table.serialize(serializer)
    }
}

/// The `[plugins]` table as given: one raw section per plugin id. Each built-in plugin reads its
/// own section when it is mounted (its config type refuses unknown keys), and the host refuses
/// ids that no plugin has, so core never needs a typed list of plugin configs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PluginSections(BTreeMap<String, serde_json::Value>);

impl PluginSections {
    /// Plugin `P`'s section, with the defaults for what it leaves out.
    pub fn section<P: Plugin>(&self) -> Result<PluginSection<P::Config>, PluginError> {
        match self.0.get(P::ID) {
            None => Ok(PluginSection::default()),
            Some(value) => serde_json::from_value(value.clone())
                .map_err(|error| PluginError::Config(format!("[plugins.{}]: {error}", P::ID))),
        }
    }

    /// Sets one key of plugin `id`'s section (command-line flags such as `--reload`, tests). The
    /// plugin checks the key and the value when it is mounted.
    pub fn set_key(&mut self, id: &str, key: &str, value: serde_json::Value) {
        let section = self.0.entry(id.to_owned()).or_insert_with(|| serde_json::Value::Object(Default::default()));
        if let serde_json::Value::Object(table) = section {
            table.insert(key.to_owned(), value);
        }
    }

    /// The ids of the sections given, in order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}
