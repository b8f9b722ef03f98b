//! The identity provider: persisted RS256 signing keys with `kid`s and rotation with overlap,
//! the JWKS satellites verify against offline, and short-lived satellite tokens.
//!
//! Keys live in `signing_keys` (PKCS#1 DER, base64): generated on first start, never silently
//! regenerated. `thub keys rotate` adds a key and retires the previous one; a retired key stays
//! in the JWKS for `idp.key_overlap_hours` so tokens it signed keep verifying. Every instance
//! re-reads the key set at most [`KEY_CACHE_SECONDS`] after a change elsewhere.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::Duration;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::traits::PublicKeyParts;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use thub_plugin_sdk::{Clock, Principal};
use tokio::sync::RwLock;

use super::AccountsError;
use super::entity::{signing_key, user};
use crate::config::IdpConfig;

/// How long an instance trusts its cached key set before re-reading the database.
pub const KEY_CACHE_SECONDS: u64 = 30;

/// The issuer satellites of the original SyftHub expect when none is configured.
pub const DEFAULT_ISSUER: &str = "https://hub.syft.com";

/// The claims of a satellite token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SatelliteClaims {
    /// User id, as a string.
    #[serde(default)]
    pub sub: Option<String>,
    /// The hub.
    #[serde(default)]
    pub iss: Option<String>,
    /// The satellite (service name or username).
    #[serde(default)]
    pub aud: Option<String>,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Issued at (Unix seconds).
    #[serde(default)]
    pub iat: Option<i64>,
    /// The user's role when issued.
    #[serde(default)]
    pub role: Option<String>,
    /// Unique token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// Why a satellite token failed verification: a stable code and a message, as the reference's
/// `POST /api/v1/verify` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyFailure {
    /// `invalid_token_format`, `missing_kid`, `unknown_key`, …
    pub code: &'static str,
    /// Human-readable.
    pub message: String,
}

impl VerifyFailure {
    /// A failure with this code and message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

fn failure(code: &'static str, message: impl Into<String>) -> VerifyFailure {
    VerifyFailure::new(code, message)
}

/// The JWKS document and its entity tag.
#[derive(Debug, Clone)]
pub struct Jwks {
    /// `{"keys":[…]}`.
    pub document: serde_json::Value,
    /// A strong ETag over the serialised document.
    pub etag: String,
}

struct KeySet {
    loaded_at: Instant,
    signer: Option<(String, EncodingKey)>,
    verifiers: HashMap<String, DecodingKey>,
    jwks: Jwks,
}

/// The identity provider.
pub struct Idp {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    issuer: String,
    token_seconds: i64,
    allowed_audiences: Vec<String>,
    key_bits: usize,
    overlap: Duration,
    jwks_max_age: u64,
    cache: RwLock<Option<Arc<KeySet>>>,
}

impl Idp {
    /// Opens the IdP and makes sure a signing key exists (generating one on first start).
    pub async fn open(
        db: DatabaseConnection,
        clock: Arc<dyn Clock>,
        config: &IdpConfig,
        public_url: &str,
    ) -> anyhow::Result<Self> {
        let issuer = if !config.issuer.is_empty() {
            config.issuer.clone()
        } else if !public_url.is_empty() {
            public_url.trim_end_matches('/').to_owned()
        } else {
            DEFAULT_ISSUER.to_owned()
        };
        let mut allowed_audiences: Vec<String> =
            config.allowed_audiences.iter().map(|audience| normalize_audience(audience)).collect();
        allowed_audiences.sort();
        allowed_audiences.dedup();
        let idp = Self {
            db,
            clock,
            issuer,
            token_seconds: config.satellite_token_seconds,
            allowed_audiences,
            key_bits: config.rsa_key_bits,
            overlap: Duration::hours(config.key_overlap_hours),
            jwks_max_age: config.jwks_max_age_seconds,
            cache: RwLock::new(None),
        };
        if idp.current_key().await?.is_none() {
            idp.add_first_key().await?;
        }
        Ok(idp)
    }

