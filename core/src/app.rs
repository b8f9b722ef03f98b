//! Assembling the hub: storage, shared state, core APIs, built-in plugins, middleware. The
//! binary and every in-process test build the app through [`Hub::build`].

use std::sync::{Arc, Once};

use anyhow::Context;
use poem::endpoint::{BoxEndpoint, make_sync};
use poem::http::Method;
use poem::web::Html;
use poem::{Endpoint, EndpointExt, IntoEndpoint, Request, Response, Route, get};
use poem_openapi::{OpenApi, OpenApiService};
use sea_orm::DatabaseConnection;
use thub_plugin_sdk::{AccountHookList, ApiError, Clock, EventBus, Fallback, PluginContext, SystemClock};

use crate::accounts::{self, Accounts};
use crate::config::Config;
use crate::http::{self, OriginPolicy};
use crate::meta::MetaApi;
use crate::openapi;
use crate::plugins::{self, PluginApis};
use crate::shared::{RedisBroker, Shared};
use crate::storage;
use crate::wasm::{self, WasmHost};

/// Every OpenAPI route the hub serves: core first, then the built-in plugins.
type AllApis = (
    MetaApi,
    accounts::api::AuthApi,
    accounts::api::UsersApi,
    accounts::api::IdpApi,
    wasm::api::PluginsApi,
    PluginApis,
);

/// A built hub: its shared state and the HTTP endpoint that serves it.
pub struct Hub {
    /// The effective configuration.
    pub config: Arc<Config>,
    /// The database.
    pub db: DatabaseConnection,
    /// The event bus.
    pub events: EventBus,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Accounts, sessions and tokens.
    pub accounts: Arc<Accounts>,
    /// State shared between instances (Redis or local).
    pub shared: Arc<Shared>,
    /// The WebAssembly plugin host, unless switched off.
    pub wasm: Option<Arc<WasmHost>>,
    /// Ids of the mounted built-in plugins.
    pub plugins: Vec<&'static str>,
    endpoint: Arc<BoxEndpoint<'static, Response>>,
    spec: String,
}

impl Hub {
    /// Hands what one-shot commands did to the background machinery before the process ends:
    /// events emitted so far are queued for WebAssembly plugins.
    pub async fn settle(&self) {
        if let Some(wasm) = &self.wasm {
            wasm.queue_events().await;
        }
    }

    /// Builds the hub on the system clock.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Builds the hub: opens and migrates the database, builds core services and plugins, and
    /// assembles routes and middleware.
    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        install_crypto_providers();
        let config = Arc::new(config);
        let root = config.root()?;
        let db = storage::connect(&config).await?;
        storage::migrate(&db).await?;
        storage::spawn_wal_maintenance(&db, &config.database_url()?, std::time::Duration::from_secs(5));

        let shared = Arc::new(match config.redis.url.expose() {
            "" => Shared::local(),
            url => Shared::connect(url, &config.redis.key_prefix).await?,
        });
        let events = EventBus::new(1024, clock.clone());
        let hooks = AccountHookList::default();
        let accounts = Arc::new(
            Accounts::open(db.clone(), clock.clone(), &config, shared.clone(), events.clone(), hooks.clone()).await?,
        );
        let mut context = PluginContext::new(
            db.clone(),
            accounts.clone(),
            hooks,
            events.clone(),
            clock.clone(),
            root,
            config.data_dir()?,
        );
        context.broker =
            RedisBroker::new(shared.clone()).map(|broker| Arc::new(broker) as Arc<dyn thub_plugin_sdk::Broker>);
        context.provide(Arc::new(thub_plugin_sdk::HostAccounts(accounts.clone())));
        // Filled once the WebAssembly runtime runs, which starts after the built-in plugins.
        let plugin_admin = Arc::new(thub_plugin_sdk::PluginAdminSlot::default());
        context.provide(plugin_admin.clone());
        let (plugin_apis, assembly) = plugins::assemble(&context, &config.plugins).await?;

