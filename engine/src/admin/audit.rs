//! The audit log: `GET .../audit-logs` (filters, cursor paging), `GET .../audit-logs/{id}`,
//! `GET .../audit-logs/export` (NDJSON), `POST .../audit-logs/purge`. On
//! `/v2/admin/audit-logs` (admin and readonly scopes) every tenant's entries and the global
//! ones; under `/tenants/{tenant_id}` that tenant's.

use http::HeaderValue;
use protocol::admin::{parse_span, parse_time, AuditLogEntry, Page, PurgeRequest, PurgeResponse};
use protocol::webhook::rfc3339;
use protocol::ApiError;
use store::{AuditQuery, AuditRecord};
use uuid::Uuid;

use super::{invalid, not_found, store_err, Call};
use crate::handlers::HandlerResult;
use crate::http::{bytes, json};

/// Entries per page by default, and at most.
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;
/// Entries one export answer carries at most; `X-Next-Cursor` continues it.
const EXPORT_MAX: usize = 10_000;
/// Entries one purge deletes at most.
const PURGE_MAX: u32 = 100_000;

pub fn entry(r: AuditRecord) -> AuditLogEntry {
    AuditLogEntry {
        id: r.id.to_string(),
        tenant_id: r.tenant_id.map(|t| t.to_string()),
        action: r.action,
        actor_type: r.actor_type,
        actor_id: r.actor_id,
        actor_name: r.actor_name,
        target_type: r.target_type,
        target_id: r.target_id,
        ip_address: r.ip_address,
        user_agent: r.user_agent,
        request_id: r.request_id,
        metadata: r.metadata.into_json(),
        result: r.result,
        created_at: rfc3339(r.created_at),
    }
}

fn cursor_of(r: &AuditRecord) -> String {
    format!("{}.{}", r.created_at, r.id)
}

fn parse_cursor(text: &str) -> Option<(i64, Uuid)> {
    let (at, id) = text.split_once('.')?;
    Some((at.parse().ok()?, Uuid::parse_str(id).ok()?))
}

/// The query of the request's filters.
fn query(call: &Call<'_>) -> Result<AuditQuery, ApiError> {
    let text = |name: &'static str| -> Result<Option<String>, ApiError> {
        match call.query_once(name)? {
            Some(v) if v.len() > 200 => Err(invalid(name, format!("{name} is too long"))),
            Some(v) if v.trim().is_empty() => Ok(None),
            v => Ok(v),
        }
    };
    let time = |name: &'static str| -> Result<Option<i64>, ApiError> {
        match text(name)? {
            None => Ok(None),
            Some(v) => parse_time(&v).map(Some).ok_or_else(|| {
                invalid(
                    name,
                    format!("{name} must be an RFC 3339 time or Unix seconds"),
                )
            }),
        }
    };
    // An empty filter is no filter, but an empty `limit` is no number.
    let limit = match call.query_once("limit")? {
        None => DEFAULT_LIMIT,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => return Err(invalid("limit", format!("limit must be 1-{MAX_LIMIT}"))),
        },
    };
    let before = match text("cursor")? {
        None => None,
        Some(c) => Some(parse_cursor(&c).ok_or_else(|| invalid("cursor", "unknown cursor"))?),
    };
    Ok(AuditQuery {
        tenant_id: call.tenant.as_ref().map(|t| t.id),
        action: text("action")?,
        actor_id: text("actor")?.or(text("actor_id")?),
        target_id: text("target")?.or(text("target_id")?),
        from: time("from")?,
        to: time("to")?,
        before,
        limit,
    })
}

pub async fn list(call: &Call<'_>) -> HandlerResult {
    let mut q = query(call)?;
    let limit = q.limit as usize;
    // One more than asked: whether there is a next page.
    q.limit += 1;
    let mut rows = call
        .ctx
        .shard
        .app
        .store
        .list_audit(q)
        .await
        .map_err(store_err)?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more {
        rows.last().map(cursor_of)
    } else {
        None
    };
    Ok(json(
        200,
        &Page {
            items: rows.into_iter().map(entry).collect(),
            next_cursor,
            total: None,
        },
    ))
}

pub async fn get(call: &Call<'_>) -> HandlerResult {
    let id = Uuid::parse_str(call.param(0)).map_err(|_| not_found("audit log entry"))?;
    let tenant = call.tenant()?.id;
    let record = call
        .ctx
        .shard
        .app
        .store
        .get_audit(Some(tenant), id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("audit log entry"))?;
    Ok(json(200, &entry(record)))
}

/// NDJSON, one entry per line, newest first, [`EXPORT_MAX`] at most; `X-Next-Cursor` names
/// where the next export starts.
pub async fn export(call: &Call<'_>) -> HandlerResult {
    let mut q = query(call)?;
    let mut out = Vec::new();
    let mut count = 0usize;
    let mut next = None;
    loop {
        q.limit = MAX_LIMIT;
        let rows = call
            .ctx
            .shard
            .app
            .store
            .list_audit(q.clone())
            .await
            .map_err(store_err)?;
        let last = rows.len() < MAX_LIMIT as usize;
        for r in rows {
            if count == EXPORT_MAX {
                next = Some(cursor_of(&r));
                break;
            }
            q.before = Some((r.created_at, r.id));
            out.extend_from_slice(&protocol::json::to_vec(&entry(r)));
            out.push(b'\n');
            count += 1;
        }
        if last || next.is_some() {
            break;
        }
    }
    let mut resp = bytes(200, HeaderValue::from_static("application/x-ndjson"), out);
    if let Some(c) = next.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert("x-next-cursor", c);
    }
    Ok(resp)
}

pub async fn purge(call: &Call<'_>) -> HandlerResult {
    let req: PurgeRequest = call.json()?;
    let before = match (&req.before, req.older_than.as_deref()) {
        (Some(v), None) => v
            .unix()
            .ok_or_else(|| invalid("before", "before must be an RFC 3339 time or Unix seconds"))?,
        (None, Some(span)) => {
            call.ctx.now - parse_span(span).map_err(|m| invalid("older_than", m))?
        }
        _ => {
            return Err(invalid(
                "before",
                "give exactly one of before (a time) and older_than (a duration like 90d)",
            ))
        }
    };
    let tenant = call.tenant()?.id;
    let mut audit = call.audit("audit_log.purge", "audit_log", tenant);
    audit.metadata.insert("before", rfc3339(before));
    let deleted = call
        .ctx
        .shard
        .app
        .store
        .purge_audit(Some(tenant), before, PURGE_MAX, Some(audit))
        .await
        .map_err(store_err)?;
    Ok(json(
        200,
        &PurgeResponse {
            deleted,
            before: rfc3339(before),
        },
    ))
}
