//! The `thub:plugin@0.2.0` face of the host: the 0.1 host functions (delegated, with their
//! grants and limits), the `users` and `registry` lookups new in 0.2.0, and the conversions
//! between the two versions' types. The host works in 0.1 types; a 0.2 plugin's values are
//! converted at the edge.

use thub_plugin_sdk::AccountDirectory;

use super::bindings::typed::thub::plugin as old;
use super::bindings::typed_v2::thub::plugin as new;
use super::host::HostState;

/// Endpoints one `registry` call returns at most.
const MAX_ENDPOINTS: u32 = 100;

pub(crate) fn header_to_new(header: old::types::Header) -> new::types::Header {
    new::types::Header { name: header.name, value: header.value }
}

fn header_to_old(header: new::types::Header) -> old::types::Header {
    old::types::Header { name: header.name, value: header.value }
}

pub(crate) fn request_to_new(request: old::types::Request) -> new::types::Request {
    new::types::Request {
        method: request.method,
        path: request.path,
        query: request.query,
        headers: request.headers.into_iter().map(header_to_new).collect(),
        body: request.body,
        principal: new::types::Principal {
            user_id: request.principal.user_id,
            username: request.principal.username,
            role: request.principal.role,
        },
        request_id: request.request_id,
    }
}

pub(crate) fn response_to_new(response: old::types::Response) -> new::types::Response {
    new::types::Response {
        status: response.status,
        headers: response.headers.into_iter().map(header_to_new).collect(),
        body: response.body,
    }
}

pub(crate) fn response_to_old(response: new::types::Response) -> old::types::Response {
    old::types::Response {
        status: response.status,
        headers: response.headers.into_iter().map(header_to_old).collect(),
        body: response.body,
    }
}

pub(crate) fn headers_to_old(headers: Vec<new::types::Header>) -> Vec<old::types::Header> {
    headers.into_iter().map(header_to_old).collect()
}

pub(crate) fn event_to_new(event: old::types::Event) -> new::types::Event {
    new::types::Event {
        kind: event.kind,
        id: event.id,
        occurred_at_ms: event.occurred_at_ms,
        data_json: event.data_json,
    }
}

pub(crate) fn verdict_to_old(verdict: new::types::Verdict) -> old::types::Verdict {
    match verdict {
        new::types::Verdict::Continue => old::types::Verdict::Continue,
        new::types::Verdict::Respond(response) => old::types::Verdict::Respond(response_to_old(response)),
    }
}

impl new::types::Host for HostState {}

impl new::log::Host for HostState {
    async fn log(&mut self, level: new::types::Level, message: String) {
        let level = match level {
            new::types::Level::Trace => old::types::Level::Trace,
            new::types::Level::Debug => old::types::Level::Debug,
            new::types::Level::Info => old::types::Level::Info,
            new::types::Level::Warn => old::types::Level::Warn,
            new::types::Level::Error => old::types::Level::Error,
        };
        old::log::Host::log(self, level, message).await;
    }
}

impl new::kv::Host for HostState {
    async fn get(&mut self, key: String) -> Option<Vec<u8>> {
        old::kv::Host::get(self, key).await
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        old::kv::Host::set(self, key, value).await
    }

    async fn delete(&mut self, key: String) {
        old::kv::Host::delete(self, key).await;
    }

    async fn list_keys(&mut self, prefix: String, limit: u32) -> Vec<String> {
        old::kv::Host::list_keys(self, prefix, limit).await
    }
}

impl new::config::Host for HostState {
    async fn get(&mut self, key: String) -> Option<String> {
        old::config::Host::get(self, key).await
    }
}

impl new::http::Host for HostState {
    async fn fetch(&mut self, request: new::http::Outgoing) -> Result<new::http::Incoming, String> {
        let request = old::http::Outgoing {
            method: request.method,
            url: request.url,
            headers: headers_to_old(request.headers),
            body: request.body,
            timeout_ms: request.timeout_ms,
        };
        let answer = old::http::Host::fetch(self, request).await?;
        Ok(new::http::Incoming {
            status: answer.status,
            headers: answer.headers.into_iter().map(header_to_new).collect(),
            body: answer.body,
        })
    }
}