        let wasm = match config.wasm.enabled {
            true => Some(
                WasmHost::start(
                    config.wasm.clone(),
                    config.wasm_dir()?,
                    config.data_dir()?.join(&config.wasm.cache_dir),
                    db.clone(),
                    events.clone(),
                    clock.clone(),
                    wasm::HostDirectory {
                        accounts: Some(accounts.clone() as Arc<dyn thub_plugin_sdk::AccountDirectory>),
                        registry: context.service::<thub_registry::RegistryService>().ok(),
                    },
                )
                .await?,
            ),
            false => None,
        };
        if let Some(host) = &wasm {
            plugin_admin.set(host.clone());
        }
        let (auth_api, users_api, idp_api) = accounts::api::apis(accounts.clone());
        let apis: AllApis = (
            MetaApi::new(db.clone(), shared.clone()),
            auth_api,
            users_api,
            idp_api,
            wasm::api::PluginsApi::new(wasm.clone()),
            plugin_apis,
        );
        let service = OpenApiService::new(apis, "thub", env!("CARGO_PKG_VERSION"))
            .description("Registry, identity provider and PyScript hub. SyftHub-compatible under /api/v1.");
        let spec = pruned_spec(&service, &assembly.disabled, config.auth.min_password_length)?;
        let docs_html = service.swagger_ui_html().replace(&service.spec(), &spec);

        let mut route = Route::new();
        let api_endpoint = Arc::new(service.into_endpoint().boxed());
        let spec_document: serde_json::Value = serde_json::from_str(&spec)?;
        for ApiPath { route: path, documented, methods } in api_paths::<AllApis>() {
            let schemas = openapi::BodySchemas::of(&spec_document, &documented);
            let endpoint = openapi::strict_strings(SharedEndpoint(api_endpoint.clone()), schemas);
            let endpoint = http::limit_body(endpoint, config.server.max_body_bytes);
            route = route.at(path, crate::metrics::templated(http::allow_methods(endpoint, methods)));
        }
        let spec_wasm = wasm.clone();
        let login_look = accounts::pages::LoginLookSlot(
            context.try_service::<thub_plugin_sdk::LoginLook>().map(|look| (*look).clone()),
        );
        route = route
            .at(
                "/openapi.json",
                make_sync(move |_| {
                    let mut document = spec_document.clone();
                    // WebAssembly plugins come and go at runtime: their routes join the
                    // document when it is served.
                    if let Some(host) = &spec_wasm
                        && let Some(paths) = document.get_mut("paths").and_then(serde_json::Value::as_object_mut)
                    {
                        paths.extend(host.openapi_paths());
                    }
                    Response::builder().content_type("application/json").body(document.to_string())
                }),
            )
            .at("/docs", make_sync(move |_| Html(docs_html.clone())))
            .at(
                "/login",
                http::allow_methods(
                    get(accounts::pages::login_page).post(accounts::pages::login_submit).data(login_look),
                    vec![Method::GET, Method::POST],
                ),
            )
            .at(
                "/logout",
                http::allow_methods(
                    get(accounts::pages::logout).post(accounts::pages::logout),
                    vec![Method::GET, Method::POST],
                ),
            );
        if let Some(host) = &wasm {
            let plugin_routes = Arc::new(wasm::api::PluginRoutes { host: host.clone() }.boxed());
            route = route
                .at("/plugins/:id", crate::metrics::templated(SharedEndpoint(plugin_routes.clone())))
                .at("/plugins/:id/*path", crate::metrics::templated(SharedEndpoint(plugin_routes)));
        }
        for (path, endpoint) in assembly.routes {
            route = route.at(path, crate::metrics::templated(endpoint));
        }
        if config.metrics.enabled {
            let handle = crate::metrics::install();
            let token = config.metrics.token.expose().to_owned();
            route = route.at("/metrics", crate::metrics::MetricsEndpoint::new(handle, token, db.clone()));
        }
        let fallbacks = Arc::new(assembly.fallbacks);
        let route = route
            .at("/", crate::metrics::templated(FallbackChain { fallbacks: fallbacks.clone() }))
            .at("/*path", crate::metrics::templated(FallbackChain { fallbacks }));

