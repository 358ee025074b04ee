//! The unauthenticated reads an app makes before anyone signs in (HelloJohn's JS SDK calls
//! them): the password policy and the sign-in providers of a tenant.

use http::Request;
use hyper::body::Incoming;
use protocol::auth::{AuthConfigResponse, PasswordPolicyResponse, ProvidersResponse};
use protocol::{ApiError, ErrorCode};

use super::common::{self, no_store};
use super::{Ctx, HandlerResult};
use crate::http::json;

/// `GET /v2/auth/password-policy?tenant_id=`: the policy `register` enforces (the tenant's
/// settings over the server's rules), so a form can
/// check a password before sending it. 400 for a missing or unknown tenant.
pub async fn password_policy(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    ctx.clock.request_read();
    let (parts, _) = req.into_parts();
    let tenant = common::tenant(ctx, common::tenant_key(&parts, None)).await?;
    let policy = auth::password::Policy::of(&tenant.settings.security);
    Ok(no_store(json(
        200,
        &PasswordPolicyResponse {
            configured: true,
            tenant_id: tenant.id.to_string(),
            min_length: policy.min_length,
            max_length: auth::password::MAX_LENGTH,
            require_uppercase: policy.uppercase,
            require_lowercase: policy.lowercase,
            require_numbers: policy.digit,
            require_symbols: policy.special,
            max_history: 0,
            breach_detection: false,
            common_password: false,
            personal_info: false,
        },
    )))
}

/// `GET /v2/auth/providers?tenant_id=&client_id=`: the social providers a sign-in page should
/// offer. None exists yet: an empty list. A tenant, when named, must exist.
pub async fn providers(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    ctx.clock.request_read();
    let (parts, _) = req.into_parts();
    if let Some(key) = common::tenant_key(&parts, None) {
        common::tenant(ctx, Some(key)).await?;
    }
    Ok(no_store(json(
        200,
        &ProvidersResponse {
            providers: Vec::new(),
        },
    )))
}

/// `GET /v2/auth/config?client_id=[&tenant_id=]`: the client's and tenant's names and what
/// sign-in offers. The tenant comes from `tenant_id` when given, else from the client (404
/// when no client, or several in different tenants, have that id).
pub async fn config(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    ctx.clock.request_read();
    let (parts, _) = req.into_parts();
    let client_id = crate::http::query_param(parts.uri.query(), "client_id")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| super::errors::missing("client_id"))?;
    let (tenant, client) = super::oauth::find_client(ctx, &parts, None, &client_id)
        .await
        .map_err(|e| match e {
            super::oauth::Lookup::Unknown(why) => ApiError::new(ErrorCode::NotFound, why),
            super::oauth::Lookup::Unavailable(e) => e,
        })?;
    let features = [
        ("password", true),
        ("register", true),
        ("authorization_code", true),
        // TOTP is there for every tenant's users (`/v2/mfa/*`).
        ("mfa", true),
        ("social", false),
    ]
    .into_iter()
    .collect();
    Ok(json(
        200,
        &AuthConfigResponse {
            tenant_name: tenant.name,
            tenant_slug: tenant.slug,
            client_name: client.name,
            social_providers: Vec::new(),
            password_enabled: true,
            features,
            require_email_verification: client.require_email_verification,
        },
    ))
}
