//! The HelloJohn store: one trait, several backends.
//!
//! The engine knows no SQL: everything it persists goes through [`Store`]. Each method that
//! changes several rows does so in one transaction, so a failure leaves nothing half-written.
//! Denials (a token already rotated, an email already taken) are outcomes or
//! [`StoreError::Conflict`], never partial writes.

pub mod model;
pub mod postgres;
pub mod redis;
pub mod sqlite;

use std::future::Future;
use std::pin::Pin;

pub use model::*;
use uuid::Uuid;

/// The future every store method returns. Boxed so that `dyn Store` works and the engine can
/// pick a backend at start-up; the allocation is negligible next to a database round trip.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (email taken, slug taken). The payload names what.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached or gave up (connection lost, pool exhausted, busy).
    /// The engine answers 503 and retrying later is safe: nothing was committed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The schema is missing or newer than this binary understands.
    #[error("schema: {0}")]
    Schema(String),
    /// Anything else: a bug or corrupt data.
    #[error("store internal error: {0}")]
    Internal(String),
}

/// Everything the engine persists.
pub trait Store: Send + Sync + 'static {
    /// A name for logs and `/health`: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Connection-pool gauges, merged over every per-core pool.
    fn pool_stats(&self) -> PoolStats {
        PoolStats::default()
    }

    /// Round trip to the database (for readiness).
    fn ping(&self) -> StoreFuture<'_, ()>;

    /// Apply every pending migration. Safe to run concurrently from several processes.
    fn migrate(&self) -> StoreFuture<'_, MigrationStatus>;
    fn migration_status(&self) -> StoreFuture<'_, MigrationStatus>;

    // Tenants and clients.
    fn create_tenant(&self, slug: &str, name: &str, now: i64) -> StoreFuture<'_, Tenant>;
    fn list_tenants(&self) -> StoreFuture<'_, Vec<Tenant>>;
    /// By UUID (when `key` parses as one) or by slug.
    fn find_tenant(&self, key: &str) -> StoreFuture<'_, Option<Tenant>>;
    fn create_client(&self, client: NewClient, now: i64) -> StoreFuture<'_, Client>;
    /// All clients, or those of one tenant.
    fn list_clients(&self, tenant_id: Option<Uuid>) -> StoreFuture<'_, Vec<Client>>;
    fn find_client(&self, tenant_id: Uuid, client_id: &str) -> StoreFuture<'_, Option<Client>>;

    // Users and passwords.
    /// Creates the user, their password identity and their first refresh token in one
    /// transaction. `Conflict("email")` when the email is taken in the tenant.
    fn register_user(
        &self,
        user: NewUser,
        password_hash: String,
        refresh: NewRefreshToken,
        now: i64,
    ) -> StoreFuture<'_, User>;
    fn get_user(&self, user_id: Uuid) -> StoreFuture<'_, Option<User>>;
    /// `email` is already normalised by the caller.
    fn find_password_login(
        &self,
        tenant_id: Uuid,
        email: &str,
    ) -> StoreFuture<'_, Option<PasswordLogin>>;
    /// Replaces the hash only if it is still `old_hash` (a concurrent change wins).
    /// Returns whether it was replaced.
    fn upgrade_password_hash(
        &self,
        user_id: Uuid,
        old_hash: &str,
        new_hash: &str,
    ) -> StoreFuture<'_, bool>;

    // Refresh tokens.
    /// Stores a token (a new family on sign-in).
    fn insert_refresh_token(&self, token: NewRefreshToken) -> StoreFuture<'_, ()>;
    fn find_refresh_token(&self, token_hash: TokenHash) -> StoreFuture<'_, Option<RefreshToken>>;
    /// Exchanges `old_hash` for `new`: one conditional update marks the old token rotated
    /// (only if it was not already), and the new token joins the same family, in one
    /// transaction. Of concurrent calls with the same `old_hash` exactly one gets `Rotated`.
    /// Presenting an already-rotated token revokes the whole family (`Reused`).
    /// `client_id` must match the token's client, else `NotFound`.
    fn rotate_refresh_token(
        &self,
        old_hash: TokenHash,
        client_id: &str,
        new: NewRefreshToken,
        now: i64,
    ) -> StoreFuture<'_, RotateOutcome>;
    /// Revokes the family of the token (logout). Returns the token's record if it existed.
    /// Idempotent.
    fn revoke_refresh_family(
        &self,
        token_hash: TokenHash,
        now: i64,
    ) -> StoreFuture<'_, Option<RefreshToken>>;
    /// Revokes every refresh family and session of the user. Returns how many were revoked.
    fn revoke_all_for_user(&self, user_id: Uuid, now: i64) -> StoreFuture<'_, u64>;

    // Cookie sessions.
    fn create_session(&self, session: NewSession) -> StoreFuture<'_, ()>;
    /// The session with its user, whatever its state; the caller checks expiry and revocation.
    fn find_session(&self, id_hash: TokenHash) -> StoreFuture<'_, Option<Session>>;
    /// Idempotent. Returns whether a live session was revoked.
    fn revoke_session(&self, id_hash: TokenHash, now: i64) -> StoreFuture<'_, bool>;

    // Signing keys.
    fn list_signing_keys(&self) -> StoreFuture<'_, Vec<SigningKey>>;
    /// Inserts the key unless a non-retired key already exists (several instances may start at
    /// once: one key wins). Returns the non-retired keys after the call.
    fn insert_signing_key_if_none(&self, key: SigningKey) -> StoreFuture<'_, Vec<SigningKey>>;
}
