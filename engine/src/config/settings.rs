//! [`SETTINGS`]: the one list of settings (variable, flag, default, meaning), and what is made
//! from it besides parsing: the documentation table and the nearest key to a misspelt one.

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
    s("HELLOJOHN_KEY_PUBLISH_DELAY", "key-publish-delay", "10m", "How long `hj keys rotate` publishes a new signing key in the JWKS before it signs (at least 5m30s: the JWKS cache max-age plus the key reload interval)."),
    s("HELLOJOHN_CORS_ORIGINS", "cors-origins", "", "Comma-separated origins allowed to call the API with credentials."),
    s("HELLOJOHN_UI_BASE_URL", "ui-base-url", "", "External sign-in UI: /oauth2/authorize sends browsers to <url>/login?return_to=... instead of the hosted page."),
    s("HELLOJOHN_TRUSTED_PROXIES", "trusted-proxies", "", "Comma-separated CIDRs whose client-IP header (HELLOJOHN_CLIENT_IP_HEADER) is believed."),
    s("HELLOJOHN_CLIENT_IP_HEADER", "client-ip-header", "x-forwarded-for", "Header a trusted proxy names the client in: x-forwarded-for (right-most untrusted hop) or x-real-ip. The other is ignored."),
    s("HELLOJOHN_METRICS_ALLOW", "metrics-allow", "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7", "Comma-separated CIDRs that may read /metrics (the client address, as HELLOJOHN_TRUSTED_PROXIES decides it); others get 403. none: nobody."),
    s("HELLOJOHN_RATE_LIMIT_ENABLED", "rate-limit-enabled", "true", "Turns rate limiting on or off."),
    s("HELLOJOHN_RATE_LIMIT_SIGN_IN", "rate-limit-sign-in", "20/1m", "Sign-ins and session logins per client IP (COUNT/PERIOD)."),
    s("HELLOJOHN_RATE_LIMIT_SIGN_UP", "rate-limit-sign-up", "10/1m", "Sign-ups per client IP (COUNT/PERIOD)."),
    s("HELLOJOHN_RATE_LIMIT_TOKEN", "rate-limit-token", "60/1m", "Refresh and token requests per client IP (COUNT/PERIOD)."),
    s("HELLOJOHN_RATE_LIMIT_FAILED_SIGN_IN", "rate-limit-failed-sign-in", "5/15m", "Failed sign-ins per account (COUNT/PERIOD)."),
    s("HELLOJOHN_RATE_LIMIT_LOGOUT", "rate-limit-logout", "30/1m", "Sign-outs (logout, logout-all) per client IP (COUNT/PERIOD)."),
    s("HELLOJOHN_RATE_LIMIT_ADMIN", "rate-limit-admin", "600/1m", "Admin API requests per client IP, and again per API key or admin (COUNT/PERIOD)."),
    s("HELLOJOHN_WEBHOOK_TIMEOUT", "webhook-timeout", "10s", "Timeout of one webhook delivery attempt."),
    s("HELLOJOHN_WEBHOOK_MAX_ATTEMPTS", "webhook-max-attempts", "8", "Attempts before a delivery is exhausted."),
    s("HELLOJOHN_WEBHOOK_POLL_INTERVAL", "webhook-poll-interval", "1s", "How often each instance looks for due deliveries."),
    s("HELLOJOHN_WEBHOOK_ALLOW_PRIVATE", "webhook-allow-private", "false", "Allow deliveries to loopback, private, link-local and other non-global addresses."),
    s("HELLOJOHN_AUDIT_RETENTION", "audit-retention", "0", "How long audit-log entries are kept (0: for ever); older ones are purged every few minutes."),
    s("HELLOJOHN_WEBHOOK_RETENTION", "webhook-retention", "168h", "How long webhook events whose deliveries are finished (delivered or exhausted) are kept."),
    s("HELLOJOHN_SMTP_HOST", "smtp-host", "", "SMTP relay of account mail (verification, password reset). Unset: mail is disabled and stays in the outbox."),
    s("HELLOJOHN_SMTP_PORT", "smtp-port", "587", "SMTP relay port (usually 587 with starttls, 465 with tls)."),
    s("HELLOJOHN_SMTP_USERNAME", "smtp-username", "", "SMTP AUTH user name (with HELLOJOHN_SMTP_PASSWORD)."),
    secret("HELLOJOHN_SMTP_PASSWORD", "smtp-password", "SMTP AUTH password (with HELLOJOHN_SMTP_USERNAME)."),
    s("HELLOJOHN_SMTP_FROM", "smtp-from", "", "Sender of account mail: an address (no-reply@example.com) or a name and an address. Required with HELLOJOHN_SMTP_HOST."),
    s("HELLOJOHN_SMTP_TLS", "smtp-tls", "starttls", "starttls (required STARTTLS), tls (implicit TLS) or none (only for a relay on loopback)."),
    s("HELLOJOHN_SMTP_TIMEOUT", "smtp-timeout", "10s", "Timeout of one SMTP send."),
    s("HELLOJOHN_MAIL_MAX_ATTEMPTS", "mail-max-attempts", "8", "Send attempts before a mail is exhausted (retried with the webhook backoff)."),
    s("HELLOJOHN_EMAIL_TEMPLATES_DIR", "email-templates-dir", "", "Directory of mail template overrides, read at start: KIND.subject, KIND.txt, KIND.html for every tenant, SLUG/KIND.* for one (KIND: verify_email, password_reset)."),
    s("HELLOJOHN_EMAIL_VERIFY_TTL", "email-verify-ttl", "48h", "Life of an email-verification link."),
    s("HELLOJOHN_PASSWORD_RESET_TTL", "password-reset-ttl", "1h", "Life of a password-reset link."),
    s("HELLOJOHN_MFA_ISSUER", "mfa-issuer", "HelloJohn", "Issuer shown by authenticator apps (otpauth URLs)."),
    s("HELLOJOHN_MFA_TOTP_WINDOW", "mfa-totp-window", "1", "TOTP time steps (30 s) accepted either side of now: 0 to 3."),
    s("HELLOJOHN_MFA_CHALLENGE_TTL", "mfa-challenge-ttl", "5m", "Time allowed to enter the second factor after the password."),
    s("HELLOJOHN_MFA_REMEMBER_DEVICE_TTL", "mfa-remember-device-ttl", "720h", "How long a remembered device skips the second factor."),
    s("HELLOJOHN_REAUTH_MAX_AGE", "reauth-max-age", "10m", "How recent a sign-in must be to enrol a second factor (older tokens get 401 REAUTHENTICATION_REQUIRED)."),
    s("HELLOJOHN_LOG", "log", "info", "Log level or filter (error, warn, info, debug, trace, or a tracing filter)."),
    s("HELLOJOHN_LOG_FORMAT", "log-format", "text", "Log format: text or json."),
    s("HELLOJOHN_SHUTDOWN_DELAY", "shutdown-delay", "0s", "After SIGTERM, /health answers 503 this long before listeners close (load-balancer deregistration)."),
    s("HELLOJOHN_DRAIN_TIMEOUT", "drain-timeout", "30s", "Longest wait for in-flight requests after listeners close."),
];

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
pub(super) fn closest(key: &str) -> Option<&'static str> {
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
