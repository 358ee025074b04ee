//! The outbox workers: one generic loop ([`worker`]) that claims, guards, sends, retries and
//! records, for each kind of the transactional outbox (`store::OutboxKind`): account mail
//! (`mail::worker`, over SMTP) and webhook deliveries (`webhook::worker`, signed HTTP POSTs).
//! What a kind does is its [`Deliver`] implementation: how one attempt is sent, and what is
//! counted and logged about it.
//!
//! Each instance runs one worker per kind, on its own thread (`hj-mail`, `hj-webhook`) with its
//! own runtime, off the shards' event loops. Every poll interval (and at once while there is
//! more work than one batch) a worker leases due items from the store (`Outbox::claim`: `FOR
//! UPDATE SKIP LOCKED` on PostgreSQL, a conditional update on SQLite's single writer) and
//! sends each in its own task, at most [`Deliver::CONCURRENCY`] at a time. An item is leased
//! for [`WorkerSettings::lease`]; an instance that dies mid-send leaves it to be claimed again
//! when the lease ends, so nothing is lost (at-least-once). A failed attempt is scheduled
//! again with exponential backoff and jitter ([`WorkerSettings::backoff`]) until the kind's
//! attempts run out (exhausted). A failure is recorded only by the holder of the lease; a
//! success is recorded whoever reports it.
//!
//! With Redis, an attempt is also guarded by a Redis key (item, generation for a webhook
//! delivery, attempt number): a worker that claims an item whose lease ran out while another
//! instance is still sending it finds the key held and skips it; once an attempt succeeded
//! (the relay accepted the mail, the endpoint answered 2xx) the key says so for
//! [`worker::DONE_MARK_TTL`], and a worker that claims it again (the first one's database
//! update was lost) records it done without sending. Duplicates are then only possible when
//! an instance dies between the success and recording it, or while Redis is unreachable (the
//! worker sends anyway: at-least-once).
//!
//! The same worker prunes, every [`worker::PRUNE_INTERVAL`]: finished items past the retention
//! (`Outbox::prune`), and what the kind's [`Deliver::prune_more`] adds.

pub mod worker;

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use rand::Rng as _;
use store::{Claimed, OutboxKind, Store};

use crate::metrics::Process;
pub use worker::{spawn, Worker};

/// What a worker needs from the configuration, whatever its kind.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub poll_interval: Duration,
    /// The longest one attempt may take.
    pub timeout: Duration,
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub lease: Duration,
    /// Finished items older than this are deleted.
    pub retention: Duration,
}

impl WorkerSettings {
    /// The delay before attempt `made + 1`, after `made` failed attempts: base · 2^(made-1),
    /// capped, with ±20 % jitter so that many items failing together do not retry in step.
    pub fn backoff(&self, made: u32) -> Duration {
        let exp = made.saturating_sub(1).min(30);
        let raw = self
            .backoff_base
            .saturating_mul(1u32 << exp)
            .min(self.backoff_max);
        raw.mul_f64(rand::thread_rng().gen_range(0.8..=1.2))
    }

    /// The life of an attempt's Redis guard: past the lease by the longest send.
    pub fn guard_ttl(&self) -> Duration {
        self.lease + self.timeout + Duration::from_secs(5)
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The relay accepted the mail; the endpoint answered 2xx (its status code).
    Done { status_code: Option<u16> },
    /// Anything else: refused, no answer, an answer other than 2xx (its status code), a
    /// message or secret that cannot be opened.
    Failed {
        status_code: Option<u16>,
        error: String,
    },
}

/// One kind's sender: what the generic worker cannot know. Its names keep the log lines,
/// thread names and metrics each kind had when it had its own worker.
pub trait Deliver: Send + Sync + 'static {
    const KIND: OutboxKind;
    /// The worker thread's name.
    const THREAD: &'static str;
    /// Items in flight per instance.
    const CONCURRENCY: usize;
    /// How log lines name the items (`cannot claim {ITEMS}`), one item (`cannot record a
    /// {ITEM} result`), and what the prune deletes (`cannot prune {PRUNED}`).
    const ITEMS: &'static str;
    const ITEM: &'static str;
    const PRUNED: &'static str;

    /// Whether this instance sends at all. A worker that does not still counts the backlog
    /// and prunes.
    fn enabled(&self) -> bool {
        true
    }

    /// Makes one attempt, within the worker's timeout.
    fn send<'a>(&'a self, item: &'a Claimed) -> impl Future<Output = Attempt> + Send + 'a;

    /// The kind's backlog gauge.
    fn backlog_gauge(process: &Process) -> &AtomicU64;

    /// Counts an attempt that succeeded at `at_ms`.
    fn delivered(&self, process: &Process, item: &Claimed, at_ms: i64);

    /// Counts and logs an attempt that failed, the `made`-th; `exhausted`: the last.
    fn failed(&self, process: &Process, item: &Claimed, made: u32, error: &str, exhausted: bool);

    /// Logs an attempt skipped because another instance holds its Redis guard.
    fn held(&self, item: &Claimed);

    /// Logs how many finished items the prune deleted (more than none).
    fn pruned(&self, count: u64);

    /// Prunes what else expires on this worker's cadence.
    fn prune_more<'a>(&'a self, store: &'a dyn Store) -> impl Future<Output = ()> + Send + 'a;
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
    fn the_guard_outlives_the_lease_and_a_send() {
        let s = settings();
        assert!(s.guard_ttl() > s.lease + s.timeout);
    }
}
