//! Cookie sessions, CSRF, and the endpoints that describe the caller (`/v2/me`, `/userinfo`).

use std::time::Instant;

use http::header::HeaderValue;
use http::request::Parts;
use http::Request;
use hyper::body::Incoming;
use protocol::auth::{
    CompleteProfileRequest, CompleteProfileResponse, CsrfResponse, MeResponse, UserInfoResponse,
};
use protocol::token::AccessClaims;
use protocol::{ApiError, ErrorCode};
use store::User;
use uuid::Uuid;

use super::common::{self, bearer, body, cookie, denied, no_store, sign_in_status};
use super::errors;
use super::{Ctx, HandlerResult};
use crate::http::{empty, json};
use auth::flows::{Caller, Denial, Outcome};
use auth::tokens::new_csrf_token;

fn secure_attr(ctx: &Ctx) -> &'static str {
    if common::secure_cookies(ctx) {
        "; Secure"
    } else {
        ""
    }
}

/// The session cookie: HttpOnly, `SameSite=Lax`, host-bound (`__Host-sid`) when secure.
pub fn session_cookie(ctx: &Ctx, value: &str, max_age: u64) -> String {
    format!(
        "{}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        common::session_cookie_name(ctx),
        secure_attr(ctx)
    )
}

pub fn clear_session_cookie(ctx: &Ctx) -> String {
    format!(
        "{}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}",
        common::session_cookie_name(ctx),
        secure_attr(ctx)
    )
}

/// The CSRF cookie's name: `__Host-csrf` when cookies are secure (bound to this host and path
/// `/`, so a sibling subdomain cannot plant one), else `csrf_token`.
pub fn csrf_cookie_name(ctx: &Ctx) -> &'static str {
    if common::secure_cookies(ctx) {
        "__Host-csrf"
    } else {
        "csrf_token"
    }
}

/// The CSRF cookie: readable by the page's script (not HttpOnly), which echoes it in
/// `X-CSRF-Token`.
pub(super) fn csrf_cookie(ctx: &Ctx, token: &str, max_age: Option<u64>) -> String {
    let max_age = max_age
        .map(|s| format!("; Max-Age={s}"))
        .unwrap_or_default();
    format!(
        "{}={token}; Path=/{max_age}; SameSite=Lax{}",
        csrf_cookie_name(ctx),
        secure_attr(ctx)
    )
}

pub fn clear_csrf_cookie(ctx: &Ctx) -> String {
    csrf_cookie(ctx, "", Some(0))
}

/// `POST /v2/session/login`: 204 with the session cookie.
pub async fn login(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    let result = async {
        // A cookie set by a request another site made would sign the browser in as whoever
        // that site chose (login CSRF).
        // Refused before the body is read or the sign-in limit is counted.
        if let Err(e) = common::same_site(ctx, req.headers()) {
            ctx.clock.request_read();
            return Err(e);
        }
        let input = match common::sign_in_input(ctx, req, common::Accept::Json).await? {
            common::SignIn::Input(input) => *input,
            common::SignIn::Shed(d) => return Ok((denied(ctx, &d, false), sign_in_status(&d))),
            common::SignIn::Admin(..) => return Err(errors::missing("client_id")),
        };
        let origin = ctx.origin(&input.parts);
        let outcome = ctx
            .auth()
            .session_login(
                &input.tenant,
                &input.client,
                &input.email,
                input.password,
                super::mfa::trusted_device(ctx, &input.parts),
                false,
                &origin,
                ctx.now,
            )
            .await
            .map_err(|e| errors::store(&e))?;
        Ok(match outcome {
            Outcome::Done(auth::flows::SignIn::MfaRequired(pending)) => {
                (super::mfa::mfa_required(pending), "mfa_required")
            }
            Outcome::Done(auth::flows::SignIn::Done(session)) => {
                let mut resp = empty(204);
                let max_age = session.max_age.as_secs();
                common::set_cookie(&mut resp, session_cookie(ctx, &session.value, max_age));
                // The new session's CSRF token, so the page can sign out without asking.
                let csrf = ctx.auth().csrf.token_for(&session.value);
                common::set_cookie(&mut resp, csrf_cookie(ctx, &csrf, Some(max_age)));
                (no_store(resp), "success")
            }
            Outcome::Denied(d) => (denied(ctx, &d, false), sign_in_status(&d)),
        })
    }
    .await;
    common::count_sign_in(ctx, "session", result)
}

