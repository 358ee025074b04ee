//! The PostgreSQL store: the production and multi-instance backend, with the same semantics
//! as the embedded SQLite store (the same suite runs against both).
//!
//! * Connections come from per-core pools (`pool`): each calling thread uses one pool, so a
//!   pool's connection tasks run on the runtime that uses them. Waiting for a connection is
//!   bounded (`acquire_timeout`), and so are opening one (`connect_timeout`) and each store
//!   call (`query_timeout`); past a bound the call fails with [`StoreError::Unavailable`].
//! * Every statement is an unnamed one with explicit parameter types (`query_typed`,
//!   `execute_typed`): no prepared statements, so it works behind PgBouncer in transaction
//!   mode. Changes of several rows run in one transaction (`BEGIN` … `COMMIT`), so a failure —
//!   the server restarting included — leaves nothing half-written. Statements that do not
//!   depend on each other's results are pipelined (one round trip).
//! * TLS through rustls with libpq's `sslmode` / `sslrootcert` meanings (`url`, `tls`).
//! * A broken connection is closed rather than returned to its pool; the next call opens a new
//!   one, so service resumes by itself once the server is back.
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
mod options;
mod outbox;
mod params;
mod pipelined;
mod pool;
mod refresh;
mod sessions;
mod tenants;
mod tls;
mod url;
mod user_row;
mod users;
mod webhooks;

use crate::lifecycle::{ChallengeGrant, EmailToken, MailRecord, MfaChallenge, NewMail, TotpFactor};
use error::db;
use std::time::Duration;

use store::{Accounts, Administration, Factors, Metadata, Outbox, SigningKeys, Tokens};
use tokio_postgres::Client;
use uuid::Uuid;

use crate::{
    AuditEntry, AuthCode, Claimed, Consent, DeliveryFilter, Event, EventDraft, KeepSignIn,
    MigrationStatus, NewAuthCode, NewRefreshToken, NewSession, NewUser, NewWebhookEndpoint,
    OutboxKind, OutboxResult, PasswordLogin, PoolStats, Redeem, Redemption, RefreshRotation,
    RefreshToken, RotateOutcome, Session, SigningKey, StoreError, StoreFuture, TokenHash, User,
    WebhookChanges, WebhookDelivery, WebhookEndpoint,
};
pub use options::PgOptions;
use pool::{Connector, Limits, Pools};

/// The PostgreSQL [`Store`](store::Store).
pub struct PgStore {
    pools: Pools,
    query_timeout: Duration,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("pool_stats", &self.pools.stats())
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// A store for the database at `url` (`postgres://` or `postgresql://`, libpq-style; see
    /// the `sslmode` table in the module `url`). Checks the URL and loads the TLS roots; opens
    /// no connection (the first call does), so it succeeds while the database is down.
    ///
    /// Does not migrate: call [`Administration::migrate`].
    pub fn open(url: &str, options: PgOptions) -> Result<PgStore, StoreError> {
        let settings = url::parse(url)?;
        let tls = tls::client_config(&settings)?;
        let pools = options.pools.max(1);
        let max = (options.max_open as usize / pools).max(1);
        let max_idle = match options.max_idle {
            0 => 0,
            idle => (idle as usize / pools).clamp(1, max),
        };
        let limits = Limits {
            max,
            max_idle,
            max_lifetime: (!options.max_lifetime.is_zero()).then_some(options.max_lifetime),
            acquire_timeout: options.acquire_timeout,
        };
        let connector = Connector {
            config: settings.config,
            tls,
            connect_timeout: options.connect_timeout,
        };
        Ok(PgStore {
            pools: Pools::new(connector, pools, limits),
            query_timeout: options.query_timeout,
        })
    }

