//! Audit events: security decisions written to the JSON log with a stable `audit` field naming
//! the event (`login.succeeded`, `login.failed`, `token.minted`, `session.revoked`,
//! `api_token.revoked`, `admin.user_changed`, `admin.user_deleted`, `admin.plugin_switched`,
//! `admin.keys_rotated`), under the `thub::audit` target. Never a password or a token: ids,
//! usernames, client addresses and reasons only. Field names are part of the contract.

/// A password login succeeded.
pub fn login_succeeded(user_id: i64, username: &str, client: &str) {
    tracing::info!(target: "thub::audit", audit = "login.succeeded", user_id, username, client, "login succeeded");
}

/// A password login was refused (`reason`: unknown_user, wrong_password, deactivated,
/// account_locked).
pub fn login_failed(username: &str, client: &str, reason: &'static str) {
    tracing::warn!(target: "thub::audit", audit = "login.failed", username, client, reason, "login failed");
}

/// A token was issued (`kind`: session, refresh, satellite, api_token).
pub fn token_minted(user_id: i64, kind: &'static str, audience: Option<&str>) {
    tracing::info!(target: "thub::audit", audit = "token.minted", user_id, kind, audience, "token minted");
}

/// A hub session was revoked (logout, password change, deactivation, refresh reuse).
pub fn session_revoked(session_id: &str, reason: &str) {
    tracing::info!(target: "thub::audit", audit = "session.revoked", session_id, reason, "session revoked");
}

/// A personal API token was revoked.
pub fn api_token_revoked(user_id: i64, token_id: i64) {
    tracing::info!(target: "thub::audit", audit = "api_token.revoked", user_id, token_id, "API token revoked");
}

/// An administrator changed another account's role or active flag.
pub fn user_changed(actor_id: i64, user_id: i64, role: Option<&str>, is_active: Option<bool>) {
    tracing::info!(
        target: "thub::audit", audit = "admin.user_changed", actor_id, user_id, role, is_active, "account changed"
    );
}

/// An account was deleted (`actor_id` is `None` from the command line).
pub fn user_deleted(actor_id: Option<i64>, user_id: i64, username: &str) {
    tracing::info!(target: "thub::audit", audit = "admin.user_deleted", actor_id, user_id, username, "account deleted");
}

/// A WebAssembly plugin was switched on or off.
pub fn plugin_switched(plugin: &str, enabled: bool) {
    tracing::info!(target: "thub::audit", audit = "admin.plugin_switched", plugin, enabled, "plugin switched");
}

/// The identity provider's signing key was rotated.
pub fn keys_rotated(kid: &str) {
    tracing::info!(target: "thub::audit", audit = "admin.keys_rotated", kid, "signing key rotated");
}
