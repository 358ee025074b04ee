//! The load engine: open-loop (fixed arrival schedule) and closed-loop (back-to-back) runs.
//!
//! Each worker thread runs its own current-thread tokio runtime with its own connections and its
//! own [`Recorder`], so nothing is shared on the request path; the recorders are merged when the
//! run ends.
//!
//! Open loop: request `i` of the run is due at `start + i / rate` (worker `w` of `n` owns the
//! requests with `i % n == w`). Its latency counts from that intended time, not from when it was
//! actually written, so a server that stalls makes the queued requests slow instead of making
//! the bench quietly send less (no coordinated omission). When every connection is busy the
//! worker opens another one (up to `max_connections`), so a slow server meets the offered rate
//! rather than a throttled one; past the cap, requests wait in the worker's queue and that wait
//! is part of their latency too.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::client::{Conn, Failure, Reply};
use crate::scenario::{refresh_token_of, Chain, Op, Workload};
use crate::stats::{new_histogram, Outcome, Recorder};

/// How the load is offered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// A fixed arrival rate (requests per second), latency from the intended start.
    Open { rate: f64 },
    /// `connections` connections, each sending its next request when the last one is answered.
    Closed { connections: usize },
}

/// One run's settings.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub mode: Mode,
    /// The measured phase.
    pub duration: Duration,
    /// Load offered before the measured phase and left out of the results.
    pub warmup: Duration,
    /// Worker threads (each with its own runtime and connections).
    pub threads: usize,
    /// Open loop: the most connections all workers together may open.
    pub max_connections: usize,
    /// A request not answered this long after its intended start is given up as a timeout.
    pub timeout: Duration,
    /// Print a progress line to stderr every second.
    pub progress: bool,
}

/// What a run measured.
pub struct LoadResult {
    /// The measured phase, all workers merged.
    pub recorder: Recorder,
    /// Requests of the warm-up (not in `recorder`).
    pub warmup_requests: u64,
    /// The most connections open at once (all workers).
    pub peak_connections: usize,
    /// Worker threads used.
    pub threads: usize,
}

/// Shared between a worker thread and the progress reporter.
struct Live {
    measured: Mutex<Recorder>,
    completed: AtomicU64,
    warm: AtomicU64,
    connections: AtomicUsize,
}

