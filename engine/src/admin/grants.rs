//! A tenant's refresh tokens and cookie sessions: `/v2/admin/tenants/{tenant_id}/tokens` (list,
//! stats, get, revoke one, by user, by client, all) and `.../sessions` (list, stats, get,
//! revoke one, by user, all).
//!
//! A "token" is a refresh family (what one sign-in started, whatever its rotations), named by
//! the family's id; a session by its id, never by its cookie. Revoking one works as a sign-out
//! does: the database first, then the marks in the shared cache (Redis), so that no instance
//! serves a cached session, or lets a replay of the family's token get further than the mark,
//! afterwards. Access tokens already issued run until their `exp`, as after a sign-out.

use futures_util::StreamExt;
use http::Method;
use protocol::admin_users::{
    ClientCount, RevokeByClientRequest, RevokeByUserRequest, RevokeRequest, RevokeResponse,
    SessionInfo, SessionList, SessionStats, TokenInfo, TokenList, TokenStats,
};
use protocol::webhook::rfc3339;
use protocol::{ApiError, ErrorCode};
use store::{
    AuditEntry, GrantQuery, GrantState, GrantStats, RefreshGrant, RevokeSelector, RevokedSession,
    SessionGrant,
};
use uuid::Uuid;

use super::{invalid, not_found, store_err, AdminRoute, Call, Paging};
use crate::handlers::{Ctx, HandlerResult};
use crate::http::json;
use ::auth::flows::{FAMILY_MARK_TTL, SESSION_CACHE_TTL};

/// Longest reason given for a revocation or a disabling, in characters.
pub const MAX_REASON: usize = 500;
/// Cache marks written at once after a revocation of many.
const MARKS_IN_FLIGHT: usize = 32;

pub async fn handle(call: &Call<'_>) -> HandlerResult {
    use AdminRoute as R;
    match call.route {
        R::Tokens => list_tokens(call).await,
        R::TokenStats => token_stats(call).await,
        R::Token if call.method == Method::DELETE => revoke_token(call).await,
        R::Token => get_token(call).await,
        R::TokensRevokeByUser => revoke_tokens_of_user(call).await,
        R::TokensRevokeByClient => revoke_tokens_of_client(call).await,
        R::TokensRevokeAll => revoke_all_tokens(call).await,
        R::Sessions => list_sessions(call).await,
        R::SessionStats => session_stats(call).await,
        R::Session => get_session(call).await,
        R::SessionRevoke => revoke_session(call).await,
        R::SessionsRevokeByUser => revoke_sessions_of_user(call).await,
        R::SessionsRevokeAll => revoke_all_sessions(call).await,
        other => Err(ApiError::new(
            ErrorCode::Internal,
            format!("{} is not a token or session route", other.template()),
        )),
    }
}

// ----- the shared cache ------------------------------------------------------------------

/// Marks refresh families revoked in the shared cache, as a sign-out does (a fast refusal of
/// a replay; the database refuses it anyway).
async fn mark_families(ctx: &Ctx, ids: &[Uuid]) {
    if let Some(cache) = &ctx.auth().cache {
        futures_util::stream::iter(ids)
            .for_each_concurrent(MARKS_IN_FLIGHT, |id| async move {
                let _ = cache.family_revoke(*id, FAMILY_MARK_TTL).await;
            })
            .await;
    }
}

/// Marks sessions signed out in the shared cache, as a sign-out does: a cached copy would
/// otherwise be served for up to [`SESSION_CACHE_TTL`].
async fn mark_sessions(ctx: &Ctx, revoked: &[RevokedSession]) {
    if let Some(cache) = &ctx.auth().cache {
        futures_util::stream::iter(revoked)
            .for_each_concurrent(MARKS_IN_FLIGHT, |s| async move {
                let _ = cache.session_revoke(&s.id_hash, SESSION_CACHE_TTL).await;
            })
            .await;
    }
}

/// After the store revoked everything of a user (a new password, disabled, deleted): their
/// cached sessions are marked signed out, as a sign-out everywhere does, and this shard reads
/// the user again on their next request.
pub async fn user_signed_out(ctx: &Ctx, user_id: Uuid) {
    ctx.shard.users.forget(user_id);
    if let Some(cache) = &ctx.auth().cache {
        let _ = cache.revoke_user_sessions(user_id, SESSION_CACHE_TTL).await;
    }
}

