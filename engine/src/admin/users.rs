//! `/v2/admin/tenants/{tenant_id}/users`: list (offset pages, email search, status), create,
//! get, update, delete, set-password, disable, enable, set-email-verified. Every user is looked
//! up in the path's tenant: another tenant's user, or an id that is not a UUID, is 404.
//!
//! A change that must stop the user's sessions at once (a new password, disabled, deleted)
//! marks the user's cached sessions in Redis, as a sign-out everywhere does, and this shard
//! forgets the user, so its Bearer tokens stop here at once and elsewhere within
//! [`USER_TTL`](::auth::token_cache::USER_TTL).

use http::Method;
use protocol::admin_users::{
    CreateUserRequest, DisableUserRequest, SetEmailVerifiedRequest, SetPasswordRequest,
    UpdateUserRequest, UserInfo, UserList,
};
use protocol::json::Document;
use protocol::webhook::rfc3339;
use protocol::{ApiError, ErrorCode};
use store::{Metadata, NewUser, User, UserChanges, UserFilter, UserQuery, UserStatus};
use uuid::Uuid;

use super::{grants, invalid, not_found, store_err, AdminRoute, Call};
use crate::handlers::HandlerResult;
use crate::http::{empty, json};
use ::auth::flows::normalize_email;

pub async fn handle(call: &Call<'_>) -> HandlerResult {
    use AdminRoute as R;
    let m = &call.method;
    match call.route {
        R::Users if m == Method::POST => create(call).await,
        R::Users => list(call).await,
        R::User if m == Method::GET || m == Method::HEAD => get(call).await,
        R::User if m == Method::DELETE => delete(call).await,
        R::User => update(call).await,
        R::UserSetPassword => set_password(call).await,
        R::UserDisable => disable(call).await,
        R::UserEnable => enable(call).await,
        R::UserSetEmailVerified => set_email_verified(call).await,
        other => Err(ApiError::new(
            ErrorCode::Internal,
            format!("{} is not a user route", other.template()),
        )),
    }
}

pub fn info(u: &User) -> UserInfo {
    let app_metadata = u.app_metadata.as_json().clone();
    UserInfo {
        id: u.id.to_string(),
        tenant_id: u.tenant_id.to_string(),
        email: u.email.clone(),
        email_verified: u.email_verified,
        name: u.name.clone(),
        disabled: u.disabled,
        disabled_at: u.disabled.then(|| rfc3339(u.created_at)),
        disabled_reason: u.disabled_reason.clone().filter(|_| u.disabled),
        custom_fields: u.custom_fields.as_json().clone(),
        metadata: app_metadata.clone(),
        app_metadata,
        mfa_enabled: u.mfa_enabled,
        created_at: rfc3339(u.created_at),
    }
}

/// The path's user id; one that is not a UUID names no user.
fn user_id(call: &Call<'_>) -> Result<Uuid, ApiError> {
    Uuid::parse_str(call.param(0)).map_err(|_| not_found("user"))
}

async fn find(call: &Call<'_>, id: Uuid) -> Result<User, ApiError> {
    call.ctx
        .shard
        .app
        .store
        .find_user(call.tenant()?.id, id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("user"))
}

fn email(text: &str) -> Result<String, ApiError> {
    normalize_email(text).ok_or_else(|| invalid("email", "email must be an email address"))
}

/// A display name as the sign-up checks it; empty is none.
fn name(text: Option<String>) -> Result<Option<String>, ApiError> {
    match text.map(|n| n.trim().to_string()) {
        Some(n) if n.is_empty() => Ok(None),
        Some(n) => protocol::metadata::check_name(&n).map(|()| Some(n)),
        None => Ok(None),
    }
}

/// User or app metadata, within the limits the sign-up applies.
fn metadata(field: &'static str, value: Document) -> Result<Metadata, ApiError> {
    protocol::metadata::check(&value).map_err(|v| v.to_api_error(field))?;
    Ok(Metadata::from_json(value))
}

