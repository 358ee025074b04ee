//! Configuration: every setting, read from `HELLOJOHN_*` variables through [`Source`].
//!
//! The table [`SETTINGS`] is the single list of settings: parsing, unknown-key detection,
//! `hj serve --help` and the documentation table are all made from it. Every bad value is
//! collected, so an operator sees all of them at once. An unknown `HELLOJOHN_*` key is a
//! warning with its typo hint, not a refusal: after a rollback the environment still holds the
//! newer release's settings, and a release never refuses to start because of them.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub use crate::client_ip::ClientIpHeader;

mod mail;
mod settings;
#[cfg(test)]
mod tests;
mod values;

pub use mail::{is_loopback_host, SmtpSettings, SmtpTls};

use settings::closest;
pub use settings::{markdown_table, Setting, PREFIX, SETTINGS};
use values::*;
pub use values::{parse_duration, JWKS_MAX_AGE, KEY_RELOAD_INTERVAL, MAX_DURATION};

/// Where settings come from. The process environment in production; a map in tests, so tests
/// never mutate the environment of the test process.
pub trait Source {
    fn get(&self, key: &str) -> Option<String>;
    /// All keys starting with `HELLOJOHN_`, for unknown-key detection.
    fn keys(&self) -> Vec<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
    fn keys(&self) -> Vec<String> {
        std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .filter(|k| k.starts_with(PREFIX))
            .collect()
    }
}

impl Source for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        BTreeMap::get(self, key).cloned()
    }
    fn keys(&self) -> Vec<String> {
        self.keys()
            .filter(|k| k.starts_with(PREFIX))
            .cloned()
            .collect()
    }
}

/// A source whose values win over another's: command-line flags over the environment.
pub struct Overlay<'a> {
    pub top: BTreeMap<String, String>,
    pub base: &'a dyn Source,
}

impl Source for Overlay<'_> {
    fn get(&self, key: &str) -> Option<String> {
        self.top.get(key).cloned().or_else(|| self.base.get(key))
    }
    fn keys(&self) -> Vec<String> {
        let mut keys = self.base.keys();
        keys.extend(self.top.keys().cloned());
        keys.sort();
        keys.dedup();
        keys
    }
}

pub use auth::limiter::Rate;

