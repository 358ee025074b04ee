//! The `bench` command line: argument definitions and the four commands.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::parser::ValueSource;
use clap::{value_parser, Arg, ArgAction, ArgGroup, ArgMatches, Command};

use crate::capacity::run::{self as survey, CapacityPlan};
use crate::capacity::Criteria;
use crate::ceiling::{self, CeilingConfig};
use crate::load::{run_load, LoadConfig, Mode};
use crate::metrics::{self, ServerInfo};
use crate::report::{self, Summary};
use crate::scenario::{Credentials, Scenario, DEFAULT_PASSWORD};
use crate::seed::{seed_users, SeedFile, DEFAULT_SEED_FILE};
use crate::target::Target;
use crate::util::{cores, fmt_rate, parse_duration, parse_positive, unix_now};

const SCENARIOS: [&str; 7] = [
    "signin", "register", "refresh", "userinfo", "session", "me", "mixed",
];
const DEFAULT_TARGET: &str = "http://127.0.0.1:8080";

/// The `bench` subcommand and its `seed`, `run`, `capacity` and `ceiling` subcommands.
pub fn command() -> Command {
    Command::new("bench")
        .about("Load suite: seed users, run scenarios, search capacity, measure the Argon2 ceiling")
        .long_about(
            "Load suite for a running HelloJohn server. Start the server with \
             HELLOJOHN_RATE_LIMIT_ENABLED=false, then `hj bench seed`, `hj bench run` and \
             `hj bench capacity`. See docs/bench.md.",
        )
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(seed_command())
        .subcommand(run_command())
        .subcommand(capacity_command())
        .subcommand(ceiling_command())
}

fn target_arg() -> Arg {
    Arg::new("target")
        .long("target")
        .value_name("URL")
        .default_value(DEFAULT_TARGET)
        .help("The server, http://host:port (one instance, plain HTTP)")
}

fn credential_args() -> [Arg; 4] {
    [
        Arg::new("tenant")
            .long("tenant")
            .value_name("SLUG")
            .default_value("local")
            .help("Tenant slug or id (run/capacity: the seed file's unless given)"),
        Arg::new("client-id")
            .long("client-id")
            .value_name("ID")
            .default_value("local-app")
            .help("Client id (run/capacity: the seed file's unless given)"),
        Arg::new("password")
            .long("password")
            .value_name("P")
            .default_value(DEFAULT_PASSWORD)
            .help("Password of the bench users (run/capacity: the seed file's unless given)"),
        Arg::new("seed-file")
            .long("seed-file")
            .value_name("PATH")
            .value_parser(value_parser!(PathBuf))
            .default_value(DEFAULT_SEED_FILE)
            .help("Seed file written by `seed`, read by `run` and `capacity`"),
    ]
}

fn duration_arg(name: &'static str, default: &'static str, help: &'static str) -> Arg {
    Arg::new(name)
        .long(name)
        .value_name("DURATION")
        .value_parser(parse_duration)
        .default_value(default)
        .help(help)
}

fn quiet_arg() -> Arg {
    Arg::new("quiet")
        .long("quiet")
        .short('q')
        .action(ArgAction::SetTrue)
        .help("No progress lines on stderr")
}

/// Arguments shared by `run` and `capacity`.
fn load_args() -> Vec<Arg> {
    vec![
        Arg::new("users")
            .long("users")
            .value_name("N")
            .value_parser(value_parser!(usize))
            .help("Seeded users to use (default: the seed file's, at most 1000; else 100)"),
        Arg::new("mix")
            .long("mix")
            .value_name("OP=W,...")
            .help("Weights of --scenario mixed [default: signin=1,refresh=4,userinfo=15]"),
        Arg::new("threads")
            .long("threads")
            .value_name("N")
            .value_parser(value_parser!(usize))
            .help("Load worker threads, each with its own runtime [default: CPUs]"),
        Arg::new("max-connections")
            .long("max-connections")
            .value_name("N")
            .value_parser(value_parser!(usize))
            .default_value("1000")
            .help("Open loop: most connections opened to keep up the rate"),
        Arg::new("prep-concurrency")
            .long("prep-concurrency")
            .value_name("N")
            .value_parser(value_parser!(usize))
            .default_value("8")
            .help("Preparation sign-ins in flight"),
    ]
}

