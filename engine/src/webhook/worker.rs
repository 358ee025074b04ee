//! The webhook delivery worker: the outbox worker (`outbox::worker`, which documents the
//! lease, the Redis guard and the retries) with [`WebhookSender`], on its own thread
//! (`hj-webhook`). An attempt is a signed HTTP POST ([`signature`](super::signature),
//! [`send`](super::send)) to a target the SSRF guard ([`ssrf`](super::ssrf)) allowed, bounded
//! by `HELLOJOHN_WEBHOOK_TIMEOUT`.
//!
//! It prunes, every `outbox::worker::PRUNE_INTERVAL`: finished events past the retention (with
//! their deliveries), expired authorization codes and expired access-token revocations.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use protocol::webhook::{rfc3339, WebhookEvent};
use store::{Claimed, DeliveryPayload, Event, OutboxKind, Payload, Store};
use tokio::sync::{oneshot, watch};
use tokio_rustls::TlsConnector;
use uuid::Uuid;

use super::{open_secret, send, signature, ssrf};
use crate::app::Phase;
use crate::config::Config;
use crate::metrics::Process;
use crate::outbox::worker::PRUNE_BATCH;
use crate::outbox::{Attempt, Deliver, Worker, WorkerSettings};
use auth::MasterKey;

/// Deliveries in flight per instance.
pub const CONCURRENCY: usize = 32;

/// What the worker needs from the configuration.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub worker: WorkerSettings,
    /// `HELLOJOHN_WEBHOOK_ALLOW_PRIVATE`: lets the SSRF guard pass private targets.
    pub allow_private: bool,
}

impl WebhookSettings {
    pub fn from_config(c: &Config) -> WebhookSettings {
        WebhookSettings {
            worker: WorkerSettings {
                poll_interval: c.webhook_poll_interval,
                timeout: c.webhook_timeout,
                max_attempts: c.webhook_max_attempts.max(1),
                backoff_base: c.webhook_backoff_base,
                backoff_max: c.webhook_backoff_max.max(c.webhook_backoff_base),
                lease: c
                    .webhook_lease
                    .unwrap_or(c.webhook_timeout * 2 + Duration::from_secs(5)),
                retention: c.webhook_retention,
            },
            allow_private: c.webhook_allow_private,
        }
    }
}

/// Starts the delivery worker on its own thread (see `outbox::worker::spawn`); its TLS client
/// is set up there.
pub fn spawn(
    worker: Worker,
    settings: WebhookSettings,
    master: MasterKey,
    phase: watch::Receiver<Phase>,
    shards_stopped: oneshot::Receiver<()>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let make = move || {
        let tls = match send::tls_connector() {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(error = %e, "https webhook endpoints will fail");
                None
            }
        };
        WebhookSender {
            master,
            tls,
            timeout: settings.worker.timeout,
            allow_private: settings.allow_private,
        }
    };
    crate::outbox::spawn(worker, make, phase, shards_stopped)
}

/// Posts deliveries to their endpoints.
pub struct WebhookSender {
    master: MasterKey,
    tls: Option<TlsConnector>,
    timeout: Duration,
    allow_private: bool,
}

fn delivery(item: &Claimed) -> Option<&DeliveryPayload> {
    match &item.payload {
        Payload::Webhook(d) => Some(d),
        Payload::Mail(_) => None,
    }
}

impl Deliver for WebhookSender {
    const KIND: OutboxKind = OutboxKind::Webhook;
    const THREAD: &'static str = "hj-webhook";
    const CONCURRENCY: usize = CONCURRENCY;
    const ITEMS: &'static str = "webhook deliveries";
    const ITEM: &'static str = "webhook delivery";
    const PRUNED: &'static str = "webhook events";

    async fn send(&self, item: &Claimed) -> Attempt {
        let Some(d) = delivery(item) else {
            return Attempt::Failed {
                status_code: None,
                error: "not a webhook delivery".to_string(),
            };
        };
        let sent = match tokio::time::timeout(self.timeout, self.attempt_once(item.id, d)).await {
            Ok(s) => s,
            Err(_) => Sent::Error(format!("timed out after {:?}", self.timeout)),
        };
        match sent {
            Sent::Status(code) if (200..300).contains(&code) => Attempt::Done {
                status_code: Some(code),
            },
            Sent::Status(code) => Attempt::Failed {
                status_code: Some(code),
                error: format!("HTTP {code}"),
            },
            Sent::Error(error) => Attempt::Failed {
                status_code: None,
                error,
            },
        }
    }

    fn backlog_gauge(process: &Process) -> &AtomicU64 {
        &process.webhook_backlog
    }

    fn delivered(&self, process: &Process, item: &Claimed, at_ms: i64) {
        process
            .webhook_delivered_total
            .fetch_add(1, Ordering::Relaxed);
        if let Some(d) = delivery(item) {
            let latency =
                Duration::from_millis(u64::try_from(at_ms - event_time_ms(&d.event)).unwrap_or(0));
            process.webhook_latency.record(latency);
        }
    }

    fn failed(&self, process: &Process, item: &Claimed, made: u32, error: &str, exhausted: bool) {
        let counter = if exhausted {
            let endpoint_id = delivery(item).map(|d| d.endpoint.id).unwrap_or_default();
            tracing::warn!(
                delivery_id = %item.id,
                endpoint_id = %endpoint_id,
                attempts = made,
                error = %error,
                "webhook delivery exhausted"
            );
            &process.webhook_exhausted_total
        } else {
            &process.webhook_failed_total
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(delivery_id = %item.id, attempts = made, error = %error, "webhook attempt failed");
    }

    fn held(&self, item: &Claimed) {
        tracing::debug!(delivery_id = %item.id, "webhook attempt held by another instance");
    }

    fn pruned(&self, count: u64) {
        tracing::info!(
            events = count,
            "pruned finished webhook events past the retention"
        );
    }

    /// Authorization codes an hour past their expiry: by then a replay is refused as unknown
    /// (what it issued was revoked, if it was replayed in time); and revocations of access
    /// tokens that have expired anyway. Same cadence, same worker.
    async fn prune_more(&self, store: &dyn Store) {
        let codes_before = crate::unix_now() - 3600;
        match store.prune_auth_codes(codes_before, PRUNE_BATCH).await {
            Ok(n) if n > 0 => tracing::debug!(codes = n, "pruned expired authorization codes"),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "cannot prune authorization codes"),
        }
        match store
            .prune_revoked_tokens(crate::unix_now(), PRUNE_BATCH)
            .await
        {
            Ok(n) if n > 0 => tracing::debug!(tokens = n, "pruned expired token revocations"),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "cannot prune token revocations"),
        }
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

impl WebhookSender {
    /// Signs and sends one attempt.
    async fn attempt_once(&self, id: Uuid, d: &DeliveryPayload) -> Sent {
        let Some(secret) = open_secret(&self.master, &d.endpoint) else {
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
        let addrs = match ssrf::resolve(&target.host, target.port, self.allow_private).await {
            Ok(a) => a,
            Err(e) => return Sent::Error(e),
        };
        let body = protocol::json::to_vec(&payload(&d.event));
        let timestamp = crate::unix_now();
        let id = id.to_string();
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
            self.tls.as_ref(),
            headers,
            Bytes::from(body),
            self.timeout,
        )
        .await
        {
            Ok(code) => Sent::Status(code),
            Err(e) => Sent::Error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!((event_time_ms(&e) - crate::unix_now_ms()).abs() < 5_000);
        let old = Event {
            id: Uuid::new_v4(),
            ..e
        };
        assert_eq!(event_time_ms(&old), 1000);
    }
}
