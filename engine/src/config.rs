//! Configuration: every setting, read from `HELLOJOHN_*` variables through [`Source`].
//!
//! The table [`SETTINGS`] is the single list of settings: parsing, unknown-key detection,
//! `hj serve --help` and the documentation table are all made from it. Every bad value and
//! unknown key is collected, so an operator sees all of them at once.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub use crate::client_ip::ClientIpHeader;

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

pub const PREFIX: &str = "HELLOJOHN_";

/// One setting: its variable, its `hj serve` flag, its default (as text) and what it does.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub env: &'static str,
    pub flag: &'static str,
    pub default: &'static str,
    pub help: &'static str,
    pub secret: bool,
}

const fn s(
    env: &'static str,
    flag: &'static str,
    default: &'static str,
    help: &'static str,
) -> Setting {
    Setting {
        env,
        flag,
        default,
        help,
        secret: false,
    }
}

const fn secret(env: &'static str, flag: &'static str, help: &'static str) -> Setting {
    Setting {
        env,
        flag,
        default: "",
        help,
        secret: true,
    }
}

/// Every setting the engine reads. Defaults written "" mean "unset".
pub const SETTINGS: &[Setting] = &[
    s("HELLOJOHN_LISTEN", "listen", "0.0.0.0:8080", "Address to listen on (host:port)."),
    s("HELLOJOHN_SHARDS", "shards", "all cores", "Event loops: one pinned runtime and SO_REUSEPORT listener per shard."),
    s("HELLOJOHN_WORKERS", "workers", "all cores", "Password-hashing threads (Argon2id runs only there)."),
    s("HELLOJOHN_DATA_DIR", "data-dir", "./data", "Directory of the embedded store and the generated dev master key."),
    s("HELLOJOHN_BASE_URL", "base-url", "http://localhost:<port>", "Public URL of this server: the token issuer."),
    secret("HELLOJOHN_MASTER_KEY", "master-key", "Key that encrypts signing keys at rest (64 hex chars or 32 bytes base64). Generated into the data dir when unset on the embedded store."),
    secret("HELLOJOHN_DATABASE_URL", "database-url", "postgresql://user:pass@host:5432/db?sslmode=require. Unset: the embedded SQLite store in the data dir."),
    secret("HELLOJOHN_REDIS_URL", "redis-url", "redis://, rediss:// or redis+cluster://n1:6379,n2:6379/0. Optional; required for several instances."),
    s("HELLOJOHN_DB_MAX_OPEN_CONNS", "db-max-open-conns", "25", "Database connections per instance (divided across shards)."),
    s("HELLOJOHN_DB_MAX_IDLE_CONNS", "db-max-idle-conns", "10", "Idle database connections kept per instance."),
    s("HELLOJOHN_DB_CONN_MAX_LIFETIME", "db-conn-max-lifetime", "5m", "A database connection is closed after this age."),
    s("HELLOJOHN_READ_TIMEOUT", "read-timeout", "10s", "Time allowed to read a whole request (headers and body)."),
    s("HELLOJOHN_WRITE_TIMEOUT", "write-timeout", "30s", "Time allowed to handle a request and write its response."),
    s("HELLOJOHN_IDLE_TIMEOUT", "idle-timeout", "120s", "An idle keep-alive connection is closed after this."),
    s("HELLOJOHN_MAX_BODY_BYTES", "max-body-bytes", "65536", "Largest accepted request body; larger ones get 413."),
    s("HELLOJOHN_ARGON2_MEMORY_KIB", "argon2-memory-kib", "19456", "Argon2id memory cost for new password hashes (KiB)."),
    s("HELLOJOHN_ARGON2_ITERATIONS", "argon2-iterations", "2", "Argon2id time cost for new password hashes."),
    s("HELLOJOHN_ARGON2_PARALLELISM", "argon2-parallelism", "1", "Argon2id lanes for new password hashes."),
    s("HELLOJOHN_ARGON2_MAX_MEMORY_KIB", "argon2-max-memory-kib", "262144", "Largest Argon2 memory (KiB) a stored hash may ask for; beyond it the hash never verifies."),
    s("HELLOJOHN_ARGON2_MAX_ITERATIONS", "argon2-max-iterations", "10", "Largest Argon2 time cost a stored hash may ask for; beyond it the hash never verifies."),
    s("HELLOJOHN_ARGON2_MAX_PARALLELISM", "argon2-max-parallelism", "8", "Largest Argon2 lane count a stored hash may ask for; beyond it the hash never verifies."),
    s("HELLOJOHN_HASH_QUEUE_BUDGET", "hash-queue-budget", "250ms", "Longest expected wait for a hashing thread; beyond it sign-ins get 503 OVERLOADED."),
    s("HELLOJOHN_HASH_ARENA_IDLE_RELEASE", "hash-arena-idle-release", "30s", "A hashing thread idle this long gives its Argon2 memory back to the OS (0s: never)."),
    s("HELLOJOHN_ACCESS_TOKEN_TTL", "access-token-ttl", "15m", "Access token lifetime."),
    s("HELLOJOHN_REFRESH_TOKEN_TTL", "refresh-token-ttl", "720h", "Refresh token lifetime."),
    s("HELLOJOHN_SESSION_TTL", "session-ttl", "24h", "Cookie session lifetime."),
    s("HELLOJOHN_CORS_ORIGINS", "cors-origins", "", "Comma-separated origins allowed to call the API with credentials."),
    s("HELLOJOHN_TRUSTED_PROXIES", "trusted-proxies", "", "Comma-separated CIDRs whose client-IP header (HELLOJOHN_CLIENT_IP_HEADER) is believed."),
    s("HELLOJOHN_CLIENT_IP_HEADER", "client-ip-header", "x-forwarded-for", "Header a trusted proxy names the client in: x-forwarded-for (right-most untrusted hop) or x-real-ip. The other is ignored."),
    s("HELLOJOHN_RATE_LIMIT_ENABLED", "rate-limit-enabled", "true", "Turns rate limiting on or off."),
    s("HELLOJOHN_RATE_LIMIT_SIGN_IN", "rate-limit-sign-in", "20/1m", "Sign-ins and session logins per client IP (COUNT/PERIOD)."),
    s("HELLOJOHN_RATE_LIMIT_SIGN_UP", "rate-limit-sign-up", "10/1m", "Sign-ups per client IP (COUNT/PERIOD)."),
    s("HELLOJOHN_RATE_LIMIT_TOKEN", "rate-limit-token", "60/1m", "Refresh and token requests per client IP (COUNT/PERIOD)."),
    s("HELLOJOHN_RATE_LIMIT_FAILED_SIGN_IN", "rate-limit-failed-sign-in", "5/15m", "Failed sign-ins per account (COUNT/PERIOD)."),
    s("HELLOJOHN_RATE_LIMIT_LOGOUT", "rate-limit-logout", "30/1m", "Sign-outs (logout, logout-all) per client IP (COUNT/PERIOD)."),
    s("HELLOJOHN_WEBHOOK_TIMEOUT", "webhook-timeout", "10s", "Timeout of one webhook delivery attempt."),
    s("HELLOJOHN_WEBHOOK_MAX_ATTEMPTS", "webhook-max-attempts", "8", "Attempts before a delivery is exhausted."),
    s("HELLOJOHN_WEBHOOK_POLL_INTERVAL", "webhook-poll-interval", "1s", "How often each instance looks for due deliveries."),
    s("HELLOJOHN_WEBHOOK_ALLOW_PRIVATE", "webhook-allow-private", "false", "Allow deliveries to loopback, private, link-local and other non-global addresses."),
    s("HELLOJOHN_WEBHOOK_RETENTION", "webhook-retention", "168h", "How long webhook events whose deliveries are finished (delivered or exhausted) are kept."),
    s("HELLOJOHN_LOG", "log", "info", "Log level or filter (error, warn, info, debug, trace, or a tracing filter)."),
    s("HELLOJOHN_LOG_FORMAT", "log-format", "text", "Log format: text or json."),
    s("HELLOJOHN_SHUTDOWN_DELAY", "shutdown-delay", "0s", "After SIGTERM, /health answers 503 this long before listeners close (load-balancer deregistration)."),
    s("HELLOJOHN_DRAIN_TIMEOUT", "drain-timeout", "30s", "Longest wait for in-flight requests after listeners close."),
];

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
    pub cors_origins: Vec<String>,
    pub trusted_proxies: Vec<Cidr>,
    pub client_ip_header: ClientIpHeader,
    pub rate_limit_enabled: bool,
    pub rate_limit_sign_in: Rate,
    pub rate_limit_sign_up: Rate,
    pub rate_limit_token: Rate,
    pub rate_limit_failed_sign_in: Rate,
    pub rate_limit_logout: Rate,
    pub webhook_timeout: Duration,
    pub webhook_max_attempts: u32,
    pub webhook_poll_interval: Duration,
    pub webhook_allow_private: bool,
    /// How long events whose deliveries are all finished are kept before the workers delete
    /// them (with their deliveries).
    pub webhook_retention: Duration,
    /// First retry delay of a failed webhook delivery (`5s`); each further retry doubles it,
    /// up to `webhook_backoff_max` (`1h`), with ±20 % jitter. Not a `HELLOJOHN_*` setting:
    /// tests shorten it.
    pub webhook_backoff_base: Duration,
    pub webhook_backoff_max: Duration,
    /// How long a worker holds a claimed delivery; `None`: twice `webhook_timeout` plus 5 s.
    /// Not a `HELLOJOHN_*` setting: tests shorten it.
    pub webhook_lease: Option<Duration>,
    /// Tests only (not a `HELLOJOHN_*` setting): a request carrying `x-hj-test-panic` makes
    /// its handler panic, to show that a panic costs one request (500) and nothing else.
    pub test_panic_header: bool,
    pub log: String,
    pub log_format: LogFormat,
    pub shutdown_delay: Duration,
    pub drain_timeout: Duration,
}

