//! Reading credentials from a request: the `session` cookie, `Authorization: Bearer`, `?token=`
//! on WebSocket upgrades, and the client's address; the host's `Authenticator`.

use async_trait::async_trait;
use poem::Request;
use poem::http::header;
use sea_orm::EntityTrait;
use thub_plugin_sdk::{ApiError, AuthMethod, Authenticator, Principal};

use super::entity::user;
use super::tokens::TokenKind;
use super::{Accounts, SESSION_COOKIE, api_tokens, principal};

/// The client address of a request, for rate limits and logs: resolved once at the edge through
/// `server.trusted_proxies` (see [`crate::client`]).
pub fn client_address(request: &Request) -> String {
    crate::client::client(request).address_text()
}

fn bearer(request: &Request) -> Option<&str> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn session_cookie(request: &Request) -> Option<String> {
    request.cookie().get(SESSION_COOKIE).map(|cookie| cookie.value_str().to_owned()).filter(|value| !value.is_empty())
}

fn is_websocket_upgrade(request: &Request) -> bool {
    request
        .headers()
        .get(header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"))
}

fn query_token(request: &Request) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct TokenQuery {
        token: Option<String>,
    }
    request.params::<TokenQuery>().ok()?.token.filter(|token| !token.is_empty())
}

#[async_trait]
impl Authenticator for Accounts {
    /// `Authorization: Bearer` wins when present: credentials a client sends on purpose beat a
    /// cookie the browser attaches on its own (a stale `session` cookie never turns a valid
    /// token into a 401). Then the `session` cookie (Tufts Hub's browsers), then — on
    /// WebSocket upgrades only — `?token=`.
    async fn authenticate(&self, request: &Request) -> Result<Option<Principal>, ApiError> {
        let token = match bearer(request) {
            Some(token) => token.to_owned(),
            None => match session_cookie(request) {
                Some(cookie) => cookie,
                None if is_websocket_upgrade(request) => match query_token(request) {
                    Some(token) => token,
                    None => return Ok(None),
                },
                None => return Ok(None),
            },
        };
        self.authenticate_token(&token, Some(&client_address(request))).await.map(Some)
    }
}

impl Accounts {
    /// The principal behind a bearer token or session cookie value; `client` is recorded as an
    /// API token's last-used address.
    pub async fn authenticate_token(&self, token: &str, client: Option<&str>) -> Result<Principal, ApiError> {
        if token.starts_with(api_tokens::PREFIX) {
            return self.authenticate_api_token(token, client).await;
        }
        let claims =
            self.tokens.decode(token, TokenKind::Access, self.clock.now()).ok_or_else(ApiError::invalid_credentials)?;
        let user_id = claims.user_id().ok_or_else(ApiError::invalid_credentials)?;
        if let Some(principal) = self.cache.session(&claims.sid, user_id) {
            return Ok(principal);
        }
        let ticket = self.cache.ticket();
        if self.session_is_revoked(&claims.sid).await? {
            return Err(ApiError::invalid_credentials());
        }
        let user = user::Entity::find_by_id(user_id).one(&self.db).await?.ok_or_else(ApiError::invalid_credentials)?;
        self.cache.fill_session(ticket, &claims.sid, &user);
        Ok(principal(user, AuthMethod::Session { session_id: claims.sid }))
    }

    /// The hub's own base URL: `server.public_url`, or what the request says.
    pub fn public_base(&self, request: &Request) -> String {
        if !self.public_url.is_empty() {
            return self.public_url.trim_end_matches('/').to_owned();
        }
        let host = request.headers().get(header::HOST).and_then(|value| value.to_str().ok()).unwrap_or("localhost");
        let scheme = if crate::client::client(request).https { "https" } else { "http" };
        format!("{scheme}://{host}")
    }

    /// Whether cookies must be `Secure`: the hub is reached over HTTPS (directly, or at a
    /// trusted proxy that says so).
    pub fn is_https(&self, request: &Request) -> bool {
        self.public_url.starts_with("https://") || crate::client::client(request).https
    }
}
