//! Run results on disk (`summary.json`, `latency.hgrm`, `latency.svg`) and in words.

use std::collections::BTreeMap;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::load::{LoadConfig, LoadResult, Mode};
use crate::metrics::ServerInfo;
use crate::scenario::Workload;
use crate::stats::Recorder;
use crate::util::{fmt_ms, fmt_rate, write_file};

/// Percentiles of a latency histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    #[serde(rename = "p99.9")]
    pub p99_9: f64,
    pub max: f64,
    pub mean: f64,
    pub min: f64,
}

impl Latency {
    /// From a histogram recorded in microseconds.
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let q = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
        Latency {
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p99_9: q(0.999),
            max: h.max() as f64 / 1e3,
            mean: h.mean() / 1e3,
            min: h.min() as f64 / 1e3,
        }
    }
}

/// Requests without a 2xx answer, by cause.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Errors {
    pub total: u64,
    /// Answers with a status outside 200..299 (see `status_counts`).
    pub non_2xx: u64,
    /// Not answered within the timeout of the intended start.
    pub timeout: u64,
    /// The connection could not be opened.
    pub connect: u64,
    /// The connection broke.
    pub io: u64,
}

/// One operation of a mix.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OpSummary {
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub achieved_rate: f64,
    pub latency_ms: Latency,
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub tool: String,
    pub version: String,
    pub target: String,
    pub scenario: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mix: Option<BTreeMap<String, u32>>,
    /// `open` (fixed arrival rate) or `closed` (back-to-back connections).
    pub mode: String,
    /// Open loop: the offered arrival rate, requests/s.
    pub offered_rate: Option<f64>,
    /// Closed loop: the connections.
    pub connections: Option<usize>,
    pub peak_connections: usize,
    pub threads: usize,
    /// Users taking part (`bench-0` .. `bench-<users-1>`).
    pub users: usize,
    /// The measured phase, s.
    pub duration_s: f64,
    /// The warm-up before it, s (its requests are not in the results).
    pub warmup_s: f64,
    pub timeout_s: f64,
    /// Requests of the measured phase (intended start inside it), answered or not.
    pub requests: u64,
    pub warmup_requests: u64,
    /// Answers of any status per second of the measured phase.
    pub achieved_rate: f64,
    /// 2xx answers per second of the measured phase.
    pub ok_rate: f64,
    /// Answers by HTTP status.
    pub status_counts: BTreeMap<String, u64>,
    pub errors: Errors,
    /// `errors.total / requests`.
    pub error_rate: f64,
    /// What latencies count from: `intended start` (open loop) or `send` (closed loop).
    pub latency_from: String,
    /// Latency of every answer (any status) and of timeouts, ms.
    pub latency_ms: Latency,
    /// Time from actually writing the request to its answer, ms: queueing in the bench left
    /// out, i.e. what a tool with coordinated omission would report.
    pub service_time_ms: Latency,
    /// `latency_ms` of the 2xx answers alone: the latency of admitted requests.
    #[serde(default)]
    pub ok_latency_ms: Latency,
    /// `latency_ms` of the non-2xx answers alone: how fast refusals come back.
    #[serde(default)]
    pub refused_latency_ms: Latency,
    /// Per operation (one entry unless the scenario is a mix).
    pub ops: BTreeMap<String, OpSummary>,
    /// Refresh chains restarted with a sign-in after a failed refresh.
    pub refresh_recoveries: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerInfo>,
    pub started_at_unix: u64,
}

