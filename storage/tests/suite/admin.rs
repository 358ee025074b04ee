//! Cases: the admin API's records. Here API keys (each change with its audit entry, in one
//! transaction); in `audit` the audit log (filters, paging, scoped reads, purges) and the
//! audit entry every security event writes, whether or not a webhook endpoint subscribes to it.

use super::*;
use store::{ApiKey, AuditEntry, AuditQuery, AuditRecord, EventMeta, NewApiKey};

mod audit;

pub use audit::*;

/// A key to create at `at`, as the CLI or the engine makes one (the token itself never
/// reaches the store).
fn new_key(name: &str, scope: &str, at: i64, expires_at: Option<i64>) -> NewApiKey {
    let id = Uuid::now_v7();
    NewApiKey {
        id,
        name: name.to_owned(),
        key_prefix: format!("hjk_{}", &id.simple().to_string()[24..32]),
        key_hash: new_hash(),
        scope: scope.to_owned(),
        created_by: "cli".to_owned(),
        created_at: at,
        expires_at,
    }
}

/// An audit entry of an action at `at`.
fn entry(action: &str, tenant_id: Option<Uuid>, at: i64) -> AuditEntry {
    let mut metadata = EventMeta::new();
    metadata.insert("note", action);
    AuditEntry {
        id: Uuid::now_v7(),
        tenant_id,
        action: action.to_owned(),
        actor_type: "api_key".to_owned(),
        actor_id: Some("key-1".to_owned()),
        actor_name: Some("deploy bot".to_owned()),
        target_type: Some("api_key".to_owned()),
        target_id: Some("target-1".to_owned()),
        ip_address: Some("198.51.100.4".to_owned()),
        user_agent: Some("suite/1.0".to_owned()),
        request_id: Some(format!("req-{}", Uuid::new_v4().simple())),
        metadata,
        result: "success".to_owned(),
        created_at: at,
    }
}

/// The audit entry of an action on key `key`.
fn key_entry(action: &str, key: Uuid, at: i64) -> AuditEntry {
    AuditEntry {
        actor_type: "cli".to_owned(),
        actor_id: None,
        actor_name: Some("ops".to_owned()),
        target_type: Some("api_key".to_owned()),
        target_id: Some(key.to_string()),
        ..entry(action, None, at)
    }
}

/// Asserts that `record` reads back every field of `entry`.
fn assert_reads_back(record: &AuditRecord, entry: &AuditEntry) {
    let expected = AuditRecord {
        id: entry.id,
        tenant_id: entry.tenant_id,
        action: entry.action.clone(),
        actor_type: entry.actor_type.clone(),
        actor_id: entry.actor_id.clone(),
        actor_name: entry.actor_name.clone(),
        target_type: entry.target_type.clone(),
        target_id: entry.target_id.clone(),
        ip_address: entry.ip_address.clone(),
        user_agent: entry.user_agent.clone(),
        request_id: entry.request_id.clone(),
        metadata: store::Metadata::from_json(entry.metadata.to_json()),
        result: entry.result.clone(),
        created_at: entry.created_at,
    };
    assert_eq!(record, &expected);
}

fn everything() -> AuditQuery {
    AuditQuery {
        limit: 1000,
        ..AuditQuery::default()
    }
}

/// The entries `query` lists.
async fn audit(store: &Arc<dyn Store>, query: AuditQuery) -> Vec<AuditRecord> {
    store.list_audit(query).await.expect("list audit")
}

/// The ids `query` lists, in order.
async fn audit_ids(store: &Arc<dyn Store>, query: AuditQuery) -> Vec<Uuid> {
    audit(store, query).await.iter().map(|r| r.id).collect()
}

/// The entries of `action` about target `target`.
async fn entries_about(store: &Arc<dyn Store>, action: &str, target: Uuid) -> Vec<AuditRecord> {
    audit(
        store,
        AuditQuery {
            action: Some(action.to_owned()),
            target_id: Some(target.to_string()),
            ..everything()
        },
    )
    .await
}

