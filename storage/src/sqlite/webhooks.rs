//! Webhook endpoints and deliveries: listing, the lease-based claim of due deliveries, their
//! results, and manual redelivery.
//!
//! A claim is one conditional `UPDATE` on the single writer, inside a `BEGIN IMMEDIATE`
//! transaction (which also excludes other processes sharing the file): it leases the due rows
//! it picks, so no other caller can pick them until the lease ends.

use super::error::db;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use uuid::Uuid;

use super::error::{json_at, to_json, uuid_at};
use super::events::{event_from, EVENT_COLUMNS};
use crate::{
    ClaimedDelivery, DeliveryFilter, DeliveryResult, DeliveryStatus, NewWebhookEndpoint,
    StoreError, WebhookDelivery, WebhookEndpoint,
};

/// The 6 endpoint columns of [`endpoint_from`], for a table aliased `e`.
const ENDPOINT_COLUMNS: &str =
    "e.id, e.tenant_id, e.url, e.events, e.secret_encrypted, e.created_at";

fn endpoint_from(row: &Row<'_>, at: usize) -> rusqlite::Result<WebhookEndpoint> {
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
    conn: &Connection,
    new: NewWebhookEndpoint,
    now: i64,
) -> Result<WebhookEndpoint, StoreError> {
    let endpoint = WebhookEndpoint {
        id: new.id,
        tenant_id: new.tenant_id,
        url: new.url,
        events: new.events,
        secret_encrypted: new.secret_encrypted,
        created_at: now,
    };
    conn.prepare_cached(
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
    Ok(endpoint)
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
pub(super) fn delete_endpoint(conn: &Connection, id: Uuid) -> Result<bool, StoreError> {
    let deleted = conn
        .prepare_cached("DELETE FROM webhook_endpoints WHERE id = ?1")
        .map_err(db)?
        .execute([id.to_string()])
        .map_err(db)?;
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

fn status_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<DeliveryStatus> {
    let text: String = row.get(idx)?;
    DeliveryStatus::parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            format!("unknown delivery status {text:?}").into(),
        )
    })
}

fn u32_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<u32> {
    let v: i64 = row.get(idx)?;
    Ok(u32::try_from(v).unwrap_or(u32::MAX))
}

fn delivery_from(row: &Row<'_>) -> rusqlite::Result<WebhookDelivery> {
    Ok(WebhookDelivery {
        id: uuid_at(row, 0)?,
        event_id: uuid_at(row, 1)?,
        event_type: row.get(2)?,
        endpoint_id: uuid_at(row, 3)?,
        tenant_id: uuid_at(row, 4)?,
        url: row.get(5)?,
        status: status_at(row, 6)?,
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
    })
}

pub(super) fn list_deliveries(
    conn: &Connection,
    filter: &DeliveryFilter,
) -> Result<Vec<WebhookDelivery>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM {DELIVERY_FROM} \
         WHERE (?1 IS NULL OR d.status = ?1) AND (?2 IS NULL OR d.tenant_id = ?2) \
         ORDER BY d.created_at DESC, d.id DESC LIMIT ?3"
        ))
        .map_err(db)?;
    let rows = stmt
        .query_map(
            params![
                filter.status.map(DeliveryStatus::as_str),
                filter.tenant_id.map(|t| t.to_string()),
                filter.limit,
            ],
            delivery_from,
        )
        .map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
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

