//! The web UI: server-rendered pages people use in a browser, on the same binary as the API.
//!
//! - Pages: `/login` (the host's form and rules in the site's look, a [`LoginLook`]), `/` (home, when the hub folder has no `index.html`), `/explore`, `/search`,
//!   `/{owner}` and `/{owner}/{slug}` for browsers (`Accept: text/html`; API clients keep the
//!   registry's JSON), `POST /{owner}/{slug}/star`, `/register`, `/settings/profile`,
//!   `/settings/password`, `/settings/tokens`, `/settings/sessions`, `/new`,
//!   `/{owner}/{slug}/edit` (and `/delete`), `/orgs/new`, `/orgs/{slug}/settings`,
//!   `/admin/plugins`, and a 404 page for
//!   owner-shaped paths that are neither an owner nor a file. Assets under `/_thub/web/`.
//! - Templates: askama, in `templates/`, checked at compile time; escaping is on for every
//!   value, and only the registry's sanitised README HTML is marked safe.
//! - Every page carries a strict Content-Security-Policy (no inline script or handlers); every
//!   form a CSRF token (double submit: the `thub_web_csrf` cookie and a hidden field), and
//!   follows Post/Redirect/Get. The session is the hub's `session` cookie.
//! - Config: `[plugins.web]` `page_size`. Tables: none. Events: none (the services it calls emit
//!   theirs).
//! - Needs: the registry, stars and organizations services, the host's [`HostAccounts`] and
//!   (for `/admin/plugins`) its [`PluginAdminSlot`].

mod account;
mod admin;
mod assets;
mod config;
mod discover;
mod forms;
mod frame;
mod orgs;
mod owners;
mod publish;
mod views;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use poem::endpoint::BoxEndpoint;
use poem::{Endpoint, EndpointExt, Request, Response};
use thub_organizations::OrganizationService;
use thub_plugin_sdk::{
    AccountDirectory, AccountService, HostAccounts, LoginLook, Mount, Plugin, PluginAdminSlot, PluginContext,
    PluginError,
};
use thub_registry::RegistryService;
use thub_stars::StarsService;

pub use config::WebConfig;

/// The web plugin.
pub struct WebPlugin;

/// What every page handler is given.
pub(crate) struct Web {
    pub(crate) registry: Arc<RegistryService>,
    pub(crate) stars: Arc<StarsService>,
    pub(crate) organizations: Arc<OrganizationService>,
    pub(crate) accounts: Option<Arc<dyn AccountService>>,
    pub(crate) directory: Arc<dyn AccountDirectory>,
    pub(crate) plugin_admin: Option<Arc<PluginAdminSlot>>,
    pub(crate) assets: assets::Assets,
    pub(crate) config: WebConfig,
    /// The hub folder: when it has an `index.html` (a PyScript project), `/` is the project's.
    pub(crate) root: std::path::PathBuf,
}

type PageFuture = Pin<Box<dyn Future<Output = Response> + Send>>;
type Handler = fn(Arc<Web>, Request) -> PageFuture;

/// A page handler as a poem endpoint.
struct Page {
    web: Arc<Web>,
    handler: Handler,
}

impl Endpoint for Page {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        Ok((self.handler)(self.web.clone(), request).await)
    }
}

fn page(web: &Arc<Web>, handler: Handler) -> BoxEndpoint<'static> {
    Page { web: web.clone(), handler }.boxed()
}

impl Plugin for WebPlugin {
    const ID: &'static str = "web";
    type Config = WebConfig;
    type Api = ();

    async fn build(context: &PluginContext, config: WebConfig) -> Result<Mount<()>, PluginError> {
        if config.page_size == 0 || config.page_size > 100 {
            return Err(PluginError::Config("plugins.web.page_size must be between 1 and 100".to_owned()));
        }
        let web = Arc::new(Web {
            registry: context.service::<RegistryService>()?,
            stars: context.service::<StarsService>()?,
            organizations: context.service::<OrganizationService>()?,
            accounts: context.try_service::<HostAccounts>().map(|host| host.0.clone()),
            directory: context.accounts.clone(),
            plugin_admin: context.try_service::<PluginAdminSlot>(),
            assets: assets::Assets::new(),
            config,
            root: context.root.clone(),
        });
        tracing::debug!(bytes = web.assets.total_bytes(), "web assets ready");
        context.provide(Arc::new(LoginLook(Arc::new(account::SignInPage(web.clone())))));
        let assets_web = web.clone();
        let assets = poem::endpoint::make_sync(move |request: Request| assets_web.assets.serve(&request));
        let routes: Vec<(String, BoxEndpoint<'static>)> = vec![
            (format!("{}:name", assets::PREFIX), assets.boxed()),
            ("/explore".to_owned(), page(&web, |web, request| Box::pin(discover::explore(web, request)))),
            ("/search".to_owned(), page(&web, |web, request| Box::pin(discover::search(web, request)))),
            ("/new".to_owned(), page(&web, |web, request| Box::pin(publish::new_endpoint(web, request)))),
            ("/orgs/new".to_owned(), page(&web, |web, request| Box::pin(orgs::new_organization(web, request)))),
            ("/orgs/:slug/settings".to_owned(), page(&web, |web, request| Box::pin(orgs::settings(web, request)))),
            ("/admin/plugins".to_owned(), page(&web, |web, request| Box::pin(admin::plugins(web, request)))),
            ("/register".to_owned(), page(&web, |web, request| Box::pin(account::register(web, request)))),
            ("/settings/profile".to_owned(), page(&web, |web, request| Box::pin(account::profile(web, request)))),
            ("/settings/password".to_owned(), page(&web, |web, request| Box::pin(account::password(web, request)))),
            ("/settings/tokens".to_owned(), page(&web, |web, request| Box::pin(account::tokens(web, request)))),
            (
                "/settings/tokens/:id/revoke".to_owned(),
                page(&web, |web, request| Box::pin(account::revoke_token(web, request))),
            ),
            ("/settings/sessions".to_owned(), page(&web, |web, request| Box::pin(account::sessions(web, request)))),
        ];
        Ok(Mount { api: (), routes, fallback: Some(Arc::new(owners::OwnerPages::new(web))) })
    }
}
