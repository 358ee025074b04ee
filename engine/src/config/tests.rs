use super::*;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults() {
    let c = Config::from_source(&map(&[])).unwrap();
    assert_eq!(c.listen, "0.0.0.0:8080".parse().unwrap());
    assert_eq!(c.db_max_open_conns, 25);
    assert_eq!(c.db_max_idle_conns, 10);
    assert_eq!(c.db_conn_max_lifetime, Duration::from_secs(300));
    assert_eq!(c.read_timeout, Duration::from_secs(10));
    assert_eq!(c.write_timeout, Duration::from_secs(30));
    assert_eq!(c.idle_timeout, Duration::from_secs(120));
    assert_eq!(c.refresh_token_ttl, Duration::from_secs(720 * 3600));
    assert_eq!(
        (
            c.argon2_memory_kib,
            c.argon2_iterations,
            c.argon2_parallelism
        ),
        (19456, 2, 1)
    );
    assert_eq!(c.base_url, "http://localhost:8080");
    assert_eq!(c.shards, cores());
    assert_eq!(c.drain_timeout, Duration::from_secs(30));
}

#[test]
fn go_durations() {
    assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
    assert_eq!(
        parse_duration("720h").unwrap(),
        Duration::from_secs(720 * 3600)
    );
    assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
    assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
    assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    for bad in ["", "5", "m", "5x", "-1s", "1h30"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn every_bad_value_reported_together_and_unknown_keys_only_warned_about() {
    let errs = Config::from_source(&map(&[
        ("HELLOJOHN_READ_TIMEOUT", "ten seconds"),
        ("HELLOJOHN_DB_MAX_OPEN_CONNS", "0"),
        ("HELLOJOHN_LISTEN", "nowhere"),
        ("HELLOJOHN_DATABASE_URL", "mysql://u:hunter2@h/db"),
        ("HELLOJOHN_RATE_LIMIT_SIGN_IN", "lots"),
        ("HELLOJOHN_WORKRES", "4"),
        ("OTHER_VAR", "ignored"),
    ]))
    .unwrap_err();
    let keys: Vec<&str> = errs.0.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "HELLOJOHN_LISTEN",
            "HELLOJOHN_DATABASE_URL",
            "HELLOJOHN_DB_MAX_OPEN_CONNS",
            "HELLOJOHN_READ_TIMEOUT",
            "HELLOJOHN_RATE_LIMIT_SIGN_IN",
        ]
    );
    let text = errs.to_string();
    assert!(
        !text.contains("hunter2"),
        "secrets are never echoed: {text}"
    );
}

