//! Admin accounts: sign-in (`/v2/admin/login`, its TOTP step, refresh, sign-out), the caller's
//! own account (`/v2/admin/me`, its TOTP factor), and `/v2/admin/admins` (list, create, get,
//! update, delete, disable, enable).

use protocol::account::{MfaRequiredResponse, TotpEnrollResponse};
use protocol::admin::{
    AdminInfo, AdminList, AdminLoginRequest, AdminMfaRequest, AdminRefreshRequest, AdminRequest,
    AdminTokensResponse, TenantAccess, TotpCodeRequest,
};
use protocol::webhook::rfc3339;
use protocol::{ApiError, ErrorCode};
use store::{AdminAccount, AdminChanges, NewAdmin};
use uuid::Uuid;

use super::guard::{self, Actor};
use super::{invalid, not_found, store_err, Call};
use crate::handlers::{denial_error, Ctx, HandlerResult};
use crate::http::{empty, json};
use ::auth::api_keys::Scope;
use ::auth::flows::{normalize_email, AdminSignIn, AdminTokens, Outcome};
use ::auth::password::Password;

pub fn info(a: &AdminAccount) -> AdminInfo {
    let (admin_type, tenant_access) = match Scope::parse(&a.scope) {
        Some(Scope::Tenant(slug)) => (
            "tenant",
            vec![TenantAccess {
                tenant_slug: slug,
                role: "owner".into(),
            }],
        ),
        _ => ("global", Vec::new()),
    };
    AdminInfo {
        id: a.id.to_string(),
        email: a.email.clone(),
        name: a.name.clone(),
        admin_type: admin_type.into(),
        scope: a.scope.clone(),
        tenant_access,
        status: if a.disabled_at.is_some() {
            "disabled"
        } else {
            "active"
        }
        .into(),
        mfa_enabled: a.mfa_enabled,
        last_seen_at: a.last_seen_at.map(rfc3339),
        disabled_at: a.disabled_at.map(rfc3339),
        created_at: rfc3339(a.created_at),
        updated_at: rfc3339(a.updated_at),
    }
}

fn tokens(t: AdminTokens) -> AdminTokensResponse {
    AdminTokensResponse {
        access_token: t.access_token,
        token_type: "Bearer",
        expires_in: t.expires_in,
        refresh_token: t.refresh_token,
        admin: info(&t.admin),
    }
}

fn origin(call: &Call<'_>) -> crate::webhook::Origin {
    call.ctx.origin(&call.parts)
}

/// `POST /v2/admin/login`: email and password; tokens, or the TOTP step.
pub async fn login(call: &Call<'_>) -> HandlerResult {
    let req: AdminLoginRequest = call.json()?;
    let email = req.email.as_deref().unwrap_or("");
    let password = req.password.unwrap_or_default();
    if email.trim().is_empty() || password.is_empty() {
        return Err(invalid("email", "email and password are required"));
    }
    if password.len() > 1024 {
        return Err(denial_error(&::auth::flows::Denial::InvalidCredentials));
    }
    let outcome = call
        .ctx
        .auth()
        .admin_login(email, Password::new(password), &origin(call), call.ctx.now)
        .await
        .map_err(store_err)?;
    match outcome {
        Outcome::Done(AdminSignIn::Tokens(t)) => Ok(json(200, &tokens(t))),
        Outcome::Done(AdminSignIn::MfaRequired { mfa_token }) => {
            Ok(json(200, &mfa_required(mfa_token)))
        }
        Outcome::Denied(d) => Err(denial_error(&d)),
    }
}

/// `POST /v2/admin/login/mfa`: the TOTP step of a sign-in.
pub async fn login_mfa(call: &Call<'_>) -> HandlerResult {
    let req: AdminMfaRequest = call.json()?;
    let token = req.mfa_token.as_deref().unwrap_or("");
    let code = req.code.as_deref().unwrap_or("");
    if token.is_empty() || code.is_empty() || token.len() > 4096 || code.len() > 16 {
        return Err(invalid("code", "mfa_token and code are required"));
    }
    let outcome = call
        .ctx
        .auth()
        .admin_login_mfa(token, code, &origin(call), call.ctx.now)
        .await
        .map_err(store_err)?;
    match outcome {
        Outcome::Done(t) => Ok(json(200, &tokens(t))),
        Outcome::Denied(d) => Err(denial_error(&d)),
    }
}

