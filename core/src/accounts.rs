//! Accounts: who a user is, how they prove it, and what the hub tells others about them.
//!
//! Users (argon2id passwords), hub sessions (HS256 access + rotating refresh tokens, one row per
//! login in `sessions`), personal API tokens (`syft_pat_…`, stored hashed), login rate limits,
//! and the identity provider (`idp`). Revocation marks go to Redis when configured and always to
//! the database; the request path asks Redis when it has it, the database otherwise.

pub mod api;
pub mod api_tokens;
pub mod entity;
pub mod error;
pub mod idp;
pub(crate) mod jwt;
pub mod pages;
pub mod password;
pub mod self_service;
pub mod tokens;
pub mod validation;

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use poem::Request;
use poem::http::header;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, SqlErr, TransactionTrait,
};
use serde_json::json;
use thub_plugin_sdk::{
    AccountDirectory, AccountHookList, ApiError, AuthMethod, Authenticator, Clock, EventBus, Principal, Role,
    UserSummary,
};

use crate::config::{AuthConfig, Config};
use crate::shared::{Limit, Shared};
use entity::{session, setting, user};
pub use error::AccountsError;
use idp::Idp;
use password::{Passwords, Verdict};
use tokens::{TokenCodec, TokenKind, TokenPair};

/// The name of the browser session cookie (Tufts Hub's).
pub const SESSION_COOKIE: &str = "session";

const SESSION_SECRET_KEY: &str = "auth.session_secret";

/// A new account.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Username as typed.
    pub username: String,
    /// Email as typed; `None` (CLI, imports) stores `<username>@users.invalid`, which never
    /// receives mail.
    pub email: Option<String>,
    /// Display name.
    pub full_name: String,
    /// Password.
    pub password: String,
    /// Site role.
    pub role: Role,
}

/// Changes to an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    /// New username.
    pub username: Option<String>,
    /// New email.
    pub email: Option<String>,
    /// New display name.
    pub full_name: Option<String>,
    /// New avatar URL (empty clears it).
    pub avatar_url: Option<String>,
    /// Activate or deactivate (administrators only).
    pub is_active: Option<bool>,
    /// New role (administrators only).
    pub role: Option<Role>,
}

/// The accounts service.
pub struct Accounts {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    config: AuthConfig,
    passwords: Passwords,
    tokens: TokenCodec,
    shared: Arc<Shared>,
    events: EventBus,
    hooks: AccountHookList,
    public_url: String,
    /// The identity provider.
    pub idp: Idp,
}

impl Accounts {
    /// Opens accounts: loads (or creates) the session secret and the IdP keys.
    pub async fn open(
        db: DatabaseConnection,
        clock: Arc<dyn Clock>,
        config: &Config,
        shared: Arc<Shared>,
        events: EventBus,
        hooks: AccountHookList,
    ) -> anyhow::Result<Self> {
        let secret = match config.auth.secret.expose() {
            "" => stored_session_secret(&db, clock.now()).await?,
            secret => {
                anyhow::ensure!(secret.len() >= 32, "auth.secret must be at least 32 characters");
                secret.as_bytes().to_vec()
            }
        };
        let tokens = TokenCodec::new(
            &secret,
            Duration::minutes(config.auth.access_token_minutes),
            Duration::days(config.auth.refresh_token_days),
        );
        let idp = Idp::open(db.clone(), clock.clone(), &config.idp, &config.server.public_url).await?;
        Ok(Self {
            db,
            clock,
            config: config.auth.clone(),
            passwords: Passwords::new(),
            tokens,
            shared,
            events,
            hooks,
            public_url: config.server.public_url.clone(),
            idp,
        })
    }

    /// The access-token (and session cookie) lifetime.
    pub fn access_ttl(&self) -> Duration {
        self.tokens.access_ttl()
    }

    /// The clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    // ----- registration and login -----

    /// Registers an account and opens a session for it.
    pub async fn register(&self, new: NewUser, client: &str) -> Result<(user::Model, TokenPair), AccountsError> {
        if !self.config.open_registration {
            return Err(AccountsError::RegistrationClosed);
        }
        self.limit_address("register", client).await?;
        let user = self.create_user(new).await?;
        let pair = self.open_session(&user).await?;
        Ok((user, pair))
    }

