//! Rate limits: one algorithm, GCRA, in two places.
//!
//! The generic cell rate algorithm keeps one number per limited subject, its theoretical
//! arrival time (TAT). A limit of `COUNT/PERIOD` allows a burst of `COUNT` and then one more
//! every emission interval `T = PERIOD / COUNT`. A request at `now` is allowed when
//! `max(TAT, now) + T - PERIOD <= now`, and then moves the TAT to `max(TAT, now) + T`. The
//! bucket is full again when the TAT has passed (`X-RateLimit-Reset`).
//!
//! * Without Redis, [`LocalGcra`] holds the TATs of this instance: one limiter shared by every
//!   shard (a few sharded mutexes, each held for a hash-map lookup), with stale subjects evicted.
//! * With a [`SharedLimiter`] (Redis: the same step as one Lua script, `storage::redis::GCRA_LUA`,
//!   on Redis's clock), all instances share one limit. When it is unreachable the local limiter
//!   answers instead (counted in `hellojohn_redis_fallbacks_total` by the Redis client).
//!
//! Limits: sign-in and session login per client IP, sign-up per IP, refresh and token per IP,
//! sign-outs per IP, and failed sign-ins per account (tenant and normalised email).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::ports::SharedLimiter;

/// A rate as `COUNT/PERIOD`, e.g. `20/1m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub period: Duration,
}

/// The limits of an instance (`HELLOJOHN_RATE_LIMIT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    /// `false`: no limit is checked.
    pub enabled: bool,
    pub sign_in: Rate,
    pub sign_up: Rate,
    pub token: Rate,
    pub failed_sign_in: Rate,
    pub logout: Rate,
    pub admin: Rate,
}

/// A rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// `/v2/auth/login` and `/v2/session/login`, per client IP.
    SignIn,
    /// `/v2/auth/register`, per client IP.
    SignUp,
    /// `/v2/auth/refresh` and `/oauth2/token`, per client IP.
    Token,
    /// Failed password checks, per account.
    FailedSignIn,
    /// `/v2/auth/logout` and `/v2/auth/logout-all`, per client IP: each is a write transaction.
    Logout,
    /// The admin API, per client IP (before any credential is looked at).
    AdminIp,
    /// The admin API, per API key or admin account.
    AdminKey,
}

impl Limit {
    /// The label of `hellojohn_rate_limit_rejections_total{limit}`, also part of the keys.
    pub fn name(self) -> &'static str {
        match self {
            Limit::SignIn => "sign_in",
            Limit::SignUp => "sign_up",
            Limit::Token => "token",
            Limit::FailedSignIn => "failed_sign_in",
            Limit::Logout => "logout",
            Limit::AdminIp => "admin_ip",
            Limit::AdminKey => "admin_key",
        }
    }
}

/// The answer of a limit, with what the `X-RateLimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The burst (`COUNT`).
    pub limit: u32,
    /// Requests left right now.
    pub remaining: u32,
    /// When denied: how long until the next request would be allowed.
    pub retry_after: Duration,
    /// How long until the bucket is full again.
    pub reset: Duration,
}

fn ceil_secs(d: Duration) -> u64 {
    let s = d.as_secs();
    if d.subsec_nanos() > 0 {
        s + 1
    } else {
        s
    }
}

impl Decision {
    /// `Retry-After`: whole seconds, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        ceil_secs(self.retry_after).max(1)
    }

    /// `X-RateLimit-Reset`: whole seconds until full.
    pub fn reset_secs(&self) -> u64 {
        ceil_secs(self.reset)
    }
}

/// One GCRA step in microseconds. Pure, so the maths is tested alone; the Lua script in
/// `storage::redis` is the same step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub allowed: bool,
    pub remaining: u32,
    pub retry_after_us: f64,
    pub reset_us: f64,
    /// The TAT to store (`None`: leave it as it was).
    pub new_tat: Option<f64>,
}

/// `tat`: the stored TAT (`None` when the subject is unknown); `interval`: `T` in µs;
/// `burst`: `COUNT`; `take`: consume one unit when allowed (else only look).
pub fn gcra_step(tat: Option<f64>, now: f64, interval: f64, burst: u32, take: bool) -> Step {
    let period = interval * f64::from(burst);
    let tat = tat.map_or(now, |t| t.max(now));
    let new_tat = tat + interval;
    let allow_at = new_tat - period;
    if now < allow_at {
        return Step {
            allowed: false,
            remaining: 0,
            retry_after_us: allow_at - now,
            reset_us: tat - now,
            new_tat: None,
        };
    }
    // The epsilon absorbs float error: (burst - 1) * T / T must floor to burst - 1.
    let remaining = ((now - allow_at) / interval + 1e-6).floor();
    let remaining = if remaining >= f64::from(burst) {
        burst
    } else {
        remaining.max(0.0) as u32
    };
    if take {
        Step {
            allowed: true,
            remaining,
            retry_after_us: 0.0,
            reset_us: new_tat - now,
            new_tat: Some(new_tat),
        }
    } else {
        Step {
            allowed: true,
            remaining,
            retry_after_us: 0.0,
            reset_us: tat - now,
            new_tat: None,
        }
    }
}

