//! The backend-agnostic store suite.
//!
//! Every case is an `async fn(Arc<dyn Store>)` that receives a freshly opened, empty and
//! *unmigrated* store of the backend under test, and only talks to it through the [`Store`]
//! trait. `store_suite.rs` (SQLite) and `pg_suite.rs` (PostgreSQL, direct and through PgBouncer)
//! instantiate every case with [`store_suite!`] (one `#[tokio::test]` each); cases listed as
//! concurrent run on a multi-thread runtime. Include this module with `#[macro_use] mod suite;`.

/// Generates one test per case. `factory(case_name).await` returns the store and a guard that
/// cleans up after it (dropped once the case has finished and released the store).
macro_rules! store_suite {
    (
        factory = $factory:path;
        cases = [$($case:ident),* $(,)?];
        concurrent = [$($concurrent:ident),* $(,)?] $(;)?
    ) => {
        $(
            #[tokio::test]
            async fn $case() {
                let (store, guard) = $factory(stringify!($case)).await;
                crate::suite::$case(store).await;
                drop(guard);
            }
        )*
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $concurrent() {
                let (store, guard) = $factory(stringify!($concurrent)).await;
                crate::suite::$concurrent(store).await;
                drop(guard);
            }
        )*
    };
}

/// Generates one test per case that also writes or reads behind the store's back:
/// `factory(case_name).await` as for [`store_suite!`], and `raw(&guard)` the [`Raw`] access to
/// its database.
macro_rules! store_suite_raw {
    (
        factory = $factory:path;
        raw = $raw:path;
        cases = [$($case:ident),* $(,)?] $(;)?
    ) => {
        $(
            #[tokio::test]
            async fn $case() {
                let (store, guard) = $factory(stringify!($case)).await;
                let raw = $raw(&guard);
                crate::suite::$case(store, raw).await;
                drop(guard);
            }
        )*
    };
}

/// Every case of the suite, for one backend:
/// `store_suite_all! { factory = path::to::factory; raw = path::to::raw; }`, where `raw` gives
/// the [`Raw`] access to the factory's database (from its guard) that cases which write behind
/// the store's back need.
/// A new case is added here (and as an `async fn` below) and so runs against every backend.
macro_rules! store_suite_all {
    (factory = $factory:path; raw = $raw:path $(;)?) => {
        /// Rows a newer release wrote, written behind the store's back (`raw`).
        #[tokio::test]
        async fn tolerant_readers() {
            let (store, guard) = $factory("tolerant_readers").await;
            let raw = $raw(&guard);
            crate::suite::tolerant_readers(store, raw).await;
            drop(guard);
        }

        store_suite_raw! {
            factory = $factory;
            raw = $raw;
            cases = [
                admin_accounts,
                admin_refresh_rotation,
                admin_totp,
                admin_directory_audits,
                update_tenant,
                delete_tenant_leaves_nothing,
                admin_create_and_find_users,
                admin_update_and_delete_users,
                admin_user_paging,
                admin_passwords_and_status,
                admin_refresh_grants,
                admin_session_grants,
            ];
        }

        store_suite! {
            factory = $factory;
            cases = [
                admin_offset_pages,
                admin_grant_states_emails_and_counts,
                migrate_is_idempotent,
                tenants,
                clients,
                client_settings,
                update_client,
                delete_client,
                register_and_login,
                duplicate_email,
                upgrade_password_hash,
                refresh_rotation_and_reuse,
                expired_refresh_token,
                refresh_wrong_client,
                insert_refresh_token,
                revoke_refresh_family,
                revoke_all_for_user,
                find_user_by_email,
                app_metadata,
                disable_and_enable_user,
                sessions,
                events_commit_with_their_change,
                rolled_back_change_writes_no_event,
                webhook_endpoints,
                webhook_delivery_lifecycle,
                events_only_for_subscribers,
                prune_webhook_events,
                outbox_kinds_share_one_life,
                authorization_codes,
                revoked_access_tokens,
                signing_key_rotation,
                tenant_issuer_modes_and_keys,
                totp_enrolment,
                recovery_codes,
                delete_totp,
                mfa_challenges,
                email_verification,
                password_reset,
                mail_outbox,
                prune_lifecycle,
                rotate_refresh_in_one_call,
                rotate_refresh_elsewhere_is_not_found,
                rotate_refresh_reuse_event,
                rotate_refresh_keeps_granted_scopes,
                confirming_a_factor_ends_other_sign_ins,
                consents_and_session_amr,
                api_keys,
                rotate_api_keys,
                touch_api_keys,
                audit_filters,
                audit_paging,
                get_audit_entry,
                purge_audit,
                security_events_are_audited,
            ];
            concurrent = [
                concurrent_rotation,
                signing_keys,
                signing_keys_per_alg,
                concurrent_webhook_claims,
                concurrent_code_redemption,
                concurrent_totp_and_recovery,
                concurrent_challenge_completion,
                concurrent_rotate_refresh,
                concurrent_admin_rotation_and_totp,
            ];
        }
    };
}

use std::sync::Arc;

