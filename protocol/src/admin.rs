//! The admin API's wire types (`/v2/admin/...`), with HelloJohn's field names. Times are
//! RFC 3339 strings in UTC; a secret (an API key's token, a client's secret) appears only in
//! the answer that made it.

use serde::{Deserialize, Serialize};

/// `POST /v2/admin/api-keys`.
#[derive(Debug, Default, Deserialize)]
pub struct CreateApiKeyRequest {
    pub name: Option<String>,
    pub scope: Option<String>,
    /// `24h`, `7d`, `30d`, ...; absent: the key never expires.
    pub expires_in: Option<String>,
}

/// An API key as listed (never its token).
#[derive(Debug, Serialize)]
pub struct ApiKeyInfo {
    pub id: String,
    pub name: String,
    pub key_prefix: String,
    pub scope: String,
    pub created_by: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    pub is_active: bool,
}

/// The answer to a creation: the token, this once.
#[derive(Serialize)]
pub struct CreatedApiKey {
    pub id: String,
    pub name: String,
    pub token: String,
    pub key_prefix: String,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub created_at: String,
}

impl std::fmt::Debug for CreatedApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApiKey")
            .field("id", &self.id)
            .field("token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// `POST /v2/admin/api-keys/{id}/rotate`.
#[derive(Debug, Serialize)]
pub struct RotatedApiKey {
    pub old_key_id: String,
    pub new_key: CreatedApiKey,
}

/// A list and its paging: `next_cursor` is absent on the last page.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// One audit-log entry.
#[derive(Debug, Serialize)]
pub struct AuditLogEntry {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    pub action: String,
    pub actor_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub metadata: serde_json::Value,
    pub result: String,
    pub created_at: String,
}

/// `POST .../audit-logs/purge`.
#[derive(Debug, Default, Deserialize)]
pub struct PurgeRequest {
    /// RFC 3339 time or Unix seconds: entries before it go.
    pub before: Option<TimeValue>,
    /// Or a duration (`90d`): entries older than it go.
    pub older_than: Option<String>,
}

/// A time given as RFC 3339 text or as Unix seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TimeValue {
    Unix(i64),
    Text(String),
}

