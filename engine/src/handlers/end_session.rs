//! `GET|POST /oauth2/logout`: OpenID Connect RP-Initiated Logout 1.0, the discovery
//! document's `end_session_endpoint`. The browser comes here from the app; the server's
//! sign-in session (the cookie the hosted page set) ends, and the browser goes back to the
//! app's `post_logout_redirect_uri` when the client registered it.
//!
//! A sign-out request from a page of another site must not sign the browser out (logout
//! CSRF): with a valid `id_token_hint` naming the browser's user the request speaks for the
//! app and is done at once; without one, the user confirms on a page of ours, whose form is
//! bound to a cookie like the sign-in page's.

use http::request::Parts;
use http::{Method, Request};
use hyper::body::Incoming;
use protocol::OAuthErrorCode;
use store::Client;

use super::common::{self, body, cookie};
use super::login_page::{self, escape};
use super::oauth::{find_client, Lookup};
use super::{errors, Ctx, HandlerResult};
use crate::http::{empty, form_pairs, Resp};

const LOGOUT_COOKIE: &str = "hj_logout";

fn param(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty() && v.len() <= 4096)
}

fn done_page(status: u16) -> Resp {
    login_page::html(
        status,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Signed out</title>\
</head><body><main><h1>You are signed out</h1></main></body></html>\n"
            .to_string(),
    )
}

/// The registered `post_logout_redirect_uri` with `state`, or `None`.
fn back_to(client: Option<&Client>, uri: Option<&str>, state: Option<&str>) -> Option<String> {
    let (client, uri) = (client?, uri?);
    if !client.post_logout_redirect_uris.iter().any(|u| u == uri) {
        return None;
    }
    let mut q = form_urlencoded::Serializer::new(String::new());
    if let Some(state) = state {
        q.append_pair("state", state);
    }
    let query = q.finish();
    Some(match (query.is_empty(), uri.contains('?')) {
        (true, _) => uri.to_string(),
        (false, true) => format!("{uri}&{query}"),
        (false, false) => format!("{uri}?{query}"),
    })
}

/// The client a sign-out names, `None` when there is no such client (the sign-out is done
/// anyway, with no redirect); a store fault is the 503 page, before anything is signed out,
/// since a sign-out without its registered way back would strand the user.
async fn named_client(ctx: &Ctx, parts: &Parts, client_id: &str) -> Result<Option<Client>, Resp> {
    match find_client(ctx, parts, None, client_id).await {
        Ok((_, c)) => Ok(Some(c)),
        Err(Lookup::Unknown(_)) => Ok(None),
        Err(e @ Lookup::Unavailable(_)) => Err(e.page()),
    }
}

fn redirect_or_page(ctx: &Ctx, to: Option<String>) -> Resp {
    let mut resp = match to.and_then(|t| http::HeaderValue::from_str(&t).ok()) {
        Some(location) => {
            let mut r = empty(302);
            r.headers_mut().insert(http::header::LOCATION, location);
            common::no_store(r)
        }
        None => done_page(200),
    };
    common::set_cookie(&mut resp, super::session::clear_session_cookie(ctx));
    resp
}

/// Ends the browser's session, if it has one.
async fn end_browser_session(ctx: &Ctx, parts: &Parts) -> Result<(), protocol::ApiError> {
    if let Some(sid) = cookie(parts, common::session_cookie_name(ctx)) {
        ctx.auth()
            .end_session(sid, &ctx.origin(parts), ctx.now)
            .await
            .map_err(|e| errors::store(&e))?;
    }
    Ok(())
}

