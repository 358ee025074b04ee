//! The guard of mail attempts across instances, as for webhooks (`webhooks.rs`): one sender per
//! attempt, and a record of attempts the relay accepted, so that a mail whose database lease
//! ran out while its first holder was still sending is not sent again by another instance.
//! The same Lua scripts, its own keys (`<prefix>mail:<id>:<attempts>`).

use std::time::Duration;

use uuid::Uuid;

use super::{millis, Redis, RedisError};

/// The value of an attempt's guard once the relay accepted the mail.
const MAIL_SENT: &str = "sent";

/// One mail attempt, as the Redis guard names it: a mail and the attempts it had made when it
/// was claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailAttempt {
    pub mail_id: Uuid,
    pub attempts: u32,
}

/// What [`Redis::mail_lock`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailLock {
    /// This worker holds the attempt: send it.
    Acquired,
    /// Another worker holds it (its lease may have expired in the database while it sends).
    Held,
    /// Another worker already had it accepted by the relay.
    Sent,
}

impl Redis {
    fn mail_key(&self, attempt: &MailAttempt) -> String {
        self.key(&[
            "mail",
            &attempt.mail_id.to_string(),
            &attempt.attempts.to_string(),
        ])
    }

    /// Takes the guard of a mail attempt for `ttl` with `token`, unless another worker holds
    /// it or already sent it.
    pub async fn mail_lock(
        &self,
        attempt: &MailAttempt,
        token: Uuid,
        ttl: Duration,
    ) -> Result<MailLock, RedisError> {
        let mut c = self.begin()?;
        let key = self.mail_key(attempt);
        let script = &self.inner.webhook_lock;
        let (taken, value): (i64, String) = self
            .finish(async move {
                let mut inv = script.key(key);
                inv.arg(token.to_string()).arg(millis(ttl));
                inv.invoke_async(&mut c).await
            })
            .await?;
        Ok(match (taken, value.as_str()) {
            (1, _) => MailLock::Acquired,
            (_, MAIL_SENT) => MailLock::Sent,
            // Gone between the SET and the GET (it expired): held a moment ago; the next claim
            // after the database lease ends tries again.
            _ => MailLock::Held,
        })
    }

    /// Drops the guard of an attempt that failed, if `token` still holds it, so that the retry
    /// (a new attempt, a new key) is not delayed and the key does not linger.
    pub async fn mail_release(&self, attempt: &MailAttempt, token: Uuid) -> Result<(), RedisError> {
        let mut c = self.begin()?;
        let key = self.mail_key(attempt);
        let script = &self.inner.webhook_release;
        self.finish(async move {
            let mut inv = script.key(key);
            inv.arg(token.to_string());
            inv.invoke_async::<i64>(&mut c).await
        })
        .await
        .map(|_| ())
    }

    /// Marks an attempt sent for `ttl`: a worker that claims it again (its database update was
    /// lost) records it as sent instead of sending it again.
    pub async fn mail_sent(&self, attempt: &MailAttempt, ttl: Duration) -> Result<(), RedisError> {
        let c = self.begin()?;
        self.set_px(c, self.mail_key(attempt), MAIL_SENT, ttl).await
    }
}
