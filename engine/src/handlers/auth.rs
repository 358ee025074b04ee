//! Registration, sign-in, refresh (both routes) and sign-out.

use http::Request;
use hyper::body::Incoming;
use protocol::auth::{
    LogoutRequest, LogoutResponse, PendingVerification, RefreshRequest, RegisterRequest,
    TokenResponse,
};
use protocol::{ApiError, ErrorCode};

use super::common::{
    self, bearer, body, cookie, denied, no_store, parse, required, sign_in_status, Accept, SignIn,
};
use super::errors;
use super::{Ctx, HandlerResult};
use crate::http::{empty, json};
use auth::flows::{ClientAuth, Issued, Outcome, Registered, Registration, TokenOwner};
use auth::limiter::Limit;
use auth::password::Password;
use protocol::token::AccessClaims;

pub(super) fn tokens(issued: Issued, with_user: bool) -> crate::http::Resp {
    no_store(json(
        200,
        &TokenResponse {
            user_id: with_user.then(|| issued.user.id.to_string()),
            access_token: issued.access_token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            refresh_token: issued.refresh_token,
        },
    ))
}

pub async fn register(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    let (parts, bytes) = body(ctx, req).await?;
    // A full hash pool refuses before the limit is counted or anything parsed (see `SignIn`).
    if let Some(d) = ctx.auth().shed() {
        return Ok(denied(ctx, &d, false));
    }
    ctx.limit(Limit::SignUp).await?;
    let r: RegisterRequest = parse(&parts, bytes, false, Accept::Json)?;
    let client_id = required(&r.client_id, "client_id")?;
    let email = required(&r.email, "email")?;
    let password = r
        .password
        .as_deref()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| errors::missing("password"))?;
    let user_metadata = protocol::metadata::user_metadata(r.custom_fields, r.user_metadata)?;
    if let Some(name) = &r.name {
        protocol::metadata::check_name(name)?;
    }
    let tenant = common::tenant(ctx, common::tenant_key(&parts, r.tenant_id.as_deref())).await?;
    let client = common::client(ctx, &tenant, client_id).await?;
    common::password_client(&parts, &client, r.client_secret.as_deref())?;
    let auth = ctx.auth();
    match auth
        .register(
            &tenant,
            &client,
            Registration {
                email: email.to_string(),
                password: Password::new(password),
                name: r.name,
                custom_fields: store::Metadata::from_json(user_metadata),
            },
            &ctx.origin(&parts),
            ctx.now,
        )
        .await
        .map_err(|e| errors::store(&e))?
    {
        Outcome::Done(Registered::Tokens(issued)) => Ok(tokens(issued, true)),
        Outcome::Done(Registered::PendingVerification(user)) => {
            // No tokens until the address is verified: the link goes out now (the account
            // exists either way; a failed send is retried by asking for a new link).
            if let Err(e) = auth
                .start_email_verification(
                    &tenant,
                    &client,
                    &user,
                    None,
                    ctx.now,
                    crate::unix_now_ms(),
                )
                .await
            {
                tracing::warn!(error = %e, "verification mail of a new account not queued");
            }
            Ok(no_store(json(
                200,
                &PendingVerification {
                    user_id: user.id.to_string(),
                    email_verification_required: true,
                },
            )))
        }
        Outcome::Denied(d) => Ok(denied(ctx, &d, false)),
    }
}

pub async fn login(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    let result = async {
        let input = match common::sign_in_input(ctx, req, Accept::JsonOrForm).await? {
            SignIn::Input(input) => *input,
            SignIn::Shed(d) => return Ok((denied(ctx, &d, false), sign_in_status(&d))),
            SignIn::Admin(parts, email, password) => {
                let (resp, status) =
                    crate::admin::console_sign_in(ctx, &parts, &email, password).await?;
                return Ok((no_store(resp), status));
            }
        };
        let origin = ctx.origin(&input.parts);
        let outcome = ctx
            .auth()
            .login(
                &input.tenant,
                &input.client,
                &input.email,
                input.password,
                super::mfa::trusted_device(ctx, &input.parts),
                &origin,
                ctx.now,
            )
            .await
            .map_err(|e| errors::store(&e))?;
        Ok(match outcome {
            Outcome::Done(auth::flows::SignIn::Done(issued)) => (tokens(issued, false), "success"),
            Outcome::Done(auth::flows::SignIn::MfaRequired(pending)) => {
                (super::mfa::mfa_required(pending), "mfa_required")
            }
            Outcome::Denied(d) => (denied(ctx, &d, false), sign_in_status(&d)),
        })
    }
    .await;
    common::count_sign_in(ctx, "password", result)
}