pub async fn logout(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    let (parts, bytes) = body(ctx, req).await?;
    let pairs = if parts.method == Method::POST {
        form_pairs(&bytes)
    } else {
        form_pairs(parts.uri.query().unwrap_or("").as_bytes())
    };
    let uri = param(&pairs, "post_logout_redirect_uri");
    let state = param(&pairs, "state");
    let auth = ctx.auth();

    // The confirmation page's own post.
    if parts.method == Method::POST && param(&pairs, "confirm").is_some() {
        common::same_site(ctx, &parts.headers)?;
        let bound = cookie(&parts, LOGOUT_COOKIE)
            .is_some_and(|c| param(&pairs, "csrf_token").is_some_and(|t| auth.csrf.verify(c, &t)));
        if !bound {
            return Ok(login_page::error_page(
                403,
                OAuthErrorCode::InvalidRequest,
                "this sign-out form expired; start again from the app",
            ));
        }
        let client = match param(&pairs, "client_id") {
            Some(id) => match named_client(ctx, &parts, &id).await {
                Ok(c) => c,
                Err(page) => return Ok(page),
            },
            None => None,
        };
        end_browser_session(ctx, &parts).await?;
        return Ok(redirect_or_page(
            ctx,
            back_to(client.as_ref(), uri.as_deref(), state.as_deref()),
        ));
    }

    let hint = param(&pairs, "id_token_hint")
        .and_then(|h| auth.keys.verify_id_token_hint(&h, &auth.issuer));
    let client_id = param(&pairs, "client_id").or_else(|| hint.as_ref().map(|h| h.aud.clone()));
    if let (Some(named), Some(h)) = (param(&pairs, "client_id"), hint.as_ref()) {
        if named != h.aud {
            return Ok(login_page::error_page(
                400,
                OAuthErrorCode::InvalidRequest,
                "client_id is not the client of id_token_hint",
            ));
        }
    }
    let client = match &client_id {
        Some(id) => match named_client(ctx, &parts, id).await {
            Ok(c) => c,
            Err(page) => return Ok(page),
        },
        None => None,
    };
    // With a hint naming the browser's user (or a browser with no session), sign out now.
    if let Some(h) = &hint {
        let same_user = match cookie(&parts, common::session_cookie_name(ctx)) {
            Some(sid) => match auth.session(sid, ctx.now).await {
                Ok(auth::flows::Outcome::Done((caller, _))) => caller.claims.sub == h.sub,
                Ok(_) => true,
                Err(e) => return Err(errors::store(&e)),
            },
            None => true,
        };
        if same_user {
            end_browser_session(ctx, &parts).await?;
            return Ok(redirect_or_page(
                ctx,
                back_to(client.as_ref(), uri.as_deref(), state.as_deref()),
            ));
        }
    }
    // Otherwise ask.
    let (value, _) = auth::new_opaque_token();
    let token = auth.csrf.token_for(&value);
    let hidden = |name: &str, v: Option<&str>| {
        v.map(|v| {
            format!(
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                escape(v)
            )
        })
        .unwrap_or_default()
    };
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign out</title>\
</head><body><main><h1>Sign out{}?</h1><form method=\"post\" action=\"/oauth2/logout\">\
<input type=\"hidden\" name=\"confirm\" value=\"1\">{}{}{}{}\
<button type=\"submit\">Sign out</button></form></main></body></html>\n",
        client
            .as_ref()
            .map(|c| format!(" of {}", escape(&c.name)))
            .unwrap_or_default(),
        hidden("csrf_token", Some(&token)),
        hidden("client_id", client.as_ref().map(|c| c.client_id.as_str())),
        hidden("post_logout_redirect_uri", uri.as_deref()),
        hidden("state", state.as_deref()),
    );
    let target = back_to(client.as_ref(), uri.as_deref(), None)
        .as_deref()
        .and_then(login_page::csp_source_of);
    let mut resp = login_page::html_to(200, page, target.as_deref());
    let secure = if common::secure_cookies(ctx) {
        "; Secure"
    } else {
        ""
    };
    common::set_cookie(
        &mut resp,
        format!(
            "{LOGOUT_COOKIE}={value}; Path=/oauth2; Max-Age=600; HttpOnly; SameSite=Lax{secure}"
        ),
    );
    Ok(resp)
}