/// An unknown key (a typo, or a newer release's setting left in the environment by a
/// rollback) does not stop the start: it is kept, with its typo hint, for the warning.
#[test]
fn unknown_keys_are_warnings_with_their_typo_hint() {
    let c = Config::from_source(&map(&[
        ("HELLOJOHN_WORKRES", "4"),
        ("HELLOJOHN_FUTURE_SETTING", "secret-value"),
        ("OTHER_VAR", "ignored"),
    ]))
    .unwrap();
    let warned: Vec<(&str, &str)> = c
        .unknown_settings
        .iter()
        .map(|e| (e.key.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(
        warned,
        [
            ("HELLOJOHN_FUTURE_SETTING", "unknown setting, ignored"),
            (
                "HELLOJOHN_WORKRES",
                "unknown setting, ignored; did you mean HELLOJOHN_WORKERS?"
            ),
        ]
    );
    // The defaults are not disturbed by the unknown key.
    assert_eq!(c.workers, Config::from_source(&map(&[])).unwrap().workers);
    let before = store::tolerance::count("setting");
    c.warn_unknown_settings();
    assert_eq!(store::tolerance::count("setting"), before + 2);
}

#[test]
fn rates_and_cidrs() {
    let c = Config::from_source(&map(&[
        ("HELLOJOHN_RATE_LIMIT_SIGN_IN", "5/10s"),
        ("HELLOJOHN_RATE_LIMIT_TOKEN", "100/m"),
        ("HELLOJOHN_TRUSTED_PROXIES", "10.0.0.0/8, ::1, 192.168.1.7"),
    ]))
    .unwrap();
    assert_eq!(
        c.rate_limit_sign_in,
        Rate {
            count: 5,
            period: Duration::from_secs(10)
        }
    );
    assert_eq!(c.rate_limit_token.period, Duration::from_secs(60));
    assert!(c.trusted_proxies[0].contains("10.2.3.4".parse().unwrap()));
    assert!(!c.trusted_proxies[0].contains("11.2.3.4".parse().unwrap()));
    assert!(c.trusted_proxies[1].contains("::1".parse().unwrap()));
    assert!(c.trusted_proxies[2].contains("::ffff:192.168.1.7".parse().unwrap()));
}

#[test]
fn metrics_allow_setting() {
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let allowed = |c: &Config, s: &str| c.metrics_allow.iter().any(|n| n.contains(ip(s)));
    // The default: loopback and the private ranges, not link-local, not public.
    let c = Config::from_source(&map(&[])).unwrap();
    for yes in [
        "127.0.0.1",
        "::1",
        "10.1.2.3",
        "172.31.0.9",
        "192.168.0.1",
        "fd00::5",
        "::ffff:10.0.0.1",
    ] {
        assert!(allowed(&c, yes), "{yes}");
    }
    for no in [
        "203.0.113.9",
        "172.32.0.1",
        "169.254.169.254",
        "fe80::1",
        "2001:db8::1",
    ] {
        assert!(!allowed(&c, no), "{no}");
    }
    let c = Config::from_source(&map(&[("HELLOJOHN_METRICS_ALLOW", "192.0.2.0/24")])).unwrap();
    assert!(allowed(&c, "192.0.2.7") && !allowed(&c, "127.0.0.1"));
    let c = Config::from_source(&map(&[("HELLOJOHN_METRICS_ALLOW", "None")])).unwrap();
    assert!(c.metrics_allow.is_empty());
    let errs =
        Config::from_source(&map(&[("HELLOJOHN_METRICS_ALLOW", "10.0.0.0/33")])).unwrap_err();
    assert_eq!(errs.0[0].key, "HELLOJOHN_METRICS_ALLOW");
}

#[test]
fn client_ip_header_setting() {
    let c = Config::from_source(&map(&[])).unwrap();
    assert_eq!(c.client_ip_header, ClientIpHeader::XForwardedFor);
    let c = Config::from_source(&map(&[("HELLOJOHN_CLIENT_IP_HEADER", "X-Real-IP")])).unwrap();
    assert_eq!(c.client_ip_header, ClientIpHeader::XRealIp);
    let c =
        Config::from_source(&map(&[("HELLOJOHN_CLIENT_IP_HEADER", "x-forwarded-for")])).unwrap();
    assert_eq!(c.client_ip_header, ClientIpHeader::XForwardedFor);
    for bad in ["forwarded", "x-forwarded-for, x-real-ip", "true"] {
        let errs = Config::from_source(&map(&[("HELLOJOHN_CLIENT_IP_HEADER", bad)])).unwrap_err();
        assert_eq!(errs.0.len(), 1, "{bad}: {errs}");
        assert_eq!(errs.0[0].key, "HELLOJOHN_CLIENT_IP_HEADER");
        assert!(errs.0[0].message.contains("x-real-ip"), "{errs}");
    }
}

#[test]
fn argon2_parameters_stay_within_the_stored_hash_bounds() {
    let c = Config::from_source(&map(&[])).unwrap();
    assert_eq!(
        (
            c.argon2_max_memory_kib,
            c.argon2_max_iterations,
            c.argon2_max_parallelism
        ),
        (262_144, 10, 8)
    );
    // HelloJohn's own m=65536,t=3,p=1 and the maxima themselves are fine.
    let c = Config::from_source(&map(&[
        ("HELLOJOHN_ARGON2_MEMORY_KIB", "262144"),
        ("HELLOJOHN_ARGON2_ITERATIONS", "10"),
        ("HELLOJOHN_ARGON2_PARALLELISM", "8"),
    ]))
    .unwrap();
    assert_eq!(c.argon2_memory_kib, 262_144);
    // Costs above the maxima: one error each, on the cost's own setting.
    let errs = Config::from_source(&map(&[
        ("HELLOJOHN_ARGON2_MEMORY_KIB", "262145"),
        ("HELLOJOHN_ARGON2_ITERATIONS", "11"),
        ("HELLOJOHN_ARGON2_PARALLELISM", "4"),
        ("HELLOJOHN_ARGON2_MAX_PARALLELISM", "2"),
    ]))
    .unwrap_err();
    let keys: Vec<&str> = errs.0.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "HELLOJOHN_ARGON2_MEMORY_KIB",
            "HELLOJOHN_ARGON2_ITERATIONS",
            "HELLOJOHN_ARGON2_PARALLELISM"
        ]
    );
    assert!(
        errs.0[1]
            .message
            .contains("at most HELLOJOHN_ARGON2_MAX_ITERATIONS (10)"),
        "{errs}"
    );
    // A maximum lowered below the default cost is the maximum's error.
    let errs = Config::from_source(&map(&[("HELLOJOHN_ARGON2_MAX_MEMORY_KIB", "10")])).unwrap_err();
    assert_eq!(errs.0.len(), 1, "{errs}");
    assert_eq!(errs.0[0].key, "HELLOJOHN_ARGON2_MAX_MEMORY_KIB");
    assert!(
        errs.0[0]
            .message
            .contains("at least HELLOJOHN_ARGON2_MEMORY_KIB (19456)"),
        "{errs}"
    );
    // Raised maxima admit larger costs.
    let c = Config::from_source(&map(&[
        ("HELLOJOHN_ARGON2_ITERATIONS", "12"),
        ("HELLOJOHN_ARGON2_MAX_ITERATIONS", "20"),
    ]))
    .unwrap();
    assert_eq!((c.argon2_iterations, c.argon2_max_iterations), (12, 20));
    // A bad maximum is reported once, not again as a cost above it.
    let errs = Config::from_source(&map(&[
        ("HELLOJOHN_ARGON2_MAX_ITERATIONS", "0"),
        ("HELLOJOHN_ARGON2_MAX_MEMORY_KIB", "lots"),
        ("HELLOJOHN_ARGON2_MAX_PARALLELISM", "256"),
    ]))
    .unwrap_err();
    let keys: Vec<&str> = errs.0.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "HELLOJOHN_ARGON2_MAX_MEMORY_KIB",
            "HELLOJOHN_ARGON2_MAX_ITERATIONS",
            "HELLOJOHN_ARGON2_MAX_PARALLELISM"
        ]
    );
}