pub async fn refresh(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    let (parts, bytes) = body(ctx, req).await?;
    ctx.limit(Limit::Token)
        .await
        .inspect_err(|_| ctx.shard.metrics.sign_in("refresh", "rate_limited"))?;
    let r: RefreshRequest = parse(&parts, bytes, false, Accept::Json)?;
    let blank = |v: &Option<String>| v.as_deref().is_none_or(|v| v.trim().is_empty());
    if blank(&r.client_id) && blank(&r.tenant_id) && common::tenant_key(&parts, None).is_none() {
        // An admin's refresh token (HelloJohn's console refreshes here, with no client).
        let token = required(&r.refresh_token, "refresh_token")?;
        return crate::admin::console_refresh(ctx, &parts, token).await;
    }
    let client_id = required(&r.client_id, "client_id")?;
    let token = required(&r.refresh_token, "refresh_token")?;
    let tenant = match common::tenant_key(&parts, r.tenant_id.as_deref()) {
        Some(key) => Some(common::tenant(ctx, Some(key)).await?),
        None => None,
    };
    let known = common::refresh_client(ctx, tenant.as_ref(), client_id).await?;
    let outcome = ctx
        .auth()
        .refresh(
            ClientAuth {
                client_id,
                secret: r.client_secret.as_deref().filter(|s| !s.is_empty()),
            },
            known.as_ref(),
            token,
            tenant.as_ref(),
            &ctx.origin(&parts),
            ctx.now,
        )
        .await
        .map_err(|e| errors::store(&e))?;
    Ok(match outcome {
        Outcome::Done(issued) => {
            ctx.shard.metrics.sign_in("refresh", "success");
            tokens(issued, false)
        }
        Outcome::Denied(d) => {
            ctx.shard.metrics.sign_in("refresh", sign_in_status(&d));
            denied(ctx, &d, false)
        }
    })
}

/// `POST /v2/auth/logout`: revokes the refresh family and the cookie session, then answers 200
/// with the `post_logout_redirect_uri` when the client registered it, else 204.
///
/// The caller proves who they are with a Bearer access token, or with the session cookie and
/// its CSRF token in `X-CSRF-Token` (bound to the session: see [`CsrfKey`]). A refresh token
/// in the body is revoked only when it was issued to that caller: the Bearer's user, tenant
/// and client, or the cookie session's user and tenant. Limited per client IP before any
/// store work, since each sign-out is a write.
///
/// [`CsrfKey`]: auth::CsrfKey
pub async fn logout(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    let (parts, bytes) = body(ctx, req).await?;
    common::same_site(ctx, &parts.headers)?;
    ctx.limit(Limit::Logout).await?;
    let r: LogoutRequest = parse(&parts, bytes, true, Accept::Json)?;
    let auth = ctx.auth();
    let sid_name = common::session_cookie_name(ctx);
    let session_cookie = cookie(&parts, sid_name).map(str::to_string);
    let refresh_token = r.refresh_token.as_deref().filter(|t| !t.is_empty());
    let owner = match bearer(&parts) {
        Some(token) => {
            let caller = ctx.bearer(token).map_err(|_| {
                ApiError::new(ErrorCode::TokenInvalid, "token is invalid or expired")
            })?;
            Some(owner_of(&caller.claims, Some(caller.claims.aud.clone()))?)
        }
        None => {
            let header = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .map(str::trim);
            let bound = matches!(
                (session_cookie.as_deref(), header),
                (Some(sid), Some(token)) if auth.csrf.verify(sid, token)
            );
            if !bound {
                return Err(ApiError::new(
                    ErrorCode::CsrfTokenInvalid,
                    "missing or mismatched CSRF token",
                ));
            }
            match (refresh_token, session_cookie.as_deref()) {
                // The session's user owns the refresh token, if any: it must still be live.
                (Some(_), Some(sid)) => match auth
                    .session(sid, ctx.now)
                    .await
                    .map_err(|e| errors::store(&e))?
                {
                    Outcome::Done((caller, _)) => Some(owner_of(&caller.claims, None)?),
                    Outcome::Denied(d) => return Err(errors::denial(&d)),
                },
                _ => None,
            }
        }
    };
    // The caller is known. The redirect is judged only after everything is revoked (below),
    // but its client is read now: a store fault is then a 503 before anything is signed out,
    // never a sign-out without the registered way back.
    let redirect = post_logout_redirect(ctx, &parts, &r).await?;
    if let (Some(token), Some(owner)) = (refresh_token, &owner) {
        let outcome = auth
            .revoke_refresh(token, owner, &ctx.origin(&parts), ctx.now)
            .await
            .map_err(|e| errors::store(&e))?;
        if let Outcome::Denied(d) = outcome {
            return Err(errors::denial(&d));
        }
    }
    if let Some(sid) = &session_cookie {
        auth.end_session(sid, &ctx.origin(&parts), ctx.now)
            .await
            .map_err(|e| errors::store(&e))?;
    }
    // Only now, with everything revoked, is the redirect judged: an unregistered URI means no
    // redirect, never no sign-out (OpenID Connect RP-Initiated Logout 1.0, section 3).
    let mut resp = match redirect {
        Some(uri) => json(
            200,
            &LogoutResponse {
                post_logout_redirect_uri: uri,
            },
        ),
        None => empty(204),
    };
    if session_cookie.is_some() {
        common::set_cookie(&mut resp, super::session::clear_session_cookie(ctx));
        common::set_cookie(&mut resp, super::session::clear_csrf_cookie(ctx));
    }
    Ok(no_store(resp))
}

