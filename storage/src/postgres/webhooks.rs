//! Webhook endpoints and deliveries: listing and manual redelivery. Their claim, results and
//! pruning are the outbox's (`outbox.rs`).

use super::error::db;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row};
use uuid::Uuid;

use crate::{
    DeliveryFilter, DeliveryStatus, NewWebhookEndpoint, StoreError, WebhookDelivery,
    WebhookEndpoint,
};

/// The 6 endpoint columns of [`endpoint_from`], for a table aliased `e`.
pub(super) const ENDPOINT_COLUMNS: &str =
    "e.id, e.tenant_id, e.url, e.events, e.secret_encrypted, e.created_at";

pub(super) fn endpoint_from(
    row: &Row,
    at: usize,
) -> Result<WebhookEndpoint, tokio_postgres::Error> {
    Ok(WebhookEndpoint {
        id: row.try_get(at)?,
        tenant_id: row.try_get(at + 1)?,
        url: row.try_get(at + 2)?,
        events: row.try_get(at + 3)?,
        secret_encrypted: row.try_get(at + 4)?,
        created_at: row.try_get(at + 5)?,
    })
}

pub(super) async fn create_endpoint(
    client: &Client,
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
    client
        .execute_typed(
            "INSERT INTO webhook_endpoints (id, tenant_id, url, events, secret_encrypted, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                (&endpoint.id, Type::UUID),
                (&endpoint.tenant_id, Type::UUID),
                (&endpoint.url, Type::TEXT),
                (&endpoint.events, Type::TEXT_ARRAY),
                (&endpoint.secret_encrypted, Type::BYTEA),
                (&endpoint.created_at, Type::INT8),
            ],
        )
        .await
        .map_err(db)?;
    Ok(endpoint)
}

pub(super) async fn list_endpoints(
    client: &Client,
    tenant_id: Option<Uuid>,
) -> Result<Vec<WebhookEndpoint>, StoreError> {
    let rows = client
        .query_typed(
            &format!(
                "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints e \
                 WHERE ($1::uuid IS NULL OR e.tenant_id = $1) ORDER BY e.created_at, e.id"
            ),
            &[(&tenant_id, Type::UUID)],
        )
        .await
        .map_err(db)?;
    rows.iter()
        .map(|row| endpoint_from(row, 0))
        .collect::<Result<_, _>>()
        .map_err(db)
}

/// The endpoint and (by cascade) its deliveries.
pub(super) async fn delete_endpoint(client: &Client, id: Uuid) -> Result<bool, StoreError> {
    let deleted = client
        .execute_typed(
            "DELETE FROM webhook_endpoints WHERE id = $1",
            &[(&id, Type::UUID)],
        )
        .await
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

fn count(row: &Row, idx: usize) -> Result<u32, tokio_postgres::Error> {
    let v: i32 = row.try_get(idx)?;
    Ok(u32::try_from(v).unwrap_or(0))
}

/// A delivery row, or `None` for one in a status this release does not know (see
/// `tolerant::delivery_status`).
fn delivery_from(row: &Row) -> Result<Option<WebhookDelivery>, StoreError> {
    let status: String = row.try_get(6).map_err(db)?;
    let Some(status) = crate::tolerant::delivery_status(&status) else {
        return Ok(None);
    };
    Ok(Some(WebhookDelivery {
        id: row.try_get(0).map_err(db)?,
        event_id: row.try_get(1).map_err(db)?,
        event_type: row.try_get(2).map_err(db)?,
        endpoint_id: row.try_get(3).map_err(db)?,
        tenant_id: row.try_get(4).map_err(db)?,
        url: row.try_get(5).map_err(db)?,
        status,
        attempts: count(row, 7).map_err(db)?,
        generation: count(row, 8).map_err(db)?,
        next_attempt_at_ms: row.try_get(9).map_err(db)?,
        leased_until_ms: row.try_get(10).map_err(db)?,
        last_attempt_at_ms: row.try_get(11).map_err(db)?,
        last_status_code: row
            .try_get::<_, Option<i32>>(12)
            .map_err(db)?
            .and_then(|c| u16::try_from(c).ok()),
        last_error: row.try_get(13).map_err(db)?,
        delivered_at_ms: row.try_get(14).map_err(db)?,
        created_at: row.try_get(15).map_err(db)?,
    }))
}

pub(super) async fn list_deliveries(
    client: &Client,
    filter: &DeliveryFilter,
) -> Result<Vec<WebhookDelivery>, StoreError> {
    let status = filter.status.map(DeliveryStatus::as_str);
    let limit = i64::from(filter.limit);
    let rows = client
        .query_typed(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM {DELIVERY_FROM} \
                 WHERE ($1::text IS NULL OR d.status = $1) \
                 AND ($2::uuid IS NULL OR d.tenant_id = $2) \
                 ORDER BY d.created_at DESC, d.id DESC LIMIT $3"
            ),
            &[
                (&status, Type::TEXT),
                (&filter.tenant_id, Type::UUID),
                (&limit, Type::INT8),
            ],
        )
        .await
        .map_err(db)?;
    super::error::known(rows.iter().map(delivery_from))
}

pub(super) async fn get_delivery(
    client: &Client,
    id: Uuid,
) -> Result<Option<WebhookDelivery>, StoreError> {
    let row = client
        .query_typed_opt(
            &format!("SELECT {DELIVERY_COLUMNS} FROM {DELIVERY_FROM} WHERE d.id = $1"),
            &[(&id, Type::UUID)],
        )
        .await
        .map_err(db)?;
    Ok(row.as_ref().map(delivery_from).transpose()?.flatten())
}

pub(super) async fn redeliver(client: &Client, id: Uuid, now_ms: i64) -> Result<bool, StoreError> {
    let changed = client
        .execute_typed(
            "UPDATE webhook_deliveries \
             SET status = 'pending', attempts = 0, generation = generation + 1, \
             next_attempt_at_ms = $2, leased_until_ms = NULL, lease_id = NULL \
             WHERE id = $1",
            &[(&id, Type::UUID), (&now_ms, Type::INT8)],
        )
        .await
        .map_err(db)?;
    Ok(changed == 1)
}