#[test]
fn durations_beyond_a_century_are_refused() {
    assert_eq!(parse_duration("876000h"), Ok(MAX_DURATION));
    for huge in [
        "876001h",
        "3000000000000000h",
        "1e300h",
        "99999999999999999999s",
    ] {
        assert!(parse_duration(huge).is_err(), "{huge}");
    }
    let errs =
        Config::from_source(&map(&[("HELLOJOHN_READ_TIMEOUT", "3000000000000000h")])).unwrap_err();
    assert_eq!(errs.0[0].key, "HELLOJOHN_READ_TIMEOUT");
}

#[test]
fn configuration_doc_lists_every_setting() {
    let doc = include_str!("../../../docs/configuration.md");
    assert!(
        doc.contains(&markdown_table()),
        "docs/configuration.md is out of date: paste the output of markdown_table() into it"
    );
}

#[test]
fn secrets_redacted_in_debug() {
    let c = Config::from_source(&map(&[(
        "HELLOJOHN_DATABASE_URL",
        "postgresql://u:hunter2@h/db",
    )]))
    .unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn key_publish_delay_covers_the_jwks_cache_and_the_reload() {
    let c = Config::from_source(&map(&[])).unwrap();
    assert_eq!(c.key_publish_delay, Duration::from_secs(600));
    assert_eq!(c.key_reload_interval, KEY_RELOAD_INTERVAL);
    let c = Config::from_source(&map(&[("HELLOJOHN_KEY_PUBLISH_DELAY", "5m30s")])).unwrap();
    assert_eq!(c.key_publish_delay, JWKS_MAX_AGE + KEY_RELOAD_INTERVAL);
    for bad in ["5m29s", "0s", "ten minutes"] {
        let errors = Config::from_source(&map(&[("HELLOJOHN_KEY_PUBLISH_DELAY", bad)]))
            .unwrap_err()
            .0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].key, "HELLOJOHN_KEY_PUBLISH_DELAY");
    }
}

