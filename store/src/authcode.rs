//! Authorization codes of the OAuth 2.0 code flow (RFC 6749 section 4.1): issued by
//! `GET /oauth2/authorize`, redeemed once at the token endpoint by any instance.

use uuid::Uuid;

use crate::{EventDraft, NewRefreshToken, TokenHash};

/// A code to store. Only the SHA-256 of the code is kept.
#[derive(Clone, PartialEq, Eq)]
pub struct NewAuthCode {
    pub code_hash: TokenHash,
    pub code: AuthCode,
}

impl std::fmt::Debug for NewAuthCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAuthCode")
            .field("code_hash", &"<redacted>")
            .field("code", &self.code)
            .finish()
    }
}

/// What a code grants, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCode {
    pub tenant_id: Uuid,
    /// The `client_id` string of the client it was issued to.
    pub client_id: String,
    pub user_id: Uuid,
    /// The exact `redirect_uri` of the authorization request; the token request must repeat it.
    pub redirect_uri: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// When the user signed in (Unix seconds), for the ID token's `auth_time`.
    pub auth_time: i64,
    pub amr: Vec<String>,
    /// The refresh family the redemption creates (and a reuse revokes).
    pub family_id: Uuid,
    pub created_at: i64,
    pub expires_at: i64,
    /// Set by the one redemption.
    pub used_at: Option<i64>,
    /// The access token the redemption issued (`jti`, `exp`), revoked if the code is replayed.
    pub access_jti: Option<String>,
    pub access_expires_at: Option<i64>,
}

/// What a redemption writes with the code's `used_at`, in the same transaction.
#[derive(Debug, Default)]
pub struct Redeem {
    /// The refresh token to store in the family the code names (user, tenant and client are
    /// the code's; only its hash and times are taken from here).
    pub refresh: Option<NewRefreshToken>,
    /// The access token issued: its `jti` and `exp`.
    pub access: Option<(String, i64)>,
    /// Written with a successful redemption.
    pub event: Option<EventDraft>,
    /// Written with the revocation a replay causes.
    pub reuse_event: Option<EventDraft>,
}

/// What presenting a code did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// This call redeemed it (and stored the refresh token, if one was given).
    Redeemed(AuthCode),
    /// It had been redeemed before: its refresh family is now revoked.
    Reused(AuthCode),
    /// Past its expiry, never redeemed.
    Expired,
    /// No such code.
    Unknown,
}
