//! Liveness, readiness and metrics.

use std::time::Duration;

use http::header::HeaderValue;
use protocol::system::{Cluster, Health, HealthComponents, Ping};
use protocol::{ApiError, ErrorCode};

use super::{Ctx, HandlerResult};
use crate::http::{bytes, json};

pub fn ping(ctx: &Ctx) -> HandlerResult {
    ctx.clock.request_read();
    Ok(json(200, &Ping::OK))
}

/// Readiness for load balancers: 503 while draining or when the database is unreachable.
/// `/readyz` answers in HelloJohn's words (`ready`, `degraded`, and its `cluster` block), which
/// its admin console's dashboard reads; `/health` keeps this server's (`ok`).
pub async fn health(ctx: &Ctx, readyz: bool) -> HandlerResult {
    ctx.clock.request_read();
    let app = &ctx.shard.app;
    let database = match tokio::time::timeout(Duration::from_secs(2), app.store.ping()).await {
        Ok(Ok(())) => "ok",
        _ => "down",
    };
    // Redis is optional: when it is unreachable the instance serves locally, so it stays
    // ready and only reports the degradation.
    let redis = match &app.redis {
        None => "disabled",
        Some(r) if r.is_up() => "ok",
        Some(_) => "degraded",
    };
    let draining = app.lifecycle.is_draining();
    let ready = !draining && database == "ok";
    let status = if draining {
        "draining"
    } else if !ready {
        "unavailable"
    } else if !readyz {
        "ok"
    } else if redis == "degraded" {
        "degraded"
    } else {
        "ready"
    };
    let body = Health {
        status,
        components: HealthComponents {
            database,
            redis,
            keystore: "ok",
        },
        version: app.version,
        cluster: readyz.then_some(Cluster::NONE),
    };
    let mut resp = json(if ready { 200 } else { 503 }, &body);
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

/// `GET /metrics`, only for the addresses of `HELLOJOHN_METRICS_ALLOW`: the counters tell
/// what happened to whom (a mail sent after a reset request names an existing account), so
/// the public gets 403 `FORBIDDEN` and no text. The address is the client's as
/// `crate::client_ip` decides it: the socket peer, or what a trusted proxy forwards (an
/// untrusted peer's header is never read), so a scrape through the public proxy is refused.
pub async fn metrics(ctx: &Ctx) -> HandlerResult {
    ctx.clock.request_read();
    let app = &ctx.shard.app;
    if !app
        .config
        .metrics_allow
        .iter()
        .any(|net| net.contains(ctx.client_ip))
    {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "metrics are served only to HELLOJOHN_METRICS_ALLOW",
        ));
    }
    // The pool gauges are read from the store at scrape time (zeros for the embedded store).
    let pool = app.store.pool_stats();
    let process = &app.hub.process;
    process
        .db_pool_idle
        .store(pool.idle, std::sync::atomic::Ordering::Relaxed);
    process
        .db_pool_in_use
        .store(pool.in_use, std::sync::atomic::Ordering::Relaxed);
    process
        .db_pool_max
        .store(pool.max, std::sync::atomic::Ordering::Relaxed);
    let mut text = app.hub.render().await;
    crate::metrics::render_db_calls(&mut text, &pool);
    Ok(bytes(
        200,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        text,
    ))
}