fn interval_us(rate: Rate) -> f64 {
    rate.period.as_secs_f64() * 1e6 / f64::from(rate.count.max(1))
}

fn us(v: f64) -> Duration {
    Duration::from_secs_f64((v / 1e6).max(0.0))
}

const SHARDS: usize = 16;
/// Subjects kept per shard: beyond this the one closest to a full bucket is forgotten.
const MAX_KEYS_PER_SHARD: usize = 16_384;
/// Expired subjects are swept from a shard at most this often (µs).
const SWEEP_EVERY_US: f64 = 1e6;

struct Bucket {
    tats: HashMap<String, f64>,
    next_sweep: f64,
}

/// The in-process GCRA: one per instance, shared by all shards. A subject's TAT lives in one
/// of [`SHARDS`] mutex-guarded maps, chosen by hash, so shards rarely wait on each other.
pub struct LocalGcra {
    shards: Vec<Mutex<Bucket>>,
    hasher: RandomState,
    epoch: Instant,
}

impl Default for LocalGcra {
    fn default() -> Self {
        LocalGcra::new()
    }
}

impl LocalGcra {
    pub fn new() -> LocalGcra {
        LocalGcra {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Bucket {
                        tats: HashMap::new(),
                        next_sweep: 0.0,
                    })
                })
                .collect(),
            hasher: RandomState::new(),
            epoch: Instant::now(),
        }
    }

    /// Microseconds on this limiter's monotonic clock.
    pub fn now_us(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64() * 1e6
    }

    /// One step for `key` now.
    pub fn check(&self, key: &str, rate: Rate, take: bool) -> Decision {
        self.check_at(key, rate, take, self.now_us())
    }

    /// One step for `key` at `now` (µs on this limiter's clock).
    pub fn check_at(&self, key: &str, rate: Rate, take: bool, now: f64) -> Decision {
        let idx = (self.hasher.hash_one(key) as usize) % SHARDS;
        let mut bucket = self.shards[idx]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if now >= bucket.next_sweep {
            bucket.tats.retain(|_, tat| *tat > now);
            bucket.next_sweep = now + SWEEP_EVERY_US;
        }
        let step = gcra_step(
            bucket.tats.get(key).copied(),
            now,
            interval_us(rate),
            rate.count,
            take,
        );
        if let Some(tat) = step.new_tat {
            match bucket.tats.get_mut(key) {
                Some(t) => *t = tat,
                None => {
                    if bucket.tats.len() >= MAX_KEYS_PER_SHARD {
                        bucket.tats.retain(|_, tat| *tat > now);
                    }
                    if bucket.tats.len() >= MAX_KEYS_PER_SHARD {
                        // Forget the subject whose bucket is nearest to full: least is lost.
                        let oldest = bucket
                            .tats
                            .iter()
                            .min_by(|a, b| a.1.total_cmp(b.1))
                            .map(|(k, _)| k.clone());
                        if let Some(k) = oldest {
                            bucket.tats.remove(&k);
                        }
                    }
                    bucket.tats.insert(key.to_string(), tat);
                }
            }
        }
        drop(bucket);
        Decision {
            allowed: step.allowed,
            limit: rate.count,
            remaining: step.remaining,
            retry_after: us(step.retry_after_us),
            reset: us(step.reset_us),
        }
    }

    /// Gives back one unit of `key` taken earlier: its TAT moves back one interval, and a
    /// subject whose bucket is full again is forgotten.
    pub fn refund(&self, key: &str, rate: Rate) {
        self.refund_at(key, rate, self.now_us())
    }

    /// [`LocalGcra::refund`] at `now` (µs on this limiter's clock).
    pub fn refund_at(&self, key: &str, rate: Rate, now: f64) {
        let idx = (self.hasher.hash_one(key) as usize) % SHARDS;
        let mut bucket = self.shards[idx]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(tat) = bucket.tats.get_mut(key) {
            *tat -= interval_us(rate);
            if *tat <= now {
                bucket.tats.remove(key);
            }
        }
    }

    /// Subjects held (all shards).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).tats.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The instance's limiter: the shared one when configured and reachable, else [`LocalGcra`].
pub struct Limiter {
    rates: Rates,
    local: LocalGcra,
    shared: Option<Box<dyn SharedLimiter>>,
}