    /// Runs `f` on a connection of the calling thread's pool, within `timeout` if given.
    fn run<'a, T, F>(
        &'a self,
        what: &'static str,
        timeout: Option<Duration>,
        f: F,
    ) -> StoreFuture<'a, T>
    where
        T: Send + 'a,
        F: for<'c> FnOnce(&'c mut Client) -> StoreFuture<'c, T> + Send + 'a,
    {
        Box::pin(async move {
            let mut conn = self.pools.acquire(what).await?;
            let work = f(conn.client()?);
            let Some(limit) = timeout else {
                return work.await;
            };
            let result = tokio::time::timeout(limit, work).await;
            result.unwrap_or_else(|_| {
                // Its state is unknown (a statement may still run): never reuse it.
                conn.discard();
                Err(error::timed_out(what, limit))
            })
        })
    }

    fn call<'a, T, F>(&'a self, what: &'static str, f: F) -> StoreFuture<'a, T>
    where
        T: Send + 'a,
        F: for<'c> FnOnce(&'c mut Client) -> StoreFuture<'c, T> + Send + 'a,
    {
        self.run(what, Some(self.query_timeout), f)
    }
}

impl Administration for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn pool_stats(&self) -> PoolStats {
        self.pools.stats()
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        self.call("ping", |c| {
            Box::pin(async move {
                c.query_typed_one("SELECT 1", &[]).await.map_err(db)?;
                Ok(())
            })
        })
    }

    fn migrate(&self) -> StoreFuture<'_, MigrationStatus> {
        Box::pin(async move {
            let mut conn = self.pools.acquire("migrate").await?;
            migrate::migrate(conn.client()?, || self.pools.dedicated()).await
        })
    }

    fn migration_status(&self) -> StoreFuture<'_, MigrationStatus> {
        self.call("migration_status", |c| Box::pin(migrate::status(c)))
    }

    fn list_events(&self, tenant_id: Option<Uuid>, limit: u32) -> StoreFuture<'_, Vec<Event>> {
        self.call("list_events", move |c| {
            Box::pin(async move { events::list_events(&*c, tenant_id, limit).await })
        })
    }

    fn create_webhook_endpoint(
        &self,
        endpoint: NewWebhookEndpoint,
        now: i64,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, WebhookEndpoint> {
        self.call("create_webhook_endpoint", move |c| {
            Box::pin(webhooks::create_endpoint(c, endpoint, now, audit))
        })
    }

    fn update_webhook_endpoint(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        changes: WebhookChanges,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<WebhookEndpoint>> {
        self.call("update_webhook_endpoint", move |c| {
            Box::pin(webhooks::update_endpoint(c, tenant_id, id, changes, audit))
        })
    }

    fn enqueue_webhook_test(
        &self,
        tenant_id: Uuid,
        endpoint_id: Uuid,
        event: Event,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<Uuid>> {
        self.call("enqueue_webhook_test", move |c| {
            Box::pin(webhooks::enqueue_test(
                c,
                tenant_id,
                endpoint_id,
                event,
                audit,
            ))
        })
    }

    fn list_webhook_endpoints(
        &self,
        tenant_id: Option<Uuid>,
    ) -> StoreFuture<'_, Vec<WebhookEndpoint>> {
        self.call("list_webhook_endpoints", move |c| {
            Box::pin(webhooks::list_endpoints(c, tenant_id))
        })
    }

    fn delete_webhook_endpoint(
        &self,
        id: Uuid,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, bool> {
        self.call("delete_webhook_endpoint", move |c| {
            Box::pin(webhooks::delete_endpoint(c, id, audit))
        })
    }

    fn list_webhook_deliveries(
        &self,
        filter: DeliveryFilter,
    ) -> StoreFuture<'_, Vec<WebhookDelivery>> {
        self.call("list_webhook_deliveries", move |c| {
            Box::pin(async move { webhooks::list_deliveries(c, &filter).await })
        })
    }

    fn get_webhook_delivery(&self, id: Uuid) -> StoreFuture<'_, Option<WebhookDelivery>> {
        self.call("get_webhook_delivery", move |c| {
            Box::pin(webhooks::get_delivery(c, id))
        })
    }

    fn redeliver_webhook(&self, id: Uuid, now_ms: i64) -> StoreFuture<'_, bool> {
        self.call("redeliver_webhook", move |c| {
            Box::pin(webhooks::redeliver(c, id, now_ms))
        })
    }

    fn list_mail(&self, tenant_id: Option<Uuid>, limit: u32) -> StoreFuture<'_, Vec<MailRecord>> {
        self.call("list_mail", move |c| {
            Box::pin(mail::list_mail(c, tenant_id, limit))
        })
    }
}

