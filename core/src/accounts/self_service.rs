//! The SDK's [`AccountService`] over [`Accounts`]: what the web plugin's account pages call
//! (sign-up, profile, password, API tokens, sessions). Rules stay in `Accounts`; this module
//! only translates shapes and errors.

use async_trait::async_trait;
use poem::Request;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use thub_plugin_sdk::{
    AccountService, ApiError, ApiTokenSummary, AuthMethod, Principal, Profile, Registration, Role, SessionCookie,
    SessionSummary,
};

use super::api_tokens::TokenRequest;
use super::entity::{api_token, session, user};
use super::{Accounts, NewUser, UserChanges};

/// Most API tokens a settings page lists.
const MAX_LISTED_TOKENS: u64 = 200;

fn profile_of(user: user::Model) -> Profile {
    Profile {
        username: user.username,
        email: user.email,
        full_name: user.full_name,
        avatar_url: user.avatar_url.unwrap_or_default(),
    }
}

fn token_summary(token: api_token::Model) -> ApiTokenSummary {
    ApiTokenSummary {
        id: token.id,
        name: token.name,
        prefix: token.token_prefix,
        is_active: token.is_active,
        created_at: token.created_at,
        expires_at: token.expires_at,
        last_used_at: token.last_used_at,
    }
}

fn current_session(principal: &Principal) -> Option<&str> {
    match &principal.method {
        AuthMethod::Session { session_id } => Some(session_id),
        AuthMethod::ApiToken { .. } => None,
    }
}

#[async_trait]
impl AccountService for Accounts {
    async fn register(&self, registration: Registration, client: &str) -> Result<SessionCookie, ApiError> {
        let new = NewUser {
            username: registration.username,
            email: Some(registration.email),
            full_name: registration.full_name,
            password: registration.password,
            role: Role::User,
        };
        let (_, pair) = Accounts::register(self, new, client).await?;
        Ok(SessionCookie { value: pair.access_token, max_age_seconds: self.access_ttl().num_seconds() })
    }

    async fn logout(&self, principal: &Principal) -> Result<(), ApiError> {
        Ok(Accounts::logout(self, principal).await?)
    }

    async fn profile(&self, principal: &Principal) -> Result<Profile, ApiError> {
        Ok(profile_of(self.user(principal.user_id).await?))
    }

    async fn update_profile(&self, principal: &Principal, email: &str, full_name: &str) -> Result<Profile, ApiError> {
        let changes =
            UserChanges { email: Some(email.to_owned()), full_name: Some(full_name.to_owned()), ..Default::default() };
        Ok(profile_of(self.update_user(principal, principal.user_id, changes).await?))
    }

    async fn change_password(&self, principal: &Principal, current: &str, new: &str) -> Result<(), ApiError> {
        Ok(Accounts::change_password(self, principal, current, new).await?)
    }

    async fn api_tokens(&self, principal: &Principal) -> Result<Vec<ApiTokenSummary>, ApiError> {
        let (tokens, _) = self.list_api_tokens(principal.user_id, true, 0, MAX_LISTED_TOKENS).await?;
        Ok(tokens.into_iter().map(token_summary).collect())
    }

    async fn create_api_token(&self, principal: &Principal, name: &str) -> Result<(ApiTokenSummary, String), ApiError> {
        let request = TokenRequest { name: name.to_owned(), scopes: None, expires_at: None };
        let (row, secret) = Accounts::create_api_token(self, principal, request).await?;
        Ok((token_summary(row), secret))
    }

    async fn revoke_api_token(&self, principal: &Principal, id: i64) -> Result<(), ApiError> {
        Ok(Accounts::revoke_api_token(self, principal, id).await?)
    }

    async fn sessions(&self, principal: &Principal) -> Result<Vec<SessionSummary>, ApiError> {
        let current = current_session(principal);
        let live = session::Entity::find()
            .filter(session::Column::UserId.eq(principal.user_id))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(self.now()))
            .order_by_desc(session::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(|error| ApiError::internal_error(&error))?;
        Ok(live
            .into_iter()
            .map(|row| SessionSummary {
                current: current == Some(row.id.as_str()),
                id: row.id,
                created_at: row.created_at,
                refreshed_at: row.refreshed_at,
                expires_at: row.expires_at,
            })
            .collect())
    }

    async fn revoke_session(&self, principal: &Principal, session_id: &str) -> Result<(), ApiError> {
        // Only the caller's own sessions: someone else's id is answered as unknown.
        let owned = session::Entity::find_by_id(session_id.to_owned())
            .filter(session::Column::UserId.eq(principal.user_id))
            .one(&self.db)
            .await
            .map_err(|error| ApiError::internal_error(&error))?;
        if owned.is_none() {
            return Err(ApiError::not_found("accounts.session_not_found", "Session not found"));
        }
        Ok(Accounts::revoke_session(self, session_id, "logout").await?)
    }

    async fn revoke_other_sessions(&self, principal: &Principal) -> Result<(), ApiError> {
        Ok(self.revoke_user_sessions(principal.user_id, current_session(principal), "logout").await?)
    }

    fn is_https(&self, request: &Request) -> bool {
        Accounts::is_https(self, request)
    }

    fn client_address(&self, request: &Request) -> String {
        super::client_address(request)
    }

    fn public_base(&self, request: &Request) -> String {
        Accounts::public_base(self, request)
    }
}
