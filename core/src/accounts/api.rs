//! The accounts HTTP API, wire-compatible with SyftHub's `/api/v1/auth`, `/api/v1/users`,
//! `/api/v1/token`, `/api/v1/verify` and `/.well-known/*`: parse → authorize → call the service
//! → map the error. The only accounts module that knows HTTP.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::Request;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::{Form, Json};
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use serde_json::Value;
use thub_plugin_sdk::text::Name;
use thub_plugin_sdk::{AdminUser, ApiError, Count, CurrentUser, Limit, NoContent, Role};

use super::api_tokens::TokenRequest;
use super::entity::{api_token, user};
use super::tokens::TokenPair;
use super::validation::{AvatarUrl, Email, NewPassword, Username};
use super::{Accounts, NewUser, UserChanges, client_address};

#[derive(Tags)]
enum AccountTags {
    /// Registration, login, sessions and API tokens.
    Auth,
    /// Accounts.
    Users,
    /// The identity provider: satellite tokens and signing keys.
    Identity,
}

/// An account, as every route returns it.
#[derive(Debug, Object)]
pub struct UserResponse {
    /// User id.
    pub id: i64,
    /// Lowercase username.
    pub username: String,
    /// Lowercase email.
    pub email: String,
    /// Display name.
    pub full_name: String,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Site role.
    pub role: Role,
    /// Whether the account may log in.
    pub is_active: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<user::Model> for UserResponse {
    fn from(user: user::Model) -> Self {
        Self {
            id: user.id,
            role: Role::parse(&user.role).unwrap_or(Role::Guest),
            username: user.username,
            email: user.email,
            full_name: user.full_name,
            avatar_url: user.avatar_url,
            is_active: user.is_active,
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

/// A session's token pair.
#[derive(Debug, Object)]
pub struct TokenResponse {
    /// Access token (Bearer).
    pub access_token: String,
    /// Refresh token, usable once.
    pub refresh_token: String,
    /// Always `bearer`.
    pub token_type: String,
}

impl From<TokenPair> for TokenResponse {
    fn from(pair: TokenPair) -> Self {
        Self { access_token: pair.access_token, refresh_token: pair.refresh_token, token_type: "bearer".to_owned() }
    }
}

/// `POST /api/v1/auth/login` answer: the token pair of [`TokenResponse`], plus the account
/// (the official TypeScript SDK and web app read `user`).
#[derive(Debug, Object)]
pub struct LoginResponse {
    /// Access token (Bearer).
    pub access_token: String,
    /// Refresh token, usable once.
    pub refresh_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// The account that logged in.
    pub user: UserResponse,
}

/// `POST /api/v1/auth/register` body. Unknown fields are ignored.
#[derive(Debug, Object)]
pub struct RegisterRequest {
    /// 3–50 letters, digits, `_`, `-`.
    pub username: Username,
    /// Email address.
    pub email: Email,
    /// 1–100 characters.
    pub full_name: Name,
    /// At least `auth.min_password_length` characters with a letter and a digit.
    pub password: NewPassword,
}

/// `POST /api/v1/auth/register` answer.
#[derive(Debug, Object)]
pub struct RegisterResponse {
    /// The new account.
    pub user: UserResponse,
    /// Access token.
    pub access_token: String,
    /// Refresh token.
    pub refresh_token: String,
    /// Always `bearer`.
    pub token_type: String,
}

#[derive(Debug, ApiResponse)]
enum Registered {
    /// Registered and logged in.
    #[oai(status = 201)]
    Created(Json<RegisterResponse>),
}

/// The OAuth2 password form of `POST /api/v1/auth/login`.
#[derive(Debug, Object, serde::Deserialize)]
pub struct LoginForm {
    /// Username or email.
    pub username: String,
    /// Password.
    pub password: String,
    /// `password` if present.
    pub grant_type: Option<GrantType>,
    /// Ignored.
    pub scope: Option<String>,
    /// Ignored.
    pub client_id: Option<String>,
    /// Ignored.
    pub client_secret: Option<String>,
}

thub_plugin_sdk::declared_string! {
    /// An API token scope: one of [`api_tokens::SCOPES`](super::api_tokens::SCOPES).
    pub struct Scope;
    schema = |schema| schema.enum_items = super::api_tokens::SCOPES.iter().copied().map(Value::from).collect();
}

thub_plugin_sdk::declared_string! {
    /// The OAuth2 `grant_type` of the password form: `password` is the one grant it takes.
    pub struct GrantType;
    schema = |schema| schema.enum_items = vec![Value::from(PASSWORD_GRANT)];
}

/// The grant of the login form.
const PASSWORD_GRANT: &str = "password";

thub_plugin_sdk::declared_string! {
    /// A satellite token's audience: trimmed and lowercased, it must not be empty (which
    /// service or user it names is checked against the allow list and the accounts).
    pub struct Audience;
    schema = |schema| schema.pattern = Some(format!("[^{}]", thub_plugin_sdk::text::WHITE_SPACE_CLASS));
}

/// `POST /api/v1/auth/refresh` body.
#[derive(Debug, Object)]
pub struct RefreshRequest {
    /// The current refresh token.
    pub refresh_token: String,
}

/// `PUT /api/v1/auth/me/password` body.
#[derive(Debug, Object)]
pub struct PasswordChange {
    /// The password now.
    pub current_password: String,
    /// The new password.
    pub new_password: NewPassword,
}

/// `GET /api/v1/auth/config`.
#[derive(Debug, Object)]
pub struct AuthConfigResponse {
    /// Whether registration waits for an emailed code (never: thub sends no mail).
    pub require_email_verification: bool,
    /// Whether mail can be sent.
    pub smtp_configured: bool,
    /// Whether self-service password reset exists.
    pub password_reset_enabled: bool,
}

/// `PUT /api/v1/users/…` body; absent or null fields stay as they are.
#[derive(Debug, Object)]
pub struct UserUpdate {
    /// New username.
    pub username: Option<Username>,
    /// New email.
    pub email: Option<Email>,
    /// New display name.
    pub full_name: Option<Name>,
    /// New avatar URL (empty clears it).
    pub avatar_url: Option<AvatarUrl>,
    /// Activate or deactivate (administrators only).
    pub is_active: Option<bool>,
    /// New role (administrators only).
    pub role: Option<Role>,
}

impl From<UserUpdate> for UserChanges {
    fn from(update: UserUpdate) -> Self {
        Self {
            username: update.username.map(String::from),
            email: update.email.map(String::from),
            full_name: update.full_name.map(String::from),
            avatar_url: update.avatar_url.map(String::from),
            is_active: update.is_active,
            role: update.role,
        }
    }
}

/// `GET /api/v1/users/check-username/{username}`.
#[derive(Debug, Object)]
pub struct UsernameAvailability {
    /// Whether it could be registered now (valid, not reserved, not taken).
    pub available: bool,
    /// The username, lowercase.
    pub username: String,
}

/// `GET /api/v1/users/check-email/{email}`.
#[derive(Debug, Object)]
pub struct EmailAvailability {
    /// Whether it could be registered now.
    pub available: bool,
    /// The email, lowercase.
    pub email: String,
}

/// An API token, without its secret.
#[derive(Debug, Object)]
pub struct ApiTokenResponse {
    /// Token id.
    pub id: i64,
    /// Label.
    pub name: String,
    /// The first 16 characters, to recognise it.
    pub token_prefix: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last use (minute resolution).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Address of the last use.
    pub last_used_ip: Option<String>,
    /// False once revoked.
    pub is_active: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<api_token::Model> for ApiTokenResponse {
    fn from(token: api_token::Model) -> Self {
        Self {
            id: token.id,
            name: token.name,
            token_prefix: token.token_prefix,
            scopes: serde_json::from_str(&token.scopes).unwrap_or_default(),
            expires_at: token.expires_at,
            last_used_at: token.last_used_at,
            last_used_ip: token.last_used_ip,
            is_active: token.is_active,
            created_at: token.created_at,
            updated_at: token.updated_at,
        }
    }
}

/// A new API token, with the secret shown this once.
#[derive(Debug, Object)]
pub struct ApiTokenCreated {
    /// The token's record (never used yet, active).
    #[oai(flatten)]
    pub record: ApiTokenResponse,
    /// The token. Store it now: it cannot be shown again.
    pub token: String,
}

#[derive(Debug, ApiResponse)]
enum TokenCreated {
    /// Created.
    #[oai(status = 201)]
    Created(Json<ApiTokenCreated>),
}

/// `POST /api/v1/auth/tokens` body.
#[derive(Debug, Object)]
pub struct ApiTokenRequest {
    /// Label, 1–100 characters.
    pub name: Name,
    /// `read`, `write`, `full` (default `["full"]`); at least one.
    #[oai(validator(min_items = 1))]
    pub scopes: Option<Vec<Scope>>,
    /// Expiry, ISO 8601 (UTC if no offset), in the future.
    pub expires_at: Option<Instant>,
}

thub_plugin_sdk::declared_string! {
    /// An instant as a client sends it: ISO 8601, UTC when it has no offset
    /// (`api_tokens::parse_instant`); every RFC 3339 `date-time` is one.
    pub struct Instant;
    schema = |schema| schema.format = Some("date-time");
}

/// `PATCH /api/v1/auth/tokens/{id}` body.
#[derive(Debug, Object)]
pub struct ApiTokenRename {
    /// New label.
    pub name: Name,
}

/// `GET /api/v1/auth/tokens`.
#[derive(Debug, Object)]
pub struct ApiTokenList {
    /// This page, newest first.
    pub tokens: Vec<ApiTokenResponse>,
    /// How many tokens match in all.
    pub total: u64,
}

/// `GET /api/v1/token`.
#[derive(Debug, Object)]
pub struct SatelliteTokenResponse {
    /// The RS256 token for the satellite.
    pub target_token: String,
    /// Seconds until it expires.
    pub expires_in: i64,
}

/// `GET /api/v1/token/audiences`.
#[derive(Debug, Object)]
pub struct AudiencesResponse {
    /// Allow-listed service audiences (any active user's username is also accepted).
    pub allowed_audiences: Vec<String>,
    /// Always true: thub always has signing keys.
    pub idp_configured: bool,
}

/// `POST /api/v1/verify` body.
#[derive(Debug, Object)]
pub struct VerifyRequest {
    /// The satellite token to check.
    pub token: String,
}

/// `POST /api/v1/verify` answer: `valid` with the claims and the user's current identity, or
/// `valid: false` with an error code and message.
#[derive(Debug, Object)]
pub struct VerifyResponse {
    /// Whether the token is valid for the caller.
    pub valid: bool,
    /// User id.
    #[oai(skip_serializing_if_is_none)]
    pub sub: Option<String>,
    /// The user's current email.
    #[oai(skip_serializing_if_is_none)]
    pub email: Option<String>,
    /// The user's current username.
    #[oai(skip_serializing_if_is_none)]
    pub username: Option<String>,
    /// The role claim.
    #[oai(skip_serializing_if_is_none)]
    pub role: Option<String>,
    /// The audience claim.
    #[oai(skip_serializing_if_is_none)]
    pub aud: Option<String>,
    /// Expiry.
    #[oai(skip_serializing_if_is_none)]
    pub exp: Option<i64>,
    /// Issued at.
    #[oai(skip_serializing_if_is_none)]
    pub iat: Option<i64>,
    /// Error code when invalid.
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
    /// Error message when invalid.
    #[oai(skip_serializing_if_is_none)]
    pub message: Option<String>,
}

impl VerifyResponse {
    fn invalid(code: &str, message: String) -> Self {
        Self {
            valid: false,
            sub: None,
            email: None,
            username: None,
            role: None,
            aud: None,
            exp: None,
            iat: None,
            error: Some(code.to_owned()),
            message: Some(message),
        }
    }
}

#[derive(Debug, ApiResponse)]
enum JwksResponse {
    /// The key set.
    #[oai(status = 200)]
    Keys(Json<Value>, #[oai(header = "ETag")] String, #[oai(header = "Cache-Control")] String),
    /// Unchanged since the ETag the client has.
    #[oai(status = 304)]
    NotModified(#[oai(header = "ETag")] String, #[oai(header = "Cache-Control")] String),
}

/// `/api/v1/auth/*`.
pub struct AuthApi {
    accounts: Arc<Accounts>,
}

/// `/api/v1/users/*`.
pub struct UsersApi {
    accounts: Arc<Accounts>,
}

/// `/api/v1/token*`, `/api/v1/verify`, `/.well-known/*`.
pub struct IdpApi {
    accounts: Arc<Accounts>,
}

/// The accounts APIs over one service.
pub fn apis(accounts: Arc<Accounts>) -> (AuthApi, UsersApi, IdpApi) {
    (AuthApi { accounts: accounts.clone() }, UsersApi { accounts: accounts.clone() }, IdpApi { accounts })
}

#[OpenApi(prefix_path = "/api/v1/auth", tag = "AccountTags::Auth")]
impl AuthApi {
    /// Register an account; answers with the account and a token pair.
    #[oai(path = "/register", method = "post")]
    async fn register(&self, request: &Request, body: Json<RegisterRequest>) -> Result<Registered, ApiError> {
        let body = body.0;
        let new = NewUser {
            username: body.username.into(),
            email: Some(body.email.into()),
            full_name: body.full_name.into(),
            password: body.password.into(),
            role: Role::User,
        };
        let (user, pair) = self.accounts.register(new, &client_address(request)).await?;
        Ok(Registered::Created(Json(RegisterResponse {
            user: user.into(),
            access_token: pair.access_token,
            refresh_token: pair.refresh_token,
            token_type: "bearer".to_owned(),
        })))
    }

    /// Log in with the OAuth2 password form (`username` may be the email); answers with a token
    /// pair and the account.
    #[oai(path = "/login", method = "post")]
    async fn login(&self, request: &Request, form: Form<LoginForm>) -> Result<Json<LoginResponse>, ApiError> {
        let form = form.0;
        if form.grant_type.as_deref().is_some_and(|grant| grant != PASSWORD_GRANT) {
            return Err(ApiError::validation(vec![thub_plugin_sdk::FieldError::new(
                "string_pattern_mismatch",
                &["body", "grant_type"],
                "String should match pattern '^password$'",
                Value::from(form.grant_type.map(String::from).unwrap_or_default()),
            )]));
        }
        let user = self.accounts.check_password(&form.username, &form.password, &client_address(request)).await?;
        let pair = self.accounts.open_session(&user).await?;
        Ok(Json(LoginResponse {
            access_token: pair.access_token,
            refresh_token: pair.refresh_token,
            token_type: "bearer".to_owned(),
            user: user.into(),
        }))
    }

    /// Exchange a refresh token for a new pair. Each refresh token works once; reusing one
    /// revokes its session.
    #[oai(path = "/refresh", method = "post")]
    async fn refresh(&self, request: &Request, body: Json<RefreshRequest>) -> Result<Json<TokenResponse>, ApiError> {
        let pair = self.accounts.refresh(&body.0.refresh_token, &client_address(request)).await?;
        Ok(Json(pair.into()))
    }

    /// End this session: its access and refresh tokens stop working.
    #[oai(path = "/logout", method = "post")]
    async fn logout(&self, user: CurrentUser) -> Result<NoContent, ApiError> {
        self.accounts.logout(&user.0).await?;
        Ok(NoContent::NoContent)
    }

    /// The caller's account.
    #[oai(path = "/me", method = "get")]
    async fn me(&self, user: CurrentUser) -> Result<Json<UserResponse>, ApiError> {
        Ok(Json(self.accounts.user(user.0.user_id).await?.into()))
    }

    /// Change the caller's password; their other sessions are revoked.
    #[oai(path = "/me/password", method = "put")]
    async fn change_password(&self, user: CurrentUser, body: Json<PasswordChange>) -> Result<NoContent, ApiError> {
        self.accounts.change_password(&user.0, &body.0.current_password, &body.0.new_password).await?;
        Ok(NoContent::NoContent)
    }

    /// What the sign-up flow needs to know.
    #[oai(path = "/config", method = "get")]
    async fn config(&self) -> Json<AuthConfigResponse> {
        Json(AuthConfigResponse {
            require_email_verification: false,
            smtp_configured: false,
            password_reset_enabled: false,
        })
    }

    /// Create an API token (needs a password session, not another API token).
    #[oai(path = "/tokens", method = "post")]
    async fn create_token(&self, user: CurrentUser, body: Json<ApiTokenRequest>) -> Result<TokenCreated, ApiError> {
        let body = body.0;
        let scopes = body.scopes.map(|scopes| scopes.into_iter().map(String::from).collect());
        let request = TokenRequest { name: body.name.into(), scopes, expires_at: body.expires_at.map(String::from) };
        let (row, token) = self.accounts.create_api_token(&user.0, request).await?;
        Ok(TokenCreated::Created(Json(ApiTokenCreated { record: row.into(), token })))
    }

    /// The caller's API tokens, newest first.
    #[oai(path = "/tokens", method = "get")]
    async fn list_tokens(
        &self,
        user: CurrentUser,
        #[oai(default)] skip: Query<Count>,
        #[oai(default = "hundred")] limit: Query<Limit>,
        #[oai(default)] include_inactive: Query<bool>,
    ) -> Result<Json<ApiTokenList>, ApiError> {
        let (skip, limit) = (skip.0.get(), limit.0.get());
        let (tokens, total) = self.accounts.list_api_tokens(user.0.user_id, include_inactive.0, skip, limit).await?;
        Ok(Json(ApiTokenList { tokens: tokens.into_iter().map(Into::into).collect(), total }))
    }

    /// One of the caller's API tokens.
    #[oai(path = "/tokens/:token_id", method = "get")]
    async fn get_token(&self, user: CurrentUser, token_id: Path<i64>) -> Result<Json<ApiTokenResponse>, ApiError> {
        Ok(Json(self.accounts.api_token(user.0.user_id, token_id.0).await?.into()))
    }

    /// Rename one of the caller's API tokens.
    #[oai(path = "/tokens/:token_id", method = "patch")]
    async fn rename_token(
        &self,
        user: CurrentUser,
        token_id: Path<i64>,
        body: Json<ApiTokenRename>,
    ) -> Result<Json<ApiTokenResponse>, ApiError> {
        Ok(Json(self.accounts.rename_api_token(&user.0, token_id.0, &body.0.name).await?.into()))
    }

    /// Revoke one of the caller's API tokens.
    #[oai(path = "/tokens/:token_id", method = "delete")]
    async fn revoke_token(&self, user: CurrentUser, token_id: Path<i64>) -> Result<NoContent, ApiError> {
        self.accounts.revoke_api_token(&user.0, token_id.0).await?;
        Ok(NoContent::NoContent)
    }
}

fn hundred() -> Limit {
    Limit(100)
}

#[OpenApi(prefix_path = "/api/v1/users", tag = "AccountTags::Users")]
impl UsersApi {
    /// Every account, in id order (administrators).
    #[oai(path = "/", method = "get")]
    async fn list(
        &self,
        _admin: AdminUser,
        #[oai(default)] skip: Query<Count>,
        #[oai(default)] limit: Query<Limit>,
    ) -> Result<Json<Vec<UserResponse>>, ApiError> {
        let (skip, limit) = (skip.0.get(), limit.0.get());
        let users = self.accounts.list_users(skip, limit).await?;
        Ok(Json(users.into_iter().map(Into::into).collect()))
    }

    /// The caller's account.
    #[oai(path = "/me", method = "get")]
    async fn me(&self, user: CurrentUser) -> Result<Json<UserResponse>, ApiError> {
        Ok(Json(self.accounts.user(user.0.user_id).await?.into()))
    }

    /// Change the caller's profile.
    #[oai(path = "/me", method = "put")]
    async fn update_me(&self, user: CurrentUser, body: Json<UserUpdate>) -> Result<Json<UserResponse>, ApiError> {
        let id = user.0.user_id;
        Ok(Json(self.accounts.update_user(&user.0, id, body.0.into()).await?.into()))
    }

    /// Whether a username could be registered.
    #[oai(path = "/check-username/:username", method = "get")]
    async fn check_username(&self, username: Path<String>) -> Result<Json<UsernameAvailability>, ApiError> {
        let available = self.accounts.username_available(&username.0).await?;
        Ok(Json(UsernameAvailability { available, username: username.0.to_lowercase() }))
    }

    /// Whether an email could be registered.
    #[oai(path = "/check-email/:email", method = "get")]
    async fn check_email(&self, email: Path<String>) -> Result<Json<EmailAvailability>, ApiError> {
        let available = self.accounts.email_available(&email.0).await?;
        Ok(Json(EmailAvailability { available, email: email.0.to_lowercase() }))
    }

    /// An account (the caller's own, or any for administrators).
    #[oai(path = "/:user_id", method = "get")]
    async fn get(&self, user: CurrentUser, user_id: Path<i64>) -> Result<Json<UserResponse>, ApiError> {
        Ok(Json(self.accounts.read_user(&user.0, user_id.0).await?.into()))
    }

    /// Change an account (the caller's own, or any for administrators).
    #[oai(path = "/:user_id", method = "put")]
    async fn update(
        &self,
        user: CurrentUser,
        user_id: Path<i64>,
        body: Json<UserUpdate>,
    ) -> Result<Json<UserResponse>, ApiError> {
        Ok(Json(self.accounts.update_user(&user.0, user_id.0, body.0.into()).await?.into()))
    }

    /// Delete an account and everything it owns (the caller's own, or any for administrators).
    #[oai(path = "/:user_id", method = "delete")]
    async fn delete(&self, user: CurrentUser, user_id: Path<i64>) -> Result<NoContent, ApiError> {
        self.accounts.delete_user(&user.0, user_id.0).await?;
        Ok(NoContent::NoContent)
    }

    /// Deactivate an account and revoke its sessions (administrators).
    #[oai(path = "/:user_id/deactivate", method = "patch")]
    async fn deactivate(&self, user: CurrentUser, user_id: Path<i64>) -> Result<Json<UserResponse>, ApiError> {
        Ok(Json(self.accounts.set_active(&user.0, user_id.0, false).await?.into()))
    }

    /// Reactivate an account (administrators).
    #[oai(path = "/:user_id/activate", method = "patch")]
    async fn activate(&self, user: CurrentUser, user_id: Path<i64>) -> Result<Json<UserResponse>, ApiError> {
        if !user.0.is_admin() {
            return Err(ApiError::forbidden("auth.not_admin", "Operation not permitted"));
        }
        Ok(Json(self.accounts.set_active(&user.0, user_id.0, true).await?.into()))
    }
}

#[OpenApi(tag = "AccountTags::Identity")]
impl IdpApi {
    /// The public keys satellite services verify hub tokens with (current and recently
    /// rotated-out keys).
    #[oai(path = "/.well-known/jwks.json", method = "get")]
    async fn jwks(
        &self,
        #[oai(name = "If-None-Match")] if_none_match: Header<Option<String>>,
    ) -> Result<JwksResponse, ApiError> {
        let jwks = self.accounts.idp.jwks().await.map_err(|error| ApiError::internal(format!("{error:#}")))?;
        let cache_control = format!("public, max-age={}", self.accounts.idp.jwks_max_age());
        if if_none_match.0.as_deref().is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == jwks.etag)) {
            return Ok(JwksResponse::NotModified(jwks.etag, cache_control));
        }
        Ok(JwksResponse::Keys(Json(jwks.document), jwks.etag, cache_control))
    }

    /// OpenID Connect discovery: issuer, JWKS URI, algorithms.
    #[oai(path = "/.well-known/openid-configuration", method = "get")]
    async fn openid_configuration(&self, request: &Request) -> Json<Value> {
        let base = self.accounts.public_base(request);
        let issuer = self.accounts.idp.issuer();
        Json(serde_json::json!({
            "issuer": issuer,
            "jwks_uri": format!("{base}/.well-known/jwks.json"),
            "token_endpoint": format!("{base}/api/v1/auth/login"),
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "grant_types_supported": ["password", "refresh_token"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "role"],
        }))
    }

    /// A 60-second RS256 token for a satellite: an allow-listed service or an active user's
    /// username (the audience is trimmed and lowercased).
    #[oai(path = "/api/v1/token", method = "get")]
    async fn token(&self, user: CurrentUser, aud: Query<Audience>) -> Result<Json<SatelliteTokenResponse>, ApiError> {
        let (target_token, expires_in) = self.accounts.satellite_token(&user.0, &aud.0).await?;
        Ok(Json(SatelliteTokenResponse { target_token, expires_in }))
    }

    /// The allow-listed service audiences.
    #[oai(path = "/api/v1/token/audiences", method = "get")]
    async fn audiences(&self, _user: CurrentUser) -> Json<AudiencesResponse> {
        Json(AudiencesResponse {
            allowed_audiences: self.accounts.idp.allowed_audiences().to_vec(),
            idp_configured: true,
        })
    }

    /// Verify a satellite token on behalf of the calling service: the token's audience must be
    /// the caller's username. Token problems answer 200 with `valid: false` and a code.
    #[oai(path = "/api/v1/verify", method = "post")]
    async fn verify(&self, user: CurrentUser, body: Json<VerifyRequest>) -> Result<Json<VerifyResponse>, ApiError> {
        let outcome = self.accounts.verify_satellite_token(&user.0, &body.0.token).await?;
        Ok(Json(match outcome {
            Ok((claims, subject)) => VerifyResponse {
                valid: true,
                sub: claims.sub,
                email: Some(subject.email),
                username: Some(subject.username),
                role: claims.role,
                aud: claims.aud,
                exp: Some(claims.exp),
                iat: claims.iat,
                error: None,
                message: None,
            },
            Err(failure) => VerifyResponse::invalid(failure.code, failure.message),
        }))
    }
}