    /// Creates an account (registration, `thub adduser`, imports).
    pub async fn create_user(&self, new: NewUser) -> Result<user::Model, AccountsError> {
        let mut errors = Vec::new();
        let username = validation::username(&new.username, &["body", "username"]).map_err(|e| errors.push(e)).ok();
        let email = match &new.email {
            Some(email) => validation::email(email, &["body", "email"]).map_err(|e| errors.push(e)).ok(),
            None => username.as_ref().map(|username| format!("{username}@users.invalid")),
        };
        let full_name = validation::full_name(&new.full_name, &["body", "full_name"]).map_err(|e| errors.push(e)).ok();
        let _ = validation::new_password(&new.password, self.config.min_password_length, &["body", "password"])
            .map_err(|e| errors.push(e));
        let (Some(username), Some(email), Some(full_name)) = (username, email, full_name) else {
            return Err(AccountsError::Validation(errors));
        };
        if !errors.is_empty() {
            return Err(AccountsError::Validation(errors));
        }
        self.ensure_unique(&username, &email, None).await?;
        let password_hash = self.passwords.hash(new.password).await?;
        self.insert_user(username, email, full_name, password_hash, new.role).await
    }

    /// Inserts an account whose password is already hashed (imports keep their hashes).
    pub async fn insert_user(
        &self,
        username: String,
        email: String,
        full_name: String,
        password_hash: String,
        role: Role,
    ) -> Result<user::Model, AccountsError> {
        let now = self.clock.now();
        let inserted = user::ActiveModel {
            username: Set(username),
            email: Set(email),
            full_name: Set(full_name),
            avatar_url: Set(None),
            role: Set(role.as_str().to_owned()),
            password_hash: Set(password_hash),
            is_active: Set(true),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&self.db)
        .await
        .map_err(unique_violation)?;
        self.events.emit("user.registered", json!({"user_id": inserted.id, "username": inserted.username}));
        tracing::info!(user_id = inserted.id, username = %inserted.username, "user registered");
        Ok(inserted)
    }

    /// Logs in with a username or email and a password; opens a session.
    pub async fn login(&self, identifier: &str, password: &str, client: &str) -> Result<TokenPair, AccountsError> {
        let user = self.check_password(identifier, password, client).await?;
        self.open_session(&user).await
    }

    /// Checks a password login (rate limits, timing-safe unknown users, hash upgrades) and
    /// returns the user. Failures are logged without the password.
    pub async fn check_password(
        &self,
        identifier: &str,
        password: &str,
        client: &str,
    ) -> Result<user::Model, AccountsError> {
        let identifier = identifier.trim().to_lowercase();
        self.limit_address("login", client).await?;
        let account_key = format!("login-failures:{identifier}");
        let window = self.window();
        let now = self.clock.now().timestamp() as u64;
        if let Limit::Exceeded { retry_after } =
            self.shared.peek(&account_key, self.config.login_attempts_per_account, window, now).await?
        {
            tracing::warn!(username = %identifier, client, reason = "account_rate_limited", "login refused");
            return Err(AccountsError::RateLimited { retry_after });
        }
        let column = if identifier.contains('@') { user::Column::Email } else { user::Column::Username };
        let found = user::Entity::find().filter(column.eq(identifier.as_str())).one(&self.db).await?;
        let Some(found) = found else {
            self.passwords.verify_dummy(password.to_owned()).await;
            self.shared.hit(&account_key, u32::MAX, window, now).await?;
            tracing::warn!(username = %identifier, client, reason = "unknown_user", "login failed");
            return Err(AccountsError::InvalidLogin);
        };
        let verdict = self.passwords.verify(password.to_owned(), found.password_hash.clone()).await?;
        if verdict == Verdict::Mismatch {
            self.shared.hit(&account_key, u32::MAX, window, now).await?;
            tracing::warn!(username = %identifier, client, reason = "wrong_password", "login failed");
            return Err(AccountsError::InvalidLogin);
        }
        if !found.is_active {
            tracing::warn!(username = %identifier, client, reason = "deactivated", "login failed");
            return Err(AccountsError::AccountDeactivated);
        }
        self.shared.reset(&account_key, window, now).await?;
        if verdict == Verdict::MatchNeedsUpgrade {
            let hash = self.passwords.hash(password.to_owned()).await?;
            let mut upgraded: user::ActiveModel = found.clone().into();
            upgraded.password_hash = Set(hash);
            upgraded.update(&self.db).await?;
            tracing::info!(user_id = found.id, "password hash upgraded");
        }
        tracing::info!(user_id = found.id, username = %found.username, client, "login succeeded");
        Ok(found)
    }

