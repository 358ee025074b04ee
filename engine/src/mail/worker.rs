//! The mail worker: one per instance, on its own thread (`hj-mail`) with its own runtime, off
//! the shards' event loops. It mirrors the webhook worker (`webhook::worker`).
//!
//! Without SMTP settings (no `HELLOJOHN_SMTP_HOST`) it sends nothing: mails stay in the outbox,
//! pending, for an instance that has them; it still counts the backlog and prunes (expired
//! email tokens and MFA records must go whether or not this instance sends mail).
//!
//! Every poll interval (and at once while there is more work than one batch) it leases due
//! mails from the store (`claim_mail`: `FOR UPDATE SKIP LOCKED` on PostgreSQL, a conditional
//! update on SQLite's single writer) and sends each in its own task, at most [`CONCURRENCY`]
//! at a time. A mail is leased for [`MailSettings::lease`]; an instance that dies mid-send
//! leaves it to be claimed again when the lease ends, so nothing is lost (at-least-once).
//!
//! With Redis, an attempt is also guarded by a Redis key (mail, attempt number): a worker that
//! claims a mail whose lease ran out while another instance is still sending it finds the key
//! held and skips it; once the relay accepted an attempt the key says so for
//! [`SENT_MARK_TTL`], and a worker that claims it again (the first one's database update was
//! lost) records it sent without sending. Duplicates are then only possible when an instance
//! dies between the relay's acceptance and recording it, or while Redis is unreachable (the
//! worker sends anyway: at-least-once).
//!
//! The same worker prunes, every [`PRUNE_INTERVAL`]: finished mails past the retention, expired
//! email tokens, expired MFA challenges and remembered devices.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use storage::redis::mail::{MailAttempt, MailLock};
use storage::redis::Redis;
use store::{ClaimedMail, MailResult, Store};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::smtp::Smtp;
use crate::app::Phase;
use crate::config::{Config, SmtpSettings};
use crate::metrics::Process;
use crate::webhook::worker::WorkerSettings;
use auth::MasterKey;

/// Mails in flight per instance (one SMTP connection each).
pub const CONCURRENCY: usize = 8;
/// How long an accepted attempt is remembered in Redis (see the module documentation).
pub const SENT_MARK_TTL: Duration = Duration::from_secs(15 * 60);
/// A send is not started when less than this is left of its lease.
const LEASE_MARGIN: Duration = Duration::from_millis(20);
/// How often each worker prunes (idempotent across instances).
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// Rows deleted per statement, so that pruning never holds locks for long.
const PRUNE_BATCH: u32 = 5000;
/// Expired email tokens are kept this long, so that a late click reads "expired", not
/// "unknown".
const EMAIL_TOKEN_GRACE_SECS: i64 = 24 * 3600;

/// What the worker needs from the configuration.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `None`: mail is disabled on this instance (nothing is claimed or sent).
    pub smtp: Option<SmtpSettings>,
    pub poll_interval: Duration,
    pub timeout: Duration,
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub lease: Duration,
    /// Sent and exhausted mails older than this are deleted.
    pub retention: Duration,
}

impl MailSettings {
    /// Poll interval, backoff, lease and retention are the webhooks'
    /// (`HELLOJOHN_WEBHOOK_POLL_INTERVAL`, `HELLOJOHN_WEBHOOK_RETENTION`).
    pub fn from_config(c: &Config) -> MailSettings {
        MailSettings {
            smtp: c.smtp.clone(),
            poll_interval: c.webhook_poll_interval,
            timeout: c.smtp_timeout,
            max_attempts: c.mail_max_attempts.max(1),
            backoff_base: c.webhook_backoff_base,
            backoff_max: c.webhook_backoff_max.max(c.webhook_backoff_base),
            lease: c
                .webhook_lease
                .unwrap_or(c.smtp_timeout * 2 + Duration::from_secs(5)),
            retention: c.webhook_retention,
        }
    }

    /// The delay before attempt `made + 1`: the webhooks' exponential backoff with jitter.
    pub fn backoff(&self, made: u32) -> Duration {
        self.webhook_like().backoff(made)
    }