impl TimeValue {
    /// The time, if RFC 3339 can write it ([`TIME_RANGE`]).
    pub fn unix(&self) -> Option<i64> {
        match self {
            TimeValue::Unix(n) => TIME_RANGE.contains(n).then_some(*n),
            TimeValue::Text(s) => parse_time(s),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PurgeResponse {
    pub deleted: u64,
    pub before: String,
}

/// A tenant.
#[derive(Debug, Serialize)]
pub struct TenantInfo {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub issuer_mode: String,
    pub created_at: String,
}

/// `POST /v2/admin/tenants` and `PUT|PATCH /v2/admin/tenants/{tenant_id}`.
#[derive(Debug, Default, Deserialize)]
pub struct TenantRequest {
    pub slug: Option<String>,
    pub name: Option<String>,
    /// `global` or `path`.
    pub issuer_mode: Option<String>,
    /// `POST` only: the new tenant's settings, as `PUT .../settings` takes them (HelloJohn's
    /// console sends them with the tenant). A change goes to `.../settings`, with its `If-Match`.
    #[serde(default, deserialize_with = "crate::admin_settings::object")]
    pub settings: Option<crate::admin_settings::SettingsPatch>,
}

/// A client (never its secret's hash).
#[derive(Debug, Serialize)]
pub struct ClientInfo {
    pub id: String,
    pub tenant_id: String,
    pub client_id: String,
    pub name: String,
    /// `public` or `confidential`.
    #[serde(rename = "type")]
    pub client_type: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_uris: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub scopes: Vec<String>,
    pub grant_types: Vec<String>,
    pub require_email_verification: bool,
    pub third_party: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token_ttl: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token_ttl: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_ttl: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_alg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token_alg: Option<String>,
    pub created_at: String,
    /// The secret of a confidential client, only in the answer that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// `POST .../clients` and `PUT|PATCH .../clients/{client_id}`. Absent fields: defaults on
/// creation, unchanged on update; `null` clears a nullable field.
#[derive(Debug, Default, Deserialize)]
pub struct ClientRequest {
    pub client_id: Option<String>,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub client_type: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_uris: Option<Vec<String>>,
    pub allowed_origins: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub require_email_verification: Option<bool>,
    pub third_party: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    pub access_token_ttl: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub refresh_token_ttl: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub id_token_ttl: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub id_token_alg: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub access_token_alg: Option<Option<String>>,
}

/// `POST .../clients/{client_id}/revoke-secret`.
#[derive(Serialize)]
pub struct RevokedSecret {
    pub client_id: String,
    pub new_secret: String,
    pub message: String,
}

impl std::fmt::Debug for RevokedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevokedSecret")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// `POST /v2/admin/login`.
#[derive(Default, Deserialize)]
pub struct AdminLoginRequest {
    pub email: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for AdminLoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminLoginRequest")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// `POST /v2/admin/login/mfa`.
#[derive(Debug, Default, Deserialize)]
pub struct AdminMfaRequest {
    pub mfa_token: Option<String>,
    pub code: Option<String>,
}

/// `POST /v2/admin/refresh` and `POST /v2/admin/logout`.
#[derive(Default, Deserialize)]
pub struct AdminRefreshRequest {
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for AdminRefreshRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminRefreshRequest { .. }")
    }
}

/// One tenant an admin may act on, and how.
#[derive(Debug, Serialize)]
pub struct TenantAccess {
    pub tenant_slug: String,
    /// `owner` (every route of the tenant).
    pub role: String,
}

/// An admin account (never its password hash or TOTP secret).
#[derive(Debug, Serialize)]
pub struct AdminInfo {
    pub id: String,
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `global` (scope `admin` or `readonly`) or `tenant` (scope `tenant:{slug}`).
    #[serde(rename = "type")]
    pub admin_type: String,
    pub scope: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tenant_access: Vec<TenantAccess>,
    /// `active` or `disabled`.
    pub status: String,
    pub mfa_enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// The answer to an admin's sign-in or refresh.
#[derive(Serialize)]
pub struct AdminTokensResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub refresh_token: String,
    pub admin: AdminInfo,
}

impl std::fmt::Debug for AdminTokensResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminTokensResponse")
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

/// `GET /v2/me` with an admin's token (what HelloJohn's console reads: `email`).
#[derive(Debug, Serialize)]
pub struct AdminMe {
    pub sub: String,
    pub aud: &'static str,
    #[serde(flatten)]
    pub admin: AdminInfo,
}

/// `GET /v2/admin/admins`.
#[derive(Debug, Serialize)]
pub struct AdminList {
    pub admins: Vec<AdminInfo>,
    pub total: usize,
}

/// `POST /v2/admin/admins` and `PUT|PATCH /v2/admin/admins/{id}`.
#[derive(Default, Deserialize)]
pub struct AdminRequest {
    pub email: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub name: Option<Option<String>>,
    pub scope: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for AdminRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminRequest")
            .field("email", &self.email)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// `POST /v2/admin/me/mfa/totp/verify` and `DELETE /v2/admin/me/mfa/totp`.
#[derive(Debug, Default, Deserialize)]
pub struct TotpCodeRequest {
    pub code: Option<String>,
}

/// A present field (`null` included) as `Some`, an absent one as `None` (with `default`).
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Longest `expires_in` or `older_than` accepted: 100 years.
pub const MAX_SPAN_SECS: i64 = 100 * 365 * 86_400;

/// Parses a span such as `90s`, `30m`, `24h`, `7d`, `2w` or `1d12h` into seconds (positive,
/// at most [`MAX_SPAN_SECS`]).
pub fn parse_span(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not a duration like 24h, 7d or 30d");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 12 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit = match rest.bytes().next() {
            Some(b's') => 1,
            Some(b'm') => 60,
            Some(b'h') => 3600,
            Some(b'd') => 86_400,
            Some(b'w') => 7 * 86_400,
            _ => return Err(bad()),
        };
        rest = &rest[1..];
        total = total.saturating_add(n.saturating_mul(unit));
    }
    if total <= 0 || total > MAX_SPAN_SECS {
        return Err(format!("{text:?} must be between 1s and 100 years"));
    }
    Ok(total)
}

/// The times RFC 3339 can write (years 0000 to 9999), as Unix seconds: the times the admin API
/// takes, so that each one it echoes ([`rfc3339`](crate::webhook::rfc3339)) is RFC 3339 again.
pub const TIME_RANGE: std::ops::RangeInclusive<i64> = -62_167_219_200..=253_402_300_799;

/// Parses RFC 3339 (`2026-12-07T10:00:00Z`, `...+02:00`, fractions ignored) or Unix seconds,
/// within [`TIME_RANGE`].
pub fn parse_time(text: &str) -> Option<i64> {
    parse_any_time(text).filter(|t| TIME_RANGE.contains(t))
}

fn parse_any_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<i64>() {
        return Some(secs);
    }
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || !matches!(rb[0], b'+' | b'-') || rb[3] != b':' {
                return None;
            }
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            let o = h * 3600 + m * 60;
            if rb[0] == b'+' {
                o
            } else {
                -o
            }
        }
    };
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + min * 60 + sec - offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::rfc3339;