impl Accounts for PgStore {
    fn register_user(
        &self,
        user: NewUser,
        password_hash: String,
        refresh: Option<NewRefreshToken>,
        event: Option<EventDraft>,
        now: i64,
    ) -> StoreFuture<'_, User> {
        self.call("register_user", move |c| {
            Box::pin(async move {
                users::register_user(c, user, &password_hash, refresh.as_ref(), event, now).await
            })
        })
    }

    fn get_user(&self, user_id: Uuid) -> StoreFuture<'_, Option<User>> {
        self.call("get_user", move |c| Box::pin(users::get_user(c, user_id)))
    }

    fn find_password_login(
        &self,
        tenant_id: Uuid,
        email: &str,
    ) -> StoreFuture<'_, Option<PasswordLogin>> {
        let email = email.to_owned();
        self.call("find_password_login", move |c| {
            Box::pin(async move { users::find_password_login(c, tenant_id, &email).await })
        })
    }

    fn find_user_by_email(&self, tenant_id: Uuid, email: &str) -> StoreFuture<'_, Option<User>> {
        let email = email.to_owned();
        self.call("find_user_by_email", move |c| {
            Box::pin(async move { users::find_user_by_email(c, tenant_id, &email).await })
        })
    }

    fn set_user_app_metadata(
        &self,
        user_id: Uuid,
        app_metadata: Metadata,
    ) -> StoreFuture<'_, Option<User>> {
        self.call("set_user_app_metadata", move |c| {
            Box::pin(async move {
                users::set_user_app_metadata(c, user_id, app_metadata.as_json()).await
            })
        })
    }

    fn merge_user_metadata(
        &self,
        user_id: Uuid,
        patch: Metadata,
        max_bytes: usize,
    ) -> StoreFuture<'_, Option<User>> {
        self.call("merge_user_metadata", move |c| {
            Box::pin(async move {
                users::merge_user_metadata(c, user_id, patch.as_json(), max_bytes).await
            })
        })
    }

    fn set_user_disabled(
        &self,
        user_id: Uuid,
        disabled: bool,
        now: i64,
    ) -> StoreFuture<'_, Option<u64>> {
        self.call("set_user_disabled", move |c| {
            Box::pin(users::set_user_disabled(c, user_id, disabled, now))
        })
    }

    fn upgrade_password_hash(
        &self,
        user_id: Uuid,
        old_hash: &str,
        new_hash: &str,
    ) -> StoreFuture<'_, bool> {
        let (old_hash, new_hash) = (old_hash.to_owned(), new_hash.to_owned());
        self.call("upgrade_password_hash", move |c| {
            Box::pin(
                async move { users::upgrade_password_hash(c, user_id, &old_hash, &new_hash).await },
            )
        })
    }

    fn find_consent(&self, user_id: Uuid, client_id: &str) -> StoreFuture<'_, Option<Vec<String>>> {
        let client_id = client_id.to_string();
        self.call("find_consent", move |c| {
            Box::pin(async move { sessions::find_consent(c, user_id, &client_id).await })
        })
    }

    fn put_consent(&self, consent: Consent) -> StoreFuture<'_, ()> {
        self.call("put_consent", move |c| {
            Box::pin(async move { sessions::put_consent(c, &consent).await })
        })
    }

    fn issue_email_token(&self, token: EmailToken, mail: NewMail) -> StoreFuture<'_, ()> {
        self.call("issue_email_token", move |c| {
            Box::pin(mail::issue_email_token(c, token, mail))
        })
    }

    fn find_email_token(&self, hash: TokenHash) -> StoreFuture<'_, Option<EmailToken>> {
        self.call("find_email_token", move |c| {
            Box::pin(mail::find_email_token(c, hash))
        })
    }

    fn use_verify_token(
        &self,
        hash: TokenHash,
        event: Option<EventDraft>,
        now: i64,
    ) -> StoreFuture<'_, Option<EmailToken>> {
        self.call("use_verify_token", move |c| {
            Box::pin(mail::use_verify_token(c, hash, event, now))
        })
    }

    fn use_reset_token(
        &self,
        hash: TokenHash,
        password_hash: String,
        event: Option<EventDraft>,
        now: i64,
    ) -> StoreFuture<'_, Option<EmailToken>> {
        self.call("use_reset_token", move |c| {
            Box::pin(mail::use_reset_token(c, hash, password_hash, event, now))
        })
    }

    fn prune_email_tokens(&self, before: i64, limit: u32) -> StoreFuture<'_, u64> {
        self.call("prune_email_tokens", move |c| {
            Box::pin(mail::prune_email_tokens(c, before, limit))
        })
    }
}