    fn webhook_like(&self) -> WorkerSettings {
        WorkerSettings {
            poll_interval: self.poll_interval,
            timeout: self.timeout,
            max_attempts: self.max_attempts,
            backoff_base: self.backoff_base,
            backoff_max: self.backoff_max,
            lease: self.lease,
            allow_private: false,
            retention: self.retention,
        }
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
    pub settings: MailSettings,
}

/// Starts the worker on its own thread. It stops claiming once `phase` turns to draining (or
/// its sender is gone), lets the sends in flight finish, then keeps its runtime until
/// `shards_stopped` resolves (sent or dropped): database connections it opened may be pooled
/// with the shards' and are driven by this runtime.
pub fn spawn(
    worker: Worker,
    phase: watch::Receiver<Phase>,
    shards_stopped: oneshot::Receiver<()>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("hj-mail".to_string())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the mail runtime");
                    return;
                }
            };
            let smtp = match &worker.settings.smtp {
                Some(settings) => match Smtp::new(settings, worker.settings.timeout) {
                    Ok(s) => {
                        tracing::info!(relay = %s.relay, "mail worker started");
                        Some(s)
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot set up SMTP: mail stays in the outbox");
                        None
                    }
                },
                // `engine::start` said so already.
                None => None,
            };
            rt.block_on(async move {
                run(Arc::new(Shared { worker, smtp }), phase).await;
                let _ = shards_stopped.await;
            });
        })
}

