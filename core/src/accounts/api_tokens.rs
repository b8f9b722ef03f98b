//! Personal API tokens: `syft_pat_` + 43 base64url characters (32 random bytes), shown once,
//! stored as a SHA-256 hash, with an optional expiry and a last-used time. Usable wherever a
//! session is (`Authorization: Bearer syft_pat_…`), except to manage API tokens themselves, so a
//! leaked token cannot mint itself successors.

use std::sync::Arc;

use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use serde_json::Value;
use sha2::{Digest, Sha256};
use thub_plugin_sdk::{ApiError, AuthMethod, FieldError, Principal};

use super::cache::{CachedToken, principal_of};
use super::entity::{api_token, user};
use super::{Accounts, AccountsError, Invalidation};

/// Every API token starts with this.
pub const PREFIX: &str = "syft_pat_";
/// How many characters of a token are kept to recognise it.
pub const SHOWN_PREFIX_LENGTH: usize = 16;
/// Active tokens a user may hold at once.
pub const MAX_ACTIVE_TOKENS: u64 = 50;
/// The scopes a token may carry (recorded, not yet enforced: every scope acts as `full`).
pub const SCOPES: &[&str] = &["read", "write", "full"];
/// `last_used_at` is written at most this often per token, so using a token is not a write
/// on every request.
const LAST_USED_RESOLUTION_SECONDS: i64 = 60;

/// What a client asks for when creating a token.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    /// Label, 1–100 characters.
    pub name: String,
    /// Scopes; default `["full"]`.
    pub scopes: Option<Vec<String>>,
    /// Expiry, ISO 8601; without an offset it is UTC. Must be in the future.
    pub expires_at: Option<String>,
}

/// Longest token label, counted after trimming (its schema is `text::Name`'s).
const NAME_MAX: usize = thub_plugin_sdk::text::NAME_MAX_CHARS;

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn name(value: &str) -> Result<String, FieldError> {
    let trimmed = value.trim();
    let length = trimmed.chars().count();
    if length == 0 || length > NAME_MAX {
        return Err(FieldError::new(
            "value_error",
            &["body", "name"],
            "Name must be between 1 and 100 characters",
            Value::String(value.to_owned()),
        ));
    }
    thub_plugin_sdk::text::check_line(trimmed, &["body", "name"])?;
    Ok(trimmed.to_owned())
}

