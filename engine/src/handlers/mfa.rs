//! MFA: `/v2/mfa/totp/{enroll,verify,disable,challenge}`, `/v2/mfa/recovery/rotate`,
//! `/v2/mfa/factors`, and the `mfa_required` answer of a sign-in.
//!
//! Management routes take a Bearer access token only (never the session cookie, so no CSRF
//! question arises); their tenant is the token's. The challenge takes no credential but the
//! `mfa_token`, which names its tenant: HelloJohn's Go server wants the tenant in a header or
//! the query as well, which the SDK does not send, so here nothing else is needed.

use http::request::Parts;
use http::Request;
use hyper::body::Incoming;
use protocol::account::{
    FactorsResponse, MfaRequest, MfaRequiredResponse, RecoveryRotateResponse, TotpDisableResponse,
    TotpEnrollResponse, TotpVerifyResponse,
};
use protocol::{ApiError, ErrorCode};
use store::User;

use super::common::{self, bearer, body, cookie, denied, no_store, parse, Accept};
use super::errors;
use super::session::{csrf_cookie, session_cookie, with_challenge};
use super::{Ctx, HandlerResult};
use crate::http::{empty, json, Resp};
use auth::flows::{
    ChallengeDone, MfaPending, Outcome, Passed, Proof, SecondFactor, FRESH_MFA_SECS,
};
use auth::password::Password;

/// The remembered-device cookie: `__Host-hj-trusted` when cookies are secure (as HelloJohn
/// names it), `hj-trusted` otherwise.
pub fn trusted_cookie_name(ctx: &Ctx) -> &'static str {
    if common::secure_cookies(ctx) {
        "__Host-hj-trusted"
    } else {
        "hj-trusted"
    }
}

/// The remembered-device cookie the browser sent, if any.
pub fn trusted_device<'a>(ctx: &Ctx, parts: &'a Parts) -> Option<&'a str> {
    cookie(parts, trusted_cookie_name(ctx))
}

fn set_trusted_cookie(ctx: &Ctx, resp: &mut Resp, value: &str, max_age: u64) {
    let secure = if common::secure_cookies(ctx) {
        "; Secure"
    } else {
        ""
    };
    common::set_cookie(
        resp,
        format!(
            "{}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}",
            trusted_cookie_name(ctx)
        ),
    );
}

/// `200 {mfa_required: true, mfa_token, amr: ["pwd"], available_factors, preferred_factor}`.
pub fn mfa_required(pending: MfaPending) -> Resp {
    no_store(json(
        200,
        &MfaRequiredResponse {
            mfa_required: true,
            mfa_token: pending.mfa_token,
            amr: vec!["pwd"],
            available_factors: pending.factors,
            preferred_factor: pending.preferred,
            expires_in: pending.expires_in,
        },
    ))
}

