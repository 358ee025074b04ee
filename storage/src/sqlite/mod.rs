//! The embedded SQLite store, the default backend.
//!
//! SQLite calls block, so none runs on the async executor: every job is a boxed closure sent
//! to a dedicated OS thread and answered through a `tokio::sync::oneshot`.
//!
//! * One writer thread owns the only write connection. All writes are serialised there, and
//!   each change of several rows runs in one `BEGIN IMMEDIATE` transaction, so conditional
//!   updates (refresh rotation, "insert a key if none") are decided by one writer at a time.
//! * `readers` reader threads, each with its own `query_only` connection, share one job queue.
//!   In WAL mode they read concurrently with the writer.
//!
//! Dropping the store closes the queues; the threads finish the jobs already queued, close
//! their connections and are joined, the readers first and the writer last (which
//! checkpoints and removes the WAL).
//!
//! The SQL of each method lives next to it in the submodules; every value is a bound parameter.

mod admin;
mod admins;
mod audit_row;
mod codes;
mod directory;
mod error;
mod events;
mod grants;
mod keys;
mod mail;
mod manage;
mod mfa;
mod migrate;
mod outbox;
mod refresh;
mod sessions;
mod tenants;
mod user_row;
mod users;
mod webhooks;
mod worker;

use crate::lifecycle::{ChallengeGrant, EmailToken, MailRecord, MfaChallenge, NewMail, TotpFactor};
use error::db;
use std::path::Path;

use store::{Accounts, Administration, Factors, Metadata, Outbox, SigningKeys, Tokens};
use uuid::Uuid;

use crate::{
    AuditEntry, AuthCode, Claimed, Consent, DeliveryFilter, Event, EventDraft, KeepSignIn,
    MigrationStatus, NewAuthCode, NewRefreshToken, NewSession, NewUser, NewWebhookEndpoint,
    OutboxKind, OutboxResult, PasswordLogin, Redeem, Redemption, RefreshRotation, RefreshToken,
    RotateOutcome, Session, SigningKey, StoreError, StoreFuture, TokenHash, User, WebhookChanges,
    WebhookDelivery, WebhookEndpoint,
};
use worker::Pool;

/// The SQLite [`Store`](store::Store): one writer thread, `readers` reader threads.
pub struct SqliteStore {
    pool: Pool,
}

