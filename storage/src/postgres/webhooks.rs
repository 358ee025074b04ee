//! Webhook endpoints and deliveries: listing and manual redelivery. Their claim, results and
//! pruning are the outbox's (`outbox.rs`).

use super::audit_row;
use super::error::db;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row};
use uuid::Uuid;

use crate::{
    AuditEntry, DeliveryFilter, DeliveryStatus, Event, NewWebhookEndpoint, StoreError,
    WebhookChanges, WebhookDelivery, WebhookEndpoint,
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
    client: &mut Client,
    new: NewWebhookEndpoint,
    now: i64,
    audit: Option<AuditEntry>,
) -> Result<WebhookEndpoint, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let endpoint = WebhookEndpoint {
        id: new.id,
        tenant_id: new.tenant_id,
        url: new.url,
        events: new.events,
        secret_encrypted: new.secret_encrypted,
        created_at: now,
    };
    tx.execute_typed(
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
    if let Some(audit) = &audit {
        audit_row::insert_audit(&tx, audit).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok(endpoint)
}

/// See [`store::Administration::update_webhook_endpoint`].
pub(super) async fn update_endpoint(
    client: &mut Client,
    tenant_id: Uuid,
    id: Uuid,
    changes: WebhookChanges,
    audit: AuditEntry,
) -> Result<Option<WebhookEndpoint>, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let row = tx
        .query_typed(
            "UPDATE webhook_endpoints SET url = COALESCE($3, url), \
             events = COALESCE($4, events), secret_encrypted = COALESCE($5, secret_encrypted) \
             WHERE id = $1 AND tenant_id = $2 \
             RETURNING id, tenant_id, url, events, secret_encrypted, created_at",
            &[
                (&id, Type::UUID),
                (&tenant_id, Type::UUID),
                (&changes.url, Type::TEXT),
                (&changes.events, Type::TEXT_ARRAY),
                (&changes.secret_encrypted, Type::BYTEA),
            ],
        )
        .await
        .map_err(db)?;
    let Some(row) = row.first() else {
        return Ok(None);
    };
    let endpoint = endpoint_from(row, 0).map_err(db)?;
    audit_row::insert_audit(&tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(Some(endpoint))
}

/// See [`store::Administration::enqueue_webhook_test`].
pub(super) async fn enqueue_test(
    client: &mut Client,
    tenant_id: Uuid,
    endpoint_id: Uuid,
    event: Event,
    audit: AuditEntry,
) -> Result<Option<Uuid>, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let found = tx
        .query_typed(
            "SELECT 1 FROM webhook_endpoints WHERE id = $1 AND tenant_id = $2",
            &[(&endpoint_id, Type::UUID), (&tenant_id, Type::UUID)],
        )
        .await
        .map_err(db)?;
    if found.is_empty() {
        return Ok(None);
    }
    let metadata = event.metadata.as_json().clone();
    tx.execute_typed(
        "INSERT INTO webhook_events (id, tenant_id, type, actor_id, actor_type, target_id, \
         target_type, ip_address, user_agent, metadata, result, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            (&event.id, Type::UUID),
            (&tenant_id, Type::UUID),
            (&event.event_type, Type::TEXT),
            (&event.actor_id, Type::UUID),
            (&event.actor_type, Type::TEXT),
            (&event.target_id, Type::UUID),
            (&event.target_type, Type::TEXT),
            (&event.ip_address, Type::TEXT),
            (&event.user_agent, Type::TEXT),
            (&metadata, Type::JSONB),
            (&event.result, Type::TEXT),
            (&event.created_at, Type::INT8),
        ],
    )
    .await
    .map_err(db)?;
    let delivery = Uuid::new_v4();
    let due_ms = event.created_at.saturating_mul(1000);
    tx.execute_typed(
        "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, tenant_id, status, attempts, \
         generation, next_attempt_at_ms, created_at) \
         VALUES ($1, $2, $3, $4, 'pending', 0, 0, $5, $6)",
        &[
            (&delivery, Type::UUID),
            (&event.id, Type::UUID),
            (&endpoint_id, Type::UUID),
            (&tenant_id, Type::UUID),
            (&due_ms, Type::INT8),
            (&event.created_at, Type::INT8),
        ],
    )
    .await
    .map_err(db)?;
    audit_row::insert_audit(&tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(Some(delivery))
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
pub(super) async fn delete_endpoint(
    client: &mut Client,
    id: Uuid,
    audit: Option<AuditEntry>,
) -> Result<bool, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let deleted = tx
        .execute_typed(
            "DELETE FROM webhook_endpoints WHERE id = $1",
            &[(&id, Type::UUID)],
        )
        .await
        .map_err(db)?;
    if deleted == 1 {
        if let Some(audit) = &audit {
            audit_row::insert_audit(&tx, audit).await?;
        }
        tx.commit().await.map_err(db)?;
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
                 AND ($4::uuid IS NULL OR d.endpoint_id = $4) \
                 ORDER BY d.created_at DESC, d.id DESC LIMIT $3"
            ),
            &[
                (&status, Type::TEXT),
                (&filter.tenant_id, Type::UUID),
                (&limit, Type::INT8),
                (&filter.endpoint_id, Type::UUID),
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
