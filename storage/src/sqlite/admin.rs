//! The admin API's records: API keys and the audit log. Each change that carries an
//! [`AuditEntry`] writes it in its own transaction ([`insert_audit`]); security events reach
//! the audit log through `events::insert_event`.
//!
//! The traits are implemented here rather than in `mod.rs`, which is near the size limit of a
//! source file.

use super::error::db;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use store::{ApiKeys, AuditLog};
use uuid::Uuid;

use super::error::{opt_uuid_at, uuid_at};
use super::SqliteStore;
use crate::{
    ApiKey, AuditEntry, AuditQuery, AuditRecord, NewApiKey, StoreError, StoreFuture, TokenHash,
};

impl ApiKeys for SqliteStore {
    fn create_api_key(&self, key: NewApiKey, audit: AuditEntry) -> StoreFuture<'_, ApiKey> {
        self.pool
            .write(move |conn| create_api_key(conn, &key, &audit))
    }

    fn list_api_keys(&self) -> StoreFuture<'_, Vec<ApiKey>> {
        self.pool.read(|conn| list_api_keys(conn))
    }

    fn get_api_key(&self, id: Uuid) -> StoreFuture<'_, Option<ApiKey>> {
        self.pool.read(move |conn| get_api_key(conn, id))
    }

    fn find_api_key(&self, key_hash: TokenHash) -> StoreFuture<'_, Option<ApiKey>> {
        self.pool.read(move |conn| find_api_key(conn, &key_hash))
    }

    fn revoke_api_key(
        &self,
        id: Uuid,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<ApiKey>> {
        self.pool
            .write(move |conn| revoke_api_key(conn, id, now, &audit))
    }

    fn rotate_api_key(
        &self,
        old: Uuid,
        new: NewApiKey,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<ApiKey>> {
        self.pool
            .write(move |conn| rotate_api_key(conn, old, &new, &audit))
    }

    fn touch_api_key(&self, id: Uuid, at: i64) -> StoreFuture<'_, ()> {
        self.pool.write(move |conn| touch_api_key(conn, id, at))
    }
}

impl AuditLog for SqliteStore {
    fn record_audit(&self, entry: AuditEntry) -> StoreFuture<'_, ()> {
        self.pool.write(move |conn| insert_audit(conn, &entry))
    }

    fn list_audit(&self, query: AuditQuery) -> StoreFuture<'_, Vec<AuditRecord>> {
        self.pool.read(move |conn| list_audit(conn, &query))
    }

    fn get_audit(&self, tenant_id: Option<Uuid>, id: Uuid) -> StoreFuture<'_, Option<AuditRecord>> {
        self.pool.read(move |conn| get_audit(conn, tenant_id, id))
    }

    fn purge_audit(
        &self,
        tenant_id: Option<Uuid>,
        before: i64,
        limit: u32,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, u64> {
        self.pool
            .write(move |conn| purge_audit(conn, tenant_id, before, limit, audit.as_ref()))
    }
}

// ----- API keys -----------------------------------------------------------------------------

/// The 9 columns of [`key_from`].
const KEY_COLUMNS: &str = "id, name, key_prefix, scope, created_by, created_at, last_used_at, \
                           expires_at, revoked_at";

fn key_from(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: uuid_at(row, 0)?,
        name: row.get(1)?,
        key_prefix: row.get(2)?,
        scope: row.get(3)?,
        created_by: row.get(4)?,
        created_at: row.get(5)?,
        last_used_at: row.get(6)?,
        expires_at: row.get(7)?,
        revoked_at: row.get(8)?,
    })
}

fn insert_key(conn: &Connection, key: &NewApiKey) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO api_keys (id, name, key_prefix, key_hash, scope, created_by, created_at, \
                               expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .map_err(db)?
    .execute(params![
        key.id.to_string(),
        key.name,
        key.key_prefix,
        &key.key_hash[..],
        key.scope,
        key.created_by,
        key.created_at,
        key.expires_at,
    ])
    .map_err(db)?;
    Ok(())
}

