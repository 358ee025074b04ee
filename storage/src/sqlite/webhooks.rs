//! Webhook endpoints and deliveries: listing and manual redelivery. Their claim, results and
//! pruning are the outbox's (`outbox.rs`).

use super::audit_row;
use super::error::db;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use uuid::Uuid;

use super::error::{json_at, known_rows, to_json, uuid_at};
use crate::{
    AuditEntry, DeliveryFilter, DeliveryStatus, Event, NewWebhookEndpoint, StoreError,
    WebhookChanges, WebhookDelivery, WebhookEndpoint,
};

/// The 6 endpoint columns of [`endpoint_from`], for a table aliased `e`.
pub(super) const ENDPOINT_COLUMNS: &str =
    "e.id, e.tenant_id, e.url, e.events, e.secret_encrypted, e.created_at";

pub(super) fn endpoint_from(row: &Row<'_>, at: usize) -> rusqlite::Result<WebhookEndpoint> {
    Ok(WebhookEndpoint {
        id: uuid_at(row, at)?,
        tenant_id: uuid_at(row, at + 1)?,
        url: row.get(at + 2)?,
        events: json_at(row, at + 3)?,
        secret_encrypted: row.get(at + 4)?,
        created_at: row.get(at + 5)?,
    })
}

pub(super) fn create_endpoint(
    conn: &mut Connection,
    new: NewWebhookEndpoint,
    now: i64,
    audit: Option<AuditEntry>,
) -> Result<WebhookEndpoint, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let endpoint = WebhookEndpoint {
        id: new.id,
        tenant_id: new.tenant_id,
        url: new.url,
        events: new.events,
        secret_encrypted: new.secret_encrypted,
        created_at: now,
    };
    tx.prepare_cached(
        "INSERT INTO webhook_endpoints (id, tenant_id, url, events, secret_encrypted, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .map_err(db)?
    .execute(params![
        endpoint.id.to_string(),
        endpoint.tenant_id.to_string(),
        endpoint.url,
        to_json(&endpoint.events)?,
        endpoint.secret_encrypted,
        endpoint.created_at,
    ])
    .map_err(db)?;
    audit_row::insert_opt(&tx, audit.as_ref())?;
    tx.commit().map_err(db)?;
    Ok(endpoint)
}

/// See [`store::Administration::update_webhook_endpoint`].
pub(super) fn update_endpoint(
    conn: &mut Connection,
    tenant_id: Uuid,
    id: Uuid,
    changes: WebhookChanges,
    audit: AuditEntry,
) -> Result<Option<WebhookEndpoint>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let events = changes.events.as_ref().map(to_json).transpose()?;
    let updated = tx
        .prepare_cached(
            "UPDATE webhook_endpoints SET url = COALESCE(?3, url), \
             events = COALESCE(?4, events), secret_encrypted = COALESCE(?5, secret_encrypted) \
             WHERE id = ?1 AND tenant_id = ?2 \
             RETURNING id, tenant_id, url, events, secret_encrypted, created_at",
        )
        .map_err(db)?
        .query_row(
            params![
                id.to_string(),
                tenant_id.to_string(),
                changes.url,
                events,
                changes.secret_encrypted
            ],
            |row| endpoint_from(row, 0),
        )
        .optional()
        .map_err(db)?;
    if updated.is_some() {
        audit_row::insert_audit(&tx, &audit)?;
        tx.commit().map_err(db)?;
    }
    Ok(updated)
}

/// See [`store::Administration::enqueue_webhook_test`].
pub(super) fn enqueue_test(
    conn: &mut Connection,
    tenant_id: Uuid,
    endpoint_id: Uuid,
    event: Event,
    audit: AuditEntry,
) -> Result<Option<Uuid>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let exists = tx
        .prepare_cached("SELECT 1 FROM webhook_endpoints WHERE id = ?1 AND tenant_id = ?2")
        .map_err(db)?
        .exists(params![endpoint_id.to_string(), tenant_id.to_string()])
        .map_err(db)?;
    if !exists {
        return Ok(None);
    }
    tx.prepare_cached(
        "INSERT INTO webhook_events (id, tenant_id, type, actor_id, actor_type, target_id, \
                                     target_type, ip_address, user_agent, metadata, result, \
                                     created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )
    .map_err(db)?
    .execute(params![
        event.id.to_string(),
        tenant_id.to_string(),
        event.event_type,
        event.actor_id.map(|u| u.to_string()),
        event.actor_type,
        event.target_id.map(|u| u.to_string()),
        event.target_type,
        event.ip_address,
        event.user_agent,
        to_json(event.metadata.as_json())?,
        event.result,
        event.created_at,
    ])
    .map_err(db)?;
    let delivery = Uuid::new_v4();
    tx.prepare_cached(
        "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, tenant_id, status, \
                                         attempts, generation, next_attempt_at_ms, created_at) \
         VALUES (?1, ?2, ?3, ?4, 'pending', 0, 0, ?5, ?6)",
    )
    .map_err(db)?
    .execute(params![
        delivery.to_string(),
        event.id.to_string(),
        endpoint_id.to_string(),
        tenant_id.to_string(),
        event.created_at.saturating_mul(1000),
        event.created_at,
    ])
    .map_err(db)?;
    audit_row::insert_audit(&tx, &audit)?;
    tx.commit().map_err(db)?;
    Ok(Some(delivery))
}

