//! The consent screen of third-party clients (`GET|POST /oauth2/consent`): the first time a
//! user authorizes a third-party client for a set of scopes, the hosted page asks; the answer
//! is stored per user and client (`consents`), so the authorize endpoint asks again only for
//! scopes not granted before. First-party clients never ask.
//!
//! The page needs the browser's session cookie; its form carries a CSRF token bound to that
//! cookie and is refused from other sites, so no other page can consent for the user.

use http::request::Parts;
use http::{Method, Request};
use hyper::body::Incoming;
use protocol::OAuthErrorCode;
use store::{Client, Consent, Tenant, User};

use super::common::{self, body, cookie};
use super::login_page::{self, error_page, escape};
use super::{errors, Ctx, HandlerResult};
use crate::http::{form_pairs, query_param, Resp};
use auth::flows::Outcome;
use auth::oauth::{self, Authorization, AuthorizeParams, Prompt};

/// Whether `user` must consent before `client` gets a code for `authz`: a third-party client
/// asking for a scope the user has not granted it.
async fn needed(
    ctx: &Ctx,
    client: &Client,
    user: &User,
    authz: &Authorization,
) -> Result<bool, protocol::ApiError> {
    if !client.third_party {
        return Ok(false);
    }
    let granted = ctx
        .auth()
        .store
        .find_consent(user.id, &client.client_id)
        .await
        .map_err(|e| errors::store(&e))?
        .unwrap_or_default();
    Ok(authz.scopes.iter().any(|s| !granted.contains(s)))
}

/// The client's policy at the authorize endpoint, for a signed-in `user`: `Some` answer when
/// no code may be issued yet. A client that requires a verified email gets `access_denied` for
/// a user whose address is not; a third-party client the user has not consented to sends the
/// browser to the consent page (`return_to` gives the authorize URL to come back to), or
/// answers `consent_required` to `prompt=none`.
pub async fn gate(
    ctx: &Ctx,
    client: &Client,
    user: &User,
    authz: &Authorization,
    prompt: Prompt,
    return_to: impl FnOnce() -> String,
) -> Result<Option<Resp>, protocol::ApiError> {
    let back = |error: OAuthErrorCode, description: &str| {
        super::oauth::redirect_error(
            &ctx.auth().issuer_for(client.tenant_id),
            &authz.redirect_uri,
            authz.state.as_deref(),
            error,
            description,
        )
    };
    if !auth::policy::email_ok(client, user) {
        return Ok(Some(back(
            OAuthErrorCode::AccessDenied,
            "the email address of this account is not verified",
        )));
    }
    if !needed(ctx, client, user, authz).await? {
        return Ok(None);
    }
    if prompt == Prompt::None {
        return Ok(Some(back(
            OAuthErrorCode::ConsentRequired,
            "the user has not consented",
        )));
    }
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("return_to", &return_to());
    Ok(Some(super::oauth::redirect(
        302,
        &format!("/oauth2/consent?{}", q.finish()),
    )))
}

/// What a consent request is about: the signed-in user, and the authorization request its
/// `return_to` (an authorize URL of ours) makes.
struct Asked {
    session: String,
    user: User,
    tenant: Tenant,
    client: Client,
    authz: Authorization,
    return_to: String,
}