async fn key(store: &Arc<dyn Store>, id: Uuid) -> ApiKey {
    store
        .get_api_key(id)
        .await
        .expect("get api key")
        .expect("the key exists")
}

pub async fn api_keys(store: Arc<dyn Store>) {
    migrated(&store).await;
    assert!(store.list_api_keys().await.expect("list").is_empty());

    let first = new_key("deploy", "admin", NOW, None);
    let created_entry = key_entry("api_key.create", first.id, NOW);
    let created = store
        .create_api_key(first.clone(), created_entry.clone())
        .await
        .expect("create");
    assert_eq!(created, first.record());
    assert!(created.is_active(NOW));
    let second = new_key("reports", "tenant:acme", NOW + 5, Some(NOW + 3600));
    store
        .create_api_key(
            second.clone(),
            key_entry("api_key.create", second.id, NOW + 5),
        )
        .await
        .expect("create second");

    // Newest first; the same as get and find by hash.
    assert_eq!(
        store.list_api_keys().await.expect("list"),
        vec![second.record(), first.record()]
    );
    assert_eq!(key(&store, first.id).await, first.record());
    assert_eq!(
        store.find_api_key(second.key_hash).await.expect("find"),
        Some(second.record())
    );
    assert_eq!(store.find_api_key(new_hash()).await.expect("find"), None);
    assert_eq!(store.get_api_key(Uuid::now_v7()).await.expect("get"), None);
    let written = entries_about(&store, "api_key.create", first.id).await;
    assert_eq!(written.len(), 1);
    assert_reads_back(&written[0], &created_entry);

    // A second key with the same hash is refused, and its audit entry goes with it.
    let clash = NewApiKey {
        key_hash: first.key_hash,
        ..new_key("clash", "readonly", NOW + 6, None)
    };
    assert_conflict(
        store
            .create_api_key(
                clash.clone(),
                key_entry("api_key.create", clash.id, NOW + 6),
            )
            .await,
        "key_hash",
    );
    assert_eq!(store.get_api_key(clash.id).await.expect("get"), None);
    assert!(entries_about(&store, "api_key.create", clash.id)
        .await
        .is_empty());

    // Revocation: idempotent, audited once.
    let revoked = store
        .revoke_api_key(
            first.id,
            NOW + 10,
            key_entry("api_key.revoke", first.id, NOW + 10),
        )
        .await
        .expect("revoke")
        .expect("the key exists");
    assert_eq!(revoked.revoked_at, Some(NOW + 10));
    assert!(!revoked.is_active(NOW + 10));
    let again = store
        .revoke_api_key(
            first.id,
            NOW + 20,
            key_entry("api_key.revoke", first.id, NOW + 20),
        )
        .await
        .expect("revoke again")
        .expect("the key still exists");
    assert_eq!(
        again.revoked_at,
        Some(NOW + 10),
        "the first revocation stands"
    );
    assert_eq!(again, key(&store, first.id).await);
    let revocations = entries_about(&store, "api_key.revoke", first.id).await;
    assert_eq!(revocations.len(), 1, "{revocations:?}");
    assert_eq!(revocations[0].created_at, NOW + 10);
    let unknown = Uuid::now_v7();
    assert_eq!(
        store
            .revoke_api_key(
                unknown,
                NOW + 30,
                key_entry("api_key.revoke", unknown, NOW + 30)
            )
            .await
            .expect("revoke unknown"),
        None
    );
    assert!(entries_about(&store, "api_key.revoke", unknown)
        .await
        .is_empty());
    // The other key is untouched.
    assert_eq!(key(&store, second.id).await, second.record());
}

