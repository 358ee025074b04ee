//! Settings: every key of [`SETTINGS`] with random and nearly valid values, through the map
//! [`Source`], and the Go durations and rates they are written in.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::{cases, pieces};
use crate::config::{parse_duration, Config, SETTINGS};

const UNITS: &[&str] = &["ns", "us", "µs", "μs", "ms", "s", "m", "h"];

fn duration_text() -> impl Strategy<Value = String> {
    prop_oneof![
        pieces(
            &[
                "0",
                "1",
                "1.5",
                ".",
                "..",
                "30",
                "999999999999999999999",
                "-",
                "+",
                "e9"
            ],
            8
        )
        .prop_flat_map(|n| prop::sample::select(UNITS).prop_map(move |u| format!("{n}{u}"))),
        prop::collection::vec(
            ("[0-9]{1,6}(\\.[0-9]{0,3})?", prop::sample::select(UNITS)),
            1..4
        )
        .prop_map(|parts| parts.into_iter().map(|(n, u)| format!("{n}{u}")).collect()),
        pieces(&["1", "h", "m", "s", "ms", "µ", "0", " ", "x", "."], 8),
    ]
}

/// A value for any setting: nearly valid forms of every kind of setting, and anything.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        duration_text(),
        duration_text().prop_map(|d| format!("20/{d}")),
        pieces(
            &["20", "/", "1m", "m", "0", "4294967296", " ", "-1", "h"],
            6
        ),
        "[0-9]{1,22}",
        pieces(
            &[
                "10.0.0.0/8",
                ",",
                " ",
                "::1",
                "/129",
                "/33",
                "1.2.3.4",
                "fe80::/10",
                "x"
            ],
            6
        ),
        pieces(
            &[
                "postgres://",
                "postgresql://",
                "redis://",
                "redis+cluster://",
                "http://",
                "https://",
                "u:p@h/db",
                "?sslmode=",
                ":"
            ],
            5
        ),
        pieces(
            &[
                "info",
                "warn",
                "debug",
                "trace",
                ",",
                "=",
                "hellojohn",
                "[",
                "]",
                "{",
                "}",
                "/",
                "\\",
                "*",
                "(",
                ")"
            ],
            12
        ),
        pieces(&["0.0.0.0", ":", "8080", "[::1]", "localhost", "65536"], 4),
        prop::sample::select(
            &[
                "true",
                "false",
                "yes",
                "off",
                "TRUE",
                "2",
                "all cores",
                "text",
                "json",
                ""
            ][..]
        )
        .prop_map(str::to_string),
    ]
}

/// Marks secret values so a test can tell whether an error message repeats them.
const MARK: &str = "Zq7hunter2";

proptest! {
    #![proptest_config(cases(256))]

    /// Random values for random settings, plus unknown keys: always a `Config` or a list of
    /// errors naming only keys that were set; never a panic, never an echoed secret.
    #[test]
    fn any_settings_give_a_config_or_errors(
        picks in prop::collection::vec((0..SETTINGS.len(), value()), 0..8),
        unknown in prop::option::of("HELLOJOHN_[A-Z_]{1,16}"),
    ) {
        let mut map = BTreeMap::new();
        for (i, v) in picks {
            let s = &SETTINGS[i];
            let v = if s.secret { format!("{v}{MARK}") } else { v };
            map.insert(s.env.to_string(), v);
        }
        let unknown = unknown.filter(|k| !SETTINGS.iter().any(|s| s.env == k));
        if let Some(k) = &unknown {
            map.insert(k.clone(), "1".to_string());
        }
        match Config::from_source(&map) {
            // An unknown key is only warned about: it never makes the configuration invalid.
            Ok(c) => prop_assert_eq!(
                c.unknown_settings.iter().map(|e| e.key.clone()).collect::<Vec<_>>(),
                unknown.clone().into_iter().collect::<Vec<_>>()
            ),
            Err(errors) => {
                prop_assert!(!errors.0.is_empty());
                for e in &errors.0 {
                    prop_assert!(
                        map.contains_key(&e.key) || SETTINGS.iter().any(|s| s.env == e.key),
                        "{} is neither set nor a setting", e.key
                    );
                }
                if let Some(k) = &unknown {
                    prop_assert!(errors.0.iter().all(|e| &e.key != k), "{} refused", k);
                }
                prop_assert!(!errors.to_string().contains(MARK), "a secret was echoed: {}", errors);
            }
        }
    }

    /// Each setting alone, with every kind of value.
    #[test]
    fn each_setting_alone(i in 0..SETTINGS.len(), v in value()) {
        let mut map = BTreeMap::new();
        map.insert(SETTINGS[i].env.to_string(), v);
        if let Err(errors) = Config::from_source(&map) {
            prop_assert!(errors.0.iter().any(|e| e.key == SETTINGS[i].env), "{}", errors);
        }
    }

    /// A rate that is accepted can be used: a positive count over a positive period.
    #[test]
    fn accepted_rates_are_positive(
        count in prop_oneof!["[0-9]{1,11}", Just("-1".to_string()), Just(" 5 ".to_string())],
        period in prop_oneof![duration_text(), Just("m".to_string()), Just("".to_string()), Just("0s".to_string())],
    ) {
        let mut map = BTreeMap::new();
        map.insert("HELLOJOHN_RATE_LIMIT_SIGN_IN".to_string(), format!("{count}/{period}"));
        if let Ok(c) = Config::from_source(&map) {
            prop_assert!(c.rate_limit_sign_in.count > 0);
            prop_assert!(!c.rate_limit_sign_in.period.is_zero());
        }
    }

    /// Durations parse to the sum of their parts, or are refused; never a panic or overflow.
    #[test]
    fn durations(text in prop_oneof![any::<String>(), duration_text()]) {
        let _ = parse_duration(&text);
    }

    #[test]
    fn well_formed_durations_add_up(parts in prop::collection::vec((0u32..100_000, prop::sample::select(UNITS)), 1..5)) {
        let text: String = parts.iter().map(|(n, u)| format!("{n}{u}")).collect();
        let expected: f64 = parts
            .iter()
            .map(|(n, u)| {
                f64::from(*n)
                    * match *u {
                        "ns" => 1e-9,
                        "us" | "µs" | "μs" => 1e-6,
                        "ms" => 1e-3,
                        "s" => 1.0,
                        "m" => 60.0,
                        _ => 3600.0,
                    }
            })
            .sum();
        let got = parse_duration(&text).unwrap().as_secs_f64();
        prop_assert!((got - expected).abs() <= expected * 1e-9 + 1e-9, "{} -> {} (expected {})", text, got, expected);
    }
}
