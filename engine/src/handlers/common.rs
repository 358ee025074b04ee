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
use storage::{Client, Tenant};

use super::errors;
use super::Ctx;
use crate::auth::flows::Denial;
use crate::auth::password::Password;
use crate::http::{form_pairs, query_param, read_body, Resp};
use crate::limiter::Limit;

/// Reads the body and marks the request as read (its read deadline stops).
pub async fn body(ctx: &Ctx, req: Request<Incoming>) -> Result<(Parts, Vec<u8>), ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = read_body(body, &parts.headers, ctx.shard.app.config.max_body_bytes).await;
    ctx.clock.request_read();
    Ok((parts, bytes?))
}

pub fn is_form(parts: &Parts) -> bool {
    parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

/// Parses a JSON body, or a form body into the same type (every field a string).
pub fn parse<T: DeserializeOwned + Default>(
    parts: &Parts,
    body: Vec<u8>,
    allow_empty: bool,
) -> Result<T, ApiError> {
    if allow_empty && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    if is_form(parts) {
        let map: serde_json::Map<String, serde_json::Value> = form_pairs(&body)
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        return serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|_| ApiError::new(ErrorCode::BadRequest, "form fields are not valid"));
    }
    protocol::json::from_body(body)
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

fn unknown(field: &'static str, message: &str) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, message).with_detail(serde_json::json!({ "field": field }))
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
        | Denial::SessionExpired => "invalid_credentials",
        _ => "bad_request",
    }
}

/// The sign-in metric label of a failed request.
/// What both password sign-in routes read, in order: the body, the client IP's sign-in limit,
/// the fields, the tenant and the client.
pub struct SignInInput {
    pub parts: Parts,
    pub tenant: Tenant,
    pub client: Client,
    pub email: String,
    pub password: Password,
}

pub async fn sign_in_input(ctx: &Ctx, req: Request<Incoming>) -> Result<SignInInput, ApiError> {
    let (parts, bytes) = body(ctx, req).await?;
    ctx.limit(Limit::SignIn).await?;
    let r: LoginRequest = parse(&parts, bytes, false)?;
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
    Ok(SignInInput {
        parts,
        tenant,
        client,
        email,
        password,
    })
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
