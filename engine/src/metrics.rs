//! Metrics, recorded per shard without shared atomics and merged when `/metrics` is scraped.
//!
//! Each shard owns a [`ShardMetrics`] (no locks: only its own thread touches it). A scrape asks
//! every shard for a snapshot over a channel; each shard's collector task answers from its own
//! thread, and the scraping shard merges the answers. Process-wide gauges that are not on the
//! request path (hash pool, database pool) live in [`Process`] as atomics.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::{mpsc, oneshot};

use crate::router::Route;

/// HTTP methods with a label of their own; anything else is `OTHER`, keeping labels bounded.
pub const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "OTHER",
];

pub fn method_index(m: &http::Method) -> usize {
    METHODS[..7]
        .iter()
        .position(|x| *x == m.as_str())
        .unwrap_or(7)
}

/// Upper bounds (seconds) of the aggregatable latency histogram.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Quantiles of the latency summary.
pub const QUANTILES: [f64; 5] = [0.5, 0.9, 0.95, 0.99, 0.999];

/// Outcome labels of `hellojohn_auth_sign_ins_total{status}`.
pub const SIGN_IN_STATUSES: [&str; 8] = [
    "success",
    "invalid_credentials",
    "overloaded",
    "rate_limited",
    "error",
    "bad_request",
    // A right password of a user with a second factor: the sign-in waits for the code.
    "mfa_required",
    // A right password, refused: the client requires a verified email.
    "email_not_verified",
];

/// Method labels of `hellojohn_auth_sign_ins_total{method}`.
/// `hosted` is the hosted sign-in page of the code flow, `authorization_code` the token
/// endpoint's code redemption, `client_credentials` a client signing in as itself, `mfa` the
/// second step of a sign-in with a second factor (`/v2/mfa/totp/challenge`).
pub const SIGN_IN_METHODS: [&str; 7] = [
    "password",
    "session",
    "refresh",
    "hosted",
    "authorization_code",
    "client_credentials",
    "mfa",
];

fn new_histogram() -> Histogram<u64> {
    // Microseconds from 1 µs to 10 minutes, 3 significant digits.
    match Histogram::new_with_bounds(1, 600_000_000, 3) {
        Ok(h) => h,
        Err(_) => unreachable!("constant bounds are valid"),
    }
}

/// Per-(method, route) request data of one shard.
#[derive(Clone)]
pub struct RouteStats {
    pub by_status: HashMap<u16, u64>,
    pub latency_us: Histogram<u64>,
}

/// What one shard records. Cloned as a snapshot when scraped.
#[derive(Clone, Default)]
pub struct ShardData {
    pub routes: HashMap<(usize, Route), RouteStats>,
    pub connections_accepted: u64,
    pub sign_ins: [[u64; SIGN_IN_STATUSES.len()]; SIGN_IN_METHODS.len()],
    pub rate_limited: HashMap<&'static str, u64>,
    /// Handlers that panicked (each answered 500).
    pub panics: u64,
}

impl ShardData {
    fn merge(&mut self, other: &ShardData) {
        for (key, stats) in &other.routes {
            match self.routes.get_mut(key) {
                Some(mine) => {
                    for (status, n) in &stats.by_status {
                        *mine.by_status.entry(*status).or_default() += n;
                    }
                    // Both histograms have the same bounds, so adding cannot fail.
                    let _ = mine.latency_us.add(&stats.latency_us);
                }
                None => {
                    self.routes.insert(*key, stats.clone());
                }
            }
        }
        self.connections_accepted += other.connections_accepted;
        for (m, row) in other.sign_ins.iter().enumerate() {
            for (s, n) in row.iter().enumerate() {
                self.sign_ins[m][s] += n;
            }
        }
        for (k, n) in &other.rate_limited {
            *self.rate_limited.entry(k).or_default() += n;
        }
        self.panics += other.panics;
    }
}

type SnapshotRequest = oneshot::Sender<ShardData>;

