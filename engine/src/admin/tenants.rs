//! `/v2/admin/tenants`: list, create, get, update (name, slug, issuer mode), delete.

use protocol::admin::{TenantInfo, TenantRequest};
use protocol::webhook::rfc3339;
use protocol::{ApiError, ErrorCode};
use store::{IssuerMode, Tenant, TenantChanges, TenantSettings};

use serde::Serialize;

use super::settings::SettingsView;
use super::{invalid, not_found, store_err, Call};
use crate::handlers::HandlerResult;
use crate::http::{empty, json};
use ::auth::api_keys::Scope;
use ::auth::client_rules as rules;

/// A tenant as the API shows it: HelloJohn's fields and its settings (what `GET .../settings`
/// answers; HelloJohn's console reads `settings.logoUrl` from the list).
#[derive(Serialize)]
pub struct TenantView<'a> {
    #[serde(flatten)]
    info: TenantInfo,
    settings: SettingsView<'a>,
}

pub fn info(t: &Tenant) -> TenantView<'_> {
    TenantView {
        info: TenantInfo {
            id: t.id.to_string(),
            slug: t.slug.clone(),
            name: t.name.clone(),
            issuer_mode: t.issuer_mode.as_str().to_string(),
            created_at: rfc3339(t.created_at),
        },
        settings: SettingsView {
            settings: &t.settings,
            issuer_mode: t.issuer_mode.as_str(),
        },
    }
}

fn slug(text: &str) -> Result<String, ApiError> {
    if rules::valid_slug(text) {
        Ok(text.to_string())
    } else {
        Err(invalid(
            "slug",
            "slug must be 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'",
        ))
    }
}

fn issuer_mode(text: Option<&str>) -> Result<Option<IssuerMode>, ApiError> {
    text.map(|m| {
        IssuerMode::parse(m)
            .ok_or_else(|| invalid("issuer_mode", "issuer_mode must be global or path"))
    })
    .transpose()
}

/// A tenant entering path mode gets its own signing keys first (as `hj tenant update`
/// does), so that no instance sees it in path mode without them.
pub(super) async fn keys_for(
    call: &Call<'_>,
    tenant_id: uuid::Uuid,
    mode: Option<IssuerMode>,
) -> Result<(), ApiError> {
    if mode != Some(IssuerMode::Path) {
        return Ok(());
    }
    let auth = call.ctx.auth();
    let Some(lc) = auth.lifecycle.as_ref() else {
        return Err(ApiError::new(ErrorCode::Internal, "no master key"));
    };
    ::auth::keys::create_tenant_keys(
        call.ctx.shard.app.store.as_ref(),
        &lc.master,
        tenant_id,
        call.ctx.now,
    )
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "cannot create the tenant's signing keys");
        ApiError::new(
            ErrorCode::Unavailable,
            "cannot create the tenant's signing keys; retry later",
        )
    })
}

fn conflict(e: store::StoreError) -> ApiError {
    match e {
        store::StoreError::Conflict(_) => {
            ApiError::new(ErrorCode::Conflict, "a tenant already has this slug").with_field("slug")
        }
        e => store_err(e),
    }
}

pub async fn list(call: &Call<'_>) -> HandlerResult {
    let tenants = call
        .ctx
        .shard
        .app
        .store
        .list_tenants()
        .await
        .map_err(store_err)?;
    let items: Vec<TenantView> = tenants
        .iter()
        .filter(|t| match &call.principal.scope {
            Scope::Tenant(own) => &t.slug == own,
            _ => true,
        })
        .map(info)
        .collect();
    Ok(json(200, &items))
}

pub async fn create(call: &Call<'_>) -> HandlerResult {
    let req: TenantRequest = call.json()?;
    let slug = slug(req.slug.as_deref().unwrap_or(""))?;
    let name = match req.name.as_deref() {
        None => slug.clone(),
        Some(n) => rules::name(n).map_err(|m| invalid("name", m))?,
    };
    // The settings are checked before anything is written, and stored with the tenant.
    let mut settings = TenantSettings::default();
    let mut mode = req.issuer_mode.as_deref();
    if let Some(patch) = &req.settings {
        super::settings::apply(&mut settings, patch);
        settings
            .check()
            .map_err(|(field, message)| invalid(field, message))?;
        if let Some(inner) = patch.issuer_mode.as_deref() {
            if IssuerMode::parse(inner).is_none() {
                return Err(invalid("issuerMode", "issuerMode must be global or path"));
            }
            if mode.is_some_and(|m| m != inner) {
                return Err(invalid(
                    "issuer_mode",
                    "issuer_mode and settings.issuerMode name different modes",
                ));
            }
            mode = Some(inner);
        }
    }
    let mode = issuer_mode(mode)?;
    let store = &call.ctx.shard.app.store;
    let audit = call.audit("tenant.create", "tenant", &slug);
    let mut tenant = store
        .create_tenant(&slug, &name, settings, call.ctx.now, Some(audit))
        .await
        .map_err(conflict)?;
    if let Some(mode) = mode.filter(|m| *m != tenant.issuer_mode) {
        keys_for(call, tenant.id, Some(mode)).await?;
        let audit = call.audit("tenant.update", "tenant", tenant.id);
        let changes = TenantChanges {
            issuer_mode: Some(mode),
            ..TenantChanges::default()
        };
        tenant = store
            .update_tenant(tenant.id, changes, audit)
            .await
            .map_err(conflict)?
            .ok_or_else(|| not_found("tenant"))?;
    }
    Ok(json(201, &info(&tenant)))
}

pub fn get(call: &Call<'_>) -> HandlerResult {
    Ok(json(200, &info(call.tenant()?)))
}

pub async fn update(call: &Call<'_>) -> HandlerResult {
    let tenant = call.tenant()?;
    let req: TenantRequest = call.json()?;
    if req.settings.is_some() {
        return Err(invalid(
            "settings",
            "settings change through PUT|PATCH .../settings (with the ETag in If-Match)",
        ));
    }
    let changes = TenantChanges {
        name: req
            .name
            .as_deref()
            .map(rules::name)
            .transpose()
            .map_err(|m| invalid("name", m))?,
        slug: req.slug.as_deref().map(slug).transpose()?,
        issuer_mode: issuer_mode(req.issuer_mode.as_deref())?,
    };
    if changes == TenantChanges::default() {
        return Ok(json(200, &info(tenant)));
    }
    keys_for(call, tenant.id, changes.issuer_mode).await?;
    let audit = call.audit("tenant.update", "tenant", tenant.id);
    let updated = call
        .ctx
        .shard
        .app
        .store
        .update_tenant(tenant.id, changes, audit)
        .await
        .map_err(conflict)?
        .ok_or_else(|| not_found("tenant"))?;
    Ok(json(200, &info(&updated)))
}

pub async fn delete(call: &Call<'_>) -> HandlerResult {
    let tenant = call.tenant()?;
    let audit = call.audit("tenant.delete", "tenant", tenant.id);
    let existed = call
        .ctx
        .shard
        .app
        .store
        .delete_tenant(tenant.id, audit)
        .await
        .map_err(store_err)?;
    if existed {
        Ok(empty(204))
    } else {
        Err(not_found("tenant"))
    }
}