    /// Opens a session for `user` and issues its first token pair.
    pub async fn open_session(&self, user: &user::Model) -> Result<TokenPair, AccountsError> {
        let now = self.clock.now();
        let sid = uuid::Uuid::new_v4().to_string();
        let pair = self.tokens.issue(user.id, &user.username, &user.role, &sid, now)?;
        session::ActiveModel {
            id: Set(sid),
            user_id: Set(user.id),
            refresh_jti: Set(pair.refresh_jti.clone()),
            created_at: Set(now),
            refreshed_at: Set(now),
            expires_at: Set(pair.refresh_expires_at),
            revoked_at: Set(None),
            revoked_reason: Set(None),
        }
        .insert(&self.db)
        .await?;
        Ok(pair)
    }

    /// Exchanges a refresh token for a new pair. Each refresh token works once: presenting an
    /// older one of the same session revokes the whole session (a stolen token was used).
    pub async fn refresh(&self, refresh_token: &str, client: &str) -> Result<TokenPair, AccountsError> {
        self.limit_address("refresh", client).await?;
        let now = self.clock.now();
        let claims =
            self.tokens.decode(refresh_token, TokenKind::Refresh, now).ok_or(AccountsError::InvalidRefreshToken)?;
        let user_id = claims.user_id().ok_or(AccountsError::InvalidRefreshToken)?;
        let user = user::Entity::find_by_id(user_id).one(&self.db).await?;
        let Some(user) = user.filter(|user| user.is_active) else {
            return Err(AccountsError::RefreshUserGone);
        };
        let pair = self.tokens.issue(user.id, &user.username, &user.role, &claims.sid, now)?;
        let rotated = session::Entity::update_many()
            .col_expr(session::Column::RefreshJti, Expr::value(pair.refresh_jti.clone()))
            .col_expr(session::Column::RefreshedAt, Expr::value(now))
            .col_expr(session::Column::ExpiresAt, Expr::value(pair.refresh_expires_at))
            .filter(session::Column::Id.eq(claims.sid.as_str()))
            .filter(session::Column::UserId.eq(user.id))
            .filter(session::Column::RefreshJti.eq(claims.jti.as_str()))
            .filter(session::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        if rotated.rows_affected == 1 {
            return Ok(pair);
        }
        let session = session::Entity::find_by_id(claims.sid.clone()).one(&self.db).await?;
        if session.is_some_and(|session| session.revoked_at.is_none()) {
            tracing::warn!(user_id = user.id, session_id = %claims.sid, client, "refresh token reused; session revoked");
            self.revoke_session(&claims.sid, "refresh_reuse").await?;
        }
        Err(AccountsError::InvalidRefreshToken)
    }

    /// Ends the caller's session: its access and refresh tokens stop working everywhere.
    pub async fn logout(&self, principal: &Principal) -> Result<(), AccountsError> {
        if let AuthMethod::Session { session_id } = &principal.method {
            self.revoke_session(session_id, "logout").await?;
        }
        Ok(())
    }

    /// Changes the caller's password and revokes their other sessions.
    pub async fn change_password(&self, principal: &Principal, current: &str, new: &str) -> Result<(), AccountsError> {
        validation::new_password(new, self.config.min_password_length, &["body", "new_password"])?;
        let user = self.user(principal.user_id).await?;
        if self.passwords.verify(current.to_owned(), user.password_hash.clone()).await? == Verdict::Mismatch {
            return Err(AccountsError::WrongCurrentPassword);
        }
        self.set_password_hash(user, new).await?;
        let keep = match &principal.method {
            AuthMethod::Session { session_id } => Some(session_id.as_str()),
            AuthMethod::ApiToken { .. } => None,
        };
        self.revoke_user_sessions(principal.user_id, keep, "password_changed").await
    }

    /// Sets a password without knowing the old one (`thub passwd`); revokes every session.
    pub async fn reset_password(&self, username: &str, new: &str) -> Result<(), AccountsError> {
        validation::new_password(new, self.config.min_password_length, &["password"])?;
        let user = self.user_by_name(username).await?.ok_or(AccountsError::UserNotFound)?;
        let user_id = user.id;
        self.set_password_hash(user, new).await?;
        self.revoke_user_sessions(user_id, None, "password_changed").await
    }

    async fn set_password_hash(&self, user: user::Model, new: &str) -> Result<(), AccountsError> {
        let hash = self.passwords.hash(new.to_owned()).await?;
        let mut changed: user::ActiveModel = user.into();
        changed.password_hash = Set(hash);
        changed.updated_at = Set(self.clock.now());
        changed.update(&self.db).await?;
        Ok(())
    }

    // ----- users -----

    /// The user with this id.
    pub async fn user(&self, id: i64) -> Result<user::Model, AccountsError> {
        user::Entity::find_by_id(id).one(&self.db).await?.ok_or(AccountsError::UserNotFound)
    }

    /// The user with this username (case-insensitive).
    pub async fn user_by_name(&self, username: &str) -> Result<Option<user::Model>, AccountsError> {
        Ok(user::Entity::find().filter(user::Column::Username.eq(username.trim().to_lowercase())).one(&self.db).await?)
    }

    /// Users in id order, for administrators.
    pub async fn list_users(&self, skip: u64, limit: u64) -> Result<Vec<user::Model>, AccountsError> {
        Ok(user::Entity::find().order_by_asc(user::Column::Id).offset(skip).limit(limit).all(&self.db).await?)
    }

    /// Whether `username` could be registered now.
    pub async fn username_available(&self, username: &str) -> Result<bool, AccountsError> {
        let Ok(username) = validation::username(username, &["path", "username"]) else { return Ok(false) };
        Ok(self.user_by_name(&username).await?.is_none())
    }

    /// Whether `email` could be registered now.
    pub async fn email_available(&self, email: &str) -> Result<bool, AccountsError> {
        let Ok(email) = validation::email(email, &["path", "email"]) else { return Ok(false) };
        Ok(user::Entity::find().filter(user::Column::Email.eq(email)).count(&self.db).await? == 0)
    }

    /// `actor` reads user `id`: themselves, or anyone if an administrator.
    pub async fn read_user(&self, actor: &Principal, id: i64) -> Result<user::Model, AccountsError> {
        if actor.user_id != id && !actor.is_admin() {
            return Err(AccountsError::Forbidden("Access denied: insufficient permissions"));
        }
        self.user(id).await
    }

    /// `actor` changes user `id`: themselves, or anyone if an administrator. Only
    /// administrators change `is_active` and `role`.
    pub async fn update_user(
        &self,
        actor: &Principal,
        id: i64,
        changes: UserChanges,
    ) -> Result<user::Model, AccountsError> {
        if actor.user_id != id && !actor.is_admin() {
            return Err(AccountsError::Forbidden("Permission denied: can only update your own profile"));
        }
        if (changes.is_active.is_some() || changes.role.is_some()) && !actor.is_admin() {
            return Err(AccountsError::Forbidden("Permission denied: only administrators change role or is_active"));
        }
        let mut errors = Vec::new();
        let username = changes
            .username
            .as_deref()
            .map(|value| validation::username(value, &["body", "username"]))
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        let email = changes
            .email
            .as_deref()
            .map(|value| validation::email(value, &["body", "email"]))
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        let full_name = changes
            .full_name
            .as_deref()
            .map(|value| validation::full_name(value, &["body", "full_name"]))
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        let avatar_url = changes
            .avatar_url
            .as_deref()
            .map(|value| validation::avatar_url(value, &["body", "avatar_url"]))
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        if !errors.is_empty() {
            return Err(AccountsError::Validation(errors));
        }
        let current = self.user(id).await?;
        self.ensure_unique(username.as_deref().unwrap_or(""), email.as_deref().unwrap_or(""), Some(id)).await?;
        let mut changed: user::ActiveModel = current.clone().into();
        let mut any = false;
        if let Some(username) = username.filter(|value| *value != current.username) {
            changed.username = Set(username);
            any = true;
        }
        if let Some(email) = email.filter(|value| *value != current.email) {
            changed.email = Set(email);
            any = true;
        }
        if let Some(full_name) = full_name.filter(|value| *value != current.full_name) {
            changed.full_name = Set(full_name);
            any = true;
        }
        if let Some(avatar_url) = avatar_url {
            let avatar_url = (!avatar_url.is_empty()).then_some(avatar_url);
            if avatar_url != current.avatar_url {
                changed.avatar_url = Set(avatar_url);
                any = true;
            }
        }
        if let Some(role) = changes.role.filter(|role| role.as_str() != current.role) {
            changed.role = Set(role.as_str().to_owned());
            any = true;
        }
        let deactivating = changes.is_active == Some(false) && current.is_active;
        if let Some(is_active) = changes.is_active.filter(|value| *value != current.is_active) {
            if !is_active && actor.user_id == id {
                return Err(AccountsError::CannotDeactivateSelf);
            }
            changed.is_active = Set(is_active);
            any = true;
        }
        if !any {
            return Ok(current);
        }
        changed.updated_at = Set(self.clock.now());
        let updated = changed.update(&self.db).await.map_err(unique_violation)?;
        if deactivating {
            self.revoke_user_sessions(id, None, "deactivated").await?;
        }
        Ok(updated)
    }

    /// An administrator activates or deactivates user `id`; deactivation revokes every session.
    pub async fn set_active(&self, actor: &Principal, id: i64, active: bool) -> Result<user::Model, AccountsError> {
        if !actor.is_admin() {
            return Err(AccountsError::Forbidden("Permission denied: admin role required"));
        }
        if !active && actor.user_id == id {
            return Err(AccountsError::CannotDeactivateSelf);
        }
        self.update_user(actor, id, UserChanges { is_active: Some(active), ..UserChanges::default() }).await
    }

    /// `actor` deletes user `id` (themselves, or anyone if an administrator). Hard delete: the
    /// database cascades sessions, API tokens and plugin rows; ids are never reused.
    pub async fn delete_user(&self, actor: &Principal, id: i64) -> Result<(), AccountsError> {
        if actor.user_id != id && !actor.is_admin() {
            return Err(AccountsError::Forbidden("Access denied: insufficient permissions"));
        }
        let user = self.user(id).await?;
        self.remove_user(user).await
    }

    /// Deletes a user (`thub deluser`, the API). Plugins' hooks run in the same transaction
    /// first and may refuse.
    pub async fn remove_user(&self, user: user::Model) -> Result<(), AccountsError> {
        let transaction = self.db.begin().await?;
        for hook in self.hooks.all() {
            hook.before_user_delete(&transaction, user.id).await.map_err(AccountsError::Refused)?;
        }
        // Sessions and API tokens go with the row (foreign-key cascade), so the user's tokens
        // fail their user lookup from now on.
        user::Entity::delete_by_id(user.id).exec(&transaction).await?;
        transaction.commit().await?;
        self.events.emit("user.deleted", json!({"user_id": user.id, "username": user.username}));
        tracing::info!(user_id = user.id, username = %user.username, "user deleted");
        Ok(())
    }

    // ----- sessions and revocation -----

    /// Revokes one session: marks it in the database and, with Redis, for every instance.
    pub async fn revoke_session(&self, session_id: &str, reason: &str) -> Result<(), AccountsError> {
        session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(self.clock.now()))
            .col_expr(session::Column::RevokedReason, Expr::value(reason))
            .filter(session::Column::Id.eq(session_id))
            .filter(session::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        self.shared.mark_revoked(&format!("session:{session_id}"), self.revocation_ttl()).await?;
        Ok(())
    }

    /// Revokes every live session of a user except `keep`.
    pub async fn revoke_user_sessions(
        &self,
        user_id: i64,
        keep: Option<&str>,
        reason: &str,
    ) -> Result<(), AccountsError> {
        let now = self.clock.now();
        let live = session::Entity::find()
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(now))
            .all(&self.db)
            .await?;
        for session in live.iter().filter(|session| Some(session.id.as_str()) != keep) {
            self.revoke_session(&session.id, reason).await?;
        }
        Ok(())
    }