/// The metrics handle of one shard. Cheap to clone (an `Rc`); never leaves its thread.
#[derive(Clone)]
pub struct ShardMetrics {
    data: Rc<RefCell<ShardData>>,
}

impl ShardMetrics {
    /// Records one finished request.
    pub fn record_request(&self, method: usize, route: Route, status: u16, elapsed: Duration) {
        let mut data = self.data.borrow_mut();
        let stats = data
            .routes
            .entry((method, route))
            .or_insert_with(|| RouteStats {
                by_status: HashMap::new(),
                latency_us: new_histogram(),
            });
        *stats.by_status.entry(status).or_default() += 1;
        let us = u64::try_from(elapsed.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        stats.latency_us.saturating_record(us);
    }

    pub fn connection_accepted(&self) {
        self.data.borrow_mut().connections_accepted += 1;
    }

    /// Counts a sign-in outcome; `method` and `status` are labels from the constants above.
    pub fn sign_in(&self, method: &str, status: &str) {
        let m = SIGN_IN_METHODS.iter().position(|x| *x == method);
        let s = SIGN_IN_STATUSES.iter().position(|x| *x == status);
        if let (Some(m), Some(s)) = (m, s) {
            self.data.borrow_mut().sign_ins[m][s] += 1;
        }
    }

    /// Counts a handler that panicked.
    pub fn panic(&self) {
        self.data.borrow_mut().panics += 1;
    }

    pub fn rate_limited(&self, limit: &'static str) {
        *self
            .data
            .borrow_mut()
            .rate_limited
            .entry(limit)
            .or_default() += 1;
    }

    /// Answers snapshot requests for this shard until the hub is dropped.
    pub fn spawn_collector(&self, mut rx: mpsc::UnboundedReceiver<SnapshotRequest>) {
        let data = self.data.clone();
        tokio::task::spawn_local(async move {
            while let Some(reply) = rx.recv().await {
                let _ = reply.send(data.borrow().clone());
            }
        });
    }
}

/// Upper bounds (seconds) of the webhook delivery latency histogram: from the event to the 2xx,
/// retries included.
pub const WEBHOOK_LATENCY_BUCKETS: [f64; 14] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0,
];