#[test]
fn mail_and_mfa_defaults() {
    let c = Config::from_source(&map(&[])).unwrap();
    assert_eq!(c.smtp, None, "no host: mail disabled");
    assert_eq!(c.smtp_timeout, Duration::from_secs(10));
    assert_eq!(c.mail_max_attempts, 8);
    assert_eq!(c.email_templates_dir, None);
    assert_eq!(c.email_verify_ttl, Duration::from_secs(48 * 3600));
    assert_eq!(c.password_reset_ttl, Duration::from_secs(3600));
    assert_eq!(c.mfa_issuer, "HelloJohn");
    assert_eq!(c.mfa_totp_window, 1);
    assert_eq!(c.mfa_challenge_ttl, Duration::from_secs(300));
    assert_eq!(
        c.mfa_remember_device_ttl,
        Duration::from_secs(30 * 24 * 3600)
    );
}

#[test]
fn smtp_settings() {
    let c = Config::from_source(&map(&[
        ("HELLOJOHN_SMTP_HOST", "smtp.example.com"),
        ("HELLOJOHN_SMTP_FROM", "Acme <no-reply@example.com>"),
        ("HELLOJOHN_SMTP_USERNAME", "mailer"),
        ("HELLOJOHN_SMTP_PASSWORD", "hunter2"),
    ]))
    .unwrap();
    let smtp = c.smtp.clone().unwrap();
    assert_eq!(smtp.host, "smtp.example.com");
    assert_eq!(smtp.port, 587);
    assert_eq!(smtp.tls, SmtpTls::StartTls);
    assert_eq!(smtp.username.as_deref(), Some("mailer"));
    assert_eq!(smtp.password.as_ref().map(Secret::expose), Some("hunter2"));
    assert!(
        !format!("{c:?}").contains("hunter2"),
        "the password is redacted"
    );

    let c = Config::from_source(&map(&[
        ("HELLOJOHN_SMTP_HOST", "[::1]"),
        ("HELLOJOHN_SMTP_PORT", "2525"),
        ("HELLOJOHN_SMTP_FROM", "no-reply@example.com"),
        ("HELLOJOHN_SMTP_TLS", "none"),
        ("HELLOJOHN_SMTP_TIMEOUT", "3s"),
        ("HELLOJOHN_MAIL_MAX_ATTEMPTS", "3"),
        ("HELLOJOHN_EMAIL_TEMPLATES_DIR", "/etc/hellojohn/mail"),
    ]))
    .unwrap();
    let smtp = c.smtp.unwrap();
    assert_eq!((smtp.host.as_str(), smtp.port), ("::1", 2525));
    assert_eq!(smtp.tls, SmtpTls::None);
    assert_eq!(c.smtp_timeout, Duration::from_secs(3));
    assert_eq!(c.mail_max_attempts, 3);
    assert_eq!(
        c.email_templates_dir,
        Some(PathBuf::from("/etc/hellojohn/mail"))
    );
    for (host, loopback) in [
        ("127.0.0.1", true),
        ("127.8.9.10", true),
        ("localhost", true),
        ("LOCALHOST.", true),
        ("::1", true),
        ("::ffff:127.0.0.1", true),
        ("10.0.0.1", false),
        ("localhost.example.com", false),
        ("smtp.example.com", false),
    ] {
        assert_eq!(is_loopback_host(host), loopback, "{host}");
    }
}