pub(super) fn list_endpoints(
    conn: &Connection,
    tenant_id: Option<Uuid>,
) -> Result<Vec<WebhookEndpoint>, StoreError> {
    let endpoints = match tenant_id {
        Some(tenant_id) => {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints e WHERE e.tenant_id = ?1 \
                 ORDER BY e.created_at, e.id"
                ))
                .map_err(db)?;
            let rows = stmt
                .query_map([tenant_id.to_string()], |row| endpoint_from(row, 0))
                .map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)?
        }
        None => {
            let mut stmt = conn
                .prepare_cached(&format!(
                "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints e ORDER BY e.created_at, e.id"
            ))
                .map_err(db)?;
            let rows = stmt
                .query_map([], |row| endpoint_from(row, 0))
                .map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)?
        }
    };
    Ok(endpoints)
}

/// The endpoint and (by cascade) its deliveries.
pub(super) fn delete_endpoint(
    conn: &mut Connection,
    id: Uuid,
    audit: Option<AuditEntry>,
) -> Result<bool, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let deleted = tx
        .prepare_cached("DELETE FROM webhook_endpoints WHERE id = ?1")
        .map_err(db)?
        .execute([id.to_string()])
        .map_err(db)?;
    if deleted == 1 {
        audit_row::insert_opt(&tx, audit.as_ref())?;
        tx.commit().map_err(db)?;
    }
    Ok(deleted == 1)
}

/// The delivery columns of [`delivery_from`]: deliveries `d`, events `v`, endpoints `e`.
const DELIVERY_COLUMNS: &str =
    "d.id, d.event_id, v.type, d.endpoint_id, d.tenant_id, e.url, d.status, d.attempts, \
     d.generation, d.next_attempt_at_ms, d.leased_until_ms, d.last_attempt_at_ms, \
     d.last_status_code, d.last_error, d.delivered_at_ms, d.created_at";

const DELIVERY_FROM: &str = "webhook_deliveries d \
     JOIN webhook_events v ON v.id = d.event_id \
     JOIN webhook_endpoints e ON e.id = d.endpoint_id";

fn u32_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<u32> {
    let v: i64 = row.get(idx)?;
    Ok(u32::try_from(v).unwrap_or(u32::MAX))
}

/// A delivery row, or `None` for one in a status this release does not know (see
/// `tolerant::delivery_status`).
fn delivery_from(row: &Row<'_>) -> rusqlite::Result<Option<WebhookDelivery>> {
    let status: String = row.get(6)?;
    let Some(status) = crate::tolerant::delivery_status(&status) else {
        return Ok(None);
    };
    Ok(Some(WebhookDelivery {
        id: uuid_at(row, 0)?,
        event_id: uuid_at(row, 1)?,
        event_type: row.get(2)?,
        endpoint_id: uuid_at(row, 3)?,
        tenant_id: uuid_at(row, 4)?,
        url: row.get(5)?,
        status,
        attempts: u32_at(row, 7)?,
        generation: u32_at(row, 8)?,
        next_attempt_at_ms: row.get(9)?,
        leased_until_ms: row.get(10)?,
        last_attempt_at_ms: row.get(11)?,
        last_status_code: row
            .get::<_, Option<i64>>(12)?
            .and_then(|c| u16::try_from(c).ok()),
        last_error: row.get(13)?,
        delivered_at_ms: row.get(14)?,
        created_at: row.get(15)?,
    }))
}

pub(super) fn list_deliveries(
    conn: &Connection,
    filter: &DeliveryFilter,
) -> Result<Vec<WebhookDelivery>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM {DELIVERY_FROM} \
         WHERE (?1 IS NULL OR d.status = ?1) AND (?2 IS NULL OR d.tenant_id = ?2) \
         AND (?4 IS NULL OR d.endpoint_id = ?4) \
         ORDER BY d.created_at DESC, d.id DESC LIMIT ?3"
        ))
        .map_err(db)?;
    let rows = stmt
        .query_map(
            params![
                filter.status.map(DeliveryStatus::as_str),
                filter.tenant_id.map(|t| t.to_string()),
                filter.limit,
                filter.endpoint_id.map(|e| e.to_string()),
            ],
            delivery_from,
        )
        .map_err(db)?;
    known_rows(rows)
}

pub(super) fn get_delivery(
    conn: &Connection,
    id: Uuid,
) -> Result<Option<WebhookDelivery>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM {DELIVERY_FROM} WHERE d.id = ?1"
    ))
    .map_err(db)?
    .query_row([id.to_string()], delivery_from)
    .optional()
    .map(Option::flatten)
    .map_err(db)
}

pub(super) fn redeliver(conn: &Connection, id: Uuid, now_ms: i64) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE webhook_deliveries \
             SET status = 'pending', attempts = 0, generation = generation + 1, \
                 next_attempt_at_ms = ?2, leased_until_ms = NULL, lease_id = NULL \
             WHERE id = ?1",
        )
        .map_err(db)?
        .execute(params![id.to_string(), now_ms])
        .map_err(db)?;
    Ok(changed == 1)
}
