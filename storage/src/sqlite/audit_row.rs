//! How an admin action's audit entry is written: inside the transaction of the change it
//! records, so it exists iff the change committed.

use super::error::{db, to_json};
use rusqlite::{params, Connection};

use crate::{AuditEntry, StoreError};

pub(super) fn insert_audit(conn: &Connection, entry: &AuditEntry) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit_log (id, tenant_id, action, actor_type, actor_id, actor_name, \
                                target_type, target_id, ip_address, user_agent, request_id, \
                                metadata, result, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )
    .map_err(db)?
    .execute(params![
        entry.id.to_string(),
        entry.tenant_id.map(|t| t.to_string()),
        entry.action,
        entry.actor_type,
        entry.actor_id,
        entry.actor_name,
        entry.target_type,
        entry.target_id,
        entry.ip_address,
        entry.user_agent,
        entry.request_id,
        to_json(&entry.metadata.to_json())?,
        entry.result,
        entry.created_at,
    ])
    .map_err(db)?;
    Ok(())
}

/// [`insert_audit`] for an optional entry.
pub(super) fn insert_opt(conn: &Connection, entry: Option<&AuditEntry>) -> Result<(), StoreError> {
    match entry {
        Some(entry) => insert_audit(conn, entry),
        None => Ok(()),
    }
}
