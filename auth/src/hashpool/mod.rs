//! The password-hashing pool: Argon2id on dedicated OS threads, never on an event loop.
//!
//! Argon2id is meant to be slow (tens of milliseconds of CPU and memory bandwidth each). Run
//! on an event loop it would stall every connection of that core, so the shards hand jobs to
//! `workers` threads named `hj-hash-N` through a bounded channel, and await the answer on a
//! `tokio::sync::oneshot`.
//!
//! Admission is by expected wait rather than by queue length: when a job arrives, the pool
//! estimates how long it would wait for a thread from the jobs ahead of it and the measured
//! (EWMA) duration of one job. If that exceeds the budget (`HELLOJOHN_HASH_QUEUE_BUDGET`), the
//! job is refused at once with [`Overloaded`], so the client gets a fast 503 with
//! `Retry-After` instead of a response that arrives after it has given up. The estimate is
//! seeded at start by timing one real hash with the configured parameters, so admission is
//! right from the first request.
//!
//! Every thread owns a [`Hasher`] whose Argon2 memory (its arena, sized for the current
//! parameters or HelloJohn's m=65536, whichever is larger) is mapped when the pool starts,
//! faulted in for the current parameters, and reused by every job. A thread that has had no job
//! for `HELLOJOHN_HASH_ARENA_IDLE_RELEASE` gives its pages back to the OS, so an idle server
//! holds no Argon2 memory; under load the arenas stay resident and no sign-in page-faults.
//! `hellojohn_hash_pool_arena_bytes` shows the address space, `…_arena_resident_bytes` what
//! is in use, and `…_arena_fresh_allocations_total` counts the hashes too large for an arena.
//!
//! A stored hash whose cost is beyond [`HashBounds`] (or that cannot be parsed) is never run:
//! the pool verifies the password against its dummy hash in its place, so the sign-in fails
//! with the cost, the timing and the answer of a wrong password, and no thread is held longer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use rand::RngCore as _;
use tokio::sync::oneshot;

use super::password::{check_hash, HashBounds, HashError, Hasher, Params, Password, Verification};

/// The pool cannot take the job within the wait budget. Answer 503 `OVERLOADED` with
/// `Retry-After: retry_after` (whole seconds, at least one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password hashing is overloaded; retry after {}s", retry_after.as_secs())]
pub struct Overloaded {
    pub retry_after: Duration,
}

impl Overloaded {
    /// `wait` rounded up to whole seconds, and never under one second (`Retry-After` is in
    /// seconds, and zero would invite an immediate retry).
    fn after(wait: Duration) -> Overloaded {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Overloaded {
            retry_after: Duration::from_secs(secs.max(1)),
        }
    }
}

/// The expected queue wait of a new job when `outstanding` jobs are queued or running on
/// `workers` threads and one job takes `avg`: the jobs beyond the free threads go in waves of
/// `workers`, and the new job waits for every wave ahead of it.
pub fn expected_wait(outstanding: u64, workers: u64, avg: Duration) -> Duration {
    let workers = workers.max(1);
    let ahead = (outstanding + 1).saturating_sub(workers);
    let waves = ahead.div_ceil(workers);
    let avg_us = u64::try_from(avg.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(avg_us.saturating_mul(waves))
}

enum Work {
    Verify {
        phc: String,
        reply: oneshot::Sender<Verification>,
    },
    Hash {
        reply: oneshot::Sender<Result<String, HashError>>,
    },
}

struct Job {
    password: Password,
    work: Work,
    queued_at: Instant,
}

impl Job {
    /// Whether the caller has gone away (its request was cancelled), so the work is useless.
    fn abandoned(&self) -> bool {
        match &self.work {
            Work::Verify { reply, .. } => reply.is_closed(),
            Work::Hash { reply } => reply.is_closed(),
        }
    }
}

/// The pool's gauges and counters, read by the engine's `/metrics` (`hellojohn_hash_pool_*`,
/// `hellojohn_argon2_*`).
#[derive(Debug, Default)]
pub struct HashStats {
    pub hash_queue_depth: AtomicU64,
    pub hash_in_flight: AtomicU64,
    pub hashes_total: AtomicU64,
    pub hash_rejected_total: AtomicU64,
    pub hash_wait_us_total: AtomicU64,
    pub hash_work_us_total: AtomicU64,
    pub hash_workers: AtomicU64,
    /// Bytes of address space mapped for the hashing threads' arenas (at start).
    pub hash_arena_bytes: AtomicU64,
    /// Bytes of those arenas that may be resident (used since each thread's last release).
    pub hash_arena_resident_bytes: AtomicU64,
    /// Times an idle hashing thread gave its arena's pages back to the OS.
    pub hash_arena_releases_total: AtomicU64,
    /// Hashes that did not fit a thread's arena and allocated memory of their own.
    pub hash_arena_fresh_allocations_total: AtomicU64,
    /// The Argon2id parameters of new hashes, so that `hj bench` can measure the same.
    pub argon2_memory_kib: AtomicU64,
    pub argon2_iterations: AtomicU64,
    pub argon2_parallelism: AtomicU64,
}

/// State shared by the pool handle and its threads.
struct Shared {
    /// Jobs queued or running: what admission counts. Kept apart from the metrics gauges so
    /// that admission is one compare-and-swap and never sees a half-updated pair.
    outstanding: AtomicU64,
    /// EWMA of job durations, in microseconds.
    avg_job_us: AtomicU64,
    metrics: Arc<HashStats>,
}

impl Shared {
    /// Folds one measured job duration into the average with weight 1/5: recent enough to
    /// follow a change of load or parameters within a few jobs, smooth enough to ignore one
    /// outlier.
    fn record(&self, took: Duration) {
        let sample = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let _ = self
            .avg_job_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some((old.saturating_mul(4).saturating_add(sample)) / 5)
            });
    }
}