struct Shared {
    worker: Worker,
    /// `None`: nothing is claimed or sent.
    smtp: Option<Smtp>,
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
        let sending = shared.smtp.is_some();
        if sending && room > 0 && (poll_due || (more && room >= CONCURRENCY / 4)) {
            let at = now_ms();
            let limit = u32::try_from(room).unwrap_or(u32::MAX);
            match shared
                .worker
                .store
                .claim_mail(at, at + ms(settings.lease), limit)
                .await
            {
                Ok(batch) => {
                    more = batch.len() == room;
                    for m in batch {
                        inflight.spawn(deliver(shared.clone(), m));
                    }
                }
                Err(e) => {
                    more = false;
                    tracing::warn!(error = %e, "cannot claim mails");
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
    // Sends in flight finish (each is bounded by the timeout); nothing new is claimed.
    while inflight.join_next().await.is_some() {}
}

/// Updates the backlog gauge (due mails not yet sent).
async fn backlog(worker: &Worker) {
    match worker.store.mail_backlog(now_ms()).await {
        Ok(n) => worker.process.mail_backlog.store(n, Ordering::Relaxed),
        Err(e) => tracing::debug!(error = %e, "cannot count the mail backlog"),
    }
}

/// Runs `step` with `before` until it deletes less than a batch (at most 20 batches).
async fn prune_batches<'a, F>(what: &str, mut step: F) -> u64
where
    F: FnMut() -> store::StoreFuture<'a, u64>,
{
    let mut total = 0;
    for _ in 0..20 {
        match step().await {
            Ok(n) => {
                total += n;
                if n < u64::from(PRUNE_BATCH) {
                    break;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot prune {what}");
                break;
            }
        }
    }
    total
}

/// Deletes finished mails past the retention, expired email tokens and expired MFA records.
async fn prune(worker: &Worker) {
    let now = crate::unix_now();
    let store = worker.store.as_ref();
    let retention = i64::try_from(worker.settings.retention.as_secs()).unwrap_or(i64::MAX / 2);
    let mails = prune_batches("mails", || store.prune_mail(now - retention, PRUNE_BATCH)).await;
    if mails > 0 {
        tracing::info!(mails, "pruned finished mails past the retention");
    }
    let tokens = prune_batches("email tokens", || {
        store.prune_email_tokens(now - EMAIL_TOKEN_GRACE_SECS, PRUNE_BATCH)
    })
    .await;
    if tokens > 0 {
        tracing::debug!(tokens, "pruned expired email tokens");
    }
    let mfa = prune_batches("MFA challenges", || store.prune_mfa(now, PRUNE_BATCH)).await;
    if mfa > 0 {
        tracing::debug!(records = mfa, "pruned expired MFA challenges and devices");
    }
}

/// One send attempt, from the lease to the recorded result.
async fn deliver(shared: Arc<Shared>, m: ClaimedMail) {
    let w = &shared.worker;
    let Some(smtp) = &shared.smtp else { return };
    if now_ms() + ms(LEASE_MARGIN) >= m.leased_until_ms {
        // The lease ran out before we started (a stalled instance): another worker may have
        // it by now. It is claimed again when due.
        return;
    }
    let attempt = MailAttempt {
        mail_id: m.id,
        attempts: m.attempts,
    };
    let token = Uuid::new_v4();
    if let Some(redis) = &w.redis {
        match redis
            .mail_lock(&attempt, token, w.settings.guard_ttl())
            .await
        {
            Ok(MailLock::Acquired) => {}
            Ok(MailLock::Held) => {
                tracing::debug!(mail_id = %m.id, "mail attempt held by another instance");
                return;
            }
            Ok(MailLock::Sent) => {
                record(
                    w,
                    MailResult::Sent {
                        id: m.id,
                        at_ms: now_ms(),
                        counted: false,
                    },
                )
                .await;
                return;
            }
            // Redis is unreachable: send anyway (at-least-once).
            Err(_) => {}
        }
    }
    let sent = match super::open(&w.master, &m) {
        Some(message) => smtp.send(m.id, &message).await,
        None => Err(
            "cannot decrypt the mail (is HELLOJOHN_MASTER_KEY the key it was \
                     sealed with?)"
                .to_string(),
        ),
    };
    let at = now_ms();
    match sent {
        Ok(()) => {
            w.process.mail_sent_total.fetch_add(1, Ordering::Relaxed);
            if let Some(redis) = &w.redis {
                let _ = redis.mail_sent(&attempt, SENT_MARK_TTL).await;
            }
            record(
                w,
                MailResult::Sent {
                    id: m.id,
                    at_ms: at,
                    counted: true,
                },
            )
            .await;
        }
        Err(error) => {
            let made = m.attempts.saturating_add(1);
            let retry_at_ms =
                (made < w.settings.max_attempts).then(|| at + ms(w.settings.backoff(made)));
            let counter = if retry_at_ms.is_some() {
                &w.process.mail_failed_total
            } else {
                tracing::warn!(
                    mail_id = %m.id,
                    kind = %m.kind,
                    attempts = made,
                    error = %error,
                    "mail exhausted"
                );
                &w.process.mail_exhausted_total
            };
            counter.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(mail_id = %m.id, attempts = made, error = %error, "mail attempt failed");
            record(
                w,
                MailResult::Failed {
                    id: m.id,
                    lease_id: m.lease_id,
                    at_ms: at,
                    error,
                    retry_at_ms,
                },
            )
            .await;
            if let Some(redis) = &w.redis {
                let _ = redis.mail_release(&attempt, token).await;
            }
        }
    }
}

/// Records a result, retrying a few times: an accepted mail not recorded would be sent again.
async fn record(w: &Worker, result: MailResult) {
    let mut wait = Duration::from_millis(100);
    for tries in 1.. {
        match w.store.complete_mail(result.clone()).await {
            Ok(_) => return,
            Err(e) if tries >= 4 => {
                tracing::warn!(error = %e, "cannot record a mail result");
                return;
            }
            Err(_) => {
                tokio::time::sleep(wait).await;
                wait *= 4;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SmtpTls;

    #[test]
    fn settings_follow_the_webhooks_and_smtp() {
        let mut c = Config::for_tests(std::env::temp_dir());
        assert!(
            MailSettings::from_config(&c).smtp.is_none(),
            "no SMTP, no sending"
        );
        c.smtp = Some(SmtpSettings {
            host: "127.0.0.1".into(),
            port: 2525,
            username: None,
            password: None,
            from: "no-reply@acme.test".into(),
            tls: SmtpTls::None,
        });
        let s = MailSettings::from_config(&c);
        assert!(s.smtp.is_some());
        assert_eq!(s.max_attempts, 8);
        assert_eq!(s.timeout, Duration::from_secs(10));
        assert_eq!(s.lease, Duration::from_secs(25));
        assert_eq!(s.poll_interval, c.webhook_poll_interval);
        for (made, base) in [(1, 5.0), (2, 10.0), (3, 20.0), (30, 3600.0)] {
            let d = s.backoff(made).as_secs_f64();
            assert!(
                d >= base * 0.8 - 1e-9 && d <= base * 1.2 + 1e-9,
                "{made}: {d}"
            );
        }
        assert!(s.guard_ttl() > s.lease + s.timeout);
    }
}