/// Leases up to `limit` due deliveries in one `BEGIN IMMEDIATE` transaction: one conditional
/// update marks them with a fresh lease id, then they are read back by it.
pub(super) fn claim(
    conn: &mut Connection,
    now_ms: i64,
    leased_until_ms: i64,
    limit: u32,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let lease_id = Uuid::new_v4();
    let lease = lease_id.to_string();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let claimed = tx
        .prepare_cached(
            "UPDATE webhook_deliveries SET leased_until_ms = ?2, lease_id = ?3 \
             WHERE id IN (\
                 SELECT id FROM webhook_deliveries \
                 WHERE status IN ('pending', 'failed') AND next_attempt_at_ms <= ?1 \
                 AND (leased_until_ms IS NULL OR leased_until_ms <= ?1) \
                 ORDER BY next_attempt_at_ms LIMIT ?4\
             ) \
             AND status IN ('pending', 'failed') \
             AND (leased_until_ms IS NULL OR leased_until_ms <= ?1)",
        )
        .map_err(db)?
        .execute(params![now_ms, leased_until_ms, lease, limit])
        .map_err(db)?;
    let out = if claimed == 0 {
        Vec::new()
    } else {
        let mut stmt = tx
            .prepare_cached(&format!(
                "SELECT d.id, d.attempts, d.generation, {ENDPOINT_COLUMNS}, {EVENT_COLUMNS} \
             FROM webhook_deliveries d \
             JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             JOIN webhook_events v ON v.id = d.event_id \
             WHERE d.lease_id = ?1 ORDER BY d.next_attempt_at_ms"
            ))
            .map_err(db)?;
        let rows = stmt
            .query_map([&lease], |row| {
                Ok(ClaimedDelivery {
                    id: uuid_at(row, 0)?,
                    lease_id,
                    leased_until_ms,
                    attempts: u32_at(row, 1)?,
                    generation: u32_at(row, 2)?,
                    endpoint: endpoint_from(row, 3)?,
                    event: event_from(row, 9)?,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)?
    };
    tx.commit().map_err(db)?;
    Ok(out)
}

pub(super) fn complete(conn: &Connection, result: &DeliveryResult) -> Result<bool, StoreError> {
    let changed = match result {
        DeliveryResult::Delivered {
            id,
            at_ms,
            status_code,
            counted,
        } => conn
            .prepare_cached(
                "UPDATE webhook_deliveries \
                 SET status = 'delivered', attempts = attempts + ?3, delivered_at_ms = ?2, \
                     last_attempt_at_ms = CASE WHEN ?3 = 1 THEN ?2 ELSE last_attempt_at_ms END, \
                     last_status_code = coalesce(?4, last_status_code), last_error = NULL, \
                     leased_until_ms = NULL, lease_id = NULL \
                 WHERE id = ?1 AND status IN ('pending', 'failed')",
            ).map_err(db)?
            .execute(params![
                id.to_string(),
                at_ms,
                i64::from(*counted),
                status_code.map(i64::from),
            ]).map_err(db)?,
        DeliveryResult::Failed {
            id,
            lease_id,
            at_ms,
            status_code,
            error,
            retry_at_ms,
        } => conn
            .prepare_cached(
                "UPDATE webhook_deliveries \
                 SET status = CASE WHEN ?5 IS NULL THEN 'exhausted' ELSE 'failed' END, \
                     attempts = attempts + 1, next_attempt_at_ms = coalesce(?5, next_attempt_at_ms), \
                     last_attempt_at_ms = ?3, last_status_code = ?4, last_error = ?6, \
                     leased_until_ms = NULL, lease_id = NULL \
                 WHERE id = ?1 AND lease_id = ?2 AND status IN ('pending', 'failed')",
            ).map_err(db)?
            .execute(params![
                id.to_string(),
                lease_id.to_string(),
                at_ms,
                status_code.map(i64::from),
                retry_at_ms,
                error,
            ]).map_err(db)?,
    };
    Ok(changed == 1)
}

pub(super) fn backlog(conn: &Connection, now_ms: i64) -> Result<u64, StoreError> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM webhook_deliveries \
             WHERE status IN ('pending', 'failed') AND next_attempt_at_ms <= ?1",
        )
        .map_err(db)?
        .query_row([now_ms], |row| row.get(0))
        .map_err(db)?;
    Ok(u64::try_from(n).unwrap_or(0))
}