    async fn session_is_revoked(&self, session_id: &str) -> Result<bool, AccountsError> {
        if let Some(revoked) = self.shared.is_revoked(&format!("session:{session_id}")).await? {
            return Ok(revoked);
        }
        let session = session::Entity::find_by_id(session_id.to_owned()).one(&self.db).await?;
        Ok(session.is_none_or(|session| session.revoked_at.is_some()))
    }

    fn revocation_ttl(&self) -> std::time::Duration {
        // A revoked session's tokens all expire within the refresh lifetime.
        self.tokens.refresh_ttl().to_std().unwrap_or(std::time::Duration::from_secs(7 * 24 * 3600))
    }

    // ----- authentication -----

    /// The principal behind a bearer token or session cookie value; `client` is recorded as an
    /// API token's last-used address.
    pub async fn authenticate_token(&self, token: &str, client: Option<&str>) -> Result<Principal, ApiError> {
        if token.starts_with(api_tokens::PREFIX) {
            return self.authenticate_api_token(token, client).await;
        }
        let claims =
            self.tokens.decode(token, TokenKind::Access, self.clock.now()).ok_or_else(ApiError::invalid_credentials)?;
        let user_id = claims.user_id().ok_or_else(ApiError::invalid_credentials)?;
        if self.session_is_revoked(&claims.sid).await? {
            return Err(ApiError::invalid_credentials());
        }
        let user = user::Entity::find_by_id(user_id).one(&self.db).await?.ok_or_else(ApiError::invalid_credentials)?;
        Ok(principal(user, AuthMethod::Session { session_id: claims.sid }))
    }

