//! The email flows: `POST /v2/auth/verify-email/start`, `GET /v2/auth/verify-email?token=`,
//! `POST /v2/auth/forgot`, `GET|POST /v2/auth/reset`.
//!
//! No enumeration: a start by email address (`forgot`, `verify-email/start` without a token)
//! answers before any lookup, the same answer whether the address has an account or not; the
//! lookup, the token and the mail (written together in one transaction) happen after, in a
//! task of this shard. A store fault there is logged, never reported.

use http::header::{HeaderValue, LOCATION};
use http::request::Parts;
use http::Request;
use hyper::body::Incoming;
use protocol::account::{EmailStartRequest, ResetRequest, StatusResponse};
use protocol::{ApiError, ErrorCode};

use super::common::{self, bearer, body, denied, no_store, parse, required, Accept};
use super::errors;
use super::login_page::{escape, html};
use super::{Ctx, HandlerResult};
use crate::http::{empty, form_pairs, json, query_param, Resp};
use auth::flows::{registered_redirect, Outcome};
use auth::limiter::Limit;
use auth::password::Password;
use auth::ports::MailKind;

/// Longest token accepted from a link (ours are 43 characters).
const MAX_TOKEN_LEN: usize = 128;

/// The client's redirect URI named by the request, when one is named: it must be registered.
fn checked_redirect(
    client: &store::Client,
    uri: &Option<String>,
) -> Result<Option<String>, ApiError> {
    match uri.as_deref().filter(|u| !u.is_empty()) {
        None => Ok(None),
        Some(u) if registered_redirect(client, u) => Ok(Some(u.to_string())),
        Some(_) => Err(ApiError::new(
            ErrorCode::BadRequest,
            "redirect_uri is not registered for this client",
        )
        .with_field("redirect_uri")),
    }
}

/// Starts `kind` for `email` after this request has been answered.
fn start_later(
    ctx: &Ctx,
    tenant: store::Tenant,
    client: store::Client,
    email: String,
    kind: MailKind,
    redirect_uri: Option<String>,
) {
    let auth = ctx.shard.app.auth.clone();
    let (now, now_ms) = (ctx.now, crate::unix_now_ms());
    tokio::task::spawn_local(async move {
        if let Err(e) = auth
            .start_by_email(&tenant, &client, &email, kind, redirect_uri, now, now_ms)
            .await
        {
            tracing::warn!(error = %e, kind = kind.as_str(), "email flow not started");
        }
    });
}

/// The tenant and client of an unauthenticated start, and its checked redirect URI.
async fn start_input(
    ctx: &Ctx,
    parts: &Parts,
    r: &EmailStartRequest,
) -> Result<(store::Tenant, store::Client, Option<String>), ApiError> {
    let client_id = required(&r.client_id, "client_id")?;
    let key = r.tenant_id.as_deref().or(r.tenant.as_deref());
    let tenant = common::tenant(ctx, common::tenant_key(parts, key)).await?;
    let client = common::client(ctx, &tenant, client_id).await?;
    let redirect = checked_redirect(&client, &r.redirect_uri)?;
    Ok((tenant, client, redirect))
}

/// `POST /v2/auth/forgot {tenant_id, client_id, email, redirect_uri?}`: 200
/// `{"status":"ok"}` whether or not the address has an account.
pub async fn forgot(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    let (parts, bytes) = body(ctx, req).await?;
    ctx.limit(Limit::SignUp).await?;
    let r: EmailStartRequest = parse(&parts, bytes, false, Accept::JsonOrForm)?;
    let email = required(&r.email, "email")?.to_string();
    let (tenant, client, redirect) = start_input(ctx, &parts, &r).await?;
    start_later(
        ctx,
        tenant,
        client,
        email,
        MailKind::PasswordReset,
        redirect,
    );
    Ok(no_store(json(200, &StatusResponse { status: "ok" })))
}

