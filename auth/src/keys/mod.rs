//! The master key and the signing-key ring.
//!
//! Signing keys live in the store so that every instance signs and verifies alike. A key is
//! Ed25519 (`EdDSA`: access tokens) or RSA 2048 (`RS256`: ID tokens, which OpenID Connect
//! requires). Private halves are encrypted at rest with XChaCha20-Poly1305 under the master key
//! (`HELLOJOHN_MASTER_KEY`), which never leaves the process: a database dump alone cannot forge
//! tokens. The stored blob is `nonce (24 bytes) || ciphertext`, and the associated data is the
//! public key (RSA: the algorithm and the public key), so a ciphertext cannot be moved onto
//! another key's row.
//!
//! A key's life (times are Unix seconds, `L` the longest lifetime of a token it may sign):
//!
//! | from | until | state | signs | in the JWKS, verifies |
//! |---|---|---|---|---|
//! | `created_at` | `activates_at` | pending | no | yes |
//! | `activates_at` | `retired_at` | active | yes (the newest active key of its alg) | yes |
//! | `retired_at` | `retired_at + L` | retiring | no | yes |
//! | `retired_at + L` | | expired | no | no |
//!
//! A rotation ([`rotate`]) inserts a key whose `activates_at` is the publish delay away and
//! retires the active key at that same instant, so verifiers that cache the JWKS have the new
//! key before any token carries it, and tokens signed by the old key verify until they expire.
//! Every instance reloads its ring from the store ([`KeyRing::reload`]), and picks the signing
//! key by the time a token is signed, so all switch at the same instant.
//!
//! Keys are global (`tenant_id` NULL) or a tenant's own: a tenant in issuer mode `path` has
//! keys of its own (made when it enters that mode, or by the next start or reload), signs
//! its tokens with them under its own issuer `{base}/t/{slug}`, and publishes them alone in
//! its JWKS. Each owner's keys live and rotate as above, apart from the others'.

mod master;
mod material;
mod ring;
mod rsa;
#[cfg(test)]
mod tenant_tests;
#[cfg(test)]
mod tests;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use store::StoreError;

pub use master::{MasterKey, MASTER_KEY_FILE};
pub use material::{new_key, new_signing_key};
pub use ring::{
    create_tenant_keys, rotate, rotate_for, tenant_issuer, IdTokenHint, KeyRing, Rotation,
};
pub use rsa::RSA_BITS;
pub use store::SigningAlg;

/// The algorithm an ID token is signed with.
pub type IdTokenAlg = SigningAlg;

/// The algorithm of ID tokens unless a client asks for another: RS256, the one every OpenID
/// Connect relying party supports.
pub const DEFAULT_ID_TOKEN_ALG: IdTokenAlg = SigningAlg::Rs256;

/// Why the master key or the signing keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("HELLOJOHN_MASTER_KEY is invalid: {0}")]
    InvalidMasterKey(String),
    #[error(
        "HELLOJOHN_MASTER_KEY is required with PostgreSQL: set it to the same 32-byte key \
         (64 hex characters, e.g. from `openssl rand -hex 32`) on every instance"
    )]
    MasterKeyRequired,
    #[error("master key file {}: {message}", path.display())]
    MasterKeyFile {
        path: std::path::PathBuf,
        message: String,
    },
    /// Only ever about a key of an algorithm this release knows: keys of other algorithms (a
    /// newer release's) are skipped by the store before anything decrypts them.
    #[error(
        "cannot decrypt signing key {kid} ({alg}): is HELLOJOHN_MASTER_KEY the key it was \
         sealed with?"
    )]
    WrongMasterKey { kid: String, alg: store::SigningAlg },
    #[error("signing key {kid} is corrupt: {reason}")]
    CorruptKey { kid: String, reason: String },
    #[error("cannot encrypt a signing key: {0}")]
    Encrypt(String),
    #[error("cannot generate a signing key: {0}")]
    Generate(String),
    #[error("the store has no usable {0} signing key")]
    NoActiveKey(SigningAlg),
    #[error("tenant {0:?} is in issuer mode path but has no usable {1} signing key")]
    NoTenantKey(String, SigningAlg),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The key id of a public key: base64url of the first 12 bytes of its SHA-256 (16 characters).
pub fn kid_of(public_key: &[u8]) -> String {
    let digest = Sha256::digest(public_key);
    URL_SAFE_NO_PAD.encode(&digest[..12])
}

/// Where a key stands in its life at some instant (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not signing yet.
    Pending,
    /// May sign (the newest active key of its algorithm does).
    Active,
    /// Signs no more; still published while tokens it signed may live.
    Retiring,
    /// Past its verification window: neither published nor accepted.
    Expired,
}

impl KeyState {
    /// The state of `key` at `now`, when tokens live at most `token_lifetime` seconds.
    pub fn of(key: &store::SigningKey, now: i64, token_lifetime: i64) -> KeyState {
        match key.retired_at {
            Some(retired) if now >= retired.saturating_add(token_lifetime) => KeyState::Expired,
            Some(retired) if now >= retired => KeyState::Retiring,
            _ if now < key.activates_at => KeyState::Pending,
            _ => KeyState::Active,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
            KeyState::Expired => "expired",
        }
    }
}