    #[test]
    fn times_parse_back() {
        for t in [0, 951_782_400, 1_700_000_000, 1_709_164_799, 4_102_444_800] {
            assert_eq!(parse_time(&rfc3339(t)), Some(t));
        }
        assert_eq!(parse_time("2023-11-14T23:13:20+01:00"), Some(1_700_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20.123Z"), Some(1_700_000_000));
        assert_eq!(parse_time("1700000000"), Some(1_700_000_000));
        // Only what RFC 3339 can write back.
        for edge in [*TIME_RANGE.start(), *TIME_RANGE.end()] {
            assert_eq!(parse_time(&edge.to_string()), Some(edge));
            assert_eq!(parse_time(&rfc3339(edge)), Some(edge), "{}", rfc3339(edge));
        }
        assert_eq!(rfc3339(*TIME_RANGE.start()), "0000-01-01T00:00:00Z");
        assert_eq!(rfc3339(*TIME_RANGE.end()), "9999-12-31T23:59:59Z");
        for far in [
            TIME_RANGE.end() + 1,
            TIME_RANGE.start() - 1,
            i64::MAX,
            i64::MIN,
        ] {
            assert_eq!(parse_time(&far.to_string()), None, "{far}");
            assert_eq!(TimeValue::Unix(far).unix(), None, "{far}");
        }
        assert_eq!(parse_time("0000-01-01T00:00:00+00:01"), None);
        for bad in [
            "",
            "yesterday",
            "2023-13-01T00:00:00Z",
            "2023-11-14T22:13:20",
            "2023-11-14",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn spans_parse() {
        assert_eq!(parse_span("24h"), Ok(86_400));
        assert_eq!(parse_span("30d"), Ok(30 * 86_400));
        assert_eq!(parse_span("1d12h"), Ok(129_600));
        for bad in ["", "0d", "d", "7", "7y", "-1d", "1.5h", "99999999999999d"] {
            assert!(parse_span(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nullable_fields_tell_null_from_absent() {
        let r: ClientRequest = serde_json::from_str(r#"{"access_token_ttl":null}"#).unwrap();
        assert_eq!(r.access_token_ttl, Some(None));
        assert_eq!(r.refresh_token_ttl, None);
    }
}