/// `GET /v2/csrf`: a token in the body and in a cookie, for the double-submit check. With a
/// session cookie the token is that session's (the only kind a cookie sign-out accepts);
/// without one it is random and binds nothing.
pub async fn csrf(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    ctx.clock.request_read();
    let (parts, _) = req.into_parts();
    let token = match cookie(&parts, common::session_cookie_name(ctx)) {
        Some(sid) => ctx.auth().csrf.token_for(sid),
        None => new_csrf_token(),
    };
    let mut resp = json(
        200,
        &CsrfResponse {
            csrf_token: token.clone(),
        },
    );
    common::set_cookie(&mut resp, csrf_cookie(ctx, &token, None));
    Ok(no_store(resp))
}

fn token_invalid() -> ApiError {
    ApiError::new(ErrorCode::TokenInvalid, "token is invalid or expired")
}

/// The user `claims` speak for, as stored now: read through the shard's user cache, so at
/// most [`USER_TTL`](auth::token_cache::USER_TTL) old. `None` when the claims name no user,
/// a disabled user, a user of another tenant, or a tenant that does not exist (any more): a
/// valid signature alone does not keep a token working after its user or tenant is gone.
async fn current_user(ctx: &Ctx, claims: &AccessClaims) -> Result<Option<User>, ApiError> {
    let (Ok(user_id), Ok(tenant_id)) = (claims.sub.parse::<Uuid>(), claims.tid.parse::<Uuid>())
    else {
        return Ok(None);
    };
    let cache = &ctx.shard.users;
    let started = Instant::now();
    let user = match cache.get(user_id, started) {
        Some(user) => user,
        None => {
            let user = ctx
                .auth()
                .store
                .get_user(user_id)
                .await
                .map_err(|e| errors::store(&e))?;
            cache.insert(user_id, user.clone(), started);
            user
        }
    };
    let Some(user) = user.filter(|u| !u.disabled && u.tenant_id == tenant_id) else {
        return Ok(None);
    };
    // Users go with their tenant (the schema cascades), so this only matters for a store that
    // does not; through the shard's directory it costs no database read.
    let tenant = ctx
        .shard
        .directory
        .tenant(ctx.auth().store.as_ref(), &claims.tid)
        .await
        .map_err(|e| errors::store(&e))?;
    Ok(tenant.filter(|t| t.id == tenant_id).map(|_| user))
}

/// The caller of a request and their user as stored now: a Bearer token wins; else the
/// session cookie. A token or session whose user is disabled, gone, or of another tenant is
/// refused like an invalid one (`TOKEN_INVALID`, `SESSION_EXPIRED`).
pub(super) async fn caller(ctx: &Ctx, parts: &Parts) -> Result<(Caller, User), ApiError> {
    let auth = ctx.auth();
    if let Some(token) = bearer(parts) {
        let caller = ctx.bearer(token).map_err(|_| token_invalid())?;
        let user = current_user(ctx, &caller.claims)
            .await?
            .ok_or_else(token_invalid)?;
        return Ok((caller, user));
    }
    if let Some(sid) = cookie(parts, common::session_cookie_name(ctx)) {
        return match auth
            .session(sid, ctx.now)
            .await
            .map_err(|e| errors::store(&e))?
        {
            // The session's user may come from the shared cache (up to minutes old): the
            // shard's user cache decides, as for a Bearer token.
            Outcome::Done((caller, _)) => match current_user(ctx, &caller.claims).await? {
                Some(user) => Ok((caller, user)),
                None => Err(errors::denial(&Denial::SessionExpired)),
            },
            Outcome::Denied(d) => Err(errors::denial(&d)),
        };
    }
    Err(ApiError::new(
        ErrorCode::Unauthorized,
        "a Bearer access token or a session cookie is required",
    ))
}

pub(super) fn with_challenge(mut e: ApiError) -> ApiError {
    if e.code == ErrorCode::Unauthorized {
        e = e.with("www_authenticate", "Bearer");
    }
    e
}