    // ----- identity provider -----

    /// A satellite token for the caller and `audience`: an allow-listed service, or an active
    /// user's username (SDK 0.3.1's meaning). Returns the token and its lifetime in seconds.
    pub async fn satellite_token(&self, caller: &Principal, audience: &str) -> Result<(String, i64), AccountsError> {
        let normalized = idp::normalize_audience(audience);
        if normalized.is_empty() {
            return Err(AccountsError::MissingAudience);
        }
        let allowed = self.idp.allowed_audiences().contains(&normalized)
            || self.user_by_name(&normalized).await?.is_some_and(|user| user.is_active);
        if !allowed {
            return Err(AccountsError::InvalidAudience {
                requested: audience.to_owned(),
                allowed: self.idp.allowed_audiences().to_vec(),
            });
        }
        let token = self.idp.mint(caller.user_id, caller.role.as_str(), &normalized).await?;
        Ok((token, self.idp.token_seconds()))
    }

    /// Verifies a satellite token for the calling service (its username is the audience) and
    /// returns the claims with the subject's current account.
    pub async fn verify_satellite_token(
        &self,
        caller: &Principal,
        token: &str,
    ) -> Result<Result<(idp::SatelliteClaims, user::Model), idp::VerifyFailure>, AccountsError> {
        let claims = match self.idp.verify(token, &caller.username).await? {
            Ok(claims) => claims,
            Err(failure) => return Ok(Err(failure)),
        };
        let Some(sub) = claims.sub.clone() else {
            return Ok(Err(idp::VerifyFailure::new("invalid_token", "The token has no subject (sub).")));
        };
        let Ok(user_id) = sub.parse::<i64>() else {
            return Ok(Err(idp::VerifyFailure::new("invalid_user_id", format!("Invalid user ID in token: {sub}"))));
        };
        match user::Entity::find_by_id(user_id).one(&self.db).await? {
            Some(subject) => Ok(Ok((claims, subject))),
            None => Ok(Err(idp::VerifyFailure::new("user_not_found", format!("User with ID {sub} not found.")))),
        }
    }