fn refresh_token(call: &Call<'_>) -> Result<String, ApiError> {
    let req: AdminRefreshRequest = call.json()?;
    match req.refresh_token {
        Some(t) if !t.is_empty() && t.len() <= 512 => Ok(t),
        _ => Err(invalid("refresh_token", "refresh_token is required")),
    }
}

/// `POST /v2/admin/refresh`: a new pair for a live refresh token (used once).
pub async fn refresh(call: &Call<'_>) -> HandlerResult {
    let token = refresh_token(call)?;
    let outcome = call
        .ctx
        .auth()
        .admin_refresh(&token, &origin(call), call.ctx.now)
        .await
        .map_err(store_err)?;
    match outcome {
        Outcome::Done(t) => Ok(json(200, &tokens(t))),
        Outcome::Denied(d) => Err(denial_error(&d)),
    }
}

/// `POST /v2/admin/logout`: the refresh token stops working (the access token runs out).
pub async fn logout(call: &Call<'_>) -> HandlerResult {
    let token = refresh_token(call)?;
    call.ctx
        .shard
        .app
        .store
        .revoke_admin_refresh(::auth::tokens::hash_opaque(&token), call.ctx.now)
        .await
        .map_err(store_err)?;
    Ok(empty(204))
}

/// The caller's own account: only for an admin's Bearer token (an API key has none).
async fn own_account(call: &Call<'_>) -> Result<AdminAccount, ApiError> {
    let Actor::Admin { id, .. } = &call.principal.actor else {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "this route is for an admin's own account; an API key has none",
        ));
    };
    call.ctx
        .shard
        .app
        .store
        .get_admin(*id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("admin"))
}

pub async fn me(call: &Call<'_>) -> HandlerResult {
    Ok(json(200, &info(&own_account(call).await?)))
}

pub async fn totp_enroll(call: &Call<'_>) -> HandlerResult {
    let admin = own_account(call).await?;
    let outcome = call
        .ctx
        .auth()
        .admin_totp_enroll(&admin, call.ctx.now)
        .await
        .map_err(store_err)?;
    match outcome {
        Outcome::Done(e) => Ok(json(
            200,
            &TotpEnrollResponse {
                secret_base32: e.secret_base32,
                otpauth_url: e.otpauth_url,
            },
        )),
        Outcome::Denied(d) => Err(denial_error(&d)),
    }
}

fn code(call: &Call<'_>) -> Result<String, ApiError> {
    let req: TotpCodeRequest = call.json()?;
    match req.code {
        Some(c) if !c.is_empty() && c.len() <= 16 => Ok(c),
        _ => Err(invalid("code", "code is required")),
    }
}

pub async fn totp_verify(call: &Call<'_>) -> HandlerResult {
    let admin = own_account(call).await?;
    let code = code(call)?;
    let audit = call.audit("admin.mfa_enabled", "admin", admin.id);
    let outcome = call
        .ctx
        .auth()
        .admin_totp_confirm(&admin, &code, audit, call.ctx.now)
        .await
        .map_err(store_err)?;
    match outcome {
        Outcome::Done(()) => Ok(empty(204)),
        Outcome::Denied(d) => Err(denial_error(&d)),
    }
}

/// Removing the factor takes a current code.
pub async fn totp_delete(call: &Call<'_>) -> HandlerResult {
    let admin = own_account(call).await?;
    let code = code(call)?;
    let auth = call.ctx.auth();
    if !auth
        .check_admin_totp(&admin, &code, call.ctx.now)
        .await
        .map_err(store_err)?
    {
        return Err(denial_error(&::auth::flows::Denial::InvalidMfaCode));
    }
    let audit = call.audit("admin.mfa_disabled", "admin", admin.id);
    call.ctx
        .shard
        .app
        .store
        .delete_admin_totp(admin.id, audit)
        .await
        .map_err(store_err)?;
    guard::forget_keys();
    Ok(empty(204))
}

fn admin_id(call: &Call<'_>) -> Result<Uuid, ApiError> {
    Uuid::parse_str(call.param(0)).map_err(|_| not_found("admin"))
}

fn scope(text: &str, field: &'static str) -> Result<String, ApiError> {
    Scope::parse(text)
        .map(|s| s.as_string())
        .ok_or_else(|| invalid(field, "scope must be admin, readonly or tenant:{slug}"))
}

