//! Admin accounts: people who operate the server through the admin API and its console. They
//! are not users of any tenant: their own table, their own refresh tokens, their own TOTP
//! factor, and a scope like an API key's (`admin`, `readonly`, `tenant:{slug}`).

use uuid::Uuid;

use crate::{AuditEntry, StoreFuture, TokenHash};

/// An admin account as the API shows it (never its password hash or TOTP secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAccount {
    pub id: Uuid,
    /// Normalised like a user's (trimmed, lower case); unique.
    pub email: String,
    pub name: Option<String>,
    /// `admin`, `readonly` or `tenant:{slug}` (the engine parses it on use).
    pub scope: String,
    /// A confirmed TOTP factor guards the account's sign-ins.
    pub mfa_enabled: bool,
    /// Unix seconds; refreshed at most once a minute.
    pub last_seen_at: Option<i64>,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An admin account to create: the engine hashed the password (Argon2id, as users').
#[derive(Clone, PartialEq, Eq)]
pub struct NewAdmin {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub scope: String,
    pub password_hash: String,
    pub created_at: i64,
}

impl std::fmt::Debug for NewAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAdmin")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Changes to an admin account: `None` leaves a field as it is.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AdminChanges {
    pub email: Option<String>,
    pub name: Option<Option<String>>,
    pub scope: Option<String>,
    /// A new password hash: every refresh token of the account is revoked with it.
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for AdminChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminChanges")
            .field("email", &self.email)
            .field("name", &self.name)
            .field("scope", &self.scope)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// An admin with what a sign-in checks.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminLogin {
    pub admin: AdminAccount,
    pub password_hash: String,
}

impl std::fmt::Debug for AdminLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminLogin")
            .field("admin", &self.admin)
            .field("password_hash", &"<redacted>")
            .finish()
    }
}

/// An admin's TOTP factor: the secret sealed under the master key (the admin id as AAD).
#[derive(Clone, PartialEq, Eq)]
pub struct AdminTotp {
    pub secret_sealed: Vec<u8>,
    pub confirmed_at: Option<i64>,
    /// The time step of the last code accepted (each code works once).
    pub last_step: Option<i64>,
}

impl std::fmt::Debug for AdminTotp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminTotp")
            .field("confirmed_at", &self.confirmed_at)
            .field("last_step", &self.last_step)
            .finish_non_exhaustive()
    }
}

/// What a refresh-token rotation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminRefresh {
    /// The token was live: it is now used, the new one stored; the account as it stands.
    Rotated(AdminAccount),
    /// Unknown, expired, or the account is disabled or gone: nothing changed.
    Invalid,
    /// Already used: a replay. Every refresh token of the account was revoked.
    Reused,
}

/// Admin accounts, their refresh tokens and TOTP factors. Every write an operator makes carries
/// its audit entry, written in the same transaction.
pub trait Admins: Send + Sync {
    /// `Conflict("email")` when the email is taken.
    fn create_admin(&self, admin: NewAdmin, audit: AuditEntry) -> StoreFuture<'_, AdminAccount>;
    /// Every account, oldest first.
    fn list_admins(&self) -> StoreFuture<'_, Vec<AdminAccount>>;
    fn get_admin(&self, id: Uuid) -> StoreFuture<'_, Option<AdminAccount>>;
    /// The account and password hash for a sign-in, by normalised email.
    fn find_admin_login(&self, email: &str) -> StoreFuture<'_, Option<AdminLogin>>;
    /// `None` when there is no such account; `Conflict("email")` on a taken email.
    fn update_admin(
        &self,
        id: Uuid,
        changes: AdminChanges,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<AdminAccount>>;
    /// Deletes the account with its refresh tokens and factor. Whether it existed.
    fn delete_admin(&self, id: Uuid, audit: AuditEntry) -> StoreFuture<'_, bool>;
    /// Disabling also revokes every refresh token of the account.
    fn set_admin_disabled(
        &self,
        id: Uuid,
        disabled: bool,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<AdminAccount>>;
    /// Sets `last_seen_at` when unset or older than `now - 60`.
    fn touch_admin(&self, id: Uuid, now: i64) -> StoreFuture<'_, ()>;
    /// Stores a refresh token of a sign-in, with the sign-in's audit entry.
    fn insert_admin_refresh(
        &self,
        token_hash: TokenHash,
        admin_id: Uuid,
        now: i64,
        expires_at: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, ()>;
    /// Uses `old` (live, of an enabled account) and stores `new` in one transaction; a used
    /// one revokes every refresh token of its account ([`AdminRefresh::Reused`]).
    fn rotate_admin_refresh(
        &self,
        old: TokenHash,
        new: TokenHash,
        now: i64,
        expires_at: i64,
    ) -> StoreFuture<'_, AdminRefresh>;
    /// Revokes one refresh token (a sign-out). Whether it was live.
    fn revoke_admin_refresh(&self, token_hash: TokenHash, now: i64) -> StoreFuture<'_, bool>;
    fn find_admin_totp(&self, id: Uuid) -> StoreFuture<'_, Option<AdminTotp>>;
    /// Replaces an unconfirmed factor (refused with `Conflict("totp")` when one is confirmed).
    fn put_admin_totp(&self, id: Uuid, secret_sealed: Vec<u8>, now: i64) -> StoreFuture<'_, ()>;
    /// Confirms the factor with the step of the code that proved it (sets `mfa_enabled`), or,
    /// when already confirmed, accepts a later step than the last one. Whether it applied.
    fn use_admin_totp(
        &self,
        id: Uuid,
        step: i64,
        now: i64,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, bool>;
    /// Removes the factor (clears `mfa_enabled`). Whether there was one.
    fn delete_admin_totp(&self, id: Uuid, audit: AuditEntry) -> StoreFuture<'_, bool>;
}