/// The key and its audit entry, in one transaction.
fn create_api_key(
    conn: &mut Connection,
    key: &NewApiKey,
    audit: &AuditEntry,
) -> Result<ApiKey, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    insert_key(&tx, key)?;
    insert_audit(&tx, audit)?;
    tx.commit().map_err(db)?;
    Ok(key.record())
}

fn list_api_keys(conn: &Connection) -> Result<Vec<ApiKey>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, id DESC"
        ))
        .map_err(db)?;
    let rows = stmt.query_map([], key_from).map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

fn get_api_key(conn: &Connection, id: Uuid) -> Result<Option<ApiKey>, StoreError> {
    conn.prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"))
        .map_err(db)?
        .query_row([id.to_string()], key_from)
        .optional()
        .map_err(db)
}

fn find_api_key(conn: &Connection, key_hash: &TokenHash) -> Result<Option<ApiKey>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1"
    ))
    .map_err(db)?
    .query_row([&key_hash[..]], key_from)
    .optional()
    .map_err(db)
}

/// One transaction: the conditional revocation decides whether the audit entry is written
/// (a second revocation changes nothing and records nothing); the key is read back either way.
fn revoke_api_key(
    conn: &mut Connection,
    id: Uuid,
    now: i64,
    audit: &AuditEntry,
) -> Result<Option<ApiKey>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let revoked = tx
        .prepare_cached("UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")
        .map_err(db)?
        .execute(params![id.to_string(), now])
        .map_err(db)?;
    if revoked == 1 {
        insert_audit(&tx, audit)?;
    }
    let key = get_api_key(&tx, id)?;
    tx.commit().map_err(db)?;
    Ok(key)
}

/// One transaction: the old key is revoked at `new.created_at` only while it is active (not
/// revoked, not expired then), and only then is the new one inserted with the audit entry.
fn rotate_api_key(
    conn: &mut Connection,
    old: Uuid,
    new: &NewApiKey,
    audit: &AuditEntry,
) -> Result<Option<ApiKey>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let revoked = tx
        .prepare_cached(
            "UPDATE api_keys SET revoked_at = ?2 \
             WHERE id = ?1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?2)",
        )
        .map_err(db)?
        .execute(params![old.to_string(), new.created_at])
        .map_err(db)?;
    if revoked == 0 {
        // Dropping the transaction rolls it back: nothing was written.
        return Ok(None);
    }
    insert_key(&tx, new)?;
    insert_audit(&tx, audit)?;
    tx.commit().map_err(db)?;
    Ok(Some(new.record()))
}

/// One conditional update: at most one write a minute per key.
fn touch_api_key(conn: &Connection, id: Uuid, at: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE api_keys SET last_used_at = ?2 \
         WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2 - 60)",
    )
    .map_err(db)?
    .execute(params![id.to_string(), at])
    .map_err(db)?;
    Ok(())
}

// ----- the audit log ------------------------------------------------------------------------

/// The 14 columns of [`audit_from`], for a table aliased `a`.
const AUDIT_COLUMNS: &str =
    "a.id, a.tenant_id, a.action, a.actor_type, a.actor_id, a.actor_name, a.target_type, \
     a.target_id, a.ip_address, a.user_agent, a.request_id, a.metadata, a.result, a.created_at";

/// An audit row. Its metadata reads as `{}` when NULL or not JSON (a row written by hand or
/// by another tool): a listing never fails on one entry's metadata.
fn audit_from(row: &Row<'_>) -> rusqlite::Result<AuditRecord> {
    let metadata = row
        .get::<_, Option<String>>(11)?
        .and_then(|text| serde_json::from_str(&text).ok())
        .map_or_else(crate::Metadata::empty, crate::Metadata::from_json);
    Ok(AuditRecord {
        id: uuid_at(row, 0)?,
        tenant_id: opt_uuid_at(row, 1)?,
        action: row.get(2)?,
        actor_type: row.get(3)?,
        actor_id: row.get(4)?,
        actor_name: row.get(5)?,
        target_type: row.get(6)?,
        target_id: row.get(7)?,
        ip_address: row.get(8)?,
        user_agent: row.get(9)?,
        request_id: row.get(10)?,
        metadata,
        result: row.get(12)?,
        created_at: row.get(13)?,
    })
}