fn seed_command() -> Command {
    Command::new("seed")
        .about("Register bench-<i>@bench.hellojohn.test users through the API (resumable)")
        .arg(target_arg())
        .arg(
            Arg::new("users")
                .long("users")
                .value_name("N")
                .value_parser(value_parser!(usize))
                .required(true)
                .help("Users to have: bench-0 .. bench-<N-1>"),
        )
        .args(credential_args())
        .arg(
            Arg::new("concurrency")
                .long("concurrency")
                .value_name("N")
                .value_parser(value_parser!(usize))
                .default_value("8")
                .help("Registrations in flight"),
        )
        .arg(quiet_arg())
}

fn run_command() -> Command {
    Command::new("run")
        .about("Offer one scenario, open loop (--rate) or closed loop (--connections)")
        .arg(target_arg())
        .arg(
            Arg::new("scenario")
                .long("scenario")
                .value_parser(SCENARIOS)
                .required(true)
                .help("What each request does"),
        )
        .arg(
            Arg::new("rate")
                .long("rate")
                .value_name("N")
                .value_parser(parse_positive)
                .help("Open loop: requests per second, latency from each intended start"),
        )
        .arg(
            Arg::new("connections")
                .long("connections")
                .value_name("C")
                .value_parser(value_parser!(usize))
                .help("Closed loop: C connections sending back to back"),
        )
        .group(
            ArgGroup::new("load")
                .args(["rate", "connections"])
                .required(true),
        )
        .arg(duration_arg("duration", "30s", "Measured phase"))
        .arg(duration_arg(
            "warmup",
            "5s",
            "Load before the measured phase, left out",
        ))
        .arg(duration_arg(
            "timeout",
            "10s",
            "A request unanswered this long after its intended start is a timeout",
        ))
        .arg(
            Arg::new("out")
                .long("out")
                .value_name("DIR")
                .value_parser(value_parser!(PathBuf))
                .required(true)
                .help("Gets summary.json, latency.hgrm and latency.svg"),
        )
        .args(credential_args())
        .args(load_args())
        .arg(quiet_arg())
}

fn argon2_args() -> [Arg; 4] {
    [
        Arg::new("memory-kib")
            .long("memory-kib")
            .value_name("KIB")
            .value_parser(value_parser!(u32))
            .default_value("19456")
            .help("Argon2 memory (the server's HELLOJOHN_ARGON2_MEMORY_KIB)"),
        Arg::new("iterations")
            .long("iterations")
            .value_name("T")
            .value_parser(value_parser!(u32))
            .default_value("2")
            .help("Argon2 iterations (HELLOJOHN_ARGON2_ITERATIONS)"),
        Arg::new("parallelism")
            .long("parallelism")
            .value_name("P")
            .value_parser(value_parser!(u32))
            .default_value("1")
            .help("Argon2 lanes (HELLOJOHN_ARGON2_PARALLELISM)"),
        Arg::new("workers")
            .long("workers")
            .value_name("N")
            .value_parser(value_parser!(usize))
            .help("Hashing threads [default: the server's hellojohn_hash_pool_workers, else CPUs]"),
    ]
}

