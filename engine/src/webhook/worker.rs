//! The delivery worker: one per instance, on its own thread (`hj-webhook`) with its own
//! runtime, off the shards' event loops.
//!
//! Every poll interval (and at once while there is more work than one batch) it leases due
//! deliveries from the store (`claim_webhook_deliveries`: `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, a conditional update on SQLite's single writer) and sends each in its own task,
//! at most [`CONCURRENCY`] at a time. A delivery is leased for [`WorkerSettings::lease`]; an
//! instance that dies mid-delivery leaves it to be claimed again when the lease ends, so
//! nothing is lost (at-least-once).
//!
//! With Redis, an attempt is also guarded by a Redis key (delivery, generation, attempt
//! number): a worker that claims a delivery whose lease ran out while another instance is
//! still sending it finds the key held and skips it; once an attempt got a 2xx the key says so
//! for [`DELIVERED_MARK_TTL`], and a worker that claims it again (the first one's database
//! update was lost) records it delivered without sending. Duplicates are then only possible
//! when an instance dies between the receiver's 2xx and recording it, or while Redis is
//! unreachable (the worker sends anyway: at-least-once).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use protocol::webhook::{rfc3339, WebhookEvent};
use rand::Rng as _;
use storage::redis::{Redis, WebhookAttempt, WebhookLock};
use store::{ClaimedDelivery, DeliveryResult, Event, Store};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;
use uuid::Uuid;

use super::{open_secret, send, signature, ssrf};
use crate::app::Phase;
use crate::config::Config;
use crate::metrics::Process;
use auth::MasterKey;

/// Deliveries in flight per instance.
pub const CONCURRENCY: usize = 32;
/// How long a 2xx is remembered in Redis (see the module documentation).
pub const DELIVERED_MARK_TTL: Duration = Duration::from_secs(15 * 60);
/// A delivery is not started when less than this is left of its lease.
const LEASE_MARGIN: Duration = Duration::from_millis(20);
/// How often each worker deletes events past the retention (idempotent across instances).
const PRUNE_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// Events deleted per statement, so that pruning never holds locks for long.
const PRUNE_BATCH: u32 = 5000;

/// What the worker needs from the configuration.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub poll_interval: Duration,
    pub timeout: Duration,
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub lease: Duration,
    pub allow_private: bool,
    /// Finished events older than this are deleted.
    pub retention: Duration,
}

impl WorkerSettings {
    pub fn from_config(c: &Config) -> WorkerSettings {
        WorkerSettings {
            poll_interval: c.webhook_poll_interval,
            timeout: c.webhook_timeout,
            max_attempts: c.webhook_max_attempts.max(1),
            backoff_base: c.webhook_backoff_base,
            backoff_max: c.webhook_backoff_max.max(c.webhook_backoff_base),
            lease: c
                .webhook_lease
                .unwrap_or(c.webhook_timeout * 2 + Duration::from_secs(5)),
            allow_private: c.webhook_allow_private,
            retention: c.webhook_retention,
        }
    }

    /// The delay before attempt `made + 1`, after `made` failed attempts: base · 2^(made-1),
    /// capped, with ±20 % jitter so that many deliveries failing together do not retry in step.
    pub fn backoff(&self, made: u32) -> Duration {
        let exp = made.saturating_sub(1).min(30);
        let raw = self
            .backoff_base
            .saturating_mul(1u32 << exp)
            .min(self.backoff_max);
        raw.mul_f64(rand::thread_rng().gen_range(0.8..=1.2))
    }

    /// The life of an attempt's Redis guard: past the lease by the longest send.
    fn guard_ttl(&self) -> Duration {
        self.lease + self.timeout + Duration::from_secs(5)
    }
}

/// What the worker works with.
pub struct Worker {
    pub store: Arc<dyn Store>,
    pub redis: Option<Redis>,
    pub master: MasterKey,
    pub process: Arc<Process>,
    pub settings: WorkerSettings,
}