pub(super) use super::audit_row::insert_audit;

/// The filters of [`list_audit`] after the tenant's (`?1`), as `?2` .. `?9`. The action prefix
/// is compared with `substr`, not `LIKE`: SQLite's `LIKE` ignores ASCII case and treats `_`
/// and `%` as wildcards. The page ends before `(?7, ?8)`, bound to the largest pair when the
/// query has no cursor, so the cursor is a range on the index rather than a filter.
const AUDIT_FILTERS: &str = "(?2 IS NULL OR a.action = ?2) \
     AND (?3 IS NULL OR substr(a.action, 1, length(?3)) = ?3) \
     AND (?4 IS NULL OR a.actor_id = ?4) \
     AND (?5 IS NULL OR a.target_id = ?5) \
     AND (?6 IS NULL OR a.created_at >= ?6) \
     AND (?9 IS NULL OR a.created_at < ?9) \
     AND a.created_at <= ?7 AND (a.created_at < ?7 OR a.id < ?8)";

fn list_audit(conn: &Connection, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
    let (exact, prefix) = match query.action.as_deref() {
        Some(action) if action.ends_with('.') => (None, Some(action)),
        action => (action, None),
    };
    let (before_at, before_id) = query.before.unwrap_or((i64::MAX, Uuid::max()));
    // The tenant's entries by their own index; every entry by the time index
    // (`?1`, then NULL, is not in the statement).
    let sql = match query.tenant_id {
        Some(_) => format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log a WHERE a.tenant_id = ?1 AND {AUDIT_FILTERS} \
             ORDER BY a.created_at DESC, a.id DESC LIMIT ?10"
        ),
        None => format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log a WHERE {AUDIT_FILTERS} \
             ORDER BY a.created_at DESC, a.id DESC LIMIT ?10"
        ),
    };
    let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
    let rows = stmt
        .query_map(
            params![
                query.tenant_id.map(|t| t.to_string()),
                exact,
                prefix,
                query.actor_id,
                query.target_id,
                query.from,
                before_at,
                before_id.to_string(),
                query.to,
                query.limit,
            ],
            audit_from,
        )
        .map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

fn get_audit(
    conn: &Connection,
    tenant_id: Option<Uuid>,
    id: Uuid,
) -> Result<Option<AuditRecord>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {AUDIT_COLUMNS} FROM audit_log a \
         WHERE a.id = ?1 AND (?2 IS NULL OR a.tenant_id = ?2)"
    ))
    .map_err(db)?
    .query_row(
        params![id.to_string(), tenant_id.map(|t| t.to_string())],
        audit_from,
    )
    .optional()
    .map_err(db)
}

/// One transaction: up to `limit` of the oldest entries before `before` go, then the purge's
/// own entry is written (after the delete, so it survives it whatever its time).
fn purge_audit(
    conn: &mut Connection,
    tenant_id: Option<Uuid>,
    before: i64,
    limit: u32,
    audit: Option<&AuditEntry>,
) -> Result<u64, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let deleted = tx
        .prepare_cached(
            "DELETE FROM audit_log WHERE id IN \
             (SELECT a.id FROM audit_log a \
              WHERE a.created_at < ?1 AND (?2 IS NULL OR a.tenant_id = ?2) \
              ORDER BY a.created_at, a.id LIMIT ?3)",
        )
        .map_err(db)?
        .execute(params![before, tenant_id.map(|t| t.to_string()), limit])
        .map_err(db)?;
    if let Some(audit) = audit {
        insert_audit(&tx, audit)?;
    }
    tx.commit().map_err(db)?;
    Ok(deleted as u64)
}