fn capacity_command() -> Command {
    Command::new("capacity")
        .about("Find the highest rate with p99 under target and errors under 1 %")
        .arg(target_arg())
        .arg(
            Arg::new("scenario")
                .long("scenario")
                .value_parser(SCENARIOS)
                .default_value("signin")
                .help("What each request does"),
        )
        .arg(duration_arg("p99", "500ms", "p99 target"))
        .arg(
            Arg::new("out")
                .long("out")
                .value_name("DIR")
                .value_parser(value_parser!(PathBuf))
                .required(true)
                .help("Gets capacity.json, steps/, and the best step's summary.json, latency.hgrm, latency.svg"),
        )
        .arg(
            Arg::new("start-rate")
                .long("start-rate")
                .value_name("R")
                .value_parser(parse_positive)
                .help("First rate [default: a quarter of the Argon2 ceiling, else 50 or 500]"),
        )
        .arg(
            Arg::new("max-rate")
                .long("max-rate")
                .value_name("R")
                .value_parser(parse_positive)
                .help("Highest rate tried [default: 3x the Argon2 ceiling, else 1000000]"),
        )
        .arg(duration_arg("step-duration", "10s", "Measured phase of each step"))
        .arg(duration_arg("step-warmup", "2s", "Warm-up of each step"))
        .arg(duration_arg("cooldown", "1s", "Pause between steps"))
        .arg(
            Arg::new("timeout")
                .long("timeout")
                .value_name("DURATION")
                .value_parser(parse_duration)
                .help("Request timeout from the intended start [default: 4x p99, at least 2s]"),
        )
        .arg(
            Arg::new("factor")
                .long("factor")
                .value_name("F")
                .value_parser(parse_positive)
                .default_value("2")
                .help("Rate growth per step before the first failure"),
        )
        .arg(
            Arg::new("precision")
                .long("precision")
                .value_name("SHARE")
                .value_parser(parse_positive)
                .default_value("0.05")
                .help("Stop bisecting when the bracket is this share of the rate"),
        )
        .arg(
            Arg::new("max-steps")
                .long("max-steps")
                .value_name("N")
                .value_parser(value_parser!(usize))
                .default_value("16")
                .help("Most steps"),
        )
        .arg(
            Arg::new("max-error-rate")
                .long("max-error-rate")
                .value_name("SHARE")
                .value_parser(parse_positive)
                .default_value("0.01")
                .help("Errors must stay below this share"),
        )
        .arg(
            Arg::new("goal")
                .long("goal")
                .value_name("R")
                .value_parser(parse_positive)
                .default_value("500")
                .help("The rate to size cores for in the verdict"),
        )
        .args(argon2_args())
        .arg(duration_arg(
            "ceiling-duration",
            "5s",
            "How long the Argon2 ceiling is measured",
        ))
        .arg(
            Arg::new("no-ceiling")
                .long("no-ceiling")
                .action(ArgAction::SetTrue)
                .help("Skip the Argon2 ceiling"),
        )
        .arg(
            Arg::new("progress")
                .long("progress")
                .action(ArgAction::SetTrue)
                .help("Per-second progress lines within each step"),
        )
        .args(credential_args())
        .args(load_args())
        .arg(quiet_arg())
}

fn ceiling_command() -> Command {
    Command::new("ceiling")
        .about("Measure this host's raw Argon2id rate (N threads hashing back to back)")
        .args(argon2_args())
        .arg(duration_arg("duration", "5s", "How long to hash"))
        .arg(
            Arg::new("target")
                .long("target")
                .value_name("URL")
                .help("Read the worker count from this server's /metrics"),
        )
        .arg(
            Arg::new("json")
                .long("json")
                .action(ArgAction::SetTrue)
                .help("Print the result as JSON"),
        )
}

/// Runs `hj bench ...` with the matches of [`command`].
pub fn main(matches: &ArgMatches) -> ExitCode {
    let result = match matches.subcommand() {
        Some(("seed", m)) => seed_main(m),
        Some(("run", m)) => run_main(m),
        Some(("capacity", m)) => capacity_main(m),
        Some(("ceiling", m)) => ceiling_main(m),
        _ => Err(anyhow!(
            "missing subcommand: seed, run, capacity or ceiling"
        )),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hj bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a runtime")
}

fn string(m: &ArgMatches, name: &str) -> anyhow::Result<String> {
    m.get_one::<String>(name)
        .cloned()
        .ok_or_else(|| anyhow!("--{name} is missing"))
}

fn get<T: Clone + Send + Sync + 'static>(m: &ArgMatches, name: &str) -> anyhow::Result<T> {
    m.get_one::<T>(name)
        .cloned()
        .ok_or_else(|| anyhow!("--{name} is missing"))
}

fn given(m: &ArgMatches, name: &str) -> bool {
    m.value_source(name) == Some(ValueSource::CommandLine)
}

fn target(m: &ArgMatches) -> anyhow::Result<Arc<Target>> {
    Ok(Arc::new(Target::parse(&string(m, "target")?)?))
}