/// Argon2id on dedicated threads with admission by expected wait. See the module docs.
pub struct HashPool {
    shared: Arc<Shared>,
    /// `None` only while dropping: closing the channel is what stops the threads.
    sender: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    workers: usize,
    budget: Duration,
    params: Params,
    bounds: HashBounds,
    dummy_phc: String,
}

impl std::fmt::Debug for HashPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashPool")
            .field("workers", &self.workers)
            .field("budget", &self.budget)
            .field("params", &self.params)
            .field("avg_job_time", &self.avg_job_time())
            .finish_non_exhaustive()
    }
}

impl HashPool {
    /// Starts `workers` hashing threads (at least one) that refuse stored hashes beyond
    /// [`HashBounds::DEFAULT`]. See [`HashPool::with_bounds`].
    pub fn new(
        workers: usize,
        params: Params,
        budget: Duration,
        idle_release: Duration,
        metrics: Arc<HashStats>,
    ) -> Result<HashPool, HashError> {
        HashPool::with_bounds(
            workers,
            params,
            HashBounds::DEFAULT,
            budget,
            idle_release,
            metrics,
        )
    }

    /// Starts `workers` hashing threads (at least one) that never run a stored hash beyond
    /// `bounds`. Hashes one random password on the calling thread first: that validates
    /// `params` (within `bounds` too), gives [`HashPool::dummy_phc`], and seeds the
    /// job-duration estimate. Call it at start-up, not from an event loop.
    // Makes the dummy hash and times one verification: at start, off the runtime (the engine
    // calls it in `spawn_blocking`).
    #[allow(clippy::disallowed_methods)]
    pub fn with_bounds(
        workers: usize,
        params: Params,
        bounds: HashBounds,
        budget: Duration,
        idle_release: Duration,
        metrics: Arc<HashStats>,
    ) -> Result<HashPool, HashError> {
        let workers = workers.max(1);
        // The first worker's hasher, used here first: a separate one would add its memory to
        // the process's peak for nothing.
        let mut seed_hasher = Hasher::for_pool(params)?.bounded(bounds)?;
        let mut random = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut random);
        let dummy_password =
            Password::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random));
        let dummy_phc = seed_hasher.hash(dummy_password.expose())?;
        // Time a second hash on the now-warm hasher, as a worker runs every job.
        let started = Instant::now();
        let _ = seed_hasher.verify(dummy_password.expose(), &dummy_phc);
        let seed = started.elapsed();
        let mut seed_hasher = Some(seed_hasher);

        let shared = Arc::new(Shared {
            outstanding: AtomicU64::new(0),
            avg_job_us: AtomicU64::new(u64::try_from(seed.as_micros()).unwrap_or(u64::MAX).max(1)),
            metrics,
        });
        // The channel bounds memory, not latency: admission keeps the queue far shorter.
        let (sender, receiver) =
            crossbeam_channel::bounded::<Job>(workers.saturating_mul(256).max(1024));
        let mut pool = HashPool {
            shared: shared.clone(),
            sender: Some(sender),
            threads: Vec::with_capacity(workers),
            workers,
            budget,
            params,
            bounds,
            dummy_phc,
        };
        // The other threads allocate and fault in their arenas in parallel, and report before
        // the pool is handed out: the first sign-in pays no page faults, and memory that cannot
        // be had fails the start instead of a sign-in.
        let (ready_tx, ready_rx) = mpsc::channel::<Result<usize, HashError>>();
        for i in 0..workers {
            let for_thread = shared.clone();
            let receiver = receiver.clone();
            let ready = ready_tx.clone();
            let ready_made = seed_hasher.take();
            let thread = std::thread::Builder::new()
                .name(format!("hj-hash-{i}"))
                .spawn(move || {
                    let made = match ready_made {
                        Some(hasher) => Ok(hasher),
                        None => Hasher::for_pool(params).and_then(|h| h.bounded(bounds)),
                    };
                    let hasher = match made {
                        Ok(hasher) => hasher,
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    };
                    let bytes = hasher.arena_bytes();
                    for_thread
                        .metrics
                        .hash_arena_bytes
                        .fetch_add(bytes as u64, Ordering::Relaxed);
                    // Counted before the pool is handed out, so its gauges are right at once.
                    let mut resident = Resident {
                        metrics: &for_thread.metrics,
                        counted: 0,
                    };
                    resident.update(hasher.arena_resident_bytes());
                    let _ = ready.send(Ok(bytes));
                    drop(ready);
                    worker(hasher, &for_thread, &receiver, idle_release, resident);
                    for_thread
                        .metrics
                        .hash_arena_bytes
                        .fetch_sub(bytes as u64, Ordering::Relaxed);
                })
                .map_err(|e| HashError::Failed(format!("cannot start a hashing thread: {e}")))?;
            pool.threads.push(thread);
            shared.metrics.hash_workers.fetch_add(1, Ordering::Relaxed);
        }
        drop(ready_tx);
        let mut arena_bytes = 0usize;
        for _ in 0..workers {
            match ready_rx.recv() {
                Ok(Ok(bytes)) => arena_bytes += bytes,
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(HashError::Failed(
                        "a hashing thread stopped while starting".to_string(),
                    ))
                }
            }
        }
        let metrics = &shared.metrics;
        metrics
            .argon2_memory_kib
            .store(u64::from(params.memory_kib), Ordering::Relaxed);
        metrics
            .argon2_iterations
            .store(u64::from(params.iterations), Ordering::Relaxed);
        metrics
            .argon2_parallelism
            .store(u64::from(params.parallelism), Ordering::Relaxed);
        tracing::info!(
            workers,
            memory_kib = params.memory_kib,
            iterations = params.iterations,
            parallelism = params.parallelism,
            arena_mapped_mib = arena_bytes >> 20,
            arena_resident_mib = metrics.hash_arena_resident_bytes.load(Ordering::Relaxed) >> 20,
            hash_ms = seed.as_secs_f64() * 1e3,
            budget_ms = budget.as_secs_f64() * 1e3,
            "password hashing pool started"
        );
        Ok(pool)
    }

    /// `phc` when it may be run, else the dummy hash in its place. A stored hash beyond the
    /// bounds, or one that cannot be parsed, must not run (it could hold a thread for seconds or
    /// for ever), and must still fail like a wrong password: same answer, and the same time,
    /// which the dummy verification takes. The check parses a short string and runs no Argon2,
    /// so it is fine on an event loop.
    fn runnable(&self, phc: String) -> String {
        match check_hash(&phc, &self.bounds) {
            Ok(()) => phc,
            Err(e) => {
                tracing::warn!(
                    reason = %e,
                    "stored password hash refused without running Argon2; the sign-in fails \
                     as with a wrong password"
                );
                self.dummy_phc.clone()
            }
        }
    }

    /// Hashes a new password with the current parameters on a hashing thread.
    ///
    /// Every hash the engine writes to the store comes from here, so the result passes
    /// [`check_hash`] before it is handed out (with the parameters validated at start it
    /// always does).
    ///
    /// Hashing cannot fail with the parameters validated at start; if it ever did (the
    /// operating system's random generator failing, say), the error is logged and reported as
    /// [`Overloaded`], so the client retries later instead of getting a misleading answer.
    pub async fn hash(&self, password: Password) -> Result<String, Overloaded> {
        let (reply, answer) = oneshot::channel();
        self.submit(password, Work::Hash { reply })?;
        match answer.await {
            Ok(Ok(phc)) => match check_hash(&phc, &self.bounds) {
                Ok(()) => Ok(phc),
                Err(e) => {
                    tracing::error!(reason = %e, "a new password hash fails its own check");
                    Err(Overloaded::after(Duration::ZERO))
                }
            },
            Ok(Err(e)) => {
                tracing::error!(error = %e, "password hashing failed");
                Err(Overloaded::after(Duration::ZERO))
            }
            Err(_) => Err(self.worker_lost()),
        }
    }

    /// A PHC hash of a random password, made at start with the current parameters.
    pub fn dummy_phc(&self) -> &str {
        &self.dummy_phc
    }

    pub fn params(&self) -> Params {
        self.params
    }

    /// The largest cost a stored hash may name to be run.
    pub fn bounds(&self) -> HashBounds {
        self.bounds
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// The current estimate of one job's duration.
    pub fn avg_job_time(&self) -> Duration {
        Duration::from_micros(self.shared.avg_job_us.load(Ordering::Relaxed))
    }

    /// The wait a job arriving now would expect.
    pub fn expected_wait(&self) -> Duration {
        expected_wait(
            self.shared.outstanding.load(Ordering::Relaxed),
            self.workers as u64,
            self.avg_job_time(),
        )
    }

    /// Admits the job by expected wait and queues it. Never blocks.
    fn submit(&self, password: Password, work: Work) -> Result<(), Overloaded> {
        self.admit()?;
        self.enqueue(password, work)
    }

    /// Reserves a place in the pool now, for a verification submitted later (after the
    /// database lookup that finds the hash). A flood is thus refused before it spends any
    /// database work, and the requests admitted are exactly the ones that will be hashed.
    /// Dropping an unused reservation gives the place back.
    pub fn reserve(&self) -> Result<Reservation<'_>, Overloaded> {
        self.admit()?;
        Ok(Reservation {
            pool: self,
            live: true,
        })
    }

    /// Refuses at once, as [`HashPool::reserve`] would, when the expected wait is already past
    /// the budget; takes no place. Under a flood most sign-ins are refused, and this lets them be
    /// refused before any other work is spent on them (parsing, lookups); an admitted request
    /// still takes its place with `reserve`, which may refuse it after all.
    pub fn check(&self) -> Result<(), Overloaded> {
        let wait = self.expected_wait();
        if wait > self.budget {
            self.shared
                .metrics
                .hash_rejected_total
                .fetch_add(1, Ordering::Relaxed);
            return Err(Overloaded::after(wait));
        }
        Ok(())
    }

    /// Counts one more outstanding job if the expected wait fits the budget.
    fn admit(&self) -> Result<(), Overloaded> {
        let metrics = &self.shared.metrics;
        let avg = self.avg_job_time();
        let workers = self.workers as u64;
        let mut current = self.shared.outstanding.load(Ordering::Acquire);
        // A compare-and-swap loop, so that shards admitting at the same instant cannot all
        // see the same count and overshoot the budget together.
        loop {
            let wait = expected_wait(current, workers, avg);
            if wait > self.budget {
                metrics.hash_rejected_total.fetch_add(1, Ordering::Relaxed);
                return Err(Overloaded::after(wait));
            }
            match self.shared.outstanding.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
    }

    /// Queues an admitted job. On failure the admission is given back.
    fn enqueue(&self, password: Password, work: Work) -> Result<(), Overloaded> {
        let metrics = &self.shared.metrics;
        // Counted before sending, so the worker's decrement can never run first.
        metrics.hash_queue_depth.fetch_add(1, Ordering::Relaxed);
        let job = Job {
            password,
            work,
            queued_at: Instant::now(),
        };
        let sent = match &self.sender {
            Some(sender) => sender.try_send(job),
            None => Err(TrySendError::Disconnected(job)),
        };
        if let Err(e) = sent {
            metrics.hash_queue_depth.fetch_sub(1, Ordering::Relaxed);
            self.shared.outstanding.fetch_sub(1, Ordering::AcqRel);
            metrics.hash_rejected_total.fetch_add(1, Ordering::Relaxed);
            if matches!(e, TrySendError::Disconnected(_)) {
                tracing::error!("the hashing threads have stopped");
            }
            return Err(Overloaded::after(self.budget));
        }
        Ok(())
    }

    /// A hashing thread dropped a job without answering: it can only have panicked. The
    /// client is told to retry, as for any transient server-side failure.
    fn worker_lost(&self) -> Overloaded {
        tracing::error!("a hashing thread stopped before answering");
        Overloaded::after(Duration::ZERO)
    }
}