/// Starts the worker on its own thread. It stops claiming once `phase` turns to draining (or
/// its sender is gone), lets the deliveries in flight finish, then keeps its runtime until
/// `shards_stopped` resolves (sent or dropped): database connections it opened may be pooled
/// with the shards' and are driven by this runtime.
pub fn spawn(
    worker: Worker,
    phase: watch::Receiver<Phase>,
    shards_stopped: oneshot::Receiver<()>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("hj-webhook".to_string())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the webhook runtime");
                    return;
                }
            };
            let tls = match send::tls_connector() {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(error = %e, "https webhook endpoints will fail");
                    None
                }
            };
            let shared = Arc::new(Shared { worker, tls });
            rt.block_on(async move {
                run(shared, phase).await;
                let _ = shards_stopped.await;
            });
        })
}

struct Shared {
    worker: Worker,
    tls: Option<TlsConnector>,
}

fn now_ms() -> i64 {
    crate::unix_now_ms()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

async fn run(shared: Arc<Shared>, mut phase: watch::Receiver<Phase>) {
    let settings = shared.worker.settings.clone();
    let mut inflight: JoinSet<()> = JoinSet::new();
    let mut next_poll = Instant::now();
    // Soon after start (not at once: several instances often start together), then regularly.
    let mut next_prune = Instant::now() + Duration::from_secs(60);
    // The last claim filled its batch: more is probably due.
    let mut more = false;
    loop {
        if *phase.borrow_and_update() == Phase::Draining {
            break;
        }
        let now = Instant::now();
        let poll_due = now >= next_poll;
        if poll_due {
            next_poll = now + settings.poll_interval;
            backlog(&shared.worker).await;
        }
        if now >= next_prune {
            next_prune = now + PRUNE_INTERVAL;
            prune(&shared.worker).await;
        }
        let room = CONCURRENCY.saturating_sub(inflight.len());
        // When more is due, claim again once a quarter of the slots are free, not one by one.
        if room > 0 && (poll_due || (more && room >= CONCURRENCY / 4)) {
            let at = now_ms();
            let limit = u32::try_from(room).unwrap_or(u32::MAX);
            match shared
                .worker
                .store
                .claim_webhook_deliveries(at, at + ms(settings.lease), limit)
                .await
            {
                Ok(batch) => {
                    more = batch.len() == room;
                    for d in batch {
                        inflight.spawn(deliver(shared.clone(), d));
                    }
                }
                Err(e) => {
                    more = false;
                    tracing::warn!(error = %e, "cannot claim webhook deliveries");
                }
            }
        }
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
            _ = tokio::time::sleep_until(next_poll.into()) => {}
        }
    }
    // Deliveries in flight finish (each is bounded by the timeout); nothing new is claimed.
    while inflight.join_next().await.is_some() {}
}

/// Updates the backlog gauge (due deliveries not yet delivered).
async fn backlog(worker: &Worker) {
    match worker.store.webhook_backlog(now_ms()).await {
        Ok(n) => worker.process.webhook_backlog.store(n, Ordering::Relaxed),
        Err(e) => tracing::debug!(error = %e, "cannot count the webhook backlog"),
    }
}

