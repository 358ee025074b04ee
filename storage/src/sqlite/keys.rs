//! Signing keys.

use super::error::db;
use rusqlite::{params, Connection, Row, TransactionBehavior};

use super::error::{known_rows, opt_uuid_at};
use crate::{SigningKey, StoreError};

/// `activates_at` NULL (rows from before migration 7, or from an older release) reads as
/// `created_at`; `tenant_id` NULL is a global key.
const KEY_COLUMNS: &str = "kid, alg, public_key, private_key_encrypted, created_at, \
                           COALESCE(activates_at, created_at), retired_at, tenant_id";

/// A key row, or `None` for a key of an algorithm this release does not know (a newer
/// release's): it is skipped (see `tolerant::signing_alg`).
fn key_from(row: &Row<'_>) -> rusqlite::Result<Option<SigningKey>> {
    let alg: String = row.get(1)?;
    let Some(alg) = crate::tolerant::signing_alg(&alg) else {
        return Ok(None);
    };
    Ok(Some(SigningKey {
        kid: row.get(0)?,
        alg,
        public_key: row.get(2)?,
        private_key_encrypted: row.get(3)?,
        created_at: row.get(4)?,
        activates_at: row.get(5)?,
        retired_at: row.get(6)?,
        tenant_id: opt_uuid_at(row, 7)?,
    }))
}

/// Every key, retired ones included, oldest first.
pub(super) fn list_signing_keys(conn: &Connection) -> Result<Vec<SigningKey>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY created_at, kid"
        ))
        .map_err(db)?;
    let rows = stmt.query_map([], key_from).map_err(db)?;
    known_rows(rows)
}

/// The owner of `key` as its column holds it: NULL for a global key.
fn owner(key: &SigningKey) -> Option<String> {
    key.tenant_id.map(|t| t.to_string())
}

/// The non-retired keys of `key`'s algorithm and owner.
fn active_keys(conn: &Connection, key: &SigningKey) -> Result<Vec<SigningKey>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM signing_keys \
         WHERE retired_at IS NULL AND alg = ?1 AND tenant_id IS ?2 ORDER BY created_at, kid"
        ))
        .map_err(db)?;
    let rows = stmt
        .query_map(params![key.alg.as_str(), owner(key)], key_from)
        .map_err(db)?;
    known_rows(rows)
}

fn insert(conn: &Connection, key: &SigningKey) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO signing_keys (kid, alg, public_key, private_key_encrypted, created_at, \
                                   activates_at, retired_at, tenant_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .map_err(db)?
    .execute(params![
        key.kid,
        key.alg.as_str(),
        key.public_key,
        key.private_key_encrypted,
        key.created_at,
        key.activates_at,
        key.retired_at,
        owner(key),
    ])
    .map_err(db)?;
    Ok(())
}

/// In one `BEGIN IMMEDIATE` transaction (which also excludes other processes): inserts `key`
/// only if no non-retired key of its algorithm and owner exists, then returns the non-retired
/// keys of that algorithm and owner.
pub(super) fn insert_signing_key_if_none(
    conn: &mut Connection,
    key: &SigningKey,
) -> Result<Vec<SigningKey>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let any_active: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM signing_keys \
                            WHERE retired_at IS NULL AND alg = ?1 AND tenant_id IS ?2)",
        )
        .map_err(db)?
        .query_row(params![key.alg.as_str(), owner(key)], |row| row.get(0))
        .map_err(db)?;
    if !any_active {
        insert(&tx, key)?;
    }
    let active = active_keys(&tx, key)?;
    tx.commit().map_err(db)?;
    Ok(active)
}

/// In one `BEGIN IMMEDIATE` transaction: retires, at `key.activates_at`, every key of its
/// algorithm and owner not retired by then, and inserts `key`. Returns how many keys were retired.
pub(super) fn rotate_signing_key(
    conn: &mut Connection,
    key: &SigningKey,
    audit: Option<crate::AuditEntry>,
) -> Result<u64, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let retired = tx
        .prepare_cached(
            "UPDATE signing_keys SET retired_at = ?1 \
             WHERE alg = ?2 AND tenant_id IS ?3 AND (retired_at IS NULL OR retired_at > ?1)",
        )
        .map_err(db)?
        .execute(params![key.activates_at, key.alg.as_str(), owner(key)])
        .map_err(db)?;
    insert(&tx, key)?;
    super::audit_row::insert_opt(&tx, audit.as_ref())?;
    tx.commit().map_err(db)?;
    Ok(u64::try_from(retired).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SigningAlg;

    /// Rows written before migration 7 (or by an older release during a rolling update) are
    /// Ed25519 keys that signed from their creation.
    #[test]
    fn rows_without_the_new_columns_read_as_ed25519_keys_active_from_creation() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate::migrate(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO signing_keys (kid, public_key, private_key_encrypted, created_at) \
             VALUES ('old', x'01', x'02', 42)",
            [],
        )
        .unwrap();
        let keys = list_signing_keys(&conn).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].alg, SigningAlg::EdDsa);
        assert_eq!(keys[0].activates_at, 42);
        assert_eq!(keys[0].retired_at, None);
        // An algorithm the schema does not know is refused...
        assert!(conn
            .execute(
                "INSERT INTO signing_keys (kid, alg, public_key, private_key_encrypted, \
                 created_at) VALUES ('hs', 'HS256', x'01', x'02', 1)",
                [],
            )
            .is_err());
        // ...but a newer release widens the CHECK for its own algorithms: their keys are
        // skipped, and the known ones still read.
        conn.execute_batch("PRAGMA ignore_check_constraints = ON")
            .unwrap();
        conn.execute(
            "INSERT INTO signing_keys (kid, alg, public_key, private_key_encrypted, \
             created_at) VALUES ('pq', 'ML-DSA-65', x'01', x'02', 43)",
            [],
        )
        .unwrap();
        let before = store::tolerance::count("signing_key_alg");
        let keys = list_signing_keys(&conn).unwrap();
        assert_eq!(
            keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
            ["old"]
        );
        assert!(store::tolerance::count("signing_key_alg") > before);
    }
}