/// `POST /v2/auth/verify-email/start`: 204. With a Bearer token, the link goes to the token's
/// user; otherwise to `email`, if it has an unverified account (the answer is the same).
pub async fn verify_start(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    let (parts, bytes) = body(ctx, req).await?;
    ctx.limit(Limit::SignUp).await?;
    let r: EmailStartRequest = parse(&parts, bytes, true, Accept::JsonOrForm)?;
    if let Some(token) = bearer(&parts) {
        let caller = ctx.bearer(token).map_err(|_| {
            ApiError::new(ErrorCode::TokenInvalid, "token is invalid or expired")
                .with("www_authenticate", "Bearer error=\"invalid_token\"")
        })?;
        let c = &caller.claims;
        let tenant = common::tenant(ctx, Some(c.tid.clone())).await?;
        let client = common::client(ctx, &tenant, &c.aud).await?;
        let redirect = checked_redirect(&client, &r.redirect_uri)?;
        let user = c.sub.parse().ok().map(|id| ctx.auth().store.get_user(id));
        let user = match user {
            Some(f) => f.await.map_err(|e| errors::store(&e))?,
            None => None,
        }
        .ok_or_else(|| ApiError::new(ErrorCode::TokenInvalid, "token is invalid or expired"))?;
        ctx.auth()
            .start_email_verification(
                &tenant,
                &client,
                &user,
                redirect,
                ctx.now,
                crate::unix_now_ms(),
            )
            .await
            .map_err(|e| errors::store(&e))?;
        return Ok(no_store(empty(204)));
    }
    let email = required(&r.email, "email")?.to_string();
    let (tenant, client, redirect) = start_input(ctx, &parts, &r).await?;
    start_later(ctx, tenant, client, email, MailKind::VerifyEmail, redirect);
    Ok(no_store(empty(204)))
}

