//! Who is calling: the principal, the extractors handlers use, and the account lookups plugins
//! may make. The host implements [`Authenticator`] and [`AccountDirectory`]; plugins only see
//! these traits.

use std::sync::Arc;

use async_trait::async_trait;
use poem::Request;
use poem_openapi::registry::{MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use serde::{Deserialize, Serialize};

use crate::ApiError;

/// A site-wide role. Stored as a lowercase string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, poem_openapi::Enum)]
#[serde(rename_all = "lowercase")]
#[oai(rename_all = "lowercase")]
pub enum Role {
    /// Site administrator: bypasses ownership checks.
    Admin,
    /// A regular account.
    User,
    /// A restricted account.
    Guest,
}

impl Role {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::Guest => "guest",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "admin" => Some(Role::Admin),
            "user" => Some(Role::User),
            "guest" => Some(Role::Guest),
            _ => None,
        }
    }
}

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// A hub session (access token or `session` cookie) of the given session id.
    Session {
        /// The session (refresh-token family) id.
        session_id: String,
    },
    /// A personal API token (`syft_pat_…`) of the given id.
    ApiToken {
        /// The API token's database id.
        token_id: i64,
    },
}

/// The authenticated caller, as read from storage on this request (never from token claims).
#[derive(Debug, Clone)]
pub struct Principal {
    /// User id.
    pub user_id: i64,
    /// Lowercase username.
    pub username: String,
    /// Lowercase email.
    pub email: String,
    /// Site role.
    pub role: Role,
    /// Whether the account is active.
    pub is_active: bool,
    /// How the caller authenticated.
    pub method: AuthMethod,
}

impl Principal {
    /// Whether the caller is a site administrator.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Resolves the caller of a request. Implemented by the host.
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// `Ok(None)` when the request carries no credentials; `Err` (401) when it carries bad ones.
    /// Inactive users are returned; the extractors decide what that means.
    async fn authenticate(&self, request: &Request) -> Result<Option<Principal>, ApiError>;
}

/// A user as other plugins may see one.
#[derive(Debug, Clone, Serialize)]
pub struct UserSummary {
    /// User id.
    pub id: i64,
    /// Lowercase username.
    pub username: String,
    /// Display name.
    pub full_name: String,
    /// Site role.
    pub role: Role,
    /// Whether the account is active.
    pub is_active: bool,
}

/// Read-only account lookups for plugins. Implemented by the host.
#[async_trait]
pub trait AccountDirectory: Send + Sync + 'static {
    /// The user with this id, if it exists.
    async fn user_by_id(&self, id: i64) -> Result<Option<UserSummary>, sea_orm::DbErr>;
    /// The user with this username (case-insensitive), if it exists.
    async fn user_by_username(&self, username: &str) -> Result<Option<UserSummary>, sea_orm::DbErr>;
    /// The users with these ids that exist, in any order.
    async fn users_by_ids(&self, ids: &[i64]) -> Result<Vec<UserSummary>, sea_orm::DbErr>;
    /// How many users were added or changed (renamed, deactivated, deleted, new role) since
    /// start, on this instance or announced by another: a plugin that caches what users look
    /// like compares it to know its copy is stale. Never goes down.
    fn user_changes(&self) -> u64 {
        0
    }
}

/// The caller of `request` as the host's [`Authenticator`] sees it: `Ok(None)` without
/// credentials, 401 for bad ones, 503 when storage cannot answer. Inactive accounts are returned.
/// The extractors and the raw-route helpers below all go through here; a route without the
/// host's authenticator is a host bug (500), never an anonymous caller.
pub async fn authenticate(request: &Request) -> Result<Option<Principal>, ApiError> {
    if let Some(Authenticated(principal)) = request.data::<Authenticated>() {
        return Ok(principal.clone());
    }
    let authenticator = request
        .data::<Arc<dyn Authenticator>>()
        .ok_or_else(|| ApiError::internal("no authenticator installed on the route"))?;
    authenticator.authenticate(request).await
}

/// The caller a step before the handler already found for this request ([`require_user_once`]),
/// so the handler's extractor does not ask the authenticator a second time.
#[derive(Clone)]
struct Authenticated(Option<Principal>);

/// [`require_user`] for a step in front of the handler (a middleware that must refuse early):
/// the principal is kept in the request, and the handler's extractor reuses it.
pub async fn require_user_once(request: &mut Request) -> Result<Principal, ApiError> {
    let principal = require_user(request).await?;
    request.set_data(Authenticated(Some(principal.clone())));
    Ok(principal)
}