/// One problem with one setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

/// All problems found, in setting order, unknown keys last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  {}: {}", e.key, e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Parses with the setting's default when unset, recording an error when the value is bad.
struct Reader<'a> {
    source: &'a dyn Source,
    errors: Vec<ConfigError>,
}

impl Reader<'_> {
    fn raw(&self, key: &str) -> Option<String> {
        self.source
            .get(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn default_of(key: &str) -> &'static str {
        SETTINGS
            .iter()
            .find(|s| s.env == key)
            .map(|s| s.default)
            .unwrap_or("")
    }

    fn parse<T>(&mut self, key: &str, fallback: T, f: impl Fn(&str) -> Result<T, String>) -> T {
        let text = match self.raw(key) {
            Some(v) => v,
            None => match f(Self::default_of(key)) {
                Ok(v) => return v,
                Err(_) => return fallback,
            },
        };
        match f(&text) {
            Ok(v) => v,
            Err(message) => {
                self.errors.push(ConfigError {
                    key: key.to_string(),
                    message: format!("{message} (got {})", self.shown(key, &text)),
                });
                fallback
            }
        }
    }

    fn shown(&self, key: &str, text: &str) -> String {
        if SETTINGS.iter().any(|s| s.env == key && s.secret) {
            "<redacted>".to_string()
        } else {
            format!("{text:?}")
        }
    }
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(v: &str) -> Result<T, String> {
    match v.parse::<T>() {
        Ok(n) if n > T::default() => Ok(n),
        _ => Err("must be a positive integer".to_string()),
    }
}

fn duration(v: &str) -> Result<Duration, String> {
    parse_duration(v)
}

fn positive_duration(v: &str) -> Result<Duration, String> {
    match parse_duration(v)? {
        d if d.is_zero() => Err("must be longer than zero".to_string()),
        d => Ok(d),
    }
}

fn argon2_memory(v: &str) -> Result<u32, String> {
    match v.parse::<u32>() {
        Ok(n) if (8..=4 * 1024 * 1024).contains(&n) => Ok(n),
        _ => Err("must be between 8 and 4194304 KiB".to_string()),
    }
}

fn argon2_lanes(v: &str) -> Result<u32, String> {
    match v.parse::<u32>() {
        Ok(n) if (1..=255).contains(&n) => Ok(n),
        _ => Err("must be between 1 and 255".to_string()),
    }
}

fn boolean(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("must be true or false".to_string()),
    }
}