#[test]
fn bad_smtp_settings_are_reported_without_the_password() {
    let keys = |pairs: &[(&str, &str)]| -> Vec<String> {
        Config::from_source(&map(pairs))
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.key)
            .collect()
    };
    // A host without a sender.
    let errs =
        Config::from_source(&map(&[("HELLOJOHN_SMTP_HOST", "smtp.example.com")])).unwrap_err();
    assert_eq!(errs.0.len(), 1, "{errs}");
    assert_eq!(errs.0[0].key, "HELLOJOHN_SMTP_HOST");
    assert!(errs.0[0].message.contains("HELLOJOHN_SMTP_FROM"), "{errs}");
    // Plain SMTP only to loopback.
    let errs = Config::from_source(&map(&[
        ("HELLOJOHN_SMTP_HOST", "smtp.example.com"),
        ("HELLOJOHN_SMTP_FROM", "a@example.com"),
        ("HELLOJOHN_SMTP_TLS", "none"),
    ]))
    .unwrap_err();
    assert_eq!(errs.0.len(), 1, "{errs}");
    assert_eq!(errs.0[0].key, "HELLOJOHN_SMTP_TLS");
    assert!(errs.0[0].message.contains("loopback"), "{errs}");
    // Credentials come in pairs; the password is never echoed.
    let errs = Config::from_source(&map(&[
        ("HELLOJOHN_SMTP_HOST", "smtp.example.com"),
        ("HELLOJOHN_SMTP_FROM", "a@example.com"),
        ("HELLOJOHN_SMTP_PASSWORD", "hunter2"),
    ]))
    .unwrap_err();
    assert_eq!(errs.0[0].key, "HELLOJOHN_SMTP_PASSWORD");
    assert!(
        errs.0[0].message.contains("HELLOJOHN_SMTP_USERNAME"),
        "{errs}"
    );
    assert!(!errs.to_string().contains("hunter2"), "{errs}");
    // Settings for a relay that is not named.
    assert_eq!(
        keys(&[
            ("HELLOJOHN_SMTP_FROM", "a@example.com"),
            ("HELLOJOHN_SMTP_PASSWORD", "hunter2"),
            ("HELLOJOHN_SMTP_PORT", "25"),
        ]),
        ["HELLOJOHN_SMTP_PASSWORD", "HELLOJOHN_SMTP_FROM"]
    );
    // Bad values, each reported.
    assert_eq!(
        keys(&[
            ("HELLOJOHN_SMTP_HOST", "smtp://smtp.example.com"),
            ("HELLOJOHN_SMTP_PORT", "70000"),
            ("HELLOJOHN_SMTP_FROM", "not an address"),
            ("HELLOJOHN_SMTP_TLS", "ssl"),
            ("HELLOJOHN_SMTP_TIMEOUT", "0s"),
            ("HELLOJOHN_MAIL_MAX_ATTEMPTS", "0"),
            ("HELLOJOHN_EMAIL_VERIFY_TTL", "forever"),
            ("HELLOJOHN_PASSWORD_RESET_TTL", "0s"),
            ("HELLOJOHN_MFA_ISSUER", "bad\u{7}issuer"),
            ("HELLOJOHN_MFA_TOTP_WINDOW", "4"),
            ("HELLOJOHN_MFA_CHALLENGE_TTL", "soon"),
            ("HELLOJOHN_MFA_REMEMBER_DEVICE_TTL", "0s"),
        ]),
        [
            "HELLOJOHN_SMTP_HOST",
            "HELLOJOHN_SMTP_PORT",
            "HELLOJOHN_SMTP_FROM",
            "HELLOJOHN_SMTP_TLS",
            "HELLOJOHN_SMTP_TIMEOUT",
            "HELLOJOHN_MAIL_MAX_ATTEMPTS",
            "HELLOJOHN_EMAIL_VERIFY_TTL",
            "HELLOJOHN_PASSWORD_RESET_TTL",
            "HELLOJOHN_MFA_ISSUER",
            "HELLOJOHN_MFA_TOTP_WINDOW",
            "HELLOJOHN_MFA_CHALLENGE_TTL",
            "HELLOJOHN_MFA_REMEMBER_DEVICE_TTL",
        ]
    );
    let c = Config::from_source(&map(&[("HELLOJOHN_MFA_TOTP_WINDOW", "0")])).unwrap();
    assert_eq!(c.mfa_totp_window, 0);
}