impl Summary {
    pub fn build(
        cfg: &LoadConfig,
        wl: &Workload,
        result: &LoadResult,
        server: Option<ServerInfo>,
        started_at_unix: u64,
    ) -> Summary {
        let r: &Recorder = &result.recorder;
        let secs = cfg.duration.as_secs_f64().max(1e-9);
        let ok = r.ok();
        let responses = r.responses();
        let (mode, offered_rate, connections, latency_from) = match cfg.mode {
            Mode::Open { rate } => ("open", Some(rate), None, "intended start"),
            Mode::Closed { connections } => ("closed", None, Some(connections), "send"),
        };
        let ops = r
            .ops
            .iter()
            .map(|(op, o)| {
                (
                    op.name().to_string(),
                    OpSummary {
                        requests: o.requests,
                        errors: o.errors,
                        error_rate: ratio(o.errors, o.requests),
                        achieved_rate: (o.requests - o.errors) as f64 / secs,
                        latency_ms: Latency::of(&o.latency),
                    },
                )
            })
            .collect();
        Summary {
            tool: "hj bench".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            target: wl.target.url.clone(),
            scenario: wl.scenario.name.clone(),
            mix: (wl.scenario.name == "mixed").then(|| {
                wl.scenario
                    .mix
                    .iter()
                    .map(|(op, w)| (op.name().to_string(), *w))
                    .collect()
            }),
            mode: mode.to_string(),
            offered_rate,
            connections,
            peak_connections: result.peak_connections,
            threads: result.threads,
            users: wl.users,
            duration_s: cfg.duration.as_secs_f64(),
            warmup_s: cfg.warmup.as_secs_f64(),
            timeout_s: cfg.timeout.as_secs_f64(),
            requests: r.requests(),
            warmup_requests: result.warmup_requests,
            achieved_rate: responses as f64 / secs,
            ok_rate: ok as f64 / secs,
            status_counts: r
                .status
                .iter()
                .map(|(code, n)| (code.to_string(), *n))
                .collect(),
            errors: Errors {
                total: r.errors(),
                non_2xx: responses - ok,
                timeout: r.timeouts,
                connect: r.connect_errors,
                io: r.io_errors,
            },
            error_rate: r.error_rate(),
            latency_from: latency_from.to_string(),
            latency_ms: Latency::of(&r.latency),
            service_time_ms: Latency::of(&r.service),
            ok_latency_ms: Latency::of(&r.ok_latency),
            refused_latency_ms: Latency::of(&r.refused_latency),
            ops,
            refresh_recoveries: r.recoveries,
            server,
            started_at_unix,
        }
    }

    /// `signin, open loop, 200 req/s`.
    pub fn headline(&self) -> String {
        match (self.offered_rate, self.connections) {
            (Some(rate), _) => format!("{}, open loop at {} req/s", self.scenario, fmt_rate(rate)),
            (None, Some(c)) => format!(
                "{}, closed loop with {c} connection{}",
                self.scenario,
                if c == 1 { "" } else { "s" }
            ),
            (None, None) => self.scenario.clone(),
        }
    }

    /// The one-paragraph account printed after a run.
    pub fn paragraph(&self, out_dir: &Path) -> String {
        let l = &self.latency_ms;
        let mut text = format!(
            "{} for {} s ({} s warm-up left out): {} requests, {}/s answered ({}/s 2xx), {}. \
             Latency from each request's {}: p50 {}, p90 {}, p99 {}, p99.9 {}, max {}.",
            self.headline(),
            fmt_rate(self.duration_s),
            fmt_rate(self.warmup_s),
            self.requests,
            fmt_rate(self.achieved_rate),
            fmt_rate(self.ok_rate),
            self.error_phrase(),
            self.latency_from,
            fmt_ms(l.p50),
            fmt_ms(l.p90),
            fmt_ms(l.p99),
            fmt_ms(l.p99_9),
            fmt_ms(l.max),
        );
        if self.errors.non_2xx > 0 && self.ok_rate > 0.0 {
            text.push_str(&format!(
                " 2xx alone: p50 {}, p99 {}; refusals alone: p50 {}, p99 {}.",
                fmt_ms(self.ok_latency_ms.p50),
                fmt_ms(self.ok_latency_ms.p99),
                fmt_ms(self.refused_latency_ms.p50),
                fmt_ms(self.refused_latency_ms.p99),
            ));
        }
        if self.ops.len() > 1 {
            let parts: Vec<String> = self
                .ops
                .iter()
                .map(|(name, o)| format!("{name} p99 {}", fmt_ms(o.latency_ms.p99)))
                .collect();
            text.push_str(&format!(" By operation: {}.", parts.join(", ")));
        }
        if let Some(s) = &self.server {
            let mut parts = Vec::new();
            if let Some(v) = &s.version {
                parts.push(format!("version {v}"));
            }
            if let Some(w) = s.hash_workers {
                parts.push(format!("{w} hash workers"));
            }
            if let (Some(h), Some(ms)) = (s.hashes, s.hash_work_ms_mean) {
                parts.push(format!("{h:.0} hashes at {} each", fmt_ms(ms)));
            }
            if let Some(r) = s.hash_rejected.filter(|r| *r > 0.0) {
                parts.push(format!("{r:.0} hash jobs refused as overloaded"));
            }
            if !parts.is_empty() {
                text.push_str(&format!(" Server: {}.", parts.join(", ")));
            }
        }
        text.push_str(&format!(
            " Results in {} (summary.json, latency.hgrm, latency.svg).",
            out_dir.display()
        ));
        text
    }

