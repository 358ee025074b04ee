//! The admin API's records: API keys and the audit log. Each change that carries an
//! [`AuditEntry`] writes it in its own transaction ([`insert_audit`]); security events reach
//! the audit log through `hj_record_event` (migrations/postgres/0014_admin_api.sql).
//!
//! The traits are implemented here rather than in `mod.rs`, which is near the size limit of a
//! source file.

use super::error::db;
use store::{ApiKeys, AuditLog};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, GenericClient, Row};
use uuid::Uuid;

use super::pipelined::pipelined2;
use super::PgStore;
use crate::{
    ApiKey, AuditEntry, AuditQuery, AuditRecord, NewApiKey, StoreError, StoreFuture, TokenHash,
};

impl ApiKeys for PgStore {
    fn create_api_key(&self, key: NewApiKey, audit: AuditEntry) -> StoreFuture<'_, ApiKey> {
        self.call("create_api_key", move |c| {
            Box::pin(async move { create_api_key(c, &key, &audit).await })
        })
    }

    fn list_api_keys(&self) -> StoreFuture<'_, Vec<ApiKey>> {
        self.call("list_api_keys", |c| Box::pin(list_api_keys(c)))
    }

    fn get_api_key(&self, id: Uuid) -> StoreFuture<'_, Option<ApiKey>> {
        self.call("get_api_key", move |c| {
            Box::pin(async move { get_api_key(&*c, id).await })
        })
    }

    fn find_api_key(&self, key_hash: TokenHash) -> StoreFuture<'_, Option<ApiKey>> {
        self.call("find_api_key", move |c| {
            Box::pin(async move { find_api_key(c, &key_hash).await })
        })
    }

    fn revoke_api_key(
        &self,
        id: Uuid,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<ApiKey>> {
        self.call("revoke_api_key", move |c| {
            Box::pin(async move { revoke_api_key(c, id, now, &audit).await })
        })
    }

    fn rotate_api_key(
        &self,
        old: Uuid,
        new: NewApiKey,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<ApiKey>> {
        self.call("rotate_api_key", move |c| {
            Box::pin(async move { rotate_api_key(c, old, &new, &audit).await })
        })
    }

    fn touch_api_key(&self, id: Uuid, at: i64) -> StoreFuture<'_, ()> {
        self.call("touch_api_key", move |c| Box::pin(touch_api_key(c, id, at)))
    }
}

impl AuditLog for PgStore {
    fn record_audit(&self, entry: AuditEntry) -> StoreFuture<'_, ()> {
        self.call("record_audit", move |c| {
            Box::pin(async move { insert_audit(&*c, &entry).await })
        })
    }

    fn list_audit(&self, query: AuditQuery) -> StoreFuture<'_, Vec<AuditRecord>> {
        self.call("list_audit", move |c| {
            Box::pin(async move { list_audit(c, &query).await })
        })
    }

    fn get_audit(&self, tenant_id: Option<Uuid>, id: Uuid) -> StoreFuture<'_, Option<AuditRecord>> {
        self.call("get_audit", move |c| Box::pin(get_audit(c, tenant_id, id)))
    }

    fn purge_audit(
        &self,
        tenant_id: Option<Uuid>,
        before: i64,
        limit: u32,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, u64> {
        self.call("purge_audit", move |c| {
            Box::pin(async move { purge_audit(c, tenant_id, before, limit, audit.as_ref()).await })
        })
    }
}

// ----- API keys -----------------------------------------------------------------------------

/// The 9 columns of [`key_from`].
const KEY_COLUMNS: &str = "id, name, key_prefix, scope, created_by, created_at, last_used_at, \
                           expires_at, revoked_at";

fn key_from(row: &Row) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: row.try_get(0).map_err(db)?,
        name: row.try_get(1).map_err(db)?,
        key_prefix: row.try_get(2).map_err(db)?,
        scope: row.try_get(3).map_err(db)?,
        created_by: row.try_get(4).map_err(db)?,
        created_at: row.try_get(5).map_err(db)?,
        last_used_at: row.try_get(6).map_err(db)?,
        expires_at: row.try_get(7).map_err(db)?,
        revoked_at: row.try_get(8).map_err(db)?,
    })
}

