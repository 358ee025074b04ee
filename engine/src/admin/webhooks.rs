//! A tenant's webhooks (`.../webhooks`: list, create, get, update, delete, deliveries, test).
//! The same rules as `hj webhook`: a URL the SSRF check refuses is refused at once, a secret is
//! sealed under the master key and shown once.

use http::Method;
use protocol::admin_hooks::{
    DeliveryInfo, DeliveryList, WebhookInfo, WebhookRequest, WebhookTestResponse,
};
use protocol::webhook::rfc3339;
use protocol::{ApiError, ErrorCode};
use store::{
    DeliveryFilter, DeliveryStatus, Event, Metadata, NewWebhookEndpoint, WebhookChanges,
    WebhookDelivery, WebhookEndpoint,
};
use uuid::Uuid;

use super::routes::AdminRoute as R;
use super::{invalid, not_found, store_err, Call};
use crate::handlers::HandlerResult;
use crate::http::{empty, json};
use crate::webhook::{parse_event_list, seal_secret, send, signature, ssrf};

/// Deliveries per page by default, and at most.
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;
/// Longest webhook URL accepted.
const MAX_URL: usize = 2048;
/// Event types an endpoint may list at most.
const MAX_EVENTS: usize = 64;

pub async fn handle(call: &Call<'_>) -> HandlerResult {
    let m = &call.method;
    match call.route {
        R::Webhooks if m == Method::POST => create(call).await,
        R::Webhooks => list(call).await,
        R::Webhook if m == Method::DELETE => delete(call).await,
        R::Webhook if m == Method::GET || m == Method::HEAD => get(call).await,
        R::Webhook => update(call).await,
        R::WebhookDeliveries => deliveries(call).await,
        R::WebhookTest => test(call).await,
        _ => Err(not_found("route")),
    }
}

fn info(e: &WebhookEndpoint, secret: Option<String>) -> WebhookInfo {
    WebhookInfo {
        id: e.id.to_string(),
        tenant_id: e.tenant_id.to_string(),
        url: e.url.clone(),
        events: e.events.clone(),
        created_at: rfc3339(e.created_at),
        secret,
    }
}

fn millis(ms: i64) -> String {
    rfc3339(ms.div_euclid(1000))
}

fn delivery(d: WebhookDelivery) -> DeliveryInfo {
    let finished = matches!(
        d.status,
        DeliveryStatus::Delivered | DeliveryStatus::Exhausted
    );
    DeliveryInfo {
        id: d.id.to_string(),
        webhook_id: d.endpoint_id.to_string(),
        event_id: d.event_id.to_string(),
        event_type: d.event_type,
        status: d.status.as_str().to_string(),
        attempts: d.attempts,
        http_status: d.last_status_code,
        last_error: d.last_error,
        last_attempt_at: d.last_attempt_at_ms.map(millis),
        next_retry_at: (!finished).then(|| millis(d.next_attempt_at_ms)),
        delivered_at: d.delivered_at_ms.map(millis),
        created_at: rfc3339(d.created_at),
    }
}

/// The master key, which seals webhook secrets and signing keys.
pub(super) fn master<'a>(call: &'a Call<'_>) -> Result<&'a ::auth::MasterKey, ApiError> {
    call.ctx
        .auth()
        .lifecycle
        .as_ref()
        .map(|lc| &lc.master)
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "no master key"))
}

fn url(text: &str, allow_private: bool) -> Result<String, ApiError> {
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_URL {
        return Err(invalid(
            "url",
            format!("url must be 1-{MAX_URL} characters"),
        ));
    }
    let target = send::parse_url(text).map_err(|m| invalid("url", m))?;
    // An address or a localhost name is refused now; any other name is resolved and checked
    // at each delivery (as `hj webhook create` does).
    ssrf::check_host(&target.host, allow_private).map_err(|m| invalid("url", m))?;
    Ok(text.to_string())
}

fn events(list: &[String]) -> Result<Vec<String>, ApiError> {
    if list.is_empty() || list.len() > MAX_EVENTS || list.iter().any(|e| e.contains(',')) {
        return Err(invalid(
            "events",
            "events must list 1-64 event types (or \"*\" for all)",
        ));
    }
    parse_event_list(&list.join(",")).map_err(|m| invalid("events", m))
}

fn secret(given: Option<String>) -> Result<String, ApiError> {
    match given {
        Some(s) => {
            signature::check_secret(&s).map_err(|m| invalid("secret", m))?;
            Ok(s)
        }
        None => Ok(signature::generate_secret()),
    }
}

async fn endpoint(call: &Call<'_>) -> Result<WebhookEndpoint, ApiError> {
    let tenant = call.tenant()?;
    let id = Uuid::parse_str(call.param(0)).map_err(|_| not_found("webhook"))?;
    call.ctx
        .shard
        .app
        .store
        .list_webhook_endpoints(Some(tenant.id))
        .await
        .map_err(store_err)?
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| not_found("webhook"))
}

async fn list(call: &Call<'_>) -> HandlerResult {
    let tenant = call.tenant()?;
    let endpoints = call
        .ctx
        .shard
        .app
        .store
        .list_webhook_endpoints(Some(tenant.id))
        .await
        .map_err(store_err)?;
    let items: Vec<WebhookInfo> = endpoints.iter().map(|e| info(e, None)).collect();
    Ok(json(200, &items))
}