/// Parses a Go-style duration: a sequence of decimal numbers with units `ns`, `us`, `µs`, `ms`,
/// `s`, `m`, `h`, such as `300ms`, `1h30m` or `1.5s`. A bare `0` is zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || "not a duration like 30s, 5m or 1h30m".to_string();
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    if t.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    // Every duration is added to a clock somewhere (`Instant::now() + timeout`, `now + ttl`),
    // which panics or wraps far beyond any sensible value: such settings are refused here.
    if total > MAX_DURATION.as_secs_f64() {
        return Err(format!(
            "at most {}h (100 years)",
            MAX_DURATION.as_secs() / 3600
        ));
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// The longest duration any setting takes: 100 years.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

fn rate(v: &str) -> Result<Rate, String> {
    let bad = || "must be COUNT/PERIOD such as 20/1m".to_string();
    let (count, period) = v.split_once('/').ok_or_else(bad)?;
    let count: u32 = count.trim().parse().map_err(|_| bad())?;
    let period = period.trim();
    // `20/m` means one minute, as operators often write.
    let period = if period.starts_with(|c: char| c.is_ascii_digit()) {
        parse_duration(period)?
    } else {
        parse_duration(&format!("1{period}"))?
    };
    if count == 0 || period.is_zero() {
        return Err(bad());
    }
    Ok(Rate { count, period })
}

fn cidrs(v: &str) -> Result<Vec<Cidr>, String> {
    v.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|part| {
            let (addr, prefix) = match part.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (part, None),
            };
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| format!("{part:?} is not an IP address or CIDR"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                Some(p) => p
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(|| format!("{part:?} has a bad prefix length"))?,
                None => max,
            };
            Ok(Cidr { addr, prefix })
        })
        .collect()
}