/// A place in the pool taken by [`HashPool::reserve`].
pub struct Reservation<'a> {
    pool: &'a HashPool,
    live: bool,
}

impl Reservation<'_> {
    /// Verifies in the reserved place: never refused for load.
    pub async fn verify(
        mut self,
        password: Password,
        phc: String,
    ) -> Result<Verification, Overloaded> {
        self.live = false;
        let (reply, answer) = oneshot::channel();
        let phc = self.pool.runnable(phc);
        self.pool.enqueue(password, Work::Verify { phc, reply })?;
        answer.await.map_err(|_| self.pool.worker_lost())
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.live {
            self.pool.shared.outstanding.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for HashPool {
    /// Closes the channel and joins the threads. Jobs still queued belong to requests that
    /// were cancelled (an outstanding request borrows the pool, so none can be waiting), and
    /// the threads skip them, so this waits for at most one hash per thread.
    fn drop(&mut self) {
        self.sender = None;
        for thread in self.threads.drain(..) {
            if thread.join().is_ok() {
                self.shared
                    .metrics
                    .hash_workers
                    .fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// Keeps the process-wide resident gauge in step with one thread's arena.
struct Resident<'a> {
    metrics: &'a HashStats,
    counted: usize,
}

impl Resident<'_> {
    fn update(&mut self, now: usize) {
        if now >= self.counted {
            let more = (now - self.counted) as u64;
            self.metrics
                .hash_arena_resident_bytes
                .fetch_add(more, Ordering::Relaxed);
        } else {
            let less = (self.counted - now) as u64;
            self.metrics
                .hash_arena_resident_bytes
                .fetch_sub(less, Ordering::Relaxed);
        }
        self.counted = now;
    }
}

impl Drop for Resident<'_> {
    fn drop(&mut self) {
        self.update(0);
    }
}

/// Runs jobs until the pool closes the channel. `idle_release` (zero: never) is how long the
/// thread waits for a job with its arena resident before it gives the pages back.
// A hashing thread: the one place Argon2 runs for requests.
#[allow(clippy::disallowed_methods)]
fn worker(
    mut hasher: Hasher,
    shared: &Shared,
    receiver: &Receiver<Job>,
    idle_release: Duration,
    mut resident: Resident<'_>,
) {
    let metrics = &shared.metrics;
    loop {
        let next = if idle_release.is_zero() || hasher.arena_resident_bytes() == 0 {
            receiver.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            receiver.recv_timeout(idle_release)
        };
        let job = match next {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                let released = hasher.release_arena();
                resident.update(hasher.arena_resident_bytes());
                if released > 0 {
                    metrics
                        .hash_arena_releases_total
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        released_mib = released >> 20,
                        "idle hashing thread released its Argon2 memory"
                    );
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        metrics.hash_queue_depth.fetch_sub(1, Ordering::Relaxed);
        let waited = job.queued_at.elapsed();
        metrics.hash_wait_us_total.fetch_add(
            u64::try_from(waited.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if job.abandoned() {
            shared.outstanding.fetch_sub(1, Ordering::AcqRel);
            continue;
        }

        metrics.hash_in_flight.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let Job { password, work, .. } = job;
        let fresh_before = hasher.fresh_allocations();
        let answer = match work {
            Work::Verify { phc, reply } => {
                let verification = hasher.verify(password.expose(), &phc);
                Answer::Verify(reply, verification)
            }
            Work::Hash { reply } => Answer::Hash(reply, hasher.hash(password.expose())),
        };
        drop(password);
        metrics
            .hash_arena_fresh_allocations_total
            .fetch_add(hasher.fresh_allocations() - fresh_before, Ordering::Relaxed);
        resident.update(hasher.arena_resident_bytes());
        let took = started.elapsed();
        shared.record(took);
        metrics.hashes_total.fetch_add(1, Ordering::Relaxed);
        metrics.hash_work_us_total.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        metrics.hash_in_flight.fetch_sub(1, Ordering::Relaxed);
        // Released before answering, so a caller who submits again right after its answer
        // is admitted against the true count.
        shared.outstanding.fetch_sub(1, Ordering::AcqRel);
        // The caller may have gone meanwhile; then nobody needs the answer.
        match answer {
            Answer::Verify(reply, v) => {
                let _ = reply.send(v);
            }
            Answer::Hash(reply, h) => {
                let _ = reply.send(h);
            }
        }
    }
}

enum Answer {
    Verify(oneshot::Sender<Verification>, Verification),
    Hash(
        oneshot::Sender<Result<String, HashError>>,
        Result<String, HashError>,
    ),
}

#[cfg(test)]
mod tests;