// ----- input --------------------------------------------------------------------------------

/// A reason as given (trimmed; empty is none), at most [`MAX_REASON`] characters without
/// control characters.
pub fn reason(text: Option<String>) -> Result<Option<String>, ApiError> {
    let text = text.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
    if text
        .as_deref()
        .is_some_and(|r| r.chars().count() > MAX_REASON || r.chars().any(char::is_control))
    {
        return Err(invalid(
            "reason",
            format!("reason must be at most {MAX_REASON} characters, without control characters"),
        ));
    }
    Ok(text)
}

/// The audit entry of `action` about `target`, with the reason when one was given.
fn audit(
    call: &Call<'_>,
    action: &str,
    target: (&str, String),
    reason: Option<String>,
) -> AuditEntry {
    let mut entry = call.audit(action, target.0, target.1);
    if let Some(r) = reason {
        entry.metadata.insert("reason", r);
    }
    entry
}

fn uuid(field: &'static str, text: Option<&str>) -> Result<Uuid, ApiError> {
    match text.map(str::trim) {
        None | Some("") => Err(invalid(field, format!("{field} is required"))),
        Some(t) => {
            Uuid::parse_str(t).map_err(|_| invalid(field, format!("{field} must be a UUID")))
        }
    }
}

/// The path's id; one that is not a UUID names nothing.
fn path_id(call: &Call<'_>, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(call.param(0)).map_err(|_| not_found(what))
}

/// The filters and page of a listing: `user_id`, `client_id`, `search` (a part of the user's
/// email), `status` (`active`, `expired`, `revoked` or `all`; `default` when absent).
fn query(call: &Call<'_>, default: Option<GrantState>) -> Result<(GrantQuery, Paging), ApiError> {
    let paging = call.paging()?;
    let user_id = match call.query_text("user_id")? {
        Some(t) => Some(uuid("user_id", Some(&t))?),
        None => None,
    };
    let state = match call.query_text("status")?.as_deref() {
        None => default,
        Some("all") => None,
        Some("active") => Some(GrantState::Active),
        Some("expired") => Some(GrantState::Expired),
        Some("revoked") => Some(GrantState::Revoked),
        Some(_) => {
            return Err(invalid(
                "status",
                "status must be active, expired, revoked or all",
            ))
        }
    };
    let query = GrantQuery {
        tenant_id: call.tenant()?.id,
        user_id,
        client_id: call.query_text("client_id")?,
        state: state.map(|s| (s, call.ctx.now)),
        email: call.query_text("search")?,
        after: None,
        offset: paging.offset(),
        limit: paging.size,
    };
    Ok((query, paging))
}

fn status(state: GrantState) -> &'static str {
    match state {
        GrantState::Active => "active",
        GrantState::Expired => "expired",
        GrantState::Revoked => "revoked",
    }
}

/// The start of the request's UTC day: what "today" counts from.
fn start_of_day(now: i64) -> i64 {
    now - now.rem_euclid(86_400)
}

fn by_client(stats: &GrantStats) -> Vec<ClientCount> {
    stats
        .by_client
        .iter()
        .map(|(client_id, count)| ClientCount {
            client_id: client_id.clone(),
            count: *count,
        })
        .collect()
}

fn revoked(count: usize, what: &str) -> RevokeResponse {
    RevokeResponse {
        revoked_count: count as u64,
        message: format!("{count} {what} revoked"),
    }
}

// ----- refresh tokens -----------------------------------------------------------------------

fn token_info(g: &RefreshGrant, now: i64) -> TokenInfo {
    TokenInfo {
        id: g.id.to_string(),
        user_id: g.user_id.to_string(),
        user_email: g.user_email.clone(),
        client_id: g.client_id.clone(),
        issued_at: rfc3339(g.issued_at),
        expires_at: rfc3339(g.expires_at),
        created_at: rfc3339(g.created_at),
        status: status(g.state(now)),
        revoked_at: g.revoked_at.map(rfc3339),
        scopes: g.scopes.clone(),
    }
}