use serde_json::json;
use store::{
    Claimed, DeliveryFilter, DeliveryPayload, DeliveryStatus, Event, EventDraft, MailPayload,
    NewClient, NewRefreshToken, NewSession, NewUser, NewWebhookEndpoint, OutboxKind, OutboxResult,
    Payload, RefreshToken, RotateOutcome, Session, SigningKey, Store, StoreError, Tenant,
    TokenHash, User, WebhookEndpoint,
};
use uuid::Uuid;

/// "Now" for every case: the store never reads a clock for domain data.
const NOW: i64 = 1_700_000_000;
const REFRESH_TTL: i64 = 30 * 24 * 3600;
const APP: &str = "web-app";

// ----- helpers ------------------------------------------------------------------------------

async fn migrated(store: &Arc<dyn Store>) {
    let status = store.migrate().await.expect("migrate");
    assert!(
        status.pending().is_empty(),
        "pending after migrate: {status:?}"
    );
}

/// A random token hash (stands in for the SHA-256 of a random secret).
fn new_hash() -> TokenHash {
    let mut hash = [0u8; 32];
    hash[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    hash[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    hash
}

/// A claimed delivery's endpoint and event.
fn delivery_of(claimed: &Claimed) -> &DeliveryPayload {
    match &claimed.payload {
        Payload::Webhook(d) => d,
        Payload::Mail(_) => panic!("a mail where a delivery was claimed: {claimed:?}"),
    }
}

/// A claimed mail's content.
fn mail_of(claimed: &Claimed) -> &MailPayload {
    match &claimed.payload {
        Payload::Mail(m) => m,
        Payload::Webhook(_) => panic!("a delivery where a mail was claimed: {claimed:?}"),
    }
}

async fn tenant(store: &Arc<dyn Store>, slug: &str) -> Tenant {
    store
        .create_tenant(
            slug,
            &format!("Tenant {slug}"),
            Default::default(),
            NOW,
            None,
        )
        .await
        .expect("create tenant")
}

fn new_user(tenant: &Tenant, email: &str) -> NewUser {
    NewUser {
        id: Uuid::new_v4(),
        tenant_id: tenant.id,
        email: email.to_owned(),
        name: Some("Ada Lovelace".to_owned()),
        custom_fields: store::Metadata::from(
            json!({ "plan": "pro", "seats": 3, "tags": ["a", "b"] }),
        ),
    }
}

fn refresh_for(user: &NewUser, family_id: Uuid, issued_at: i64) -> NewRefreshToken {
    NewRefreshToken {
        token_hash: new_hash(),
        family_id,
        user_id: user.id,
        tenant_id: user.tenant_id,
        client_id: APP.to_owned(),
        issued_at,
        expires_at: issued_at + REFRESH_TTL,
    }
}

/// The successor presented at rotation (the store puts it in the old token's family).
fn successor(user: &User, issued_at: i64) -> NewRefreshToken {
    NewRefreshToken {
        token_hash: new_hash(),
        family_id: Uuid::new_v4(),
        user_id: user.id,
        tenant_id: user.tenant_id,
        client_id: APP.to_owned(),
        issued_at,
        expires_at: issued_at + REFRESH_TTL,
    }
}

/// Registers `email` in `tenant`; returns the user and their first refresh token.
async fn register(store: &Arc<dyn Store>, tenant: &Tenant, email: &str) -> (User, NewRefreshToken) {
    let new = new_user(tenant, email);
    let refresh = refresh_for(&new, Uuid::new_v4(), NOW);
    let user = store
        .register_user(
            new,
            "$argon2id$v=19$old".to_owned(),
            Some(refresh.clone()),
            None,
            NOW,
        )
        .await
        .expect("register");
    (user, refresh)
}

async fn token(store: &Arc<dyn Store>, hash: TokenHash) -> RefreshToken {
    store
        .find_refresh_token(hash)
        .await
        .expect("find refresh token")
        .expect("the token exists")
}

fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::Conflict(payload)) => {
            assert!(
                payload.contains(what),
                "conflict on {payload:?}, expected {what:?}"
            )
        }
        other => panic!("expected Conflict({what}), got {other:?}"),
    }
}

fn session_for(user: &User, created_at: i64) -> NewSession {
    NewSession {
        id_hash: new_hash(),
        user_id: user.id,
        tenant_id: user.tenant_id,
        client_id: APP.into(),
        created_at,
        expires_at: created_at + 3600,
        amr: vec!["pwd".into()],
    }
}

// ----- cases: one module per area, each case an `async fn(Arc<dyn Store>)` -------------------

mod accounts;
mod admin;
mod admins;
mod client_admin;
mod codes;
mod deliveries;
mod keys;
mod lifecycle;
mod manage;
mod rotate_refresh;
mod tokens;
mod tolerance;
mod webhooks;

pub use accounts::*;
pub use admin::*;
pub use admins::*;
pub use client_admin::*;
pub use codes::*;
pub use deliveries::*;
pub use keys::*;
pub use lifecycle::*;
pub use manage::*;
pub use rotate_refresh::*;
pub use tokens::*;
pub use tolerance::*;
pub use webhooks::*;