fn url_with_scheme(
    schemes: &'static [&'static str],
) -> impl Fn(&str) -> Result<Option<Secret>, String> {
    move |v: &str| {
        if v.is_empty() {
            return Ok(None);
        }
        if schemes.iter().any(|s| v.starts_with(&format!("{s}://"))) {
            Ok(Some(Secret(v.to_string())))
        } else {
            Err(format!(
                "must start with one of {}",
                schemes.join("://, ") + "://"
            ))
        }
    }
}

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

    /// The rate limits (`HELLOJOHN_RATE_LIMIT_*`).
    pub fn rates(&self) -> auth::limiter::Rates {
        auth::limiter::Rates {
            enabled: self.rate_limit_enabled,
            sign_in: self.rate_limit_sign_in,
            sign_up: self.rate_limit_sign_up,
            token: self.rate_limit_token,
            failed_sign_in: self.rate_limit_failed_sign_in,
            logout: self.rate_limit_logout,
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
        let cors_origins = r.parse("HELLOJOHN_CORS_ORIGINS", Vec::new(), |v| {
            Ok(v.split(',')
                .map(|o| o.trim().trim_end_matches('/').to_string())
                .filter(|o| !o.is_empty())
                .collect())
        });
        let trusted_proxies = r.parse("HELLOJOHN_TRUSTED_PROXIES", Vec::new(), cidrs);
        let client_ip_header = r.parse(
            "HELLOJOHN_CLIENT_IP_HEADER",
            ClientIpHeader::XForwardedFor,
            ClientIpHeader::parse,
        );
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
        for key in unknown {
            let hint = closest(&key)
                .map(|k| format!("; did you mean {k}?"))
                .unwrap_or_default();
            r.errors.push(ConfigError {
                key,
                message: format!("unknown setting{hint}"),
            });
        }
        if !r.errors.is_empty() {
            return Err(ConfigErrors(r.errors));
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
            cors_origins,
            trusted_proxies,
            client_ip_header,
            rate_limit_enabled,
            rate_limit_sign_in,
            rate_limit_sign_up,
            rate_limit_token,
            rate_limit_failed_sign_in,
            rate_limit_logout,
            webhook_timeout,
            webhook_max_attempts,
            webhook_poll_interval,
            webhook_allow_private,
            webhook_retention,
            webhook_backoff_base: Duration::from_secs(5),
            webhook_backoff_max: Duration::from_secs(3600),
            webhook_lease: None,
            test_panic_header: false,
            log,
            log_format,
            shutdown_delay,
            drain_timeout,
        })
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

/// The settings table of `docs/configuration.md`, made from [`SETTINGS`] (a test keeps the
/// document in step with this function).
pub fn markdown_table() -> String {
    let mut out =
        String::from("| Variable | `hj serve` flag | Default | Meaning |\n|---|---|---|---|\n");
    for s in SETTINGS {
        let default = if s.default.is_empty() {
            "unset".to_string()
        } else {
            format!("`{}`", s.default)
        };
        out.push_str(&format!(
            "| `{}` | `--{}` | {} | {} |\n",
            s.env, s.flag, default, s.help
        ));
    }
    out
}

/// The known key nearest to a misspelt one, for the error message.
fn closest(key: &str) -> Option<&'static str> {
    SETTINGS
        .iter()
        .map(|s| (edit_distance(key, s.env), s.env))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
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
    fn every_bad_value_and_unknown_key_reported_together() {
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
                "HELLOJOHN_WORKRES",
            ]
        );
        let text = errs.to_string();
        assert!(text.contains("did you mean HELLOJOHN_WORKERS?"), "{text}");
        assert!(
            !text.contains("hunter2"),
            "secrets are never echoed: {text}"
        );
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
    fn client_ip_header_setting() {
        let c = Config::from_source(&map(&[])).unwrap();
        assert_eq!(c.client_ip_header, ClientIpHeader::XForwardedFor);
        let c = Config::from_source(&map(&[("HELLOJOHN_CLIENT_IP_HEADER", "X-Real-IP")])).unwrap();
        assert_eq!(c.client_ip_header, ClientIpHeader::XRealIp);
        let c = Config::from_source(&map(&[("HELLOJOHN_CLIENT_IP_HEADER", "x-forwarded-for")]))
            .unwrap();
        assert_eq!(c.client_ip_header, ClientIpHeader::XForwardedFor);
        for bad in ["forwarded", "x-forwarded-for, x-real-ip", "true"] {
            let errs =
                Config::from_source(&map(&[("HELLOJOHN_CLIENT_IP_HEADER", bad)])).unwrap_err();
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
        let errs =
            Config::from_source(&map(&[("HELLOJOHN_ARGON2_MAX_MEMORY_KIB", "10")])).unwrap_err();
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
        let errs = Config::from_source(&map(&[("HELLOJOHN_READ_TIMEOUT", "3000000000000000h")]))
            .unwrap_err();
        assert_eq!(errs.0[0].key, "HELLOJOHN_READ_TIMEOUT");
    }

    #[test]
    fn configuration_doc_lists_every_setting() {
        let doc = include_str!("../../docs/configuration.md");
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
}