/// Offers the load of `cfg` with the requests of `wl` and returns the merged results.
pub fn run_load(cfg: &LoadConfig, wl: &Arc<Workload>) -> anyhow::Result<LoadResult> {
    let mut threads = cfg.threads.max(1);
    match cfg.mode {
        Mode::Open { rate } if !(rate.is_finite() && rate > 0.0) => {
            bail!("the rate must be a positive number")
        }
        Mode::Closed { connections: 0 } => bail!("--connections must be at least 1"),
        Mode::Closed { connections } => threads = threads.min(connections),
        Mode::Open { .. } => {}
    }
    if wl.scenario.needs(Op::Refresh) {
        // Every worker needs at least one refresh chain of its own.
        let chains = wl.chains();
        if chains == 0 {
            bail!("the refresh scenario has no refresh chains (no users were prepared)");
        }
        threads = threads.min(chains);
    }
    let lives: Vec<Arc<Live>> = (0..threads)
        .map(|_| {
            Ok(Arc::new(Live {
                measured: Mutex::new(Recorder::new()?),
                completed: AtomicU64::new(0),
                warm: AtomicU64::new(0),
                connections: AtomicUsize::new(0),
            }))
        })
        .collect::<anyhow::Result<_>>()?;

    // A common start a little ahead, so every worker has its runtime up when the schedule begins.
    let start = std::time::Instant::now() + Duration::from_millis(100);
    let mut handles = Vec::with_capacity(threads);
    for (idx, live) in lives.iter().enumerate() {
        let plan = Plan {
            idx,
            workers: threads,
            mode: match cfg.mode {
                Mode::Closed { connections } => Mode::Closed {
                    connections: connections / threads + usize::from(idx < connections % threads),
                },
                open => open,
            },
            start,
            warmup: cfg.warmup,
            duration: cfg.duration,
            timeout: cfg.timeout,
            max_connections: (cfg.max_connections / threads).max(1),
        };
        let (wl, live) = (wl.clone(), live.clone());
        let handle = std::thread::Builder::new()
            .name(format!("hj-bench-{idx}"))
            .spawn(move || worker_thread(plan, wl, live))
            .context("cannot start a worker thread")?;
        handles.push(handle);
    }

    let mut peak = 0;
    let mut last = (start, 0u64);
    let mut next_tick = start + Duration::from_secs(1);
    let measure_start = start + cfg.warmup;
    let end = measure_start + cfg.duration;
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(20));
        peak = peak.max(
            lives
                .iter()
                .map(|l| l.connections.load(Ordering::Relaxed))
                .sum(),
        );
        let now = std::time::Instant::now();
        if cfg.progress && now >= next_tick {
            let completed: u64 = lives
                .iter()
                .map(|l| l.completed.load(Ordering::Relaxed))
                .sum();
            let secs = now.duration_since(last.0).as_secs_f64().max(1e-3);
            let rate = (completed - last.1) as f64 / secs;
            last = (now, completed);
            next_tick += Duration::from_secs(1);
            let phase = if now < measure_start {
                "warm-up "
            } else if now < end {
                ""
            } else {
                "draining "
            };
            let elapsed = now.duration_since(start).as_secs_f64();
            let (requests, errors, p99) = live_snapshot(&lives);
            let p99 = p99.map_or("-".to_string(), crate::util::fmt_ms);
            eprintln!(
                "[{elapsed:>5.0}s] {phase}{rate:>8.0} req/s  measured {requests}  errors {errors}  p99 {p99}"
            );
        }
    }
    for h in handles {
        h.join()
            .map_err(|_| anyhow!("a worker thread panicked"))??;
    }
    let parts: Vec<Recorder> = lives
        .iter()
        .map(|l| l.measured.lock().unwrap_or_else(|e| e.into_inner()).clone())
        .collect();
    Ok(LoadResult {
        recorder: Recorder::merged(&parts)?,
        warmup_requests: lives.iter().map(|l| l.warm.load(Ordering::Relaxed)).sum(),
        peak_connections: peak,
        threads,
    })
}

/// Requests and errors measured so far, and the p99 so far in ms.
fn live_snapshot(lives: &[Arc<Live>]) -> (u64, u64, Option<f64>) {
    let Ok(mut hist) = new_histogram() else {
        return (0, 0, None);
    };
    let (mut requests, mut errors) = (0, 0);
    for l in lives {
        let rec = l.measured.lock().unwrap_or_else(|e| e.into_inner());
        requests += rec.requests();
        errors += rec.errors();
        let _ = hist.add(&rec.latency);
    }
    let p99 = (!hist.is_empty()).then(|| hist.value_at_quantile(0.99) as f64 / 1e3);
    (requests, errors, p99)
}

/// One worker's share of the run.
#[derive(Debug, Clone)]
struct Plan {
    idx: usize,
    workers: usize,
    mode: Mode,
    start: std::time::Instant,
    warmup: Duration,
    duration: Duration,
    timeout: Duration,
    max_connections: usize,
}

fn worker_thread(plan: Plan, wl: Arc<Workload>, live: Arc<Live>) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a worker runtime")?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let start = Instant::from_std(plan.start);
        let w = Rc::new(Worker {
            chains: RefCell::new(wl.take_chains(plan.idx, plan.workers).into()),
            wl,
            live,
            idx: plan.idx as u64,
            workers: plan.workers as u64,
            start,
            measure_start: start + plan.warmup,
            end: start + plan.warmup + plan.duration,
            timeout: plan.timeout,
            chain_ready: Notify::new(),
            recoveries: Cell::new(0),
        });
        match plan.mode {
            Mode::Open { rate } => open_loop(w.clone(), rate, plan.max_connections).await,
            Mode::Closed { connections } => closed_loop(w.clone(), connections).await,
        }
        let chains: Vec<Chain> = w.chains.borrow_mut().drain(..).collect();
        w.wl.return_chains(chains);
        w.live
            .measured
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .recoveries += w.recoveries.get();
    });
    Ok(())
}

/// A request due at `intended`; `seq` picks its operation and user.
#[derive(Debug, Clone, Copy)]
struct Job {
    intended: Instant,
    seq: u64,
}