    /// `iss` of every satellite token.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `Cache-Control: max-age` of the JWKS.
    pub fn jwks_max_age(&self) -> u64 {
        self.jwks_max_age
    }

    /// Satellite-token lifetime in seconds.
    pub fn token_seconds(&self) -> i64 {
        self.token_seconds
    }

    /// Allow-listed service audiences, normalised and sorted.
    pub fn allowed_audiences(&self) -> &[String] {
        &self.allowed_audiences
    }

    /// Generates a new key, makes it the signing key and retires the previous ones (they stay
    /// in the JWKS for the overlap). Returns the new `kid`.
    pub async fn rotate(&self) -> anyhow::Result<String> {
        let previous = self.current_key().await?;
        let kid = self.add_key().await?;
        if let Some(previous) = previous {
            let mut previous: signing_key::ActiveModel = previous.into();
            previous.retired_at = Set(Some(self.clock.now()));
            previous.update(&self.db).await?;
        }
        *self.cache.write().await = None;
        Ok(kid)
    }

    /// The JWKS: the signing key and every key retired less than the overlap ago.
    pub async fn jwks(&self) -> anyhow::Result<Jwks> {
        Ok(self.keys().await?.jwks.clone())
    }

    /// Signs a satellite token for user `user_id` (role `role`) and audience `audience`.
    pub async fn mint(&self, user_id: i64, role: &str, audience: &str) -> anyhow::Result<String> {
        let keys = self.keys().await?;
        let (kid, key) = keys.signer.as_ref().ok_or_else(|| anyhow::anyhow!("no signing key"))?;
        let now = self.clock.now().timestamp();
        let claims = SatelliteClaims {
            sub: Some(user_id.to_string()),
            iss: Some(self.issuer.clone()),
            aud: Some(audience.to_owned()),
            exp: now + self.token_seconds,
            iat: Some(now),
            role: Some(role.to_owned()),
            jti: Some(uuid::Uuid::new_v4().to_string()),
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, key)?)
    }

