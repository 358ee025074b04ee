//! The body of a webhook delivery: one event.

use serde::Serialize;

/// A HelloJohn event as sent to webhook endpoints (`POST`, `application/json`). Absent values
/// are `null`, never left out, so every event has the same fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookEvent {
    pub id: String,
    pub tenant_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub actor_id: Option<String>,
    pub actor_type: Option<String>,
    pub target_id: Option<String>,
    pub target_type: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub metadata: serde_json::Value,
    /// `success` or `failure`.
    pub result: String,
    /// RFC 3339, UTC, whole seconds (`2024-05-01T12:00:00Z`).
    pub created_at: String,
}

/// Unix seconds as RFC 3339 in UTC (`1970-01-01T00:00:00Z`), proleptic Gregorian calendar.
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(1_709_164_799), "2024-02-28T23:59:59Z");
        assert_eq!(rfc3339(4_102_444_800), "2100-01-01T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn every_field_is_present() {
        let e = WebhookEvent {
            id: "e".into(),
            tenant_id: "t".into(),
            event_type: "user.login".into(),
            actor_id: None,
            actor_type: None,
            target_id: None,
            target_type: None,
            ip_address: None,
            user_agent: None,
            metadata: serde_json::json!({}),
            result: "success".into(),
            created_at: rfc3339(0),
        };
        let v: serde_json::Value = serde_json::from_slice(&crate::json::to_vec(&e)).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 12);
        assert_eq!(v["type"], "user.login");
        assert!(v["actor_id"].is_null());
    }
}