    /// The hub's own base URL: `server.public_url`, or what the request says.
    pub fn public_base(&self, request: &Request) -> String {
        if !self.public_url.is_empty() {
            return self.public_url.trim_end_matches('/').to_owned();
        }
        let host = request.headers().get(header::HOST).and_then(|value| value.to_str().ok()).unwrap_or("localhost");
        format!("{}://{host}", request.scheme())
    }

    /// Whether cookies must be `Secure`: the hub is reached over HTTPS.
    pub fn is_https(&self, request: &Request) -> bool {
        self.public_url.starts_with("https://") || request.scheme().as_str() == "https"
    }

    // ----- rate limits -----

    fn window(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.config.login_window_seconds)
    }

    /// Counts a login or token request from `client` and refuses it past the per-address limit.
    pub async fn limit_address(&self, action: &str, client: &str) -> Result<(), AccountsError> {
        let now = self.clock.now().timestamp() as u64;
        let key = format!("address:{client}");
        match self.shared.hit(&key, self.config.login_attempts_per_address, self.window(), now).await? {
            Limit::Allowed => Ok(()),
            Limit::Exceeded { retry_after } => {
                tracing::warn!(client, action, "rate limited");
                Err(AccountsError::RateLimited { retry_after })
            }
        }
    }

    async fn ensure_unique(&self, username: &str, email: &str, except: Option<i64>) -> Result<(), AccountsError> {
        let clash = |column: user::Column, value: &str| {
            let mut query = user::Entity::find().filter(column.eq(value));
            if let Some(id) = except {
                query = query.filter(user::Column::Id.ne(id));
            }
            query
        };
        if !username.is_empty() && clash(user::Column::Username, username).count(&self.db).await? > 0 {
            return Err(AccountsError::UsernameTaken);
        }
        if !username.is_empty() {
            for hook in self.hooks.all() {
                if hook.name_taken(username).await.map_err(AccountsError::Refused)? {
                    return Err(AccountsError::UsernameTaken);
                }
            }
        }
        if !email.is_empty() && clash(user::Column::Email, email).count(&self.db).await? > 0 {
            return Err(AccountsError::EmailTaken);
        }
        Ok(())
    }
}

