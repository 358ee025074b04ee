//! Helpers shared by the auth handlers: bodies, tenants and clients, credentials, cookies.

use http::header::{
    HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, COOKIE, PRAGMA, RETRY_AFTER,
};
use http::request::Parts;
use http::Request;
use hyper::body::Incoming;
use protocol::auth::LoginRequest;
use protocol::{ApiError, ErrorCode};
use serde::de::DeserializeOwned;
use store::{Client, Tenant};

use super::errors;
use super::Ctx;
use crate::http::{form_pairs, query_param, read_body, Resp};
use auth::flows::Denial;
use auth::limiter::Limit;
use auth::password::Password;

/// Reads the body and marks the request as read (its read deadline stops).
pub async fn body(ctx: &Ctx, req: Request<Incoming>) -> Result<(Parts, Vec<u8>), ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = read_body(body, &parts.headers, ctx.shard.app.config.max_body_bytes).await;
    ctx.clock.request_read();
    Ok((parts, bytes?))
}

/// The body formats a route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// `application/json` only.
    Json,
    /// `application/json` or `application/x-www-form-urlencoded` (password sign-in).
    JsonOrForm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    Json,
    Form,
    Other,
}

/// Whether the body is a form (`application/x-www-form-urlencoded`): a page of ours posted it.
pub fn is_form(parts: &Parts) -> bool {
    matches!(media(parts), Media::Form)
}

/// The media type of the body, parameters (`; charset=utf-8`) ignored.
fn media(parts: &Parts) -> Media {
    let Some(value) = parts.headers.get(CONTENT_TYPE) else {
        return Media::Other;
    };
    let Ok(value) = value.to_str() else {
        return Media::Other;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Media::Json
    } else if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Media::Form
    } else {
        Media::Other
    }
}

/// Parses a JSON body, or (where `accept` allows) a form body into the same type (every field
/// a string). Any other content type is 415 `UNSUPPORTED_MEDIA_TYPE`: a browser can send
/// `text/plain` or a form from any site without a CORS preflight, so a JSON route that read
/// those would take requests no page of ours made.
pub fn parse<T: DeserializeOwned + Default>(
    parts: &Parts,
    body: Vec<u8>,
    allow_empty: bool,
    accept: Accept,
) -> Result<T, ApiError> {
    if allow_empty && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    match (media(parts), accept) {
        // Every body is an object: a derived `Deserialize` also takes an array of a struct's
        // fields in order (`["acme","web","a@b.c","pw"]`), a shape no client of ours sends.
        (Media::Json, _) if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') => Err(
            ApiError::new(ErrorCode::InvalidJson, "the body must be a JSON object"),
        ),
        (Media::Json, _) => protocol::json::from_body(body),
        (Media::Form, Accept::JsonOrForm) => protocol::json::from_form(form_pairs(&body)),
        (_, Accept::Json) => Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "the body must be application/json",
        )),
        (_, Accept::JsonOrForm) => Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "the body must be application/json or application/x-www-form-urlencoded",
        )),
    }
}

/// Refuses a browser request sent from another site (see [`super::cors::cross_site`]): routes
/// that set a cookie or act on one call this before anything else.
pub fn same_site(ctx: &Ctx, headers: &http::HeaderMap) -> Result<(), ApiError> {
    let config = &ctx.shard.app.config;
    let allowed = super::cors::Allowed {
        configured: &config.cors_origins,
        clients: &ctx.shard.app.client_origins,
    };
    if super::cors::cross_site(&config.base_url, &allowed, headers) {
        return Err(ApiError::new(
            ErrorCode::CrossSiteRequest,
            "cross-site requests may not sign in or out with cookies",
        ));
    }
    Ok(())
}

pub fn required<'a>(value: &'a Option<String>, field: &'static str) -> Result<&'a str, ApiError> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(errors::missing(field)),
    }
}

/// The tenant named by the body, else `X-Tenant-ID`, `X-Tenant-Slug`, else `?tenant_id`.
pub fn tenant_key(parts: &Parts, body_value: Option<&str>) -> Option<String> {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    body_value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .or_else(|| header("x-tenant-id"))
        .or_else(|| header("x-tenant-slug"))
        .or_else(|| query_param(parts.uri.query(), "tenant_id").filter(|v| !v.is_empty()))
}

pub async fn tenant(ctx: &Ctx, key: Option<String>) -> Result<Tenant, ApiError> {
    let key = key.ok_or_else(|| errors::missing("tenant_id"))?;
    if key.len() > 200 {
        return Err(unknown("tenant_id", "unknown tenant"));
    }
    match ctx
        .shard
        .directory
        .tenant(ctx.auth().store.as_ref(), &key)
        .await
    {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(unknown("tenant_id", "unknown tenant")),
        Err(e) => Err(errors::store(&e)),
    }
}

