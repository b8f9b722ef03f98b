//! Rate limits on accounts, each keyed by what it protects, never one global bucket: failed
//! logins per account and per client address, login requests and registrations per address,
//! refreshes per session, token minting per user. Fixed windows, shared between instances
//! through Redis when configured. Every refusal is a 429 with `Retry-After`.

use std::time::Duration;

use super::{Accounts, AccountsError};
use crate::shared::Limit;

const MINUTE: Duration = Duration::from_secs(60);

/// What a limit counts, and so its key.
#[derive(Debug, Clone, Copy)]
pub(super) enum Bucket {
    /// Login requests from one address.
    Logins,
    /// Failed logins from one address.
    FailedLoginsFromAddress,
    /// Failed logins on one account (username or email as typed, lowercased).
    FailedLoginsOnAccount,
    /// Registrations from one address.
    Registrations,
    /// Refreshes of one session.
    Refreshes,
    /// Satellite and API tokens minted by one user.
    Tokens,
}

impl Bucket {
    fn name(self) -> &'static str {
        match self {
            Self::Logins => "logins",
            Self::FailedLoginsFromAddress => "failed-logins-address",
            Self::FailedLoginsOnAccount => "failed-logins-account",
            Self::Registrations => "registrations",
            Self::Refreshes => "refreshes",
            Self::Tokens => "tokens",
        }
    }
}

impl Accounts {
    fn login_window(&self) -> Duration {
        Duration::from_secs(self.config.login_window_seconds)
    }

    fn rule(&self, bucket: Bucket) -> (u32, Duration) {
        let config = &self.config;
        match bucket {
            Bucket::Logins => (config.logins_per_address_per_minute, MINUTE),
            Bucket::FailedLoginsFromAddress => (config.failed_logins_per_address, self.login_window()),
            Bucket::FailedLoginsOnAccount => (config.login_attempts_per_account, self.login_window()),
            Bucket::Registrations => (config.registrations_per_address_per_minute, MINUTE),
            Bucket::Refreshes => (config.refreshes_per_session_per_minute, MINUTE),
            Bucket::Tokens => (config.tokens_per_user_per_minute, MINUTE),
        }
    }

    fn key(bucket: Bucket, subject: &str) -> String {
        format!("{}:{subject}", bucket.name())
    }

    fn now_seconds(&self) -> u64 {
        self.clock.now().timestamp().max(0) as u64
    }

    /// Counts one request against `bucket` for `subject`; refuses it past the limit.
    pub(super) async fn count(&self, bucket: Bucket, subject: &str) -> Result<(), AccountsError> {
        let (limit, window) = self.rule(bucket);
        match self.shared.hit(&Self::key(bucket, subject), limit, window, self.now_seconds()).await {
            Limit::Allowed => Ok(()),
            Limit::Exceeded { retry_after } => {
                tracing::warn!(bucket = bucket.name(), subject, retry_after, "rate limited");
                Err(AccountsError::RateLimited { retry_after })
            }
        }
    }

    /// Refuses when `bucket` is already full for `subject`, without counting (failure limits
    /// are checked before the attempt and counted only when it fails).
    pub(super) async fn check(&self, bucket: Bucket, subject: &str) -> Result<(), AccountsError> {
        let (limit, window) = self.rule(bucket);
        match self.shared.peek(&Self::key(bucket, subject), limit, window, self.now_seconds()).await {
            Limit::Allowed => Ok(()),
            Limit::Exceeded { retry_after } => {
                tracing::warn!(bucket = bucket.name(), subject, retry_after, "rate limited");
                Err(AccountsError::RateLimited { retry_after })
            }
        }
    }

    /// Records a failure in `bucket` for `subject` (checked later by [`Accounts::check`]).
    pub(super) async fn record_failure(&self, bucket: Bucket, subject: &str) {
        let (_, window) = self.rule(bucket);
        let _ = self.shared.hit(&Self::key(bucket, subject), u32::MAX, window, self.now_seconds()).await;
    }

    /// Forgets `bucket`'s count for `subject` (a successful login clears the account's failures).
    pub(super) async fn clear(&self, bucket: Bucket, subject: &str) {
        let (_, window) = self.rule(bucket);
        self.shared.reset(&Self::key(bucket, subject), window, self.now_seconds()).await;
    }
}