/// An IPv4 or IPv6 network in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A secret setting: printed as `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The engine's whole configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub shards: usize,
    pub workers: usize,
    pub data_dir: PathBuf,
    pub base_url: String,
    pub master_key: Option<Secret>,
    pub database_url: Option<Secret>,
    pub redis_url: Option<Secret>,
    /// Prefix of every Redis key (`hj:`). Not a `HELLOJOHN_*` setting: tests sharing one Redis
    /// give each server its own prefix.
    pub redis_key_prefix: String,
    pub db_max_open_conns: u32,
    pub db_max_idle_conns: u32,
    pub db_conn_max_lifetime: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_body_bytes: usize,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// The largest Argon2 parameters a stored hash may ask for (and the configured ones must
    /// stay within): see [`auth::password::HashBounds`].
    pub argon2_max_memory_kib: u32,
    pub argon2_max_iterations: u32,
    pub argon2_max_parallelism: u32,
    pub hash_queue_budget: Duration,
    pub hash_arena_idle_release: Duration,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub session_ttl: Duration,
    /// How long `hj keys rotate` publishes a new signing key before it signs
    /// (`HELLOJOHN_KEY_PUBLISH_DELAY`).
    pub key_publish_delay: Duration,
    /// How often each instance reloads its signing keys ([`KEY_RELOAD_INTERVAL`]). Not a
    /// `HELLOJOHN_*` setting: tests shorten it.
    pub key_reload_interval: Duration,
    pub cors_origins: Vec<String>,
    /// An external sign-in UI: `/oauth2/authorize` sends browsers to `{ui_base_url}/login`
    /// instead of the hosted page. `None`: the hosted page.
    pub ui_base_url: Option<String>,
    pub trusted_proxies: Vec<Cidr>,
    pub client_ip_header: ClientIpHeader,
    /// Who may read `/metrics`: the client address (see `client_ip`) must be in one of these.
    pub metrics_allow: Vec<Cidr>,
    pub rate_limit_enabled: bool,
    pub rate_limit_sign_in: Rate,
    pub rate_limit_sign_up: Rate,
    pub rate_limit_token: Rate,
    pub rate_limit_failed_sign_in: Rate,
    pub rate_limit_logout: Rate,
    pub rate_limit_admin: Rate,
    pub webhook_timeout: Duration,
    pub webhook_max_attempts: u32,
    pub webhook_poll_interval: Duration,
    pub webhook_allow_private: bool,
    /// How long events whose deliveries are all finished are kept before the workers delete
    /// them (with their deliveries).
    pub webhook_retention: Duration,
    /// How long audit-log entries are kept; `None`: for ever.
    pub audit_retention: Option<Duration>,
    /// First retry delay of a failed webhook delivery (`5s`); each further retry doubles it,
    /// up to `webhook_backoff_max` (`1h`), with ±20 % jitter. Not a `HELLOJOHN_*` setting:
    /// tests shorten it.
    pub webhook_backoff_base: Duration,
    pub webhook_backoff_max: Duration,
    /// How long a worker holds a claimed delivery; `None`: twice `webhook_timeout` plus 5 s.
    /// Not a `HELLOJOHN_*` setting: tests shorten it.
    pub webhook_lease: Option<Duration>,
    /// The SMTP relay of account mail; `None` (no `HELLOJOHN_SMTP_HOST`): mail is disabled and
    /// stays in the outbox. The mail worker reuses the webhook poll interval, backoff, lease and
    /// retention.
    pub smtp: Option<SmtpSettings>,
    /// Timeout of one SMTP send (connection, TLS, the whole dialogue).
    pub smtp_timeout: Duration,
    /// Send attempts before a mail is exhausted.
    pub mail_max_attempts: u32,
    /// Per-tenant and global overrides of the mail templates, read at start.
    pub email_templates_dir: Option<PathBuf>,
    /// Life of an email-verification link.
    pub email_verify_ttl: Duration,
    /// Life of a password-reset link.
    pub password_reset_ttl: Duration,
    /// The `issuer` of otpauth URLs (what authenticator apps show).
    pub mfa_issuer: String,
    /// TOTP time steps accepted either side of now (0 to 3).
    pub mfa_totp_window: u32,
    /// Life of an MFA sign-in challenge (`mfa_token`).
    pub mfa_challenge_ttl: Duration,
    /// Life of a remembered device.
    pub mfa_remember_device_ttl: Duration,
    /// How recent a sign-in must be to enrol a second factor.
    pub reauth_max_age: Duration,
    /// Tests only (not a `HELLOJOHN_*` setting): a request carrying `x-hj-test-panic` makes
    /// its handler panic, to show that a panic costs one request (500) and nothing else.
    pub test_panic_header: bool,
    pub log: String,
    pub log_format: LogFormat,
    pub shutdown_delay: Duration,
    pub drain_timeout: Duration,
    /// The `HELLOJOHN_*` keys of the environment that are no setting of this release, each
    /// with its typo hint: warned about at start ([`Config::warn_unknown_settings`]), never
    /// refused, because a rollback keeps the newer release's environment.
    pub unknown_settings: Vec<ConfigError>,
}

/// One problem with one setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

