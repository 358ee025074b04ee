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
use storage::{
    CachedSession, Client, NewRefreshToken, NewSession, NewUser, RotateOutcome, Session, Store,
    StoreError, Tenant, TokenHash, User,
};
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization as _;
use uuid::Uuid;

use crate::events::{self, EventType, Origin};
use crate::hashpool::HashPool;
use crate::keys::KeyRing;
use crate::limiter::{account_subject, Decision, Limit, Limiter};
use crate::password::{check_policy, Password, PolicyViolation, Verification};
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
    /// Too many failed sign-ins for this account: refused before any hashing.
    RateLimited {
        limit: Limit,
        decision: Decision,
    },
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
    pub refresh_token: String,
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
    pub custom_fields: Document,
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
}

/// The longest address accepted, in bytes of its normalised form (RFC 5321: a path is at
/// most 256 octets, angle brackets included).
pub const MAX_EMAIL_BYTES: usize = 254;
/// The longest local part (before the `@`), in bytes (RFC 5321).
pub const MAX_LOCAL_PART_BYTES: usize = 64;
/// The longest domain label, in characters (RFC 1035 counts the octets of the ASCII form; an
/// IDN label is checked on its Unicode form, which is never longer).
const MAX_LABEL_CHARS: usize = 63;

/// The one form of an email address that is stored and looked up: NFKC-normalised (so the
/// full-width `ｚｅｄ@x.com` is `zed@x.com`), trimmed and lower-cased (the whole address:
/// stored addresses are lower case, and sign-in looks them up with this same function).
/// `None` when it is not a plausible address:
///
/// * the local part is 1-64 bytes of letters and digits (any script), combining marks, and
///   the RFC 5322 `atext` symbols `!#$%&'*+-/=?^_`{|}~`, with dots only between other
///   characters. So no quotes, angle brackets, spaces, `@`, backslashes or parentheses (the
///   quoted and commented forms of RFC 5322 are refused: nobody needs them, and they carry
///   markup into every page that shows the address);
/// * the domain is a hostname of at least two dot-separated labels, each 1-63 letters,
///   digits and hyphens (any script: an IDN is kept in its Unicode form), no hyphen at either
///   end, and a top-level label that is not all digits (so no IP addresses);
/// * at most 254 bytes in all;
/// * no control, format (Cf: zero-width spaces and joiners, bidi embeddings, overrides and
///   isolates, the BOM), private-use, unassigned or other invisible characters (fillers,
///   variation selectors), anywhere: the allow-lists above admit none of them, and
///   [`invisible`] names those that Unicode counts as letters or marks.
pub fn normalize_email(email: &str) -> Option<String> {
    // NFKC can make a string longer (a few characters expand many times), so the work is
    // bounded first: nothing this long can normalise into a valid address that fits.
    if email.len() > 4 * MAX_EMAIL_BYTES {
        return None;
    }
    let folded: String = email.nfkc().collect::<String>().trim().to_lowercase();
    // Lower-casing can undo the composition (`İ` becomes `i` + a combining dot); composing
    // again gives every address exactly one stored form.
    let e: String = folded.nfc().collect();
    if e.len() > MAX_EMAIL_BYTES {
        return None;
    }
    let (local, domain) = e.split_once('@')?;
    (valid_local_part(local) && valid_domain(domain)).then_some(e)
}

/// Characters that Unicode counts as letters or combining marks but that show nothing (or
/// nothing distinguishable): Hangul fillers, the combining grapheme joiner, Khmer inherent
/// vowels, Mongolian free variation selectors, variation selectors.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FFA0}'
            | '\u{E0100}'..='\u{E01EF}'
    )
}

/// A letter, digit or combining mark of any script, not an invisible one. Control, format,
/// space, private-use and unassigned characters are none of these.
fn word_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric();
    }
    (c.is_alphanumeric() || is_combining_mark(c)) && !invisible(c)
}

