//! The loop every outbox worker runs (see the module documentation of `outbox` for what it
//! guarantees): poll, claim, lease margin, concurrency, the Redis guard, backoff, recording the
//! result, the backlog gauge and pruning.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use storage::redis::{AttemptLock, OutboxAttempt, Redis};
use store::{Claimed, OutboxResult, Store};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::{Attempt, Deliver, WorkerSettings};
use crate::app::Phase;
use crate::metrics::Process;

/// How long a success is remembered in Redis (see the module documentation of `outbox`).
pub const DONE_MARK_TTL: Duration = Duration::from_secs(15 * 60);
/// An attempt is not started when less than this is left of its lease.
const LEASE_MARGIN: Duration = Duration::from_millis(20);
/// How often each worker prunes (idempotent across instances).
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// Rows deleted per statement, so that pruning never holds locks for long.
pub const PRUNE_BATCH: u32 = 5000;

/// What a worker works with, whatever its kind.
pub struct Worker {
    pub store: Arc<dyn Store>,
    pub redis: Option<Redis>,
    pub process: Arc<Process>,
    pub settings: WorkerSettings,
}

/// Starts the worker on its own thread, with the sender `make` builds there (once the worker's
/// runtime exists). It stops claiming once `phase` turns to draining (or its sender is gone),
/// lets the attempts in flight finish, then keeps its runtime until `shards_stopped` resolves
/// (sent or dropped): database connections it opened may be pooled with the shards' and are
/// driven by this runtime.
pub fn spawn<D, F>(
    worker: Worker,
    make: F,
    phase: watch::Receiver<Phase>,
    shards_stopped: oneshot::Receiver<()>,
) -> std::io::Result<std::thread::JoinHandle<()>>
where
    D: Deliver,
    F: FnOnce() -> D + Send + 'static,
{
    std::thread::Builder::new()
        .name(D::THREAD.to_string())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the {} runtime", D::KIND);
                    return;
                }
            };
            let sender = make();
            rt.block_on(async move {
                run(Arc::new(Shared { worker, sender }), phase).await;
                let _ = shards_stopped.await;
            });
        })
}

struct Shared<D> {
    worker: Worker,
    sender: D,
}

fn now_ms() -> i64 {
    crate::unix_now_ms()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

async fn run<D: Deliver>(shared: Arc<Shared<D>>, mut phase: watch::Receiver<Phase>) {
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
            backlog(&shared).await;
        }
        if now >= next_prune {
            next_prune = now + PRUNE_INTERVAL;
            prune(&shared).await;
        }
        let room = D::CONCURRENCY.saturating_sub(inflight.len());
        let sending = shared.sender.enabled();
        // When more is due, claim again once a quarter of the slots are free, not one by one.
        if sending && room > 0 && (poll_due || (more && room >= D::CONCURRENCY / 4)) {
            let at = now_ms();
            let limit = u32::try_from(room).unwrap_or(u32::MAX);
            match shared
                .worker
                .store
                .claim(D::KIND, at, at + ms(settings.lease), limit)
                .await
            {
                Ok(batch) => {
                    more = batch.len() == room;
                    for item in batch {
                        inflight.spawn(deliver(shared.clone(), item));
                    }
                }
                Err(e) => {
                    more = false;
                    tracing::warn!(error = %e, "cannot claim {}", D::ITEMS);
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
    // Attempts in flight finish (each is bounded by the timeout); nothing new is claimed.
    while inflight.join_next().await.is_some() {}
}

/// Updates the backlog gauge (due items not yet done, all instances).
async fn backlog<D: Deliver>(shared: &Shared<D>) {
    let w = &shared.worker;
    match w.store.backlog(D::KIND, now_ms()).await {
        Ok(n) => D::backlog_gauge(&w.process).store(n, Ordering::Relaxed),
        Err(e) => tracing::debug!(error = %e, "cannot count the {} backlog", D::KIND),
    }
}

/// Runs `step` until it deletes less than a batch (at most 20 batches: a huge backlog of old
/// rows is worked off over several intervals). Returns how many rows went.
pub async fn prune_batches<'a, F>(what: &str, mut step: F) -> u64
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

/// Deletes finished items past the retention, then what the kind prunes besides.
async fn prune<D: Deliver>(shared: &Shared<D>) {
    let w = &shared.worker;
    let store = w.store.as_ref();
    let retention = i64::try_from(w.settings.retention.as_secs()).unwrap_or(i64::MAX / 2);
    let before = crate::unix_now() - retention;
    let n = prune_batches(D::PRUNED, || store.prune(D::KIND, before, PRUNE_BATCH)).await;
    if n > 0 {
        shared.sender.pruned(n);
    }
    shared.sender.prune_more(store).await;
}

/// One attempt, from the lease to the recorded result.
async fn deliver<D: Deliver>(shared: Arc<Shared<D>>, item: Claimed) {
    let w = &shared.worker;
    if now_ms() + ms(LEASE_MARGIN) >= item.leased_until_ms {
        // The lease ran out before we started (a stalled instance): another worker may have
        // it by now. It is claimed again when due.
        return;
    }
    let attempt = OutboxAttempt::of(&item);
    let token = Uuid::new_v4();
    if let Some(redis) = &w.redis {
        match redis
            .attempt_lock(&attempt, token, w.settings.guard_ttl())
            .await
        {
            Ok(AttemptLock::Acquired) => {}
            Ok(AttemptLock::Held) => {
                shared.sender.held(&item);
                return;
            }
            Ok(AttemptLock::Done) => {
                let done = OutboxResult::Done {
                    kind: D::KIND,
                    id: item.id,
                    at_ms: now_ms(),
                    status_code: None,
                    counted: false,
                };
                record::<D>(w, done).await;
                return;
            }
            // Redis is unreachable: send anyway (at-least-once).
            Err(_) => {}
        }
    }
    let sent = shared.sender.send(&item).await;
    let at = now_ms();
    match sent {
        Attempt::Done { status_code } => {
            shared.sender.delivered(&w.process, &item, at);
            if let Some(redis) = &w.redis {
                let _ = redis.attempt_done(&attempt, DONE_MARK_TTL).await;
            }
            let done = OutboxResult::Done {
                kind: D::KIND,
                id: item.id,
                at_ms: at,
                status_code,
                counted: true,
            };
            record::<D>(w, done).await;
        }
        Attempt::Failed { status_code, error } => {
            let made = item.attempts.saturating_add(1);
            let retry_at_ms =
                (made < w.settings.max_attempts).then(|| at + ms(w.settings.backoff(made)));
            shared
                .sender
                .failed(&w.process, &item, made, &error, retry_at_ms.is_none());
            let failed = OutboxResult::Failed {
                kind: D::KIND,
                id: item.id,
                lease_id: item.lease_id,
                at_ms: at,
                status_code,
                error,
                retry_at_ms,
            };
            record::<D>(w, failed).await;
            if let Some(redis) = &w.redis {
                let _ = redis.attempt_release(&attempt, token).await;
            }
        }
    }
}

/// Records a result, retrying a few times: a success not recorded would be sent again.
async fn record<D: Deliver>(w: &Worker, result: OutboxResult) {
    let mut wait = Duration::from_millis(100);
    for tries in 1.. {
        match w.store.complete(result.clone()).await {
            Ok(_) => return,
            Err(e) if tries >= 4 => {
                tracing::warn!(error = %e, "cannot record a {} result", D::ITEM);
                return;
            }
            Err(_) => {
                tokio::time::sleep(wait).await;
                wait *= 4;
            }
        }
    }
}
