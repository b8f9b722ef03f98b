//! Login and token rate limits: fixed windows per address and per account, shared between
//! instances through Redis when configured.

use super::{Accounts, AccountsError};
use crate::shared::Limit;

impl Accounts {
    pub(super) fn window(&self) -> std::time::Duration {
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
}
