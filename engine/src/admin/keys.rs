//! Signing keys: a tenant's (`/v2/admin/tenants/{tenant_id}/keys`: list, rotate) and the paths
//! HelloJohn's admin console calls (`/v2/admin/keys?tenant_id=` and `/v2/admin/keys/rotate` with
//! `tenant_id` in the body; without it, the global keys). The same rules as `hj keys`: a tenant
//! in issuer mode `global` is signed for by the global keys, which only the `admin` scope may
//! rotate; key material never leaves the store.

use protocol::admin_hooks::{
    KeyList, RotateKeysRequest, RotateKeysResponse, Rotated, SigningKeyInfo,
};
use protocol::webhook::rfc3339;
use protocol::{ApiError, ErrorCode};
use store::{IssuerMode, SigningAlg, Tenant};
use uuid::Uuid;

use super::routes::AdminRoute as R;
use super::webhooks::master;
use super::{guard, invalid, store_err, Call};
use crate::handlers::HandlerResult;
use crate::http::json;
use ::auth::api_keys::Scope;

pub async fn handle(call: &Call<'_>) -> HandlerResult {
    match call.route {
        R::Keys => {
            let tenant = call.tenant()?;
            list(call, Some(tenant)).await
        }
        R::GlobalKeys => {
            let tenant = match call.query_text("tenant_id")? {
                Some(key) => Some(guard::tenant_for(call.ctx, &call.principal, &key).await?),
                None => None,
            };
            list(call, tenant.as_ref()).await
        }
        R::KeysRotate => {
            let req = request(call)?;
            if req.tenant_id.is_some() {
                return Err(invalid(
                    "tenant_id",
                    "the path names the tenant; tenant_id belongs to POST /v2/admin/keys/rotate",
                ));
            }
            rotate(call, Some(call.tenant()?), req).await
        }
        _ => {
            let req = request(call)?;
            let tenant = match req.tenant_id.as_deref().map(str::trim) {
                Some(key) if !key.is_empty() => {
                    Some(guard::tenant_for(call.ctx, &call.principal, key).await?)
                }
                _ => None,
            };
            rotate(call, tenant.as_ref(), req).await
        }
    }
}

/// Whose keys sign the tenant's tokens: its own in issuer mode `path`, else the global ones.
fn owner(tenant: Option<&Tenant>) -> Option<Uuid> {
    tenant
        .filter(|t| t.issuer_mode == IssuerMode::Path)
        .map(|t| t.id)
}

/// How long a retired key still verifies: the longest lifetime of a signed token.
fn grace(call: &Call<'_>) -> i64 {
    i64::try_from(call.ctx.shard.app.config.signed_token_lifetime().as_secs()).unwrap_or(i64::MAX)
}

async fn list(call: &Call<'_>, tenant: Option<&Tenant>) -> HandlerResult {
    let owner = owner(tenant);
    let lifetime = grace(call);
    let keys = call
        .ctx
        .shard
        .app
        .store
        .list_signing_keys()
        .await
        .map_err(store_err)?;
    let keys = keys
        .into_iter()
        .filter(|k| k.tenant_id == owner)
        .map(|k| SigningKeyInfo {
            status: ::auth::keys::KeyState::of(&k, call.ctx.now, lifetime)
                .as_str()
                .to_string(),
            kid: k.kid,
            alg: k.alg.as_str().to_string(),
            key_use: "sig",
            owner: if owner.is_some() { "tenant" } else { "global" }.to_string(),
            tenant_id: owner.map(|id| id.to_string()),
            created_at: rfc3339(k.created_at),
            activates_at: rfc3339(k.activates_at),
            retired_at: k.retired_at.map(rfc3339),
        })
        .collect();
    Ok(json(200, &KeyList { keys }))
}

fn request(call: &Call<'_>) -> Result<RotateKeysRequest, ApiError> {
    if call.body.iter().all(u8::is_ascii_whitespace) {
        Ok(RotateKeysRequest::default())
    } else {
        call.json()
    }
}

/// Rotates the keys that sign the tenant's tokens (the global keys without a tenant, or for a
/// tenant in issuer mode `global`): only an `admin` scope may rotate the global keys.
async fn rotate(call: &Call<'_>, tenant: Option<&Tenant>, req: RotateKeysRequest) -> HandlerResult {
    let owner = owner(tenant);
    if owner.is_none() && call.principal.scope != Scope::Admin {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "these tokens are signed by the global keys; rotating them needs the admin scope",
        ));
    }
    let algs = match req.alg.as_deref() {
        None | Some("all") => SigningAlg::ALL.to_vec(),
        Some(name) => vec![SigningAlg::parse(name)
            .ok_or_else(|| invalid("alg", "alg must be EdDSA, RS256 or all"))?],
    };
    let store = call.ctx.shard.app.store.as_ref();
    let master = master(call)?;
    let delay = call.ctx.shard.app.config.key_publish_delay;
    let mut rotated = Vec::new();
    for alg in algs {
        let mut audit = call.audit("signing_key.rotate", "signing_key", alg.as_str());
        audit.tenant_id = tenant.map(|t| t.id);
        audit
            .metadata
            .insert("keys", if owner.is_some() { "tenant" } else { "global" });
        let r =
            ::auth::keys::rotate_for(store, master, owner, alg, call.ctx.now, delay, Some(audit))
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "signing-key rotation failed");
                    ApiError::new(
                        ErrorCode::Unavailable,
                        "the keys could not be rotated; retry later",
                    )
                })?;
        rotated.push(Rotated {
            kid: r.kid,
            alg: r.alg.as_str().to_string(),
            activates_at: rfc3339(r.activates_at),
            retired: r.retired,
        });
    }
    let first = &rotated[0];
    let grace_seconds = grace(call);
    Ok(json(
        200,
        &RotateKeysResponse {
            kid: first.kid.clone(),
            grace_seconds,
            message: format!(
                "{} new key(s), signing from {}; the keys they replace verify for {grace_seconds} s more",
                rotated.len(),
                first.activates_at
            ),
            rotated,
        },
    ))
}
