//! `hj bench capacity`: the search run against a server. The command line fills a
//! [`CapacityPlan`]; [`run`] measures the ceiling beside it, runs the open-loop steps of
//! [`super::search`], writes each step and the overall report, and returns the report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::{Criteria, SearchConfig, Step, VerdictInput};
use crate::ceiling::{self, CeilingConfig, CeilingResult};
use crate::load::{run_load, LoadConfig, Mode};
use crate::metrics::{self, ServerInfo};
use crate::report::{self, Summary};
use crate::scenario::{Credentials, Scenario};
use crate::target::Target;
use crate::util::{cores, fmt_ms, fmt_rate, unix_now, write_file};

/// Everything a capacity search needs, parsed and checked by the command line.
pub struct CapacityPlan {
    pub target: Arc<Target>,
    pub scenario: Scenario,
    pub creds: Credentials,
    pub users: usize,
    pub prep_concurrency: usize,
    pub quiet: bool,
    pub progress: bool,
    pub out: PathBuf,
    pub criteria: Criteria,
    pub step_duration: Duration,
    pub step_warmup: Duration,
    /// Pause between steps.
    pub cooldown: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Argon2id `(memory_kib, iterations, parallelism)` of the server.
    pub argon2: (u32, u32, u32),
    /// Threads for the ceiling; `None`: the server's hash workers, else the CPUs.
    pub ceiling_workers: Option<usize>,
    pub measure_ceiling: bool,
    pub ceiling_duration: Duration,
    /// `None`: derived from the ceiling.
    pub start_rate: Option<f64>,
    pub max_rate: Option<f64>,
    pub factor: f64,
    pub precision: f64,
    pub max_steps: usize,
    pub threads: usize,
    pub max_connections: usize,
    /// The sign-ins per second the verdict counts cores for.
    pub goal: f64,
}

/// `capacity.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CapacityReport {
    pub target: String,
    pub scenario: String,
    pub criteria: Criteria,
    pub search: SearchConfig,
    pub step_duration_s: f64,
    pub step_warmup_s: f64,
    pub steps: Vec<Step>,
    /// The highest passing offered rate.
    pub sustained_rate: Option<f64>,
    pub sustained_p99_ms: Option<f64>,
    pub sustained_error_rate: Option<f64>,
    /// Cores the rate is credited to, and where that number comes from.
    pub cores: usize,
    pub cores_source: String,
    pub argon2: String,
    pub ceiling: Option<CeilingResult>,
    pub efficiency: Option<f64>,
    pub goal_rate: f64,
    pub cores_for_goal: Option<u64>,
    pub server: Option<ServerInfo>,
    pub verdict: String,
}

