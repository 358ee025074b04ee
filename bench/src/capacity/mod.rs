//! The capacity search: the highest offered rate whose p99 and error rate stay under target.
//!
//! Rates grow by `factor` from `start_rate` until a step fails (or shrink until one passes), then
//! the bracket between the best passing and the lowest failing rate is bisected until it is
//! narrower than `precision` of the passing rate. Each step is an open-loop run, so a rate the
//! server cannot take shows up as growing latency or as 503/429 answers, never as a quietly
//! lower send rate.

pub mod run;

use serde::{Deserialize, Serialize};

use crate::ceiling::CeilingResult;
use crate::util::{fmt_ms, fmt_rate};

/// How the rates are searched.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct SearchConfig {
    pub start_rate: f64,
    pub max_rate: f64,
    /// The search gives up below this rate.
    pub min_rate: f64,
    /// Growth (and shrink) factor of the first phase.
    pub factor: f64,
    /// Bisection stops when the bracket is narrower than this share of the passing rate.
    pub precision: f64,
    pub max_steps: usize,
}

/// What a step must achieve to pass.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Criteria {
    /// p99 must be below this, ms.
    pub p99_ms: f64,
    /// Errors (non-2xx, 503 and 429 included, timeouts, broken connections) must be below this
    /// share of the requests.
    pub max_error_rate: f64,
    /// Answers per second must reach this share of the offered rate.
    pub min_achieved_ratio: f64,
}

impl Criteria {
    /// Whether a step passes, and if not, why.
    pub fn judge(
        &self,
        offered: f64,
        achieved: f64,
        p99_ms: f64,
        error_rate: f64,
    ) -> (bool, String) {
        let mut why = Vec::new();
        if p99_ms >= self.p99_ms {
            why.push(format!("p99 {} >= {}", fmt_ms(p99_ms), fmt_ms(self.p99_ms)));
        }
        if error_rate >= self.max_error_rate {
            why.push(format!(
                "errors {:.2} % >= {:.2} %",
                error_rate * 100.0,
                self.max_error_rate * 100.0
            ));
        }
        if achieved < offered * self.min_achieved_ratio {
            why.push(format!(
                "answered {}/s < {:.0} % of offered",
                fmt_rate(achieved),
                self.min_achieved_ratio * 100.0
            ));
        }
        (why.is_empty(), why.join(", "))
    }
}

/// One step of the search.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Step {
    pub index: usize,
    pub offered_rate: f64,
    /// Answers of any status per second.
    pub achieved_rate: f64,
    /// 2xx answers per second.
    pub ok_rate: f64,
    pub p99_ms: f64,
    pub error_rate: f64,
    pub pass: bool,
    /// Why it failed (empty when it passed).
    pub reason: String,
    /// Where its summary.json, latency.hgrm and latency.svg are, relative to the output folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
}

impl Step {
    pub fn line(&self) -> String {
        format!(
            "step {:>2}: {:>8}/s offered -> {:>8}/s answered, p99 {:>9}, errors {:>6.2} %: {}",
            self.index + 1,
            fmt_rate(self.offered_rate),
            fmt_rate(self.achieved_rate),
            fmt_ms(self.p99_ms),
            self.error_rate * 100.0,
            if self.pass {
                "pass".to_string()
            } else {
                format!("FAIL ({})", self.reason)
            }
        )
    }
}

/// All steps, and which one was the highest passing rate.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOutcome {
    pub steps: Vec<Step>,
    pub best: Option<usize>,
}

impl SearchOutcome {
    pub fn best_step(&self) -> Option<&Step> {
        self.best.and_then(|i| self.steps.get(i))
    }
}

/// Runs the search; `run_step(index, rate)` offers `rate` and reports the step.
pub fn search<F>(cfg: &SearchConfig, mut run_step: F) -> anyhow::Result<SearchOutcome>
where
    F: FnMut(usize, f64) -> anyhow::Result<Step>,
{
    let mut steps: Vec<Step> = Vec::new();
    let (mut good, mut bad): (Option<f64>, Option<f64>) = (None, None);
    let factor = if cfg.factor > 1.0 { cfg.factor } else { 2.0 };
    let max_steps = cfg.max_steps.max(1);
    let mut rate = cfg.start_rate.min(cfg.max_rate).max(cfg.min_rate);
    // Bracket: grow until a failure, or shrink until a pass.
    while steps.len() < max_steps {
        let step = run_step(steps.len(), rate)?;
        let pass = step.pass;
        steps.push(step);
        if pass {
            good = Some(rate);
            if bad.is_some() || rate >= cfg.max_rate {
                break;
            }
            rate = (rate * factor).min(cfg.max_rate);
        } else {
            bad = Some(rate);
            if good.is_some() {
                break;
            }
            let lower = rate / factor;
            if lower < cfg.min_rate {
                break;
            }
            rate = lower;
        }
    }
    // Bisect the bracket.
    while let (Some(g), Some(b)) = (good, bad) {
        if b - g <= cfg.precision * g || steps.len() >= max_steps {
            break;
        }
        let mid = (g + b) / 2.0;
        let step = run_step(steps.len(), mid)?;
        if step.pass {
            good = Some(mid);
        } else {
            bad = Some(mid);
        }
        steps.push(step);
    }
    let best = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.pass)
        .max_by(|a, b| a.1.offered_rate.total_cmp(&b.1.offered_rate))
        .map(|(i, _)| i);
    Ok(SearchOutcome { steps, best })
}

