//! The guard of webhook attempts across instances: one sender per attempt, and a record of
//! attempts already delivered.

use std::time::Duration;

use uuid::Uuid;

use super::{millis, Redis, RedisError, WebhookAttempt, WebhookLock, WEBHOOK_DELIVERED};

impl Redis {
    fn webhook_key(&self, attempt: &WebhookAttempt) -> String {
        self.key(&[
            "wh",
            &attempt.delivery_id.to_string(),
            &attempt.generation.to_string(),
            &attempt.attempts.to_string(),
        ])
    }

    /// Takes the guard of a webhook attempt for `ttl` with `token`, unless another worker holds
    /// it or already delivered it.
    pub async fn webhook_lock(
        &self,
        attempt: &WebhookAttempt,
        token: Uuid,
        ttl: Duration,
    ) -> Result<WebhookLock, RedisError> {
        let mut c = self.begin()?;
        let key = self.webhook_key(attempt);
        let script = &self.inner.webhook_lock;
        let (taken, value): (i64, String) = self
            .finish(async move {
                let mut inv = script.key(key);
                inv.arg(token.to_string()).arg(millis(ttl));
                inv.invoke_async(&mut c).await
            })
            .await?;
        Ok(match (taken, value.as_str()) {
            (1, _) => WebhookLock::Acquired,
            (_, WEBHOOK_DELIVERED) => WebhookLock::Delivered,
            // Gone between the SET and the GET (it expired): held a moment ago; the next claim
            // after the database lease ends tries again.
            _ => WebhookLock::Held,
        })
    }

    /// Drops the guard of an attempt that failed, if `token` still holds it, so that the retry
    /// (a new attempt, a new key) is not delayed and the key does not linger.
    pub async fn webhook_release(
        &self,
        attempt: &WebhookAttempt,
        token: Uuid,
    ) -> Result<(), RedisError> {
        let mut c = self.begin()?;
        let key = self.webhook_key(attempt);
        let script = &self.inner.webhook_release;
        self.finish(async move {
            let mut inv = script.key(key);
            inv.arg(token.to_string());
            inv.invoke_async::<i64>(&mut c).await
        })
        .await
        .map(|_| ())
    }

    /// Marks an attempt delivered for `ttl`: a worker that claims it again (its database update
    /// was lost) records it as delivered instead of sending it again.
    pub async fn webhook_delivered(
        &self,
        attempt: &WebhookAttempt,
        ttl: Duration,
    ) -> Result<(), RedisError> {
        let c = self.begin()?;
        self.set_px(c, self.webhook_key(attempt), WEBHOOK_DELIVERED, ttl)
            .await
    }
}
