//! The request pipeline: route, call the handler under the write timeout, then record metrics
//! and the access log. Handlers are grouped by resource in submodules.

mod account;
mod auth;
mod client_lookup;
pub(crate) mod common;
mod consent;
mod cors;
mod end_session;
mod errors;
mod login_mfa;
mod login_page;
mod mfa;
mod oauth;
mod oidc;
mod public;
mod revoke;
mod session;
mod system;
mod token;

use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::time::Instant;

use futures_util::FutureExt as _;
use http::header::{HeaderName, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use protocol::{ApiError, ErrorCode};

use crate::app::Shard;
use crate::conn::ConnClock;
use crate::http::{error, Resp};
use crate::metrics::{method_index, METHODS};
use crate::router::Route;
use ::auth::limiter::{Decision, Limit};

/// What a handler knows about its request besides the request itself.
pub struct Ctx {
    pub shard: Rc<Shard>,
    pub route: Route,
    pub peer: SocketAddr,
    /// The client: the peer, or what a trusted proxy says (see `client_ip`).
    pub client_ip: IpAddr,
    pub request_id: String,
    pub clock: Rc<ConnClock>,
    /// Unix seconds at the start of the request.
    pub now: i64,
    /// The rate-limit answer reported in the `X-RateLimit-*` headers (and `Retry-After`).
    rate: Cell<Option<Decision>>,
}

impl Ctx {
    /// The caller behind a Bearer token: verified in full once per shard, then from the shard's
    /// cache until the token expires.
    pub fn bearer(&self, token: &str) -> Result<::auth::flows::Caller, ::auth::tokens::TokenError> {
        let cache = &self.shard.verified_tokens;
        if let Some(claims) = cache.get(token, self.now) {
            if self.auth().revocations.is_revoked(&claims.jti) {
                return Err(::auth::tokens::TokenError::Revoked);
            }
            // Its tenant may have changed issuer mode since: then it is verified again.
            if self.auth().issuer_holds(&claims) {
                return Ok(::auth::flows::Caller { claims });
            }
        }
        let caller = self.auth().bearer(token, self.now)?;
        cache.insert(token, &caller.claims);
        Ok(caller)
    }

    pub fn auth(&self) -> &::auth::flows::Auth {
        &self.shard.app.auth
    }

    /// The client address and user agent, recorded with the events this request causes.
    pub fn origin(&self, parts: &http::request::Parts) -> crate::webhook::Origin {
        let user_agent = parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        crate::webhook::Origin::new(Some(self.client_ip), user_agent)
            .with_request_id(&self.request_id)
    }

    /// Counts this request against `limit` for the client IP: `Err` (429
    /// `RATE_LIMIT_EXCEEDED`) when over it. Call before any store lookup or hash.
    pub async fn limit(&self, limit: Limit) -> Result<(), ApiError> {
        let subject = crate::client_ip::subject(self.client_ip);
        match self.shard.app.limiter.take(limit, &subject).await {
            None => Ok(()),
            Some(d) => {
                self.note_limit(limit, d);
                if d.allowed {
                    Ok(())
                } else {
                    Err(errors::rate_limited(&d))
                }
            }
        }
    }

    /// Records a limit's answer for the response headers, and a rejection in the metrics.
    pub fn note_limit(&self, limit: Limit, d: Decision) {
        self.rate.set(Some(d));
        if !d.allowed {
            self.shard.metrics.rate_limited(limit.name());
        }
    }
}

/// The `Allow` header of a route: the methods it answers, and OPTIONS.
fn allowed_methods(route: Route) -> String {
    if let Route::Admin(admin) = route {
        return admin.allow_header();
    }
    let mut names: Vec<&str> = [
        (Method::GET, "GET, HEAD"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
    ]
    .iter()
    .filter(|(m, _)| route.allows(m))
    .map(|(_, name)| *name)
    .collect();
    names.push("OPTIONS");
    names.join(", ")
}

/// `X-RateLimit-Limit/Remaining/Reset` on every limited response; a rejection is 429 with
/// `Retry-After`, in the v2 and the OAuth shapes alike.
fn rate_headers(resp: &mut Resp, d: &Decision) {
    let h = resp.headers_mut();
    let mut put = |name: HeaderName, v: u64| {
        if let Ok(v) = HeaderValue::from_str(&v.to_string()) {
            h.insert(name, v);
        }
    };
    put(
        HeaderName::from_static("x-ratelimit-limit"),
        u64::from(d.limit),
    );
    put(
        HeaderName::from_static("x-ratelimit-remaining"),
        u64::from(d.remaining),
    );
    put(HeaderName::from_static("x-ratelimit-reset"), d.reset_secs());
    if !d.allowed {
        put(RETRY_AFTER, d.retry_after_secs());
        *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    }
}

pub type HandlerResult = Result<Resp, ApiError>;

/// A store error as its answer (503 for a fault, 409 for a conflict): see `errors::store`.
pub fn store_error(e: &store::StoreError) -> ApiError {
    errors::store(e)
}

/// A domain denial as its answer (the one mapping, `errors::denial`).
pub fn denial_error(d: &::auth::flows::Denial) -> ApiError {
    errors::denial(d)
}

/// 429 with the limit's numbers.
pub fn rate_limited(d: &Decision) -> ApiError {
    errors::rate_limited(d)
}

/// Handles one request end to end. Never fails: every fault becomes an error response.
pub async fn handle(
    shard: Rc<Shard>,
    req: Request<Incoming>,
    peer: SocketAddr,
    clock: Rc<ConnClock>,
) -> Resp {
    let start = Instant::now();
    let route = Route::from_path(req.uri().path());
    let method = req.method().clone();
    let method_idx = method_index(&method);
    let request_id = incoming_request_id(&req).unwrap_or_else(|| shard.next_request_id());
    let config = &shard.app.config;
    let client_ip = crate::client_ip::client_ip_with(
        peer.ip(),
        req.headers(),
        &config.trusted_proxies,
        config.client_ip_header,
    );
    let ctx = Ctx {
        shard: shard.clone(),
        route,
        peer,
        client_ip,
        request_id,
        clock,
        now: crate::unix_now(),
        rate: Cell::new(None),
    };
    let allowed = cors::Allowed {
        configured: &config.cors_origins,
        clients: &shard.app.client_origins,
    };
    let origin = cors::allowed_origin(&allowed, req.headers());

    let mut resp = if route == Route::Unmatched {
        ctx.clock.request_read();
        if method == Method::OPTIONS
            && origin.is_some()
            && req.uri().path().starts_with("/v2/admin/")
        {
            // A console's preflight of an admin path this server lacks: allowed, so the request
            // itself gets its 404 NOT_FOUND, not a CORS failure the console cannot tell apart.
            cors::admin_preflight(crate::admin::routes::ALL_METHODS)
        } else {
            error(&ApiError::new(ErrorCode::NotFound, "no such route"), false)
        }
    } else if method == Method::OPTIONS {
        ctx.clock.request_read();
        let mut resp = cors::preflight(route, origin.is_some());
        // RFC 9110 9.3.7: what the resource allows, for any OPTIONS (a preflight or not).
        if let Ok(v) = HeaderValue::from_str(&allowed_methods(route)) {
            resp.headers_mut().insert(http::header::ALLOW, v);
        }
        resp
    } else if !route.allows(&method) {
        ctx.clock.request_read();
        let mut resp = error(
            &ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("{method} is not allowed here"),
            ),
            route.is_oauth(),
        );
        // RFC 9110 15.5.6: a 405 names the methods the resource allows.
        if let Ok(v) = HeaderValue::from_str(&allowed_methods(route)) {
            resp.headers_mut().insert(http::header::ALLOW, v);
        }
        resp
    } else {
        if route.hashes() {
            if let Some(until) = ctx.clock.take_pace() {
                // At most `PACE` after the refusal (see `pace_after`).
                tokio::time::sleep_until(until).await;
            }
        }
        // A panic in a handler is a bug, but it must cost one request, not the connection's
        // task or anything else on this shard: it is caught here and answered 500.
        let handled = AssertUnwindSafe(dispatch(&ctx, req)).catch_unwind();
        match tokio::time::timeout(config.write_timeout, handled).await {
            Ok(Ok(Ok(resp))) => resp,
            // A fault on a browser page (authorize, the hosted sign-in, consent and sign-out
            // pages) is a page too, whichever step of the handler met it.
            Ok(Ok(Err(e))) if e.status() >= 500 && route.is_page() => oauth::fault_page(&e),
            Ok(Ok(Err(e))) => with_bearer_challenge(route, &e, error(&e, route.is_oauth())),
            Ok(Err(panic)) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(
                    request_id = %ctx.request_id,
                    route = route.template(),
                    panic = %what,
                    "handler panicked; answered 500"
                );
                shard.metrics.panic();
                error(
                    &ApiError::new(ErrorCode::Internal, "internal error"),
                    route.is_oauth(),
                )
            }
            Err(_) => error(
                &ApiError::new(
                    ErrorCode::Timeout,
                    "request took longer than the write timeout",
                ),
                route.is_oauth(),
            ),
        }
    };
    if let Some(d) = ctx.rate.get() {
        rate_headers(&mut resp, &d);
    }
    if route.hashes() {
        pace_after(&ctx, &resp);
    }
    let draining = shard.app.lifecycle.is_draining();
    finish_headers(&mut resp, &ctx.request_id, draining);
    if !config.cors_origins.is_empty() {
        // Every answer may differ by Origin once CORS is on; caches must key on it even for
        // requests from origins that get no CORS headers.
        resp.headers_mut()
            .append(http::header::VARY, http::HeaderValue::from_static("Origin"));
    }
    if let Some(origin) = origin {
        cors::decorate(&mut resp, origin);
    }

    let elapsed = start.elapsed();
    let status = resp.status().as_u16();
    shard
        .metrics
        .record_request(method_idx, route, status, elapsed);
    tracing::info!(
        target: "hellojohn::access",
        request_id = %ctx.request_id,
        shard = shard.index,
        method = METHODS[method_idx],
        route = route.template(),
        status,
        duration_us = elapsed.as_micros() as u64,
        peer = %peer,
        client = %ctx.client_ip,
    );
    resp
}

