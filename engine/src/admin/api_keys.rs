//! `/v2/admin/api-keys`: create (the token shown once), list, get, revoke, rotate.

use protocol::admin::{ApiKeyInfo, CreateApiKeyRequest, CreatedApiKey, RotatedApiKey};
use protocol::webhook::rfc3339;
use store::{ApiKey, NewApiKey};
use uuid::Uuid;

use super::{guard, invalid, not_found, store_err, Call};
use crate::handlers::HandlerResult;
use crate::http::json;
use ::auth::api_keys::{self, Scope};

/// Longest key name.
const MAX_NAME: usize = 100;

pub fn info(k: &ApiKey, now: i64) -> ApiKeyInfo {
    ApiKeyInfo {
        id: k.id.to_string(),
        name: k.name.clone(),
        key_prefix: k.key_prefix.clone(),
        scope: k.scope.clone(),
        created_by: k.created_by.clone(),
        created_at: rfc3339(k.created_at),
        last_used_at: k.last_used_at.map(rfc3339),
        expires_at: k.expires_at.map(rfc3339),
        revoked_at: k.revoked_at.map(rfc3339),
        is_active: k.is_active(now),
    }
}

fn created(key: &NewApiKey, token: String) -> CreatedApiKey {
    CreatedApiKey {
        id: key.id.to_string(),
        name: key.name.clone(),
        token,
        key_prefix: key.key_prefix.clone(),
        scope: key.scope.clone(),
        expires_at: key.expires_at.map(rfc3339),
        created_at: rfc3339(key.created_at),
    }
}

/// A new key (and its token) for `name`, `scope`, `expires_at`.
fn new_key(
    call: &Call<'_>,
    name: String,
    scope: String,
    expires_at: Option<i64>,
) -> (NewApiKey, String) {
    let (token, key_prefix, key_hash) = api_keys::generate();
    let key = NewApiKey {
        id: Uuid::now_v7(),
        name,
        key_prefix,
        key_hash,
        scope,
        created_by: call.principal.actor.created_by(),
        created_at: call.ctx.now,
        expires_at,
    };
    (key, token)
}

pub async fn create(call: &Call<'_>) -> HandlerResult {
    let req: CreateApiKeyRequest = call.json()?;
    let name = req.name.as_deref().map(str::trim).unwrap_or("");
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(invalid("name", "name must be 1-100 printable characters"));
    }
    let scope_text = req.scope.as_deref().unwrap_or("");
    let Some(scope) = Scope::parse(scope_text) else {
        return Err(invalid(
            "scope",
            "scope must be admin, readonly or tenant:{slug}",
        ));
    };
    if let Scope::Tenant(slug) = &scope {
        let tenant = call
            .ctx
            .shard
            .app
            .store
            .find_tenant(slug)
            .await
            .map_err(store_err)?;
        if tenant.is_none_or(|t| &t.slug != slug) {
            return Err(invalid("scope", format!("no tenant has the slug {slug:?}")));
        }
    }
    let expires_at = match req.expires_in.as_deref() {
        None => None,
        Some(text) => Some(
            call.ctx.now
                + protocol::admin::parse_span(text).map_err(|m| invalid("expires_in", m))?,
        ),
    };
    let (key, token) = new_key(call, name.to_string(), scope.as_string(), expires_at);
    let mut audit = call.audit("api_key.create", "api_key", key.id);
    audit.metadata.insert("scope", key.scope.as_str());
    audit.metadata.insert("name", key.name.as_str());
    call.ctx
        .shard
        .app
        .store
        .create_api_key(key.clone(), audit)
        .await
        .map_err(store_err)?;
    Ok(json(201, &created(&key, token)))
}

pub async fn list(call: &Call<'_>) -> HandlerResult {
    let keys = call
        .ctx
        .shard
        .app
        .store
        .list_api_keys()
        .await
        .map_err(store_err)?;
    let items: Vec<ApiKeyInfo> = keys.iter().map(|k| info(k, call.ctx.now)).collect();
    Ok(json(200, &items))
}

fn key_id(call: &Call<'_>) -> Result<Uuid, protocol::ApiError> {
    Uuid::parse_str(call.param(0)).map_err(|_| not_found("API key"))
}

pub async fn get(call: &Call<'_>) -> HandlerResult {
    let id = key_id(call)?;
    let key = call
        .ctx
        .shard
        .app
        .store
        .get_api_key(id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("API key"))?;
    Ok(json(200, &info(&key, call.ctx.now)))
}

pub async fn revoke(call: &Call<'_>) -> HandlerResult {
    let id = key_id(call)?;
    let audit = call.audit("api_key.revoke", "api_key", id);
    let key = call
        .ctx
        .shard
        .app
        .store
        .revoke_api_key(id, call.ctx.now, audit)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("API key"))?;
    guard::forget_keys();
    Ok(json(200, &info(&key, call.ctx.now)))
}

pub async fn rotate(call: &Call<'_>) -> HandlerResult {
    let id = key_id(call)?;
    let store = &call.ctx.shard.app.store;
    let old = store
        .get_api_key(id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("API key"))?;
    if !old.is_active(call.ctx.now) {
        return Err(protocol::ApiError::new(
            protocol::ErrorCode::Conflict,
            "the key is revoked or expired; create a new one",
        ));
    }
    // The new key keeps the old one's name, scope and remaining life.
    let (key, token) = new_key(call, old.name.clone(), old.scope.clone(), old.expires_at);
    let mut audit = call.audit("api_key.rotate", "api_key", id);
    audit.metadata.insert("new_key_id", key.id.to_string());
    store
        .rotate_api_key(id, key.clone(), audit)
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            protocol::ApiError::new(
                protocol::ErrorCode::Conflict,
                "the key was revoked meanwhile",
            )
        })?;
    guard::forget_keys();
    Ok(json(
        200,
        &RotatedApiKey {
            old_key_id: id.to_string(),
            new_key: created(&key, token),
        },
    ))
}
