//! The request pipeline: route, call the handler under the write timeout, then record metrics
//! and the access log. Handlers are grouped by resource in submodules.

mod auth;
mod common;
mod cors;
mod errors;
mod oidc;
mod session;
mod system;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use http::{Method, Request};
use hyper::body::Incoming;
use protocol::{ApiError, ErrorCode};

use crate::app::Shard;
use crate::http::{error, Resp};
use crate::metrics::{method_index, METHODS};
use crate::router::Route;
use crate::server::{finish_headers, ConnClock};

/// What a handler knows about its request besides the request itself.
pub struct Ctx {
    pub shard: Rc<Shard>,
    pub route: Route,
    pub peer: SocketAddr,
    pub request_id: String,
    pub clock: Rc<ConnClock>,
    /// Unix seconds at the start of the request.
    pub now: i64,
}

impl Ctx {
    pub fn auth(&self) -> &crate::auth::flows::Auth {
        &self.shard.app.auth
    }
}

pub type HandlerResult = Result<Resp, ApiError>;

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
    let ctx = Ctx {
        shard: shard.clone(),
        route,
        peer,
        request_id,
        clock,
        now: crate::unix_now(),
    };
    let origin = cors::allowed_origin(&config.cors_origins, req.headers());

    let mut resp = if route == Route::Unmatched {
        ctx.clock.request_read();
        error(&ApiError::new(ErrorCode::NotFound, "no such route"), false)
    } else if method == Method::OPTIONS {
        ctx.clock.request_read();
        cors::preflight(route, origin.is_some())
    } else if !route.allows(&method) {
        ctx.clock.request_read();
        let mut r = error(
            &ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("{method} is not allowed here"),
            ),
            route.is_oauth(),
        );
        if route.is_oauth() {
            *r.status_mut() = http::StatusCode::METHOD_NOT_ALLOWED;
        }
        r
    } else {
        match tokio::time::timeout(config.write_timeout, dispatch(&ctx, req)).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => error(&e, route.is_oauth()),
            Err(_) => error(
                &ApiError::new(
                    ErrorCode::Timeout,
                    "request took longer than the write timeout",
                ),
                route.is_oauth(),
            ),
        }
    };
    let draining = shard.app.lifecycle.is_draining();
    finish_headers(&mut resp, &ctx.request_id, draining);
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
    );
    resp
}

async fn dispatch(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    match ctx.route {
        Route::Ping => system::ping(ctx),
        Route::Health | Route::Readyz => system::health(ctx, req.method() == Method::HEAD).await,
        Route::Metrics => system::metrics(ctx).await,
        Route::Register => auth::register(ctx, req).await,
        Route::Login => auth::login(ctx, req).await,
        Route::Refresh => auth::refresh(ctx, req).await,
        Route::OAuthToken => auth::oauth_token(ctx, req).await,
        Route::Logout => auth::logout(ctx, req).await,
        Route::LogoutAll => auth::logout_all(ctx, req).await,
        Route::SessionLogin => session::login(ctx, req).await,
        Route::Csrf => session::csrf(ctx, req).await,
        Route::Me => session::me(ctx, req).await,
        Route::UserInfo => session::userinfo(ctx, req).await,
        Route::Jwks => oidc::jwks(ctx),
        Route::OpenIdConfiguration => oidc::openid_configuration(ctx),
        Route::Unmatched => {
            ctx.clock.request_read();
            Err(ApiError::new(ErrorCode::NotFound, "no such route"))
        }
    }
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