async fn dispatch(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    if ctx.shard.app.config.test_panic_header && req.headers().contains_key("x-hj-test-panic") {
        panic!("test panic requested with x-hj-test-panic");
    }
    match ctx.route {
        Route::Ping => system::ping(ctx),
        Route::Health => system::health(ctx, false).await,
        Route::Readyz => system::health(ctx, true).await,
        Route::Metrics => system::metrics(ctx).await,
        Route::Register => auth::register(ctx, req).await,
        Route::Login => auth::login(ctx, req).await,
        Route::Refresh => auth::refresh(ctx, req).await,
        Route::OAuthToken => token::token(ctx, req).await,
        Route::OAuthAuthorize => oauth::authorize(ctx, req).await,
        Route::OAuthRevoke => revoke::revoke(ctx, req).await,
        Route::OAuthLogout => end_session::logout(ctx, req).await,
        Route::OAuthIntrospect => revoke::introspect(ctx, req).await,
        Route::OAuthLogin if req.method() == Method::POST => oauth::login_submit(ctx, req).await,
        Route::OAuthLogin => oauth::login_page(ctx, req).await,
        Route::OAuthConsent => consent::consent(ctx, req).await,
        Route::Logout => auth::logout(ctx, req).await,
        Route::LogoutAll => auth::logout_all(ctx, req).await,
        Route::SessionLogin => session::login(ctx, req).await,
        Route::Csrf => session::csrf(ctx, req).await,
        Route::Me => session::me(ctx, req).await,
        Route::UserInfo => session::userinfo(ctx, req).await,
        Route::Jwks => oidc::jwks(ctx),
        Route::OpenIdConfiguration => oidc::openid_configuration(ctx),
        Route::TenantOpenIdConfiguration => {
            oidc::tenant_openid_configuration(ctx, req.uri().path()).await
        }
        Route::TenantJwks => oidc::tenant_jwks(ctx, req.uri().path()).await,
        Route::PasswordPolicy => public::password_policy(ctx, req).await,
        Route::Providers => public::providers(ctx, req).await,
        Route::AuthConfig => public::config(ctx, req).await,
        Route::CompleteProfile => session::complete_profile(ctx, req).await,
        Route::MfaEnroll => mfa::enroll(ctx, req).await,
        Route::MfaVerify => mfa::verify(ctx, req).await,
        Route::MfaChallenge => mfa::challenge(ctx, req).await,
        Route::MfaDisable => mfa::disable(ctx, req).await,
        Route::MfaRecoveryRotate => mfa::rotate(ctx, req).await,
        Route::MfaFactors => mfa::factors(ctx, req).await,
        Route::VerifyEmailStart => account::verify_start(ctx, req).await,
        Route::VerifyEmail => account::verify(ctx, req).await,
        Route::Forgot => account::forgot(ctx, req).await,
        Route::Reset if req.method() == http::Method::GET => account::reset_page(ctx, req).await,
        Route::Reset => account::reset(ctx, req).await,
        Route::Admin(admin) => crate::admin::dispatch(ctx, admin, req).await,
        Route::Unmatched => {
            ctx.clock.request_read();
            Err(ApiError::new(ErrorCode::NotFound, "no such route"))
        }
    }
}