pub async fn client(ctx: &Ctx, tenant: &Tenant, client_id: &str) -> Result<Client, ApiError> {
    if client_id.len() > 200 {
        return Err(unknown("client_id", "unknown client"));
    }
    match ctx
        .shard
        .directory
        .client(ctx.auth().store.as_ref(), tenant.id, client_id)
        .await
    {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(unknown("client_id", "unknown client for this tenant")),
        Err(e) => Err(errors::store(&e)),
    }
}

/// The client a refresh names, as the shard's directory knows it, when it knows exactly one:
/// the client of `tenant` when the request names one, else the only client of that name in
/// any tenant. `None` (unknown, or several) lets the flow read the token first
/// (`Auth::refresh`); so does a client the directory has stale, on a failed authentication.
pub async fn refresh_client(
    ctx: &Ctx,
    tenant: Option<&Tenant>,
    client_id: &str,
) -> Result<Option<Client>, ApiError> {
    if client_id.len() > 200 {
        return Ok(None);
    }
    let (store, directory) = (ctx.auth().store.as_ref(), &ctx.shard.directory);
    let found = match tenant {
        Some(t) => directory.client(store, t.id, client_id).await,
        None => directory
            .clients_named(store, client_id)
            .await
            .map(|mut named| match named.len() {
                1 => named.pop(),
                _ => None,
            }),
    };
    found.map_err(|e| errors::store(&e))
}

fn unknown(field: &'static str, message: &str) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, message).with_field(field)
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The value of a cookie.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// Marks a response as not cacheable (it carries tokens).
pub fn no_store(mut resp: Resp) -> Resp {
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// An error response for a denial, with `Retry-After` when the pool is full. A rate-limit
/// denial is noted on the request, for its headers and metrics.
pub fn denied(ctx: &Ctx, d: &Denial, oauth: bool) -> Resp {
    if let Denial::RateLimited { limit, decision } = d {
        ctx.note_limit(*limit, *decision);
    }
    let mut resp = crate::http::error(&errors::denial(d), oauth);
    if let Denial::Overloaded { retry_after } = d {
        let secs = retry_after.as_secs().max(1);
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(RETRY_AFTER, v);
        }
    }
    resp
}

/// The sign-in metric label of a denial.
pub fn sign_in_status(d: &Denial) -> &'static str {
    match d {
        Denial::Overloaded { .. } => "overloaded",
        Denial::RateLimited { .. } => "rate_limited",
        Denial::InvalidCredentials
        | Denial::TokenInvalid
        | Denial::TokenReuse
        | Denial::SessionExpired
        | Denial::InvalidMfaCode
        | Denial::MfaTokenInvalid => "invalid_credentials",
        Denial::EmailNotVerified => "email_not_verified",
        _ => "bad_request",
    }
}

/// What both password sign-in routes read, in order: the body, (whether the hash pool has room,)
/// the client IP's sign-in limit, the fields, the tenant and the client.
pub struct SignInInput {
    pub parts: Parts,
    pub tenant: Tenant,
    pub client: Client,
    pub email: String,
    pub password: Password,
}

/// A sign-in's input, or its refusal for a full hash pool: decided as soon as the body is read,
/// before the client IP's limit is counted (with Redis, a round trip) and before anything is
/// parsed or looked up, so that a refusal costs no store, Redis or parsing work.
pub enum SignIn {
    Input(Box<SignInInput>),
    Shed(Denial),
    /// `/v2/auth/login` with neither a tenant nor a client: an admin account's sign-in, as
    /// HelloJohn's admin console sends it (`tenant_id` and `client_id` empty).
    Admin(Box<Parts>, String, Password),
}

