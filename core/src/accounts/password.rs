//! Password hashing: argon2id with OWASP parameters (m = 19 MiB, t = 2, p = 1), off the async
//! runtime and bounded in concurrency, so logins never stall other requests nor exhaust memory.
//! Hashes with other argon2 parameters (e.g. the original SyftHub's argon2-cffi defaults) and
//! Tufts Hub's salted SHA-256 verify, and are upgraded on the next successful login.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// Prefix of a Tufts Hub password imported from `config.json` (`[hash_hex, salt_hex]`).
pub const LEGACY_SHA256_PREFIX: &str = "tufts-sha256$";

/// The outcome of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Wrong password (or an unusable stored hash).
    Mismatch,
    /// Right password, stored with our current parameters.
    Match,
    /// Right password, stored in an older format: rehash it.
    MatchNeedsUpgrade,
}

/// The password hasher. Cheap to clone.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
}

impl Default for Passwords {
    fn default() -> Self {
        Self::new()
    }
}

impl Passwords {
    /// A hasher allowing as many concurrent hashes as there are cores (each takes 19 MiB).
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(2);
        Self { permits: Arc::new(Semaphore::new(cores.max(1))) }
    }

    /// Hashes `password` into a PHC string.
    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        tokio::task::spawn_blocking(move || hash_now(&password)).await?
    }

    /// Checks `password` against `stored`.
    pub async fn verify(&self, password: String, stored: String) -> anyhow::Result<Verdict> {
        let _permit = self.permits.acquire().await?;
        Ok(tokio::task::spawn_blocking(move || verify_now(&password, &stored)).await?)
    }

    /// Spends the time of a real verification, so an unknown username takes as long as a
    /// wrong password (no user enumeration by timing).
    pub async fn verify_dummy(&self, password: String) {
        let _ = self.verify(password, dummy_hash().to_owned()).await;
    }
}

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

fn hash_now(password: &str) -> anyhow::Result<String> {
    let hash = hasher().hash_password(password.as_bytes()).map_err(|error| anyhow::anyhow!("cannot hash: {error}"))?;
    Ok(hash.to_string())
}

fn verify_now(password: &str, stored: &str) -> Verdict {
    if let Some(legacy) = stored.strip_prefix(LEGACY_SHA256_PREFIX) {
        return verify_legacy(password, legacy);
    }
    let Ok(hash) = PasswordHash::new(stored) else { return Verdict::Mismatch };
    if hasher().verify_password(password.as_bytes(), &hash).is_err() {
        return Verdict::Mismatch;
    }
    let current = Params::try_from(&hash).is_ok_and(|params| {
        params.m_cost() == Params::DEFAULT_M_COST
            && params.t_cost() == Params::DEFAULT_T_COST
            && params.p_cost() == Params::DEFAULT_P_COST
    });
    if current && hash.algorithm.as_str() == "argon2id" { Verdict::Match } else { Verdict::MatchNeedsUpgrade }
}

/// Tufts Hub: SHA-256 over (salt bytes ‖ UTF-8 password), stored as `<salt hex>$<hash hex>`.
fn verify_legacy(password: &str, legacy: &str) -> Verdict {
    let Some((salt_hex, hash_hex)) = legacy.split_once('$') else { return Verdict::Mismatch };
    let (Ok(salt), Ok(expected)) = (hex::decode(salt_hex), hex::decode(hash_hex)) else { return Verdict::Mismatch };
    let mut digest = Sha256::new();
    digest.update(&salt);
    digest.update(password.as_bytes());
    let actual = digest.finalize();
    if bool::from(actual.as_slice().ct_eq(&expected)) { Verdict::MatchNeedsUpgrade } else { Verdict::Mismatch }
}

fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_now("dummy password for timing").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_old_parameters_need_an_upgrade() {
        let passwords = Passwords::new();
        let hash = passwords.hash("correct horse 1".to_owned()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert_eq!(passwords.verify("correct horse 1".to_owned(), hash.clone()).await.unwrap(), Verdict::Match);
        assert_eq!(passwords.verify("wrong".to_owned(), hash).await.unwrap(), Verdict::Mismatch);

        // argon2-cffi's defaults (the original SyftHub): m=65536, t=3, p=4.
        let old = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(65536, 3, 4, None).unwrap())
            .hash_password(b"password1")
            .unwrap()
            .to_string();
        assert_eq!(passwords.verify("password1".to_owned(), old).await.unwrap(), Verdict::MatchNeedsUpgrade);
        assert_eq!(passwords.verify("x".to_owned(), "not a hash".to_owned()).await.unwrap(), Verdict::Mismatch);
    }

    #[tokio::test]
    async fn tufts_hub_hashes_verify_and_need_an_upgrade() {
        let salt = [0xaa_u8; 32];
        let mut digest = Sha256::new();
        digest.update(salt);
        digest.update(b"password123");
        let stored = format!("{LEGACY_SHA256_PREFIX}{}${}", hex::encode(salt), hex::encode(digest.finalize()));
        let passwords = Passwords::new();
        assert_eq!(
            passwords.verify("password123".to_owned(), stored.clone()).await.unwrap(),
            Verdict::MatchNeedsUpgrade
        );
        assert_eq!(passwords.verify("password124".to_owned(), stored).await.unwrap(), Verdict::Mismatch);
    }
}