async fn asked(ctx: &Ctx, parts: &Parts, return_to: &str) -> Result<Asked, Resp> {
    let bad = |why: &str| error_page(400, OAuthErrorCode::InvalidRequest, why);
    if !super::oauth::valid_return_to(return_to) {
        return Err(bad("return_to is not a sign-in request of ours"));
    }
    let query = return_to.split_once('?').map(|(_, q)| q).unwrap_or("");
    let pairs = form_pairs(query.as_bytes());
    let params = AuthorizeParams::from_pairs(&pairs).map_err(|_| bad("a parameter repeats"))?;
    let client_id = params.client_id.clone().unwrap_or_default();
    let (tenant, client) = super::oauth::find_client(
        ctx,
        parts,
        query_param(Some(query), "tenant_id"),
        &client_id,
    )
    .await
    .map_err(super::oauth::Lookup::page)?;
    let authz = oauth::check(&client, &params).map_err(|_| bad("the request is not valid"))?;
    let Some(sid) = cookie(parts, common::session_cookie_name(ctx)) else {
        return Err(bad("sign in first"));
    };
    let user = match ctx.auth().session(sid, ctx.now).await {
        Ok(Outcome::Done((_, user))) if user.tenant_id == tenant.id => user,
        Ok(_) => return Err(bad("sign in first")),
        Err(e) => return Err(super::oauth::Lookup::Unavailable(errors::store(&e)).page()),
    };
    Ok(Asked {
        session: sid.to_string(),
        user,
        tenant,
        client,
        authz,
        return_to: return_to.to_string(),
    })
}

fn render(ctx: &Ctx, a: &Asked) -> Resp {
    let csrf = ctx.auth().csrf.token_for(&a.session);
    let scopes: String = a
        .authz
        .scopes
        .iter()
        .map(|s| format!("<li>{}</li>", escape(s)))
        .collect();
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>Allow {client}?</title></head><body><main>\
<h1>Allow {client} to access your {tenant} account?</h1>\
<p>Signed in as {email}. {client} asks for:</p><ul>{scopes}</ul>\
<form method=\"post\" action=\"/oauth2/consent\">\
<input type=\"hidden\" name=\"return_to\" value=\"{return_to}\">\
<input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
<button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button> \
<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\
</form></main></body></html>\n",
        client = escape(&a.client.name),
        tenant = escape(&a.tenant.name),
        email = escape(&a.user.email),
        return_to = escape(&a.return_to),
        csrf = escape(&csrf),
    );
    let target = login_page::csp_source_of(&a.authz.redirect_uri);
    login_page::html_to(200, body, target.as_deref())
}

/// `GET|POST /oauth2/consent`.
pub async fn consent(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    if req.method() == Method::POST {
        if let Err(e) = common::same_site(ctx, req.headers()) {
            ctx.clock.request_read();
            return Err(e);
        }
    }
    let (parts, bytes) = body(ctx, req).await?;
    if parts.method != Method::POST {
        let return_to = query_param(parts.uri.query(), "return_to").unwrap_or_default();
        return Ok(match asked(ctx, &parts, &return_to).await {
            Ok(a) => render(ctx, &a),
            Err(resp) => resp,
        });
    }
    let form = form_pairs(&bytes);
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let a = match asked(ctx, &parts, field("return_to")).await {
        Ok(a) => a,
        Err(resp) => return Ok(resp),
    };
    if !ctx.auth().csrf.verify(&a.session, field("csrf_token")) {
        return Ok(error_page(
            403,
            OAuthErrorCode::InvalidRequest,
            "this form expired; start again",
        ));
    }
    if field("decision") != "allow" {
        return Ok(super::oauth::redirect_error(
            &ctx.auth().issuer_for(a.client.tenant_id),
            &a.authz.redirect_uri,
            a.authz.state.as_deref(),
            OAuthErrorCode::AccessDenied,
            "the user denied the request",
        ));
    }
    let store = &ctx.auth().store;
    let mut scopes = store
        .find_consent(a.user.id, &a.client.client_id)
        .await
        .map_err(|e| errors::store(&e))?
        .unwrap_or_default();
    scopes.extend(a.authz.scopes.iter().cloned());
    scopes.sort();
    scopes.dedup();
    store
        .put_consent(Consent {
            user_id: a.user.id,
            tenant_id: a.tenant.id,
            client_id: a.client.client_id.clone(),
            scopes,
            granted_at: ctx.now,
        })
        .await
        .map_err(|e| errors::store(&e))?;
    Ok(super::oauth::redirect(303, &a.return_to))
}