impl SqliteStore {
    /// Opens (creating the file and its parent directory if missing) the database at `path`
    /// with one write connection and `readers` read connections (at least one). What it
    /// creates is owner-only: the directory 0700, the database file 0600, and so its `-wal`
    /// and `-shm` files (see [`store::files`]).
    ///
    /// Does not migrate: call [`Administration::migrate`].
    pub fn open(path: &Path, readers: usize) -> Result<SqliteStore, StoreError> {
        Ok(SqliteStore {
            pool: Pool::start(path, readers.max(1))?,
        })
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl Administration for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        self.pool.read(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(())).map_err(db)?;
            Ok(())
        })
    }

    fn migrate(&self) -> StoreFuture<'_, MigrationStatus> {
        self.pool.write(migrate::migrate)
    }

    fn migration_status(&self) -> StoreFuture<'_, MigrationStatus> {
        self.pool.read(|conn| migrate::status(conn))
    }

    fn list_events(&self, tenant_id: Option<Uuid>, limit: u32) -> StoreFuture<'_, Vec<Event>> {
        self.pool
            .read(move |conn| events::list_events(conn, tenant_id, limit))
    }

    fn create_webhook_endpoint(
        &self,
        endpoint: NewWebhookEndpoint,
        now: i64,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, WebhookEndpoint> {
        self.pool
            .write(move |conn| webhooks::create_endpoint(conn, endpoint, now, audit))
    }

    fn update_webhook_endpoint(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        changes: WebhookChanges,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<WebhookEndpoint>> {
        self.pool
            .write(move |conn| webhooks::update_endpoint(conn, tenant_id, id, changes, audit))
    }

    fn enqueue_webhook_test(
        &self,
        tenant_id: Uuid,
        endpoint_id: Uuid,
        event: Event,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<Uuid>> {
        self.pool
            .write(move |conn| webhooks::enqueue_test(conn, tenant_id, endpoint_id, event, audit))
    }

    fn list_webhook_endpoints(
        &self,
        tenant_id: Option<Uuid>,
    ) -> StoreFuture<'_, Vec<WebhookEndpoint>> {
        self.pool
            .read(move |conn| webhooks::list_endpoints(conn, tenant_id))
    }

    fn delete_webhook_endpoint(
        &self,
        id: Uuid,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, bool> {
        self.pool
            .write(move |conn| webhooks::delete_endpoint(conn, id, audit))
    }

    fn list_webhook_deliveries(
        &self,
        filter: DeliveryFilter,
    ) -> StoreFuture<'_, Vec<WebhookDelivery>> {
        self.pool
            .read(move |conn| webhooks::list_deliveries(conn, &filter))
    }

    fn get_webhook_delivery(&self, id: Uuid) -> StoreFuture<'_, Option<WebhookDelivery>> {
        self.pool.read(move |conn| webhooks::get_delivery(conn, id))
    }

    fn redeliver_webhook(&self, id: Uuid, now_ms: i64) -> StoreFuture<'_, bool> {
        self.pool
            .write(move |conn| webhooks::redeliver(conn, id, now_ms))
    }

    fn list_mail(&self, tenant_id: Option<Uuid>, limit: u32) -> StoreFuture<'_, Vec<MailRecord>> {
        self.pool
            .read(move |conn| mail::list_mail(conn, tenant_id, limit))
    }
}

impl Accounts for SqliteStore {
    fn register_user(
        &self,
        user: NewUser,
        password_hash: String,
        refresh: Option<NewRefreshToken>,
        event: Option<EventDraft>,
        now: i64,
    ) -> StoreFuture<'_, User> {
        self.pool.write(move |conn| {
            users::register_user(conn, user, &password_hash, refresh.as_ref(), event, now)
        })
    }

    fn get_user(&self, user_id: Uuid) -> StoreFuture<'_, Option<User>> {
        self.pool
            .read(move |conn| user_row::get_user(conn, user_id))
    }

    fn find_password_login(
        &self,
        tenant_id: Uuid,
        email: &str,
    ) -> StoreFuture<'_, Option<PasswordLogin>> {
        let email = email.to_owned();
        self.pool
            .read(move |conn| users::find_password_login(conn, tenant_id, &email))
    }

    fn find_user_by_email(&self, tenant_id: Uuid, email: &str) -> StoreFuture<'_, Option<User>> {
        let email = email.to_owned();
        self.pool
            .read(move |conn| users::find_user_by_email(conn, tenant_id, &email))
    }

    fn set_user_app_metadata(
        &self,
        user_id: Uuid,
        app_metadata: Metadata,
    ) -> StoreFuture<'_, Option<User>> {
        self.pool
            .write(move |conn| users::set_user_app_metadata(conn, user_id, app_metadata.as_json()))
    }

    fn merge_user_metadata(
        &self,
        user_id: Uuid,
        patch: Metadata,
        max_bytes: usize,
    ) -> StoreFuture<'_, Option<User>> {
        self.pool.write(move |conn| {
            users::merge_user_metadata(conn, user_id, patch.as_json(), max_bytes)
        })
    }

    fn set_user_disabled(
        &self,
        user_id: Uuid,
        disabled: bool,
        now: i64,
    ) -> StoreFuture<'_, Option<u64>> {
        self.pool
            .write(move |conn| users::set_user_disabled(conn, user_id, disabled, now))
    }

    fn upgrade_password_hash(
        &self,
        user_id: Uuid,
        old_hash: &str,
        new_hash: &str,
    ) -> StoreFuture<'_, bool> {
        let (old_hash, new_hash) = (old_hash.to_owned(), new_hash.to_owned());
        self.pool
            .write(move |conn| users::upgrade_password_hash(conn, user_id, &old_hash, &new_hash))
    }

    fn find_consent(&self, user_id: Uuid, client_id: &str) -> StoreFuture<'_, Option<Vec<String>>> {
        let client_id = client_id.to_string();
        self.pool
            .read(move |conn| sessions::find_consent(conn, user_id, &client_id))
    }

    fn put_consent(&self, consent: Consent) -> StoreFuture<'_, ()> {
        self.pool
            .write(move |conn| sessions::put_consent(conn, &consent))
    }

    fn issue_email_token(&self, token: EmailToken, mail: NewMail) -> StoreFuture<'_, ()> {
        self.pool
            .write(move |conn| mail::issue_email_token(conn, &token, &mail))
    }

    fn find_email_token(&self, token_hash: TokenHash) -> StoreFuture<'_, Option<EmailToken>> {
        self.pool
            .read(move |conn| mail::find_email_token(conn, &token_hash))
    }

    fn use_verify_token(
        &self,
        token_hash: TokenHash,
        event: Option<EventDraft>,
        now: i64,
    ) -> StoreFuture<'_, Option<EmailToken>> {
        self.pool
            .write(move |conn| mail::use_verify_token(conn, &token_hash, event, now))
    }

    fn use_reset_token(
        &self,
        token_hash: TokenHash,
        password_hash: String,
        event: Option<EventDraft>,
        now: i64,
    ) -> StoreFuture<'_, Option<EmailToken>> {
        self.pool
            .write(move |conn| mail::use_reset_token(conn, &token_hash, &password_hash, event, now))
    }

    fn prune_email_tokens(&self, before: i64, limit: u32) -> StoreFuture<'_, u64> {
        self.pool
            .write(move |conn| mail::prune_email_tokens(conn, before, limit))
    }
}