fn link_token(parts: &Parts) -> Result<String, ApiError> {
    query_param(parts.uri.query(), "token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| errors::missing("token"))
        .and_then(|t| {
            if t.len() <= MAX_TOKEN_LEN {
                Ok(t)
            } else {
                Err(errors::denial(&auth::flows::Denial::EmailTokenInvalid))
            }
        })
}

/// `uri` with `status=<status>` added to its query.
fn with_status(uri: &str, status: &str) -> String {
    let (base, fragment) = match uri.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (uri, None),
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    let mut out = format!("{base}{sep}status={status}");
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

fn see_other(status: u16, location: &str) -> Resp {
    let mut resp = empty(status);
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(LOCATION, v);
    }
    no_store(resp)
}

/// `GET /v2/auth/verify-email?token=`: verifies the address, once; 302 to the redirect URI
/// the flow started with (`status=verified`), else 200 `{"status":"verified"}`.
pub async fn verify(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    ctx.clock.request_read();
    let (parts, _) = req.into_parts();
    let token = link_token(&parts)?;
    match ctx
        .auth()
        .verify_email(&token, &ctx.origin(&parts), ctx.now)
        .await
        .map_err(|e| errors::store(&e))?
    {
        Outcome::Done(v) => Ok(match v.redirect_uri {
            Some(uri) => see_other(302, &with_status(&uri, "verified")),
            None => no_store(json(200, &StatusResponse { status: "verified" })),
        }),
        Outcome::Denied(d) => Ok(denied(ctx, &d, false)),
    }
}

const PAGE_STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0}\
main{max-width:22rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;\
box-shadow:0 1px 4px rgba(0,0,0,.15)}h1{font-size:1.3rem}label{display:block;margin:.8rem 0 .3rem;\
font-weight:600}input[type=password]{width:100%;box-sizing:border-box;padding:.6rem;\
border:1px solid #bbb;border-radius:4px;font-size:1rem}button{margin-top:1.4rem;width:100%;\
padding:.7rem;border:0;border-radius:4px;background:#2457d6;color:#fff;font-size:1rem}\
p.error{background:#fdecea;color:#8a1c12;padding:.6rem;border-radius:4px}";

fn page(title: &str, inner: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{title}</title><style>{PAGE_STYLE}</style></head><body><main><h1>{title}</h1>{inner}\
</main></body></html>\n",
        title = escape(title),
    )
}

fn reset_form(status: u16, token: &str, error: Option<&str>) -> Resp {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    html(
        status,
        page(
            "Choose a new password",
            &format!(
                "{error}<form method=\"post\" action=\"/v2/auth/reset\">\
<input type=\"hidden\" name=\"token\" value=\"{token}\">\
<label for=\"password\">New password</label>\
<input id=\"password\" name=\"new_password\" type=\"password\" autocomplete=\"new-password\" required>\
<button type=\"submit\">Set password</button></form>",
                token = escape(token),
            ),
        ),
    )
}

/// `GET /v2/auth/reset?token=`: the page the reset mail links to (plain HTML, no script): a
/// form that posts the new password with the token. Showing it uses nothing up, so a mail
/// scanner that follows links changes nothing.
pub async fn reset_page(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    ctx.clock.request_read();
    let (parts, _) = req.into_parts();
    let token = link_token(&parts)?;
    let live = ctx
        .auth()
        .reset_token_live(&token, ctx.now)
        .await
        .map_err(|e| errors::store(&e))?;
    Ok(if live {
        reset_form(200, &token, None)
    } else {
        html(
            400,
            page(
                "This link has expired",
                "<p>Reset links work once and for a limited time. Ask for a new one.</p>",
            ),
        )
    })
}

/// `POST /v2/auth/reset {token, new_password}` (JSON: 204; the page's form: a page, or the
/// redirect URI the flow started with, `status=reset`). Every refresh token and session of
/// the user is revoked.
pub async fn reset(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    let (parts, bytes) = body(ctx, req).await?;
    if let Some(d) = ctx.auth().shed() {
        return Ok(denied(ctx, &d, false));
    }
    ctx.limit(Limit::SignIn).await?;
    let from_page = common::is_form(&parts);
    let r: ResetRequest = if from_page {
        let pairs = form_pairs(&bytes);
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        ResetRequest {
            token: get("token"),
            new_password: get("new_password"),
            ..ResetRequest::default()
        }
    } else {
        parse(&parts, bytes, false, Accept::Json)?
    };
    let token = required(&r.token, "token")?.to_string();
    let password = r
        .new_password
        .as_deref()
        .or(r.password.as_deref())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| errors::missing("new_password"))?;
    if token.len() > MAX_TOKEN_LEN {
        return Ok(denied(ctx, &auth::flows::Denial::EmailTokenInvalid, false));
    }
    let outcome = ctx
        .auth()
        .reset_password(
            &token,
            Password::new(password),
            &ctx.origin(&parts),
            ctx.now,
        )
        .await
        .map_err(|e| errors::store(&e))?;
    Ok(match (outcome, from_page) {
        (Outcome::Done(_), false) => no_store(empty(204)),
        (Outcome::Done(v), true) => match v.redirect_uri {
            Some(uri) => see_other(303, &with_status(&uri, "reset")),
            None => html(
                200,
                page(
                    "Password changed",
                    "<p>Your password was changed and you were signed out everywhere. \
                     Sign in again with the new password.</p>",
                ),
            ),
        },
        (Outcome::Denied(auth::flows::Denial::WeakPassword(v)), true) => {
            reset_form(400, &token, Some(&v.message()))
        }
        (Outcome::Denied(auth::flows::Denial::EmailTokenInvalid), true) => html(
            400,
            page(
                "This link has expired",
                "<p>Reset links work once and for a limited time. Ask for a new one.</p>",
            ),
        ),
        (Outcome::Denied(d), _) => denied(ctx, &d, false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_joins_the_query() {
        assert_eq!(
            with_status("https://app.example/done", "verified"),
            "https://app.example/done?status=verified"
        );
        assert_eq!(
            with_status("https://app.example/done?x=1#top", "reset"),
            "https://app.example/done?x=1&status=reset#top"
        );
    }
}