/// The `post_logout_redirect_uri` of a sign-out, when it is registered for the named client
/// (exact match); `None` otherwise: no URI, no or an unknown client or tenant, or a URI the
/// client does not list. The sign-out is done either way. A store fault is an error (503),
/// not "no client".
async fn post_logout_redirect(
    ctx: &Ctx,
    parts: &http::request::Parts,
    r: &LogoutRequest,
) -> Result<Option<String>, ApiError> {
    let (Some(uri), Some(client_id)) = (
        r.post_logout_redirect_uri
            .as_deref()
            .filter(|u| !u.is_empty()),
        r.client_id.as_deref().filter(|c| !c.is_empty()),
    ) else {
        return Ok(None);
    };
    let fault = |e: ApiError| match e.code {
        ErrorCode::Unavailable | ErrorCode::Internal => Err(e),
        _ => Ok(None),
    };
    let tenant = match common::tenant(ctx, common::tenant_key(parts, r.tenant_id.as_deref())).await
    {
        Ok(t) => t,
        Err(e) => return fault(e),
    };
    let client = match common::client(ctx, &tenant, client_id).await {
        Ok(c) => c,
        Err(e) => return fault(e),
    };
    let registered = client.post_logout_redirect_uris.iter().any(|u| u == uri);
    if !registered {
        tracing::debug!(
            client_id,
            "post_logout_redirect_uri is not registered for the client: signed out without a redirect"
        );
    }
    Ok(registered.then(|| uri.to_string()))
}

/// The owner of the tokens a caller may revoke: the user and tenant of its claims.
fn owner_of(claims: &AccessClaims, client_id: Option<String>) -> Result<TokenOwner, ApiError> {
    let invalid = || ApiError::new(ErrorCode::TokenInvalid, "token is invalid or expired");
    Ok(TokenOwner {
        user_id: claims.sub.parse().map_err(|_| invalid())?,
        tenant_id: claims.tid.parse().map_err(|_| invalid())?,
        client_id,
    })
}

/// `POST /v2/auth/logout-all`: revokes every session and refresh family of the Bearer's user.
pub async fn logout_all(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    let (parts, _bytes) = body(ctx, req).await?;
    ctx.limit(Limit::Logout).await?;
    let token = bearer(&parts).ok_or_else(|| {
        ApiError::new(ErrorCode::Unauthorized, "a Bearer access token is required")
    })?;
    let caller = ctx
        .bearer(token)
        .map_err(|_| ApiError::new(ErrorCode::TokenInvalid, "token is invalid or expired"))?;
    common::account_client(ctx, &caller.claims).await?;
    let user_id = caller
        .claims
        .sub
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::TokenInvalid, "token is invalid or expired"))?;
    let tenant_id = caller.claims.tid.parse().ok();
    ctx.auth()
        .logout_all(user_id, tenant_id, &ctx.origin(&parts), ctx.now)
        .await
        .map_err(|e| errors::store(&e))?;
    Ok(no_store(empty(204)))
}
