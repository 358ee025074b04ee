//! The mail worker: the outbox worker (`outbox::worker`, which documents the lease, the Redis
//! guard and the retries) with [`MailSender`], on its own thread (`hj-mail`).
//!
//! Without SMTP settings (no `HELLOJOHN_SMTP_HOST`) it sends nothing: mails stay in the outbox,
//! pending, for an instance that has them; it still counts the backlog and prunes (expired
//! email tokens and MFA records must go whether or not this instance sends mail).
//!
//! It prunes, every `outbox::worker::PRUNE_INTERVAL`: finished mails past the retention,
//! expired email tokens, expired MFA challenges and remembered devices.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use store::{Claimed, OutboxKind, Payload, Store};
use tokio::sync::{oneshot, watch};

use super::smtp::Smtp;
use crate::app::Phase;
use crate::config::{Config, SmtpSettings};
use crate::metrics::Process;
use crate::outbox::worker::{prune_batches, PRUNE_BATCH};
use crate::outbox::{Attempt, Deliver, Worker, WorkerSettings};
use auth::MasterKey;

/// Mails in flight per instance (one SMTP connection each).
pub const CONCURRENCY: usize = 8;
/// Expired email tokens are kept this long, so that a late click reads "expired", not
/// "unknown".
const EMAIL_TOKEN_GRACE_SECS: i64 = 24 * 3600;

/// What the worker needs from the configuration.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `None`: mail is disabled on this instance (nothing is claimed or sent).
    pub smtp: Option<SmtpSettings>,
    pub worker: WorkerSettings,
    /// `HELLOJOHN_AUDIT_RETENTION`: audit-log entries older than this are purged with the
    /// other housekeeping of this worker (expired email tokens and MFA records).
    pub audit_retention: Option<Duration>,
}

impl MailSettings {
    /// Poll interval, backoff, lease and retention are the webhooks'
    /// (`HELLOJOHN_WEBHOOK_POLL_INTERVAL`, `HELLOJOHN_WEBHOOK_RETENTION`).
    pub fn from_config(c: &Config) -> MailSettings {
        MailSettings {
            smtp: c.smtp.clone(),
            worker: WorkerSettings {
                poll_interval: c.webhook_poll_interval,
                timeout: c.smtp_timeout,
                max_attempts: c.mail_max_attempts.max(1),
                backoff_base: c.webhook_backoff_base,
                backoff_max: c.webhook_backoff_max.max(c.webhook_backoff_base),
                lease: c
                    .webhook_lease
                    .unwrap_or(c.smtp_timeout * 2 + Duration::from_secs(5)),
                retention: c.webhook_retention,
            },
            audit_retention: c.audit_retention,
        }
    }
}

/// Starts the mail worker on its own thread (see `outbox::worker::spawn`); its SMTP client is
/// set up there.
pub fn spawn(
    worker: Worker,
    settings: MailSettings,
    master: MasterKey,
    phase: watch::Receiver<Phase>,
    shards_stopped: oneshot::Receiver<()>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let timeout = settings.worker.timeout;
    let audit_retention = settings.audit_retention;
    let make = move || {
        let smtp = match &settings.smtp {
            Some(smtp) => match Smtp::new(smtp, timeout) {
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
        MailSender {
            master,
            smtp,
            audit_retention,
        }
    };
    crate::outbox::spawn(worker, make, phase, shards_stopped)
}

/// Sends mail through the SMTP relay.
pub struct MailSender {
    master: MasterKey,
    /// `None`: nothing is claimed or sent.
    smtp: Option<Smtp>,
    audit_retention: Option<Duration>,
}

impl Deliver for MailSender {
    const KIND: OutboxKind = OutboxKind::Mail;
    const THREAD: &'static str = "hj-mail";
    const CONCURRENCY: usize = CONCURRENCY;
    const ITEMS: &'static str = "mails";
    const ITEM: &'static str = "mail";
    const PRUNED: &'static str = "mails";

    fn enabled(&self) -> bool {
        self.smtp.is_some()
    }

    async fn send(&self, item: &Claimed) -> Attempt {
        let (Some(smtp), Payload::Mail(mail)) = (&self.smtp, &item.payload) else {
            return Attempt::Failed {
                status_code: None,
                error: "not a mail this instance can send".to_string(),
            };
        };
        let sent = match super::open_sealed(&self.master, item.id, &mail.message_sealed) {
            // The relay's own timeout bounds the send.
            Some(message) => smtp.send(item.id, &message).await,
            None => Err(
                "cannot decrypt the mail (is HELLOJOHN_MASTER_KEY the key it was \
                         sealed with?)"
                    .to_string(),
            ),
        };
        match sent {
            Ok(()) => Attempt::Done { status_code: None },
            Err(error) => Attempt::Failed {
                status_code: None,
                error,
            },
        }
    }

    fn backlog_gauge(process: &Process) -> &AtomicU64 {
        &process.mail_backlog
    }

    fn delivered(&self, process: &Process, _item: &Claimed, _at_ms: i64) {
        process.mail_sent_total.fetch_add(1, Ordering::Relaxed);
    }

    fn failed(&self, process: &Process, item: &Claimed, made: u32, error: &str, exhausted: bool) {
        let counter = if exhausted {
            let kind = match &item.payload {
                Payload::Mail(m) => m.kind.as_str(),
                Payload::Webhook(_) => "",
            };
            tracing::warn!(
                mail_id = %item.id,
                kind = %kind,
                attempts = made,
                error = %error,
                "mail exhausted"
            );
            &process.mail_exhausted_total
        } else {
            &process.mail_failed_total
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(mail_id = %item.id, attempts = made, error = %error, "mail attempt failed");
    }

    fn held(&self, item: &Claimed) {
        tracing::debug!(mail_id = %item.id, "mail attempt held by another instance");
    }

    fn pruned(&self, count: u64) {
        tracing::info!(mails = count, "pruned finished mails past the retention");
    }

    /// Expired email tokens and expired MFA records.
    async fn prune_more(&self, store: &dyn Store) {
        let now = crate::unix_now();
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
        if let Some(retention) = self.audit_retention {
            let before = now - i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
            let entries = prune_batches("audit-log entries", || {
                store.purge_audit(None, before, PRUNE_BATCH, None)
            })
            .await;
            if entries > 0 {
                tracing::info!(
                    entries,
                    "purged audit-log entries past HELLOJOHN_AUDIT_RETENTION"
                );
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
        let w = &s.worker;
        assert_eq!(w.max_attempts, 8);
        assert_eq!(w.timeout, Duration::from_secs(10));
        assert_eq!(w.lease, Duration::from_secs(25));
        assert_eq!(w.poll_interval, c.webhook_poll_interval);
        for (made, base) in [(1, 5.0), (2, 10.0), (3, 20.0), (30, 3600.0)] {
            let d = w.backoff(made).as_secs_f64();
            assert!(
                d >= base * 0.8 - 1e-9 && d <= base * 1.2 + 1e-9,
                "{made}: {d}"
            );
        }
        assert!(w.guard_ttl() > w.lease + w.timeout);
    }

    #[test]
    fn the_sender_is_the_mail_kind_on_its_thread() {
        assert_eq!(MailSender::KIND, OutboxKind::Mail);
        assert_eq!(MailSender::THREAD, "hj-mail");
        let disabled = MailSender {
            audit_retention: None,
            master: MasterKey::generate(),
            smtp: None,
        };
        assert!(!disabled.enabled(), "without SMTP nothing is claimed");
    }
}
