//! Account self-service for plugins that render account pages (the web plugin): registration,
//! profile and password changes, API tokens and sessions. The host implements
//! [`AccountService`] and provides it as a [`HostAccounts`] service; plugins only see the trait.
//!
//! Failures are [`ApiError`]s with the same codes and 422 field lists the `/api/v1` routes
//! answer, so a page can show each message next to its field (`loc` = `["body", field]`).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{ApiError, Principal};

/// The host's account self-service, as a plugin service: `context.service::<HostAccounts>()`.
#[derive(Clone)]
pub struct HostAccounts(pub Arc<dyn AccountService>);

/// A new account, as a person types it in a sign-up form.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    /// Username.
    pub username: String,
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
    /// Display name.
    pub full_name: String,
}

/// A signed-in browser session: what goes into the `session` cookie.
#[derive(Debug, Clone)]
pub struct SessionCookie {
    /// The cookie's value.
    pub value: String,
    /// Its lifetime in seconds (the access-token lifetime).
    pub max_age_seconds: i64,
}

/// A user's profile, as they may edit it.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// Lowercase username.
    pub username: String,
    /// Lowercase email.
    pub email: String,
    /// Display name.
    pub full_name: String,
    /// Avatar URL, empty when none.
    pub avatar_url: String,
}

/// A personal API token as its owner sees it in a list (never the secret).
#[derive(Debug, Clone)]
pub struct ApiTokenSummary {
    /// Id.
    pub id: i64,
    /// Label.
    pub name: String,
    /// The first characters of the token, to recognise it.
    pub prefix: String,
    /// Whether it still works.
    pub is_active: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Expiry, if any.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last use, if any.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A login session as its owner sees it.
#[derive(Debug, Clone)]
pub struct SessionSummary {
    /// Session id.
    pub id: String,
    /// Login time.
    pub created_at: DateTime<Utc>,
    /// Last refresh.
    pub refreshed_at: DateTime<Utc>,
    /// When it ends unless refreshed.
    pub expires_at: DateTime<Utc>,
    /// Whether this is the session of the request that asked.
    pub current: bool,
}

/// Account self-service. Every method acts for `principal` only.
#[async_trait]
pub trait AccountService: Send + Sync + 'static {
    /// Creates an account and signs it in. `client` is the caller's address (rate limits).
    async fn register(&self, registration: Registration, client: &str) -> Result<SessionCookie, ApiError>;
    /// Ends the caller's session (sign out).
    async fn logout(&self, principal: &Principal) -> Result<(), ApiError>;
    /// The caller's profile.
    async fn profile(&self, principal: &Principal) -> Result<Profile, ApiError>;
    /// Changes email and display name.
    async fn update_profile(&self, principal: &Principal, email: &str, full_name: &str) -> Result<Profile, ApiError>;
    /// Changes the password; the caller's other sessions end.
    async fn change_password(&self, principal: &Principal, current: &str, new: &str) -> Result<(), ApiError>;
    /// The caller's API tokens, active ones and revoked ones, newest first.
    async fn api_tokens(&self, principal: &Principal) -> Result<Vec<ApiTokenSummary>, ApiError>;
    /// Creates an API token; returns it with its secret, which is shown once.
    async fn create_api_token(&self, principal: &Principal, name: &str) -> Result<(ApiTokenSummary, String), ApiError>;
    /// Revokes one of the caller's API tokens.
    async fn revoke_api_token(&self, principal: &Principal, id: i64) -> Result<(), ApiError>;
    /// The caller's live sessions, newest first.
    async fn sessions(&self, principal: &Principal) -> Result<Vec<SessionSummary>, ApiError>;
    /// Ends one of the caller's sessions.
    async fn revoke_session(&self, principal: &Principal, session_id: &str) -> Result<(), ApiError>;
    /// Ends every session of the caller except the current one.
    async fn revoke_other_sessions(&self, principal: &Principal) -> Result<(), ApiError>;
    /// Whether the request reached the hub over HTTPS (the `Secure` cookie flag).
    fn is_https(&self, request: &poem::Request) -> bool;
    /// The caller's address as the hub sees it (behind trusted proxies, the forwarded one).
    fn client_address(&self, request: &poem::Request) -> String;
    /// The URL users reach the hub at, from config or from the request.
    fn public_base(&self, request: &poem::Request) -> String;
}

/// The host's `/login` form as the host fills it. The host keeps the rules (where a post may
/// come from, the CSRF token and its cookie, the `session` cookie, `next`); a plugin that
/// provides a [`LoginLook`] only draws the page.
#[derive(Debug, Clone)]
pub struct LoginForm {
    /// Where to go after signing in (a same-origin path, already checked).
    pub next: String,
    /// The token the form repeats in a hidden `csrf` field.
    pub csrf: String,
    /// Why the last attempt failed, if it did.
    pub error: Option<String>,
}

/// Draws the host's `/login` page (the form posts `username`, `password`, `next` and `csrf` to
/// `POST /login`).
#[async_trait]
pub trait LoginPage: Send + Sync + 'static {
    /// The page, as a complete HTML response; the host sets its status and cookies.
    async fn render(&self, request: &poem::Request, form: &LoginForm) -> poem::Response;
}

/// The login page's look, as a plugin service: the web plugin provides one so `/login` wears
/// the site's header and footer; without one the host draws a plain page.
#[derive(Clone)]
pub struct LoginLook(pub Arc<dyn LoginPage>);