impl Tokens for PgStore {
    fn insert_refresh_token(
        &self,
        token: NewRefreshToken,
        event: Option<EventDraft>,
    ) -> StoreFuture<'_, ()> {
        self.call("insert_refresh_token", move |c| {
            Box::pin(async move { refresh::insert_refresh_token(c, &token, event).await })
        })
    }

    fn find_refresh_token(&self, token_hash: TokenHash) -> StoreFuture<'_, Option<RefreshToken>> {
        self.call("find_refresh_token", move |c| {
            Box::pin(async move { refresh::find_refresh_token(c, &token_hash).await })
        })
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
        self.call("rotate_refresh_token", move |c| {
            Box::pin(async move {
                refresh::rotate_refresh_token(c, &old_hash, &client_id, &new, reuse_event, now)
                    .await
            })
        })
    }

    fn rotate_refresh(&self, rotation: RefreshRotation) -> StoreFuture<'_, RotateOutcome> {
        self.call("rotate_refresh", |c| {
            Box::pin(refresh::rotate_refresh(c, rotation))
        })
    }

    fn revoke_refresh_family(
        &self,
        token_hash: TokenHash,
        event: Option<EventDraft>,
        now: i64,
    ) -> StoreFuture<'_, Option<RefreshToken>> {
        self.call("revoke_refresh_family", move |c| {
            Box::pin(
                async move { refresh::revoke_refresh_family(c, &token_hash, event, now).await },
            )
        })
    }

    fn revoke_all_for_user(
        &self,
        user_id: Uuid,
        event: Option<EventDraft>,
        now: i64,
    ) -> StoreFuture<'_, u64> {
        self.call("revoke_all_for_user", move |c| {
            Box::pin(refresh::revoke_all_for_user(c, user_id, event, now))
        })
    }

    fn insert_auth_code(&self, code: NewAuthCode) -> StoreFuture<'_, ()> {
        self.call("insert_auth_code", move |c| {
            Box::pin(async move { codes::insert_auth_code(c, &code).await })
        })
    }

    fn find_auth_code(&self, code_hash: TokenHash) -> StoreFuture<'_, Option<AuthCode>> {
        self.call("find_auth_code", move |c| {
            Box::pin(async move { codes::find_auth_code(&*c, &code_hash).await })
        })
    }

    fn redeem_auth_code(
        &self,
        code_hash: TokenHash,
        redeem: Redeem,
        now: i64,
    ) -> StoreFuture<'_, Redemption> {
        self.call("redeem_auth_code", move |c| {
            Box::pin(async move { codes::redeem_auth_code(c, &code_hash, redeem, now).await })
        })
    }

    fn revoke_access_token(
        &self,
        jti: &str,
        tenant_id: Uuid,
        expires_at: i64,
        now: i64,
    ) -> StoreFuture<'_, ()> {
        let jti = jti.to_owned();
        self.call("revoke_access_token", move |c| {
            Box::pin(async move {
                codes::revoke_access_token(c, &jti, tenant_id, expires_at, now).await
            })
        })
    }

    fn revoked_tokens_since(&self, since: i64, now: i64) -> StoreFuture<'_, Vec<(String, i64)>> {
        self.call("revoked_tokens_since", move |c| {
            Box::pin(async move { codes::revoked_tokens_since(c, since, now).await })
        })
    }

    fn prune_revoked_tokens(&self, before: i64, limit: u32) -> StoreFuture<'_, u64> {
        self.call("prune_revoked_tokens", move |c| {
            Box::pin(async move { codes::prune_revoked_tokens(c, before, limit).await })
        })
    }

    fn prune_auth_codes(&self, before: i64, limit: u32) -> StoreFuture<'_, u64> {
        self.call("prune_auth_codes", move |c| {
            Box::pin(async move { codes::prune_auth_codes(c, before, limit).await })
        })
    }

    fn create_session(
        &self,
        session: NewSession,
        event: Option<EventDraft>,
    ) -> StoreFuture<'_, ()> {
        self.call("create_session", move |c| {
            Box::pin(async move { sessions::create_session(c, &session, event).await })
        })
    }

    fn find_session(&self, id_hash: TokenHash) -> StoreFuture<'_, Option<Session>> {
        self.call("find_session", move |c| {
            Box::pin(async move { sessions::find_session(c, &id_hash).await })
        })
    }

    fn revoke_session(
        &self,
        id_hash: TokenHash,
        event: Option<EventDraft>,
        now: i64,
    ) -> StoreFuture<'_, bool> {
        self.call("revoke_session", move |c| {
            Box::pin(async move { sessions::revoke_session(c, &id_hash, event, now).await })
        })
    }
}