impl Limiter {
    pub fn new(rates: Rates, shared: Option<Box<dyn SharedLimiter>>) -> Limiter {
        Limiter {
            rates,
            local: LocalGcra::new(),
            shared,
        }
    }

    pub fn enabled(&self) -> bool {
        self.rates.enabled
    }

    pub fn rate(&self, limit: Limit) -> Rate {
        let r = &self.rates;
        match limit {
            Limit::SignIn => r.sign_in,
            Limit::SignUp => r.sign_up,
            Limit::Token => r.token,
            Limit::FailedSignIn => r.failed_sign_in,
            Limit::Logout => r.logout,
            Limit::AdminIp | Limit::AdminKey => r.admin,
        }
    }

    /// Counts one request of `subject` against `limit`. `None` when limits are off.
    pub async fn take(&self, limit: Limit, subject: &str) -> Option<Decision> {
        self.step(limit, subject).await
    }

    /// Gives back one unit of `subject` taken by [`Limiter::take`]: an attempt counted before
    /// its outcome was known turned out not to count (a successful password check). Where
    /// the unit was taken (Redis or the local limiter) is not remembered, so with Redis
    /// unreachable the refund goes to the local limiter; a lost refund only makes the limit
    /// stricter for a while, never looser.
    pub async fn refund(&self, limit: Limit, subject: &str) {
        if !self.enabled() {
            return;
        }
        let rate = self.rate(limit);
        let key = Self::key(limit, subject);
        if let Some(shared) = &self.shared {
            let interval = rate.period / rate.count.max(1);
            if shared.refund(&key, interval).await.is_ok() {
                return;
            }
        }
        self.local.refund(&key, rate);
    }

    fn key(limit: Limit, subject: &str) -> String {
        format!("rl:{}:{}", limit.name(), subject)
    }

    async fn step(&self, limit: Limit, subject: &str) -> Option<Decision> {
        if !self.enabled() {
            return None;
        }
        let rate = self.rate(limit);
        let key = Self::key(limit, subject);
        if let Some(shared) = &self.shared {
            let interval = rate.period / rate.count.max(1);
            // An error was counted as a fallback by the client; the local limiter answers.
            if let Ok(r) = shared.take(&key, interval, rate.count).await {
                return Some(Decision {
                    allowed: r.allowed,
                    limit: rate.count,
                    remaining: u32::try_from(r.remaining)
                        .unwrap_or(u32::MAX)
                        .min(rate.count),
                    retry_after: r.retry_after,
                    reset: r.reset,
                });
            }
        }
        Some(self.local.check(&key, rate, true))
    }
}