pub async fn sign_in_input(
    ctx: &Ctx,
    req: Request<Incoming>,
    accept: Accept,
) -> Result<SignIn, ApiError> {
    let (parts, bytes) = body(ctx, req).await?;
    if let Some(d) = ctx.auth().shed() {
        return Ok(SignIn::Shed(d));
    }
    ctx.limit(Limit::SignIn).await?;
    let r: LoginRequest = parse(&parts, bytes, false, accept)?;
    let blank = |v: &Option<String>| v.as_deref().is_none_or(|v| v.trim().is_empty());
    if ctx.route == crate::router::Route::Login
        && blank(&r.client_id)
        && blank(&r.tenant_id)
        && tenant_key(&parts, None).is_none()
    {
        let email = required(&r.email, "email")?.to_string();
        let password = r
            .password
            .as_deref()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| errors::missing("password"))?;
        return Ok(SignIn::Admin(
            Box::new(parts),
            email,
            Password::new(password),
        ));
    }
    let client_id = required(&r.client_id, "client_id")?;
    let email = required(&r.email, "email")?.to_string();
    let password = r
        .password
        .as_deref()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| errors::missing("password"))?;
    let password = Password::new(password);
    let tenant = tenant(ctx, tenant_key(&parts, r.tenant_id.as_deref())).await?;
    let client = client(ctx, &tenant, client_id).await?;
    password_client(&parts, &client, r.client_secret.as_deref())?;
    Ok(SignIn::Input(Box::new(SignInInput {
        parts,
        tenant,
        client,
        email,
        password,
    })))
}

/// Whether `client` may sign a user in with a password here ([`auth::policy::password_sign_in`]):
/// a confidential client authenticates with `client_secret` in the body or HTTP Basic.
/// Checked before anything is hashed.
pub fn password_client(
    parts: &Parts,
    client: &Client,
    body_secret: Option<&str>,
) -> Result<(), ApiError> {
    let basic = basic_secret(parts, &client.client_id);
    let secret = body_secret.filter(|s| !s.is_empty()).or(basic.as_deref());
    auth::policy::password_sign_in(client, secret).map_err(|d| errors::denial(&d))
}

/// The secret of an `Authorization: Basic` header naming `client_id`.
fn basic_secret(parts: &Parts, client_id: &str) -> Option<String> {
    let (id, secret) = basic_credentials(parts.headers.get(AUTHORIZATION)?)?;
    (id == client_id).then_some(secret)
}

/// The client id and secret of an `Authorization: Basic` header value (RFC 6749 section
/// 2.3.1: both parts form-urlencoded); `None` when it is not one.
pub fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    use base64::Engine as _;
    let b64 = value.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let decode = |s: &str| {
        form_pairs(format!("x={s}").as_bytes())
            .pop()
            .map(|(_, v)| v)
            .unwrap_or_default()
    };
    Some((decode(id), decode(secret)))
}

/// Whether the token whose claims these are may manage the user's account: its audience is a
/// first-party user client of its tenant ([`auth::policy::manages_account`]). Machine tokens,
/// third-party clients' tokens and tokens of a deleted client get 403 `FIRST_PARTY_REQUIRED`.
pub async fn account_client(
    ctx: &Ctx,
    claims: &protocol::token::AccessClaims,
) -> Result<Client, ApiError> {
    let refused = || errors::denial(&Denial::FirstPartyRequired);
    let tenant_id: uuid::Uuid = claims.tid.parse().map_err(|_| refused())?;
    if claims.aud.len() > 200 {
        return Err(refused());
    }
    let client = ctx
        .shard
        .directory
        .client(ctx.auth().store.as_ref(), tenant_id, &claims.aud)
        .await
        .map_err(|e| errors::store(&e))?
        .ok_or_else(refused)?;
    if !auth::policy::manages_account(&client) {
        return Err(refused());
    }
    Ok(client)
}

/// Counts a sign-in attempt in `hellojohn_auth_sign_ins_total{method,status}` and returns its
/// response. `result` carries the status label of a handled outcome.
pub fn count_sign_in(
    ctx: &Ctx,
    method: &str,
    result: Result<(Resp, &'static str), ApiError>,
) -> Result<Resp, ApiError> {
    let status = match &result {
        Ok((_, s)) => *s,
        Err(e) => error_status(e),
    };
    ctx.shard.metrics.sign_in(method, status);
    result.map(|(r, _)| r)
}

pub fn error_status(e: &ApiError) -> &'static str {
    match e.code {
        ErrorCode::Unavailable | ErrorCode::Internal => "error",
        ErrorCode::RateLimitExceeded => "rate_limited",
        ErrorCode::Overloaded => "overloaded",
        _ => "bad_request",
    }
}

/// Whether cookies must be `Secure` (the public URL is https).
pub fn secure_cookies(ctx: &Ctx) -> bool {
    ctx.shard.app.config.base_url.starts_with("https://")
}

/// The session cookie's name: `__Host-sid` when secure (bound to the host, path `/`).
pub fn session_cookie_name(ctx: &Ctx) -> &'static str {
    if secure_cookies(ctx) {
        "__Host-sid"
    } else {
        "sid"
    }
}

pub fn set_cookie(resp: &mut Resp, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().append(http::header::SET_COOKIE, v);
    }
}
