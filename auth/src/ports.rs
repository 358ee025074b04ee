//! What the domain needs from outside: small traits, implemented by the engine (over Redis).
//!
//! Both are optional: without them the flows answer from the database and the in-process
//! limiter. Every method may fail (the cache is unreachable); the flows then fall back, so an
//! error carries no detail.

use std::time::Duration;

use futures_util::future::BoxFuture;
use store::{CachedSession, Session, TokenHash};
use uuid::Uuid;

/// The cache is unreachable or answered nonsense (already counted and logged by its client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

/// The session cache shared by all instances, with the revocation marks that must reach every
/// instance at once (a sign-out, a revoked refresh family).
pub trait SessionCache: Send + Sync {
    /// The cached session or sign-out mark of `id`.
    fn session_get<'a>(
        &'a self,
        id: &'a TokenHash,
    ) -> BoxFuture<'a, Result<Option<CachedSession>, Unavailable>>;
    /// Caches a live session for `ttl`.
    fn session_put<'a>(
        &'a self,
        id: &'a TokenHash,
        session: &'a Session,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), Unavailable>>;
    /// Replaces the session with a sign-out mark that lives `ttl`.
    fn session_revoke<'a>(
        &'a self,
        id: &'a TokenHash,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), Unavailable>>;
    /// Marks every cached session of `user_id` signed out.
    fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(), Unavailable>>;
    /// Whether a refresh family was marked revoked.
    fn family_revoked(&self, family_id: Uuid) -> BoxFuture<'_, Result<bool, Unavailable>>;
    /// Marks a refresh family revoked for `ttl`.
    fn family_revoke(
        &self,
        family_id: Uuid,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(), Unavailable>>;
}

/// One GCRA step taken by the shared limiter, on its own clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedStep {
    pub allowed: bool,
    /// Units left after this call.
    pub remaining: u64,
    /// When refused: how long until one unit is available.
    pub retry_after: Duration,
    /// How long until the bucket is full again.
    pub reset: Duration,
}

/// A rate limiter shared by all instances (the GCRA step run where every instance sees it).
pub trait SharedLimiter: Send + Sync {
    /// Takes one unit of `key` with emission interval `interval` and burst `burst`.
    fn take<'a>(
        &'a self,
        key: &'a str,
        interval: Duration,
        burst: u32,
    ) -> BoxFuture<'a, Result<SharedStep, Unavailable>>;
    /// Gives one unit of `key` back.
    fn refund<'a>(
        &'a self,
        key: &'a str,
        interval: Duration,
    ) -> BoxFuture<'a, Result<(), Unavailable>>;
}

/// What a mail is about: each has its own template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// A link that proves the address (`/v2/auth/verify-email?token=`).
    VerifyEmail,
    /// A link to set a new password.
    PasswordReset,
}

impl MailKind {
    /// The stored kind and the template name: `verify_email`, `password_reset`.
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::VerifyEmail => "verify_email",
            MailKind::PasswordReset => "password_reset",
        }
    }
}

/// What a mail says: the engine renders it from the tenant's templates.
#[derive(Clone)]
pub struct MailVars<'a> {
    pub kind: MailKind,
    pub tenant: &'a store::Tenant,
    /// The recipient (the user's stored, normalised address).
    pub to: &'a str,
    /// The link, with the single-use token: secret.
    pub link: &'a str,
    /// How long the link works.
    pub ttl: Duration,
}

/// Renders and seals a mail for the outbox (the domain decides what is sent and when; the
/// engine owns templates, links' presentation and the master key). Infallible in effect: a
/// template problem falls back to the built-in template.
pub trait Mailer: Send + Sync {
    /// The outbox row for this mail: a new UUIDv7, the kind, and the message sealed under the
    /// master key with that id as AAD.
    fn compose(&self, vars: &MailVars<'_>, now_ms: i64) -> store::NewMail;
}