/// Runs the search of `plan` against its server, whose `/health` answer and first metrics scrape
/// are `health` and `before`.
pub fn run(
    rt: &tokio::runtime::Runtime,
    plan: &CapacityPlan,
    health: serde_json::Value,
    before: Option<metrics::Snapshot>,
) -> anyhow::Result<CapacityReport> {
    let (target, scenario, out, criteria) =
        (&plan.target, &plan.scenario, &plan.out, plan.criteria);
    let (quiet, step_duration, step_warmup, cooldown) = (
        plan.quiet,
        plan.step_duration,
        plan.step_warmup,
        plan.cooldown,
    );
    let share = scenario.argon2_share();
    let server_workers = before.as_ref().and_then(metrics::Snapshot::hash_workers);
    let (memory_kib, iterations, parallelism) = plan.argon2;
    let argon2 = format!("argon2id m={memory_kib} t={iterations} p={parallelism}");
    let ceiling_workers = plan
        .ceiling_workers
        .or(server_workers)
        .unwrap_or_else(cores);
    let ceiling = if share > 0.0 && plan.measure_ceiling {
        if !quiet {
            eprintln!(
                "hj bench: measuring the Argon2 ceiling ({argon2}, {ceiling_workers} threads)..."
            );
        }
        let c = ceiling::measure(&CeilingConfig {
            memory_kib,
            iterations,
            parallelism,
            workers: ceiling_workers,
            duration: plan.ceiling_duration,
        })?;
        if !quiet {
            eprintln!("hj bench: {}", c.line());
        }
        Some(c)
    } else {
        None
    };
    let hash_rate = ceiling.as_ref().map(|c| c.hashes_per_s / share.max(1e-9));
    let start_rate = match (plan.start_rate, hash_rate) {
        (Some(r), _) => r,
        (None, Some(h)) => (h / 4.0).max(1.0),
        (None, None) if share > 0.0 => 50.0,
        (None, None) => 500.0,
    };
    let max_rate = match (plan.max_rate, hash_rate) {
        (Some(r), _) => r,
        (None, Some(h)) => (h * 3.0).max(start_rate),
        (None, None) => 1_000_000.0,
    };
    let search_cfg = SearchConfig {
        start_rate,
        max_rate,
        min_rate: (start_rate / 64.0).clamp(0.1, 1.0),
        factor: plan.factor,
        precision: plan.precision,
        max_steps: plan.max_steps,
    };
    let progress = plan.progress && !quiet;
    let wl = Arc::new(rt.block_on(async {
        let (wl, _) = crate::scenario::prepare(
            target,
            scenario.clone(),
            plan.creds.clone(),
            plan.users,
            plan.prep_concurrency,
            !quiet,
        )
        .await?;
        anyhow::Ok(wl)
    })?);

    let mut hists: Vec<(f64, Histogram<u64>)> = Vec::new();
    let mut summaries: Vec<Summary> = Vec::new();
    let outcome = super::search(&search_cfg, |index, rate| {
        if index > 0 && !cooldown.is_zero() {
            std::thread::sleep(cooldown);
        }
        let cfg = LoadConfig {
            mode: Mode::Open { rate },
            duration: step_duration,
            warmup: step_warmup,
            threads: plan.threads,
            max_connections: plan.max_connections,
            timeout: plan.timeout,
            progress,
        };
        let before = rt.block_on(metrics::scrape(target));
        let started = unix_now();
        let result = run_load(&cfg, &wl)?;
        let after = rt.block_on(metrics::scrape(target));
        let server = ServerInfo::from_scrapes(before.as_ref(), after.as_ref(), None);
        let summary = Summary::build(&cfg, &wl, &result, server, started);
        let dir = format!("steps/{:02}-{}rps", index + 1, fmt_rate(rate));
        report::write_run(
            &out.join(&dir),
            &summary,
            &result.recorder.latency,
            Some(criteria.p99_ms),
        )?;
        let (pass, reason) = criteria.judge(
            rate,
            summary.achieved_rate,
            summary.latency_ms.p99,
            summary.error_rate,
        );
        let step = Step {
            index,
            offered_rate: rate,
            achieved_rate: summary.achieved_rate,
            ok_rate: summary.ok_rate,
            p99_ms: summary.latency_ms.p99,
            error_rate: summary.error_rate,
            pass,
            reason,
            dir: Some(dir),
        };
        if !quiet {
            eprintln!("{}", step.line());
        }
        hists.push((rate, result.recorder.latency));
        summaries.push(summary);
        Ok(step)
    })?;

    let (cores_n, cores_source) = match (server_workers, &ceiling) {
        (Some(w), _) => (w, "server hash workers (hellojohn_hash_pool_workers)"),
        (None, Some(c)) => (c.workers, "Argon2 ceiling threads"),
        (None, None) => (cores(), "CPUs of the bench host"),
    };
    let noun = match scenario.only_op() {
        Some(op) => op.noun(),
        None => "requests (mixed)",
    };
    let verdict = super::verdict(
        &outcome,
        &VerdictInput {
            noun,
            argon2_share: share,
            criteria,
            cores: cores_n,
            argon2: argon2.clone(),
            ceiling: ceiling.as_ref(),
            goal: plan.goal,
        },
    );
    let best = outcome.best_step();
    // The top-level summary is the sustained step's (or the lowest step's when none passed).
    let shown = outcome.best.or_else(|| {
        outcome
            .steps
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.offered_rate.total_cmp(&b.1.offered_rate))
            .map(|(i, _)| i)
    });
    if let Some(i) = shown {
        if let (Some(summary), Some((_, hist))) = (summaries.get(i), hists.get(i)) {
            write_file(
                out,
                "summary.json",
                serde_json::to_string_pretty(summary)?.as_bytes(),
            )?;
            write_file(
                out,
                "latency.hgrm",
                crate::hgrm::percentile_distribution(hist, 1e3).as_bytes(),
            )?;
        }
    }
    write_capacity_svg(
        out,
        &scenario.name,
        &target.url,
        &outcome.steps,
        &hists,
        criteria.p99_ms,
    )?;
    let report = CapacityReport {
        target: target.url.clone(),
        scenario: scenario.name.clone(),
        criteria,
        search: search_cfg,
        step_duration_s: step_duration.as_secs_f64(),
        step_warmup_s: step_warmup.as_secs_f64(),
        steps: outcome.steps.clone(),
        sustained_rate: best.map(|s| s.offered_rate),
        sustained_p99_ms: best.map(|s| s.p99_ms),
        sustained_error_rate: best.map(|s| s.error_rate),
        cores: cores_n,
        cores_source: cores_source.to_string(),
        argon2,
        ceiling,
        efficiency: verdict.efficiency,
        goal_rate: plan.goal,
        cores_for_goal: verdict.cores_for_goal,
        server: ServerInfo::from_scrapes(before.as_ref(), None, Some(&health)),
        verdict: verdict.line.clone(),
    };
    write_file(
        out,
        "capacity.json",
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    Ok(report)
}

/// All steps' curves in one plot, with the p99 target.
fn write_capacity_svg(
    out: &Path,
    scenario: &str,
    url: &str,
    steps: &[Step],
    hists: &[(f64, Histogram<u64>)],
    target_ms: f64,
) -> anyhow::Result<()> {
    let mut order: Vec<usize> = (0..hists.len()).collect();
    order.sort_by(|a, b| hists[*a].0.total_cmp(&hists[*b].0));
    let series: Vec<crate::svg::Series<'_>> = order
        .iter()
        .filter_map(|i| {
            let (rate, hist) = hists.get(*i)?;
            let step = steps.get(*i)?;
            Some(crate::svg::Series {
                label: format!(
                    "{}/s: p99 {} {}",
                    fmt_rate(*rate),
                    fmt_ms(step.p99_ms),
                    if step.pass { "pass" } else { "fail" }
                ),
                hist,
            })
        })
        .collect();
    let svg = crate::svg::latency_by_percentile(
        &format!("HelloJohn capacity search: {scenario}"),
        &format!(
            "{} open-loop steps, latency from intended start, p99 target {}; {url}",
            steps.len(),
            fmt_ms(target_ms)
        ),
        &series,
        Some(target_ms),
    );
    write_file(out, "latency.svg", svg.as_bytes())
}