impl Tokens for SqliteStore {
    fn insert_refresh_token(
        &self,
        token: NewRefreshToken,
        event: Option<EventDraft>,
    ) -> StoreFuture<'_, ()> {
        self.pool
            .write(move |conn| refresh::insert_refresh_token(conn, &token, event))
    }

    fn find_refresh_token(&self, token_hash: TokenHash) -> StoreFuture<'_, Option<RefreshToken>> {
        self.pool
            .read(move |conn| refresh::find_refresh_token(conn, &token_hash))
    }

    fn rotate_refresh_token(
        &self,
        old_hash: TokenHash,
        client_id: &str,
        new: NewRefreshToken,
        reuse_event: Option<EventDraft>,
        now: i64,
    ) -> StoreFuture<'_, RotateOutcome> {
        let client_id = client_id.to_owned();
        self.pool.write(move |conn| {
            refresh::rotate_refresh_token(conn, &old_hash, &client_id, &new, reuse_event, now)
        })
    }

    fn rotate_refresh(&self, rotation: RefreshRotation) -> StoreFuture<'_, RotateOutcome> {
        self.pool
            .write(move |conn| refresh::rotate_refresh(conn, rotation))
    }

    fn revoke_refresh_family(
        &self,
        token_hash: TokenHash,
        event: Option<EventDraft>,
        now: i64,
    ) -> StoreFuture<'_, Option<RefreshToken>> {
        self.pool
            .write(move |conn| refresh::revoke_refresh_family(conn, &token_hash, event, now))
    }

    fn revoke_all_for_user(
        &self,
        user_id: Uuid,
        event: Option<EventDraft>,
        now: i64,
    ) -> StoreFuture<'_, u64> {
        self.pool
            .write(move |conn| refresh::revoke_all_for_user(conn, user_id, event, now))
    }

    fn create_session(
        &self,
        session: NewSession,
        event: Option<EventDraft>,
    ) -> StoreFuture<'_, ()> {
        self.pool
            .write(move |conn| sessions::create_session(conn, &session, event))
    }

    fn find_session(&self, id_hash: TokenHash) -> StoreFuture<'_, Option<Session>> {
        self.pool
            .read(move |conn| sessions::find_session(conn, &id_hash))
    }

    fn revoke_session(
        &self,
        id_hash: TokenHash,
        event: Option<EventDraft>,
        now: i64,
    ) -> StoreFuture<'_, bool> {
        self.pool
            .write(move |conn| sessions::revoke_session(conn, &id_hash, event, now))
    }

    fn insert_auth_code(&self, code: NewAuthCode) -> StoreFuture<'_, ()> {
        self.pool
            .write(move |conn| codes::insert_auth_code(conn, &code))
    }

    fn find_auth_code(&self, code_hash: TokenHash) -> StoreFuture<'_, Option<AuthCode>> {
        self.pool
            .read(move |conn| codes::find_auth_code(conn, &code_hash))
    }

    fn redeem_auth_code(
        &self,
        code_hash: TokenHash,
        redeem: Redeem,
        now: i64,
    ) -> StoreFuture<'_, Redemption> {
        self.pool
            .write(move |conn| codes::redeem_auth_code(conn, &code_hash, redeem, now))
    }

    fn revoke_access_token(
        &self,
        jti: &str,
        tenant_id: Uuid,
        expires_at: i64,
        now: i64,
    ) -> StoreFuture<'_, ()> {
        let jti = jti.to_owned();
        self.pool
            .write(move |conn| codes::revoke_access_token(conn, &jti, tenant_id, expires_at, now))
    }

    fn revoked_tokens_since(&self, since: i64, now: i64) -> StoreFuture<'_, Vec<(String, i64)>> {
        self.pool
            .read(move |conn| codes::revoked_tokens_since(conn, since, now))
    }

    fn prune_revoked_tokens(&self, before: i64, limit: u32) -> StoreFuture<'_, u64> {
        self.pool
            .write(move |conn| codes::prune_revoked_tokens(conn, before, limit))
    }

    fn prune_auth_codes(&self, before: i64, limit: u32) -> StoreFuture<'_, u64> {
        self.pool
            .write(move |conn| codes::prune_auth_codes(conn, before, limit))
    }
}

