//! Users and tenants as the admin API manages them: listing and counting users, creating,
//! changing and deleting them, their passwords and status, and the audit entry each change
//! writes in its own transaction.
//!
//! Every method is scoped by a tenant: a user of another tenant is `None` (or `false`), and
//! nothing of it changes. A refused change (no such user, an email already taken) writes
//! nothing, its audit entry included.

use uuid::Uuid;

use crate::{AuditEntry, Metadata, NewUser, StoreFuture, User};

/// Which users a listing or a count takes, by their `disabled` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Active,
    Disabled,
}

/// The users of one tenant that a listing or a count takes: every filter that is `Some` must
/// hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFilter {
    pub tenant_id: Uuid,
    /// A part of the email, any case (emails are stored in lower case; the store lowercases
    /// this).
    pub email: Option<String>,
    /// `None`: active and disabled users.
    pub status: Option<UserStatus>,
}

impl UserFilter {
    /// Every user of the tenant.
    pub fn tenant(tenant_id: Uuid) -> UserFilter {
        UserFilter {
            tenant_id,
            email: None,
            status: None,
        }
    }
}

/// One page of users: those matching `filter`, oldest first (`created_at`, then `id`,
/// ascending), strictly after `after`, the first `offset` of those skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserQuery {
    pub filter: UserFilter,
    /// `(created_at, id)` of the last user of the previous page.
    pub after: Option<(i64, Uuid)>,
    /// How many of the matching users to skip (an offset-paged listing's earlier pages).
    pub offset: u32,
    /// At most this many (the engine caps it).
    pub limit: u32,
}

/// Changes to a user: `None` leaves a field as it is. The metadata are replaced whole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserChanges {
    /// Already normalised by the caller. A new address is not verified: `email_verified`
    /// becomes false, and the user's unused email tokens (sent to the old address) are deleted.
    pub email: Option<String>,
    /// `Some(None)` clears the name.
    pub name: Option<Option<String>>,
    pub custom_fields: Option<Metadata>,
    pub app_metadata: Option<Metadata>,
}

impl UserChanges {
    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == UserChanges::default()
    }
}

/// Changes to a tenant: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantChanges {
    pub name: Option<String>,
    /// Checked by the caller (the CLI's slug rules). `Conflict("slug")` when taken.
    pub slug: Option<String>,
    /// Whose issuer and keys its tokens carry (see [`crate::IssuerMode`]).
    pub issuer_mode: Option<crate::IssuerMode>,
}

impl TenantChanges {
    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == TenantChanges::default()
    }
}

impl AuditEntry {
    /// A successful action by `actor_type` (`cli`, `system`, `api_key`, `admin`) at
    /// `created_at`, with a new UUIDv7 and nothing else set: the caller adds the actor, the
    /// request and the target it knows; the store completes the target of what it creates.
    pub fn new(action: &str, actor_type: &str, created_at: i64) -> AuditEntry {
        AuditEntry {
            id: Uuid::now_v7(),
            tenant_id: None,
            action: action.to_string(),
            actor_type: actor_type.to_string(),
            actor_id: None,
            actor_name: None,
            target_type: None,
            target_id: None,
            ip_address: None,
            user_agent: None,
            request_id: None,
            metadata: crate::EventMeta::new(),
            result: "success".to_string(),
            created_at,
        }
    }

    /// Fills what the caller left unset: the tenant, and the target (type and id together).
    /// The store calls it with what the change was about (a tenant or user it created, the
    /// user whose tokens it revoked), so an entry names its target even when the caller could
    /// not know it beforehand.
    pub fn about(mut self, tenant_id: Uuid, target_type: &str, target_id: &str) -> AuditEntry {
        self.tenant_id.get_or_insert(tenant_id);
        if self.target_id.is_none() {
            self.target_type = Some(target_type.to_string());
            self.target_id = Some(target_id.to_string());
        }
        self
    }

    /// The entry with `metadata[key] = n` (how many tokens or sessions a change revoked).
    pub fn with_count(mut self, key: &str, n: u64) -> AuditEntry {
        self.metadata.insert(key, n);
        self
    }
}

/// Users as an operator manages them (the admin API). Each change takes the [`AuditEntry`]
/// of the action and writes it in the change's transaction, once, and only when the change is
/// made: a call answering `None`, `false` or an error writes none.
pub trait UserAdmin: Send + Sync {
    /// The user, only if it belongs to the tenant.
    fn find_user(&self, tenant_id: Uuid, user_id: Uuid) -> StoreFuture<'_, Option<User>>;
    /// One page of users (see [`UserQuery`]).
    fn list_users(&self, query: UserQuery) -> StoreFuture<'_, Vec<User>>;
    /// How many users match `filter`.
    fn count_users(&self, filter: UserFilter) -> StoreFuture<'_, u64>;
    /// Creates the user with, when `password_hash` is given, their password identity (a user
    /// without one cannot sign in with a password: the sign-in finds no identity, as for an
    /// unknown email), in one transaction with `audit` (completed with the user as target).
    /// `Conflict("email")` when the email is taken in the tenant (nothing written).
    #[allow(clippy::too_many_arguments)]
    fn create_user(
        &self,
        user: NewUser,
        password_hash: Option<String>,
        email_verified: bool,
        app_metadata: Metadata,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, User>;
    /// Applies `changes` (see [`UserChanges`]). Returns the user as it stands after them;
    /// `None` when the tenant has no such user. Empty changes change nothing and write no
    /// audit entry. `Conflict("email")` when the new email is taken (nothing written).
    fn update_user(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        changes: UserChanges,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<User>>;
    /// Deletes the user and everything of theirs (password, refresh families and tokens,
    /// sessions, codes, consents, MFA factor, recovery codes, challenges, remembered devices,
    /// email tokens) in one transaction. The events and audit entries that name them stay.
    /// Returns whether the tenant had the user. A session of theirs the engine cached is
    /// refused once the engine sees the user gone (it checks the user of every session); the
    /// engine may also mark them (`SessionCache::revoke_user_sessions`).
    fn delete_user(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        audit: AuditEntry,
    ) -> StoreFuture<'_, bool>;
    /// Replaces the user's password hash (or gives them a password identity), and in the same
    /// transaction revokes every live refresh family and session of the user (as
    /// [`Tokens::revoke_all_for_user`](crate::Tokens::revoke_all_for_user) does) and uses up
    /// their unused password-reset tokens. Returns how many families plus sessions were
    /// revoked (the audit entry's metadata gains `revoked`); `None` when the tenant has no
    /// such user. The engine marks the user's cached sessions
    /// (`SessionCache::revoke_user_sessions`), as a sign-out everywhere does: the user is
    /// still enabled, so nothing else would refuse a cached copy.
    fn set_password(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        password_hash: String,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<u64>>;
    /// Disables the user with `reason` (revoking every live refresh family and session, as
    /// [`Accounts::set_user_disabled`](crate::Accounts::set_user_disabled) does), or enables
    /// them (the reason is cleared). Returns how many families plus sessions were revoked
    /// (the audit entry's metadata gains `revoked`); `None` when the tenant has no such user.
    #[allow(clippy::too_many_arguments)]
    fn set_user_status(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        disabled: bool,
        reason: Option<String>,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<u64>>;
    /// Sets or clears `email_verified`. Returns the user after it; `None` when the tenant has
    /// no such user.
    fn set_email_verified(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        verified: bool,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<User>>;
}