impl SigningKeys for PgStore {
    fn list_signing_keys(&self) -> StoreFuture<'_, Vec<SigningKey>> {
        self.call("list_signing_keys", |c| {
            Box::pin(keys::list_signing_keys(c))
        })
    }

    fn insert_signing_key_if_none(&self, key: SigningKey) -> StoreFuture<'_, Vec<SigningKey>> {
        self.call("insert_signing_key_if_none", move |c| {
            Box::pin(async move { keys::insert_signing_key_if_none(c, &key).await })
        })
    }

    fn rotate_signing_key(
        &self,
        key: SigningKey,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, u64> {
        self.call("rotate_signing_key", move |c| {
            Box::pin(async move { keys::rotate_signing_key(c, &key, audit).await })
        })
    }
}

impl Factors for PgStore {
    fn find_totp(&self, user_id: Uuid) -> StoreFuture<'_, Option<TotpFactor>> {
        self.call("find_totp", move |c| Box::pin(mfa::find_totp(c, user_id)))
    }

    fn put_totp_secret(&self, user_id: Uuid, sealed: Vec<u8>, now: i64) -> StoreFuture<'_, bool> {
        self.call("put_totp_secret", move |c| {
            Box::pin(mfa::put_totp_secret(c, user_id, sealed, now))
        })
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
        self.call("confirm_totp", move |c| {
            Box::pin(mfa::confirm_totp(
                c, user_id, step, recovery, keep, event, now,
            ))
        })
    }

    fn use_totp_step(&self, user_id: Uuid, step: i64) -> StoreFuture<'_, bool> {
        self.call("use_totp_step", move |c| {
            Box::pin(mfa::use_totp_step(c, user_id, step))
        })
    }

    fn delete_totp(
        &self,
        user_id: Uuid,
        event: Option<EventDraft>,
        _: i64,
    ) -> StoreFuture<'_, bool> {
        self.call("delete_totp", move |c| {
            Box::pin(mfa::delete_totp(c, user_id, event))
        })
    }

    fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        recovery: Vec<TokenHash>,
        now: i64,
    ) -> StoreFuture<'_, bool> {
        self.call("replace_recovery_codes", move |c| {
            Box::pin(mfa::replace_recovery_codes(c, user_id, recovery, now))
        })
    }

    fn use_recovery_code(&self, user_id: Uuid, hash: TokenHash, now: i64) -> StoreFuture<'_, bool> {
        self.call("use_recovery_code", move |c| {
            Box::pin(mfa::use_recovery_code(c, user_id, hash, now))
        })
    }

    fn recovery_codes_left(&self, user_id: Uuid) -> StoreFuture<'_, u32> {
        self.call("recovery_codes_left", move |c| {
            Box::pin(mfa::recovery_codes_left(c, user_id))
        })
    }

    fn insert_mfa_challenge(&self, challenge: MfaChallenge) -> StoreFuture<'_, ()> {
        self.call("insert_mfa_challenge", move |c| {
            Box::pin(mfa::insert_mfa_challenge(c, challenge))
        })
    }

    fn find_mfa_challenge(&self, hash: TokenHash) -> StoreFuture<'_, Option<MfaChallenge>> {
        self.call("find_mfa_challenge", move |c| {
            Box::pin(mfa::find_mfa_challenge(c, hash))
        })
    }

    fn fail_mfa_challenge(&self, hash: TokenHash) -> StoreFuture<'_, u32> {
        self.call("fail_mfa_challenge", move |c| {
            Box::pin(mfa::fail_mfa_challenge(c, hash))
        })
    }

    fn complete_mfa_challenge(
        &self,
        hash: TokenHash,
        max_failures: u32,
        grant: ChallengeGrant,
        now: i64,
    ) -> StoreFuture<'_, bool> {
        self.call("complete_mfa_challenge", move |c| {
            Box::pin(mfa::complete_mfa_challenge(
                c,
                hash,
                max_failures,
                grant,
                now,
            ))
        })
    }

    fn is_trusted_device(&self, user_id: Uuid, hash: TokenHash, now: i64) -> StoreFuture<'_, bool> {
        self.call("is_trusted_device", move |c| {
            Box::pin(mfa::is_trusted_device(c, user_id, hash, now))
        })
    }

    fn prune_mfa(&self, before: i64, limit: u32) -> StoreFuture<'_, u64> {
        self.call("prune_mfa", move |c| {
            Box::pin(mfa::prune_mfa(c, before, limit))
        })
    }
}