    /// Verifies a satellite token for `audience`, with the reference's checks in its order.
    pub async fn verify(&self, token: &str, audience: &str) -> anyhow::Result<Result<SatelliteClaims, VerifyFailure>> {
        let header = match jsonwebtoken::decode_header(token) {
            Ok(header) => header,
            Err(error) => return Ok(Err(failure("invalid_token_format", format!("Token is malformed: {error}")))),
        };
        let Some(kid) = header.kid else {
            return Ok(Err(failure("missing_kid", "Token header has no key id (kid).")));
        };
        let keys = self.keys().await?;
        let Some(key) = keys.verifiers.get(&kid) else {
            return Ok(Err(failure(
                "unknown_key",
                format!("Unknown key ID: {kid}. The token may be from a different issuer."),
            )));
        };
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = match jsonwebtoken::decode::<SatelliteClaims>(token, key, &validation) {
            Ok(data) => data.claims,
            Err(error) => {
                use jsonwebtoken::errors::ErrorKind;
                return Ok(Err(match error.kind() {
                    ErrorKind::InvalidSignature => failure("invalid_signature", "The token signature is invalid."),
                    ErrorKind::InvalidAlgorithm => failure("verification_error", "The token algorithm is not RS256."),
                    ErrorKind::Json(_) | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
                        failure("decode_error", format!("The token could not be decoded: {error}"))
                    }
                    _ => failure("verification_error", format!("The token could not be verified: {error}")),
                }));
            }
        };
        let now = self.clock.now().timestamp();
        if claims.exp <= now {
            return Ok(Err(failure("token_expired", "The token has expired.")));
        }
        if claims.iat.is_some_and(|iat| iat > now) {
            return Ok(Err(failure("verification_error", "The token was issued in the future.")));
        }
        match claims.iss.as_deref() {
            Some(iss) if iss == self.issuer => {}
            Some(iss) => {
                return Ok(Err(failure("invalid_issuer", format!("Token issuer '{iss}' is not '{}'.", self.issuer))));
            }
            None => return Ok(Err(failure("verification_error", "The token has no issuer (iss)."))),
        }
        match claims.aud.as_deref() {
            Some(aud) if aud == audience => {}
            Some(aud) => {
                return Ok(Err(failure(
                    "audience_mismatch",
                    format!(
                        "Token audience '{aud}' does not match authorized audience '{audience}'. You are not authorized to verify this token."
                    ),
                )));
            }
            None => return Ok(Err(failure("verification_error", "The token has no audience (aud)."))),
        }
        Ok(Ok(claims))
    }

    async fn keys(&self) -> anyhow::Result<Arc<KeySet>> {
        if let Some(keys) = self.cache.read().await.as_ref()
            && keys.loaded_at.elapsed().as_secs() < KEY_CACHE_SECONDS
        {
            return Ok(keys.clone());
        }
        let keys = Arc::new(self.load_keys().await?);
        *self.cache.write().await = Some(keys.clone());
        Ok(keys)
    }

    async fn load_keys(&self) -> anyhow::Result<KeySet> {
        let cutoff = self.clock.now() - self.overlap;
        let rows = signing_key::Entity::find()
            .filter(
                sea_orm::Condition::any()
                    .add(signing_key::Column::RetiredAt.is_null())
                    .add(signing_key::Column::RetiredAt.gt(cutoff)),
            )
            .order_by_asc(signing_key::Column::Id)
            .all(&self.db)
            .await?;
        let mut signer = None;
        let mut verifiers = HashMap::new();
        let mut jwks = Vec::new();
        for row in &rows {
            let der = STANDARD.decode(&row.private_key_der)?;
            let private = rsa::PrivateKey::from_pkcs1_der(&der)
                .map_err(|error| anyhow::anyhow!("signing key {} is unreadable: {error}", row.kid))?;
            let (n, e) = (private.n_bytes(), private.e_bytes());
            verifiers.insert(row.kid.clone(), DecodingKey::from_rsa_raw_components(&n, &e));
            jwks.push(json!({
                "kty": "RSA",
                "kid": row.kid,
                "use": "sig",
                "alg": "RS256",
                "n": URL_SAFE_NO_PAD.encode(&n),
                "e": URL_SAFE_NO_PAD.encode(&e),
            }));
            if row.retired_at.is_none() {
                // Rows are in id order, so the newest active key wins.
                signer = Some((row.kid.clone(), EncodingKey::from_rsa_der(&der)));
            }
        }
        // Newest key first, as most JWKS consumers try keys in order.
        jwks.reverse();
        let document = json!({ "keys": jwks });
        let etag = format!("\"{}\"", hex::encode(&Sha256::digest(document.to_string().as_bytes())[..16]));
        Ok(KeySet { loaded_at: Instant::now(), signer, verifiers, jwks: Jwks { document, etag } })
    }

    async fn current_key(&self) -> anyhow::Result<Option<signing_key::Model>> {
        Ok(signing_key::Entity::find()
            .filter(signing_key::Column::RetiredAt.is_null())
            .order_by_desc(signing_key::Column::Id)
            .one(&self.db)
            .await?)
    }

    /// The first signing key, created once even when several instances start together on an
    /// empty database: they race to claim a row in `settings` (its key is unique), the winner
    /// inserts the key, the others wait for it. Should the winner die first, a waiter adds the
    /// key itself after a while.
    async fn add_first_key(&self) -> anyhow::Result<()> {
        let claim = super::entity::setting::ActiveModel {
            key: Set(FIRST_KEY_CLAIM.to_owned()),
            value: Set(uuid::Uuid::new_v4().to_string()),
            created_at: Set(self.clock.now()),
        };
        let claimed = super::entity::setting::Entity::insert(claim)
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(super::entity::setting::Column::Key).do_nothing().to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?
            == 1;
        if claimed {
            self.add_key().await?;
            return Ok(());
        }
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.current_key().await?.is_some() {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        tracing::warn!("no signing key appeared from the instance that claimed its creation; creating one");
        self.add_key().await?;
        Ok(())
    }

    async fn add_key(&self) -> anyhow::Result<String> {
        let bits = self.key_bits;
        let der = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<u8>> {
            let key = rsa::PrivateKey::new(&mut getrandom::SysRng, bits)?;
            Ok(key.to_pkcs1_der()?.as_bytes().to_vec())
        })
        .await??;
        let now = self.clock.now();
        let kid = format!("thub-{}-{}", now.format("%Y%m%d"), &uuid::Uuid::new_v4().simple().to_string()[..8]);
        signing_key::ActiveModel {
            kid: Set(kid.clone()),
            algorithm: Set("RS256".to_owned()),
            private_key_der: Set(STANDARD.encode(der)),
            created_at: Set(now),
            retired_at: Set(None),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        *self.cache.write().await = None;
        tracing::info!(kid = %kid, "identity provider signing key created");
        Ok(kid)
    }
}