async fn insert_key<C: GenericClient + Sync>(
    client: &C,
    key: &NewApiKey,
) -> Result<(), StoreError> {
    let hash: &[u8] = &key.key_hash;
    client
        .execute_typed(
            "INSERT INTO api_keys (id, name, key_prefix, key_hash, scope, created_by, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                (&key.id, Type::UUID),
                (&key.name, Type::TEXT),
                (&key.key_prefix, Type::TEXT),
                (&hash, Type::BYTEA),
                (&key.scope, Type::TEXT),
                (&key.created_by, Type::TEXT),
                (&key.created_at, Type::INT8),
                (&key.expires_at, Type::INT8),
            ],
        )
        .await
        .map_err(db)?;
    Ok(())
}

/// The key and its audit entry, pipelined in one transaction.
async fn create_api_key(
    client: &mut Client,
    key: &NewApiKey,
    audit: &AuditEntry,
) -> Result<ApiKey, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let (inserted, audited) = pipelined2(insert_key(&tx, key), insert_audit(&tx, audit)).await;
    inserted?;
    audited?;
    tx.commit().await.map_err(db)?;
    Ok(key.record())
}

async fn list_api_keys(client: &Client) -> Result<Vec<ApiKey>, StoreError> {
    let rows = client
        .query_typed(
            &format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, id DESC"),
            &[],
        )
        .await
        .map_err(db)?;
    rows.iter().map(key_from).collect()
}

async fn get_api_key<C: GenericClient + Sync>(
    client: &C,
    id: Uuid,
) -> Result<Option<ApiKey>, StoreError> {
    let row = client
        .query_typed_opt(
            &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"),
            &[(&id, Type::UUID)],
        )
        .await
        .map_err(db)?;
    row.as_ref().map(key_from).transpose()
}

async fn find_api_key(client: &Client, key_hash: &TokenHash) -> Result<Option<ApiKey>, StoreError> {
    let hash: &[u8] = key_hash;
    let row = client
        .query_typed_opt(
            &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1"),
            &[(&hash, Type::BYTEA)],
        )
        .await
        .map_err(db)?;
    row.as_ref().map(key_from).transpose()
}

/// One transaction: the conditional revocation decides whether the audit entry is written (a
/// second revocation, even a concurrent one, changes nothing and records nothing).
async fn revoke_api_key(
    client: &mut Client,
    id: Uuid,
    now: i64,
    audit: &AuditEntry,
) -> Result<Option<ApiKey>, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let revoked = tx
        .query_typed_opt(
            &format!(
                "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL \
                 RETURNING {KEY_COLUMNS}"
            ),
            &[(&id, Type::UUID), (&now, Type::INT8)],
        )
        .await
        .map_err(db)?;
    let Some(row) = revoked else {
        // Nothing changed: the key as it stands, if there is one.
        let key = get_api_key(&tx, id).await?;
        tx.commit().await.map_err(db)?;
        return Ok(key);
    };
    insert_audit(&tx, audit).await?;
    tx.commit().await.map_err(db)?;
    key_from(&row).map(Some)
}

/// One transaction: the old key is revoked at `new.created_at` only while it is active (not
/// revoked, not expired then), and only then are the new one and the audit entry written.
async fn rotate_api_key(
    client: &mut Client,
    old: Uuid,
    new: &NewApiKey,
    audit: &AuditEntry,
) -> Result<Option<ApiKey>, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let revoked = tx
        .execute_typed(
            "UPDATE api_keys SET revoked_at = $2 \
             WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
            &[(&old, Type::UUID), (&new.created_at, Type::INT8)],
        )
        .await
        .map_err(db)?;
    if revoked == 0 {
        // Dropping the transaction rolls it back: nothing was written.
        return Ok(None);
    }
    let (inserted, audited) = pipelined2(insert_key(&tx, new), insert_audit(&tx, audit)).await;
    inserted?;
    audited?;
    tx.commit().await.map_err(db)?;
    Ok(Some(new.record()))
}

/// One conditional update: at most one write a minute per key.
async fn touch_api_key(client: &Client, id: Uuid, at: i64) -> Result<(), StoreError> {
    client
        .execute_typed(
            "UPDATE api_keys SET last_used_at = $2 \
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2 - 60)",
            &[(&id, Type::UUID), (&at, Type::INT8)],
        )
        .await
        .map_err(db)?;
    Ok(())
}

// ----- the audit log ------------------------------------------------------------------------

/// The 14 columns of [`audit_from`], for a table aliased `a`.
const AUDIT_COLUMNS: &str =
    "a.id, a.tenant_id, a.action, a.actor_type, a.actor_id, a.actor_name, a.target_type, \
     a.target_id, a.ip_address, a.user_agent, a.request_id, a.metadata, a.result, a.created_at";