impl Outbox for PgStore {
    fn record_event(&self, event: EventDraft) -> StoreFuture<'_, Event> {
        self.call("record_event", move |c| {
            Box::pin(async move { events::record_event(&*c, event).await })
        })
    }

    fn claim(
        &self,
        kind: OutboxKind,
        now_ms: i64,
        leased_until_ms: i64,
        limit: u32,
    ) -> StoreFuture<'_, Vec<Claimed>> {
        self.call(outbox::table(kind).ops[0], move |c| {
            Box::pin(outbox::claim(c, kind, now_ms, leased_until_ms, limit))
        })
    }

    fn complete(&self, result: OutboxResult) -> StoreFuture<'_, bool> {
        self.call(outbox::table(result.kind()).ops[1], move |c| {
            Box::pin(async move { outbox::complete(c, &result).await })
        })
    }

    fn backlog(&self, kind: OutboxKind, now_ms: i64) -> StoreFuture<'_, u64> {
        self.call(outbox::table(kind).ops[2], move |c| {
            Box::pin(async move { outbox::backlog(&*c, kind, now_ms).await })
        })
    }

    fn prune(&self, kind: OutboxKind, before: i64, limit: u32) -> StoreFuture<'_, u64> {
        self.call(outbox::table(kind).ops[3], move |c| {
            Box::pin(async move { outbox::prune(&*c, kind, before, limit).await })
        })
    }
}
