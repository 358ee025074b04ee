//! The admin API's records: API keys and the audit log.
//!
//! An API key is stored as the SHA-256 of its token (the token is 32 random bytes: a slow hash
//! buys nothing), with its scope and life. The audit log is every admin action and every
//! security event, each written in the transaction of the change it records: security events
//! through the event drafts the flows already pass to the store (the backends write an audit
//! row wherever they write an event), admin actions through an [`AuditEntry`] passed to the
//! store method that makes the change.

use uuid::Uuid;

use crate::{EventMeta, TokenHash};

/// An API key as the operator sees it (never its token or hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// The token's first characters (`hjk_` and 8 more): enough to tell keys apart in a list.
    pub key_prefix: String,
    /// `admin`, `readonly` or `tenant:{slug}`, as written; the engine parses it on use (an
    /// unknown scope grants nothing).
    pub scope: String,
    /// Who created it: `cli`, or `api_key:{id}` / `admin:{id}`.
    pub created_by: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; refreshed at most once a minute, not on every request.
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl ApiKey {
    /// Neither revoked nor expired at `now` (Unix seconds).
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

/// An API key to create. The engine makes the token and its hash; the store never sees the token.
#[derive(Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub id: Uuid,
    pub name: String,
    pub key_prefix: String,
    pub key_hash: TokenHash,
    pub scope: String,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("key_prefix", &self.key_prefix)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl NewApiKey {
    /// The key as it reads once created.
    pub fn record(&self) -> ApiKey {
        ApiKey {
            id: self.id,
            name: self.name.clone(),
            key_prefix: self.key_prefix.clone(),
            scope: self.scope.clone(),
            created_by: self.created_by.clone(),
            created_at: self.created_at,
            last_used_at: None,
            expires_at: self.expires_at,
            revoked_at: None,
        }
    }
}

/// One audit-log entry to write, in the transaction of the change it records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// UUIDv7: ordered by time, so it is also the paging cursor's tie-break.
    pub id: Uuid,
    /// The tenant the action is about; `None` for global ones (API keys, admins, tenants list).
    pub tenant_id: Option<Uuid>,
    /// `tenant.create`, `user.disable`, `api_key.revoke`, ... (admin actions), or an event
    /// type (`user.login`, `user.login_failed`, `token.reuse_detected`, ...).
    pub action: String,
    /// `api_key`, `admin`, `cli`, `user` or `system`.
    pub actor_type: String,
    pub actor_id: Option<String>,
    /// The API key's or admin's name, as it was at the time.
    pub actor_name: Option<String>,
    /// `tenant`, `client`, `user`, `api_key`, `admin`, `token`, `session`, `signing_key`,
    /// `webhook`, `audit_log`.
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub metadata: EventMeta,
    /// `success` or `failure`.
    pub result: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// An audit-log entry as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub action: String,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub metadata: crate::Metadata,
    pub result: String,
    pub created_at: i64,
}

/// What an audit-log listing asks for: every filter that is `Some` must hold. Newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// One tenant's entries; `None`: every entry (global ones included).
    pub tenant_id: Option<Uuid>,
    /// An exact action, or a prefix ending in `.` (`user.` matches `user.login`, ...).
    pub action: Option<String>,
    /// An actor id (an API key's, an admin's or a user's).
    pub actor_id: Option<String>,
    pub target_id: Option<String>,
    /// Unix seconds, inclusive.
    pub from: Option<i64>,
    /// Unix seconds, exclusive.
    pub to: Option<i64>,
    /// Entries strictly older than this one (`(created_at, id)` of the last entry of the
    /// previous page).
    pub before: Option<(i64, Uuid)>,
    /// At most this many (the engine caps it).
    pub limit: u32,
}
