//! Key material of either algorithm: new keys, the private half decrypted from a stored record,
//! the public half parsed from it, signing, verification and the JWK.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _};
use protocol::token::Jwk;
use rand::RngCore as _;
use sha2::Sha256;
use store::SigningAlg;
use zeroize::Zeroizing;

use super::{kid_of, rsa, KeyError, MasterKey};

/// The associated data that seals a key's private half: the public key (Ed25519, as before
/// RSA existed) or the algorithm and the public key (RSA).
fn aad(alg: SigningAlg, public_key: &[u8]) -> Vec<u8> {
    match alg {
        SigningAlg::EdDsa => public_key.to_vec(),
        SigningAlg::Rs256 => rsa::aad(public_key),
    }
}

/// A new Ed25519 signing key: the record to store (private half encrypted) and the key itself.
pub fn new_signing_key(
    master: &MasterKey,
    now: i64,
) -> Result<(store::SigningKey, ed25519_dalek::SigningKey), KeyError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(seed.as_mut());
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let public_key = key.verifying_key().to_bytes().to_vec();
    let record = record(master, SigningAlg::EdDsa, public_key, seed.as_ref(), now)?;
    Ok((record, key))
}

/// A new key of `alg` (RSA: 2048 bits), as the record to store: its private half encrypted
/// under `master`, signing from `now` and never retired. RSA generation takes a while (tens to
/// hundreds of milliseconds): call it off any event loop.
pub fn new_key(
    master: &MasterKey,
    alg: SigningAlg,
    now: i64,
) -> Result<store::SigningKey, KeyError> {
    match alg {
        SigningAlg::EdDsa => new_signing_key(master, now).map(|(record, _)| record),
        SigningAlg::Rs256 => {
            let (public, private) = rsa::generate().map_err(KeyError::Generate)?;
            record(master, alg, public, &private, now)
        }
    }
}

fn record(
    master: &MasterKey,
    alg: SigningAlg,
    public_key: Vec<u8>,
    private_key: &[u8],
    now: i64,
) -> Result<store::SigningKey, KeyError> {
    Ok(store::SigningKey {
        kid: kid_of(&public_key),
        alg,
        private_key_encrypted: master.encrypt(private_key, &aad(alg, &public_key))?,
        public_key,
        created_at: now,
        activates_at: now,
        retired_at: None,
        tenant_id: None,
    })
}

fn corrupt(record: &store::SigningKey, reason: impl Into<String>) -> KeyError {
    KeyError::CorruptKey {
        kid: record.kid.clone(),
        reason: reason.into(),
    }
}

/// The private half of a key, decrypted.
pub(super) enum PrivateKey {
    Ed25519(Box<ed25519_dalek::SigningKey>),
    Rsa(Box<::rsa::pkcs1v15::SigningKey<Sha256>>),
}

impl PrivateKey {
    /// Decrypts the record's private half and checks that it matches its public half.
    pub(super) fn decrypt(
        record: &store::SigningKey,
        master: &MasterKey,
    ) -> Result<PrivateKey, KeyError> {
        let secret = master
            .decrypt(
                &record.private_key_encrypted,
                &aad(record.alg, &record.public_key),
            )
            .ok_or_else(|| KeyError::WrongMasterKey {
                kid: record.kid.clone(),
                alg: record.alg,
            })?;
        match record.alg {
            SigningAlg::EdDsa => {
                let seed = <[u8; 32]>::try_from(secret.as_slice())
                    .map_err(|_| corrupt(record, "private key is not 32 bytes"))?;
                let key = ed25519_dalek::SigningKey::from_bytes(&seed);
                if key.verifying_key().as_bytes().as_slice() != record.public_key.as_slice() {
                    return Err(corrupt(record, "private key does not match public key"));
                }
                Ok(PrivateKey::Ed25519(Box::new(key)))
            }
            SigningAlg::Rs256 => rsa::signing_key(&secret, &record.public_key)
                .map(|k| PrivateKey::Rsa(Box::new(k)))
                .map_err(|reason| corrupt(record, reason)),
        }
    }

    /// The signature of `message` (the JWS signing input).
    pub(super) fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            PrivateKey::Ed25519(key) => {
                let signature: Signature = key.sign(message);
                signature.to_bytes().to_vec()
            }
            PrivateKey::Rsa(key) => rsa::sign(key, message),
        }
    }
}

/// The public half of a key.
pub(super) enum PublicKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    Rsa(Box<::rsa::pkcs1v15::VerifyingKey<Sha256>>),
}

impl PublicKey {
    pub(super) fn parse(record: &store::SigningKey) -> Result<PublicKey, KeyError> {
        match record.alg {
            SigningAlg::EdDsa => {
                let bytes = <[u8; 32]>::try_from(record.public_key.as_slice())
                    .map_err(|_| corrupt(record, "public key is not 32 bytes"))?;
                ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                    .map(PublicKey::Ed25519)
                    .map_err(|_| corrupt(record, "public key is not a valid Ed25519 key"))
            }
            SigningAlg::Rs256 => rsa::verifying_key(&record.public_key)
                .map(|k| PublicKey::Rsa(Box::new(k)))
                .map_err(|reason| corrupt(record, reason)),
        }
    }

    /// Whether `signature` is this key's signature of `message`. Ed25519 uses
    /// `verify_strict`, which also refuses small-order keys and non-canonical signatures, so a
    /// token has exactly one valid encoding.
    pub(super) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            PublicKey::Ed25519(key) => Signature::from_slice(signature)
                .is_ok_and(|s| key.verify_strict(message, &s).is_ok()),
            PublicKey::Rsa(key) => rsa::verify(key, message, signature),
        }
    }

    pub(super) fn jwk(&self, kid: &str) -> Jwk {
        match self {
            PublicKey::Ed25519(key) => Jwk::ed25519(kid, URL_SAFE_NO_PAD.encode(key.as_bytes())),
            PublicKey::Rsa(key) => rsa::jwk(kid, key),
        }
    }
}