async fn get(call: &Call<'_>) -> HandlerResult {
    Ok(json(200, &info(&endpoint(call).await?, None)))
}

async fn create(call: &Call<'_>) -> HandlerResult {
    let tenant = call.tenant()?;
    let req: WebhookRequest = call.json()?;
    let allow_private = call.ctx.shard.app.config.webhook_allow_private;
    let url = url(req.url.as_deref().unwrap_or(""), allow_private)?;
    let events = events(req.events.as_deref().unwrap_or(&[]))?;
    let secret = secret(req.secret)?;
    let id = Uuid::now_v7();
    let secret_encrypted = seal_secret(master(call)?, id, &secret)
        .map_err(|_| ApiError::new(ErrorCode::Internal, "cannot seal the secret"))?;
    let mut audit = call.audit("webhook.create", "webhook", id);
    audit.metadata.insert("url", url.as_str());
    let created = call
        .ctx
        .shard
        .app
        .store
        .create_webhook_endpoint(
            NewWebhookEndpoint {
                id,
                tenant_id: tenant.id,
                url,
                events,
                secret_encrypted,
            },
            call.ctx.now,
            Some(audit),
        )
        .await
        .map_err(store_err)?;
    Ok(json(201, &info(&created, Some(secret))))
}

async fn update(call: &Call<'_>) -> HandlerResult {
    let tenant = call.tenant()?;
    let current = endpoint(call).await?;
    let req: WebhookRequest = call.json()?;
    let allow_private = call.ctx.shard.app.config.webhook_allow_private;
    let mut changes = WebhookChanges {
        url: req
            .url
            .as_deref()
            .map(|u| url(u, allow_private))
            .transpose()?,
        events: req.events.as_deref().map(events).transpose()?,
        secret_encrypted: None,
    };
    let new_secret = match (req.secret, req.rotate_secret) {
        (Some(s), _) => Some(secret(Some(s))?),
        (None, true) => Some(secret(None)?),
        (None, false) => None,
    };
    if let Some(s) = &new_secret {
        changes.secret_encrypted = Some(
            seal_secret(master(call)?, current.id, s)
                .map_err(|_| ApiError::new(ErrorCode::Internal, "cannot seal the secret"))?,
        );
    }
    if changes == WebhookChanges::default() {
        return Ok(json(200, &info(&current, None)));
    }
    let mut audit = call.audit("webhook.update", "webhook", current.id);
    if new_secret.is_some() {
        audit.metadata.insert("secret", "rotated");
    }
    let updated = call
        .ctx
        .shard
        .app
        .store
        .update_webhook_endpoint(tenant.id, current.id, changes, audit)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("webhook"))?;
    Ok(json(200, &info(&updated, new_secret)))
}

async fn delete(call: &Call<'_>) -> HandlerResult {
    let current = endpoint(call).await?;
    let audit = call.audit("webhook.delete", "webhook", current.id);
    let existed = call
        .ctx
        .shard
        .app
        .store
        .delete_webhook_endpoint(current.id, Some(audit))
        .await
        .map_err(store_err)?;
    if existed {
        Ok(empty(204))
    } else {
        Err(not_found("webhook"))
    }
}

async fn deliveries(call: &Call<'_>) -> HandlerResult {
    let tenant = call.tenant()?;
    let current = endpoint(call).await?;
    let limit = match call.query("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => return Err(invalid("limit", format!("limit must be 1-{MAX_LIMIT}"))),
        },
    };
    if call.query("offset").is_some_and(|o| o != "0") {
        return Err(invalid(
            "offset",
            "deliveries are listed newest first from offset 0",
        ));
    }
    let status = match call.query("status") {
        None => None,
        Some(s) => Some(DeliveryStatus::parse(&s).ok_or_else(|| {
            invalid(
                "status",
                "status must be pending, failed, delivered or exhausted",
            )
        })?),
    };
    let mut rows = call
        .ctx
        .shard
        .app
        .store
        .list_webhook_deliveries(DeliveryFilter {
            status,
            tenant_id: Some(tenant.id),
            endpoint_id: Some(current.id),
            limit: limit + 1,
        })
        .await
        .map_err(store_err)?;
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    Ok(json(
        200,
        &DeliveryList {
            deliveries: rows.into_iter().map(delivery).collect(),
            limit,
            offset: 0,
            has_more,
        },
    ))
}

/// Queues a `webhook.test` event for this endpoint only; the worker delivers it signed, like
/// any event, and it shows in the endpoint's deliveries.
async fn test(call: &Call<'_>) -> HandlerResult {
    let tenant = call.tenant()?;
    let current = endpoint(call).await?;
    let event = Event {
        id: Uuid::now_v7(),
        tenant_id: tenant.id,
        event_type: "webhook.test".to_string(),
        actor_id: None,
        actor_type: None,
        target_id: Some(current.id),
        target_type: Some("webhook".to_string()),
        ip_address: None,
        user_agent: None,
        metadata: Metadata::empty(),
        result: "success".to_string(),
        created_at: call.ctx.now,
    };
    let audit = call.audit("webhook.test", "webhook", current.id);
    let delivery_id = call
        .ctx
        .shard
        .app
        .store
        .enqueue_webhook_test(tenant.id, current.id, event, audit)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("webhook"))?;
    Ok(json(
        202,
        &WebhookTestResponse {
            enqueued: true,
            delivery_id: delivery_id.to_string(),
        },
    ))
}
