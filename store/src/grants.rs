//! Refresh tokens and cookie sessions as the operator sees them (the admin API): listed,
//! counted and revoked per tenant.
//!
//! A refresh "token" here is a refresh family: what one sign-in started, whatever number of
//! rotations it went through. Its id is the family id, and it stands as its latest token does
//! (issued, expires); revoking it revokes the family, as a sign-out does, so no token of it
//! works again. A session is a cookie session, named by its id (never the hash of its cookie).

use uuid::Uuid;

use crate::{AuditEntry, StoreFuture, TokenHash};

/// The state of a refresh family or session at one time: exactly one of the three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantState {
    /// Neither revoked nor expired.
    Active,
    /// Past its expiry without having been revoked.
    Expired,
    /// Revoked (whether expired since or not).
    Revoked,
}

/// One page of refresh families or sessions of a tenant, oldest first (`created_at`, then
/// `id`, ascending), strictly after `after`, the first `offset` of those skipped: every filter
/// that is `Some` must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantQuery {
    pub tenant_id: Uuid,
    pub user_id: Option<Uuid>,
    /// The `client_id` string of the client it was issued to.
    pub client_id: Option<String>,
    /// Only those in this state at this time (Unix seconds).
    pub state: Option<(GrantState, i64)>,
    /// A part of the user's email, any case (the store lowercases it).
    pub email: Option<String>,
    /// `(created_at, id)` of the last one of the previous page.
    pub after: Option<(i64, Uuid)>,
    /// How many of the matching ones to skip (an offset-paged listing's earlier pages).
    pub offset: u32,
    /// At most this many (the engine caps it).
    pub limit: u32,
}

impl GrantQuery {
    /// The first `limit` of the tenant, with no filter.
    pub fn tenant(tenant_id: Uuid, limit: u32) -> GrantQuery {
        GrantQuery {
            tenant_id,
            user_id: None,
            client_id: None,
            state: None,
            email: None,
            after: None,
            offset: 0,
            limit,
        }
    }
}

/// A refresh family as the operator sees it (never a token or its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshGrant {
    /// The family id.
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    /// The user's email as stored now.
    pub user_email: String,
    pub client_id: String,
    /// When the sign-in started it.
    pub created_at: i64,
    /// When its latest token was issued (its last rotation).
    pub issued_at: i64,
    /// When its latest token expires.
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// The scopes the code flow granted; `None` for a password sign-in's family.
    pub scopes: Option<Vec<String>>,
}

impl RefreshGrant {
    /// Neither revoked nor expired at `now`.
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }

    /// Its state at `now`.
    pub fn state(&self, now: i64) -> GrantState {
        state(self.revoked_at, self.expires_at, now)
    }
}

/// A cookie session as the operator sees it (never the hash of its cookie).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionGrant {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    /// The user's email as stored now.
    pub user_email: String,
    pub client_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// How the user signed in (RFC 8176 values).
    pub amr: Vec<String>,
}

impl SessionGrant {
    /// Neither revoked nor expired at `now`.
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }

    /// Its state at `now`.
    pub fn state(&self, now: i64) -> GrantState {
        state(self.revoked_at, self.expires_at, now)
    }
}

fn state(revoked_at: Option<i64>, expires_at: i64, now: i64) -> GrantState {
    match revoked_at {
        Some(_) => GrantState::Revoked,
        None if expires_at > now => GrantState::Active,
        None => GrantState::Expired,
    }
}

/// What a tenant holds at one time: each family or session is exactly one of active, revoked
/// (whether expired since or not) and expired (without having been revoked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantStats {
    pub active: u64,
    pub revoked: u64,
    pub expired: u64,
    /// Those created at or after the stats' `since` (whatever their state now).
    pub created_since: u64,
    /// Those revoked at or after `since`.
    pub revoked_since: u64,
    /// The sum over the active ones of the life they were given: `expires_at - issued_at`
    /// of a family (its latest token's), `expires_at - created_at` of a session, in seconds.
    pub active_lifetime_secs: u64,
    /// The active ones per `client_id`, by `client_id`; clients without any are left out.
    pub by_client: Vec<(String, u64)>,
}

/// The counts of one client's families or sessions (a row of a backend's stats query).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientGrants {
    pub client_id: String,
    pub active: u64,
    pub revoked: u64,
    pub expired: u64,
    pub created_since: u64,
    pub revoked_since: u64,
    pub active_lifetime_secs: u64,
}