/// The PHC string of a new password that passes the tenant's policy (its `security` settings,
/// as at sign-up and reset), hashed in the hash pool.
async fn hash(call: &Call<'_>, password: String) -> Result<String, ApiError> {
    let policy = ::auth::password::Policy::of(&call.tenant()?.settings.security);
    super::accounts::hash_password(call, password, &policy).await
}

fn conflict(e: store::StoreError) -> ApiError {
    match e {
        store::StoreError::Conflict(_) => ApiError::new(
            ErrorCode::Conflict,
            "the tenant already has a user with this email",
        )
        .with_field("email"),
        e => store_err(e),
    }
}

pub async fn list(call: &Call<'_>) -> HandlerResult {
    let tenant = call.tenant()?;
    let paging = call.paging()?;
    let status = match call.query_text("status")?.as_deref() {
        None | Some("all") => None,
        Some("active") => Some(UserStatus::Active),
        Some("disabled") => Some(UserStatus::Disabled),
        Some(_) => return Err(invalid("status", "status must be active, disabled or all")),
    };
    let filter = UserFilter {
        tenant_id: tenant.id,
        email: call.query_text("search")?,
        status,
    };
    let store = &call.ctx.shard.app.store;
    let total_count = store.count_users(filter.clone()).await.map_err(store_err)?;
    let users = store
        .list_users(UserQuery {
            filter,
            after: None,
            offset: paging.offset(),
            limit: paging.size,
        })
        .await
        .map_err(store_err)?;
    Ok(json(
        200,
        &UserList {
            users: users.iter().map(info).collect(),
            total_count,
            page: paging.page,
            page_size: paging.size,
        },
    ))
}

pub async fn get(call: &Call<'_>) -> HandlerResult {
    Ok(json(200, &info(&find(call, user_id(call)?).await?)))
}

pub async fn create(call: &Call<'_>) -> HandlerResult {
    let tenant = call.tenant()?;
    let req: CreateUserRequest = call.json()?;
    let email = email(req.email.as_deref().unwrap_or(""))?;
    let name = name(req.name)?;
    let custom_fields = metadata(
        "custom_fields",
        req.custom_fields
            .unwrap_or(Document::Object(Default::default())),
    )?;
    let app_metadata = metadata(
        "app_metadata",
        req.app_metadata
            .unwrap_or(Document::Object(Default::default())),
    )?;
    // Checked and hashed last: nothing is hashed for a request refused anyway.
    let password_hash = match req.password {
        Some(p) => Some(hash(call, p).await?),
        None => None,
    };
    let id = Uuid::now_v7();
    let user = NewUser {
        id,
        tenant_id: tenant.id,
        email,
        name,
        custom_fields,
    };
    let mut audit = call.audit("user.create", "user", id);
    audit.metadata.insert(
        "password",
        if password_hash.is_some() {
            "set"
        } else {
            "none"
        },
    );
    let created = call
        .ctx
        .shard
        .app
        .store
        .create_user(
            user,
            password_hash,
            req.email_verified.unwrap_or(false),
            app_metadata,
            call.ctx.now,
            audit,
        )
        .await
        .map_err(conflict)?;
    Ok(json(201, &info(&created)))
}

pub async fn update(call: &Call<'_>) -> HandlerResult {
    let id = user_id(call)?;
    let req: UpdateUserRequest = call.json()?;
    let changes = UserChanges {
        email: req.email.as_deref().map(email).transpose()?,
        name: match req.name {
            None => None,
            Some(n) => Some(name(n)?),
        },
        custom_fields: req
            .custom_fields
            .map(|v| metadata("custom_fields", v))
            .transpose()?,
        app_metadata: req
            .app_metadata
            .map(|v| metadata("app_metadata", v))
            .transpose()?,
    };
    if changes.is_empty() {
        return get(call).await;
    }
    let mut audit = call.audit("user.update", "user", id);
    for (field, changed) in [
        ("email", changes.email.is_some()),
        ("name", changes.name.is_some()),
        ("custom_fields", changes.custom_fields.is_some()),
        ("app_metadata", changes.app_metadata.is_some()),
    ] {
        if changed {
            audit.metadata.insert(field, "changed");
        }
    }
    let updated = call
        .ctx
        .shard
        .app
        .store
        .update_user(call.tenant()?.id, id, changes, audit)
        .await
        .map_err(conflict)?
        .ok_or_else(|| not_found("user"))?;
    // The next `/v2/me` here shows the new email and metadata.
    call.ctx.shard.users.forget(id);
    Ok(json(200, &info(&updated)))
}

