#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
//! The store's contract, owned by the domain: the records the engine persists, [`StoreError`],
//! the refresh-rotation decision ([`rotation`]), and the store as small traits by aggregate.
//!
//! The domain (`auth`) depends on this crate and nothing that speaks SQL or Redis; the backends
//! (crate `storage`: SQLite, PostgreSQL, Redis) implement it, and only `engine` and `hj` wire a
//! backend in. Each method that changes several rows does so in one transaction, so a failure
//! leaves nothing half-written. Denials (a token already rotated, an email already taken) are
//! outcomes or [`StoreError::Conflict`], never partial writes; a lookup is
//! `Result<Option<_>, StoreError>`, so "no such row" and "the store failed" never fold into one.
//!
//! [`Store`] is every trait at once (what a backend is); callers bring the traits they call
//! into scope with `use store::prelude::*`.

pub mod admin;
pub mod admins;
pub mod authcode;
pub mod event_meta;
pub mod files;
pub mod grants;
pub mod lifecycle;
pub mod manage;
pub mod metadata;
pub mod model;
pub mod outbox;
pub mod rotation;
pub mod settings;
pub mod signing;
pub mod tolerance;

use std::future::Future;
use std::pin::Pin;

pub use admin::{ApiKey, AuditEntry, AuditQuery, AuditRecord, NewApiKey};
pub use admins::{
    AdminAccount, AdminChanges, AdminLogin, AdminRefresh, AdminTotp, Admins, NewAdmin,
};
pub use authcode::{AuthCode, NewAuthCode, Redeem, Redemption};
pub use event_meta::{EventMeta, MetaValue};
pub use grants::{
    ClientGrants, GrantAdmin, GrantQuery, GrantState, GrantStats, RefreshGrant, RevokeSelector,
    RevokedSession, SessionGrant,
};
pub use lifecycle::{
    ChallengeGrant, ChallengeKind, EmailPurpose, EmailToken, KeepSignIn, MailRecord, MfaChallenge,
    NewMail, TotpFactor,
};
pub use manage::{TenantChanges, UserAdmin, UserChanges, UserFilter, UserQuery, UserStatus};
pub use metadata::Metadata;
pub use model::*;
pub use outbox::{Claimed, DeliveryPayload, MailPayload, OutboxKind, OutboxResult, Payload};
pub use rotation::{NextRefresh, RefreshRotation};
pub use settings::{SecuritySettings, SettingsUpdate, TenantSettings};
pub use signing::{IssuerMode, SigningAlg};
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