/// Jobs due but not yet taken by a connection (open loop).
#[derive(Default)]
struct Queue {
    jobs: RefCell<VecDeque<Job>>,
    notify: Notify,
    /// Connection tasks waiting for a job.
    idle: Cell<usize>,
    stopping: Cell<bool>,
}

async fn open_loop(w: Rc<Worker>, rate: f64, max_connections: usize) {
    let q = Rc::new(Queue::default());
    let mut tasks = Vec::new();
    let mut k = 0u64;
    loop {
        let seq = w.idx + k * w.workers;
        let at = w.start + Duration::from_secs_f64(seq as f64 / rate);
        if at >= w.end {
            break;
        }
        if at > Instant::now() {
            tokio::time::sleep_until(at).await;
        }
        q.jobs.borrow_mut().push_back(Job { intended: at, seq });
        if q.jobs.borrow().len() > q.idle.get() && tasks.len() < max_connections {
            tasks.push(tokio::task::spawn_local(connection(w.clone(), q.clone())));
        }
        q.notify.notify_one();
        k += 1;
        if k & 63 == 0 {
            // Behind schedule the loop never sleeps; let the connections take what is queued.
            tokio::task::yield_now().await;
        }
    }
    q.stopping.set(true);
    q.notify.notify_waiters();
    for t in tasks {
        let _ = t.await;
    }
}

/// An open-loop connection: takes due jobs until the run stops and the queue is empty.
async fn connection(w: Rc<Worker>, q: Rc<Queue>) {
    w.live.connections.fetch_add(1, Ordering::Relaxed);
    let mut conn = None;
    loop {
        let job = q.jobs.borrow_mut().pop_front();
        match job {
            Some(job) => w.run_job(&mut conn, job).await,
            None if q.stopping.get() => break,
            None => {
                q.idle.set(q.idle.get() + 1);
                q.notify.notified().await;
                q.idle.set(q.idle.get().saturating_sub(1));
            }
        }
    }
    w.live.connections.fetch_sub(1, Ordering::Relaxed);
}

