//! The sign-in flows: register, password sign-in, refresh rotation, sign-out, sessions.
//!
//! This is the domain layer: it takes plain values (never JSON, never HTTP) and answers
//! [`Outcome`]. A denial (wrong password, reused token, full hash pool) is `Ok(Denied(..))`;
//! `Err` is kept for faults (the store is down), which the HTTP layer answers with 503/500.
//! No database connection is held while a hash runs: every store call completes before the
//! hash pool is asked, and the store is called again only after the hash is done.

use std::sync::Arc;
use std::time::Duration;

use protocol::json::Document;
use protocol::token::AccessClaims;
use store::{
    CachedSession, Client, NewRefreshToken, NewSession, NewUser, RotateOutcome, Session, Store,
    StoreError, Tenant, TokenHash, User,
};
use uuid::Uuid;

use crate::events::{self, EventType, Origin};
use crate::hashpool::HashPool;
use crate::keys::KeyRing;
use crate::limiter::{account_subject, Decision, Limit, Limiter};
use crate::password::{Password, PolicyViolation, Verification};
use crate::ports::SessionCache;
use crate::tokens::{hash_opaque, new_opaque_token, CsrfKey, TokenError};

/// Longest life of a cached session in Redis (shorter when the session ends sooner). Also the
/// life of a sign-out mark, which must outlive every cached copy it overrides.
pub const SESSION_CACHE_TTL: Duration = Duration::from_secs(300);
/// Life of a "refresh family revoked" mark in Redis: a fast answer for replays right after a
/// sign-out or a reuse detection. The database stays the source of truth.
pub const FAMILY_MARK_TTL: Duration = Duration::from_secs(300);

/// Why a request was denied. Each maps to one stable error code in the HTTP layer.
#[derive(Debug, Clone, PartialEq)]
pub enum Denial {
    /// Unknown email or wrong password: indistinguishable on purpose.
    InvalidCredentials,
    /// The hash pool's expected wait exceeds the budget.
    Overloaded {
        retry_after: Duration,
    },
    EmailTaken,
    WeakPassword(PolicyViolation),
    InvalidEmail,
    /// Unknown, expired, revoked or wrong-client refresh token, or a bad access token.
    TokenInvalid,
    /// A rotated refresh token was presented again: its family is now revoked.
    TokenReuse,
    SessionExpired,
    /// The caller may not act on this token: it was issued to another user, tenant or client.
    NotOwner,
    /// A confidential client without its secret, or a public client sending one.
    InvalidClient,
    /// Too many failed sign-ins for this account: refused before any hashing.
    RateLimited {
        limit: Limit,
        decision: Decision,
    },
    /// The client requires a verified email and the user's is not (after a right password).
    EmailNotVerified,
    /// A wrong, replayed or used TOTP or recovery code.
    InvalidMfaCode,
    /// An unknown, expired, completed or exhausted `mfa_token`.
    MfaTokenInvalid,
    /// The user has no (confirmed) second factor.
    MfaNotEnrolled,
    /// The user already has a confirmed second factor.
    MfaAlreadyEnabled,
    /// A sensitive MFA change without a code, a recovery code or the password.
    MfaProofRequired,
    /// An unknown, expired, used or wrong-purpose email link token.
    EmailTokenInvalid,
    /// The client may not do this (see [`crate::policy`]): sign users in, or use a grant.
    UnauthorizedClient(&'static str),
    /// The change needs a sign-in more recent than the token's.
    ReauthenticationRequired,
    /// The token's client may not manage the account (a third party, or another audience).
    FirstPartyRequired,
}

#[derive(Debug)]
pub enum Outcome<T> {
    Done(T),
    Denied(Denial),
}

pub type Flow<T> = Result<Outcome<T>, StoreError>;

/// Tokens issued by a sign-in, registration or refresh.
pub struct Issued {
    pub user: User,
    pub access_token: String,
    pub expires_in: u64,
    /// `None` for a client without the `refresh_token` grant.
    pub refresh_token: Option<String>,
}

/// What a sign-up gives: tokens, or (the client requires a verified email) the new user,
/// who gets tokens once the address is verified.
#[derive(Debug)]
pub enum Registered {
    Tokens(Issued),
    PendingVerification(User),
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("user", &self.user.id)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// What a sign-up supplies.
pub struct Registration {
    pub email: String,
    pub password: Password,
    pub name: Option<String>,
    pub custom_fields: store::Metadata,
}

/// Who a sign-out acts for: the user (and tenant) of the Bearer token or cookie session, and
/// the Bearer token's client. Only tokens issued to them may be revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    /// `None`: any client of the user (a cookie session signs out the whole browser).
    pub client_id: Option<String>,
}

/// A new cookie session: the cookie value (secret) and its lifetime.
pub struct NewSessionCookie {
    pub value: String,
    pub max_age: Duration,
}

/// The authenticated caller of a request, from a Bearer token or a session cookie.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: AccessClaims,
}

/// The auth domain: everything the flows need, shared by all shards.
pub struct Auth {
    pub store: Arc<dyn Store>,
    pub pool: Arc<HashPool>,
    pub keys: Arc<KeyRing>,
    pub issuer: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub session_ttl: Duration,
    /// Rate limits (failed sign-ins per account are checked here, before hashing).
    pub limiter: Arc<Limiter>,
    /// The shared session cache and revocation marks (Redis), when configured.
    pub cache: Option<Box<dyn SessionCache>>,
    /// Binds CSRF tokens to cookie sessions.
    pub csrf: CsrfKey,
    /// Access tokens revoked before their `exp`.
    pub revocations: Arc<crate::revocations::Revocations>,
    /// MFA and the email flows (`None` in tests that do not need them: those flows then fail
    /// as a fault).
    pub lifecycle: Option<Lifecycle>,
}

