//! Hub sessions and their revocation: opening a session, rotating refresh tokens (reuse
//! revokes the session), logout, and the revocation marks the request path checks.

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use thub_plugin_sdk::{AuthMethod, Principal};

use super::entity::{session, user};
use super::rate_limits::Bucket;
use super::tokens::{TokenKind, TokenPair};
use super::{Accounts, AccountsError, Invalidation};

impl Accounts {
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
        crate::audit::token_minted(user.id, "session", None);
        Ok(pair)
    }

    /// Exchanges a refresh token for a new pair. Each refresh token works once: presenting an
    /// older one of the same session revokes the whole session (a stolen token was used).
    pub async fn refresh(&self, refresh_token: &str, client: &str) -> Result<TokenPair, AccountsError> {
        let now = self.clock.now();
        let claims =
            self.tokens.decode(refresh_token, TokenKind::Refresh, now).ok_or(AccountsError::InvalidRefreshToken)?;
        self.count(Bucket::Refreshes, &claims.sid).await?;
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

    /// Revokes one session: marks it in the database and, with Redis, for every instance.
    pub async fn revoke_session(&self, session_id: &str, reason: &str) -> Result<(), AccountsError> {
        session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(self.clock.now()))
            .col_expr(session::Column::RevokedReason, Expr::value(reason))
            .filter(session::Column::Id.eq(session_id))
            .filter(session::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        self.shared.mark_revoked(&format!("session:{session_id}"), self.revocation_ttl()).await;
        self.invalidate(Invalidation::Session(session_id.to_owned())).await;
        crate::audit::session_revoked(session_id, reason);
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

    /// Whether a session is revoked (or gone). A mark in memory or Redis answers "revoked" at
    /// once; otherwise the database decides, so a flushed or unreachable Redis never lets a
    /// revoked session back in.
    pub(super) async fn session_is_revoked(&self, session_id: &str) -> Result<bool, AccountsError> {
        let key = format!("session:{session_id}");
        if self.shared.known_revoked(&key).await {
            return Ok(true);
        }
        let session = session::Entity::find_by_id(session_id.to_owned()).one(&self.db).await?;
        Ok(session.is_none_or(|session| session.revoked_at.is_some()))
    }

    pub(super) fn revocation_ttl(&self) -> std::time::Duration {
        // A revoked session's tokens all expire within the refresh lifetime.
        self.tokens.refresh_ttl().to_std().unwrap_or(std::time::Duration::from_secs(7 * 24 * 3600))
    }
}
