//! The load generator's pieces without a server: the capacity search and its verdict, the pass
//! criteria, durations and mixes, the HdrHistogram text, the SVG plot, the Prometheus parser and
//! the command line.

use std::time::Duration;

use hellojohn_bench::capacity::{
    search, Criteria, SearchConfig, SearchOutcome, Step, VerdictInput,
};
use hellojohn_bench::scenario::{parse_mix, Op, Scenario};
use hellojohn_bench::stats::new_histogram;
use hellojohn_bench::util::parse_duration;
use hellojohn_bench::{command, hgrm, metrics, svg};

fn step(index: usize, rate: f64, limit: f64) -> Step {
    let pass = rate <= limit;
    Step {
        index,
        offered_rate: rate,
        achieved_rate: rate,
        ok_rate: rate.min(limit),
        p99_ms: if pass { 200.0 } else { 900.0 },
        error_rate: 0.0,
        pass,
        reason: String::new(),
        dir: None,
    }
}

#[test]
fn search_brackets_then_bisects() {
    let cfg = SearchConfig {
        start_rate: 20.0,
        max_rate: 10_000.0,
        min_rate: 1.0,
        factor: 2.0,
        precision: 0.05,
        max_steps: 30,
    };
    let out = search(&cfg, |i, r| Ok(step(i, r, 143.0))).unwrap();
    let best = out.best_step().unwrap().offered_rate;
    assert!((136.0..=143.0).contains(&best), "best {best}");
    let rates: Vec<f64> = out.steps.iter().map(|s| s.offered_rate).collect();
    assert_eq!(&rates[..5], &[20.0, 40.0, 80.0, 160.0, 120.0]);

    // Starting above the limit it shrinks first.
    let out = search(
        &SearchConfig {
            start_rate: 1000.0,
            ..cfg
        },
        |i, r| Ok(step(i, r, 143.0)),
    )
    .unwrap();
    let best = out.best_step().unwrap().offered_rate;
    assert!((136.0..=143.0).contains(&best), "best {best}");

    // Nothing passes: no best, and it stops at the minimum rate.
    let out = search(&cfg, |i, r| Ok(step(i, r, 0.5))).unwrap();
    assert!(out.best.is_none());
    assert!(out.steps.len() <= 6);

    // The cap is respected.
    let out = search(
        &SearchConfig {
            max_rate: 100.0,
            ..cfg
        },
        |i, r| Ok(step(i, r, 1e9)),
    )
    .unwrap();
    assert_eq!(out.best_step().unwrap().offered_rate, 100.0);
}

#[test]
fn verdict_reads_like_the_issue_example() {
    let outcome = SearchOutcome {
        steps: vec![Step {
            p99_ms: 212.0,
            ..step(0, 143.0, 143.0)
        }],
        best: Some(0),
    };
    let ceiling = hellojohn_bench::ceiling::CeilingResult {
        memory_kib: 19456,
        iterations: 2,
        parallelism: 1,
        workers: 2,
        duration_s: 5.0,
        hashes: 1000,
        hashes_per_s: 200.0,
        hashes_per_s_per_worker: 100.0,
        ms_per_hash: 10.0,
    };
    let v = hellojohn_bench::capacity::verdict(
        &outcome,
        &VerdictInput {
            noun: Op::Signin.noun(),
            argon2_share: 1.0,
            criteria: Criteria {
                p99_ms: 500.0,
                max_error_rate: 0.01,
                min_achieved_ratio: 0.9,
            },
            cores: 2,
            argon2: "argon2id m=19456 t=2 p=1".to_string(),
            ceiling: Some(&ceiling),
            goal: 500.0,
        },
    );
    assert!(
        v.line.starts_with(
            "sustains 143 sign-ins/s at p99 212 ms on 2 cores (argon2id m=19456 t=2 p=1); \
             500/s needs about 7 such cores; efficiency 72 %"
        ),
        "{}",
        v.line
    );
    assert_eq!(v.cores_for_goal, Some(7));
    assert!((v.efficiency.unwrap() - 0.715).abs() < 1e-9);
}

#[test]
fn criteria_count_errors_and_shortfall() {
    let c = Criteria {
        p99_ms: 500.0,
        max_error_rate: 0.01,
        min_achieved_ratio: 0.9,
    };
    assert!(c.judge(100.0, 100.0, 499.0, 0.0099).0);
    assert!(!c.judge(100.0, 100.0, 500.0, 0.0).0);
    assert!(!c.judge(100.0, 100.0, 10.0, 0.01).0);
    assert!(!c.judge(100.0, 80.0, 10.0, 0.0).0);
}