/// The failed-sign-in subject of an account: the tenant and a digest of the normalised email
/// (keys hold no email address).
pub fn account_subject(tenant_id: uuid::Uuid, email: &str) -> String {
    let digest = Sha256::digest(email.as_bytes());
    let mut s = format!("{tenant_id}:");
    for b in &digest[..16] {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: f64 = 1e6;

    fn rate(count: u32, secs: u64) -> Rate {
        Rate {
            count,
            period: Duration::from_secs(secs),
        }
    }

    #[test]
    fn burst_then_one_per_interval() {
        // 5 per minute: a burst of 5, then one every 12 s.
        let t = 12.0 * SEC;
        let mut tat = None;
        for i in 0..5 {
            let s = gcra_step(tat, 0.0, t, 5, true);
            assert!(s.allowed, "request {i}");
            assert_eq!(s.remaining, 4 - i);
            assert_eq!(s.reset_us, t * f64::from(i + 1));
            tat = s.new_tat;
        }
        let s = gcra_step(tat, 0.0, t, 5, true);
        assert!(!s.allowed);
        assert_eq!(s.new_tat, None, "a denial changes nothing");
        assert_eq!(s.retry_after_us, t);
        assert_eq!(s.reset_us, 60.0 * SEC);
        // Just before the interval: still denied; at it: one more.
        assert!(!gcra_step(tat, t - 1.0, t, 5, true).allowed);
        let s = gcra_step(tat, t, t, 5, true);
        assert!(s.allowed);
        assert_eq!(s.remaining, 0);
        // After a full period idle, the whole burst is back.
        let s = gcra_step(tat, 60.0 * SEC, t, 5, true);
        assert_eq!(s.remaining, 4);
    }

    #[test]
    fn peek_does_not_consume() {
        let t = SEC;
        let s = gcra_step(None, 0.0, t, 2, false);
        assert!(s.allowed);
        assert_eq!(s.new_tat, None);
        assert_eq!(s.reset_us, 0.0);
        let tat = gcra_step(None, 0.0, t, 2, true).new_tat;
        let tat = gcra_step(tat, 0.0, t, 2, true).new_tat;
        let s = gcra_step(tat, 0.0, t, 2, false);
        assert!(!s.allowed);
        assert_eq!(s.retry_after_us, t);
    }

    #[test]
    fn fractional_intervals_keep_the_burst() {
        // 3 per second: T = 333333.33 µs; all three of a burst must pass, the fourth not.
        let t = interval_us(rate(3, 1));
        let mut tat = None;
        for want in [2, 1, 0] {
            let s = gcra_step(tat, 0.0, t, 3, true);
            assert!(s.allowed);
            assert_eq!(s.remaining, want);
            tat = s.new_tat;
        }
        assert!(!gcra_step(tat, 0.0, t, 3, true).allowed);
    }

    #[test]
    fn steady_rate_over_time() {
        // 10 per 10 s, one request every 0.5 s for 60 s: 10 (burst) + 60 / 1 (refill) = 70.
        let t = SEC;
        let mut tat = None;
        let mut allowed = 0;
        for i in 0..120 {
            let s = gcra_step(tat, f64::from(i) * 0.5 * SEC, t, 10, true);
            if s.allowed {
                allowed += 1;
                tat = s.new_tat;
            }
        }
        assert!((69..=70).contains(&allowed), "{allowed}");
    }

    #[test]
    fn local_limiter_keys_are_separate() {
        let l = LocalGcra::new();
        let r = rate(2, 60);
        assert!(l.check_at("a", r, true, 0.0).allowed);
        assert!(l.check_at("a", r, true, 0.0).allowed);
        let d = l.check_at("a", r, true, 0.0);
        assert!(!d.allowed);
        assert_eq!(d.limit, 2);
        assert_eq!(d.remaining, 0);
        assert_eq!(d.retry_after_secs(), 30);
        assert_eq!(d.reset_secs(), 60);
        assert!(l.check_at("b", r, true, 0.0).allowed);
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn refund_gives_back_one_unit() {
        let l = LocalGcra::new();
        let r = rate(2, 60);
        assert!(l.check_at("a", r, true, 0.0).allowed);
        assert!(l.check_at("a", r, true, 0.0).allowed);
        assert!(!l.check_at("a", r, true, 0.0).allowed);
        l.refund_at("a", r, 0.0);
        let d = l.check_at("a", r, true, 0.0);
        assert!(d.allowed, "the refunded unit is available again");
        assert!(!l.check_at("a", r, true, 0.0).allowed);
        // Refunding every unit forgets the subject; refunding more is harmless.
        for _ in 0..3 {
            l.refund_at("a", r, 0.0);
        }
        assert!(l.is_empty());
        // A full bucket again: two more pass.
        assert!(l.check_at("a", r, true, 0.0).allowed);
        assert!(l.check_at("a", r, true, 0.0).allowed);
        assert!(!l.check_at("a", r, true, 0.0).allowed);
    }

    #[test]
    fn stale_subjects_are_evicted() {
        let l = LocalGcra::new();
        let r = rate(1, 1);
        for i in 0..100 {
            l.check_at(&format!("k{i}"), r, true, 0.0);
        }
        assert_eq!(l.len(), 100);
        // Two seconds later every bucket is full again: each shard sweeps on its next use.
        for i in 0..1000 {
            l.check_at(&format!("again{i}"), r, false, 2.0 * SEC);
        }
        assert_eq!(l.len(), 0);
    }

    #[test]
    fn subjects_are_bounded_per_shard() {
        let l = LocalGcra::new();
        let r = rate(1, 3600);
        for i in 0..(SHARDS * MAX_KEYS_PER_SHARD + 500) {
            l.check_at(&format!("k{i}"), r, true, i as f64);
        }
        assert!(l.len() <= SHARDS * MAX_KEYS_PER_SHARD);
    }

    #[test]
    fn retry_after_is_at_least_a_second() {
        let d = Decision {
            allowed: false,
            limit: 1,
            remaining: 0,
            retry_after: Duration::from_millis(10),
            reset: Duration::from_millis(1500),
        };
        assert_eq!(d.retry_after_secs(), 1);
        assert_eq!(d.reset_secs(), 2);
    }

    #[test]
    fn account_subjects_hide_the_email() {
        let t = uuid::Uuid::nil();
        let s = account_subject(t, "ada@example.com");
        assert!(!s.contains("ada"));
        assert_eq!(s, account_subject(t, "ada@example.com"));
        assert_ne!(s, account_subject(t, "bob@example.com"));
    }

    #[tokio::test]
    async fn disabled_limits_answer_nothing() {
        let rate = rate(5, 60);
        let rates = Rates {
            enabled: false,
            sign_in: rate,
            sign_up: rate,
            token: rate,
            failed_sign_in: rate,
            logout: rate,
            admin: rate,
        };
        let l = Limiter::new(rates, None);
        assert!(!l.enabled());
        assert_eq!(l.take(Limit::SignIn, "1.2.3.4").await, None);
    }
}
