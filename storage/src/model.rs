//! Domain records as the store keeps them. Times are Unix seconds, passed in by the caller
//! (the engine reads the clock once at the request boundary), never read from a clock here.

use uuid::Uuid;

/// A tenant: an isolated set of users and clients, addressed by UUID or slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub created_at: i64,
}

/// An application allowed to sign users in. `client_id` is unique within its tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Overrides of the server's token lifetimes, in seconds.
    pub access_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClient {
    pub tenant_id: Uuid,
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub access_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
}

/// A user. `email` is stored normalised (trimmed, lower case), unique per tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub email_verified: bool,
    pub name: Option<String>,
    pub custom_fields: serde_json::Value,
    pub disabled: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewUser {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub custom_fields: serde_json::Value,
}

/// A user with the PHC string of their password identity.
#[derive(Clone, PartialEq)]
pub struct PasswordLogin {
    pub user: User,
    pub password_hash: String,
}

impl std::fmt::Debug for PasswordLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordLogin")
            .field("user", &self.user)
            .field("password_hash", &"<redacted>")
            .finish()
    }
}

/// SHA-256 of a secret token (refresh token, session id). Only hashes are stored.
pub type TokenHash = [u8; 32];

/// A refresh token to store. A new family is started on sign-in; rotation keeps the family.
#[derive(Clone, PartialEq, Eq)]
pub struct NewRefreshToken {
    pub token_hash: TokenHash,
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    /// The `client_id` string of the client the token was issued to.
    pub client_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl std::fmt::Debug for NewRefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewRefreshToken")
            .field("token_hash", &"<redacted>")
            .field("family_id", &self.family_id)
            .field("user_id", &self.user_id)
            .field("client_id", &self.client_id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A stored refresh token, as found by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub client_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// Set once the token has been exchanged for its successor.
    pub rotated_at: Option<i64>,
    /// Set when the family was revoked (logout, logout-all, reuse detection).
    pub family_revoked_at: Option<i64>,
}

/// What happened to a refresh-token rotation attempt. Denials are outcomes, not errors.
#[derive(Debug, Clone, PartialEq)]
pub enum RotateOutcome {
    /// The old token was valid and unused; the new one is stored in the same family.
    Rotated { user: User, family_id: Uuid },
    /// No such token (or it belongs to another client).
    NotFound,
    /// The token is past its expiry.
    Expired,
    /// The family was already revoked.
    Revoked,
    /// The token had already been rotated: the whole family is now revoked.
    Reused { family_id: Uuid, user_id: Uuid },
}

/// A browser session, found by the SHA-256 of its cookie value.
#[derive(Clone, PartialEq, Eq)]
pub struct NewSession {
    pub id_hash: TokenHash,
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub client_id: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("id_hash", &"<redacted>")
            .field("user_id", &self.user_id)
            .field("client_id", &self.client_id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub user: User,
    pub client_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// An Ed25519 signing key. The private half is encrypted by the engine under the master key;
/// the store only keeps the ciphertext.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub kid: String,
    pub public_key: Vec<u8>,
    pub private_key_encrypted: Vec<u8>,
    pub created_at: i64,
    /// Retired keys still verify (they stay in the JWKS) but no longer sign.
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("private_key_encrypted", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

/// Connection-pool gauges (`hellojohn_db_pool_connections{state}`), summed over every pool of
/// the store. A store without connections (the embedded one) reports zeros.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections waiting in a pool.
    pub idle: u64,
    /// Connections lent to a caller (or being opened for one).
    pub in_use: u64,
    /// The most connections the store may open.
    pub max: u64,
}

/// Schema state reported by `hj migrate status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Versions applied to the database, ascending.
    pub applied: Vec<i64>,
    /// Versions this binary knows, ascending.
    pub known: Vec<i64>,
}

impl MigrationStatus {
    pub fn pending(&self) -> Vec<i64> {
        self.known
            .iter()
            .copied()
            .filter(|v| !self.applied.contains(v))
            .collect()
    }
    /// Versions in the database that this binary does not know (a newer binary migrated it).
    pub fn unknown(&self) -> Vec<i64> {
        self.applied
            .iter()
            .copied()
            .filter(|v| !self.known.contains(v))
            .collect()
    }
}