/// Deletes finished events past the retention, a batch at a time.
async fn prune(worker: &Worker) {
    let before = crate::unix_now()
        - i64::try_from(worker.settings.retention.as_secs()).unwrap_or(i64::MAX / 2);
    let mut total = 0;
    // Bounded: a huge backlog of old events is worked off over several intervals.
    for _ in 0..20 {
        match worker.store.prune_webhook_events(before, PRUNE_BATCH).await {
            Ok(n) => {
                total += n;
                if n < u64::from(PRUNE_BATCH) {
                    break;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot prune webhook events");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(
            events = total,
            "pruned finished webhook events past the retention"
        );
    }
    // Authorization codes an hour past their expiry: by then a replay is refused as unknown
    // (what it issued was revoked, if it was replayed in time). Same cadence, same worker.
    let codes_before = crate::unix_now() - 3600;
    match worker
        .store
        .prune_auth_codes(codes_before, PRUNE_BATCH)
        .await
    {
        Ok(n) if n > 0 => tracing::debug!(codes = n, "pruned expired authorization codes"),
        Ok(_) => {}
        Err(e) => tracing::debug!(error = %e, "cannot prune authorization codes"),
    }
    // Revocations of access tokens that have expired anyway.
    match worker
        .store
        .prune_revoked_tokens(crate::unix_now(), PRUNE_BATCH)
        .await
    {
        Ok(n) if n > 0 => tracing::debug!(tokens = n, "pruned expired token revocations"),
        Ok(_) => {}
        Err(e) => tracing::debug!(error = %e, "cannot prune token revocations"),
    }
}

/// The body sent for an event.
pub fn payload(event: &Event) -> WebhookEvent {
    WebhookEvent {
        id: event.id.to_string(),
        tenant_id: event.tenant_id.to_string(),
        event_type: event.event_type.clone(),
        actor_id: event.actor_id.map(|u| u.to_string()),
        actor_type: event.actor_type.clone(),
        target_id: event.target_id.map(|u| u.to_string()),
        target_type: event.target_type.clone(),
        ip_address: event.ip_address.clone(),
        user_agent: event.user_agent.clone(),
        metadata: event.metadata.as_json().clone(),
        result: event.result.clone(),
        created_at: rfc3339(event.created_at),
    }
}

/// When the event happened, in Unix milliseconds: from its UUIDv7 id, else its `created_at`.
fn event_time_ms(event: &Event) -> i64 {
    event
        .id
        .get_timestamp()
        .map(|ts| {
            let (secs, nanos) = ts.to_unix();
            i64::try_from(secs)
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000)
                + i64::from(nanos / 1_000_000)
        })
        .unwrap_or_else(|| event.created_at.saturating_mul(1000))
}

/// What one attempt came to.
enum Sent {
    /// Any HTTP answer.
    Status(u16),
    /// No answer: refused by the SSRF check, connection or TLS failure, timeout, bad secret.
    Error(String),
}

/// One delivery attempt, from the lease to the recorded result.
async fn deliver(shared: Arc<Shared>, d: ClaimedDelivery) {
    let w = &shared.worker;
    if now_ms() + ms(LEASE_MARGIN) >= d.leased_until_ms {
        // The lease ran out before we started (a stalled instance): another worker may have
        // it by now. It is claimed again when due.
        return;
    }
    let attempt = WebhookAttempt {
        delivery_id: d.id,
        generation: d.generation,
        attempts: d.attempts,
    };
    let token = Uuid::new_v4();
    if let Some(redis) = &w.redis {
        match redis
            .webhook_lock(&attempt, token, w.settings.guard_ttl())
            .await
        {
            Ok(WebhookLock::Acquired) => {}
            Ok(WebhookLock::Held) => {
                tracing::debug!(delivery_id = %d.id, "webhook attempt held by another instance");
                return;
            }
            Ok(WebhookLock::Delivered) => {
                record(
                    w,
                    DeliveryResult::Delivered {
                        id: d.id,
                        at_ms: now_ms(),
                        status_code: None,
                        counted: false,
                    },
                )
                .await;
                return;
            }
            // Redis is unreachable: deliver anyway (at-least-once).
            Err(_) => {}
        }
    }
    let sent = match tokio::time::timeout(w.settings.timeout, attempt_once(&shared, &d)).await {
        Ok(s) => s,
        Err(_) => Sent::Error(format!("timed out after {:?}", w.settings.timeout)),
    };
    let at = now_ms();
    match sent {
        Sent::Status(code) if (200..300).contains(&code) => {
            let p = &w.process;
            p.webhook_delivered_total.fetch_add(1, Ordering::Relaxed);
            let latency =
                Duration::from_millis(u64::try_from(at - event_time_ms(&d.event)).unwrap_or(0));
            p.webhook_latency.record(latency);
            if let Some(redis) = &w.redis {
                let _ = redis.webhook_delivered(&attempt, DELIVERED_MARK_TTL).await;
            }
            record(
                w,
                DeliveryResult::Delivered {
                    id: d.id,
                    at_ms: at,
                    status_code: Some(code),
                    counted: true,
                },
            )
            .await;
        }
        other => {
            let (status_code, error) = match other {
                Sent::Status(code) => (Some(code), format!("HTTP {code}")),
                Sent::Error(e) => (None, e),
            };
            let made = d.attempts.saturating_add(1);
            let retry_at_ms =
                (made < w.settings.max_attempts).then(|| at + ms(w.settings.backoff(made)));
            let counter = if retry_at_ms.is_some() {
                &w.process.webhook_failed_total
            } else {
                tracing::warn!(
                    delivery_id = %d.id,
                    endpoint_id = %d.endpoint.id,
                    attempts = made,
                    error = %error,
                    "webhook delivery exhausted"
                );
                &w.process.webhook_exhausted_total
            };
            counter.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(delivery_id = %d.id, attempts = made, error = %error, "webhook attempt failed");
            record(
                w,
                DeliveryResult::Failed {
                    id: d.id,
                    lease_id: d.lease_id,
                    at_ms: at,
                    status_code,
                    error,
                    retry_at_ms,
                },
            )
            .await;
            if let Some(redis) = &w.redis {
                let _ = redis.webhook_release(&attempt, token).await;
            }
        }
    }
}

/// Records a result, retrying a few times: a 2xx not recorded would be sent again.
async fn record(w: &Worker, result: DeliveryResult) {
    let mut wait = Duration::from_millis(100);
    for tries in 1.. {
        match w.store.complete_webhook_delivery(result.clone()).await {
            Ok(_) => return,
            Err(e) if tries >= 4 => {
                tracing::warn!(error = %e, "cannot record a webhook delivery result");
                return;
            }
            Err(_) => {
                tokio::time::sleep(wait).await;
                wait *= 4;
            }
        }
    }
}

/// Signs and sends one attempt.
async fn attempt_once(shared: &Shared, d: &ClaimedDelivery) -> Sent {
    let w = &shared.worker;
    let Some(secret) = open_secret(&w.master, &d.endpoint) else {
        return Sent::Error(
            "cannot decrypt the endpoint's secret (is HELLOJOHN_MASTER_KEY the key it was \
             created with?)"
                .to_string(),
        );
    };
    let target = match send::parse_url(&d.endpoint.url) {
        Ok(t) => t,
        Err(e) => return Sent::Error(e),
    };
    let addrs = match ssrf::resolve(&target.host, target.port, w.settings.allow_private).await {
        Ok(a) => a,
        Err(e) => return Sent::Error(e),
    };
    let body = protocol::json::to_vec(&payload(&d.event));
    let timestamp = crate::unix_now();
    let id = d.id.to_string();
    let mut headers = Vec::with_capacity(6);
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.push((HeaderName::from_static(name), v));
        }
    };
    put(
        "x-hellojohn-signature",
        signature::hellojohn_signature(&secret, timestamp, &body),
    );
    put("x-hellojohn-event", d.event.event_type.clone());
    put("x-hellojohn-delivery-id", id.clone());
    put(
        "webhook-signature",
        signature::standard_signature(&secret, &id, timestamp, &body),
    );
    put("webhook-id", id);
    put("webhook-timestamp", timestamp.to_string());
    match send::post(
        &target,
        &addrs,
        shared.tls.as_ref(),
        headers,
        Bytes::from(body),
        w.settings.timeout,
    )
    .await
    {
        Ok(code) => Sent::Status(code),
        Err(e) => Sent::Error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> WorkerSettings {
        WorkerSettings {
            poll_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            max_attempts: 8,
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(3600),
            lease: Duration::from_secs(25),
            allow_private: false,
            retention: Duration::from_secs(3600),
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let s = settings();
        for (made, base) in [
            (1, 5.0),
            (2, 10.0),
            (3, 20.0),
            (8, 640.0),
            (20, 3600.0),
            (99, 3600.0),
        ] {
            for _ in 0..50 {
                let d = s.backoff(made).as_secs_f64();
                assert!(
                    d >= base * 0.8 - 1e-9 && d <= base * 1.2 + 1e-9,
                    "{made}: {d}"
                );
            }
        }
    }

    #[test]
    fn event_time_comes_from_the_v7_id() {
        let id = Uuid::now_v7();
        let e = Event {
            id,
            tenant_id: Uuid::new_v4(),
            event_type: "user.login".into(),
            actor_id: None,
            actor_type: None,
            target_id: None,
            target_type: None,
            ip_address: None,
            user_agent: None,
            metadata: Default::default(),
            result: "success".into(),
            created_at: 1,
        };
        assert!((event_time_ms(&e) - now_ms()).abs() < 5_000);
        let old = Event {
            id: Uuid::new_v4(),
            ..e
        };
        assert_eq!(event_time_ms(&old), 1000);
    }
}