/// Everything the verdict is made of.
#[derive(Debug, Clone)]
pub struct VerdictInput<'a> {
    /// `sign-ins`, `userinfo requests`...
    pub noun: &'a str,
    /// Share of the requests that cost one Argon2 computation (1 for sign-in).
    pub argon2_share: f64,
    pub criteria: Criteria,
    /// Cores the rate is credited to (the server's hash workers, else this host's CPUs).
    pub cores: usize,
    /// `argon2id m=19456 t=2 p=1`.
    pub argon2: String,
    pub ceiling: Option<&'a CeilingResult>,
    /// The rate the operator wants (the guide's 500 sign-ins/s).
    pub goal: f64,
}

/// The numbers behind the verdict.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    pub line: String,
    /// Sustained rate per core (Argon2-bound scenarios).
    pub per_core_rate: Option<f64>,
    /// Cores needed for `goal` at that per-core rate.
    pub cores_for_goal: Option<u64>,
    /// Sustained Argon2-costing requests per second / raw hash rate of the ceiling.
    pub efficiency: Option<f64>,
}

/// `sustains 143 sign-ins/s at p99 212 ms on 2 cores (argon2id m=19456 t=2 p=1); 500/s needs
/// about 7 such cores; ...`
pub fn verdict(outcome: &SearchOutcome, v: &VerdictInput<'_>) -> Verdict {
    let hashing = v.argon2_share > 0.0;
    let cores = v.cores.max(1);
    let on_cores = if hashing {
        format!(
            " on {cores} core{} ({})",
            if cores == 1 { "" } else { "s" },
            v.argon2
        )
    } else {
        format!(" on {cores} core{}", if cores == 1 { "" } else { "s" })
    };
    let Some(best) = outcome.best_step() else {
        let lowest = outcome
            .steps
            .iter()
            .min_by(|a, b| a.offered_rate.total_cmp(&b.offered_rate));
        let detail = lowest.map_or(String::new(), |s| {
            format!(
                "; at {}/s: p99 {}, errors {:.2} %",
                fmt_rate(s.offered_rate),
                fmt_ms(s.p99_ms),
                s.error_rate * 100.0
            )
        });
        return Verdict {
            line: format!(
                "does not sustain any tried rate of {} at p99 < {} with < {:.0} % errors{on_cores}{detail}",
                v.noun,
                fmt_ms(v.criteria.p99_ms),
                v.criteria.max_error_rate * 100.0
            ),
            per_core_rate: None,
            cores_for_goal: None,
            efficiency: None,
        };
    };
    let rate = best.offered_rate;
    let mut line = format!(
        "sustains {} {}/s at p99 {}{on_cores}",
        fmt_rate(rate),
        v.noun,
        fmt_ms(best.p99_ms)
    );
    let mut out = Verdict {
        line: String::new(),
        per_core_rate: None,
        cores_for_goal: None,
        efficiency: None,
    };
    if hashing && rate > 0.0 {
        let per_core = rate / cores as f64;
        let needed = (v.goal / per_core).ceil().max(1.0) as u64;
        line.push_str(&format!(
            "; {}/s needs about {needed} such core{}",
            fmt_rate(v.goal),
            if needed == 1 { "" } else { "s" }
        ));
        out.per_core_rate = Some(per_core);
        out.cores_for_goal = Some(needed);
        if let Some(c) = v.ceiling.filter(|c| c.hashes_per_s > 0.0) {
            let eff = best.ok_rate * v.argon2_share / c.hashes_per_s;
            line.push_str(&format!(
                "; efficiency {:.0} % of the raw Argon2 ceiling ({:.0} hashes/s on {} thread{})",
                eff * 100.0,
                c.hashes_per_s,
                c.workers,
                if c.workers == 1 { "" } else { "s" }
            ));
            out.efficiency = Some(eff);
        }
    }
    out.line = line;
    out
}