/// The `settings` row that instances race to insert before creating the first signing key.
const FIRST_KEY_CLAIM: &str = "idp.first_signing_key";

/// Audiences compare trimmed and lowercase.
pub fn normalize_audience(audience: &str) -> String {
    audience.trim().to_lowercase()
}

/// The identity provider's face on accounts: satellite tokens for users, verification for
/// services.
impl super::Accounts {
    /// A satellite token for the caller and `audience`: an allow-listed service, or an active
    /// user's username (SDK 0.3.1's meaning). Returns the token and its lifetime in seconds.
    pub async fn satellite_token(&self, caller: &Principal, audience: &str) -> Result<(String, i64), AccountsError> {
        let normalized = normalize_audience(audience);
        if normalized.is_empty() {
            return Err(AccountsError::MissingAudience);
        }
        let allowed = self.idp.allowed_audiences().contains(&normalized)
            || self.user_by_name(&normalized).await?.is_some_and(|user| user.is_active);
        if !allowed {
            return Err(AccountsError::InvalidAudience {
                requested: audience.to_owned(),
                allowed: self.idp.allowed_audiences().to_vec(),
            });
        }
        self.count(super::rate_limits::Bucket::Tokens, &caller.user_id.to_string()).await?;
        let token = self.idp.mint(caller.user_id, caller.role.as_str(), &normalized).await?;
        crate::audit::token_minted(caller.user_id, "satellite", Some(&normalized));
        Ok((token, self.idp.token_seconds()))
    }

    /// Verifies a satellite token for the calling service (its username is the audience) and
    /// returns the claims with the subject's current account.
    pub async fn verify_satellite_token(
        &self,
        caller: &Principal,
        token: &str,
    ) -> Result<Result<(SatelliteClaims, user::Model), VerifyFailure>, AccountsError> {
        let claims = match self.idp.verify(token, &caller.username).await? {
            Ok(claims) => claims,
            Err(failure) => return Ok(Err(failure)),
        };
        let Some(sub) = claims.sub.clone() else {
            return Ok(Err(VerifyFailure::new("invalid_token", "The token has no subject (sub).")));
        };
        let Ok(user_id) = sub.parse::<i64>() else {
            return Ok(Err(VerifyFailure::new("invalid_user_id", format!("Invalid user ID in token: {sub}"))));
        };
        match user::Entity::find_by_id(user_id).one(&self.db).await? {
            Some(subject) => Ok(Ok((claims, subject))),
            None => Ok(Err(VerifyFailure::new("user_not_found", format!("User with ID {sub} not found.")))),
        }
    }
}