impl GrantStats {
    /// The totals of per-client counts.
    pub fn from_clients(per_client: Vec<ClientGrants>) -> GrantStats {
        let mut stats = GrantStats::default();
        for c in per_client {
            stats.active += c.active;
            stats.revoked += c.revoked;
            stats.expired += c.expired;
            stats.created_since += c.created_since;
            stats.revoked_since += c.revoked_since;
            stats.active_lifetime_secs += c.active_lifetime_secs;
            if c.active > 0 {
                stats.by_client.push((c.client_id, c.active));
            }
        }
        stats.by_client.sort();
        stats
    }
}

/// Which grants of a tenant a revocation takes (only those active at its time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeSelector {
    /// One family or session, by its id.
    One(Uuid),
    /// Every one of a user.
    User(Uuid),
    /// Every one issued to a client (by `client_id`).
    Client(String),
    /// Every one of the tenant.
    All,
}

impl RevokeSelector {
    /// What the audit entry of a revocation is about: the one grant (`kind`: `token` or
    /// `session`), the user, the client, or the tenant.
    pub fn target(&self, tenant_id: Uuid, kind: &'static str) -> (&'static str, String) {
        match self {
            RevokeSelector::One(id) => (kind, id.to_string()),
            RevokeSelector::User(user_id) => ("user", user_id.to_string()),
            RevokeSelector::Client(client_id) => ("client", client_id.clone()),
            RevokeSelector::All => ("tenant", tenant_id.to_string()),
        }
    }
}

/// A session a revocation ended: what the engine needs to mark it in the session cache
/// (`SessionCache::session_revoke` takes the hash).
#[derive(Clone, PartialEq, Eq)]
pub struct RevokedSession {
    pub id: Uuid,
    pub id_hash: TokenHash,
    pub user_id: Uuid,
}

impl std::fmt::Debug for RevokedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevokedSession")
            .field("id", &self.id)
            .field("id_hash", &"<redacted>")
            .field("user_id", &self.user_id)
            .finish()
    }
}

/// Refresh families and cookie sessions of a tenant, for the operator. Lookups of another
/// tenant's family or session answer `None`. A count takes what a listing of the same query
/// would, without its cursor, offset and limit (the total of an offset-paged listing). Stats
/// are at `now`, with what was created or revoked at or after `since` counted apart. A revocation sets the same columns the sign-out
/// paths set ([`Tokens::revoke_refresh_family`](crate::Tokens::revoke_refresh_family),
/// [`Tokens::revoke_session`](crate::Tokens::revoke_session)), on the selected grants that are
/// active at `now`, in one transaction with `audit`, which is written only when at least one
/// was revoked (its metadata gains `revoked`: how many; the store completes its tenant and
/// target from the selector).
pub trait GrantAdmin: Send + Sync {
    fn list_refresh_tokens(&self, query: GrantQuery) -> StoreFuture<'_, Vec<RefreshGrant>>;
    fn count_refresh_tokens(&self, query: GrantQuery) -> StoreFuture<'_, u64>;
    /// By family id.
    fn get_refresh_token(&self, tenant_id: Uuid, id: Uuid)
        -> StoreFuture<'_, Option<RefreshGrant>>;
    fn token_stats(&self, tenant_id: Uuid, now: i64, since: i64) -> StoreFuture<'_, GrantStats>;
    /// Returns the ids of the families revoked. Nothing else needs telling: the refresh flow
    /// reads the family's state from the database on every use (the engine's revoked-family
    /// marks in Redis, made from these ids, only refuse a replay sooner).
    fn revoke_refresh_tokens(
        &self,
        tenant_id: Uuid,
        selector: RevokeSelector,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Vec<Uuid>>;
    fn list_sessions(&self, query: GrantQuery) -> StoreFuture<'_, Vec<SessionGrant>>;
    fn count_sessions(&self, query: GrantQuery) -> StoreFuture<'_, u64>;
    /// By the session's id (not the hash of its cookie).
    fn get_session(&self, tenant_id: Uuid, id: Uuid) -> StoreFuture<'_, Option<SessionGrant>>;
    fn session_stats(&self, tenant_id: Uuid, now: i64, since: i64) -> StoreFuture<'_, GrantStats>;
    /// Returns the sessions revoked, each with the hash of its cookie: the engine caches live
    /// sessions by that hash (for up to 5 minutes), so it marks each one revoked in the cache
    /// (`SessionCache::session_revoke`), as a sign-out does; until then a cached copy would
    /// still be served.
    fn revoke_sessions(
        &self,
        tenant_id: Uuid,
        selector: RevokeSelector,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Vec<RevokedSession>>;
}
