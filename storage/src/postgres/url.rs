//! The database URL: a libpq-style `postgres://` / `postgresql://` URL.
//!
//! tokio-postgres parses the URL itself but only knows `sslmode=disable|prefer|require`, so
//! `sslmode` and `sslrootcert` are taken out here and given libpq's meaning:
//!
//! | `sslmode`     | encryption                 | certificate checked                        |
//! |---------------|----------------------------|--------------------------------------------|
//! | `disable`     | never                      | —                                          |
//! | `prefer`      | if the server offers it    | no (the default, as in libpq)              |
//! | `require`     | always                     | no; with `sslrootcert` as for `verify-ca`  |
//! | `verify-ca`   | always                     | chain to a trusted root, any host name     |
//! | `verify-full` | always                     | chain to a trusted root and the host name  |
//!
//! Trusted roots come from `sslrootcert` (a PEM file of one or more CA certificates), or the
//! system's store when it is absent or `sslrootcert=system` (which, as in libpq 16, makes
//! `verify-full` the default and refuses weaker modes).

use std::path::PathBuf;

use crate::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, StoreError> {
        match value {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            "allow" => Err(bad_url(
                "sslmode=allow is not supported: use disable, prefer, require, verify-ca or \
                 verify-full",
            )),
            other => Err(bad_url(&format!(
                "unknown sslmode {other:?}: use disable, prefer, require, verify-ca or \
                 verify-full"
            ))),
        }
    }
}

/// Where the trusted roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RootCerts {
    /// The operating system's trust store.
    System,
    /// A PEM file (`sslrootcert=PATH`).
    File(PathBuf),
}

/// A database URL taken apart.
#[derive(Debug)]
pub(crate) struct Settings {
    /// Everything but the TLS settings, as tokio-postgres understands it.
    pub(crate) config: tokio_postgres::Config,
    pub(crate) ssl_mode: SslMode,
    pub(crate) root_certs: RootCerts,
    /// `sslrootcert` was given (a file or `system`).
    pub(crate) root_certs_given: bool,
}

fn bad_url(message: &str) -> StoreError {
    StoreError::Internal(format!("invalid database URL: {message}"))
}

/// Parses `url`. Never echoes the URL (it may hold a password) in errors.
pub(crate) fn parse(url: &str) -> Result<Settings, StoreError> {
    let url = url.trim();
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(bad_url("expected postgres:// or postgresql://"));
    }
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, query),
        None => (url, ""),
    };
    let mut ssl_mode = None;
    let mut root_cert = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match percent_decode(key)?.as_str() {
            "sslmode" => ssl_mode = Some(SslMode::parse(&percent_decode(value)?)?),
            "sslrootcert" => root_cert = Some(percent_decode(value)?),
            "sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir" => {
                return Err(bad_url(
                    "client certificates and CRLs (sslcert, sslkey, sslpassword, sslcrl) are \
                     not supported",
                ))
            }
            _ => kept.push(pair),
        }
    }
    let root_certs = match root_cert.as_deref() {
        None | Some("") => RootCerts::System,
        Some("system") => RootCerts::System,
        Some(path) => RootCerts::File(PathBuf::from(path)),
    };
    let root_certs_given = root_cert.as_deref().is_some_and(|v| !v.is_empty());
    let system_explicit = root_cert.as_deref() == Some("system");
    let ssl_mode = match (ssl_mode, system_explicit) {
        (None, true) => SslMode::VerifyFull,
        (None, false) => SslMode::Prefer,
        (Some(mode), true) if mode != SslMode::VerifyFull => {
            return Err(bad_url(
                "sslrootcert=system requires sslmode=verify-full (as in libpq)",
            ))
        }
        (Some(mode), _) => mode,
    };

    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e: tokio_postgres::Error| bad_url(&e.to_string()))?;
    config.ssl_mode(match ssl_mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            tokio_postgres::config::SslMode::Require
        }
    });
    if config.get_application_name().is_none() {
        config.application_name("hellojohn");
    }
    Ok(Settings {
        config,
        ssl_mode,
        root_certs,
        root_certs_given,
    })
}

