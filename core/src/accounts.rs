//! Accounts: who a user is, how they prove it, and what the hub tells others about them.
//!
//! This file holds the [`Accounts`] service and its start-up; its jobs live beside it:
//! `registration` (accounts and password login), `users` (reading, changing, deleting),
//! `sessions` (sessions, refresh rotation, revocation), `rate_limits`, `credentials` (reading
//! credentials from a request: the host's `Authenticator`), `api_tokens` (`syft_pat_…`, stored
//! hashed) and `idp` (the identity provider's RS256 keys and satellite tokens).

pub mod api;
pub mod api_tokens;
mod cache;
mod credentials;
pub mod entity;
pub mod error;
pub mod idp;
pub(crate) mod jwt;
pub mod pages;
pub mod password;
mod rate_limits;
mod registration;
pub mod self_service;
mod sessions;
pub mod tokens;
mod users;
pub mod validation;

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set, SqlErr};
use thub_plugin_sdk::{AccountDirectory, AccountHookList, AuthMethod, Clock, EventBus, Principal, Role, UserSummary};

use crate::config::{AuthConfig, Config};
use crate::shared::{InvalidationFollower, Shared};
use cache::{AuthCache, Invalidation};
pub use credentials::client_address;
use entity::{setting, user};
pub use error::AccountsError;
use idp::Idp;
use password::Passwords;
pub use registration::NewUser;
use tokens::TokenCodec;
pub use users::UserChanges;

/// The name of the browser session cookie (Tufts Hub's).
pub const SESSION_COOKIE: &str = "session";

const SESSION_SECRET_KEY: &str = "auth.session_secret";

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
    cache: Arc<AuthCache>,
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
        // With Redis the cache waits for its invalidation channel to be live (see `cache`).
        let cache = Arc::new(AuthCache::new(
            config.auth.cache_seconds,
            config.auth.cache_entries,
            clock.clone(),
            !shared.is_redis(),
        ));
        let follower: Arc<dyn InvalidationFollower> = cache.clone();
        shared.follow_invalidations(Arc::downgrade(&follower));
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
            cache,
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

    /// Applies a committed change to this instance's authentication cache and tells the other
    /// instances (with Redis).
    async fn invalidate(&self, change: Invalidation) {
        self.cache.invalidate(&change);
        self.shared.publish_invalidation(&change.encode()).await;
    }

    /// Whether the authentication cache is in use now (with Redis: its invalidation channel is
    /// live), for `/ready` and tests.
    pub fn auth_cache_is_live(&self) -> bool {
        self.cache.is_live()
    }

    /// How many entries the authentication cache holds.
    pub fn auth_cache_len(&self) -> usize {
        self.cache.len()
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
    async fn user_by_id(&self, id: i64) -> Result<Option<UserSummary>, DbErr> {
        Ok(user::Entity::find_by_id(id).one(&self.db).await?.map(summary))
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserSummary>, DbErr> {
        Ok(self.user_by_name(username).await?.map(summary))
    }

    fn user_changes(&self) -> u64 {
        self.cache.user_changes()
    }

    async fn users_by_ids(&self, ids: &[i64]) -> Result<Vec<UserSummary>, DbErr> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let users = user::Entity::find().filter(user::Column::Id.is_in(ids.to_vec())).all(&self.db).await?;
        Ok(users.into_iter().map(summary).collect())
    }
}