impl SigningKeys for SqliteStore {
    fn list_signing_keys(&self) -> StoreFuture<'_, Vec<SigningKey>> {
        self.pool.read(|conn| keys::list_signing_keys(conn))
    }

    fn insert_signing_key_if_none(&self, key: SigningKey) -> StoreFuture<'_, Vec<SigningKey>> {
        self.pool
            .write(move |conn| keys::insert_signing_key_if_none(conn, &key))
    }

    fn rotate_signing_key(
        &self,
        key: SigningKey,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, u64> {
        self.pool
            .write(move |conn| keys::rotate_signing_key(conn, &key, audit))
    }
}

impl Factors for SqliteStore {
    fn find_totp(&self, user_id: Uuid) -> StoreFuture<'_, Option<TotpFactor>> {
        self.pool.read(move |conn| mfa::find_totp(conn, user_id))
    }

    fn put_totp_secret(
        &self,
        user_id: Uuid,
        secret_sealed: Vec<u8>,
        now: i64,
    ) -> StoreFuture<'_, bool> {
        self.pool
            .write(move |conn| mfa::put_totp_secret(conn, user_id, &secret_sealed, now))
    }

    fn confirm_totp(
        &self,
        user_id: Uuid,
        step: i64,
        recovery: Vec<TokenHash>,
        keep: KeepSignIn,
        event: Option<EventDraft>,
        now: i64,
    ) -> StoreFuture<'_, bool> {
        self.pool
            .write(move |conn| mfa::confirm_totp(conn, user_id, step, &recovery, keep, event, now))
    }

    fn use_totp_step(&self, user_id: Uuid, step: i64) -> StoreFuture<'_, bool> {
        self.pool
            .write(move |conn| mfa::use_totp_step(conn, user_id, step))
    }

    fn delete_totp(
        &self,
        user_id: Uuid,
        event: Option<EventDraft>,
        _now: i64,
    ) -> StoreFuture<'_, bool> {
        self.pool
            .write(move |conn| mfa::delete_totp(conn, user_id, event))
    }

    fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        recovery: Vec<TokenHash>,
        now: i64,
    ) -> StoreFuture<'_, bool> {
        self.pool
            .write(move |conn| mfa::replace_recovery_codes(conn, user_id, &recovery, now))
    }

    fn use_recovery_code(
        &self,
        user_id: Uuid,
        code_hash: TokenHash,
        now: i64,
    ) -> StoreFuture<'_, bool> {
        self.pool
            .write(move |conn| mfa::use_recovery_code(conn, user_id, &code_hash, now))
    }

    fn recovery_codes_left(&self, user_id: Uuid) -> StoreFuture<'_, u32> {
        self.pool
            .read(move |conn| mfa::recovery_codes_left(conn, user_id))
    }

    fn insert_mfa_challenge(&self, challenge: MfaChallenge) -> StoreFuture<'_, ()> {
        self.pool
            .write(move |conn| mfa::insert_mfa_challenge(conn, &challenge))
    }

    fn find_mfa_challenge(&self, token_hash: TokenHash) -> StoreFuture<'_, Option<MfaChallenge>> {
        self.pool
            .read(move |conn| mfa::find_mfa_challenge(conn, &token_hash))
    }

    fn fail_mfa_challenge(&self, token_hash: TokenHash) -> StoreFuture<'_, u32> {
        self.pool
            .write(move |conn| mfa::fail_mfa_challenge(conn, &token_hash))
    }

    fn complete_mfa_challenge(
        &self,
        token_hash: TokenHash,
        max_failures: u32,
        grant: ChallengeGrant,
        now: i64,
    ) -> StoreFuture<'_, bool> {
        self.pool.write(move |conn| {
            mfa::complete_mfa_challenge(conn, &token_hash, max_failures, grant, now)
        })
    }

    fn is_trusted_device(
        &self,
        user_id: Uuid,
        token_hash: TokenHash,
        now: i64,
    ) -> StoreFuture<'_, bool> {
        self.pool
            .read(move |conn| mfa::is_trusted_device(conn, user_id, &token_hash, now))
    }

    fn prune_mfa(&self, before: i64, limit: u32) -> StoreFuture<'_, u64> {
        self.pool
            .write(move |conn| mfa::prune_mfa(conn, before, limit))
    }
}

impl Outbox for SqliteStore {
    fn record_event(&self, event: EventDraft) -> StoreFuture<'_, Event> {
        self.pool
            .write(move |conn| events::record_event(conn, event))
    }

    fn claim(
        &self,
        kind: OutboxKind,
        now_ms: i64,
        leased_until_ms: i64,
        limit: u32,
    ) -> StoreFuture<'_, Vec<Claimed>> {
        self.pool
            .write(move |conn| outbox::claim(conn, kind, now_ms, leased_until_ms, limit))
    }

    fn complete(&self, result: OutboxResult) -> StoreFuture<'_, bool> {
        self.pool.write(move |conn| outbox::complete(conn, &result))
    }

    fn backlog(&self, kind: OutboxKind, now_ms: i64) -> StoreFuture<'_, u64> {
        self.pool
            .read(move |conn| outbox::backlog(conn, kind, now_ms))
    }

    fn prune(&self, kind: OutboxKind, before: i64, limit: u32) -> StoreFuture<'_, u64> {
        self.pool
            .write(move |conn| outbox::prune(conn, kind, before, limit))
    }
}
