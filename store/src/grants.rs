//! Refresh tokens and cookie sessions as the operator sees them (the admin API): listed,
//! counted and revoked per tenant.
//!
//! A refresh "token" here is a refresh family: what one sign-in started, whatever number of
//! rotations it went through. Its id is the family id, and it stands as its latest token does
//! (issued, expires); revoking it revokes the family, as a sign-out does, so no token of it
//! works again. A session is a cookie session, named by its id (never the hash of its cookie).

use uuid::Uuid;

use crate::{AuditEntry, StoreFuture, TokenHash};

/// One page of refresh families or sessions of a tenant, oldest first (`created_at`, then
/// `id`, ascending), strictly after `after`: every filter that is `Some` must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantQuery {
    pub tenant_id: Uuid,
    pub user_id: Option<Uuid>,
    /// The `client_id` string of the client it was issued to.
    pub client_id: Option<String>,
    /// Only those active at this time (Unix seconds): neither revoked nor expired.
    pub active_at: Option<i64>,
    /// `(created_at, id)` of the last one of the previous page.
    pub after: Option<(i64, Uuid)>,
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
            active_at: None,
            after: None,
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
}

/// A cookie session as the operator sees it (never the hash of its cookie).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionGrant {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: Uuid,
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
}

/// What a tenant holds at one time: each family or session is exactly one of active, revoked
/// (whether expired since or not) and expired (without having been revoked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantStats {
    pub active: u64,
    pub revoked: u64,
    pub expired: u64,
    /// The active ones per `client_id`, by `client_id`; clients without any are left out.
    pub by_client: Vec<(String, u64)>,
}

impl GrantStats {
    /// The totals of per-client counts `(client_id, active, revoked, expired)`.
    pub fn from_clients(per_client: Vec<(String, u64, u64, u64)>) -> GrantStats {
        let mut stats = GrantStats::default();
        for (client_id, active, revoked, expired) in per_client {
            stats.active += active;
            stats.revoked += revoked;
            stats.expired += expired;
            if active > 0 {
                stats.by_client.push((client_id, active));
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
/// tenant's family or session answer `None`. A revocation sets the same columns the sign-out
/// paths set ([`Tokens::revoke_refresh_family`](crate::Tokens::revoke_refresh_family),
/// [`Tokens::revoke_session`](crate::Tokens::revoke_session)), on the selected grants that are
/// active at `now`, in one transaction with `audit`, which is written only when at least one
/// was revoked (its metadata gains `revoked`: how many; the store completes its tenant and
/// target from the selector).
pub trait GrantAdmin: Send + Sync {
    fn list_refresh_tokens(&self, query: GrantQuery) -> StoreFuture<'_, Vec<RefreshGrant>>;
    /// By family id.
    fn get_refresh_token(&self, tenant_id: Uuid, id: Uuid)
        -> StoreFuture<'_, Option<RefreshGrant>>;
    fn token_stats(&self, tenant_id: Uuid, now: i64) -> StoreFuture<'_, GrantStats>;
    /// Returns how many families were revoked. Nothing else needs telling: the refresh flow
    /// reads the family's state from the database on every use (the engine's revoked-family
    /// marks in Redis only refuse a replay sooner).
    fn revoke_refresh_tokens(
        &self,
        tenant_id: Uuid,
        selector: RevokeSelector,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, u64>;
    fn list_sessions(&self, query: GrantQuery) -> StoreFuture<'_, Vec<SessionGrant>>;
    /// By the session's id (not the hash of its cookie).
    fn get_session(&self, tenant_id: Uuid, id: Uuid) -> StoreFuture<'_, Option<SessionGrant>>;
    fn session_stats(&self, tenant_id: Uuid, now: i64) -> StoreFuture<'_, GrantStats>;
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