async fn closed_loop(w: Rc<Worker>, connections: usize) {
    tokio::time::sleep_until(w.start).await;
    let counter = Rc::new(Cell::new(0u64));
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (w, counter) = (w.clone(), counter.clone());
            tokio::task::spawn_local(async move {
                w.live.connections.fetch_add(1, Ordering::Relaxed);
                let mut conn = None;
                loop {
                    let now = Instant::now();
                    if now >= w.end {
                        break;
                    }
                    let k = counter.get();
                    counter.set(k + 1);
                    let job = Job {
                        intended: now,
                        seq: w.idx + k * w.workers,
                    };
                    w.run_job(&mut conn, job).await;
                }
                w.live.connections.fetch_sub(1, Ordering::Relaxed);
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

/// One worker thread's state.
struct Worker {
    wl: Arc<Workload>,
    live: Arc<Live>,
    idx: u64,
    workers: u64,
    start: Instant,
    measure_start: Instant,
    end: Instant,
    timeout: Duration,
    /// This worker's refresh chains not in use right now.
    chains: RefCell<VecDeque<Chain>>,
    chain_ready: Notify,
    recoveries: Cell<u64>,
}

impl Worker {
    async fn run_job(&self, conn: &mut Option<Conn>, job: Job) {
        let op = self.wl.op_for(job.seq);
        let user = self.wl.user_for(job.seq);
        let deadline = job.intended + self.timeout;
        let mut sent = None;
        let outcome = if Instant::now() >= deadline {
            // It waited in the queue past the timeout: given up without being sent.
            Outcome::Timeout
        } else if op == Op::Refresh {
            self.refresh(conn, deadline, &mut sent).await
        } else {
            let req = match op {
                Op::Signin => self.wl.signin_request(user),
                Op::Register => self.wl.register_request(),
                Op::Userinfo => self.wl.userinfo_request(user),
                Op::Me => self.wl.me_request(user),
                // Refresh took the branch above; it is only here to keep the match exhaustive.
                Op::Session | Op::Refresh => self.wl.session_request(user),
            };
            match req {
                Ok(req) => {
                    match tokio::time::timeout_at(deadline, self.send(conn, req, &mut sent)).await {
                        Ok(Ok(reply)) => Outcome::Status(reply.status),
                        Ok(Err(e)) => failure_outcome(&e),
                        Err(_) => {
                            // A request may still be pending on it: never reuse it.
                            *conn = None;
                            Outcome::Timeout
                        }
                    }
                }
                Err(_) => Outcome::Io,
            }
        };
        let done = Instant::now();
        self.live.completed.fetch_add(1, Ordering::Relaxed);
        if job.intended >= self.measure_start {
            let latency = done.saturating_duration_since(job.intended);
            let service = sent.map(|s: Instant| done.saturating_duration_since(s));
            self.live
                .measured
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(op, outcome, latency, service);
        } else {
            self.live.warm.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends on `conn` (opening it when needed) and notes in `sent` when the request was written.
    async fn send(
        &self,
        conn: &mut Option<Conn>,
        req: Request<Full<Bytes>>,
        sent: &mut Option<Instant>,
    ) -> Result<Reply, Failure> {
        if !matches!(conn, Some(c) if !c.is_closed()) {
            *conn = Some(
                Conn::connect(self.wl.target.addr)
                    .await
                    .map_err(Failure::Connect)?,
            );
        }
        let Some(c) = conn.as_mut() else {
            return Err(Failure::Connect(std::io::Error::other("no connection")));
        };
        *sent = Some(Instant::now());
        match c.send(req).await {
            Ok(reply) => Ok(reply),
            Err(e) => {
                *conn = None;
                Err(Failure::Io(e))
            }
        }
    }

    /// One refresh on a chain of this worker; the chain's head moves to the new token.
    async fn refresh(
        &self,
        conn: &mut Option<Conn>,
        deadline: Instant,
        sent: &mut Option<Instant>,
    ) -> Outcome {
        let Ok(mut chain) = tokio::time::timeout_at(deadline, self.take_chain()).await else {
            return Outcome::Timeout;
        };
        let outcome =
            match tokio::time::timeout_at(deadline, self.advance(conn, &mut chain, sent)).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    *conn = None;
                    Outcome::Timeout
                }
            };
        self.chains.borrow_mut().push_back(chain);
        self.chain_ready.notify_one();
        outcome
    }

    async fn take_chain(&self) -> Chain {
        loop {
            let chain = self.chains.borrow_mut().pop_front();
            if let Some(chain) = chain {
                return chain;
            }
            self.chain_ready.notified().await;
        }
    }

    async fn advance(
        &self,
        conn: &mut Option<Conn>,
        chain: &mut Chain,
        sent: &mut Option<Instant>,
    ) -> Outcome {
        // The token is taken out before sending: if this future is dropped (timeout) or the
        // answer is lost, the chain counts as broken and restarts with a sign-in, because reusing
        // a token the server may already have rotated would revoke the whole family.
        let token = match chain.token.take() {
            Some(token) => token,
            None => {
                self.recoveries.set(self.recoveries.get() + 1);
                let Ok(req) = self.wl.signin_request(chain.user) else {
                    return Outcome::Io;
                };
                match self.send(conn, req, sent).await {
                    Ok(reply) if reply.status == 200 => match refresh_token_of(&reply) {
                        Some(token) => token,
                        None => return Outcome::Status(reply.status),
                    },
                    Ok(reply) => return Outcome::Status(reply.status),
                    Err(e) => return failure_outcome(&e),
                }
            }
        };
        let Ok(req) = self.wl.refresh_request(&token) else {
            return Outcome::Io;
        };
        match self.send(conn, req, sent).await {
            Ok(reply) => {
                match reply.status {
                    200 => chain.token = refresh_token_of(&reply),
                    // Refused before the token was looked at: it is still the head.
                    429 | 503 => chain.token = Some(token),
                    _ => {}
                }
                Outcome::Status(reply.status)
            }
            Err(Failure::Connect(_)) => {
                chain.token = Some(token);
                Outcome::Connect
            }
            Err(e) => failure_outcome(&e),
        }
    }
}

fn failure_outcome(e: &Failure) -> Outcome {
    match e {
        Failure::Connect(_) => Outcome::Connect,
        Failure::Io(_) | Failure::Build(_) => Outcome::Io,
    }
}
