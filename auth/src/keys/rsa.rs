//! RSA keys for RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 section 3.3), through
//! RustCrypto's `rsa` crate.
//!
//! A stored RSA key is its PKCS#1 `RSAPublicKey` DER (the kid is derived from it) and its
//! PKCS#1 `RSAPrivateKey` DER, encrypted under the master key with the algorithm bound into
//! the associated data. Signatures are made with blinding (a fresh random factor each time),
//! which hides the private exponent's timing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use protocol::token::Jwk;
use rsa::pkcs1::{DecodeRsaPrivateKey as _, DecodeRsaPublicKey as _};
use rsa::pkcs1::{EncodeRsaPrivateKey as _, EncodeRsaPublicKey as _};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _, Verifier as _};
use rsa::traits::PublicKeyParts as _;
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The size of the RSA keys HelloJohn generates.
pub const RSA_BITS: usize = 2048;

/// The smallest RSA key accepted from the store (RFC 7518: 2048 bits or larger).
const MIN_BITS: usize = 2048;

/// The associated data that seals an RSA private key: a label naming the algorithm, then the
/// public key. An Ed25519 key's is its bare 32-byte public key (as before RSA existed), which
/// never equals this, so a sealed key cannot be moved to another row or another algorithm.
pub(super) fn aad(public_der: &[u8]) -> Vec<u8> {
    let mut aad = b"hellojohn signing key RS256\0".to_vec();
    aad.extend_from_slice(public_der);
    aad
}

/// A new 2048-bit key: its public DER and its private DER (wiped on drop).
pub(super) fn generate() -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), String> {
    let private = RsaPrivateKey::new(&mut rand::rngs::OsRng, RSA_BITS)
        .map_err(|e| format!("RSA key generation failed: {e}"))?;
    let public = private
        .to_public_key()
        .to_pkcs1_der()
        .map_err(|e| format!("cannot encode the RSA public key: {e}"))?
        .into_vec();
    let private = private
        .to_pkcs1_der()
        .map_err(|e| format!("cannot encode the RSA private key: {e}"))?;
    Ok((public, Zeroizing::new(private.as_bytes().to_vec())))
}

/// The verifying key of a stored public DER: at least [`MIN_BITS`], a sane exponent.
pub(super) fn verifying_key(public_der: &[u8]) -> Result<VerifyingKey<Sha256>, String> {
    let key = RsaPublicKey::from_pkcs1_der(public_der)
        .map_err(|_| "public key is not a PKCS#1 RSA public key".to_string())?;
    if key.n().bits() < MIN_BITS {
        return Err(format!(
            "RSA key of {} bits is smaller than {MIN_BITS}",
            key.n().bits()
        ));
    }
    Ok(VerifyingKey::new(key))
}

/// The signing key of a decrypted private DER, checked against the stored public DER.
pub(super) fn signing_key(
    private_der: &[u8],
    public_der: &[u8],
) -> Result<SigningKey<Sha256>, String> {
    // Parsing validates the key (its primes and exponents agree).
    let private = RsaPrivateKey::from_pkcs1_der(private_der)
        .map_err(|_| "private key is not a valid PKCS#1 RSA private key".to_string())?;
    let public = RsaPublicKey::from_pkcs1_der(public_der)
        .map_err(|_| "public key is not a PKCS#1 RSA public key".to_string())?;
    if private.to_public_key() != public {
        return Err("private key does not match public key".to_string());
    }
    Ok(SigningKey::new(private))
}

/// The RS256 signature of `message`.
pub(super) fn sign(key: &SigningKey<Sha256>, message: &[u8]) -> Vec<u8> {
    key.sign_with_rng(&mut rand::rngs::OsRng, message).to_vec()
}

/// Whether `signature` is `key`'s RS256 signature of `message` (its length must be the
/// modulus's).
pub(super) fn verify(key: &VerifyingKey<Sha256>, message: &[u8], signature: &[u8]) -> bool {
    Signature::try_from(signature).is_ok_and(|s| key.verify(message, &s).is_ok())
}

/// The JWK of `key` (modulus and exponent, big-endian, unpadded base64url).
pub(super) fn jwk(kid: &str, key: &VerifyingKey<Sha256>) -> Jwk {
    let key: &RsaPublicKey = key.as_ref();
    Jwk::rsa(
        kid,
        URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
    )
}