/// The Bearer caller and their user, read from the store (not the shard's cache: these
/// changes must see the factor as it is now). The token must be a first-party client's
/// ([`common::account_client`]): a third party's token cannot manage the account.
async fn bearer_user(ctx: &Ctx, parts: &Parts) -> Result<(auth::flows::Caller, User), ApiError> {
    let unauthorized = || {
        with_challenge(ApiError::new(
            ErrorCode::Unauthorized,
            "a Bearer access token is required",
        ))
    };
    let token = bearer(parts).ok_or_else(unauthorized)?;
    let caller = ctx.bearer(token).map_err(|_| {
        ApiError::new(ErrorCode::TokenInvalid, "token is invalid or expired")
            .with("www_authenticate", "Bearer error=\"invalid_token\"")
    })?;
    common::account_client(ctx, &caller.claims).await?;
    let user_id = caller
        .claims
        .sub
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::TokenInvalid, "token is invalid or expired"))?;
    let user = ctx
        .auth()
        .store
        .get_user(user_id)
        .await
        .map_err(|e| errors::store(&e))?
        .filter(|u| !u.disabled && u.tenant_id.to_string() == caller.claims.tid)
        .ok_or_else(|| ApiError::new(ErrorCode::TokenInvalid, "token is invalid or expired"))?;
    Ok((caller, user))
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The second factor of a request: `code` (a TOTP code, or a recovery code when it is not six
/// digits: the SDK's `disableTOTP(code)` sends either) or `recovery`.
fn factor_of(r: &MfaRequest) -> Option<SecondFactor> {
    if let Some(rec) = non_empty(&r.recovery) {
        return Some(SecondFactor::Recovery(rec));
    }
    let code = non_empty(&r.code)?;
    if code
        .chars()
        .filter(|c| !c.is_whitespace())
        .all(|c| c.is_ascii_digit())
    {
        Some(SecondFactor::Code(code))
    } else {
        Some(SecondFactor::Recovery(code))
    }
}

fn proof_of(r: &MfaRequest) -> Proof {
    Proof {
        password: r
            .password
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(Password::new),
        factor: factor_of(r),
    }
}

/// `POST /v2/mfa/totp/enroll`: a new secret (unconfirmed until `verify`).
pub async fn enroll(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    let (parts, _) = body(ctx, req).await?;
    let (caller, user) = bearer_user(ctx, &parts).await?;
    match ctx
        .auth()
        .totp_enroll(&user, caller.claims.auth_time, ctx.now)
        .await
        .map_err(|e| errors::store(&e))?
    {
        Outcome::Done(e) => Ok(no_store(json(
            200,
            &TotpEnrollResponse {
                secret_base32: e.secret_base32,
                otpauth_url: e.otpauth_url,
            },
        ))),
        Outcome::Denied(d) => Ok(denied(ctx, &d, false)),
    }
}

/// `POST /v2/mfa/totp/verify {code}`: confirms enrolment; ten recovery codes, shown once.
pub async fn verify(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    let (parts, bytes) = body(ctx, req).await?;
    let (caller, user) = bearer_user(ctx, &parts).await?;
    let r: MfaRequest = parse(&parts, bytes, false, Accept::Json)?;
    let code = non_empty(&r.code).ok_or_else(|| errors::missing("code"))?;
    // The caller's own sign-in (the refresh family its token names) stays; every other ends.
    let keep = store::KeepSignIn {
        family_id: caller.claims.sid.as_deref().and_then(|s| s.parse().ok()),
        session: None,
    };
    match ctx
        .auth()
        .totp_confirm(&user, &code, keep, &ctx.origin(&parts), ctx.now)
        .await
        .map_err(|e| errors::store(&e))?
    {
        Outcome::Done(codes) => Ok(no_store(json(
            200,
            &TotpVerifyResponse {
                enabled: true,
                recovery_codes: codes,
            },
        ))),
        Outcome::Denied(d) => Ok(denied(ctx, &d, false)),
    }
}

/// `POST /v2/mfa/totp/disable {code | recovery | password}`.
pub async fn disable(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    let (parts, bytes) = body(ctx, req).await?;
    let (_, user) = bearer_user(ctx, &parts).await?;
    let r: MfaRequest = parse(&parts, bytes, true, Accept::Json)?;
    match ctx
        .auth()
        .totp_disable(&user, proof_of(&r), &ctx.origin(&parts), ctx.now)
        .await
        .map_err(|e| errors::store(&e))?
    {
        Outcome::Done(()) => Ok(no_store(json(200, &TotpDisableResponse { disabled: true }))),
        Outcome::Denied(d) => Ok(denied(ctx, &d, false)),
    }
}

/// `POST /v2/mfa/recovery/rotate [{code | recovery | password}]`: ten new codes. Without a
/// body (the SDK sends none) only an access token from an MFA sign-in of the last five
/// minutes will do.
pub async fn rotate(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    let (parts, bytes) = body(ctx, req).await?;
    let (caller, user) = bearer_user(ctx, &parts).await?;
    let r: MfaRequest = parse(&parts, bytes, true, Accept::Json)?;
    let c = &caller.claims;
    // The sign-in itself, not the token, must be recent: a refreshed token has no
    // `auth_time`, and a remembered device's sign-in has no `mfa`.
    let fresh = c.amr.iter().any(|m| m == "mfa")
        && c.auth_time.is_some_and(|t| ctx.now - t <= FRESH_MFA_SECS);
    match ctx
        .auth()
        .rotate_recovery_codes(&user, proof_of(&r), fresh, ctx.now)
        .await
        .map_err(|e| errors::store(&e))?
    {
        Outcome::Done(codes) => Ok(no_store(json(
            200,
            &RecoveryRotateResponse {
                rotated: true,
                recovery_codes: codes.clone(),
                codes,
            },
        ))),
        Outcome::Denied(d) => Ok(denied(ctx, &d, false)),
    }
}

/// `GET /v2/mfa/factors`.
pub async fn factors(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    ctx.clock.request_read();
    let (parts, _) = req.into_parts();
    let (_, user) = bearer_user(ctx, &parts).await?;
    let (available, left) = ctx
        .auth()
        .mfa_factors(&user)
        .await
        .map_err(|e| errors::store(&e))?;
    Ok(no_store(json(
        200,
        &FactorsResponse {
            preferred_factor: available.first().copied(),
            available_factors: available,
            recovery_codes_left: left,
        },
    )))
}

/// `POST /v2/mfa/totp/challenge {mfa_token, code | recovery, remember_device}`: the second
/// step of a sign-in. Tokens for a `/v2/auth/login` challenge, the session cookie (204) for a
/// `/v2/session/login` one.
pub async fn challenge(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    let result = async {
        // A challenge that ends in a cookie session finishes only for this site's pages.
        let same_site = common::same_site(ctx, req.headers()).is_ok();
        let (parts, bytes) = body(ctx, req).await?;
        ctx.limit(auth::limiter::Limit::SignIn).await?;
        let r: MfaRequest = parse(&parts, bytes, false, Accept::JsonOrForm)?;
        let token = non_empty(&r.mfa_token)
            .or_else(|| non_empty(&r.challenge_id))
            .ok_or_else(|| errors::missing("mfa_token"))?;
        let factor = factor_of(&r).ok_or_else(|| errors::missing("code"))?;
        let outcome = ctx
            .auth()
            .mfa_challenge(
                &token,
                factor,
                same_site,
                false,
                r.remember_device.unwrap_or(false),
                &ctx.origin(&parts),
                ctx.now,
            )
            .await
            .map_err(|e| errors::store(&e))?;
        Ok(match outcome {
            Outcome::Done(passed) => (passed_response(ctx, passed), "success"),
            Outcome::Denied(d) => (denied(ctx, &d, false), common::sign_in_status(&d)),
        })
    }
    .await;
    common::count_sign_in(ctx, "mfa", result)
}

fn passed_response(ctx: &Ctx, passed: Passed) -> Resp {
    let mut resp = match passed.done {
        ChallengeDone::Tokens(issued) => super::auth::tokens(issued, false),
        ChallengeDone::Session(session) => {
            let mut resp = empty(204);
            let max_age = session.max_age.as_secs();
            common::set_cookie(&mut resp, session_cookie(ctx, &session.value, max_age));
            let csrf = ctx.auth().csrf.token_for(&session.value);
            common::set_cookie(&mut resp, csrf_cookie(ctx, &csrf, Some(max_age)));
            no_store(resp)
        }
    };
    if let Some((value, ttl)) = passed.trusted_device {
        set_trusted_cookie(ctx, &mut resp, &value, ttl.as_secs());
    }
    resp
}