/// Parses an ISO 8601 instant; one without an offset is taken as UTC (Python's naive
/// `datetime.isoformat()`, which the SDK sends).
pub fn parse_instant(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(value) {
        return Some(instant.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
        .map(|naive| naive.and_utc())
}

impl Accounts {
    /// Creates a token for the caller. Returns the row and the token (shown once).
    pub async fn create_api_token(
        &self,
        caller: &Principal,
        request: TokenRequest,
    ) -> Result<(api_token::Model, String), AccountsError> {
        if !matches!(caller.method, AuthMethod::Session { .. }) {
            return Err(AccountsError::Forbidden("API tokens cannot manage API tokens; log in with a password"));
        }
        let now = self.now();
        let mut errors = Vec::new();
        let name = name(&request.name).map_err(|error| errors.push(error)).ok();
        let mut scopes: Vec<String> = Vec::new();
        for scope in request.scopes.unwrap_or_else(|| vec!["full".to_owned()]) {
            if !SCOPES.contains(&scope.as_str()) {
                errors.push(FieldError::new(
                    "enum",
                    &["body", "scopes"],
                    "Input should be 'read', 'write' or 'full'",
                    Value::String(scope),
                ));
            } else if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        if scopes.is_empty() && errors.is_empty() {
            errors.push(FieldError::new(
                "too_short",
                &["body", "scopes"],
                "At least one scope is required",
                Value::Null,
            ));
        }
        let expires_at = match request.expires_at.as_deref() {
            None => None,
            Some(value) => match parse_instant(value) {
                Some(instant) if instant > now => Some(instant),
                Some(_) => {
                    errors.push(FieldError::new(
                        "value_error",
                        &["body", "expires_at"],
                        "Expiration date must be in the future",
                        Value::String(value.to_owned()),
                    ));
                    None
                }
                None => {
                    errors.push(FieldError::new(
                        "datetime_parsing",
                        &["body", "expires_at"],
                        "Input should be a valid ISO 8601 datetime",
                        Value::String(value.to_owned()),
                    ));
                    None
                }
            },
        };
        let Some(name) = name.filter(|_| errors.is_empty()) else {
            return Err(AccountsError::Validation(errors));
        };
        let active = api_token::Entity::find()
            .filter(api_token::Column::UserId.eq(caller.user_id))
            .filter(api_token::Column::IsActive.eq(true))
            .count(&self.db)
            .await?;
        if active >= MAX_ACTIVE_TOKENS {
            return Err(AccountsError::TooManyApiTokens);
        }
        self.count(super::rate_limits::Bucket::Tokens, &caller.user_id.to_string()).await?;
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(|error| AccountsError::Internal(format!("no randomness: {error}")))?;
        let token = format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random));
        let row = api_token::ActiveModel {
            user_id: Set(caller.user_id),
            name: Set(name),
            token_prefix: Set(token[..SHOWN_PREFIX_LENGTH].to_owned()),
            token_hash: Set(hash(&token)),
            scopes: Set(serde_json::to_string(&scopes).unwrap_or_else(|_| "[\"full\"]".to_owned())),
            expires_at: Set(expires_at),
            last_used_at: Set(None),
            last_used_ip: Set(None),
            is_active: Set(true),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        crate::audit::token_minted(caller.user_id, "api_token", None);
        Ok((row, token))
    }

    /// The caller's tokens, newest first, and how many there are in all.
    pub async fn list_api_tokens(
        &self,
        user_id: i64,
        include_inactive: bool,
        skip: u64,
        limit: u64,
    ) -> Result<(Vec<api_token::Model>, u64), AccountsError> {
        let mut query = api_token::Entity::find().filter(api_token::Column::UserId.eq(user_id));
        if !include_inactive {
            query = query.filter(api_token::Column::IsActive.eq(true));
        }
        let total = query.clone().count(&self.db).await?;
        let tokens = query
            .order_by_desc(api_token::Column::CreatedAt)
            .order_by_desc(api_token::Column::Id)
            .offset(skip)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok((tokens, total))
    }

    /// One of the caller's tokens.
    pub async fn api_token(&self, user_id: i64, id: i64) -> Result<api_token::Model, AccountsError> {
        api_token::Entity::find_by_id(id)
            .filter(api_token::Column::UserId.eq(user_id))
            .one(&self.db)
            .await?
            .ok_or(AccountsError::ApiTokenNotFound)
    }

    /// Renames one of the caller's tokens.
    pub async fn rename_api_token(
        &self,
        caller: &Principal,
        id: i64,
        new_name: &str,
    ) -> Result<api_token::Model, AccountsError> {
        if !matches!(caller.method, AuthMethod::Session { .. }) {
            return Err(AccountsError::Forbidden("API tokens cannot manage API tokens; log in with a password"));
        }
        let new_name = name(new_name)?;
        let token = self.api_token(caller.user_id, id).await?;
        let mut changed: api_token::ActiveModel = token.into();
        changed.name = Set(new_name);
        changed.updated_at = Set(self.now());
        Ok(changed.update(&self.db).await?)
    }

    /// Revokes one of the caller's tokens (it stays listed with `include_inactive`). A token
    /// may revoke itself.
    pub async fn revoke_api_token(&self, caller: &Principal, id: i64) -> Result<(), AccountsError> {
        let own_token = matches!(caller.method, AuthMethod::ApiToken { token_id } if token_id == id);
        if !own_token && !matches!(caller.method, AuthMethod::Session { .. }) {
            return Err(AccountsError::Forbidden("API tokens cannot manage API tokens; log in with a password"));
        }
        let token = self.api_token(caller.user_id, id).await?;
        if token.is_active {
            let mut changed: api_token::ActiveModel = token.into();
            changed.is_active = Set(false);
            changed.updated_at = Set(self.now());
            changed.update(&self.db).await?;
            self.invalidate(Invalidation::ApiToken(id)).await;
            crate::audit::api_token_revoked(caller.user_id, id);
        }
        Ok(())
    }

    /// The principal behind an API token: from the authentication cache when it holds the
    /// token, else from the database (and then cached while active).
    pub(crate) async fn authenticate_api_token(
        &self,
        token: &str,
        client: Option<&str>,
    ) -> Result<Principal, ApiError> {
        let unauthorized = |message: &'static str| ApiError::unauthorized("auth.invalid_api_token", message);
        let token_hash = hash(token);
        let (row, owner) = match self.cache.api_token(&token_hash) {
            Some(hit) => hit,
            None => {
                let ticket = self.cache.ticket();
                let row = api_token::Entity::find()
                    .filter(api_token::Column::TokenHash.eq(token_hash.as_str()))
                    .one(&self.db)
                    .await?
                    .ok_or_else(|| unauthorized("Invalid API token"))?;
                if !row.is_active {
                    return Err(unauthorized("API token has been revoked"));
                }
                let owner = user::Entity::find_by_id(row.user_id)
                    .one(&self.db)
                    .await?
                    .ok_or_else(|| unauthorized("Invalid API token"))?;
                let row = CachedToken::new(&row);
                self.cache.fill_api_token(ticket, &token_hash, row.clone(), &owner);
                (row, Arc::new(owner))
            }
        };
        let now = self.now();
        if row.expires_at.is_some_and(|expires_at| expires_at <= now) {
            return Err(unauthorized("API token has expired"));
        }
        let stale = row.last_used_at.is_none_or(|used| (now - used).num_seconds() >= LAST_USED_RESOLUTION_SECONDS);
        if stale {
            api_token::Entity::update_many()
                .col_expr(api_token::Column::LastUsedAt, Expr::value(now))
                .col_expr(api_token::Column::LastUsedIp, Expr::value(client.map(str::to_owned)))
                .filter(api_token::Column::Id.eq(row.id))
                .exec(&self.db)
                .await?;
            self.cache.token_used(&token_hash, now);
        }
        Ok(principal_of(&owner, AuthMethod::ApiToken { token_id: row.id }))
    }
}
