//! The OAuth 2.0 / OpenID Connect endpoints of the code flow: `GET|POST /oauth2/authorize` and
//! the hosted sign-in page (`GET|POST /oauth2/login`). The token endpoint is `token.rs`.

use http::header::{HeaderValue, LOCATION};
use http::request::Parts;
use http::{Method, Request};
use hyper::body::Incoming;
use protocol::{ApiError, OAuthErrorCode};
use store::{Client, Tenant};

use super::common::{self, body, cookie, denied, no_store, sign_in_status};
use super::login_page::{self, error_page, LoginPage};
use super::{errors, Ctx, HandlerResult};
use crate::http::{empty, form_pairs, query_param, Resp};
use auth::flows::{Denial, Outcome};
use auth::limiter::Limit;
use auth::oauth::{self, AuthorizeParams, Prompt, Refusal};
use auth::password::Password;

/// Longest `return_to` the sign-in page carries (an authorize URL with its parameters).
const MAX_RETURN_TO: usize = 4096;
/// The sign-in page's CSRF cookie: random, bound to the form's token.
const LOGIN_COOKIE: &str = "hj_login";

/// Appends `pairs` to `uri`'s query string.
fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", q.finish())
}

pub(super) fn redirect(status: u16, location: &str) -> Resp {
    let mut resp = empty(status);
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(LOCATION, v);
    }
    no_store(resp)
}

/// Why the client a request names was not found: it is not there (the request's fault,
/// worded for the caller), or the store could not say (a fault: 503, never a denial).
#[derive(Debug)]
pub(super) enum Lookup {
    Unknown(&'static str),
    Unavailable(ApiError),
}

impl Lookup {
    fn store(e: &store::StoreError) -> Lookup {
        Lookup::Unavailable(errors::store(e))
    }

    /// The answer of a page (authorize, the hosted pages): a 400 error page, or a 503 page
    /// with `Retry-After`.
    pub(super) fn page(self) -> Resp {
        match self {
            Lookup::Unknown(why) => error_page(400, OAuthErrorCode::InvalidRequest, why),
            Lookup::Unavailable(e) => fault_page(&e),
        }
    }
}

/// The page of a fault (the store unavailable, or worse) on a page route: a 503 page with
/// `Retry-After` (500 for a fault a retry will not cure), never a denial and never JSON.
pub(super) fn fault_page(e: &ApiError) -> Resp {
    let (code, description) = if e.status() == 503 {
        (
            OAuthErrorCode::TemporarilyUnavailable,
            "the service is unavailable; try again in a moment",
        )
    } else {
        (
            OAuthErrorCode::ServerError,
            "something went wrong on our side",
        )
    };
    let mut resp = error_page(e.status(), code, description);
    crate::http::retry_after(&mut resp, e);
    resp
}

impl From<&'static str> for Lookup {
    fn from(why: &'static str) -> Lookup {
        Lookup::Unknown(why)
    }
}

/// The client named by `client_id`: in the tenant the request names (`tenant_id`, or the
/// `X-Tenant-*` headers), else the only client of that name in any tenant.
pub(super) async fn find_client(
    ctx: &Ctx,
    parts: &Parts,
    tenant_key: Option<String>,
    client_id: &str,
) -> Result<(Tenant, Client), Lookup> {
    if client_id.len() > 200 {
        return Err("unknown client_id".into());
    }
    let key = tenant_key.or_else(|| common::tenant_key(parts, None));
    let store = ctx.auth().store.as_ref();
    let directory = &ctx.shard.directory;
    let client = match key {
        Some(key) => {
            let tenant = common::tenant(ctx, Some(key))
                .await
                .map_err(|e| match e.code {
                    protocol::ErrorCode::Unavailable => Lookup::Unavailable(e),
                    _ => "unknown tenant".into(),
                })?;
            directory
                .client(store, tenant.id, client_id)
                .await
                .map_err(|e| Lookup::store(&e))?
                .ok_or("unknown client_id")?
        }
        None => {
            let mut named = directory
                .clients_named(store, client_id)
                .await
                .map_err(|e| Lookup::store(&e))?;
            if named.len() > 1 {
                return Err(
                    "several tenants have this client_id: name the tenant (tenant_id)".into(),
                );
            }
            named.pop().ok_or("unknown client_id")?
        }
    };
    let tenant = directory
        .tenant(store, &client.tenant_id.to_string())
        .await
        .map_err(|e| Lookup::store(&e))?
        .ok_or("unknown tenant")?;
    Ok((tenant, client))
}