fn valid_local_part(local: &str) -> bool {
    const ATEXT_SYMBOLS: &str = "!#$%&'*+-/=?^_`{|}~";
    !local.is_empty()
        && local.len() <= MAX_LOCAL_PART_BYTES
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| word_char(c) || c == '.' || ATEXT_SYMBOLS.contains(c))
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && domain.len() <= MAX_EMAIL_BYTES - 2
        && labels.iter().all(|label| {
            let first = label.chars().next();
            label.chars().count() <= MAX_LABEL_CHARS
                && first.is_some_and(|c| c != '-' && !is_combining_mark(c))
                && !label.ends_with('-')
                && label.chars().all(|c| word_char(c) || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| !tld.chars().all(|c| c.is_ascii_digit()))
}

fn custom_claim(user: &User) -> Document {
    protocol::token::custom_claim(&user.app_metadata)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

macro_rules! deny {
    ($d:expr) => {
        return Ok(Outcome::Denied($d))
    };
}

impl Auth {
    fn access_ttl_for(&self, client: Option<&Client>) -> Duration {
        client
            .and_then(|c| c.access_token_ttl)
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs)
            .unwrap_or(self.access_ttl)
    }

    fn refresh_ttl_for(&self, client: &Client) -> Duration {
        client
            .refresh_token_ttl
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs)
            .unwrap_or(self.refresh_ttl)
    }

    /// Signs an access token for `user` as seen by `client_id`.
    fn access_token(
        &self,
        user: &User,
        client_id: &str,
        scopes: &[String],
        ttl: Duration,
        now: i64,
        sid: Option<String>,
    ) -> (String, u64) {
        let claims = AccessClaims {
            iss: self.issuer.clone(),
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
        };
        (self.keys.sign(&claims), ttl.as_secs())
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

    /// Registers a user with a password and signs them in (`user.register`).
    pub async fn register(
        &self,
        tenant: &Tenant,
        client: &Client,
        r: Registration,
        origin: &Origin,
        now: i64,
    ) -> Flow<Issued> {
        let Registration {
            email,
            password,
            name,
            custom_fields,
        } = r;
        let Some(email) = normalize_email(&email) else {
            deny!(Denial::InvalidEmail)
        };
        if let Err(v) = check_policy(password.expose()) {
            deny!(Denial::WeakPassword(v))
        }
        // The hash runs before the uniqueness check, so a taken email costs the same as a new
        // one and registration does not reveal which emails exist by its timing.
        let phc = match self.pool.hash(password).await {
            Ok(phc) => phc,
            Err(o) => deny!(Denial::Overloaded {
                retry_after: o.retry_after
            }),
        };
        let user_id = Uuid::now_v7();
        let (refresh_token, refresh) =
            self.new_refresh(user_id, tenant.id, client, Uuid::now_v7(), now);
        let new_user = NewUser {
            id: user_id,
            tenant_id: tenant.id,
            email,
            name,
            custom_fields,
        };
        let event = events::with_meta(
            origin.event(EventType::UserRegister, Some(tenant.id), Some(user_id), now),
            "client_id",
            &client.client_id,
        );
        let user = match self
            .store
            .register_user(new_user, phc, refresh, Some(event), now)
            .await
        {
            Ok(u) => u,
            Err(StoreError::Conflict(_)) => deny!(Denial::EmailTaken),
            Err(e) => return Err(e),
        };
        let (access_token, expires_in) = self.access_token(
            &user,
            &client.client_id,
            &client.scopes,
            self.access_ttl_for(Some(client)),
            now,
            None,
        );
        Ok(Outcome::Done(Issued {
            user,
            access_token,
            expires_in,
            refresh_token,
        }))
    }

    /// Checks email and password. An unknown email is verified against a dummy hash, so it
    /// costs one real verification, exactly like a wrong password.
    ///
    /// Every attempt takes one unit of the account's failed-sign-in limit before the store or
    /// the hash is asked (an account over its limit is refused there, with no hash), and a
    /// success gives it back. Every failed verification is recorded as a
    /// `user.login_failed` event (refusals before any verification are not: they cost nothing
    /// and must stay cheap under attack).
    /// `Some(Denial::Overloaded)` when the hash pool would refuse a hash now
    /// ([`HashPool::check`]): a sign-in or sign-up is then refused before it is parsed or its
    /// tenant looked up. Takes no place in the pool.
    pub fn shed(&self) -> Option<Denial> {
        self.pool.check().err().map(|o| Denial::Overloaded {
            retry_after: o.retry_after,
        })
    }

    pub async fn check_password(
        &self,
        tenant: &Tenant,
        email: &str,
        password: Password,
        origin: &Origin,
        now: i64,
    ) -> Flow<User> {
        // Admission first, before any database or Redis work: a flood is refused at once, and
        // only requests that will really be hashed spend a database round trip.
        let reservation = match self.pool.reserve() {
            Ok(r) => r,
            Err(o) => deny!(Denial::Overloaded {
                retry_after: o.retry_after
            }),
        };
        let normalized = normalize_email(email);
        let account = account_subject(
            tenant.id,
            normalized
                .as_deref()
                .unwrap_or(email.trim().to_lowercase().as_str()),
        );
        // The attempt is counted before the hash, atomically (one GCRA step, in Redis when
        // configured), so concurrent guesses cannot all pass a look taken before any of them
        // failed: at most the burst of attempts per account is ever hashed. A success gives
        // the unit back below, so only failures use up the limit.
        if let Some(decision) = self.limiter.take(Limit::FailedSignIn, &account).await {
            if !decision.allowed {
                deny!(Denial::RateLimited {
                    limit: Limit::FailedSignIn,
                    decision
                })
            }
        }
        let login = match normalized.as_deref() {
            Some(e) => match self.store.find_password_login(tenant.id, e).await {
                Ok(login) => login,
                Err(err) => {
                    // Nothing was tried: the store fault must not cost the account an attempt.
                    self.limiter.refund(Limit::FailedSignIn, &account).await;
                    return Err(err);
                }
            },
            None => None,
        };
        let phc = login
            .as_ref()
            .map(|l| l.password_hash.clone())
            .unwrap_or_else(|| self.pool.dummy_phc().to_string());
        // Kept for the rehash below; dropped (and wiped) when this function returns.
        let retained = Password::new(password.expose());
        let verification = match reservation.verify(password, phc).await {
            Ok(v) => v,
            Err(o) => {
                self.limiter.refund(Limit::FailedSignIn, &account).await;
                deny!(Denial::Overloaded {
                    retry_after: o.retry_after
                })
            }
        };
        let (login, needs_rehash) = match (login, verification) {
            (Some(l), Verification::Match { needs_rehash }) if !l.user.disabled => {
                self.limiter.refund(Limit::FailedSignIn, &account).await;
                (l, needs_rehash)
            }
            // Unknown email, wrong password or disabled user: the failure taken above stands.
            (login, verification) => {
                let reason = match (&login, verification) {
                    (None, _) => "unknown_user",
                    (Some(l), Verification::Match { .. }) if l.user.disabled => "user_disabled",
                    _ => "invalid_password",
                };
                let user = login.as_ref().map(|l| l.user.id);
                self.login_failed(tenant, user, normalized.as_deref(), reason, origin, now)
                    .await;
                deny!(Denial::InvalidCredentials)
            }
        };
        if needs_rehash {
            self.upgrade_hash(&login.user, &login.password_hash, retained)
                .await;
        }
        Ok(Outcome::Done(login.user))
    }

    /// Records a failed sign-in. Best effort: the denial stands when the store cannot write it.
    async fn login_failed(
        &self,
        tenant: &Tenant,
        user: Option<Uuid>,
        email: Option<&str>,
        reason: &str,
        origin: &Origin,
        now: i64,
    ) {
        let mut event = events::with_meta(
            events::failed(origin.event(EventType::UserLoginFailed, Some(tenant.id), None, now)),
            "reason",
            reason,
        );
        // The account that was tried is the target; nobody is authenticated as an actor.
        event.target_id = user;
        event.target_type = user.map(|_| "user".to_string());
        if let Some(email) = email {
            event = events::with_meta(event, "email", email);
        }
        if let Err(e) = self.store.record_event(event).await {
            tracing::warn!(error = %e, "user.login_failed event not stored");
        }
    }

    /// Re-hashes a password made with old parameters. Best effort: a full pool or a failed
    /// write leaves the old (still valid) hash for the next sign-in.
    async fn upgrade_hash(&self, user: &User, old: &str, password: Password) {
        match self.pool.hash(password).await {
            Ok(new) => match self.store.upgrade_password_hash(user.id, old, &new).await {
                Ok(_) => {
                    tracing::info!(user_id = %user.id, "password hash upgraded to current parameters")
                }
                Err(e) => {
                    tracing::warn!(user_id = %user.id, error = %e, "password hash upgrade not stored")
                }
            },
            Err(_) => {
                tracing::debug!(user_id = %user.id, "hash pool full; password hash upgrade deferred")
            }
        }
    }

    /// Password sign-in: tokens for a new refresh family (`user.login`).
    pub async fn login(
        &self,
        tenant: &Tenant,
        client: &Client,
        email: &str,
        password: Password,
        origin: &Origin,
        now: i64,
    ) -> Flow<Issued> {
        let user = match self
            .check_password(tenant, email, password, origin, now)
            .await?
        {
            Outcome::Done(u) => u,
            Outcome::Denied(d) => deny!(d),
        };
        let (refresh_token, refresh) =
            self.new_refresh(user.id, tenant.id, client, Uuid::now_v7(), now);
        let event = login_event(
            origin,
            tenant.id,
            user.id,
            &client.client_id,
            "password",
            now,
        );
        self.store
            .insert_refresh_token(refresh, Some(event))
            .await?;
        let (access_token, expires_in) = self.access_token(
            &user,
            &client.client_id,
            &client.scopes,
            self.access_ttl_for(Some(client)),
            now,
            None,
        );
        Ok(Outcome::Done(Issued {
            user,
            access_token,
            expires_in,
            refresh_token,
        }))
    }

    /// Exchanges a refresh token for new tokens (rotation). `tenant`, when the caller named
    /// one, must be the token's tenant. A reused token revokes its family
    /// (`token.reuse_detected`).
    pub async fn refresh(
        &self,
        client_id: &str,
        refresh_token: &str,
        tenant: Option<&Tenant>,
        origin: &Origin,
        now: i64,
    ) -> Flow<Issued> {
        let old_hash = hash_opaque(refresh_token);
        let Some(current) = self.store.find_refresh_token(old_hash).await? else {
            deny!(Denial::TokenInvalid)
        };
        if tenant.is_some_and(|t| t.id != current.tenant_id) || current.client_id != client_id {
            deny!(Denial::TokenInvalid)
        }
        if let Some(cache) = &self.cache {
            // Signed out or caught reusing on some instance moments ago: no need to go on.
            if let Ok(true) = cache.family_revoked(current.family_id).await {
                deny!(Denial::TokenInvalid)
            }
        }
        let Some(client) = self.store.find_client(current.tenant_id, client_id).await? else {
            deny!(Denial::TokenInvalid)
        };
        let (new_token, new) = self.new_refresh(
            current.user_id,
            current.tenant_id,
            &client,
            current.family_id,
            now,
        );
        let reuse = origin.event(
            EventType::TokenReuseDetected,
            Some(current.tenant_id),
            Some(current.user_id),
            now,
        );
        match self
            .store
            .rotate_refresh_token(old_hash, client_id, new, Some(reuse), now)
            .await?
        {
            RotateOutcome::Rotated { user, .. } => {
                if user.disabled {
                    deny!(Denial::TokenInvalid)
                }
                let (access_token, expires_in) = self.access_token(
                    &user,
                    client_id,
                    &client.scopes,
                    self.access_ttl_for(Some(&client)),
                    now,
                    None,
                );
                Ok(Outcome::Done(Issued {
                    user,
                    access_token,
                    expires_in,
                    refresh_token: new_token,
                }))
            }
            RotateOutcome::Reused { family_id, user_id } => {
                tracing::warn!(%family_id, %user_id, "refresh token reuse detected; family revoked");
                if let Some(cache) = &self.cache {
                    let _ = cache.family_revoke(family_id, FAMILY_MARK_TTL).await;
                }
                deny!(Denial::TokenReuse)
            }
            RotateOutcome::NotFound | RotateOutcome::Expired | RotateOutcome::Revoked => {
                deny!(Denial::TokenInvalid)
            }
        }
    }

    /// Revokes the family of a refresh token (`user.logout`) on behalf of `owner`: the token
    /// must have been issued to that user, in that tenant (and to that client when one is
    /// named), else the answer is `Denied(NotOwner)` and nothing changes. Idempotent: an
    /// unknown or already revoked token is done, not an error.
    pub async fn revoke_refresh(
        &self,
        refresh_token: &str,
        owner: &TokenOwner,
        origin: &Origin,
        now: i64,
    ) -> Flow<()> {
        let hash = hash_opaque(refresh_token);
        let Some(token) = self.store.find_refresh_token(hash).await? else {
            return Ok(Outcome::Done(()));
        };
        let owned = token.user_id == owner.user_id
            && token.tenant_id == owner.tenant_id
            && owner
                .client_id
                .as_deref()
                .is_none_or(|c| c == token.client_id);
        if !owned {
            deny!(Denial::NotOwner)
        }
        // Only the token is known here: the store fills in its user and tenant.
        let event = origin.event(EventType::UserLogout, None, None, now);
        let revoked = self
            .store
            .revoke_refresh_family(hash, Some(event), now)
            .await?;
        if let (Some(cache), Some(t)) = (&self.cache, revoked) {
            let _ = cache.family_revoke(t.family_id, FAMILY_MARK_TTL).await;
        }
        Ok(Outcome::Done(()))
    }

    /// Revokes every session and refresh family of a user, and their cached sessions
    /// (`user.logout_all`).
    pub async fn logout_all(
        &self,
        user_id: Uuid,
        tenant_id: Option<Uuid>,
        origin: &Origin,
        now: i64,
    ) -> Result<u64, StoreError> {
        let event = origin.event(EventType::UserLogoutAll, tenant_id, Some(user_id), now);
        let n = self
            .store
            .revoke_all_for_user(user_id, Some(event), now)
            .await?;
        if let Some(cache) = &self.cache {
            let _ = cache.revoke_user_sessions(user_id, SESSION_CACHE_TTL).await;
        }
        Ok(n)
    }

    /// Caches a live session for the other instances (and this one).
    async fn cache_session(&self, id: &TokenHash, s: &Session, now: i64) {
        let Some(cache) = &self.cache else { return };
        let left = u64::try_from(s.expires_at.saturating_sub(now)).unwrap_or(0);
        let ttl = Duration::from_secs(left).min(SESSION_CACHE_TTL);
        if !ttl.is_zero() {
            let _ = cache.session_put(id, s, ttl).await;
        }
    }

    /// Starts a cookie session after checking the password (`user.login`).
    pub async fn session_login(
        &self,
        tenant: &Tenant,
        client: &Client,
        email: &str,
        password: Password,
        origin: &Origin,
        now: i64,
    ) -> Flow<NewSessionCookie> {
        let user = match self
            .check_password(tenant, email, password, origin, now)
            .await?
        {
            Outcome::Done(u) => u,
            Outcome::Denied(d) => deny!(d),
        };
        let (value, id_hash) = new_opaque_token();
        let expires_at = now + secs(self.session_ttl);
        let event = login_event(
            origin,
            tenant.id,
            user.id,
            &client.client_id,
            "session",
            now,
        );
        self.store
            .create_session(
                NewSession {
                    id_hash,
                    user_id: user.id,
                    tenant_id: tenant.id,
                    client_id: client.client_id.clone(),
                    created_at: now,
                    expires_at,
                },
                Some(event),
            )
            .await?;
        let session = Session {
            user,
            client_id: client.client_id.clone(),
            created_at: now,
            expires_at,
            revoked_at: None,
        };
        self.cache_session(&id_hash, &session, now).await;
        Ok(Outcome::Done(NewSessionCookie {
            value,
            max_age: self.session_ttl,
        }))
    }

    /// The caller behind a Bearer access token.
    pub fn bearer(&self, token: &str, now: i64) -> Result<Caller, TokenError> {
        self.keys
            .verify(token, now, &self.issuer)
            .map(|claims| Caller { claims })
    }

    /// The caller behind a session cookie, as claims shaped like an access token's. With
    /// Redis the session comes from the shared cache when it is there (no database read), and
    /// a sign-out on any instance is seen at once; without Redis, or while it is unreachable,
    /// from the database.
    pub async fn session(&self, cookie: &str, now: i64) -> Flow<(Caller, User)> {
        let id = hash_opaque(cookie);
        if let Some(cache) = &self.cache {
            match cache.session_get(&id).await {
                Ok(Some(CachedSession::Revoked)) => deny!(Denial::SessionExpired),
                Ok(Some(CachedSession::Live(s))) => return Ok(self.session_caller(*s, now)),
                Ok(None) | Err(_) => {}
            }
        }
        let Some(s) = self.store.find_session(id).await? else {
            deny!(Denial::SessionExpired)
        };
        let outcome = self.session_caller(s.clone(), now);
        if matches!(outcome, Outcome::Done(_)) {
            self.cache_session(&id, &s, now).await;
        }
        Ok(outcome)
    }

    fn session_caller(&self, s: Session, now: i64) -> Outcome<(Caller, User)> {
        if s.revoked_at.is_some() || s.expires_at <= now || s.user.disabled {
            return Outcome::Denied(Denial::SessionExpired);
        }
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: s.user.id.to_string(),
            aud: s.client_id.clone(),
            iat: s.created_at,
            nbf: s.created_at,
            exp: s.expires_at,
            tid: s.user.tenant_id.to_string(),
            amr: vec!["pwd".to_string()],
            scp: String::new(),
            custom: custom_claim(&s.user),
            sid: None,
        };
        Outcome::Done((Caller { claims }, s.user))
    }

    /// Signs a cookie session out: in the database (`user.logout`), then in the shared cache,
    /// so every instance refuses the cookie from its next request on.
    pub async fn end_session(
        &self,
        cookie: &str,
        origin: &Origin,
        now: i64,
    ) -> Result<bool, StoreError> {
        let id = hash_opaque(cookie);
        let event = events::with_meta(
            origin.event(EventType::UserLogout, None, None, now),
            "method",
            "session",
        );
        let live = self.store.revoke_session(id, Some(event), now).await?;
        if let Some(cache) = &self.cache {
            let _ = cache.session_revoke(&id, SESSION_CACHE_TTL).await;
        }
        Ok(live)
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
) -> storage::EventDraft {
    let event = origin.event(EventType::UserLogin, Some(tenant_id), Some(user_id), now);
    events::with_meta(
        events::with_meta(event, "client_id", client_id),
        "method",
        method,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised() {
        for (given, stored) in [
            ("  Ada@Example.COM ", "ada@example.com"),
            // Full width (NFKC), and an ideographic space around it (trimmed after NFKC).
            ("ｚｅｄ@ｘ.ｃｏｍ", "zed@x.com"),
            ("\u{3000}ＺＥＤ@x.com\u{3000}", "zed@x.com"),
            ("ｚｅｄ@x.com", "zed@x.com"),
            // Non-ASCII letters stay, lower-cased and composed: a decomposed `ë` is the same
            // address as the precomposed one.
            ("ZOË@example.com", "zoë@example.com"),
            ("zoe\u{0308}@example.com", "zoë@example.com"),
            ("İ@example.com", "i\u{0307}@example.com"),
            // An IDN stays in its Unicode form; punycode labels are plain ASCII labels.
            ("ada@bücher.example", "ada@bücher.example"),
            ("ada@xn--bcher-kva.example", "ada@xn--bcher-kva.example"),
            ("用户@例子.广告", "用户@例子.广告"),
            // The atext symbols of RFC 5322 and dots between other characters.
            (
                "o'brien+tag@mail.example.co.uk",
                "o'brien+tag@mail.example.co.uk",
            ),
            (
                "a.b-c_d!#$%&*/=?^`{|}~@x-y.io",
                "a.b-c_d!#$%&*/=?^`{|}~@x-y.io",
            ),
        ] {
            assert_eq!(normalize_email(given).as_deref(), Some(stored), "{given:?}");
            // Normalising twice changes nothing: the stored form is a fixed point.
            assert_eq!(
                normalize_email(stored).as_deref(),
                Some(stored),
                "{stored:?}"
            );
        }
    }

    #[test]
    fn implausible_addresses_are_refused() {
        let long_local = format!("{}@x.com", "a".repeat(MAX_LOCAL_PART_BYTES + 1));
        let long_label = format!("a@{}.com", "b".repeat(MAX_LABEL_CHARS + 1));
        let long_total = format!("a@{}com", format!("{}.", "b".repeat(50)).repeat(5));
        assert!(long_total.len() > MAX_EMAIL_BYTES, "{}", long_total.len());
        for bad in [
            "",
            "ada",
            "@x.com",
            "ada@",
            "a b@c.d",
            "a@b@c.d",
            "\"<script>\"@x.com",
            "<ada@x.com>",
            "ada@x.com>",
            "\"ada\"@x.com",
            "ada(comment)@x.com",
            "a\\b@x.com",
            "a,b@x.com",
            ".ada@x.com",
            "ada.@x.com",
            "a..da@x.com",
            "ada@localhost",
            "ada@x..com",
            "ada@.x.com",
            "ada@x.com.",
            "ada@-x.com",
            "ada@x-.com",
            "ada@1.2.3.4",
            "ada@[127.0.0.1]",
            "ada@x_y.com",
            &long_local,
            &long_label,
            &long_total,
            &"a".repeat(10_000),
        ] {
            assert_eq!(normalize_email(bad), None, "{bad:?}");
        }
        let local = "a".repeat(MAX_LOCAL_PART_BYTES);
        assert!(normalize_email(&format!("{local}@x.com")).is_some());
    }

    #[test]
    fn invisible_control_format_and_bidi_characters_are_refused() {
        for c in [
            '\u{0000}',
            '\u{0007}',
            '\u{001B}',
            '\u{007F}',
            '\u{0090}', // controls
            '\u{00AD}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}', // format
            '\u{200E}',
            '\u{200F}',
            '\u{202A}',
            '\u{202E}',
            '\u{2066}',
            '\u{2069}', // bidi
            '\u{061C}',
            '\u{180E}',
            '\u{E0041}', // Arabic letter mark, Mongolian separator, tag
            '\u{034F}',
            '\u{115F}',
            '\u{1160}',
            '\u{3164}',
            '\u{FFA0}',
            '\u{17B4}', // invisible
            '\u{FE0F}',
            '\u{E0100}',
            '\u{180B}', // variation selectors
            '\u{2800}', // braille blank
            '\u{E000}',
            '\u{F8FF}',
            '\u{10FFFD}', // private use
            '\u{0378}',   // unassigned
        ] {
            for at in [0, 2, 3] {
                let mut local: Vec<char> = "zed".chars().collect();
                local.insert(at, c);
                let address: String = local.into_iter().collect::<String>() + "@x.com";
                assert_eq!(
                    normalize_email(&address),
                    None,
                    "U+{:04X} at {at}",
                    c as u32
                );
            }
            assert_eq!(
                normalize_email(&format!("zed@x{c}y.com")),
                None,
                "U+{:04X} in the domain",
                c as u32
            );
        }
        // Spaces: trimmed at either end (after NFKC), refused inside.
        for c in [
            '\u{0020}', '\u{00A0}', '\u{0085}', '\u{2028}', '\u{3000}', '\u{205F}',
        ] {
            assert_eq!(
                normalize_email(&format!("z{c}ed@x.com")),
                None,
                "U+{:04X}",
                c as u32
            );
            assert_eq!(
                normalize_email(&format!("zed{c}@x.com")),
                None,
                "U+{:04X}",
                c as u32
            );
            assert_eq!(
                normalize_email(&format!("zed@x{c}.com")),
                None,
                "U+{:04X}",
                c as u32
            );
            assert_eq!(
                normalize_email(&format!("{c}zed@x.com{c}")).as_deref(),
                Some("zed@x.com")
            );
        }
        // The examples of the report.
        for bad in [
            "\u{200b}zed@x.com",
            "\u{202e}zed@x.com",
            "\"<script>\"@x.com",
        ] {
            assert_eq!(normalize_email(bad), None, "{bad:?}");
        }
        assert_eq!(
            normalize_email("ｚｅｄ@x.com").as_deref(),
            Some("zed@x.com")
        );
    }
}