async fn list_tokens(call: &Call<'_>) -> HandlerResult {
    let (q, paging) = query(call, Some(GrantState::Active))?;
    let store = &call.ctx.shard.app.store;
    let total_count = store
        .count_refresh_tokens(q.clone())
        .await
        .map_err(store_err)?;
    let tokens = store.list_refresh_tokens(q).await.map_err(store_err)?;
    Ok(json(
        200,
        &TokenList {
            tokens: tokens.iter().map(|g| token_info(g, call.ctx.now)).collect(),
            total_count,
            page: paging.page,
            page_size: paging.size,
        },
    ))
}

async fn token_stats(call: &Call<'_>) -> HandlerResult {
    let now = call.ctx.now;
    let stats = call
        .ctx
        .shard
        .app
        .store
        .token_stats(call.tenant()?.id, now, start_of_day(now))
        .await
        .map_err(store_err)?;
    let avg_lifetime_hours = if stats.active == 0 {
        0.0
    } else {
        let hours = stats.active_lifetime_secs as f64 / stats.active as f64 / 3600.0;
        (hours * 100.0).round() / 100.0
    };
    Ok(json(
        200,
        &TokenStats {
            total_active: stats.active,
            total_revoked: stats.revoked,
            total_expired: stats.expired,
            issued_today: stats.created_since,
            revoked_today: stats.revoked_since,
            avg_lifetime_hours,
            by_client: by_client(&stats),
        },
    ))
}

async fn find_token(call: &Call<'_>) -> Result<RefreshGrant, ApiError> {
    let id = path_id(call, "token")?;
    call.ctx
        .shard
        .app
        .store
        .get_refresh_token(call.tenant()?.id, id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("token"))
}

async fn get_token(call: &Call<'_>) -> HandlerResult {
    Ok(json(
        200,
        &token_info(&find_token(call).await?, call.ctx.now),
    ))
}

/// Revokes the families `selector` takes (those active now), audited as `audit`, and marks
/// them in the shared cache.
async fn revoke_families(
    call: &Call<'_>,
    selector: RevokeSelector,
    audit: AuditEntry,
) -> HandlerResult {
    let ids = call
        .ctx
        .shard
        .app
        .store
        .revoke_refresh_tokens(call.tenant()?.id, selector, call.ctx.now, audit)
        .await
        .map_err(store_err)?;
    mark_families(call.ctx, &ids).await;
    Ok(json(200, &revoked(ids.len(), "refresh tokens")))
}

async fn revoke_token(call: &Call<'_>) -> HandlerResult {
    let token = find_token(call).await?;
    let audit = audit(call, "token.revoke", ("token", token.id.to_string()), None);
    revoke_families(call, RevokeSelector::One(token.id), audit).await
}

/// The user a revocation names, of the path's tenant (404 otherwise).
async fn user_of(call: &Call<'_>, user_id: Option<&str>) -> Result<Uuid, ApiError> {
    let id = uuid("user_id", user_id)?;
    call.ctx
        .shard
        .app
        .store
        .find_user(call.tenant()?.id, id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("user"))?;
    Ok(id)
}

async fn revoke_tokens_of_user(call: &Call<'_>) -> HandlerResult {
    let req: RevokeByUserRequest = call.json()?;
    let reason = reason(req.reason)?;
    let user_id = user_of(call, req.user_id.as_deref()).await?;
    let audit = audit(
        call,
        "token.revoke_by_user",
        ("user", user_id.to_string()),
        reason,
    );
    revoke_families(call, RevokeSelector::User(user_id), audit).await
}

async fn revoke_tokens_of_client(call: &Call<'_>) -> HandlerResult {
    let req: RevokeByClientRequest = call.json()?;
    let reason = reason(req.reason)?;
    let client_id = match req.client_id.as_deref().map(str::trim) {
        None | Some("") => return Err(invalid("client_id", "client_id is required")),
        Some(c) if c.chars().count() > super::MAX_QUERY => {
            return Err(invalid("client_id", "client_id is too long"))
        }
        Some(c) => c.to_string(),
    };
    let tenant = call.tenant()?;
    call.ctx
        .shard
        .app
        .store
        .find_client(tenant.id, &client_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("client"))?;
    let audit = audit(
        call,
        "token.revoke_by_client",
        ("client", client_id.clone()),
        reason,
    );
    revoke_families(call, RevokeSelector::Client(client_id), audit).await
}

async fn revoke_all_tokens(call: &Call<'_>) -> HandlerResult {
    let req: RevokeRequest = call.json()?;
    let reason = reason(req.reason)?;
    let tenant = call.tenant()?.id.to_string();
    let audit = audit(call, "token.revoke_all", ("tenant", tenant), reason);
    revoke_families(call, RevokeSelector::All, audit).await
}

