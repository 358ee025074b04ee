//! The guard of outbox attempts across instances, one for both kinds (mail and webhook
//! deliveries): one sender per attempt, and a record of attempts already done (the relay
//! accepted the mail, the endpoint answered 2xx), so that an item whose database lease ran out
//! while its first holder was still sending is not sent again by another instance.
//!
//! The keys are those the kinds had when each had its own guard, so that instances of the
//! previous release and of this one guard the same attempts during a rolling upgrade:
//! `<prefix>mail:<id>:<attempts>` (done: `sent`) and
//! `<prefix>wh:<id>:<generation>:<attempts>` (done: `delivered`).

use std::time::Duration;

use uuid::Uuid;

use super::{millis, Redis, RedisError};
use crate::{Claimed, OutboxKind};

/// One attempt, as the Redis guard names it: an item, its redelivery generation (always 0
/// for a mail) and the attempts it had made when it was claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxAttempt {
    pub kind: OutboxKind,
    pub id: Uuid,
    pub generation: u32,
    pub attempts: u32,
}

impl OutboxAttempt {
    /// The attempt a claimed item is about to make.
    pub fn of(claimed: &Claimed) -> OutboxAttempt {
        OutboxAttempt {
            kind: claimed.kind(),
            id: claimed.id,
            generation: claimed.generation,
            attempts: claimed.attempts,
        }
    }

    /// The guard's value once the attempt is done.
    fn done_mark(&self) -> &'static str {
        match self.kind {
            OutboxKind::Mail => "sent",
            OutboxKind::Webhook => "delivered",
        }
    }
}

/// What [`Redis::attempt_lock`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptLock {
    /// This worker holds the attempt: send it.
    Acquired,
    /// Another worker holds it (its lease may have expired in the database while it sends).
    Held,
    /// Another worker already had it done (the relay accepted the mail, the endpoint answered
    /// 2xx).
    Done,
}

impl Redis {
    fn attempt_key(&self, attempt: &OutboxAttempt) -> String {
        let id = attempt.id.to_string();
        let attempts = attempt.attempts.to_string();
        match attempt.kind {
            OutboxKind::Mail => self.key(&["mail", &id, &attempts]),
            OutboxKind::Webhook => {
                self.key(&["wh", &id, &attempt.generation.to_string(), &attempts])
            }
        }
    }

    /// Takes the guard of an attempt for `ttl` with `token`, unless another worker holds it or
    /// already had it done.
    pub async fn attempt_lock(
        &self,
        attempt: &OutboxAttempt,
        token: Uuid,
        ttl: Duration,
    ) -> Result<AttemptLock, RedisError> {
        let mut c = self.begin()?;
        let key = self.attempt_key(attempt);
        let script = &self.inner.attempt_lock;
        let (taken, value): (i64, String) = self
            .finish(async move {
                let mut inv = script.key(key);
                inv.arg(token.to_string()).arg(millis(ttl));
                inv.invoke_async(&mut c).await
            })
            .await?;
        Ok(match (taken, value.as_str()) {
            (1, _) => AttemptLock::Acquired,
            (_, v) if v == attempt.done_mark() => AttemptLock::Done,
            // Gone between the SET and the GET (it expired): held a moment ago; the next claim
            // after the database lease ends tries again.
            _ => AttemptLock::Held,
        })
    }

    /// Drops the guard of an attempt that failed, if `token` still holds it, so that the retry
    /// (a new attempt, a new key) is not delayed and the key does not linger.
    pub async fn attempt_release(
        &self,
        attempt: &OutboxAttempt,
        token: Uuid,
    ) -> Result<(), RedisError> {
        let mut c = self.begin()?;
        let key = self.attempt_key(attempt);
        let script = &self.inner.attempt_release;
        self.finish(async move {
            let mut inv = script.key(key);
            inv.arg(token.to_string());
            inv.invoke_async::<i64>(&mut c).await
        })
        .await
        .map(|_| ())
    }

    /// Marks an attempt done for `ttl`: a worker that claims it again (its database update was
    /// lost) records it as done instead of sending it again.
    pub async fn attempt_done(
        &self,
        attempt: &OutboxAttempt,
        ttl: Duration,
    ) -> Result<(), RedisError> {
        let c = self.begin()?;
        self.set_px(c, self.attempt_key(attempt), attempt.done_mark(), ttl)
            .await
    }
}