pub async fn rotate_api_keys(store: Arc<dyn Store>) {
    migrated(&store).await;
    let old = new_key("deploy", "readonly", NOW, Some(NOW + 1000));
    store
        .create_api_key(old.clone(), key_entry("api_key.create", old.id, NOW))
        .await
        .expect("create");

    let new = NewApiKey {
        expires_at: Some(NOW + 2000),
        ..new_key("deploy", "readonly", NOW + 100, None)
    };
    let rotated = store
        .rotate_api_key(
            old.id,
            new.clone(),
            key_entry("api_key.rotate", old.id, NOW + 100),
        )
        .await
        .expect("rotate")
        .expect("the old key was active");
    assert_eq!(rotated, new.record());
    assert_eq!(key(&store, new.id).await, new.record());
    assert!(key(&store, new.id).await.is_active(NOW + 100));
    let old_now = key(&store, old.id).await;
    assert_eq!(old_now.revoked_at, Some(NOW + 100));
    assert!(!old_now.is_active(NOW + 100));
    assert_eq!(
        store.find_api_key(new.key_hash).await.expect("find"),
        Some(new.record())
    );
    assert_eq!(
        entries_about(&store, "api_key.rotate", old.id).await.len(),
        1
    );

    // The old key again: revoked, so nothing happens and nothing is recorded.
    let refused = new_key("deploy", "readonly", NOW + 200, None);
    assert_eq!(
        store
            .rotate_api_key(
                old.id,
                refused.clone(),
                key_entry("api_key.rotate", old.id, NOW + 200)
            )
            .await
            .expect("rotate a revoked key"),
        None
    );
    assert_eq!(store.get_api_key(refused.id).await.expect("get"), None);
    assert_eq!(
        entries_about(&store, "api_key.rotate", old.id).await.len(),
        1
    );
    assert_eq!(key(&store, old.id).await.revoked_at, Some(NOW + 100));

    // An expired key, or one that does not exist, is not rotated either.
    let expired = new_key("old", "admin", NOW, Some(NOW + 50));
    store
        .create_api_key(
            expired.clone(),
            key_entry("api_key.create", expired.id, NOW),
        )
        .await
        .expect("create");
    let late = new_key("old", "admin", NOW + 50, None);
    assert_eq!(
        store
            .rotate_api_key(
                expired.id,
                late.clone(),
                key_entry("api_key.rotate", expired.id, NOW + 50)
            )
            .await
            .expect("rotate an expired key"),
        None
    );
    assert_eq!(key(&store, expired.id).await.revoked_at, None);
    assert_eq!(store.get_api_key(late.id).await.expect("get"), None);
    let nowhere = new_key("x", "admin", NOW + 10, None);
    assert_eq!(
        store
            .rotate_api_key(
                Uuid::now_v7(),
                nowhere.clone(),
                key_entry("api_key.rotate", nowhere.id, NOW + 10)
            )
            .await
            .expect("rotate an unknown key"),
        None
    );
    assert_eq!(store.list_api_keys().await.expect("list").len(), 3);
    assert_eq!(
        audit(
            &store,
            AuditQuery {
                action: Some("api_key.rotate".into()),
                ..everything()
            }
        )
        .await
        .len(),
        1
    );
}

/// `last_used_at` moves at most once a minute.
pub async fn touch_api_keys(store: Arc<dyn Store>) {
    migrated(&store).await;
    let k = new_key("deploy", "admin", NOW, None);
    let other = new_key("other", "admin", NOW, None);
    for new in [&k, &other] {
        store
            .create_api_key(new.clone(), key_entry("api_key.create", new.id, NOW))
            .await
            .expect("create");
    }
    let id = k.id;
    let used = |at: i64| {
        let store = Arc::clone(&store);
        async move {
            store.touch_api_key(id, at).await.expect("touch");
            key(&store, id).await.last_used_at
        }
    };
    assert_eq!(used(NOW + 100).await, Some(NOW + 100), "the first use");
    assert_eq!(
        used(NOW + 130).await,
        Some(NOW + 100),
        "30 s later: not written"
    );
    assert_eq!(
        used(NOW + 160).await,
        Some(NOW + 100),
        "60 s later: not written"
    );
    assert_eq!(
        used(NOW + 161).await,
        Some(NOW + 161),
        "61 s later: written"
    );
    assert_eq!(used(NOW + 150).await, Some(NOW + 161), "never back in time");
    assert_eq!(key(&store, other.id).await.last_used_at, None);
    // An unknown key: nothing to do, no error.
    store
        .touch_api_key(Uuid::now_v7(), NOW)
        .await
        .expect("touch unknown");
}
