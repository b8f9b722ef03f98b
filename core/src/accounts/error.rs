//! The accounts error enum and the one match from its variants to HTTP status, code and detail.
//! Messages are the reference SyftHub's, which `syfthub-sdk` users see.

use poem::http::StatusCode;
use serde_json::json;
use thub_plugin_sdk::{ApiError, FieldError, HookError};

/// Everything that can go wrong in accounts, sessions, API tokens and the identity provider.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// Input failed validation.
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    /// Registration through the API is switched off.
    #[error("registration is closed")]
    RegistrationClosed,
    /// The username belongs to someone else.
    #[error("username already exists")]
    UsernameTaken,
    /// The email belongs to someone else.
    #[error("email already exists")]
    EmailTaken,
    /// Unknown user or wrong password.
    #[error("invalid credentials")]
    InvalidLogin,
    /// Right password, deactivated account.
    #[error("account is deactivated")]
    AccountDeactivated,
    /// The refresh token is not a valid, current refresh token.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// The refresh token's user is gone or inactive.
    #[error("user not found or inactive")]
    RefreshUserGone,
    /// Wrong current password on a password change.
    #[error("current password is incorrect")]
    WrongCurrentPassword,
    /// No such user.
    #[error("user not found")]
    UserNotFound,
    /// The caller may not do this.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// An admin tried to deactivate their own account.
    #[error("cannot deactivate your own account")]
    CannotDeactivateSelf,
    /// Too many attempts.
    #[error("rate limited")]
    RateLimited {
        /// Seconds until the window ends.
        retry_after: u64,
    },
    /// No such API token for this user.
    #[error("API token not found")]
    ApiTokenNotFound,
    /// The user holds the maximum number of active API tokens.
    #[error("too many API tokens")]
    TooManyApiTokens,
    /// A satellite-token request without an audience.
    #[error("missing audience")]
    MissingAudience,
    /// A satellite-token request for an audience that is neither a service nor a user.
    #[error("invalid audience")]
    InvalidAudience {
        /// The audience as sent.
        requested: String,
        /// The allow-listed service names.
        allowed: Vec<String>,
    },
    /// A plugin refused (e.g. deleting the last owner of an organization).
    #[error("refused: {detail}")]
    Refused {
        /// The plugin's stable code.
        code: &'static str,
        /// What the user can do about it.
        detail: String,
    },
    /// Storage failed.
    #[error("database error")]
    Database(#[from] sea_orm::DbErr),
    /// Anything else that is our fault.
    #[error("{0}")]
    Internal(String),
}

impl From<anyhow::Error> for AccountsError {
    fn from(error: anyhow::Error) -> Self {
        Self::Internal(format!("{error:#}"))
    }
}

impl From<FieldError> for AccountsError {
    fn from(error: FieldError) -> Self {
        Self::Validation(vec![error])
    }
}

impl From<HookError> for AccountsError {
    fn from(error: HookError) -> Self {
        match error {
            HookError::Refused { code, detail } => Self::Refused { code, detail },
            HookError::Database(error) => Self::Database(error),
        }
    }
}

impl From<AccountsError> for ApiError {
    fn from(error: AccountsError) -> Self {
        use AccountsError::*;
        match error {
            Validation(errors) => ApiError::validation(errors),
            RegistrationClosed => ApiError::forbidden("accounts.registration_closed", "Registration is closed"),
            UsernameTaken => ApiError::bad_request("accounts.username_taken", "Username already exists"),
            EmailTaken => ApiError::bad_request("accounts.email_taken", "Email already exists"),
            InvalidLogin => ApiError::new(StatusCode::UNAUTHORIZED, "accounts.invalid_login", "Invalid credentials"),
            AccountDeactivated => {
                ApiError::new(StatusCode::UNAUTHORIZED, "accounts.deactivated", "Account is deactivated")
            }
            InvalidRefreshToken => ApiError::unauthorized("accounts.invalid_refresh_token", "Invalid refresh token"),
            RefreshUserGone => ApiError::unauthorized("accounts.user_inactive", "User not found or inactive"),
            WrongCurrentPassword => {
                ApiError::bad_request("accounts.wrong_current_password", "Current password is incorrect")
            }
            UserNotFound => ApiError::not_found("accounts.user_not_found", "User not found"),
            Forbidden(message) => ApiError::forbidden("accounts.forbidden", message),
            CannotDeactivateSelf => {
                ApiError::bad_request("accounts.cannot_deactivate_self", "Cannot deactivate your own account")
            }
            RateLimited { retry_after } => ApiError::too_many_requests("accounts.rate_limited", retry_after),
            ApiTokenNotFound => ApiError::not_found("accounts.api_token_not_found", "API token not found"),
            TooManyApiTokens => ApiError::bad_request(
                "accounts.too_many_api_tokens",
                "Maximum number of active API tokens reached (50); revoke one first",
            ),
            MissingAudience => ApiError::with_detail(
                StatusCode::BAD_REQUEST,
                "idp.missing_audience",
                json!({"error": "missing_audience", "message": "The 'aud' query parameter is required."}),
            ),
            InvalidAudience { requested, allowed } => ApiError::with_detail(
                StatusCode::BAD_REQUEST,
                "idp.invalid_audience",
                json!({
                    "error": "invalid_audience",
                    "message": format!(
                        "The requested audience '{requested}' is not a registered service or an active user. Allowed audiences: {}",
                        allowed.join(", ")
                    ),
                }),
            ),
            Refused { code, detail } => ApiError::bad_request(code, detail),
            Database(error) => error.into(),
            Internal(message) => ApiError::internal(message),
        }
    }
}

impl From<AccountsError> for poem::Error {
    fn from(error: AccountsError) -> Self {
        ApiError::from(error).into()
    }
}