/// `GET /v2/me`: the claims of the caller's token, and the user's own metadata.
pub async fn me(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    ctx.clock.request_read();
    let (parts, _) = req.into_parts();
    if let Some(token) = bearer(&parts).filter(|t| auth::tokens::is_admin_typ(t)) {
        // An admin's token (HelloJohn's console asks `/v2/me` right after its sign-in).
        return crate::admin::console_me(ctx, token)
            .await
            .map_err(with_challenge);
    }
    let (caller, user) = caller(ctx, &parts).await.map_err(with_challenge)?;
    let c = caller.claims;
    Ok(no_store(json(
        200,
        &MeResponse {
            sub: c.sub,
            tid: c.tid,
            aud: c.aud,
            amr: c.amr,
            custom: c.custom,
            user_metadata: user.custom_fields.into_json(),
            exp: c.exp,
            iat: c.iat,
            iss: c.iss,
            scp: c.scp,
        },
    )))
}

/// `GET|POST /userinfo`: the caller's profile.
///
/// The claims follow the token's scopes (OpenID Connect Core 5.4): `sub` always, `email` and
/// `email_verified` with `email`, the profile with `profile`; a token without scopes (a
/// cookie session's) gets everything. The token may also come in a form body as
/// `access_token` (RFC 6750 section 2.2).
pub async fn userinfo(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    let (mut parts, bytes) = body(ctx, req).await?;
    if bearer(&parts).is_none() {
        let form_token = crate::http::form_pairs(&bytes)
            .into_iter()
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v);
        if let Some(v) = form_token.and_then(|t| HeaderValue::from_str(&format!("Bearer {t}")).ok())
        {
            parts.headers.insert(http::header::AUTHORIZATION, v);
        }
    }
    let (caller, user) = caller(ctx, &parts).await.map_err(with_challenge)?;
    let all = caller.claims.scp.is_empty();
    let has = |s: &str| all || caller.claims.scopes().any(|g| g == s);
    let (email, profile) = (has("email"), has("profile"));
    Ok(no_store(json(
        200,
        &UserInfoResponse {
            sub: user.id.to_string(),
            email: email.then(|| user.email.clone()),
            email_verified: email.then_some(user.email_verified),
            name: if profile { user.name.clone() } else { None },
            tenant_id: profile.then(|| user.tenant_id.to_string()),
            user_metadata: profile.then(|| user.custom_fields.as_json().clone()),
            custom_fields: profile.then(|| user.custom_fields.as_json().clone()),
            app_metadata: profile.then(|| user.app_metadata.as_json().clone()),
            created_at: profile.then_some(user.created_at),
            updated_at: None,
        },
    )))
}

/// `POST /v2/auth/complete-profile` (Bearer or session cookie): merges `custom_fields` (an
/// object of scalars, see [`protocol::metadata::profile_patch`]) into the caller's own
/// metadata, key by key, in one statement. 400 when the result would pass the metadata size
/// limit.
pub async fn complete_profile(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    let (parts, bytes) = body(ctx, req).await?;
    common::same_site(ctx, &parts.headers)?;
    let (caller, user) = caller(ctx, &parts).await.map_err(with_challenge)?;
    if bearer(&parts).is_some() {
        // A third party's token may read the profile (`/v2/me`), never write it.
        common::account_client(ctx, &caller.claims).await?;
    }
    let r: CompleteProfileRequest = common::parse(&parts, bytes, false, common::Accept::Json)?;
    let patch = protocol::metadata::profile_patch(r.custom_fields)?;
    let merged = ctx
        .auth()
        .store
        .merge_user_metadata(
            user.id,
            store::Metadata::from_json(patch),
            protocol::metadata::MAX_METADATA_BYTES,
        )
        .await
        .map_err(|e| errors::store(&e))?;
    let Some(user) = merged else {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "custom_fields would make the user metadata larger than allowed",
        )
        .with_field("custom_fields"));
    };
    // This shard sees the change at once; the others when their cached copy expires.
    ctx.shard
        .users
        .insert(user.id, Some(user.clone()), Instant::now());
    Ok(no_store(json(
        200,
        &CompleteProfileResponse {
            user_id: user.id.to_string(),
            custom_fields: user.custom_fields.into_json(),
        },
    )))
}
