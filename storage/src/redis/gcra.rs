//! The distributed rate limit: the GCRA step as one Lua script on Redis's clock.

use std::time::Duration;

use super::{micros, GcraReply, Redis, RedisError};

impl Redis {
    /// One GCRA step for `subject` (e.g. `rl:sign_in:203.0.113.7`): `burst` units, one more
    /// every `interval`. `take` consumes a unit when allowed; otherwise the call only looks.
    pub async fn gcra(
        &self,
        subject: &str,
        interval: Duration,
        burst: u32,
        take: bool,
    ) -> Result<GcraReply, RedisError> {
        let mut c = self.begin()?;
        let key = self.key(&[subject]);
        let interval_us = interval.as_secs_f64() * 1e6;
        let script = &self.inner.script;
        let reply: Vec<i64> = self
            .finish(async move {
                let mut inv = script.key(key);
                inv.arg(interval_us).arg(burst).arg(u8::from(take));
                inv.invoke_async(&mut c).await
            })
            .await?;
        match reply.as_slice() {
            [allowed, remaining, retry_after, reset] => Ok(GcraReply {
                allowed: *allowed == 1,
                remaining: u64::try_from(*remaining).unwrap_or(0),
                retry_after: micros(*retry_after),
                reset: micros(*reset),
            }),
            _ => {
                self.fallback();
                Err(RedisError::Failed("unexpected GCRA reply".to_string()))
            }
        }
    }

    /// Gives back one unit of `subject` taken by [`Redis::gcra`] (see [`GCRA_REFUND_LUA`]).
    pub async fn gcra_refund(&self, subject: &str, interval: Duration) -> Result<(), RedisError> {
        let mut c = self.begin()?;
        let key = self.key(&[subject]);
        let interval_us = interval.as_secs_f64() * 1e6;
        let script = &self.inner.refund;
        let _: i64 = self
            .finish(async move {
                let mut inv = script.key(key);
                inv.arg(interval_us);
                inv.invoke_async(&mut c).await
            })
            .await?;
        Ok(())
    }
}