/// An audit row; NULL metadata reads as `{}`.
fn audit_from(row: &Row) -> Result<AuditRecord, StoreError> {
    let metadata = row
        .try_get::<_, Option<serde_json::Value>>(11)
        .map_err(db)?
        .map_or_else(crate::Metadata::empty, crate::Metadata::from_json);
    Ok(AuditRecord {
        id: row.try_get(0).map_err(db)?,
        tenant_id: row.try_get(1).map_err(db)?,
        action: row.try_get(2).map_err(db)?,
        actor_type: row.try_get(3).map_err(db)?,
        actor_id: row.try_get(4).map_err(db)?,
        actor_name: row.try_get(5).map_err(db)?,
        target_type: row.try_get(6).map_err(db)?,
        target_id: row.try_get(7).map_err(db)?,
        ip_address: row.try_get(8).map_err(db)?,
        user_agent: row.try_get(9).map_err(db)?,
        request_id: row.try_get(10).map_err(db)?,
        metadata,
        result: row.try_get(12).map_err(db)?,
        created_at: row.try_get(13).map_err(db)?,
    })
}

pub(super) use super::audit_row::insert_audit;

/// Every filter of the query that is set; the action is exact, or a prefix (`starts_with`,
/// no pattern) when it ends in `.`. The cursor is a row comparison, so it is a range on the
/// `(created_at, id)` indexes.
async fn list_audit(client: &Client, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
    let (exact, prefix) = match query.action.as_deref() {
        Some(action) if action.ends_with('.') => (None, Some(action)),
        action => (action, None),
    };
    let before_at = query.before.map(|(at, _)| at);
    let before_id = query.before.map(|(_, id)| id);
    let limit = i64::from(query.limit);
    let rows = client
        .query_typed(
            &format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_log a \
                 WHERE ($1::uuid IS NULL OR a.tenant_id = $1) \
                 AND ($2::text IS NULL OR a.action = $2) \
                 AND ($3::text IS NULL OR starts_with(a.action, $3)) \
                 AND ($4::text IS NULL OR a.actor_id = $4) \
                 AND ($5::text IS NULL OR a.target_id = $5) \
                 AND ($6::bigint IS NULL OR a.created_at >= $6) \
                 AND ($7::bigint IS NULL OR a.created_at < $7) \
                 AND ($8::bigint IS NULL OR (a.created_at, a.id) < ($8, $9)) \
                 ORDER BY a.created_at DESC, a.id DESC LIMIT $10"
            ),
            &[
                (&query.tenant_id, Type::UUID),
                (&exact, Type::TEXT),
                (&prefix, Type::TEXT),
                (&query.actor_id, Type::TEXT),
                (&query.target_id, Type::TEXT),
                (&query.from, Type::INT8),
                (&query.to, Type::INT8),
                (&before_at, Type::INT8),
                (&before_id, Type::UUID),
                (&limit, Type::INT8),
            ],
        )
        .await
        .map_err(db)?;
    rows.iter().map(audit_from).collect()
}

async fn get_audit(
    client: &Client,
    tenant_id: Option<Uuid>,
    id: Uuid,
) -> Result<Option<AuditRecord>, StoreError> {
    let row = client
        .query_typed_opt(
            &format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_log a \
                 WHERE a.id = $1 AND ($2::uuid IS NULL OR a.tenant_id = $2)"
            ),
            &[(&id, Type::UUID), (&tenant_id, Type::UUID)],
        )
        .await
        .map_err(db)?;
    row.as_ref().map(audit_from).transpose()
}

/// One transaction: up to `limit` of the oldest entries before `before` go, then the purge's
/// own entry is written (after the delete, so it survives it whatever its time).
async fn purge_audit(
    client: &mut Client,
    tenant_id: Option<Uuid>,
    before: i64,
    limit: u32,
    audit: Option<&AuditEntry>,
) -> Result<u64, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let deleted = tx
        .execute_typed(
            "DELETE FROM audit_log WHERE id IN \
             (SELECT a.id FROM audit_log a \
              WHERE a.created_at < $1 AND ($2::uuid IS NULL OR a.tenant_id = $2) \
              ORDER BY a.created_at, a.id LIMIT $3)",
            &[
                (&before, Type::INT8),
                (&tenant_id, Type::UUID),
                (&i64::from(limit), Type::INT8),
            ],
        )
        .await
        .map_err(db)?;
    if let Some(audit) = audit {
        insert_audit(&tx, audit).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok(deleted)
}