pub async fn delete(call: &Call<'_>) -> HandlerResult {
    let id = user_id(call)?;
    let audit = call.audit("user.delete", "user", id);
    let existed = call
        .ctx
        .shard
        .app
        .store
        .delete_user(call.tenant()?.id, id, audit)
        .await
        .map_err(store_err)?;
    if !existed {
        return Err(not_found("user"));
    }
    grants::user_signed_out(call.ctx, id).await;
    Ok(empty(204))
}

pub async fn set_password(call: &Call<'_>) -> HandlerResult {
    let id = user_id(call)?;
    let req: SetPasswordRequest = call.json()?;
    let Some(password) = req.password else {
        return Err(invalid("password", "password is required"));
    };
    // The user first: no hash for a user that does not exist.
    find(call, id).await?;
    let password_hash = hash(call, password).await?;
    let audit = call.audit("user.set_password", "user", id);
    call.ctx
        .shard
        .app
        .store
        .set_password(call.tenant()?.id, id, password_hash, call.ctx.now, audit)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("user"))?;
    grants::user_signed_out(call.ctx, id).await;
    Ok(json(200, &info(&find(call, id).await?)))
}

pub async fn disable(call: &Call<'_>) -> HandlerResult {
    let id = user_id(call)?;
    let req: DisableUserRequest = call.json()?;
    if req
        .duration
        .as_deref()
        .is_some_and(|d| !d.trim().is_empty())
    {
        // Nothing would enable the user again when it ran out: refused rather than ignored.
        return Err(invalid(
            "duration",
            "a user is disabled until enabled again; a duration is not supported",
        ));
    }
    let reason = grants::reason(req.reason)?;
    let mut audit = call.audit("user.disable", "user", id);
    if let Some(r) = &reason {
        audit.metadata.insert("reason", r.as_str());
    }
    set_status(call, id, true, reason, audit).await
}

pub async fn enable(call: &Call<'_>) -> HandlerResult {
    let id = user_id(call)?;
    let audit = call.audit("user.enable", "user", id);
    set_status(call, id, false, None, audit).await
}

async fn set_status(
    call: &Call<'_>,
    id: Uuid,
    disabled: bool,
    reason: Option<String>,
    audit: store::AuditEntry,
) -> HandlerResult {
    call.ctx
        .shard
        .app
        .store
        .set_user_status(call.tenant()?.id, id, disabled, reason, call.ctx.now, audit)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("user"))?;
    if disabled {
        grants::user_signed_out(call.ctx, id).await;
    } else {
        call.ctx.shard.users.forget(id);
    }
    Ok(json(200, &info(&find(call, id).await?)))
}

pub async fn set_email_verified(call: &Call<'_>) -> HandlerResult {
    let id = user_id(call)?;
    let req: SetEmailVerifiedRequest = call.json()?;
    let Some(verified) = req.verified else {
        return Err(invalid("verified", "verified (true or false) is required"));
    };
    let mut audit = call.audit("user.set_email_verified", "user", id);
    audit
        .metadata
        .insert("verified", if verified { "true" } else { "false" });
    let user = call
        .ctx
        .shard
        .app
        .store
        .set_email_verified(call.tenant()?.id, id, verified, audit)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("user"))?;
    call.ctx.shard.users.forget(id);
    Ok(json(200, &info(&user)))
}
