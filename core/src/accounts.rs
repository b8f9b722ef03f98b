//! Accounts: who a user is, how they prove it, and what the hub tells others about them.

pub mod entity;
pub(crate) mod jwt;

use std::sync::Arc;

use async_trait::async_trait;
use poem::Request;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use thub_plugin_sdk::{AccountDirectory, ApiError, Authenticator, Clock, Principal, Role, UserSummary};

use entity::user;

/// The accounts service: users, sessions, API tokens.
pub struct Accounts {
    db: DatabaseConnection,
    #[allow(dead_code)]
    clock: Arc<dyn Clock>,
}

impl Accounts {
    /// Accounts over this database.
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
    }
}

#[async_trait]
impl Authenticator for Accounts {
    async fn authenticate(&self, request: &Request) -> Result<Option<Principal>, ApiError> {
        if request.headers().contains_key(poem::http::header::AUTHORIZATION) {
            return Err(ApiError::invalid_credentials());
        }
        Ok(None)
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
        let found =
            user::Entity::find().filter(user::Column::Username.eq(username.to_lowercase())).one(&self.db).await?;
        Ok(found.map(summary))
    }
}