async fn tenant_exists(call: &Call<'_>, scope: &str) -> Result<(), ApiError> {
    if let Some(Scope::Tenant(slug)) = Scope::parse(scope) {
        let t = call
            .ctx
            .shard
            .app
            .store
            .find_tenant(&slug)
            .await
            .map_err(store_err)?;
        if t.is_none_or(|t| t.slug != slug) {
            return Err(invalid("scope", format!("no tenant has the slug {slug:?}")));
        }
    }
    Ok(())
}

/// The PHC string of a new password that passes `policy`, hashed in the hash pool: an admin
/// account's (the server's policy) or a tenant user's (the tenant's, `users.rs`).
pub(super) async fn hash_password(
    call: &Call<'_>,
    password: String,
    policy: &::auth::password::Policy,
) -> Result<String, ApiError> {
    if let Err(v) = policy.check(&password) {
        return Err(invalid("password", v.message()));
    }
    match call
        .ctx
        .auth()
        .hash_admin_password(Password::new(password))
        .await
        .map_err(store_err)?
    {
        Outcome::Done(phc) => Ok(phc),
        Outcome::Denied(d) => Err(denial_error(&d)),
    }
}

fn email(text: &str) -> Result<String, ApiError> {
    normalize_email(text).ok_or_else(|| invalid("email", "email must be an email address"))
}

fn conflict(e: store::StoreError) -> ApiError {
    match e {
        store::StoreError::Conflict(_) => {
            ApiError::new(ErrorCode::Conflict, "an admin already has this email")
                .with_field("email")
        }
        e => store_err(e),
    }
}

fn name(v: Option<Option<String>>) -> Result<Option<Option<String>>, ApiError> {
    match v {
        Some(Some(n)) => ::auth::client_rules::name(&n)
            .map(|n| Some(Some(n)))
            .map_err(|m| invalid("name", m)),
        v => Ok(v),
    }
}

pub async fn list(call: &Call<'_>) -> HandlerResult {
    let admins = call
        .ctx
        .shard
        .app
        .store
        .list_admins()
        .await
        .map_err(store_err)?;
    let admins: Vec<AdminInfo> = admins.iter().map(info).collect();
    Ok(json(
        200,
        &AdminList {
            total: admins.len(),
            admins,
        },
    ))
}

pub async fn create(call: &Call<'_>) -> HandlerResult {
    let req: AdminRequest = call.json()?;
    let email = email(req.email.as_deref().unwrap_or(""))?;
    let scope = scope(req.scope.as_deref().unwrap_or("admin"), "scope")?;
    tenant_exists(call, &scope).await?;
    let name = name(req.name)?.flatten();
    let Some(password) = req.password else {
        return Err(invalid("password", "password is required"));
    };
    let password_hash = hash_password(call, password, &Default::default()).await?;
    let id = Uuid::now_v7();
    let mut audit = call.audit("admin.create", "admin", id);
    audit.metadata.insert("scope", scope.as_str());
    let created = call
        .ctx
        .shard
        .app
        .store
        .create_admin(
            NewAdmin {
                id,
                email,
                name,
                scope,
                password_hash,
                created_at: call.ctx.now,
            },
            audit,
        )
        .await
        .map_err(conflict)?;
    Ok(json(201, &info(&created)))
}

pub async fn get(call: &Call<'_>) -> HandlerResult {
    let id = admin_id(call)?;
    let admin = call
        .ctx
        .shard
        .app
        .store
        .get_admin(id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("admin"))?;
    Ok(json(200, &info(&admin)))
}

pub async fn update(call: &Call<'_>) -> HandlerResult {
    let id = admin_id(call)?;
    let req: AdminRequest = call.json()?;
    let scope = req
        .scope
        .as_deref()
        .map(|s| scope(s, "scope"))
        .transpose()?;
    if let Some(s) = &scope {
        tenant_exists(call, s).await?;
    }
    let changes = AdminChanges {
        email: req.email.as_deref().map(email).transpose()?,
        name: name(req.name)?,
        scope,
        password_hash: match req.password {
            Some(p) => Some(hash_password(call, p, &Default::default()).await?),
            None => None,
        },
    };
    let mut audit = call.audit("admin.update", "admin", id);
    if changes.password_hash.is_some() {
        audit.metadata.insert("password", "changed");
    }
    if let Some(s) = &changes.scope {
        audit.metadata.insert("scope", s.as_str());
    }
    let updated = call
        .ctx
        .shard
        .app
        .store
        .update_admin(id, changes, call.ctx.now, audit)
        .await
        .map_err(conflict)?
        .ok_or_else(|| not_found("admin"))?;
    guard::forget_keys();
    Ok(json(200, &info(&updated)))
}