impl new::hub::Host for HostState {
    async fn emit(&mut self, kind: String, data_json: String) -> Result<(), String> {
        old::hub::Host::emit(self, kind, data_json).await
    }
}

impl HostState {
    /// The account directory, when `users` is granted.
    fn directory(&self) -> Option<std::sync::Arc<dyn AccountDirectory>> {
        if !self.services.granted("users") {
            tracing::debug!(target: "thub::plugin", plugin = %self.services.id, "users lookup without the users grant");
            return None;
        }
        self.services.directory.accounts.clone()
    }

    fn profile(
        &self,
        user: Result<Option<thub_plugin_sdk::UserSummary>, sea_orm::DbErr>,
    ) -> Option<new::users::Profile> {
        match user {
            Ok(user) => user.filter(|user| user.is_active).map(|user| new::users::Profile {
                id: user.id,
                username: user.username,
                full_name: user.full_name,
            }),
            Err(error) => {
                tracing::error!(plugin = %self.services.id, request_id = %self.request_id, error = %error, "users lookup failed");
                None
            }
        }
    }
}

impl new::users::Host for HostState {
    async fn by_id(&mut self, id: i64) -> Option<new::users::Profile> {
        let user = self.directory()?.user_by_id(id).await;
        self.profile(user)
    }

    async fn by_name(&mut self, username: String) -> Option<new::users::Profile> {
        let user = self.directory()?.user_by_username(&username).await;
        self.profile(user)
    }
}

/// The registry service and the caller as it sees them, when `registry` is granted. Takes
/// what it needs by value: the host state is not shared across the await.
async fn registry_view(
    services: std::sync::Arc<super::host::PluginServices>,
    caller: Option<thub_plugin_sdk::Principal>,
) -> Option<(std::sync::Arc<thub_registry::RegistryService>, thub_registry::access::Viewer)> {
    if !services.granted("registry") {
        tracing::debug!(target: "thub::plugin", plugin = %services.id, "registry lookup without the registry grant");
        return None;
    }
    let registry = services.directory.registry.clone()?;
    match registry.viewer(caller).await {
        Ok(viewer) => Some((registry, viewer)),
        Err(error) => {
            tracing::error!(plugin = %services.id, error = %error, "registry lookup failed");
            None
        }
    }
}

fn endpoint_info(owner: &str, endpoint: thub_registry::entity::endpoint::Model) -> new::registry::Endpoint {
    new::registry::Endpoint {
        id: endpoint.id,
        owner: owner.to_owned(),
        slug: endpoint.slug,
        name: endpoint.name,
        description: endpoint.description,
        kind: endpoint.kind,
        visibility: endpoint.visibility,
        stars: u64::try_from(endpoint.stars_count).unwrap_or(0),
    }
}

impl new::registry::Host for HostState {
    async fn list_by_owner(&mut self, owner: String, limit: u32) -> Vec<new::registry::Endpoint> {
        let services = self.services.clone();
        let Some((registry, viewer)) = registry_view(services.clone(), self.caller.clone()).await else {
            return Vec::new();
        };
        let found = match registry.owner(&owner).await {
            Ok(Some(found)) => found,
            Ok(None) => return Vec::new(),
            Err(error) => {
                tracing::error!(plugin = %services.id, error = %error, "registry lookup failed");
                return Vec::new();
            }
        };
        let limit = u64::from(limit.min(MAX_ENDPOINTS));
        match registry.owner_endpoints(&viewer, &found, 0, limit).await {
            Ok(endpoints) => endpoints.into_iter().map(|endpoint| endpoint_info(&owner, endpoint)).collect(),
            Err(error) => {
                tracing::error!(plugin = %services.id, error = %error, "registry lookup failed");
                Vec::new()
            }
        }
    }

    async fn get(&mut self, owner: String, slug: String) -> Option<new::registry::Endpoint> {
        let (registry, viewer) = registry_view(self.services.clone(), self.caller.clone()).await?;
        let found = registry.owner(&owner).await.ok().flatten()?;
        let endpoint = registry.owner_endpoint(&found, &slug).await.ok().flatten()?;
        // Whether the caller may see it is the registry's rule, the same as its API's.
        let endpoint = registry.visible(&viewer, endpoint.id).await.ok()?;
        Some(endpoint_info(&owner, endpoint))
    }
}
