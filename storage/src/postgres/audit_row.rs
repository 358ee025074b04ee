//! How an admin action's audit entry is written: inside the transaction of the change it
//! records, so it exists iff the change committed.

use super::error::db;
use tokio_postgres::types::Type;
use tokio_postgres::GenericClient;

use crate::{AuditEntry, StoreError};

pub(super) async fn insert_audit<C: GenericClient + Sync>(
    client: &C,
    entry: &AuditEntry,
) -> Result<(), StoreError> {
    let metadata = entry.metadata.to_json();
    client
        .execute_typed(
            "INSERT INTO audit_log (id, tenant_id, action, actor_type, actor_id, actor_name, \
             target_type, target_id, ip_address, user_agent, request_id, metadata, result, \
             created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            &[
                (&entry.id, Type::UUID),
                (&entry.tenant_id, Type::UUID),
                (&entry.action, Type::TEXT),
                (&entry.actor_type, Type::TEXT),
                (&entry.actor_id, Type::TEXT),
                (&entry.actor_name, Type::TEXT),
                (&entry.target_type, Type::TEXT),
                (&entry.target_id, Type::TEXT),
                (&entry.ip_address, Type::TEXT),
                (&entry.user_agent, Type::TEXT),
                (&entry.request_id, Type::TEXT),
                (&metadata, Type::JSONB),
                (&entry.result, Type::TEXT),
                (&entry.created_at, Type::INT8),
            ],
        )
        .await
        .map_err(db)?;
    Ok(())
}

/// [`insert_audit`] for an optional entry.
pub(super) async fn insert_opt<C: GenericClient + Sync>(
    client: &C,
    entry: Option<&AuditEntry>,
) -> Result<(), StoreError> {
    match entry {
        Some(entry) => insert_audit(client, entry).await,
        None => Ok(()),
    }
}