    /// `no errors` or `12 errors (0.20 %: 503 x10, timeout x2)`.
    pub fn error_phrase(&self) -> String {
        let e = &self.errors;
        if e.total == 0 {
            return "no errors".to_string();
        }
        let mut causes: Vec<String> = self
            .status_counts
            .iter()
            .filter(|(code, _)| !code.starts_with('2'))
            .map(|(code, n)| format!("{code} x{n}"))
            .collect();
        for (name, n) in [("timeout", e.timeout), ("connect", e.connect), ("io", e.io)] {
            if n > 0 {
                causes.push(format!("{name} x{n}"));
            }
        }
        format!(
            "{} error{} ({:.2} %: {})",
            e.total,
            if e.total == 1 { "" } else { "s" },
            self.error_rate * 100.0,
            causes.join(", ")
        )
    }
}

fn ratio(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 / of as f64
    }
}

/// Writes `summary.json`, `latency.hgrm` and `latency.svg` (one curve) into `dir`.
pub fn write_run(
    dir: &Path,
    summary: &Summary,
    hist: &Histogram<u64>,
    target_ms: Option<f64>,
) -> anyhow::Result<()> {
    write_file(
        dir,
        "summary.json",
        serde_json::to_string_pretty(summary)?.as_bytes(),
    )?;
    write_file(
        dir,
        "latency.hgrm",
        crate::hgrm::percentile_distribution(hist, 1e3).as_bytes(),
    )?;
    let series = [crate::svg::Series {
        label: format!(
            "{}: p99 {}, max {}",
            summary.headline(),
            fmt_ms(summary.latency_ms.p99),
            fmt_ms(summary.latency_ms.max)
        ),
        hist,
    }];
    let svg = crate::svg::latency_by_percentile(
        &format!("HelloJohn latency by percentile: {}", summary.scenario),
        &subtitle(summary),
        &series,
        target_ms,
    );
    write_file(dir, "latency.svg", svg.as_bytes())
}

/// `open loop, 200 req/s offered, 199.9/s answered, 0.00 % errors, 30 s, 6000 requests`.
pub fn subtitle(s: &Summary) -> String {
    let load = match (s.offered_rate, s.connections) {
        (Some(r), _) => format!("open loop, {} req/s offered", fmt_rate(r)),
        (None, Some(c)) => format!("closed loop, {c} connections"),
        (None, None) => String::new(),
    };
    format!(
        "{load}, {}/s answered, {:.2} % errors, {} s, {} requests, latency from {}; {}",
        fmt_rate(s.achieved_rate),
        s.error_rate * 100.0,
        fmt_rate(s.duration_s),
        s.requests,
        s.latency_from,
        s.target
    )
}