// ----- sessions -----------------------------------------------------------------------------

fn session_info(s: &SessionGrant, now: i64) -> SessionInfo {
    SessionInfo {
        id: s.id.to_string(),
        user_id: s.user_id.to_string(),
        user_email: s.user_email.clone(),
        client_id: s.client_id.clone(),
        status: status(s.state(now)),
        amr: s.amr.clone(),
        created_at: rfc3339(s.created_at),
        expires_at: rfc3339(s.expires_at),
        revoked_at: s.revoked_at.map(rfc3339),
    }
}

async fn list_sessions(call: &Call<'_>) -> HandlerResult {
    if call.query_text("device_type")?.is_some() {
        // Nothing is known of a session's device: no filter on it can be honoured.
        return Err(invalid(
            "device_type",
            "device types are not recorded; leave device_type out",
        ));
    }
    let (q, paging) = query(call, None)?;
    let store = &call.ctx.shard.app.store;
    let total = store.count_sessions(q.clone()).await.map_err(store_err)?;
    let sessions = store.list_sessions(q).await.map_err(store_err)?;
    Ok(json(
        200,
        &SessionList {
            sessions: sessions
                .iter()
                .map(|s| session_info(s, call.ctx.now))
                .collect(),
            total,
            page: paging.page,
            page_size: paging.size,
            total_pages: paging.pages(total),
        },
    ))
}

async fn session_stats(call: &Call<'_>) -> HandlerResult {
    let now = call.ctx.now;
    let stats = call
        .ctx
        .shard
        .app
        .store
        .session_stats(call.tenant()?.id, now, start_of_day(now))
        .await
        .map_err(store_err)?;
    Ok(json(
        200,
        &SessionStats {
            total_active: stats.active,
            total_revoked: stats.revoked,
            total_expired: stats.expired,
            created_today: stats.created_since,
            by_client: by_client(&stats),
            by_device: Vec::new(),
        },
    ))
}

async fn find_session(call: &Call<'_>) -> Result<SessionGrant, ApiError> {
    let id = path_id(call, "session")?;
    call.ctx
        .shard
        .app
        .store
        .get_session(call.tenant()?.id, id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("session"))
}

async fn get_session(call: &Call<'_>) -> HandlerResult {
    Ok(json(
        200,
        &session_info(&find_session(call).await?, call.ctx.now),
    ))
}

/// Revokes the sessions `selector` takes (those active now), audited as `audit`, and marks
/// them in the shared cache.
async fn revoke_sessions(
    call: &Call<'_>,
    selector: RevokeSelector,
    audit: AuditEntry,
) -> HandlerResult {
    let revoked_sessions = call
        .ctx
        .shard
        .app
        .store
        .revoke_sessions(call.tenant()?.id, selector, call.ctx.now, audit)
        .await
        .map_err(store_err)?;
    mark_sessions(call.ctx, &revoked_sessions).await;
    Ok(json(200, &revoked(revoked_sessions.len(), "sessions")))
}

async fn revoke_session(call: &Call<'_>) -> HandlerResult {
    let req: RevokeRequest = call.json()?;
    let reason = reason(req.reason)?;
    let session = find_session(call).await?;
    let audit = audit(
        call,
        "session.revoke",
        ("session", session.id.to_string()),
        reason,
    );
    revoke_sessions(call, RevokeSelector::One(session.id), audit).await
}

async fn revoke_sessions_of_user(call: &Call<'_>) -> HandlerResult {
    let req: RevokeByUserRequest = call.json()?;
    let reason = reason(req.reason)?;
    let user_id = user_of(call, req.user_id.as_deref()).await?;
    let audit = audit(
        call,
        "session.revoke_by_user",
        ("user", user_id.to_string()),
        reason,
    );
    revoke_sessions(call, RevokeSelector::User(user_id), audit).await
}

async fn revoke_all_sessions(call: &Call<'_>) -> HandlerResult {
    let req: RevokeRequest = call.json()?;
    let reason = reason(req.reason)?;
    let tenant = call.tenant()?.id.to_string();
    let audit = audit(call, "session.revoke_all", ("tenant", tenant), reason);
    revoke_sessions(call, RevokeSelector::All, audit).await
}