/// An authenticated, active caller, for routes that need one (the rule of [`CurrentUser`]):
/// missing or bad credentials answer 401 `Could not validate credentials`, an inactive account
/// 400 `Inactive user`, a storage failure 503.
pub async fn require_user(request: &Request) -> Result<Principal, ApiError> {
    let principal = authenticate(request).await?.ok_or_else(ApiError::invalid_credentials)?;
    if !principal.is_active {
        return Err(ApiError::bad_request("auth.inactive_user", "Inactive user"));
    }
    Ok(principal)
}

/// The active caller, or `None` when the request is anonymous for this purpose: no
/// credentials, bad, expired or revoked ones (optional-auth routes of the reference ignore
/// them), or an inactive account (the rule of [`MaybeUser`]). A storage failure is an error
/// (503), never "anonymous".
pub async fn optional_user(request: &Request) -> Result<Option<Principal>, ApiError> {
    match authenticate(request).await {
        Ok(principal) => Ok(principal.filter(|principal| principal.is_active)),
        Err(error) if error.status() == poem::http::StatusCode::UNAUTHORIZED => Ok(None),
        Err(error) => Err(error),
    }
}

/// The name of the security scheme in the OpenAPI document.
const SCHEME: &str = "bearer";

fn register_scheme(registry: &mut Registry) {
    registry.create_security_scheme(
        SCHEME,
        MetaSecurityScheme {
            ty: "http",
            description: Some("A hub access token, a `syft_pat_…` API token, or the `session` cookie."),
            name: None,
            key_in: None,
            scheme: Some("bearer"),
            bearer_format: Some("JWT"),
            flows: None,
            openid_connect_url: None,
        },
    );
}

/// An authenticated, active caller. Missing or bad credentials answer 401
/// `Could not validate credentials`; an inactive account answers 400 `Inactive user`.
///
/// Put it first among a handler's parameters so authentication is checked before the body.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Principal);

impl<'a> ApiExtractor<'a> for CurrentUser {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        register_scheme(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SCHEME]
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut poem::RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(Self(require_user(request).await?))
    }
}

/// An authenticated, active administrator; other callers get 403 `Operation not permitted`.
#[derive(Debug, Clone)]
pub struct AdminUser(pub Principal);

impl<'a> ApiExtractor<'a> for AdminUser {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        register_scheme(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SCHEME]
    }

    async fn from_request(
        request: &'a Request,
        body: &mut poem::RequestBody,
        param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let CurrentUser(principal) = CurrentUser::from_request(request, body, param_opts).await?;
        if !principal.is_admin() {
            return Err(ApiError::forbidden("auth.not_admin", "Operation not permitted").into());
        }
        Ok(Self(principal))
    }
}

/// The active caller if the request carries valid credentials, anonymous otherwise: see
/// [`optional_user`].
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<Principal>);

impl<'a> ApiExtractor<'a> for MaybeUser {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        register_scheme(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SCHEME]
    }

    fn has_security_fallback() -> bool {
        true
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut poem::RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(Self(optional_user(request).await?))
    }
}

/// What plugins add to account life-cycle decisions. Registered with
/// [`crate::PluginContext::add_account_hooks`]; the host calls every registered hook.
#[async_trait]
pub trait AccountHooks: Send + Sync + 'static {
    /// Whether `name` (lowercase) is taken by something other than a user, such as an
    /// organization slug: usernames and organization slugs share the `/{owner}` namespace.
    async fn name_taken(&self, _name: &str) -> Result<bool, HookError> {
        Ok(false)
    }

    /// Runs inside the transaction that deletes user `user_id`, before the row goes: fix up
    /// what a cascade cannot (counters), or refuse (e.g. the last owner of an organization).
    async fn before_user_delete(
        &self,
        _transaction: &sea_orm::DatabaseTransaction,
        _user_id: i64,
    ) -> Result<(), HookError> {
        Ok(())
    }
}

/// Why an account hook said no, or could not answer.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The change is refused for a reason the user can act on; the host answers 400 with this
    /// stable code (`<plugin>.<snake_case>`) and message.
    #[error("{detail}")]
    Refused {
        /// Stable machine code.
        code: &'static str,
        /// What the user can do about it.
        detail: String,
    },
    /// Storage failed.
    #[error("database error")]
    Database(#[from] sea_orm::DbErr),
}

/// The registered [`AccountHooks`], shared by the host and the plugin context.
#[derive(Clone, Default)]
pub struct AccountHookList(Arc<std::sync::RwLock<Vec<Arc<dyn AccountHooks>>>>);

impl AccountHookList {
    /// Adds a hook.
    pub fn add(&self, hook: Arc<dyn AccountHooks>) {
        self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()).push(hook);
    }

    /// The hooks registered so far.
    pub fn all(&self) -> Vec<Arc<dyn AccountHooks>> {
        self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}
