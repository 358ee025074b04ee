//! Reading values: the [`Reader`] that applies defaults and collects every error, and the
//! parsers of each kind of value (numbers, durations, rates, CIDRs, URLs).

use super::*;

/// Parses with the setting's default when unset, recording an error when the value is bad.
pub(super) struct Reader<'a> {
    pub(super) source: &'a dyn Source,
    pub(super) errors: Vec<ConfigError>,
}

impl Reader<'_> {
    pub(super) fn raw(&self, key: &str) -> Option<String> {
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

    pub(super) fn parse<T>(
        &mut self,
        key: &str,
        fallback: T,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> T {
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

pub(super) fn positive<T: std::str::FromStr + PartialOrd + Default>(v: &str) -> Result<T, String> {
    match v.parse::<T>() {
        Ok(n) if n > T::default() => Ok(n),
        _ => Err("must be a positive integer".to_string()),
    }
}

pub(super) fn duration(v: &str) -> Result<Duration, String> {
    parse_duration(v)
}

pub(super) fn positive_duration(v: &str) -> Result<Duration, String> {
    match parse_duration(v)? {
        d if d.is_zero() => Err("must be longer than zero".to_string()),
        d => Ok(d),
    }
}

/// How long a verifier may cache the JWKS: the `max-age` of `/.well-known/jwks.json`.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(300);

/// How often each instance reloads its signing keys from the store, to pick up rotations made
/// elsewhere (`hj keys rotate`) and drop expired keys. A constant, not a setting: one small
/// read per instance every 30 s costs nothing, and `HELLOJOHN_KEY_PUBLISH_DELAY` is checked
/// against it.
pub const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(30);

/// `HELLOJOHN_KEY_PUBLISH_DELAY`: every instance must have reloaded a new key and every
/// verifier's cached JWKS must have expired before the key signs.
pub(super) fn key_publish_delay(v: &str) -> Result<Duration, String> {
    let min = JWKS_MAX_AGE + KEY_RELOAD_INTERVAL;
    match parse_duration(v)? {
        d if d < min => Err(format!(
            "must be at least {}s (the JWKS cache max-age, {}s, plus the key reload interval, \
             {}s), so that verifiers have a new key before it signs",
            min.as_secs(),
            JWKS_MAX_AGE.as_secs(),
            KEY_RELOAD_INTERVAL.as_secs()
        )),
        d => Ok(d),
    }
}

pub(super) fn argon2_memory(v: &str) -> Result<u32, String> {
    match v.parse::<u32>() {
        Ok(n) if (8..=4 * 1024 * 1024).contains(&n) => Ok(n),
        _ => Err("must be between 8 and 4194304 KiB".to_string()),
    }
}

pub(super) fn argon2_lanes(v: &str) -> Result<u32, String> {
    match v.parse::<u32>() {
        Ok(n) if (1..=255).contains(&n) => Ok(n),
        _ => Err("must be between 1 and 255".to_string()),
    }
}

pub(super) fn boolean(v: &str) -> Result<bool, String> {
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

pub(super) fn rate(v: &str) -> Result<Rate, String> {
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

/// `HELLOJOHN_METRICS_ALLOW`: CIDRs, or `none` (no address may read `/metrics`).
pub(super) fn metrics_allow(v: &str) -> Result<Vec<Cidr>, String> {
    if v.trim().eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    cidrs(v)
}

pub(super) fn cidrs(v: &str) -> Result<Vec<Cidr>, String> {
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

pub(super) fn url_with_scheme(
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
