//! `hj bench` against a small in-process server with known, controllable latency.
//!
//! Timing tests take a shared lock so they do not compete for the CPUs with each other, and
//! assert with wide margins: they must hold on a loaded two-core machine.

mod support;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hellojohn_bench::ceiling::{measure, CeilingConfig};
use hellojohn_bench::report::Summary;
use hellojohn_bench::scenario::Op;
use hellojohn_bench::stats::{merge, new_histogram, Outcome, Recorder};
use hellojohn_bench::{command, main};
use support::{Behavior, TestServer};

/// Held by tests whose assertions depend on timing.
static TIMING: Mutex<()> = Mutex::new(());

fn timing() -> std::sync::MutexGuard<'static, ()> {
    TIMING.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh output folder, removed when the test passes (kept for a look when it fails).
struct OutDir(PathBuf);

impl std::ops::Deref for OutDir {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn out_dir(name: &str) -> OutDir {
    let dir = std::env::temp_dir().join(format!("hj-bench-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    OutDir(dir)
}

/// `hj bench <args>` in-process.
fn bench(args: &[&str]) -> ExitCode {
    let mut argv = vec!["bench"];
    argv.extend_from_slice(args);
    let matches = command()
        .try_get_matches_from(argv)
        .unwrap_or_else(|e| panic!("bad arguments: {e}"));
    main(&matches)
}

fn summary(dir: &Path) -> Summary {
    let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn open_loop_keeps_its_rate() {
    let _t = timing();
    let server = TestServer::start(Behavior::Fast);
    let out = out_dir("rate");
    let url = server.url();
    let code = bench(&[
        "run",
        "--target",
        &url,
        "--scenario",
        "signin",
        "--rate",
        "200",
        "--duration",
        "2s",
        "--warmup",
        "0s",
        "--users",
        "10",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(code, ExitCode::SUCCESS);
    // One sign-in of the preparation checks the seed; the rest is the schedule.
    let sent = server.hits("/v2/auth/login") - 1;
    assert!(
        (380..=420).contains(&sent),
        "sent {sent}, expected 400 ± 5 %"
    );
    let s = summary(&out);
    assert_eq!(
        s.requests, 400,
        "the schedule has exactly rate x duration requests"
    );
    assert_eq!(s.errors.total, 0);
    assert_eq!(s.mode, "open");
    assert_eq!(s.offered_rate, Some(200.0));
    assert!(
        (180.0..=220.0).contains(&s.achieved_rate),
        "achieved {}",
        s.achieved_rate
    );
    assert_eq!(s.status_counts.get("200"), Some(&400));
    assert_eq!(s.server.as_ref().and_then(|i| i.hash_workers), Some(2));
}

#[test]
fn open_loop_latency_includes_queueing_delay() {
    let _t = timing();
    let stall = Behavior::Stall {
        after: Duration::from_millis(1000),
        length: Duration::from_millis(500),
    };

    // Open loop: arrivals keep coming during the stall; the ones that arrive early in it wait
    // up to 500 ms, and 1 % of the run (3 requests) is well inside that.
    let server = TestServer::start(stall);
    let open = out_dir("stall-open");
    let url = server.url();
    let code = bench(&[
        "run",
        "--target",
        &url,
        "--scenario",
        "userinfo",
        "--rate",
        "100",
        "--duration",
        "3s",
        "--warmup",
        "0s",
        "--users",
        "4",
        "--out",
        open.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(code, ExitCode::SUCCESS);
    let open = summary(&open);
    assert_eq!(open.errors.total, 0);
    assert_eq!(open.requests, 300);
    assert!(
        open.latency_ms.p99 >= 350.0,
        "open-loop p99 {} ms should show the 500 ms stall",
        open.latency_ms.p99
    );
    assert!(open.latency_ms.max >= 400.0, "max {}", open.latency_ms.max);
    // Most requests were fast all the same.
    assert!(open.latency_ms.p50 < 100.0, "p50 {}", open.latency_ms.p50);
    drop(server);

    // Closed loop: the two connections simply wait out the stall, so only two slow requests
    // are recorded among thousands: the p99 hides it.
    let server = TestServer::start(stall);
    let closed = out_dir("stall-closed");
    let url = server.url();
    let code = bench(&[
        "run",
        "--target",
        &url,
        "--scenario",
        "userinfo",
        "--connections",
        "2",
        "--duration",
        "3s",
        "--warmup",
        "0s",
        "--users",
        "4",
        "--out",
        closed.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(code, ExitCode::SUCCESS);
    let closed = summary(&closed);
    assert_eq!(closed.mode, "closed");
    assert!(
        closed.latency_ms.max >= 400.0,
        "closed max {}",
        closed.latency_ms.max
    );
    assert!(
        closed.latency_ms.p99 < 100.0 && closed.latency_ms.p99 < open.latency_ms.p99 / 3.0,
        "closed-loop p99 {} ms vs open-loop {} ms",
        closed.latency_ms.p99,
        open.latency_ms.p99
    );
}

#[test]
fn histograms_merge_exactly() {
    let mut parts = Vec::new();
    for w in 0..3u64 {
        let mut h = new_histogram().unwrap();
        for v in 1..=1000u64 {
            h.record(v * (w + 1)).unwrap();
        }
        parts.push(h);
    }
    let merged = merge(&parts).unwrap();
    assert_eq!(merged.len(), 3000);
    assert_eq!(merged.max(), merged.highest_equivalent(3000));
    assert_eq!(merged.min(), 1);

    let mut a = Recorder::new().unwrap();
    let mut b = Recorder::new().unwrap();
    let ms = Duration::from_millis;
    a.record(Op::Signin, Outcome::Status(200), ms(5), Some(ms(4)));
    a.record(Op::Signin, Outcome::Status(503), ms(1), Some(ms(1)));
    b.record(Op::Signin, Outcome::Status(200), ms(900), Some(ms(2)));
    b.record(Op::Refresh, Outcome::Timeout, ms(10_000), None);
    b.record(Op::Refresh, Outcome::Connect, ms(1), None);
    let r = Recorder::merged([&a, &b]).unwrap();
    assert_eq!(r.requests(), 5);
    assert_eq!(r.ok(), 2);
    assert_eq!(r.errors(), 3);
    assert_eq!(r.status.get(&200), Some(&2));
    assert_eq!(r.status.get(&503), Some(&1));
    assert_eq!((r.timeouts, r.connect_errors), (1, 1));
    // Answers and timeouts are in the latency histogram, connection failures are not.
    assert_eq!(r.latency.len(), 4);
    assert_eq!(r.latency.max(), r.latency.highest_equivalent(10_000_000));
    assert_eq!(r.service.len(), 3);
    assert_eq!(r.ops[&Op::Signin].requests, 3);
    assert_eq!(r.ops[&Op::Refresh].errors, 2);
}

#[test]
fn closed_loop_workers_merge_to_what_the_server_saw() {
    let _t = timing();
    let server = TestServer::start(Behavior::Fast);
    let out = out_dir("closed-merge");
    let url = server.url();
    let code = bench(&[
        "run",
        "--target",
        &url,
        "--scenario",
        "userinfo",
        "--connections",
        "4",
        "--threads",
        "2",
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--users",
        "4",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(code, ExitCode::SUCCESS);
    let s = summary(&out);
    assert_eq!(s.threads, 2);
    assert!(s.requests > 100, "only {} requests", s.requests);
    // Every request of both workers is in the merged result, exactly once.
    assert_eq!(s.requests, server.hits("/userinfo"));
    assert_eq!(s.status_counts.values().sum::<u64>(), s.requests);
    let hgrm = std::fs::read_to_string(out.join("latency.hgrm")).unwrap();
    let total_line = hgrm.lines().find(|l| l.starts_with("#[Max")).unwrap();
    assert!(
        total_line.ends_with(&format!("Total count    = {:>12}]", s.requests)),
        "{total_line}"
    );
}

#[test]
fn capacity_search_finds_a_known_limit() {
    let _t = timing();
    let started = Instant::now();
    let server = TestServer::start(Behavior::Limit {
        rate: 200.0,
        burst: Duration::from_millis(100),
    });
    let out = out_dir("capacity");
    let url = server.url();
    let code = bench(&[
        "capacity",
        "--target",
        &url,
        "--scenario",
        "signin",
        "--p99",
        "500ms",
        "--out",
        out.to_str().unwrap(),
        "--start-rate",
        "50",
        "--step-duration",
        "1s",
        "--step-warmup",
        "300ms",
        "--cooldown",
        "0s",
        "--precision",
        "0.1",
        "--max-steps",
        "10",
        "--timeout",
        "2s",
        "--no-ceiling",
        "--users",
        "5",
        "--quiet",
    ]);
    assert_eq!(code, ExitCode::SUCCESS);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("capacity.json")).unwrap()).unwrap();
    let found = report["sustained_rate"].as_f64().unwrap();
    assert!(
        (160.0..=240.0).contains(&found),
        "found {found}/s, the server admits 200/s; steps: {:#}",
        report["steps"]
    );
    assert!(report["steps"].as_array().unwrap().len() >= 4);
    assert!(report["verdict"].as_str().unwrap().starts_with("sustains "));
    // Hash workers come from the server's /metrics.
    assert_eq!(report["cores"], 2);
    for name in ["summary.json", "latency.hgrm", "latency.svg"] {
        assert!(out.join(name).is_file(), "{name} missing");
    }
    assert!(out.join("steps").read_dir().unwrap().count() >= 4);
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn mixed_run_writes_summary_hgrm_and_svg() {
    let _t = timing();
    let server = TestServer::start(Behavior::Fast);
    let out = out_dir("mixed");
    let url = server.url();
    let code = bench(&[
        "run",
        "--target",
        &url,
        "--scenario",
        "mixed",
        "--mix",
        "signin=1,register=1,refresh=4,userinfo=2,session=2",
        "--rate",
        "300",
        "--duration",
        "1s",
        "--warmup",
        "200ms",
        "--users",
        "6",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(code, ExitCode::SUCCESS);
    let s = summary(&out);
    assert_eq!(s.requests, 300);
    assert_eq!(s.errors.total, 0, "{:?}", s.status_counts);
    let names: Vec<&str> = s.ops.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["register", "session", "signin", "refresh", "userinfo"]
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    assert_eq!(s.ops["refresh"].requests, 120);
    // Every virtual user chained its own refresh tokens: none was ever used twice.
    assert_eq!(server.refresh_reuse(), 0);
    assert!(server.hits("/v2/session/login") >= 6);

    let hgrm = std::fs::read_to_string(out.join("latency.hgrm")).unwrap();
    assert!(hgrm.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
    assert!(hgrm.contains("#[Mean    = "));
    assert!(hgrm.contains("#[Buckets = "));
    let svg = std::fs::read_to_string(out.join("latency.svg")).unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    for text in ["Percentile", "Latency (ms)", "99%", "<polyline", "mixed"] {
        assert!(svg.contains(text), "svg lacks {text}");
    }
}

#[test]
fn refresh_chains_survive_a_long_run() {
    let _t = timing();
    let server = TestServer::start(Behavior::Fast);
    let out = out_dir("refresh");
    let url = server.url();
    let code = bench(&[
        "run",
        "--target",
        &url,
        "--scenario",
        "refresh",
        "--connections",
        "8",
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--users",
        "4",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(code, ExitCode::SUCCESS);
    let s = summary(&out);
    assert!(s.requests > 50);
    assert_eq!(s.errors.total, 0);
    assert_eq!(server.refresh_reuse(), 0);
    assert_eq!(s.refresh_recoveries, 0);
}

#[test]
fn seed_resumes_and_run_reuses_the_seed_file() {
    let _t = timing();
    let server = TestServer::start_with(Behavior::Fast, 4, "acme");
    let out = out_dir("seed");
    let seed_file = out.join("seed.json");
    let url = server.url();
    let code = bench(&[
        "seed",
        "--target",
        &url,
        "--users",
        "10",
        "--tenant",
        "acme",
        "--seed-file",
        seed_file.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(code, ExitCode::SUCCESS);
    let seed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&seed_file).unwrap()).unwrap();
    assert_eq!(seed["users"], 10);
    assert_eq!(seed["created"], 6);
    assert_eq!(seed["existing"], 4);
    assert_eq!(seed["tenant_id"], "acme");
    assert_eq!(server.hits("/v2/auth/register"), 10);

    // `run` takes the tenant (only "acme" signs in here) and the users from the seed file.
    let run_out = out.join("run");
    let code = bench(&[
        "run",
        "--target",
        &url,
        "--scenario",
        "signin",
        "--rate",
        "50",
        "--duration",
        "500ms",
        "--warmup",
        "0s",
        "--seed-file",
        seed_file.to_str().unwrap(),
        "--out",
        run_out.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(code, ExitCode::SUCCESS);
    let s = summary(&run_out);
    assert_eq!(s.users, 10);
    assert_eq!(s.errors.total, 0);
}

#[test]
fn run_fails_clearly_without_seeded_users() {
    let server = TestServer::start_with(Behavior::Fast, 0, "somewhere-else");
    let out = out_dir("unseeded");
    let url = server.url();
    let code = bench(&[
        "run",
        "--target",
        &url,
        "--scenario",
        "signin",
        "--rate",
        "10",
        "--duration",
        "1s",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(code, ExitCode::FAILURE);
    assert!(!out.join("summary.json").exists());
}

#[test]
fn ceiling_hashes_with_the_argon2_crate() {
    let r = measure(&CeilingConfig {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
        workers: 2,
        duration: Duration::from_millis(200),
    })
    .unwrap();
    assert_eq!(r.workers, 2);
    assert!(r.hashes >= 2);
    assert!(r.hashes_per_s > 0.0 && r.ms_per_hash > 0.0);
    assert!(r.line().contains("argon2id m=64 t=1 p=1"));
    assert!(measure(&CeilingConfig {
        memory_kib: 0,
        iterations: 0,
        parallelism: 0,
        workers: 1,
        duration: Duration::ZERO,
    })
    .is_err());
}