fn seed_main(m: &ArgMatches) -> anyhow::Result<ExitCode> {
    let target = target(m)?;
    let users: usize = get(m, "users")?;
    let creds = Credentials {
        tenant_id: string(m, "tenant")?,
        client_id: string(m, "client-id")?,
        password: string(m, "password")?,
    };
    let path: PathBuf = get(m, "seed-file")?;
    let quiet = m.get_flag("quiet");
    let rt = runtime()?;
    let outcome = rt.block_on(async {
        metrics::health(&target)
            .await
            .map_err(|e| anyhow!("cannot reach the server: {e}"))?;
        seed_users(
            target.clone(),
            &creds,
            users,
            get(m, "concurrency")?,
            !quiet,
        )
        .await
    })?;
    let file = SeedFile {
        target: target.url.clone(),
        tenant_id: creds.tenant_id,
        client_id: creds.client_id,
        password: creds.password,
        users,
        email_pattern: "bench-{i}@bench.hellojohn.test".to_string(),
        created: outcome.created,
        existing: outcome.existing,
        seeded_at_unix: unix_now(),
    };
    file.save(&path)?;
    println!(
        "seeded {users} users on {} (tenant {}, client {}): {} registered, {} already there; seed file {}",
        target.url,
        file.tenant_id,
        file.client_id,
        outcome.created,
        outcome.existing,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Credentials and user count for `run` / `capacity`: the seed file's, with flags on top.
fn credentials(m: &ArgMatches, target: &Target) -> anyhow::Result<(Credentials, usize)> {
    let path: PathBuf = get(m, "seed-file")?;
    let seed = if path.exists() {
        Some(SeedFile::load(&path)?)
    } else if given(m, "seed-file") {
        bail!("no seed file at {}", path.display());
    } else {
        None
    };
    let pick = |name: &str, from_seed: Option<&String>| -> anyhow::Result<String> {
        match from_seed {
            Some(v) if !given(m, name) => Ok(v.clone()),
            _ => string(m, name),
        }
    };
    let creds = Credentials {
        tenant_id: pick("tenant", seed.as_ref().map(|s| &s.tenant_id))?,
        client_id: pick("client-id", seed.as_ref().map(|s| &s.client_id))?,
        password: pick("password", seed.as_ref().map(|s| &s.password))?,
    };
    let users = match (m.get_one::<usize>("users"), &seed) {
        (Some(n), Some(s)) => {
            if *n > s.users {
                eprintln!(
                    "hj bench: warning: --users {n} but the seed file has {} users",
                    s.users
                );
            }
            *n
        }
        (Some(n), None) => *n,
        (None, Some(s)) => s.users.min(1000),
        (None, None) => 100,
    };
    if let Some(s) = &seed {
        if s.target != target.url {
            eprintln!(
                "hj bench: warning: {} was seeded against {}, not {}",
                path.display(),
                s.target,
                target.url
            );
        }
    }
    Ok((creds, users))
}

fn scenario(m: &ArgMatches) -> anyhow::Result<Scenario> {
    let name = string(m, "scenario")?;
    Scenario::parse(&name, m.get_one::<String>("mix").map(String::as_str)).map_err(|e| anyhow!(e))
}

fn run_main(m: &ArgMatches) -> anyhow::Result<ExitCode> {
    let target = target(m)?;
    let scenario = scenario(m)?;
    let (creds, users) = credentials(m, &target)?;
    let quiet = m.get_flag("quiet");
    let mode = match (m.get_one::<f64>("rate"), m.get_one::<usize>("connections")) {
        (Some(rate), _) => Mode::Open { rate: *rate },
        (None, Some(c)) => Mode::Closed { connections: *c },
        (None, None) => bail!("give --rate N (open loop) or --connections C (closed loop)"),
    };
    let cfg = LoadConfig {
        mode,
        duration: get(m, "duration")?,
        warmup: get(m, "warmup")?,
        threads: m.get_one::<usize>("threads").copied().unwrap_or_else(cores),
        max_connections: get(m, "max-connections")?,
        timeout: get(m, "timeout")?,
        progress: !quiet,
    };
    if cfg.duration.is_zero() {
        bail!("--duration must be more than 0");
    }
    let out: PathBuf = get(m, "out")?;
    let rt = runtime()?;
    let (wl, health, before) = rt.block_on(async {
        let (wl, health) = crate::scenario::prepare(
            &target,
            scenario,
            creds,
            users,
            get(m, "prep-concurrency")?,
            !quiet,
        )
        .await?;
        let before = metrics::scrape(&target).await;
        anyhow::Ok((wl, health, before))
    })?;
    let wl = Arc::new(wl);
    if !quiet {
        eprintln!(
            "hj bench: {} against {} for {:?} after {:?} of warm-up",
            describe(&cfg.mode, &wl.scenario.name),
            target.url,
            cfg.duration,
            cfg.warmup
        );
    }
    let started = unix_now();
    let result = run_load(&cfg, &wl)?;
    let after = rt.block_on(metrics::scrape(&target));
    let server = ServerInfo::from_scrapes(before.as_ref(), after.as_ref(), health.as_ref());
    let summary = Summary::build(&cfg, &wl, &result, server, started);
    report::write_run(&out, &summary, &result.recorder.latency, None)?;
    println!("{}", summary.paragraph(&out));
    Ok(ExitCode::SUCCESS)
}

fn describe(mode: &Mode, scenario: &str) -> String {
    match mode {
        Mode::Open { rate } => format!("{scenario}, open loop at {} req/s", fmt_rate(*rate)),
        Mode::Closed { connections } => {
            format!("{scenario}, closed loop with {connections} connections")
        }
    }
}

/// Argon2 parameters: flags when given, else the server's gauges, else the flag defaults.
fn argon2_params(
    m: &ArgMatches,
    server: Option<&metrics::Snapshot>,
) -> anyhow::Result<(u32, u32, u32)> {
    let flags = (
        get::<u32>(m, "memory-kib")?,
        get::<u32>(m, "iterations")?,
        get::<u32>(m, "parallelism")?,
    );
    let any_given = ["memory-kib", "iterations", "parallelism"]
        .iter()
        .any(|n| given(m, n));
    Ok(match server.and_then(metrics::Snapshot::argon2) {
        Some(p) if !any_given => p,
        _ => flags,
    })
}

fn ceiling_main(m: &ArgMatches) -> anyhow::Result<ExitCode> {
    let server = match m.get_one::<String>("target") {
        Some(url) => {
            let target = Arc::new(Target::parse(url)?);
            runtime()?.block_on(metrics::scrape(&target))
        }
        None => None,
    };
    let (memory_kib, iterations, parallelism) = argon2_params(m, server.as_ref())?;
    let workers = m
        .get_one::<usize>("workers")
        .copied()
        .or_else(|| server.as_ref().and_then(metrics::Snapshot::hash_workers))
        .unwrap_or_else(cores);
    let result = ceiling::measure(&CeilingConfig {
        memory_kib,
        iterations,
        parallelism,
        workers,
        duration: get(m, "duration")?,
    })?;
    if m.get_flag("json") {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!("{}", result.line());
    }
    Ok(ExitCode::SUCCESS)
}

fn capacity_main(m: &ArgMatches) -> anyhow::Result<ExitCode> {
    let target = target(m)?;
    let scenario = scenario(m)?;
    let (creds, users) = credentials(m, &target)?;
    let p99: Duration = get(m, "p99")?;
    let step_duration: Duration = get(m, "step-duration")?;
    if step_duration.is_zero() {
        bail!("--step-duration must be more than 0");
    }
    let rt = runtime()?;
    let (health, before) = rt.block_on(async {
        let health = metrics::health(&target)
            .await
            .map_err(|e| anyhow!("cannot reach the server: {e}"))?;
        anyhow::Ok((health, metrics::scrape(&target).await))
    })?;
    let plan = CapacityPlan {
        argon2: argon2_params(m, before.as_ref())?,
        target,
        scenario,
        creds,
        users,
        prep_concurrency: get(m, "prep-concurrency")?,
        quiet: m.get_flag("quiet"),
        progress: m.get_flag("progress"),
        out: get(m, "out")?,
        criteria: Criteria {
            p99_ms: crate::util::ms(p99),
            max_error_rate: get(m, "max-error-rate")?,
            min_achieved_ratio: 0.9,
        },
        step_duration,
        step_warmup: get(m, "step-warmup")?,
        cooldown: get(m, "cooldown")?,
        timeout: m
            .get_one::<Duration>("timeout")
            .copied()
            .unwrap_or_else(|| (p99 * 4).max(Duration::from_secs(2))),
        ceiling_workers: m.get_one::<usize>("workers").copied(),
        measure_ceiling: !m.get_flag("no-ceiling"),
        ceiling_duration: get(m, "ceiling-duration")?,
        start_rate: m.get_one::<f64>("start-rate").copied(),
        max_rate: m.get_one::<f64>("max-rate").copied(),
        factor: get(m, "factor")?,
        precision: get(m, "precision")?,
        max_steps: get(m, "max-steps")?,
        threads: m.get_one::<usize>("threads").copied().unwrap_or_else(cores),
        max_connections: get(m, "max-connections")?,
        goal: get(m, "goal")?,
    };
    let report = survey::run(&rt, &plan, health, before)?;
    println!("{}", report.verdict);
    Ok(if report.sustained_rate.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
