//! Registration and password login: creating accounts, checking passwords (rate limits,
//! timing-safe unknown users, hash upgrades), changing and resetting passwords.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::json;
use thub_plugin_sdk::storage::begin_write;
use thub_plugin_sdk::{AuthMethod, Principal, Role};

use super::entity::user;
use super::password::Verdict;
use super::rate_limits::Bucket;
use super::tokens::TokenPair;
use super::{Accounts, AccountsError, Invalidation, unique_violation, validation};
use crate::audit;

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

impl Accounts {
    /// Registers an account and opens a session for it.
    pub async fn register(&self, new: NewUser, client: &str) -> Result<(user::Model, TokenPair), AccountsError> {
        if !self.config.open_registration {
            return Err(AccountsError::RegistrationClosed);
        }
        self.count(Bucket::Registrations, client).await?;
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
        let transaction = begin_write(&self.db).await?;
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
        .insert(&transaction)
        .await
        .map_err(unique_violation)?;
        let event = json!({"user_id": inserted.id, "username": inserted.username});
        let event = self.events.record(&transaction, "user.registered", event).await?;
        transaction.commit().await.map_err(unique_violation)?;
        // A name nobody had may be remembered as nobody's (the registry's owner look-ups).
        self.cache.note_user_change();
        event.publish();
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
        self.count(Bucket::Logins, client).await?;
        self.check(Bucket::FailedLoginsFromAddress, client).await?;
        if let Err(refused) = self.check(Bucket::FailedLoginsOnAccount, &identifier).await {
            tracing::warn!(username = %identifier, client, reason = "account_rate_limited", "login refused");
            audit::login_failed(&identifier, client, "account_locked");
            return Err(refused);
        }
        let column = if identifier.contains('@') { user::Column::Email } else { user::Column::Username };
        let found = user::Entity::find().filter(column.eq(identifier.as_str())).one(&self.db).await?;
        let Some(found) = found else {
            self.passwords.verify_dummy(password.to_owned()).await;
            self.login_failed(&identifier, client, "unknown_user").await;
            return Err(AccountsError::InvalidLogin);
        };
        let verdict = self.passwords.verify(password.to_owned(), found.password_hash.clone()).await?;
        if verdict == Verdict::Mismatch {
            self.login_failed(&identifier, client, "wrong_password").await;
            return Err(AccountsError::InvalidLogin);
        }
        if !found.is_active {
            audit::login_failed(&identifier, client, "deactivated");
            return Err(AccountsError::AccountDeactivated);
        }
        self.clear(Bucket::FailedLoginsOnAccount, &identifier).await;
        if verdict == Verdict::MatchNeedsUpgrade {
            let hash = self.passwords.hash(password.to_owned()).await?;
            let mut upgraded: user::ActiveModel = found.clone().into();
            upgraded.password_hash = Set(hash);
            upgraded.update(&self.db).await?;
            self.invalidate(Invalidation::User(found.id)).await;
            tracing::info!(user_id = found.id, "password hash upgraded");
        }
        audit::login_succeeded(found.id, &found.username, client);
        Ok(found)
    }

    async fn login_failed(&self, identifier: &str, client: &str, reason: &'static str) {
        self.record_failure(Bucket::FailedLoginsOnAccount, identifier).await;
        self.record_failure(Bucket::FailedLoginsFromAddress, client).await;
        audit::login_failed(identifier, client, reason);
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

    pub(super) async fn set_password_hash(&self, user: user::Model, new: &str) -> Result<(), AccountsError> {
        let hash = self.passwords.hash(new.to_owned()).await?;
        let user_id = user.id;
        let mut changed: user::ActiveModel = user.into();
        changed.password_hash = Set(hash);
        changed.updated_at = Set(self.clock.now());
        changed.update(&self.db).await?;
        self.invalidate(Invalidation::User(user_id)).await;
        Ok(())
    }

    pub(super) async fn ensure_unique(
        &self,
        username: &str,
        email: &str,
        except: Option<i64>,
    ) -> Result<(), AccountsError> {
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
                if hook.name_taken(username).await? {
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