/// `%XX` escapes (and nothing else: `+` stays a plus, as in libpq).
fn percent_decode(text: &str) -> Result<String, StoreError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad_url("bad %-escape in a query parameter"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad_url("a query parameter is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> Settings {
        match parse(url) {
            Ok(s) => s,
            Err(e) => panic!("{url}: {e}"),
        }
    }

    #[test]
    fn ssl_modes_as_libpq() {
        let base = "postgresql://u:p@db.example:5433/hj";
        let s = settings(base);
        assert_eq!(
            (s.ssl_mode, &s.root_certs),
            (SslMode::Prefer, &RootCerts::System)
        );
        assert_eq!(s.config.get_dbname(), Some("hj"));
        assert_eq!(s.config.get_ports(), &[5433]);
        assert_eq!(s.config.get_application_name(), Some("hellojohn"));
        for (mode, expected) in [
            ("disable", SslMode::Disable),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
            ("verify-full", SslMode::VerifyFull),
        ] {
            let s = settings(&format!("{base}?sslmode={mode}&connect_timeout=3"));
            assert_eq!(s.ssl_mode, expected);
            assert_eq!(
                s.config.get_connect_timeout(),
                Some(&std::time::Duration::from_secs(3))
            );
        }
        let s = settings(&format!(
            "{base}?application_name=x&sslrootcert=%2Ftmp%2Fca%20dir%2Fca.crt&sslmode=verify-full"
        ));
        assert_eq!(s.root_certs, RootCerts::File("/tmp/ca dir/ca.crt".into()));
        assert!(s.root_certs_given);
        assert_eq!(s.config.get_application_name(), Some("x"));
        let s = settings(&format!("{base}?sslrootcert=system"));
        assert_eq!(
            (s.ssl_mode, s.root_certs),
            (SslMode::VerifyFull, RootCerts::System)
        );
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        for url in [
            "mysql://u@h/db",
            "postgres://u@h/db?sslmode=allow",
            "postgres://u@h/db?sslmode=bogus",
            "postgres://u@h/db?sslmode=require&sslrootcert=system",
            "postgres://u@h/db?sslcert=/x",
            "postgres://u@h/db?sslrootcert=%zz",
            "postgres://u@h/db?no_such_option=1",
        ] {
            match parse(url) {
                Err(StoreError::Internal(m)) => {
                    assert!(m.starts_with("invalid database URL"), "{m}")
                }
                other => panic!("{url}: {other:?}"),
            }
        }
        // The password never shows in errors.
        let Err(e) = parse("postgres://u:s3cret@h/db?sslmode=bogus") else {
            panic!("accepted")
        };
        assert!(!e.to_string().contains("s3cret"));
    }
}

/// Property tests (see docs/testing.md): any `HELLOJOHN_DATABASE_URL` is taken apart or
/// refused, never a panic, and a refusal never repeats the password.
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::parse;

    /// Marks the password so a test can tell whether an error repeats it.
    const MARK: &str = "Zq7hunter2";

    fn url() -> impl Strategy<Value = String> {
        let scheme = prop::sample::select(
            &["postgres://", "postgresql://", "postgres:/", "mysql://", ""][..],
        );
        let user = prop::sample::select(&["", "u@", "u:@", "@", "u:p:q@"][..]);
        let host = prop::sample::select(
            &[
                "h", "[::1]", "h1,h2", "h:5432", "h:99999", ":", "%2Ftmp", "",
            ][..],
        );
        let path = prop::sample::select(&["", "/db", "/", "/d%20b", "//"][..]);
        let query = prop::collection::vec(
            prop::sample::select(
                &[
                    "sslmode=disable",
                    "sslmode=verify-full",
                    "sslmode=bogus",
                    "sslrootcert=system",
                    "sslrootcert=",
                    "sslcert=x",
                    "%zz=1",
                    "a=%",
                    "=",
                    "&",
                    "connect_timeout=x",
                    "application_name=%C3%A9",
                    "options=-c%20x%3D1",
                    "%FF=1",
                ][..],
            ),
            0..4,
        );
        (scheme, user, any::<bool>(), host, path, query).prop_map(|(s, u, pw, h, p, q)| {
            let user = if pw {
                format!("u:{MARK}@")
            } else {
                u.to_string()
            };
            let query = if q.is_empty() {
                String::new()
            } else {
                format!("?{}", q.join("&"))
            };
            format!("{s}{user}{h}{p}{query}")
        })
    }

    proptest! {
        #![proptest_config({
            let mut c = ProptestConfig::default();
            if std::env::var_os("PROPTEST_CASES").is_none() { c.cases = 512; }
            c
        })]

        #[test]
        fn database_urls_parse_or_are_refused(text in prop_oneof![any::<String>(), url()]) {
            if let Err(e) = parse(&text) {
                prop_assert!(!e.to_string().contains(MARK), "{}", e);
            }
        }
    }
}