/// All problems found, in setting order; and the unknown keys, which are not problems (a
/// newer release's settings, kept through a rollback) but shown with them: an operator fixing
/// the configuration wants to see a typo too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>, pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  {}: {}", e.key, e.message)?;
        }
        for e in &self.1 {
            writeln!(f, "  warning: {}: {}", e.key, e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

impl Config {
    /// The cost parameters of new password hashes (`HELLOJOHN_ARGON2_*`).
    pub fn argon2_params(&self) -> auth::Params {
        auth::Params {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
            parallelism: self.argon2_parallelism,
        }
    }

    /// The bounds on stored password hashes (`HELLOJOHN_ARGON2_MAX_*`).
    pub fn argon2_bounds(&self) -> auth::password::HashBounds {
        auth::password::HashBounds {
            max_memory_kib: self.argon2_max_memory_kib,
            max_iterations: self.argon2_max_iterations,
            max_parallelism: self.argon2_max_parallelism,
        }
    }

    /// The longest lifetime of a token a signing key may sign (access tokens; ID tokens live
    /// as long by default): how long a retired key stays published and accepted.
    pub fn signed_token_lifetime(&self) -> Duration {
        self.access_token_ttl
    }

    /// The rate limits (`HELLOJOHN_RATE_LIMIT_*`).
    pub fn rates(&self) -> auth::limiter::Rates {
        auth::limiter::Rates {
            enabled: self.rate_limit_enabled,
            sign_in: self.rate_limit_sign_in,
            sign_up: self.rate_limit_sign_up,
            token: self.rate_limit_token,
            failed_sign_in: self.rate_limit_failed_sign_in,
            logout: self.rate_limit_logout,
            admin: self.rate_limit_admin,
        }
    }

    /// Reads and validates every setting. All problems are returned together.
    pub fn from_source(source: &dyn Source) -> Result<Config, ConfigErrors> {
        let mut r = Reader {
            source,
            errors: Vec::new(),
        };
        let listen = r.parse(
            "HELLOJOHN_LISTEN",
            SocketAddr::from(([0, 0, 0, 0], 8080)),
            |v| {
                v.parse::<SocketAddr>()
                    .map_err(|_| "must be host:port such as 0.0.0.0:8080".to_string())
            },
        );
        let shards = r.parse("HELLOJOHN_SHARDS", cores(), |v| {
            if v == "all cores" {
                Ok(cores())
            } else {
                positive::<usize>(v)
            }
        });
        let workers = r.parse("HELLOJOHN_WORKERS", cores(), |v| {
            if v == "all cores" {
                Ok(cores())
            } else {
                positive::<usize>(v)
            }
        });
        let data_dir = r.parse("HELLOJOHN_DATA_DIR", PathBuf::from("./data"), |v| {
            Ok(PathBuf::from(v))
        });
        let base_url = r.parse("HELLOJOHN_BASE_URL", String::new(), |v| {
            if v.starts_with("http://localhost:<port>") {
                Ok(String::new())
            } else if v.starts_with("http://") || v.starts_with("https://") {
                Ok(v.trim_end_matches('/').to_string())
            } else {
                Err("must be an http:// or https:// URL".to_string())
            }
        });
        let master_key = r.parse("HELLOJOHN_MASTER_KEY", None, |v| {
            if v.is_empty() {
                Ok(None)
            } else if v.len() < 32 {
                Err(
                    "must be at least 32 characters (64 hex chars or base64 of 32 bytes)"
                        .to_string(),
                )
            } else {
                Ok(Some(Secret(v.to_string())))
            }
        });
        let database_url = r.parse(
            "HELLOJOHN_DATABASE_URL",
            None,
            url_with_scheme(&["postgres", "postgresql"]),
        );
        let redis_url = r.parse(
            "HELLOJOHN_REDIS_URL",
            None,
            url_with_scheme(&["redis", "rediss", "redis+cluster", "rediss+cluster"]),
        );
        let db_max_open_conns = r.parse("HELLOJOHN_DB_MAX_OPEN_CONNS", 25, positive::<u32>);
        let db_max_idle_conns = r.parse("HELLOJOHN_DB_MAX_IDLE_CONNS", 10, |v| {
            v.parse::<u32>()
                .map_err(|_| "must be a non-negative integer".to_string())
        });
        let db_conn_max_lifetime = r.parse(
            "HELLOJOHN_DB_CONN_MAX_LIFETIME",
            Duration::from_secs(300),
            positive_duration,
        );
        let read_timeout = r.parse(
            "HELLOJOHN_READ_TIMEOUT",
            Duration::from_secs(10),
            positive_duration,
        );
        let write_timeout = r.parse(
            "HELLOJOHN_WRITE_TIMEOUT",
            Duration::from_secs(30),
            positive_duration,
        );
        let idle_timeout = r.parse(
            "HELLOJOHN_IDLE_TIMEOUT",
            Duration::from_secs(120),
            positive_duration,
        );
        let max_body_bytes = r.parse("HELLOJOHN_MAX_BODY_BYTES", 65536, positive::<usize>);
        let argon2_memory_kib = r.parse("HELLOJOHN_ARGON2_MEMORY_KIB", 19456, argon2_memory);
        let argon2_iterations = r.parse("HELLOJOHN_ARGON2_ITERATIONS", 2, positive::<u32>);
        let argon2_parallelism = r.parse("HELLOJOHN_ARGON2_PARALLELISM", 1, argon2_lanes);
        let argon2_max_memory_kib =
            r.parse("HELLOJOHN_ARGON2_MAX_MEMORY_KIB", 262_144, argon2_memory);
        let argon2_max_iterations = r.parse("HELLOJOHN_ARGON2_MAX_ITERATIONS", 10, positive::<u32>);
        let argon2_max_parallelism = r.parse("HELLOJOHN_ARGON2_MAX_PARALLELISM", 8, argon2_lanes);
        // New hashes must verify: the configured costs stay within the maxima. Checked only
        // when both values of a pair parsed, so a bad value is reported once.
        for (key, value, max_key, max) in [
            (
                "HELLOJOHN_ARGON2_MEMORY_KIB",
                argon2_memory_kib,
                "HELLOJOHN_ARGON2_MAX_MEMORY_KIB",
                argon2_max_memory_kib,
            ),
            (
                "HELLOJOHN_ARGON2_ITERATIONS",
                argon2_iterations,
                "HELLOJOHN_ARGON2_MAX_ITERATIONS",
                argon2_max_iterations,
            ),
            (
                "HELLOJOHN_ARGON2_PARALLELISM",
                argon2_parallelism,
                "HELLOJOHN_ARGON2_MAX_PARALLELISM",
                argon2_max_parallelism,
            ),
        ] {
            let parsed = !r.errors.iter().any(|e| e.key == key || e.key == max_key);
            if parsed && value > max {
                // Blame the setting the operator changed: a maximum set below the default cost
                // is the maximum's problem, a cost set above the default maximum is the cost's.
                let error = if r.raw(max_key).is_some() && r.raw(key).is_none() {
                    ConfigError {
                        key: max_key.to_string(),
                        message: format!("must be at least {key} ({value}) (got {max})"),
                    }
                } else {
                    ConfigError {
                        key: key.to_string(),
                        message: format!("must be at most {max_key} ({max}) (got {value})"),
                    }
                };
                r.errors.push(error);
            }
        }
        let hash_queue_budget = r.parse(
            "HELLOJOHN_HASH_QUEUE_BUDGET",
            Duration::from_millis(250),
            positive_duration,
        );
        let hash_arena_idle_release = r.parse(
            "HELLOJOHN_HASH_ARENA_IDLE_RELEASE",
            Duration::from_secs(30),
            duration,
        );
        let access_token_ttl = r.parse(
            "HELLOJOHN_ACCESS_TOKEN_TTL",
            Duration::from_secs(900),
            positive_duration,
        );
        let refresh_token_ttl = r.parse(
            "HELLOJOHN_REFRESH_TOKEN_TTL",
            Duration::from_secs(720 * 3600),
            positive_duration,
        );
        let session_ttl = r.parse(
            "HELLOJOHN_SESSION_TTL",
            Duration::from_secs(24 * 3600),
            positive_duration,
        );
        let key_publish_delay = r.parse(
            "HELLOJOHN_KEY_PUBLISH_DELAY",
            Duration::from_secs(600),
            key_publish_delay,
        );
        let cors_origins = r.parse("HELLOJOHN_CORS_ORIGINS", Vec::new(), |v| {
            Ok(v.split(',')
                .map(|o| o.trim().trim_end_matches('/').to_string())
                .filter(|o| !o.is_empty())
                .collect())
        });
        let ui_base_url = r.parse("HELLOJOHN_UI_BASE_URL", None, |v| {
            if v.is_empty() {
                Ok(None)
            } else if v.starts_with("http://") || v.starts_with("https://") {
                Ok(Some(v.trim_end_matches('/').to_string()))
            } else {
                Err("must be an http:// or https:// URL".to_string())
            }
        });
        let trusted_proxies = r.parse("HELLOJOHN_TRUSTED_PROXIES", Vec::new(), cidrs);
        let client_ip_header = r.parse(
            "HELLOJOHN_CLIENT_IP_HEADER",
            ClientIpHeader::XForwardedFor,
            ClientIpHeader::parse,
        );
        let metrics_allow = r.parse("HELLOJOHN_METRICS_ALLOW", Vec::new(), metrics_allow);
        let rate_limit_enabled = r.parse("HELLOJOHN_RATE_LIMIT_ENABLED", true, boolean);
        let default_rate = Rate {
            count: 1,
            period: Duration::from_secs(1),
        };
        let rate_limit_sign_in = r.parse("HELLOJOHN_RATE_LIMIT_SIGN_IN", default_rate, rate);
        let rate_limit_sign_up = r.parse("HELLOJOHN_RATE_LIMIT_SIGN_UP", default_rate, rate);
        let rate_limit_token = r.parse("HELLOJOHN_RATE_LIMIT_TOKEN", default_rate, rate);
        let rate_limit_failed_sign_in =
            r.parse("HELLOJOHN_RATE_LIMIT_FAILED_SIGN_IN", default_rate, rate);
        let rate_limit_logout = r.parse("HELLOJOHN_RATE_LIMIT_LOGOUT", default_rate, rate);
        let rate_limit_admin = r.parse("HELLOJOHN_RATE_LIMIT_ADMIN", default_rate, rate);
        let webhook_timeout = r.parse(
            "HELLOJOHN_WEBHOOK_TIMEOUT",
            Duration::from_secs(10),
            positive_duration,
        );
        let webhook_max_attempts = r.parse("HELLOJOHN_WEBHOOK_MAX_ATTEMPTS", 8, positive::<u32>);
        let webhook_poll_interval = r.parse(
            "HELLOJOHN_WEBHOOK_POLL_INTERVAL",
            Duration::from_secs(1),
            positive_duration,
        );
        let webhook_allow_private = r.parse("HELLOJOHN_WEBHOOK_ALLOW_PRIVATE", false, boolean);
        let webhook_retention = r.parse(
            "HELLOJOHN_WEBHOOK_RETENTION",
            Duration::from_secs(7 * 24 * 3600),
            positive_duration,
        );
        let audit_retention = r.parse("HELLOJOHN_AUDIT_RETENTION", None, |v| {
            duration(v).map(|d| (!d.is_zero()).then_some(d))
        });
        let lifecycle = mail::read(&mut r);
        let log = r.parse("HELLOJOHN_LOG", "info".to_string(), |v| {
            tracing_subscriber::EnvFilter::try_new(v)
                .map(|_| v.to_string())
                .map_err(|_| {
                    "must be a level (error, warn, info, debug, trace) or a tracing filter"
                        .to_string()
                })
        });
        let log_format = r.parse("HELLOJOHN_LOG_FORMAT", LogFormat::Text, |v| match v {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("must be text or json".to_string()),
        });
        let shutdown_delay = r.parse("HELLOJOHN_SHUTDOWN_DELAY", Duration::ZERO, duration);
        let drain_timeout = r.parse("HELLOJOHN_DRAIN_TIMEOUT", Duration::from_secs(30), duration);

        let mut unknown: Vec<String> = source
            .keys()
            .into_iter()
            .filter(|k| !SETTINGS.iter().any(|s| s.env == k))
            .collect();
        unknown.sort();
        unknown.dedup();
        let unknown_settings: Vec<ConfigError> = unknown
            .into_iter()
            .map(|key| {
                let hint = closest(&key)
                    .map(|k| format!("; did you mean {k}?"))
                    .unwrap_or_default();
                ConfigError {
                    key,
                    message: format!("unknown setting, ignored{hint}"),
                }
            })
            .collect();
        if !r.errors.is_empty() {
            return Err(ConfigErrors(r.errors, unknown_settings));
        }
        let base_url = if base_url.is_empty() {
            format!("http://localhost:{}", listen.port())
        } else {
            base_url
        };
        Ok(Config {
            listen,
            shards,
            workers,
            data_dir,
            base_url,
            master_key,
            database_url,
            redis_url,
            redis_key_prefix: "hj:".to_string(),
            db_max_open_conns,
            db_max_idle_conns,
            db_conn_max_lifetime,
            read_timeout,
            write_timeout,
            idle_timeout,
            max_body_bytes,
            argon2_memory_kib,
            argon2_iterations,
            argon2_parallelism,
            argon2_max_memory_kib,
            argon2_max_iterations,
            argon2_max_parallelism,
            hash_queue_budget,
            hash_arena_idle_release,
            access_token_ttl,
            refresh_token_ttl,
            session_ttl,
            key_publish_delay,
            key_reload_interval: KEY_RELOAD_INTERVAL,
            cors_origins,
            ui_base_url,
            trusted_proxies,
            client_ip_header,
            metrics_allow,
            rate_limit_enabled,
            rate_limit_sign_in,
            rate_limit_sign_up,
            rate_limit_token,
            rate_limit_failed_sign_in,
            rate_limit_logout,
            rate_limit_admin,
            webhook_timeout,
            webhook_max_attempts,
            webhook_poll_interval,
            webhook_allow_private,
            webhook_retention,
            audit_retention,
            webhook_backoff_base: Duration::from_secs(5),
            webhook_backoff_max: Duration::from_secs(3600),
            webhook_lease: None,
            smtp: lifecycle.smtp,
            smtp_timeout: lifecycle.smtp_timeout,
            mail_max_attempts: lifecycle.mail_max_attempts,
            email_templates_dir: lifecycle.email_templates_dir,
            email_verify_ttl: lifecycle.email_verify_ttl,
            password_reset_ttl: lifecycle.password_reset_ttl,
            mfa_issuer: lifecycle.mfa_issuer,
            mfa_totp_window: lifecycle.mfa_totp_window,
            mfa_challenge_ttl: lifecycle.mfa_challenge_ttl,
            mfa_remember_device_ttl: lifecycle.mfa_remember_device_ttl,
            reauth_max_age: lifecycle.reauth_max_age,
            test_panic_header: false,
            log,
            log_format,
            shutdown_delay,
            drain_timeout,
            unknown_settings,
        })
    }

    /// Warns once about each unknown `HELLOJOHN_*` key (a typo, or a setting of a newer
    /// release that a rollback left in the environment) and counts it in
    /// `hellojohn_unknown_values_total{kind="setting"}`. Called when the server starts, after
    /// logging is set up. Only the key is logged, never its value (it may be a secret).
    pub fn warn_unknown_settings(&self) {
        for e in &self.unknown_settings {
            if store::tolerance::note("setting", &e.key) {
                tracing::warn!(key = %e.key, "{}", e.message);
            }
        }
    }

    /// Defaults for tests: loopback, port 0, one shard, cheap Argon2.
    pub fn for_tests(data_dir: PathBuf) -> Config {
        let mut map = BTreeMap::new();
        map.insert("HELLOJOHN_LISTEN".to_string(), "127.0.0.1:0".to_string());
        map.insert("HELLOJOHN_SHARDS".to_string(), "1".to_string());
        map.insert("HELLOJOHN_WORKERS".to_string(), "1".to_string());
        map.insert("HELLOJOHN_ARGON2_MEMORY_KIB".to_string(), "64".to_string());
        map.insert("HELLOJOHN_ARGON2_ITERATIONS".to_string(), "1".to_string());
        map.insert(
            "HELLOJOHN_RATE_LIMIT_ENABLED".to_string(),
            "false".to_string(),
        );
        map.insert(
            "HELLOJOHN_DATA_DIR".to_string(),
            data_dir.display().to_string(),
        );
        match Config::from_source(&map) {
            Ok(c) => c,
            Err(e) => unreachable!("test defaults are valid: {e}"),
        }
    }
}
