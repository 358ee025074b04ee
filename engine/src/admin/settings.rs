//! `GET|PUT|PATCH /v2/admin/tenants/{tenant_id}/settings`: what a tenant sets differently from
//! the server's defaults (`store::TenantSettings`: session, refresh- and access-token lifetimes,
//! the password policy, branding) and its issuer mode, with HelloJohn's names.
//!
//! `GET` answers an `ETag` (the settings' version); `PUT` needs it back in `If-Match` (428
//! without, 412 when the settings changed since), so two operators cannot overwrite each other
//! unseen. `PATCH` applies without it. Both merge: absent keys stay, `null` resets a key to the
//! server's default, and keys this server does not act on are ignored, never stored (HelloJohn's
//! SMTP, user-database and social-provider settings carry secrets).

use http::header::{HeaderValue, ETAG, IF_MATCH};
use http::Method;
use protocol::admin_settings::SettingsPatch;
use protocol::{ApiError, ErrorCode};
use serde::Serialize;
use store::{IssuerMode, SettingsUpdate, Tenant, TenantChanges, TenantSettings};

use super::{invalid, not_found, store_err, Call};
use crate::handlers::HandlerResult;
use crate::http::json;

/// The settings as the API shows them: the stored ones and the tenant's issuer mode.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SettingsView<'a> {
    #[serde(flatten)]
    pub settings: &'a TenantSettings,
    pub issuer_mode: &'static str,
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

fn answer(tenant: &Tenant) -> crate::http::Resp {
    let mut resp = json(
        200,
        &SettingsView {
            settings: &tenant.settings,
            issuer_mode: tenant.issuer_mode.as_str(),
        },
    );
    resp.headers_mut()
        .insert(ETAG, etag(tenant.settings_version));
    resp
}

pub async fn handle(call: &Call<'_>) -> HandlerResult {
    let tenant = call.tenant()?;
    if call.method == Method::GET || call.method == Method::HEAD {
        return Ok(answer(tenant));
    }
    // The request itself first (its body, its values), then its precondition: a malformed
    // request is 400 whatever its `If-Match`.
    let patch: SettingsPatch = call.json()?;
    let mut next = tenant.settings.clone();
    apply(&mut next, &patch);
    next.check()
        .map_err(|(field, message)| invalid(field, message))?;
    let mode = match patch.issuer_mode.as_deref() {
        None => None,
        Some(m) => Some(
            IssuerMode::parse(m)
                .ok_or_else(|| invalid("issuerMode", "issuerMode must be global or path"))?,
        ),
    }
    .filter(|m| *m != tenant.issuer_mode);
    let if_version = match call.parts.headers.get(IF_MATCH) {
        Some(v) => {
            let text = v.to_str().unwrap_or("").trim();
            let text = text.strip_prefix("W/").unwrap_or(text);
            match text.trim_matches('"').parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) if text == "*" => None,
                Err(_) => {
                    return Err(ApiError::new(
                        ErrorCode::PreconditionFailed,
                        "If-Match names no version of these settings",
                    ))
                }
            }
        }
        None if call.method == Method::PUT => {
            return Err(ApiError::new(
                ErrorCode::PreconditionRequired,
                "send the ETag of GET .../settings in If-Match",
            ))
        }
        None => None,
    };
    let store = &call.ctx.shard.app.store;
    let mut updated = tenant.clone();
    if next != tenant.settings {
        let audit = call.audit("tenant.settings_update", "tenant", tenant.id);
        updated = match store
            .update_tenant_settings(tenant.id, next, if_version, audit)
            .await
            .map_err(store_err)?
        {
            SettingsUpdate::Updated(t) => *t,
            SettingsUpdate::NotFound => return Err(not_found("tenant")),
            SettingsUpdate::Stale { .. } => {
                return Err(ApiError::new(
                    ErrorCode::PreconditionFailed,
                    "the settings changed since they were read; GET them again",
                ))
            }
        };
    } else if if_version.is_some_and(|v| v != tenant.settings_version) {
        return Err(ApiError::new(
            ErrorCode::PreconditionFailed,
            "the settings changed since they were read; GET them again",
        ));
    }
    if let Some(mode) = mode {
        super::tenants::keys_for(call, tenant.id, Some(mode)).await?;
        let audit = call.audit("tenant.update", "tenant", tenant.id);
        let changes = TenantChanges {
            issuer_mode: Some(mode),
            ..TenantChanges::default()
        };
        updated = store
            .update_tenant(tenant.id, changes, audit)
            .await
            .map_err(store_err)?
            .ok_or_else(|| not_found("tenant"))?;
    }
    Ok(answer(&updated))
}

/// The patch over the current settings.
pub(super) fn apply(s: &mut TenantSettings, p: &SettingsPatch) {
    fn set<T: Clone>(slot: &mut Option<T>, v: &Option<Option<T>>) {
        if let Some(v) = v {
            *slot = v.clone();
        }
    }
    set(&mut s.session_lifetime_seconds, &p.session_lifetime_seconds);
    set(
        &mut s.refresh_token_lifetime_seconds,
        &p.refresh_token_lifetime_seconds,
    );
    set(
        &mut s.access_token_lifetime_seconds,
        &p.access_token_lifetime_seconds,
    );
    set(&mut s.logo_url, &p.logo_url);
    set(&mut s.brand_color, &p.brand_color);
    set(&mut s.secondary_color, &p.secondary_color);
    set(&mut s.favicon_url, &p.favicon_url);
    if let Some(sec) = &p.security {
        let t = &mut s.security;
        set(&mut t.password_min_length, &sec.password_min_length);
        set(&mut t.require_uppercase, &sec.require_uppercase);
        set(&mut t.require_lowercase, &sec.require_lowercase);
        set(&mut t.require_numbers, &sec.require_numbers);
        set(&mut t.require_special_chars, &sec.require_special_chars);
    }
}