        let policy = OriginPolicy { allowed: config.server.cors_origins.clone() };
        let route = wasm::middleware(route, wasm.clone());
        let app = http::trim_api_trailing_slash(route)
            .with(poem::middleware::CookieJarManager::new())
            .data(accounts.clone() as Arc<dyn thub_plugin_sdk::Authenticator>)
            .data(accounts.clone());
        let app = http::apply_origin_policy(app, policy);
        let app = http::isolate_cross_origin(app);
        let app = app.with_if(config.server.compression, poem::middleware::Compression::new());
        let edge = http::Edge {
            proxies: crate::client::TrustedProxies::parse(&config.server.trusted_proxies)?,
            metrics: config.metrics.enabled,
            access_log_every: config.log.access_log_every(),
        };
        let endpoint = http::observe(app, edge).boxed();

        Ok(Self {
            config,
            db,
            events,
            clock,
            accounts,
            shared,
            wasm,
            plugins: assembly.enabled,
            endpoint: Arc::new(endpoint),
            spec,
        })
    }

    /// The HTTP endpoint (cheap to clone; share it between servers and test clients).
    pub fn endpoint(&self) -> impl Endpoint<Output = Response> + 'static {
        SharedEndpoint(self.endpoint.clone())
    }

    /// The served OpenAPI document (JSON).
    pub fn openapi_json(&self) -> &str {
        &self.spec
    }
}

struct SharedEndpoint(Arc<BoxEndpoint<'static, Response>>);

impl Endpoint for SharedEndpoint {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        self.0.call(request).await
    }
}

/// Installs the process-wide crypto providers (ring for rustls and for jsonwebtoken). Every
/// entry point that builds a hub calls this; it is idempotent.
pub fn install_crypto_providers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another part of the process installed one first; ring is the only one we link.
        let _ = rustls::crypto::ring::default_provider().install_default();
        crate::accounts::jwt::install_provider();
    });
}

fn pruned_spec<T: OpenApi>(
    service: &OpenApiService<T, ()>,
    disabled: &[&str],
    min_password_length: usize,
) -> anyhow::Result<String> {
    let mut document: serde_json::Value =
        serde_json::from_str(&service.spec()).context("the generated OpenAPI document is not JSON")?;
    plugins::prune_spec(&mut document, disabled);
    openapi::tell_the_truth(&mut document);
    openapi::declare_password_length(&mut document, min_password_length);
    serde_json::to_string_pretty(&document).context("cannot render the OpenAPI document")
}

/// An OpenAPI path as the router needs it.
struct ApiPath {
    /// In poem's route syntax, `/users/:id`.
    route: String,
    /// As the document spells it, `/users/{id}`.
    documented: String,
    /// The methods it answers.
    methods: Vec<Method>,
}

/// Every OpenAPI path of `T` with the methods it answers (one path may come from several APIs).
fn api_paths<T: OpenApi>() -> Vec<ApiPath> {
    let mut paths: std::collections::BTreeMap<String, Vec<Method>> = std::collections::BTreeMap::new();
    for path in T::meta().into_iter().flat_map(|api| api.paths.into_iter()) {
        paths.entry(path.path).or_default().extend(path.operations.into_iter().map(|operation| operation.method));
    }
    paths
        .into_iter()
        .map(|(documented, methods)| {
            let route = documented
                .split('/')
                .map(|segment| match segment.strip_prefix('{').and_then(|rest| rest.strip_suffix('}')) {
                    Some(name) => format!(":{name}"),
                    None => segment.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("/");
            ApiPath { route, documented, methods }
        })
        .collect()
}

/// Paths no route matched go to the first plugin fallback that claims them (owner pages, then
/// static files); `/` with no claimant answers the welcome document, anything else 404.
struct FallbackChain {
    fallbacks: Arc<Vec<Arc<dyn Fallback>>>,
}

impl Endpoint for FallbackChain {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        for fallback in self.fallbacks.iter() {
            if fallback.claims(&request).await {
                return fallback.handle(request).await;
            }
        }
        if request.uri().path() == "/" && request.method() == poem::http::Method::GET {
            let welcome = serde_json::json!({
                "message": "Welcome to thub",
                "version": env!("CARGO_PKG_VERSION"),
                "docs": "/docs",
            });
            return Ok(Response::builder().content_type("application/json").body(welcome.to_string()));
        }
        Err(ApiError::not_found("route.not_found", "Not Found").into())
    }
}