/// `GET|POST /oauth2/authorize` (RFC 6749 section 4.1.1, OpenID Connect Core 3.1.2).
pub async fn authorize(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    let (parts, bytes) = body(ctx, req).await?;
    let pairs = if parts.method == Method::POST {
        form_pairs(&bytes)
    } else {
        form_pairs(parts.uri.query().unwrap_or("").as_bytes())
    };
    let params = match AuthorizeParams::from_pairs(&pairs) {
        Ok(p) => p,
        Err(name) => {
            return Ok(error_page(
                400,
                OAuthErrorCode::InvalidRequest,
                &format!("{name} is given more than once"),
            ))
        }
    };
    let Some(client_id) = params.client_id.as_deref() else {
        return Ok(error_page(
            400,
            OAuthErrorCode::InvalidRequest,
            "client_id is required",
        ));
    };
    let tenant_key = pairs
        .iter()
        .find(|(k, _)| k == "tenant_id")
        .map(|(_, v)| v.clone());
    let (tenant, client) = match find_client(ctx, &parts, tenant_key, client_id).await {
        Ok(found) => found,
        Err(e) => return Ok(e.page()),
    };
    let iss = ctx.auth().issuer_for(client.tenant_id);
    let authz = match oauth::check(&client, &params) {
        Ok(a) => a,
        Err(Refusal::Show { error, description }) => {
            return Ok(error_page(400, error, &description))
        }
        Err(Refusal::Redirect {
            redirect_uri,
            state,
            error,
            description,
        }) => {
            return Ok(redirect_error(
                &iss,
                &redirect_uri,
                state.as_deref(),
                error,
                &description,
            ))
        }
    };
    let back = |error, description: &str| {
        redirect_error(
            &iss,
            &authz.redirect_uri,
            authz.state.as_deref(),
            error,
            description,
        )
    };

    // Who is signed in here: the session cookie's user, in this client's tenant, recently
    // enough for `max_age`, and the user `id_token_hint` names, if any.
    let auth = ctx.auth();
    let session = match cookie(&parts, common::session_cookie_name(ctx)) {
        Some(sid) => match auth.session(sid, ctx.now).await {
            Ok(Outcome::Done((caller, user))) if user.tenant_id == tenant.id => {
                Some((caller.claims.iat, caller.claims.amr, user))
            }
            Ok(_) => None,
            Err(e) => return Err(errors::store(&e)),
        },
        None => None,
    };
    let hinted = match authz.id_token_hint.as_deref() {
        Some(hint) => match hint_subject(ctx, hint) {
            Some(sub) => Some(sub),
            None => {
                return Ok(back(
                    OAuthErrorCode::InvalidRequest,
                    "id_token_hint is not an ID token of ours",
                ))
            }
        },
        None => None,
    };
    let signed_in = session.filter(|(auth_time, _, user)| {
        oauth::fresh_enough(*auth_time, authz.max_age, ctx.now)
            && hinted
                .as_ref()
                .is_none_or(|sub| *sub == user.id.to_string())
    });
    match (signed_in, authz.prompt) {
        (Some((auth_time, amr, user)), prompt @ (Prompt::Default | Prompt::None)) => {
            let here = || format!("/oauth2/authorize?{}", encode_pairs(&pairs));
            if let Some(stop) =
                super::consent::gate(ctx, &client, &user, &authz, prompt, here).await?
            {
                return Ok(stop);
            }
            let code = auth
                .issue_code(&client, user.id, &authz, auth_time, &amr, ctx.now)
                .await
                .map_err(|e| errors::store(&e))?;
            let mut pairs = vec![("code", code.as_str())];
            if let Some(state) = authz.state.as_deref() {
                pairs.push(("state", state));
            }
            pairs.push(("iss", iss.as_str()));
            Ok(redirect(302, &with_query(&authz.redirect_uri, &pairs)))
        }
        (_, Prompt::None) => Ok(back(
            OAuthErrorCode::LoginRequired,
            "the user is not signed in",
        )),
        _ => {
            // To the sign-in page, which sends the browser back here. `prompt` is left out of
            // the way back, or `prompt=login` would ask again for ever; `max_age` stays, and a
            // fresh sign-in meets it.
            let back_pairs: Vec<(String, String)> =
                pairs.into_iter().filter(|(k, _)| k != "prompt").collect();
            let return_to = format!("/oauth2/authorize?{}", encode_pairs(&back_pairs));
            let login = match &ctx.shard.app.config.ui_base_url {
                Some(ui) => with_query(
                    &format!("{}/login", ui.trim_end_matches('/')),
                    &[("return_to", &format!("{}{return_to}", auth.issuer))],
                ),
                None => {
                    let mut p = vec![("return_to", return_to.as_str())];
                    if let Some(hint) = authz.login_hint.as_deref() {
                        p.push(("login_hint", hint));
                    }
                    with_query("/oauth2/login", &p)
                }
            };
            Ok(redirect(302, &login))
        }
    }
}