/// How long a connection's next hashing request is held after an overload refusal. Long
/// enough that a closed-loop client re-sending at once makes at most ten refusals a second
/// per connection (instead of tens of thousands across a few connections, which take the CPU
/// the hash workers need); short enough that a request held on a connection shared by an
/// open-loop client, and then admitted, still fits the 500 ms latency target (hold + the
/// queue budget + one hash). Measured against a 1 s hold (the `Retry-After`): see
/// perf/results/goodput-2026-11-29.
const PACE: std::time::Duration = std::time::Duration::from_millis(100);

/// After a 503 `OVERLOADED` on a hashing route, holds the connection's next hashing request
/// for [`PACE`] (never longer than its `Retry-After`).
fn pace_after(ctx: &Ctx, resp: &Resp) {
    if resp.status() != StatusCode::SERVICE_UNAVAILABLE {
        return;
    }
    let secs = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(secs) = secs {
        let hold = std::time::Duration::from_secs(secs).min(PACE);
        ctx.clock.pace_until(tokio::time::Instant::now() + hold);
    }
}

/// RFC 6750 section 3 (and OpenID Connect Core 5.3.3 for `/userinfo`): a 401 from a route
/// that takes a Bearer token says how to authenticate in `WWW-Authenticate`, with
/// `error="invalid_token"` when a token was presented and refused.
fn with_bearer_challenge(route: Route, e: &ApiError, mut resp: Resp) -> Resp {
    let bearer_route = matches!(
        route,
        Route::UserInfo
            | Route::Me
            | Route::CompleteProfile
            | Route::LogoutAll
            | Route::MfaEnroll
            | Route::MfaVerify
            | Route::MfaDisable
            | Route::MfaRecoveryRotate
            | Route::MfaFactors
    );
    if !bearer_route || e.status() != 401 {
        return resp;
    }
    let challenge = match e.code {
        ErrorCode::TokenInvalid | ErrorCode::SessionExpired => {
            "Bearer realm=\"hellojohn\", error=\"invalid_token\""
        }
        _ => "Bearer realm=\"hellojohn\"",
    };
    resp.headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    resp
}

/// A client-supplied `X-Request-Id`, if it is short and plain enough to log and echo.
fn incoming_request_id(req: &Request<Incoming>) -> Option<String> {
    let v = req.headers().get("x-request-id")?.to_str().ok()?;
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then(|| v.to_string())
}

/// Adds the headers every response carries.
pub fn finish_headers(resp: &mut Resp, request_id: &str, draining: bool) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    if draining {
        resp.headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
}
