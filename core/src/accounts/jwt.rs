//! jsonwebtoken's crypto backend, on ring: HS256 for hub session tokens, RS256 for satellite
//! tokens. We do not sign through the `rsa` crate (RUSTSEC-2023-0071, the Marvin timing attack);
//! ring's RSA is constant-time. Every other algorithm is refused, so a token can never pick a
//! weaker or confused algorithm.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::ThumbprintHash;
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::{hmac, rand, signature as ring_signature};
use signature::{Signer, Verifier};

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: |_| Err(ErrorKind::UnsupportedAlgorithm.into()),
        rsa_pub_components_from_public_key: |_| Err(ErrorKind::UnsupportedAlgorithm.into()),
        ec_pub_components_from_private_key: |_, _| Err(ErrorKind::UnsupportedAlgorithm.into()),
        ed_pub_components_from_private_key: |_, _| Err(ErrorKind::UnsupportedAlgorithm.into()),
        compute_digest,
    },
};

/// Makes this the process-wide jsonwebtoken backend. Idempotent.
pub(crate) fn install_provider() {
    // Err means it is already installed (by an earlier hub in the same process).
    let _ = PROVIDER.install_default();
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> jsonwebtoken::errors::Result<Vec<u8>> {
    let algorithm = match hash {
        ThumbprintHash::SHA256 => &ring::digest::SHA256,
        ThumbprintHash::SHA384 => &ring::digest::SHA384,
        ThumbprintHash::SHA512 => &ring::digest::SHA512,
        _ => return Err(ErrorKind::UnsupportedAlgorithm.into()),
    };
    Ok(ring::digest::digest(algorithm, data).as_ref().to_vec())
}

fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    match algorithm {
        Algorithm::HS256 => Ok(Box::new(HmacSigner(hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes())))),
        Algorithm::RS256 => {
            let key_pair = ring_signature::RsaKeyPair::from_der(key.as_bytes())
                .map_err(|error| ErrorKind::InvalidRsaKey(error.to_string()))?;
            Ok(Box::new(RsaSigner(key_pair)))
        }
        _ => Err(ErrorKind::UnsupportedAlgorithm.into()),
    }
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    match algorithm {
        Algorithm::HS256 => {
            let secret = key.try_get_as_bytes()?;
            Ok(Box::new(HmacVerifier(hmac::Key::new(hmac::HMAC_SHA256, secret))))
        }
        Algorithm::RS256 => Ok(Box::new(RsaVerifier(key.kind().clone()))),
        _ => Err(ErrorKind::UnsupportedAlgorithm.into()),
    }
}

struct HmacSigner(hmac::Key);

impl Signer<Vec<u8>> for HmacSigner {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(hmac::sign(&self.0, message).as_ref().to_vec())
    }
}

impl JwtSigner for HmacSigner {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

struct HmacVerifier(hmac::Key);

impl Verifier<Vec<u8>> for HmacVerifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        // ring compares in constant time.
        hmac::verify(&self.0, message, signature).map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for HmacVerifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

struct RsaSigner(ring_signature::RsaKeyPair);

impl Signer<Vec<u8>> for RsaSigner {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let mut signature = vec![0; self.0.public().modulus_len()];
        self.0
            .sign(&ring_signature::RSA_PKCS1_SHA256, &rand::SystemRandom::new(), message, &mut signature)
            .map_err(|_| signature::Error::new())?;
        Ok(signature)
    }
}

impl JwtSigner for RsaSigner {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

struct RsaVerifier(DecodingKeyKind);

impl Verifier<Vec<u8>> for RsaVerifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        let parameters = &ring_signature::RSA_PKCS1_2048_8192_SHA256;
        let verified = match &self.0 {
            DecodingKeyKind::SecretOrDer(der) => {
                ring_signature::UnparsedPublicKey::new(parameters, der).verify(message, signature)
            }
            DecodingKeyKind::RsaModulusExponent { n, e } => {
                ring_signature::RsaPublicKeyComponents { n, e }.verify(parameters, message, signature)
            }
        };
        verified.map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RsaVerifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}
