//! Hub session tokens (HS256): an access token and a refresh token per session, both carrying
//! the session id (`sid`), a unique `jti` and `iat`. The algorithm is pinned, `exp` is checked
//! against the injected clock with no leeway, and the `type` claim keeps access and refresh
//! tokens from standing in for each other.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Which of the pair a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Authenticates requests.
    Access,
    /// Buys a new pair, once.
    Refresh,
}

/// The claims of a hub session token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionClaims {
    /// User id, as a string.
    pub sub: String,
    /// Username when issued (informational: the user is re-read on every request).
    pub username: String,
    /// Role when issued (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Access or refresh.
    #[serde(rename = "type")]
    pub kind: TokenKind,
    /// Session id.
    pub sid: String,
    /// Unique token id.
    pub jti: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
}

impl SessionClaims {
    /// The user id, if `sub` is one.
    pub fn user_id(&self) -> Option<i64> {
        self.sub.parse().ok()
    }
}

/// A freshly issued pair.
#[derive(Debug, Clone)]
pub struct TokenPair {
    /// Access token.
    pub access_token: String,
    /// Refresh token.
    pub refresh_token: String,
    /// The refresh token's `jti`, which the session row remembers.
    pub refresh_jti: String,
    /// When the refresh token expires.
    pub refresh_expires_at: DateTime<Utc>,
}

/// Issues and checks session tokens with one HS256 secret.
pub struct TokenCodec {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

impl TokenCodec {
    /// A codec over `secret` with these lifetimes.
    pub fn new(secret: &[u8], access_ttl: Duration, refresh_ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against the injected clock below, with no leeway.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl,
            refresh_ttl,
        }
    }

    /// The access-token lifetime.
    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// The refresh-token lifetime.
    pub fn refresh_ttl(&self) -> Duration {
        self.refresh_ttl
    }

    /// Issues an access and a refresh token for `user_id` in session `sid`.
    pub fn issue(
        &self,
        user_id: i64,
        username: &str,
        role: &str,
        sid: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<TokenPair> {
        let claims = |kind, ttl: Duration| SessionClaims {
            sub: user_id.to_string(),
            username: username.to_owned(),
            role: (kind == TokenKind::Access).then(|| role.to_owned()),
            kind,
            sid: sid.to_owned(),
            jti: uuid::Uuid::new_v4().to_string(),
            iat: now.timestamp(),
            exp: (now + ttl).timestamp(),
        };
        let access = claims(TokenKind::Access, self.access_ttl);
        let refresh = claims(TokenKind::Refresh, self.refresh_ttl);
        let header = Header::new(Algorithm::HS256);
        Ok(TokenPair {
            access_token: jsonwebtoken::encode(&header, &access, &self.encoding)?,
            refresh_token: jsonwebtoken::encode(&header, &refresh, &self.encoding)?,
            refresh_jti: refresh.jti,
            refresh_expires_at: now + self.refresh_ttl,
        })
    }

    /// The claims of `token` if it is a well-signed, unexpired token of `kind`.
    pub fn decode(&self, token: &str, kind: TokenKind, now: DateTime<Utc>) -> Option<SessionClaims> {
        let claims = jsonwebtoken::decode::<SessionClaims>(token, &self.decoding, &self.validation).ok()?.claims;
        (claims.kind == kind && claims.exp > now.timestamp()).then_some(claims)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn codec() -> TokenCodec {
        crate::app::install_crypto_providers();
        TokenCodec::new(b"0123456789abcdef0123456789abcdef", Duration::minutes(30), Duration::days(7))
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn pairs_decode_only_as_their_own_kind_and_expire() {
        let codec = codec();
        let pair = codec.issue(7, "alice", "user", "sid-1", now()).unwrap();
        let access = codec.decode(&pair.access_token, TokenKind::Access, now()).unwrap();
        assert_eq!(access.user_id(), Some(7));
        assert_eq!(access.sid, "sid-1");
        assert!(codec.decode(&pair.access_token, TokenKind::Refresh, now()).is_none());
        assert!(codec.decode(&pair.refresh_token, TokenKind::Access, now()).is_none());
        assert!(codec.decode(&pair.refresh_token, TokenKind::Refresh, now()).is_some());
        // Expired exactly at exp, with no leeway.
        assert!(codec.decode(&pair.access_token, TokenKind::Access, now() + Duration::minutes(30)).is_none());
        // Two pairs minted in the same second differ (unique jti).
        let again = codec.issue(7, "alice", "user", "sid-1", now()).unwrap();
        assert_ne!(again.access_token, pair.access_token);
    }

    #[test]
    fn tampered_foreign_and_unsigned_tokens_are_refused() {
        let codec = codec();
        let pair = codec.issue(7, "alice", "admin", "sid-1", now()).unwrap();
        let mut parts: Vec<&str> = pair.access_token.split('.').collect();
        let forged_claims = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"sub":"1","username":"root","type":"access","sid":"x","jti":"y","iat":1,"exp":99999999999}"#,
        );
        parts[1] = &forged_claims;
        assert!(codec.decode(&parts.join("."), TokenKind::Access, now()).is_none(), "tampered payload");

        let other = TokenCodec::new(b"another secret that is long enough!", Duration::minutes(30), Duration::days(7));
        let foreign = other.issue(7, "alice", "user", "sid-1", now()).unwrap();
        assert!(codec.decode(&foreign.access_token, TokenKind::Access, now()).is_none(), "other secret");

        let none_header =
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, br#"{"alg":"none","typ":"JWT"}"#);
        let unsigned = format!("{none_header}.{}.", parts[1]);
        assert!(codec.decode(&unsigned, TokenKind::Access, now()).is_none(), "alg none");
        assert!(codec.decode("not-a-jwt", TokenKind::Access, now()).is_none());
    }
}