#[test]
fn durations_and_mixes_parse() {
    let d = |s| parse_duration(s).unwrap();
    assert_eq!(d("30s"), Duration::from_secs(30));
    assert_eq!(d("500ms"), Duration::from_millis(500));
    assert_eq!(d("1m30s"), Duration::from_secs(90));
    assert_eq!(d("1.5s"), Duration::from_millis(1500));
    assert_eq!(d("2"), Duration::from_secs(2));
    assert_eq!(d("0s"), Duration::ZERO);
    assert!(parse_duration("").is_err());
    assert!(parse_duration("10 parsecs").is_err());
    assert!(parse_duration("5x").is_err());

    let mix = parse_mix("signin=1,refresh=4,userinfo=15").unwrap();
    assert_eq!(
        mix,
        vec![(Op::Signin, 1), (Op::Refresh, 4), (Op::Userinfo, 15)]
    );
    assert!(parse_mix("signin=1,signin=2").is_err());
    assert!(parse_mix("login=1").is_err());
    assert!(parse_mix("signin=0").is_err());

    let s = Scenario::parse("mixed", None).unwrap();
    let schedule = s.schedule();
    assert_eq!(schedule.len(), 20);
    assert_eq!(schedule.iter().filter(|o| **o == Op::Refresh).count(), 4);
    // Interleaved, not in blocks: no more than 3 userinfo in a row at weight 15 of 20.
    let longest = schedule
        .split(|o| *o != Op::Userinfo)
        .map(<[Op]>::len)
        .max()
        .unwrap();
    assert!(longest <= 4, "{schedule:?}");
    assert!((s.argon2_share() - 0.05).abs() < 1e-12);
    assert!(Scenario::parse("signin", Some("signin=1")).is_err());
    assert!(Scenario::parse("bogus", None).is_err());
}

#[test]
fn hgrm_follows_the_hdrhistogram_format() {
    let mut h = new_histogram().unwrap();
    for v in 1..=10_000u64 {
        h.record(v * 100).unwrap(); // 0.1 ms .. 1000 ms
    }
    let text = hgrm::percentile_distribution(&h, 1e3);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "       Value     Percentile TotalCount 1/(1-Percentile)"
    );
    assert_eq!(lines[1], "");
    let first: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(first, ["0.100", "0.000000000000", "1", "1.00"]);
    let last_data = lines.iter().rev().find(|l| !l.starts_with('#')).unwrap();
    let cols: Vec<&str> = last_data.split_whitespace().collect();
    assert_eq!(
        cols.len(),
        3,
        "the 100 % line has no 1/(1-p) column: {last_data}"
    );
    assert_eq!(cols[1], "1.000000000000");
    assert_eq!(cols[2], "10000");
    assert!(text.contains("#[Max     =     1000.447, Total count    =        10000]"));
    assert!(text.contains("SubBuckets     =         2048]"));
}

#[test]
fn svg_plot_is_well_formed() {
    let mut a = new_histogram().unwrap();
    let mut b = new_histogram().unwrap();
    for v in 1..=5000u64 {
        a.record(v * 10).unwrap();
        b.record(v * 40).unwrap();
    }
    let doc = svg::latency_by_percentile(
        "Title <&>",
        "sub",
        &[
            svg::Series {
                label: "100/s".into(),
                hist: &a,
            },
            svg::Series {
                label: "200/s".into(),
                hist: &b,
            },
        ],
        Some(150.0),
    );
    assert!(doc.contains("Title &lt;&amp;&gt;"));
    assert_eq!(doc.matches("<polyline").count(), 2);
    assert!(doc.contains("p99 target 150 ms"));
    // 5000 samples: the axis runs to 99.99 %.
    assert!(doc.contains(">99.99%<"));
    assert!(!doc.contains(">99.999%<"));
    // Balanced tags (every element here is either self-closing or opened and closed once).
    for tag in ["svg", "g", "text", "title"] {
        assert_eq!(
            doc.matches(&format!("<{tag} ")).count() + doc.matches(&format!("<{tag}>")).count(),
            doc.matches(&format!("</{tag}>")).count(),
            "<{tag}> not balanced"
        );
    }
    // An empty run still renders.
    let empty = new_histogram().unwrap();
    let doc = svg::latency_by_percentile(
        "t",
        "s",
        &[svg::Series {
            label: "x".into(),
            hist: &empty,
        }],
        None,
    );
    assert!(doc.ends_with("</svg>\n"));
}

#[test]
fn prometheus_text_parses() {
    let text = "# HELP x y\n# TYPE hellojohn_hash_pool_workers gauge\nhellojohn_hash_pool_workers 4\n\
                hellojohn_http_requests_total{method=\"POST\",path=\"/v2/auth/login\",status=\"200\"} 17 1700000000\n\
                weird{label=\"a b\"} +Inf\nbroken\n";
    let samples = metrics::parse_prometheus(text);
    assert_eq!(samples["hellojohn_hash_pool_workers"], 4.0);
    assert_eq!(
        samples["hellojohn_http_requests_total{method=\"POST\",path=\"/v2/auth/login\",status=\"200\"}"],
        17.0
    );
    assert!(samples["weird{label=\"a b\"}"].is_infinite());
    assert_eq!(samples.len(), 3);
    let snap = metrics::Snapshot { samples };
    assert_eq!(snap.hash_workers(), Some(4));
    assert_eq!(snap.argon2(), None);
}

#[test]
fn command_line_is_consistent() {
    command().debug_assert();
    // --rate and --connections exclude each other, and one is required.
    assert!(command()
        .try_get_matches_from(["bench", "run", "--scenario", "signin", "--out", "x"])
        .is_err());
    assert!(command()
        .try_get_matches_from([
            "bench",
            "run",
            "--scenario",
            "signin",
            "--out",
            "x",
            "--rate",
            "5",
            "--connections",
            "2"
        ])
        .is_err());
    assert!(command()
        .try_get_matches_from([
            "bench",
            "run",
            "--scenario",
            "signin",
            "--out",
            "x",
            "--rate",
            "0"
        ])
        .is_err());
    assert!(command()
        .try_get_matches_from(["bench", "capacity", "--out", "x", "--p99", "250ms"])
        .is_ok());
}