fn not_self(call: &Call<'_>, id: Uuid) -> Result<(), ApiError> {
    match &call.principal.actor {
        Actor::Admin { id: me, .. } if *me == id => Err(ApiError::new(
            ErrorCode::Conflict,
            "an admin cannot delete or disable their own account",
        )),
        _ => Ok(()),
    }
}

pub async fn delete(call: &Call<'_>) -> HandlerResult {
    let id = admin_id(call)?;
    not_self(call, id)?;
    let audit = call.audit("admin.delete", "admin", id);
    let existed = call
        .ctx
        .shard
        .app
        .store
        .delete_admin(id, audit)
        .await
        .map_err(store_err)?;
    guard::forget_keys();
    if existed {
        Ok(empty(204))
    } else {
        Err(not_found("admin"))
    }
}

pub async fn set_disabled(call: &Call<'_>, disabled: bool) -> HandlerResult {
    let id = admin_id(call)?;
    if disabled {
        not_self(call, id)?;
    }
    let action = if disabled {
        "admin.disable"
    } else {
        "admin.enable"
    };
    let audit = call.audit(action, "admin", id);
    let admin = call
        .ctx
        .shard
        .app
        .store
        .set_admin_disabled(id, disabled, call.ctx.now, audit)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("admin"))?;
    guard::forget_keys();
    Ok(json(200, &info(&admin)))
}

/// `POST /v2/auth/login` with neither tenant nor client: an admin's sign-in, as HelloJohn's
/// console makes it. The same flow and answer as `POST /v2/admin/login`.
pub async fn console_sign_in(
    ctx: &Ctx,
    parts: &http::request::Parts,
    email: &str,
    password: Password,
) -> Result<(crate::http::Resp, &'static str), ApiError> {
    let outcome = ctx
        .auth()
        .admin_login(email, password, &ctx.origin(parts), ctx.now)
        .await
        .map_err(store_err)?;
    Ok(match outcome {
        Outcome::Done(AdminSignIn::Tokens(t)) => (json(200, &tokens(t)), "success"),
        Outcome::Done(AdminSignIn::MfaRequired { mfa_token }) => {
            (json(200, &mfa_required(mfa_token)), "mfa_required")
        }
        Outcome::Denied(d) => (
            crate::http::error(&denial_error(&d), false),
            crate::handlers::common::sign_in_status(&d),
        ),
    })
}

/// `POST /v2/auth/refresh` with no client: an admin's refresh token.
pub async fn console_refresh(
    ctx: &Ctx,
    parts: &http::request::Parts,
    token: &str,
) -> HandlerResult {
    let outcome = ctx
        .auth()
        .admin_refresh(token, &ctx.origin(parts), ctx.now)
        .await
        .map_err(store_err)?;
    match outcome {
        Outcome::Done(t) => Ok(crate::handlers::common::no_store(json(200, &tokens(t)))),
        Outcome::Denied(d) => Err(denial_error(&d)),
    }
}

/// `GET /v2/me` with an admin's token: the account, with `sub` as the user answer has it.
pub async fn console_me(ctx: &Ctx, token: &str) -> HandlerResult {
    let principal = guard::authenticate_admin(ctx, token).await?;
    let Actor::Admin { id, .. } = principal.actor else {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "invalid admin token",
        ));
    };
    let admin = ctx
        .shard
        .app
        .store
        .get_admin(id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "invalid admin token"))?;
    Ok(crate::handlers::common::no_store(json(
        200,
        &protocol::admin::AdminMe {
            sub: admin.id.to_string(),
            aud: protocol::token::ADMIN_AUDIENCE,
            admin: info(&admin),
        },
    )))
}

fn mfa_required(mfa_token: String) -> MfaRequiredResponse {
    MfaRequiredResponse {
        mfa_required: true,
        mfa_token,
        amr: vec!["pwd"],
        available_factors: vec!["totp"],
        preferred_factor: "totp",
        expires_in: ::auth::flows::ADMIN_MFA_TTL as u64,
    }
}