/// Operating the store and the operator's views: health, migrations, the event log, webhook endpoints and deliveries, the mail log.
pub trait Administration: Send + Sync {
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
    /// Events, newest first; all tenants or one.
    fn list_events(&self, tenant_id: Option<Uuid>, limit: u32) -> StoreFuture<'_, Vec<Event>>;
    /// With `audit` (an operator's creation) in the same transaction.
    fn create_webhook_endpoint(
        &self,
        endpoint: NewWebhookEndpoint,
        now: i64,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, WebhookEndpoint>;
    /// Applies `changes` to the endpoint `id` of `tenant_id`, with `audit`, in one
    /// transaction. `None` (nothing written) when the tenant has no such endpoint.
    fn update_webhook_endpoint(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        changes: WebhookChanges,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<WebhookEndpoint>>;
    /// A test delivery for one endpoint of `tenant_id` only: `event` (a `webhook.test`), its
    /// one delivery due now and `audit`, in one transaction. The delivery's id; `None`
    /// (nothing written) when the tenant has no such endpoint.
    fn enqueue_webhook_test(
        &self,
        tenant_id: Uuid,
        endpoint_id: Uuid,
        event: Event,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<Uuid>>;
    /// All endpoints, or those of one tenant, oldest first.
    fn list_webhook_endpoints(
        &self,
        tenant_id: Option<Uuid>,
    ) -> StoreFuture<'_, Vec<WebhookEndpoint>>;
    /// Deletes the endpoint and its deliveries. Returns whether it existed.
    fn delete_webhook_endpoint(&self, id: Uuid, audit: Option<AuditEntry>)
        -> StoreFuture<'_, bool>;
    fn list_webhook_deliveries(
        &self,
        filter: DeliveryFilter,
    ) -> StoreFuture<'_, Vec<WebhookDelivery>>;
    fn get_webhook_delivery(&self, id: Uuid) -> StoreFuture<'_, Option<WebhookDelivery>>;
    /// Requeues a delivery whatever its state: `pending`, due at `now_ms`, attempts back to
    /// 0, generation + 1, lease dropped. Returns whether it exists.
    fn redeliver_webhook(&self, id: Uuid, now_ms: i64) -> StoreFuture<'_, bool>;
    /// Mails, newest first; all tenants or one.
    fn list_mail(&self, tenant_id: Option<Uuid>, limit: u32) -> StoreFuture<'_, Vec<MailRecord>>;
}

/// Tenants and their clients.
///
/// The changes take the audit entry of the action (`audit`), written in their transaction
/// only when the change is made: `None` where nobody asked for it through the admin API and
/// the CLI, such as the embedded store's first start. The store completes its tenant and
/// target with what the change was about.
pub trait Directory: Send + Sync {
    /// A new tenant with `settings` (stored as given, at version 0) and `audit`, in one
    /// transaction.
    fn create_tenant(
        &self,
        slug: &str,
        name: &str,
        settings: TenantSettings,
        now: i64,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, Tenant>;
    fn list_tenants(&self) -> StoreFuture<'_, Vec<Tenant>>;
    /// By UUID (when `key` parses as one) or by slug.
    fn find_tenant(&self, key: &str) -> StoreFuture<'_, Option<Tenant>>;
    /// Sets a tenant's issuer mode; false when no tenant has this id.
    fn set_tenant_issuer_mode(&self, tenant_id: Uuid, mode: IssuerMode) -> StoreFuture<'_, bool>;
    /// Renames the tenant or changes its slug (the fields of `changes` that are `Some`), in one
    /// transaction with `audit`. API keys scoped to the tenant by its old slug
    /// (`tenant:{slug}`) follow it to the new one. Returns the tenant after the change; `None`
    /// when there is no such tenant. `Conflict("slug")` when the slug is taken (nothing
    /// written). Empty changes change nothing and write no audit entry.
    fn update_tenant(
        &self,
        tenant_id: Uuid,
        changes: TenantChanges,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<Tenant>>;
    /// Deletes the tenant and everything of it, in one transaction with `audit`: clients,
    /// users and all of theirs, refresh families and tokens, sessions, codes, consents, MFA
    /// rows, email tokens, revoked access tokens, webhook endpoints, events and deliveries,
    /// mail, its own signing keys. API keys scoped to it (`tenant:{slug}`) are revoked (at
    /// `audit.created_at`), so none reaches a tenant later created with that slug. Audit
    /// entries stay. Returns whether the tenant existed. Nothing is returned for the engine's
    /// session cache: a cached session of a user who is gone is refused anyway (the engine
    /// checks the user and tenant of every session, through caches of seconds).
    fn delete_tenant(&self, tenant_id: Uuid, audit: AuditEntry) -> StoreFuture<'_, bool>;
    /// Replaces the tenant's settings and bumps `settings_version`, with `audit`, in one
    /// transaction; only when the version is still `if_version` (any version when `None`).
    fn update_tenant_settings(
        &self,
        tenant_id: Uuid,
        settings: TenantSettings,
        if_version: Option<i64>,
        audit: AuditEntry,
    ) -> StoreFuture<'_, SettingsUpdate>;
    fn create_client(
        &self,
        client: NewClient,
        now: i64,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, Client>;
    /// All clients, or those of one tenant.
    fn list_clients(&self, tenant_id: Option<Uuid>) -> StoreFuture<'_, Vec<Client>>;
    fn find_client(&self, tenant_id: Uuid, client_id: &str) -> StoreFuture<'_, Option<Client>>;
    /// Every client named `client_id`, in any tenant (at most 10): for the OAuth endpoints,
    /// whose requests name a client but no tenant.
    fn find_clients_by_client_id(&self, client_id: &str) -> StoreFuture<'_, Vec<Client>>;
    /// Applies `changes` (the fields that are `Some`) in one statement. Returns the client as
    /// it stands after the change; `None` when there is no such client (and nothing changed).
    fn update_client(
        &self,
        tenant_id: Uuid,
        client_id: &str,
        changes: ClientChanges,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, Option<Client>>;
    /// Deletes the client with, in the same transaction, every refresh token (their families)
    /// and cookie session issued to it, so none of them works again, even for a client later
    /// created with the same `client_id`. Returns whether the client existed.
    fn delete_client(
        &self,
        tenant_id: Uuid,
        client_id: &str,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, bool>;
}

/// Users, their passwords and metadata, the consents they gave, and the email tokens that prove their mailbox.
///
/// Every `password_hash` the engine writes has passed `passhash::check_hash` (an Argon2 PHC string
/// within HELLOJOHN_ARGON2_MAX_*); any other writer (an import) must check it the same way.
pub trait Accounts: Send + Sync {
    /// Creates the user, their password identity and their first refresh token (when the
    /// client gets one) in one transaction, with `event` (see [`EventDraft`]).
    /// `Conflict("email")` when the email is taken in the tenant (and no event is written).
    fn register_user(
        &self,
        user: NewUser,
        password_hash: String,
        refresh: Option<NewRefreshToken>,
        event: Option<EventDraft>,
        now: i64,
    ) -> StoreFuture<'_, User>;
    fn get_user(&self, user_id: Uuid) -> StoreFuture<'_, Option<User>>;
    /// `email` is already normalised by the caller.
    fn find_password_login(
        &self,
        tenant_id: Uuid,
        email: &str,
    ) -> StoreFuture<'_, Option<PasswordLogin>>;
    /// The user with this email in the tenant (`email` already normalised by the caller).
    fn find_user_by_email(&self, tenant_id: Uuid, email: &str) -> StoreFuture<'_, Option<User>>;
    /// Replaces the user's app metadata (a JSON object, checked by the caller) in one
    /// statement. Returns the user as it stands after the change; `None` when there is no
    /// such user.
    fn set_user_app_metadata(
        &self,
        user_id: Uuid,
        app_metadata: Metadata,
    ) -> StoreFuture<'_, Option<User>>;
    /// Merges `patch` (a JSON object of scalar values) into the user's own metadata
    /// (`custom_fields`): each key replaces the one of that name, in one statement, unless the
    /// result would be longer than `max_bytes` as JSON text. Returns the user after the
    /// change; `None` when there is no such user or the result would be too long.
    fn merge_user_metadata(
        &self,
        user_id: Uuid,
        patch: Metadata,
        max_bytes: usize,
    ) -> StoreFuture<'_, Option<User>>;
    /// Disables or enables a user. Disabling also revokes every live refresh family and
    /// session of the user, in the same transaction. Either way the user is left without a
    /// `disabled_reason` (see [`UserAdmin::set_user_status`]). Returns how many families plus
    /// sessions were revoked; `None` when there is no such user (and nothing changed).
    fn set_user_disabled(
        &self,
        user_id: Uuid,
        disabled: bool,
        now: i64,
    ) -> StoreFuture<'_, Option<u64>>;
    /// Replaces the hash only if it is still `old_hash` (a concurrent change wins).
    /// Returns whether it was replaced.
    fn upgrade_password_hash(
        &self,
        user_id: Uuid,
        old_hash: &str,
        new_hash: &str,
    ) -> StoreFuture<'_, bool>;
    /// The scopes the user granted the client (of the user's tenant), if any.
    fn find_consent(&self, user_id: Uuid, client_id: &str) -> StoreFuture<'_, Option<Vec<String>>>;
    /// Records a consent, replacing the user's earlier one for that client.
    fn put_consent(&self, consent: Consent) -> StoreFuture<'_, ()>;
    /// Stores `token` and its `mail` in one transaction (the mail exists iff the token does).
    fn issue_email_token(&self, token: EmailToken, mail: NewMail) -> StoreFuture<'_, ()>;
    /// The token, whatever its state; the caller checks purpose, expiry and use.
    fn find_email_token(&self, token_hash: TokenHash) -> StoreFuture<'_, Option<EmailToken>>;
    /// Uses a `verify` token once, unexpired at `now`, and in the same transaction sets
    /// `email_verified` on its user, if the user's email is still the token's, with `event`.
    /// Returns the token when this call used it.
    fn use_verify_token(
        &self,
        token_hash: TokenHash,
        event: Option<EventDraft>,
        now: i64,
    ) -> StoreFuture<'_, Option<EmailToken>>;
    /// Uses a `reset` token once, unexpired at `now`, and in the same transaction replaces the
    /// user's password hash with `password_hash`, sets `email_verified` (the mailbox was
    /// proved), revokes every refresh family and session of the user and every other live
    /// token of the user's, and writes `event`. Returns the token when this call used it.
    fn use_reset_token(
        &self,
        token_hash: TokenHash,
        password_hash: String,
        event: Option<EventDraft>,
        now: i64,
    ) -> StoreFuture<'_, Option<EmailToken>>;
    /// Deletes up to `limit` email tokens that expired before `before`.
    fn prune_email_tokens(&self, before: i64, limit: u32) -> StoreFuture<'_, u64>;
}

/// What a sign-in leaves behind: refresh tokens (families), cookie sessions, authorization codes and revoked access tokens.
pub trait Tokens: Send + Sync {
    /// Stores a token (a new family on sign-in), with `event` in the same transaction.
    fn insert_refresh_token(
        &self,
        token: NewRefreshToken,
        event: Option<EventDraft>,
    ) -> StoreFuture<'_, ()>;
    fn find_refresh_token(&self, token_hash: TokenHash) -> StoreFuture<'_, Option<RefreshToken>>;
    /// Exchanges `old_hash` for `new`: one conditional update marks the old token rotated
    /// (only if it was not already), and the new token joins the same family, in one
    /// transaction. Of concurrent calls with the same `old_hash` exactly one gets `Rotated`.
    /// Presenting an already-rotated token revokes the whole family (`Reused`).
    /// `client_id` must match the token's client, else `NotFound`.
    /// `reuse_event` is written (completed with [`EventDraft::for_token`]) in the transaction
    /// that revokes the family on `Reused`, and only then.
    fn rotate_refresh_token(
        &self,
        old_hash: TokenHash,
        client_id: &str,
        new: NewRefreshToken,
        reuse_event: Option<EventDraft>,
        now: i64,
    ) -> StoreFuture<'_, RotateOutcome>;
    /// The same exchange for a caller that knows the client, hence its tenant, but not the
    /// token (the refresh flow with the client from its cache): the same decision
    /// ([`rotation`]), where a token of another tenant than `rotation.tenant_id` is `NotFound`
    /// too; the successor joins the old token's family, user, tenant and client. One call, and
    /// on PostgreSQL one statement (one round trip, `hj_rotate_refresh`). Of concurrent calls
    /// with the same `old_hash` exactly one gets `Rotated`.
    fn rotate_refresh(&self, rotation: RefreshRotation) -> StoreFuture<'_, RotateOutcome>;
    /// Revokes the family of the token (logout). Returns the token's record if it existed.
    /// Idempotent: `event` (completed with [`EventDraft::for_token`]) is written only by the
    /// call that revoked the family.
    fn revoke_refresh_family(
        &self,
        token_hash: TokenHash,
        event: Option<EventDraft>,
        now: i64,
    ) -> StoreFuture<'_, Option<RefreshToken>>;
    /// Revokes every refresh family and session of the user, with `event` (whose metadata, an
    /// object, gains `revoked`: the count). Returns how many were revoked.
    fn revoke_all_for_user(
        &self,
        user_id: Uuid,
        event: Option<EventDraft>,
        now: i64,
    ) -> StoreFuture<'_, u64>;
    /// Stores the session, with `event` (completed with [`EventDraft::for_user`]).
    fn create_session(&self, session: NewSession, event: Option<EventDraft>)
        -> StoreFuture<'_, ()>;
    /// The session with its user, whatever its state; the caller checks expiry and revocation.
    fn find_session(&self, id_hash: TokenHash) -> StoreFuture<'_, Option<Session>>;
    /// Idempotent. Returns whether a live session was revoked; `event` (completed with
    /// [`EventDraft::for_user`]) is written only then.
    fn revoke_session(
        &self,
        id_hash: TokenHash,
        event: Option<EventDraft>,
        now: i64,
    ) -> StoreFuture<'_, bool>;
    fn insert_auth_code(&self, code: NewAuthCode) -> StoreFuture<'_, ()>;
    /// The code, whatever its state (to authenticate the client and check PKCE before it is
    /// redeemed).
    fn find_auth_code(&self, code_hash: TokenHash) -> StoreFuture<'_, Option<AuthCode>>;
    /// Redeems the code, once: of concurrent calls exactly one gets `Redeemed`, and with it,
    /// in the same transaction, the refresh family the code names (with its granted scopes)
    /// and `redeem.refresh` in it, the issued access token's `jti` on the code, and
    /// `redeem.event`. A code redeemed before revokes that family instead, with
    /// `redeem.reuse_event`, and answers `Reused` (with the access token it issued then, for
    /// the caller to revoke).
    fn redeem_auth_code(
        &self,
        code_hash: TokenHash,
        redeem: Redeem,
        now: i64,
    ) -> StoreFuture<'_, Redemption>;
    /// Deletes up to `limit` codes that expired before `before`. Returns how many.
    fn prune_auth_codes(&self, before: i64, limit: u32) -> StoreFuture<'_, u64>;
    /// Records the revocation (idempotent: the first one stays).
    fn revoke_access_token(
        &self,
        jti: &str,
        tenant_id: Uuid,
        expires_at: i64,
        now: i64,
    ) -> StoreFuture<'_, ()>;
    /// The revocations recorded at or after `since` whose token has not expired at `now`:
    /// `(jti, expires_at)`.
    fn revoked_tokens_since(&self, since: i64, now: i64) -> StoreFuture<'_, Vec<(String, i64)>>;
    /// Deletes up to `limit` revocations of tokens that expired before `before`.
    fn prune_revoked_tokens(&self, before: i64, limit: u32) -> StoreFuture<'_, u64>;
}

/// Token-signing keys, global and tenants' own.
pub trait SigningKeys: Send + Sync {
    /// Every key, of every algorithm, global and tenants' own, retired ones included; oldest
    /// first.
    fn list_signing_keys(&self) -> StoreFuture<'_, Vec<SigningKey>>;
    /// Inserts the key unless a non-retired key of its algorithm and owner (`tenant_id`: the
    /// global keys or one tenant's) already exists (several instances may start at once: one
    /// key per algorithm wins). Returns the non-retired keys of that algorithm and owner after
    /// the call.
    fn insert_signing_key_if_none(&self, key: SigningKey) -> StoreFuture<'_, Vec<SigningKey>>;
    /// A rotation, in one transaction (serialised with the calls above): inserts `key` and
    /// retires, at `key.activates_at`, every other key of its algorithm and owner not retired
    /// by then, so exactly one key signs at any time. Returns how many keys got that
    /// retirement.
    ///
    /// With `audit` (the rotation's audit entry: a security event) in the same transaction.
    fn rotate_signing_key(
        &self,
        key: SigningKey,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, u64>;
}

/// MFA: one TOTP factor per user, its recovery codes, sign-in challenges, remembered devices.
/// `users.mfa_enabled` is kept in step by the transactions that confirm or remove a factor.
pub trait Factors: Send + Sync {
    fn find_totp(&self, user_id: Uuid) -> StoreFuture<'_, Option<TotpFactor>>;
    /// Stores a new, unconfirmed secret (replacing an unconfirmed one). `false` when the user
    /// has a confirmed factor or does not exist (nothing changed).
    fn put_totp_secret(
        &self,
        user_id: Uuid,
        secret_sealed: Vec<u8>,
        now: i64,
    ) -> StoreFuture<'_, bool>;
    /// Confirms the unconfirmed factor, in one transaction: `confirmed_at`, `last_step = step`
    /// (the step of the code that proved it), the user's recovery codes replaced by `recovery`,
    /// `users.mfa_enabled`, and `event`. `false` when there is no unconfirmed factor.
    /// Every other refresh family and cookie session of the user (all but `keep`) is revoked
    /// in the same transaction: a factor turned on ends the sign-ins made without it.
    #[allow(clippy::too_many_arguments)]
    fn confirm_totp(
        &self,
        user_id: Uuid,
        step: i64,
        recovery: Vec<TokenHash>,
        keep: KeepSignIn,
        event: Option<EventDraft>,
        now: i64,
    ) -> StoreFuture<'_, bool>;
    /// Records that a code of time step `step` was accepted: only when the factor is confirmed
    /// and `step` is later than its last step (one conditional update, so of concurrent calls
    /// with one code exactly one gets `true`).
    fn use_totp_step(&self, user_id: Uuid, step: i64) -> StoreFuture<'_, bool>;
    /// Removes the factor, the recovery codes, the remembered devices and open challenges,
    /// clears `users.mfa_enabled`, with `event`, in one transaction. Returns whether a factor
    /// (confirmed or not) existed; `event` is written only then.
    fn delete_totp(
        &self,
        user_id: Uuid,
        event: Option<EventDraft>,
        now: i64,
    ) -> StoreFuture<'_, bool>;
    /// Replaces the user's recovery codes, only while a confirmed factor exists. Returns
    /// whether they were replaced.
    fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        recovery: Vec<TokenHash>,
        now: i64,
    ) -> StoreFuture<'_, bool>;
    /// Marks the code used, once (of concurrent calls exactly one gets `true`).
    fn use_recovery_code(
        &self,
        user_id: Uuid,
        code_hash: TokenHash,
        now: i64,
    ) -> StoreFuture<'_, bool>;
    /// How many unused recovery codes the user has.
    fn recovery_codes_left(&self, user_id: Uuid) -> StoreFuture<'_, u32>;
    /// Stores a challenge (its `failures` and `completed_at` are ignored: 0 and `None`).
    fn insert_mfa_challenge(&self, challenge: MfaChallenge) -> StoreFuture<'_, ()>;
    /// The challenge, whatever its state; the caller checks expiry, completion and failures.
    fn find_mfa_challenge(&self, token_hash: TokenHash) -> StoreFuture<'_, Option<MfaChallenge>>;
    /// Counts a wrong code against the challenge. Returns the failures after it (0 when there
    /// is no such challenge).
    fn fail_mfa_challenge(&self, token_hash: TokenHash) -> StoreFuture<'_, u32>;
    /// Completes the challenge once, if not expired at `now` and below `max_failures`: of
    /// concurrent calls exactly one gets `true`, and with it, in the same transaction,
    /// `grant`'s refresh token (a new family), session, remembered device and event (completed
    /// with [`EventDraft::for_user`]).
    fn complete_mfa_challenge(
        &self,
        token_hash: TokenHash,
        max_failures: u32,
        grant: ChallengeGrant,
        now: i64,
    ) -> StoreFuture<'_, bool>;
    /// Whether `token_hash` is a remembered device of the user, unexpired at `now`.
    fn is_trusted_device(
        &self,
        user_id: Uuid,
        token_hash: TokenHash,
        now: i64,
    ) -> StoreFuture<'_, bool>;
    /// Deletes up to `limit` challenges and remembered devices that expired before `before`.
    fn prune_mfa(&self, before: i64, limit: u32) -> StoreFuture<'_, u64>;
}

/// The transactional outbox: events (with their webhook deliveries) and mail, written in the
/// transaction of the change that caused them, then claimed and completed by the workers. The
/// two kinds ([`OutboxKind`]) share one life: pending, leased, failed and scheduled again with
/// backoff, done (sent or delivered) or exhausted.
///
/// Every method that takes an `EventDraft` writes the event only when at least one endpoint
/// of its tenant subscribes to its type (or to `*`), with one delivery per such endpoint:
/// the outbox is not an audit log, and tenants without webhooks pay nothing for it.
pub trait Outbox: Send + Sync {
    /// Writes an event that has no other change (a failed sign-in), with its deliveries.
    /// Returns the completed event (written or not: see above).
    fn record_event(&self, event: EventDraft) -> StoreFuture<'_, Event>;
    /// Leases up to `limit` due items of `kind` (pending or failed, due at `now_ms`, not
    /// leased; a mail also still holding its message) until `leased_until_ms`, oldest due
    /// first. Concurrent callers (any instance) never get the same item while its lease holds.
    fn claim(
        &self,
        kind: OutboxKind,
        now_ms: i64,
        leased_until_ms: i64,
        limit: u32,
    ) -> StoreFuture<'_, Vec<Claimed>>;
    /// Records an attempt's result. Returns whether it applied (see [`OutboxResult`]).
    fn complete(&self, result: OutboxResult) -> StoreFuture<'_, bool>;
    /// Items of `kind` due at `now_ms` that are not done or exhausted (leased ones included).
    fn backlog(&self, kind: OutboxKind, now_ms: i64) -> StoreFuture<'_, u64>;
    /// Deletes up to `limit` finished items of `kind` created before `before` (Unix seconds).
    /// Mail: sent or exhausted mails. Webhooks: events whose deliveries are all delivered or
    /// exhausted, with those deliveries. Returns how many mails or events went.
    fn prune(&self, kind: OutboxKind, before: i64, limit: u32) -> StoreFuture<'_, u64>;
}

/// API keys: the admin API's credentials for machines. Each write carries the audit entry of
/// the action, written in its transaction.
pub trait ApiKeys: Send + Sync {
    /// Names need not be unique (a rotation keeps the name).
    fn create_api_key(&self, key: NewApiKey, audit: AuditEntry) -> StoreFuture<'_, ApiKey>;
    /// Every key, revoked and expired ones included, newest first.
    fn list_api_keys(&self) -> StoreFuture<'_, Vec<ApiKey>>;
    fn get_api_key(&self, id: Uuid) -> StoreFuture<'_, Option<ApiKey>>;
    /// The key whose token hashes to `key_hash`, whatever its state (the caller checks it).
    fn find_api_key(&self, key_hash: TokenHash) -> StoreFuture<'_, Option<ApiKey>>;
    /// Sets `revoked_at` unless already set. `None` when there is no such key; the key as it
    /// stands otherwise (the audit entry is written only when this call revoked it).
    fn revoke_api_key(
        &self,
        id: Uuid,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<ApiKey>>;
    /// Revokes `old` and creates `new` (same name and scope) in one transaction. `None` when
    /// `old` does not exist or is no longer active (nothing written).
    fn rotate_api_key(
        &self,
        old: Uuid,
        new: NewApiKey,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<ApiKey>>;
    /// Sets `last_used_at` to `at` when it is unset or older than `at - 60`: one write a
    /// minute per key at most, whatever the request rate.
    fn touch_api_key(&self, id: Uuid, at: i64) -> StoreFuture<'_, ()>;
}

/// The audit log: every admin action and every security event, written with its change.
pub trait AuditLog: Send + Sync {
    /// An entry with no other change (a refused admin sign-in, an export).
    fn record_audit(&self, entry: AuditEntry) -> StoreFuture<'_, ()>;
    /// Entries matching `query`, newest first (`created_at`, then `id`, descending).
    fn list_audit(&self, query: AuditQuery) -> StoreFuture<'_, Vec<AuditRecord>>;
    /// One entry; with `tenant_id`, only an entry of that tenant.
    fn get_audit(&self, tenant_id: Option<Uuid>, id: Uuid) -> StoreFuture<'_, Option<AuditRecord>>;
    /// Deletes up to `limit` entries created before `before` (Unix seconds), of one tenant or
    /// all, then writes `audit` (the purge's own entry, which survives it) in the same
    /// transaction. Returns how many went.
    fn purge_audit(
        &self,
        tenant_id: Option<Uuid>,
        before: i64,
        limit: u32,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, u64>;
}

/// The whole store: what a backend implements and what the engine holds (`Arc<dyn Store>`).
pub trait Store:
    Administration
    + Directory
    + Accounts
    + Tokens
    + SigningKeys
    + Factors
    + Outbox
    + ApiKeys
    + AuditLog
    + Admins
    + UserAdmin
    + GrantAdmin
    + 'static
{
}

impl<T> Store for T where
    T: Administration
        + Directory
        + Accounts
        + Tokens
        + SigningKeys
        + Factors
        + Outbox
        + ApiKeys
        + AuditLog
        + Admins
        + UserAdmin
        + GrantAdmin
        + 'static
{
}

/// The store's traits, for calling their methods on a `dyn Store`.
pub mod prelude {
    pub use crate::{
        Accounts as _, Administration as _, Admins as _, ApiKeys as _, AuditLog as _,
        Directory as _, Factors as _, GrantAdmin as _, Outbox as _, SigningKeys as _, Store,
        Tokens as _, UserAdmin as _,
    };
}
