//! Reading, changing and deleting accounts.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use serde_json::json;
use thub_plugin_sdk::storage::begin_write;
use thub_plugin_sdk::{Principal, Role};

use super::entity::user;
use super::{Accounts, AccountsError, unique_violation, validation};

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

impl Accounts {
    /// The user with this id.
    pub async fn user(&self, id: i64) -> Result<user::Model, AccountsError> {
        user::Entity::find_by_id(id).one(&self.db).await?.ok_or(AccountsError::UserNotFound)
    }

    /// The user with this username (case-insensitive).
    pub async fn user_by_name(&self, username: &str) -> Result<Option<user::Model>, sea_orm::DbErr> {
        user::Entity::find().filter(user::Column::Username.eq(username.trim().to_lowercase())).one(&self.db).await
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
        if changes.role.is_some() || changes.is_active.is_some() {
            crate::audit::user_changed(actor.user_id, id, changes.role.map(|role| role.as_str()), changes.is_active);
        }
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
        let (user_id, username) = (user.id, user.username.clone());
        self.remove_user(user).await?;
        crate::audit::user_deleted(Some(actor.user_id), user_id, &username);
        Ok(())
    }

    /// Deletes a user (`thub deluser`, the API). Plugins' hooks run in the same transaction
    /// first and may refuse.
    pub async fn remove_user(&self, user: user::Model) -> Result<(), AccountsError> {
        let transaction = begin_write(&self.db).await?;
        for hook in self.hooks.all() {
            hook.before_user_delete(&transaction, user.id).await?;
        }
        // Sessions and API tokens go with the row (foreign-key cascade), so the user's tokens
        // fail their user lookup from now on.
        user::Entity::delete_by_id(user.id).exec(&transaction).await?;
        let event = json!({"user_id": user.id, "username": user.username});
        let event = self.events.record(&transaction, "user.deleted", event).await?;
        transaction.commit().await?;
        event.publish();
        tracing::info!(user_id = user.id, username = %user.username, "user deleted");
        Ok(())
    }
}