fn custom_claim(user: &User) -> Document {
    protocol::token::custom_claim(user.app_metadata.as_json())
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

macro_rules! deny {
    ($d:expr) => {
        return Ok(Outcome::Denied($d))
    };
}

mod account;
mod admin;
mod code;
mod email;
mod mfa;
mod refresh;
mod session;
mod signin;

pub use account::{registered_redirect, Verified};
pub use admin::{
    admin_audit, AdminEnrollment, AdminSignIn, AdminTokens, ADMIN_ACCESS_TTL, ADMIN_MFA_TTL,
    ADMIN_REFRESH_TTL,
};
pub use code::{
    at_hash, at_hash_sha256, authenticate_client, ClientAuth, CodeRequest, GrantDenial, GrantFlow,
    Granted, CODE_TTL_SECS,
};
pub use email::{normalize_email, MAX_EMAIL_BYTES, MAX_LOCAL_PART_BYTES};
pub use mfa::{
    mfa_amr, ChallengeDone, Enrollment, Lifecycle, MfaPending, Passed, Proof, SecondFactor, SignIn,
    FRESH_MFA_SECS, MAX_CHALLENGE_FAILURES,
};

impl Auth {
    /// The issuer of a tenant's tokens: the server's (`issuer`), or `{issuer}/t/{slug}` for a
    /// tenant in path mode (as the key ring last read it).
    pub fn issuer_for(&self, tenant_id: Uuid) -> String {
        self.keys.issuer(&self.issuer, tenant_id)
    }

    /// Whether verified claims (from a cache) still carry their tenant's issuer: a tenant
    /// switched between issuer modes since they were verified must verify again.
    pub fn issuer_holds(&self, claims: &AccessClaims) -> bool {
        self.keys
            .issuer_holds(&self.issuer, &claims.iss, &claims.tid)
    }

    fn access_ttl_for(&self, client: Option<&Client>) -> Duration {
        client
            .and_then(|c| c.access_token_ttl)
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs)
            .unwrap_or(self.access_ttl)
    }

    /// A cookie session's life: the tenant's `sessionLifetimeSeconds`, else the server's.
    fn session_ttl_for(&self, tenant: Option<&Tenant>) -> Duration {
        tenant
            .and_then(|t| t.settings.session_lifetime_seconds)
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs)
            .unwrap_or(self.session_ttl)
    }

    fn refresh_ttl_for(&self, client: &Client) -> Duration {
        client
            .refresh_token_ttl
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs)
            .unwrap_or(self.refresh_ttl)
    }

    /// Signs an access token for `user` as seen by `client`.
    fn access_token(
        &self,
        user: &User,
        client: &Client,
        scopes: &[String],
        ttl: Duration,
        now: i64,
        sid: Option<String>,
    ) -> (String, u64) {
        let claims = self.access_claims(user, &client.client_id, scopes, ttl, now, sid);
        (self.sign_access(client, &claims), ttl.as_secs())
    }

    /// Signs access-token claims with the algorithm the client asks for (EdDSA unless it
    /// asked for RS256).
    fn sign_access(&self, client: &Client, claims: &AccessClaims) -> String {
        match client.access_token_alg {
            Some(alg @ store::SigningAlg::Rs256) => self.keys.sign_access_with(alg, claims),
            _ => self.keys.sign(claims),
        }
    }

    /// The claims of an access token for `user` as seen by `client_id`, made by a password
    /// sign-in at `now` (`amr` `pwd`, `auth_time` now); `sid` names the refresh family.
    fn access_claims(
        &self,
        user: &User,
        client_id: &str,
        scopes: &[String],
        ttl: Duration,
        now: i64,
        sid: Option<String>,
    ) -> AccessClaims {
        AccessClaims {
            iss: self.issuer_for(user.tenant_id),
            sub: user.id.to_string(),
            aud: client_id.to_string(),
            iat: now,
            nbf: now,
            exp: now + secs(ttl),
            tid: user.tenant_id.to_string(),
            amr: vec!["pwd".to_string()],
            scp: scopes.join(" "),
            custom: custom_claim(user),
            sid,
            jti: crate::tokens::new_jti(),
            // A sign-in's token: it was made now. Refresh and the code flow set their own.
            auth_time: Some(now),
        }
    }

    /// A refresh token for a new sign-in through `client`, when the client has the grant.
    fn new_refresh_if_allowed(
        &self,
        user_id: Uuid,
        tenant_id: Uuid,
        client: &Client,
        family_id: Uuid,
        now: i64,
    ) -> (Option<String>, Option<NewRefreshToken>) {
        if !crate::policy::issues_refresh(client) {
            return (None, None);
        }
        let (token, record) = self.new_refresh(user_id, tenant_id, client, family_id, now);
        (Some(token), Some(record))
    }

    fn new_refresh(
        &self,
        user_id: Uuid,
        tenant_id: Uuid,
        client: &Client,
        family_id: Uuid,
        now: i64,
    ) -> (String, NewRefreshToken) {
        let (token, hash) = new_opaque_token();
        let record = NewRefreshToken {
            token_hash: hash,
            family_id,
            user_id,
            tenant_id,
            client_id: client.client_id.clone(),
            issued_at: now,
            expires_at: now + secs(self.refresh_ttl_for(client)),
        };
        (token, record)
    }
}

/// The `user.login` event of a password or session sign-in.
fn login_event(
    origin: &Origin,
    tenant_id: Uuid,
    user_id: Uuid,
    client_id: &str,
    method: &str,
    now: i64,
) -> store::EventDraft {
    let event = origin.event(EventType::UserLogin, Some(tenant_id), Some(user_id), now);
    events::with_meta(
        events::with_meta(event, "client_id", client_id),
        "method",
        method,
    )
}