fn encode_pairs(pairs: &[(String, String)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    q.finish()
}

/// An error sent back to a registered redirect URI (RFC 6749 section 4.1.2.1), with `iss`
/// (RFC 9207): the client's tenant's issuer.
pub(super) fn redirect_error(
    iss: &str,
    redirect_uri: &str,
    state: Option<&str>,
    error: OAuthErrorCode,
    description: &str,
) -> Resp {
    let mut pairs = vec![
        ("error", error.as_str()),
        ("error_description", description),
    ];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    pairs.push(("iss", iss));
    redirect(302, &with_query(redirect_uri, &pairs))
}

/// The `sub` of an ID token we signed (expired or not: OpenID Connect Core 3.1.2.1 lets an
/// expired one serve as a hint), or `None` when it is not ours.
fn hint_subject(ctx: &Ctx, hint: &str) -> Option<String> {
    ctx.auth()
        .keys
        .verify_id_token_hint(hint, &ctx.auth().issuer)
        .map(|h| h.sub)
}

/// Whether `return_to` is an authorize URL of ours (a path, never another host).
pub(super) fn valid_return_to(return_to: &str) -> bool {
    return_to.len() <= MAX_RETURN_TO
        && return_to.starts_with("/oauth2/authorize?")
        && !return_to.contains(['\\', '\r', '\n'])
}

/// The client an authorize URL names.
async fn client_of_return_to(
    ctx: &Ctx,
    parts: &Parts,
    return_to: &str,
) -> Result<(Tenant, Client), Lookup> {
    let query = return_to.split_once('?').map(|(_, q)| q);
    let client_id = query_param(query, "client_id").ok_or("client_id is required")?;
    find_client(ctx, parts, query_param(query, "tenant_id"), &client_id).await
}

pub(super) fn login_cookie(ctx: &Ctx, value: &str, max_age: u64) -> String {
    let secure = if common::secure_cookies(ctx) {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{LOGIN_COOKIE}={value}; Path=/oauth2; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    )
}

/// The sign-in page with a fresh CSRF cookie and token.
pub(super) fn login_form(
    ctx: &Ctx,
    status: u16,
    tenant: &Tenant,
    client: &Client,
    return_to: &str,
    email: &str,
    error: Option<&str>,
) -> Resp {
    step_form(ctx, status, tenant, client, return_to, email, error, None)
}

/// The sign-in page, first step (`mfa_token` `None`) or second (a code for the challenge).
#[allow(clippy::too_many_arguments)]
pub(super) fn step_form(
    ctx: &Ctx,
    status: u16,
    tenant: &Tenant,
    client: &Client,
    return_to: &str,
    email: &str,
    error: Option<&str>,
    mfa_token: Option<&str>,
) -> Resp {
    let (value, _) = auth::new_opaque_token();
    let token = ctx.auth().csrf.token_for(&value);
    // Where the sign-in ends: the authorization request's redirect URI, when the client
    // registered it (otherwise the authorize step shows an error page of ours).
    let redirect_uri = query_param(return_to.split_once('?').map(|(_, q)| q), "redirect_uri")
        .filter(|u| client.redirect_uris.iter().any(|r| r == u));
    let target = redirect_uri.as_deref().and_then(login_page::csp_source_of);
    let mut resp = login_page::html_to(
        status,
        login_page::render(&LoginPage {
            tenant_name: &tenant.name,
            client_name: &client.name,
            return_to,
            csrf_token: &token,
            email,
            error,
            mfa_token,
        }),
        target.as_deref(),
    );
    common::set_cookie(&mut resp, login_cookie(ctx, &value, 3600));
    resp
}

/// `GET /oauth2/login?return_to=`: the hosted sign-in page.
pub async fn login_page(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    ctx.clock.request_read();
    let (parts, _) = req.into_parts();
    let query = parts.uri.query();
    let return_to = query_param(query, "return_to").unwrap_or_default();
    if !valid_return_to(&return_to) {
        return Ok(error_page(
            400,
            OAuthErrorCode::InvalidRequest,
            "return_to is not a sign-in request of ours",
        ));
    }
    let (tenant, client) = match client_of_return_to(ctx, &parts, &return_to).await {
        Ok(found) => found,
        Err(e) => return Ok(e.page()),
    };
    let hint = query_param(query, "login_hint").unwrap_or_default();
    let hint = if hint.len() <= oauth::MAX_PARAM_LEN {
        hint
    } else {
        String::new()
    };
    Ok(login_form(
        ctx, 200, &tenant, &client, &return_to, &hint, None,
    ))
}

/// `POST /oauth2/login`: checks the CSRF token and the password, starts the cookie session
/// (`user.login`), and sends the browser back to the authorize URL (303). A wrong password
/// shows the page again (401), with the same answer and timing for an unknown email.
pub async fn login_submit(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    if let Err(e) = common::same_site(ctx, req.headers()) {
        ctx.clock.request_read();
        return Err(e);
    }
    let (parts, bytes) = body(ctx, req).await?;
    if let Some(d) = ctx.auth().shed() {
        ctx.shard.metrics.sign_in("hosted", sign_in_status(&d));
        return Ok(denied(ctx, &d, false));
    }
    ctx.limit(Limit::SignIn).await?;
    let form = form_pairs(&bytes);
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let return_to = field("return_to");
    if !valid_return_to(return_to) {
        return Ok(error_page(
            400,
            OAuthErrorCode::InvalidRequest,
            "return_to is not a sign-in request of ours",
        ));
    }
    let bound = cookie(&parts, LOGIN_COOKIE)
        .is_some_and(|c| ctx.auth().csrf.verify(c, field("csrf_token")));
    let (tenant, client) = match client_of_return_to(ctx, &parts, return_to).await {
        Ok(found) => found,
        Err(e) => return Ok(e.page()),
    };
    let email = field("email").trim();
    if !bound {
        return Ok(login_form(
            ctx,
            403,
            &tenant,
            &client,
            return_to,
            email,
            Some("This form expired. Please sign in again."),
        ));
    }
    let mfa_token = field("mfa_token");
    if !mfa_token.is_empty() {
        return super::login_mfa::mfa_step(
            ctx,
            &parts,
            &tenant,
            &client,
            return_to,
            mfa_token,
            field("code"),
        )
        .await;
    }
    let password = field("password");
    if email.is_empty() || password.is_empty() || email.len() > auth::flows::MAX_EMAIL_BYTES {
        return Ok(login_form(
            ctx,
            400,
            &tenant,
            &client,
            return_to,
            email
                .get(..auth::flows::MAX_EMAIL_BYTES.min(email.len()))
                .unwrap_or(""),
            Some("Enter your email and password."),
        ));
    }
    let outcome = ctx
        .auth()
        .session_login(
            &tenant,
            &client,
            email,
            Password::new(password),
            None,
            true,
            &ctx.origin(&parts),
            ctx.now,
        )
        .await
        .map_err(|e| errors::store(&e))?;
    match outcome {
        Outcome::Done(auth::flows::SignIn::MfaRequired(pending)) => {
            ctx.shard.metrics.sign_in("hosted", "mfa_required");
            Ok(step_form(
                ctx,
                200,
                &tenant,
                &client,
                return_to,
                email,
                None,
                Some(&pending.mfa_token),
            ))
        }
        Outcome::Done(auth::flows::SignIn::Done(session)) => {
            ctx.shard.metrics.sign_in("hosted", "success");
            let mut resp = redirect(303, return_to);
            common::set_cookie(
                &mut resp,
                super::session::session_cookie(ctx, &session.value, session.max_age.as_secs()),
            );
            common::set_cookie(&mut resp, login_cookie(ctx, "", 0));
            Ok(resp)
        }
        Outcome::Denied(d @ (Denial::InvalidCredentials | Denial::InvalidEmail)) => {
            ctx.shard.metrics.sign_in("hosted", sign_in_status(&d));
            Ok(login_form(
                ctx,
                401,
                &tenant,
                &client,
                return_to,
                email,
                Some("Invalid email or password."),
            ))
        }
        Outcome::Denied(d) => {
            ctx.shard.metrics.sign_in("hosted", sign_in_status(&d));
            Ok(denied(ctx, &d, false))
        }
    }
}