/// A principal from a user row.
pub fn principal(user: user::Model, method: AuthMethod) -> Principal {
    Principal {
        user_id: user.id,
        role: Role::parse(&user.role).unwrap_or(Role::Guest),
        username: user.username,
        email: user.email,
        is_active: user.is_active,
        method,
    }
}

/// Maps a unique-constraint failure to the field it concerns (two registrations racing).
fn unique_violation(error: sea_orm::DbErr) -> AccountsError {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message)) if message.contains("email") => AccountsError::EmailTaken,
        Some(SqlErr::UniqueConstraintViolation(_)) => AccountsError::UsernameTaken,
        _ => AccountsError::Database(error),
    }
}

/// The session-token secret kept in `settings`, created once. Two instances starting together
/// both try to insert; the loser reads the winner's.
async fn stored_session_secret(db: &DatabaseConnection, now: DateTime<Utc>) -> anyhow::Result<Vec<u8>> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| anyhow::anyhow!("no randomness: {error}"))?;
    let candidate = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    setting::Entity::insert(setting::ActiveModel {
        key: Set(SESSION_SECRET_KEY.to_owned()),
        value: Set(candidate),
        created_at: Set(now),
    })
    .on_conflict(OnConflict::column(setting::Column::Key).do_nothing().to_owned())
    .exec_without_returning(db)
    .await?;
    let stored = setting::Entity::find_by_id(SESSION_SECRET_KEY.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("session secret missing after insert"))?;
    Ok(stored.value.into_bytes())
}

/// The client address of a request, for rate limits and logs.
pub fn client_address(request: &Request) -> String {
    match request.remote_addr().as_socket_addr() {
        Some(address) => address.ip().to_string(),
        None => "unknown".to_owned(),
    }
}

fn bearer(request: &Request) -> Option<&str> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn session_cookie(request: &Request) -> Option<String> {
    request.cookie().get(SESSION_COOKIE).map(|cookie| cookie.value_str().to_owned()).filter(|value| !value.is_empty())
}

fn is_websocket_upgrade(request: &Request) -> bool {
    request
        .headers()
        .get(header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"))
}

fn query_token(request: &Request) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct TokenQuery {
        token: Option<String>,
    }
    request.params::<TokenQuery>().ok()?.token.filter(|token| !token.is_empty())
}

#[async_trait]
impl Authenticator for Accounts {
    /// The `session` cookie wins when present (Tufts Hub's order), then `Authorization: Bearer`,
    /// then — on WebSocket upgrades only — `?token=`.
    async fn authenticate(&self, request: &Request) -> Result<Option<Principal>, ApiError> {
        let token = match session_cookie(request) {
            Some(cookie) => cookie,
            None => match bearer(request) {
                Some(token) => token.to_owned(),
                None if is_websocket_upgrade(request) => match query_token(request) {
                    Some(token) => token,
                    None => return Ok(None),
                },
                None => return Ok(None),
            },
        };
        self.authenticate_token(&token, Some(&client_address(request))).await.map(Some)
    }
}

fn summary(user: user::Model) -> UserSummary {
    UserSummary {
        id: user.id,
        role: Role::parse(&user.role).unwrap_or(Role::Guest),
        username: user.username,
        full_name: user.full_name,
        is_active: user.is_active,
    }
}

#[async_trait]
impl AccountDirectory for Accounts {
    async fn user_by_id(&self, id: i64) -> Result<Option<UserSummary>, ApiError> {
        Ok(user::Entity::find_by_id(id).one(&self.db).await?.map(summary))
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserSummary>, ApiError> {
        Ok(self.user_by_name(username).await?.map(summary))
    }

    async fn users_by_ids(&self, ids: &[i64]) -> Result<Vec<UserSummary>, ApiError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let users = user::Entity::find().filter(user::Column::Id.is_in(ids.to_vec())).all(&self.db).await?;
        Ok(users.into_iter().map(summary).collect())
    }
}