/// A fixed-bucket histogram of atomics, for values recorded off the request path.
#[derive(Default)]
pub struct AtomicHistogram {
    /// Per bucket of [`WEBHOOK_LATENCY_BUCKETS`] (not cumulative); the last is `+Inf`.
    buckets: [AtomicU64; WEBHOOK_LATENCY_BUCKETS.len() + 1],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl AtomicHistogram {
    pub fn record(&self, value: Duration) {
        let secs = value.as_secs_f64();
        let i = WEBHOOK_LATENCY_BUCKETS
            .iter()
            .position(|le| secs <= *le)
            .unwrap_or(WEBHOOK_LATENCY_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// Process-wide gauges and counters, off the request hot path.
#[derive(Default)]
pub struct Process {
    /// The hash pool's own gauges and counters.
    pub hash: Arc<auth::HashStats>,
    pub db_pool_idle: AtomicU64,
    pub db_pool_in_use: AtomicU64,
    pub db_pool_max: AtomicU64,
    pub redis_fallbacks_total: AtomicU64,
    /// Webhook attempts answered 2xx.
    pub webhook_delivered_total: AtomicU64,
    /// Webhook attempts that failed and will be retried.
    pub webhook_failed_total: AtomicU64,
    /// Webhook attempts that failed for the last time.
    pub webhook_exhausted_total: AtomicU64,
    /// Due webhook deliveries not yet delivered, as the worker last counted them.
    pub webhook_backlog: AtomicU64,
    /// From an event to its delivery's 2xx.
    pub webhook_latency: AtomicHistogram,
    /// Mails the SMTP relay accepted.
    pub mail_sent_total: AtomicU64,
    /// Mail attempts that failed and will be retried.
    pub mail_failed_total: AtomicU64,
    /// Mail attempts that failed for the last time.
    pub mail_exhausted_total: AtomicU64,
    /// Due mails not yet sent, as the mail worker last counted them.
    pub mail_backlog: AtomicU64,
}

/// Joins the shards for scraping.
pub struct Hub {
    shards: Vec<mpsc::UnboundedSender<SnapshotRequest>>,
    pub process: Arc<Process>,
}

impl Hub {
    /// Creates the hub and one receiver per shard, to hand to each shard's collector.
    pub fn new(shards: usize) -> (Arc<Hub>, Vec<mpsc::UnboundedReceiver<SnapshotRequest>>) {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..shards).map(|_| mpsc::unbounded_channel()).unzip();
        (
            Arc::new(Hub {
                shards: txs,
                process: Arc::new(Process::default()),
            }),
            rxs,
        )
    }

    pub fn shard_metrics() -> ShardMetrics {
        ShardMetrics {
            data: Rc::new(RefCell::new(ShardData::default())),
        }
    }

    /// Collects a snapshot from every shard. Shards that have stopped are skipped.
    pub async fn collect(&self) -> Vec<ShardData> {
        let mut waits = Vec::with_capacity(self.shards.len());
        for tx in &self.shards {
            let (reply, rx) = oneshot::channel();
            if tx.send(reply).is_ok() {
                waits.push(rx);
            }
        }
        let mut out = Vec::with_capacity(waits.len());
        for rx in waits {
            if let Ok(d) = rx.await {
                out.push(d);
            }
        }
        out
    }

    /// The Prometheus text exposition of everything.
    pub async fn render(&self) -> String {
        let shards = self.collect().await;
        let mut total = ShardData::default();
        for s in &shards {
            total.merge(s);
        }
        let mut out = String::with_capacity(16 * 1024);
        render_http(&mut out, &total);
        render_shards(&mut out, &shards);
        render_auth(&mut out, &total);
        render_process(&mut out, &self.process);
        render_unknown_values(&mut out, &store::tolerance::snapshot());
        out
    }
}

/// Values a newer release wrote that this one skipped or read as a default (see
/// `store::tolerance`), by kind: process-wide, like the data they come from.
fn render_unknown_values(out: &mut String, counts: &[(&str, u64)]) {
    out.push_str("# HELP hellojohn_unknown_values_total Stored values, settings or token types this release does not know (written by a newer release?) that a reader skipped or read as a default, by kind.\n# TYPE hellojohn_unknown_values_total counter\n");
    for (kind, v) in counts {
        let _ = writeln!(out, "hellojohn_unknown_values_total{{kind=\"{kind}\"}} {v}");
    }
}

fn sorted_routes(total: &ShardData) -> Vec<(&(usize, Route), &RouteStats)> {
    let mut routes: Vec<_> = total.routes.iter().collect();
    routes.sort_by_key(|((m, r), _)| (r.template(), *m));
    routes
}

fn render_http(out: &mut String, total: &ShardData) {
    let routes = sorted_routes(total);
    out.push_str("# HELP hellojohn_http_requests_total HTTP requests by method, route template and status.\n");
    out.push_str("# TYPE hellojohn_http_requests_total counter\n");
    for ((m, route), stats) in &routes {
        let mut statuses: Vec<_> = stats.by_status.iter().collect();
        statuses.sort();
        for (status, n) in statuses {
            let _ = writeln!(
                out,
                "hellojohn_http_requests_total{{method=\"{}\",path=\"{}\",status=\"{}\"}} {}",
                METHODS[*m],
                route.template(),
                status,
                n
            );
        }
    }
    out.push_str("# HELP hellojohn_http_request_duration_seconds HTTP request latency (merged per-core HDR histograms).\n");
    out.push_str("# TYPE hellojohn_http_request_duration_seconds summary\n");
    for ((m, route), stats) in &routes {
        let h = &stats.latency_us;
        let labels = format!("method=\"{}\",path=\"{}\"", METHODS[*m], route.template());
        for q in QUANTILES {
            let v = h.value_at_quantile(q) as f64 / 1e6;
            let _ = writeln!(
                out,
                "hellojohn_http_request_duration_seconds{{{labels},quantile=\"{q}\"}} {v}"
            );
        }
        let sum = h.mean() * h.len() as f64 / 1e6;
        let _ = writeln!(
            out,
            "hellojohn_http_request_duration_seconds_sum{{{labels}}} {sum}"
        );
        let _ = writeln!(
            out,
            "hellojohn_http_request_duration_seconds_count{{{labels}}} {}",
            h.len()
        );
    }
    out.push_str("# HELP hellojohn_http_request_latency_seconds HTTP request latency as a histogram, aggregatable across instances.\n");
    out.push_str("# TYPE hellojohn_http_request_latency_seconds histogram\n");
    for ((m, route), stats) in &routes {
        let h = &stats.latency_us;
        let labels = format!("method=\"{}\",path=\"{}\"", METHODS[*m], route.template());
        for le in LATENCY_BUCKETS {
            let bound = (le * 1e6) as u64;
            let n = h.count_between(0, h.highest_equivalent(bound));
            let _ = writeln!(
                out,
                "hellojohn_http_request_latency_seconds_bucket{{{labels},le=\"{le}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "hellojohn_http_request_latency_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
            h.len()
        );
        let sum = h.mean() * h.len() as f64 / 1e6;
        let _ = writeln!(
            out,
            "hellojohn_http_request_latency_seconds_sum{{{labels}}} {sum}"
        );
        let _ = writeln!(
            out,
            "hellojohn_http_request_latency_seconds_count{{{labels}}} {}",
            h.len()
        );
    }
}

fn render_shards(out: &mut String, shards: &[ShardData]) {
    out.push_str("# HELP hellojohn_shard_connections_total TCP connections accepted by each shard (event loop).\n");
    out.push_str("# TYPE hellojohn_shard_connections_total counter\n");
    for (i, s) in shards.iter().enumerate() {
        let _ = writeln!(
            out,
            "hellojohn_shard_connections_total{{shard=\"{i}\"}} {}",
            s.connections_accepted
        );
    }
}

fn render_auth(out: &mut String, total: &ShardData) {
    out.push_str("# HELP hellojohn_auth_sign_ins_total Sign-in attempts by method and outcome.\n");
    out.push_str("# TYPE hellojohn_auth_sign_ins_total counter\n");
    for (m, method) in SIGN_IN_METHODS.iter().enumerate() {
        for (s, status) in SIGN_IN_STATUSES.iter().enumerate() {
            let _ = writeln!(
                out,
                "hellojohn_auth_sign_ins_total{{method=\"{method}\",status=\"{status}\"}} {}",
                total.sign_ins[m][s]
            );
        }
    }
    out.push_str(
        "# HELP hellojohn_rate_limit_rejections_total Requests rejected by a rate limit.\n",
    );
    out.push_str("# TYPE hellojohn_rate_limit_rejections_total counter\n");
    let mut limits: Vec<_> = total.rate_limited.iter().collect();
    limits.sort();
    for (limit, n) in limits {
        let _ = writeln!(
            out,
            "hellojohn_rate_limit_rejections_total{{limit=\"{limit}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP hellojohn_http_handler_panics_total Requests whose handler panicked (answered 500).\n\
         # TYPE hellojohn_http_handler_panics_total counter\n\
         hellojohn_http_handler_panics_total {}",
        total.panics
    );
}

fn render_process(out: &mut String, p: &Process) {
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let gauge = |out: &mut String, name: &str, help: &str, v: u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    };
    let counter = |out: &mut String, name: &str, help: &str, v: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    };
    gauge(
        out,
        "hellojohn_hash_pool_workers",
        "Password-hashing threads.",
        get(&p.hash.hash_workers),
    );
    gauge(
        out,
        "hellojohn_hash_pool_queue_depth",
        "Hash jobs waiting for a thread.",
        get(&p.hash.hash_queue_depth),
    );
    gauge(
        out,
        "hellojohn_hash_pool_in_flight",
        "Hash jobs running now.",
        get(&p.hash.hash_in_flight),
    );
    counter(
        out,
        "hellojohn_hash_pool_hashes_total",
        "Argon2id computations done (hashes and verifications).",
        get(&p.hash.hashes_total),
    );
    counter(
        out,
        "hellojohn_hash_pool_rejected_total",
        "Hash jobs refused because the expected wait exceeded the budget.",
        get(&p.hash.hash_rejected_total),
    );
    let _ = writeln!(
        out,
        "# HELP hellojohn_hash_pool_wait_seconds_total Time hash jobs spent queued.\n# TYPE hellojohn_hash_pool_wait_seconds_total counter\nhellojohn_hash_pool_wait_seconds_total {}",
        get(&p.hash.hash_wait_us_total) as f64 / 1e6
    );
    let _ = writeln!(
        out,
        "# HELP hellojohn_hash_pool_work_seconds_total Time spent computing hashes.\n# TYPE hellojohn_hash_pool_work_seconds_total counter\nhellojohn_hash_pool_work_seconds_total {}",
        get(&p.hash.hash_work_us_total) as f64 / 1e6
    );
    gauge(
        out,
        "hellojohn_hash_pool_arena_bytes",
        "Argon2 memory mapped by the hashing threads at start (address space, not all resident).",
        get(&p.hash.hash_arena_bytes),
    );
    gauge(
        out,
        "hellojohn_hash_pool_arena_resident_bytes",
        "Argon2 memory of the hashing threads in use since each one's last idle release.",
        get(&p.hash.hash_arena_resident_bytes),
    );
    counter(
        out,
        "hellojohn_hash_pool_arena_releases_total",
        "Times an idle hashing thread gave its Argon2 memory back to the OS.",
        get(&p.hash.hash_arena_releases_total),
    );
    counter(
        out,
        "hellojohn_hash_pool_arena_fresh_allocations_total",
        "Hashes too large for a hashing thread's arena, which allocated memory of their own.",
        get(&p.hash.hash_arena_fresh_allocations_total),
    );
    gauge(
        out,
        "hellojohn_argon2_memory_kib",
        "Argon2id memory of new password hashes, in KiB.",
        get(&p.hash.argon2_memory_kib),
    );
    gauge(
        out,
        "hellojohn_argon2_iterations",
        "Argon2id iterations of new password hashes.",
        get(&p.hash.argon2_iterations),
    );
    gauge(
        out,
        "hellojohn_argon2_parallelism",
        "Argon2id parallelism (lanes) of new password hashes.",
        get(&p.hash.argon2_parallelism),
    );
    out.push_str("# HELP hellojohn_db_pool_connections Database connections by state.\n# TYPE hellojohn_db_pool_connections gauge\n");
    let _ = writeln!(
        out,
        "hellojohn_db_pool_connections{{state=\"idle\"}} {}",
        get(&p.db_pool_idle)
    );
    let _ = writeln!(
        out,
        "hellojohn_db_pool_connections{{state=\"in_use\"}} {}",
        get(&p.db_pool_in_use)
    );
    let _ = writeln!(
        out,
        "hellojohn_db_pool_connections{{state=\"max\"}} {}",
        get(&p.db_pool_max)
    );
    counter(
        out,
        "hellojohn_redis_fallbacks_total",
        "Operations served locally because Redis was unreachable.",
        get(&p.redis_fallbacks_total),
    );
    render_webhooks(out, p);
    render_mail(out, p);
}

fn render_mail(out: &mut String, p: &Process) {
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    out.push_str("# HELP hellojohn_mail_deliveries_total Mail send attempts by outcome: sent (the SMTP relay accepted it), failed (retried later), exhausted (the last attempt failed).\n# TYPE hellojohn_mail_deliveries_total counter\n");
    for (status, v) in [
        ("sent", &p.mail_sent_total),
        ("failed", &p.mail_failed_total),
        ("exhausted", &p.mail_exhausted_total),
    ] {
        let _ = writeln!(
            out,
            "hellojohn_mail_deliveries_total{{status=\"{status}\"}} {}",
            get(v)
        );
    }
    let _ = writeln!(
        out,
        "# HELP hellojohn_mail_backlog Mails due and not yet sent (the outbox backlog, all instances), as this instance's mail worker last counted them.\n# TYPE hellojohn_mail_backlog gauge\nhellojohn_mail_backlog {}",
        get(&p.mail_backlog)
    );
}

fn render_webhooks(out: &mut String, p: &Process) {
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    out.push_str("# HELP hellojohn_webhook_deliveries_total Webhook delivery attempts by outcome: delivered (2xx), failed (retried later), exhausted (the last attempt failed).\n# TYPE hellojohn_webhook_deliveries_total counter\n");
    for (status, v) in [
        ("delivered", &p.webhook_delivered_total),
        ("failed", &p.webhook_failed_total),
        ("exhausted", &p.webhook_exhausted_total),
    ] {
        let _ = writeln!(
            out,
            "hellojohn_webhook_deliveries_total{{status=\"{status}\"}} {}",
            get(v)
        );
    }
    let _ = writeln!(
        out,
        "# HELP hellojohn_webhook_backlog Webhook deliveries due and not yet delivered (the outbox backlog, all instances), as this instance last counted them.\n# TYPE hellojohn_webhook_backlog gauge\nhellojohn_webhook_backlog {}",
        get(&p.webhook_backlog)
    );
    let h = &p.webhook_latency;
    out.push_str("# HELP hellojohn_webhook_delivery_latency_seconds Time from an event to the 2xx of its delivery, retries included.\n# TYPE hellojohn_webhook_delivery_latency_seconds histogram\n");
    let mut cumulative = 0;
    for (i, le) in WEBHOOK_LATENCY_BUCKETS.iter().enumerate() {
        cumulative += get(&h.buckets[i]);
        let _ = writeln!(
            out,
            "hellojohn_webhook_delivery_latency_seconds_bucket{{le=\"{le}\"}} {cumulative}"
        );
    }
    let _ = writeln!(
        out,
        "hellojohn_webhook_delivery_latency_seconds_bucket{{le=\"+Inf\"}} {}\nhellojohn_webhook_delivery_latency_seconds_sum {}\nhellojohn_webhook_delivery_latency_seconds_count {}",
        cumulative + get(&h.buckets[WEBHOOK_LATENCY_BUCKETS.len()]),
        get(&h.sum_us) as f64 / 1e6,
        get(&h.count)
    );
}

/// The store's call counters (PostgreSQL; the embedded store reports none):
/// `hellojohn_db_calls_total{method}` (one per store method called: what each request path
/// costs the database), and the waits for a pool connection, the queue of a closed loop whose
/// bottleneck is the pool.
pub fn render_db_calls(out: &mut String, pool: &store::PoolStats) {
    out.push_str(
        "# HELP hellojohn_db_calls_total Store calls by method (each takes one pooled connection for its round trips).\n# TYPE hellojohn_db_calls_total counter\n",
    );
    let mut methods = pool.by_method.clone();
    methods.sort_unstable();
    for (method, n) in methods {
        let _ = writeln!(out, "hellojohn_db_calls_total{{method=\"{method}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP hellojohn_db_pool_waits_total Store calls that waited for a connection because every one of their pool was in use.\n# TYPE hellojohn_db_pool_waits_total counter\nhellojohn_db_pool_waits_total {}",
        pool.waits
    );
    let _ = writeln!(
        out,
        "# HELP hellojohn_db_pool_wait_seconds_total Time store calls spent waiting for a pool connection.\n# TYPE hellojohn_db_pool_wait_seconds_total counter\nhellojohn_db_pool_wait_seconds_total {}",
        pool.wait_us as f64 / 1e6
    );
}

#[cfg(test)]
mod grant_labels {
    /// Every grant the token endpoint serves has its `method` label.
    #[test]
    fn every_grant_has_a_sign_in_method_label() {
        for g in protocol::GrantType::ALL {
            assert!(super::SIGN_IN_METHODS.contains(&g.method()), "{g:?}");
        }
    }
}
