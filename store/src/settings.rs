//! A tenant's settings: what a tenant may set differently from the server's defaults, with
//! HelloJohn's names (camelCase, as its admin console reads and writes them). Stored as one
//! JSON object per tenant; a key this release does not know is dropped when read (a newer
//! release's setting: the tolerant reader), so nothing unknown (a secret, say) is ever echoed.

use serde::{Deserialize, Serialize};

/// Longest lifetime a tenant may set: ten years, in seconds.
pub const MAX_LIFETIME_SECS: i64 = 10 * 365 * 24 * 3600;
/// Longest password minimum a tenant may set (passwords are at most 128 characters).
pub const MAX_PASSWORD_MIN: u32 = 128;
/// Longest branding value (a URL or a colour) kept.
pub const MAX_BRANDING: usize = 2048;

/// What a settings change found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsUpdate {
    Updated(Box<crate::Tenant>),
    NotFound,
    /// The settings changed since the version the caller read (`If-Match`): nothing written.
    Stale {
        current: i64,
    },
}

/// A tenant's settings. Every field is optional: absent, the server's default applies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TenantSettings {
    /// Cookie sessions (`HELLOJOHN_SESSION_TTL` otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_lifetime_seconds: Option<i64>,
    /// Refresh tokens of clients that set none (`HELLOJOHN_REFRESH_TOKEN_TTL` otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token_lifetime_seconds: Option<i64>,
    /// Access tokens of clients that set none (`HELLOJOHN_ACCESS_TOKEN_TTL` otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token_lifetime_seconds: Option<i64>,
    /// The password policy.
    pub security: SecuritySettings,
    /// Branding shown by the hosted pages' consumers (not used by the server itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand_color: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secondary_color: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub favicon_url: Option<String>,
}

/// The password policy of a tenant (HelloJohn's `security` object). Absent rules are the
/// server's: at least 8 characters with an upper-case letter, a lower-case letter and a digit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SecuritySettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_min_length: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_uppercase: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_lowercase: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_numbers: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_special_chars: Option<bool>,
}

impl TenantSettings {
    /// The settings in a stored JSON object; whatever cannot be read is the default (and said
    /// once through `tolerance`).
    pub fn from_json(value: &serde_json::Value) -> TenantSettings {
        if !value.is_object() {
            crate::tolerance::unknown("tenant_settings", "not an object");
            return TenantSettings::default();
        }
        match serde_json::from_value::<TenantSettings>(value.clone()) {
            Ok(s) => s,
            Err(_) => {
                crate::tolerance::unknown("tenant_settings", "unreadable");
                TenantSettings::default()
            }
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|_| serde_json::Value::Object(Default::default()))
    }

    /// The first value out of bounds, as `(field, message)`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        for (field, v) in [
            ("sessionLifetimeSeconds", self.session_lifetime_seconds),
            (
                "refreshTokenLifetimeSeconds",
                self.refresh_token_lifetime_seconds,
            ),
            (
                "accessTokenLifetimeSeconds",
                self.access_token_lifetime_seconds,
            ),
        ] {
            if v.is_some_and(|s| !(60..=MAX_LIFETIME_SECS).contains(&s)) {
                return Err((
                    field,
                    format!("{field} must be 60 to {MAX_LIFETIME_SECS} seconds"),
                ));
            }
        }
        if self
            .security
            .password_min_length
            .is_some_and(|n| !(8..=MAX_PASSWORD_MIN).contains(&n))
        {
            return Err((
                "security.passwordMinLength",
                format!("passwordMinLength must be 8 to {MAX_PASSWORD_MIN}"),
            ));
        }
        for (field, v) in [
            ("logoUrl", &self.logo_url),
            ("brandColor", &self.brand_color),
            ("secondaryColor", &self.secondary_color),
            ("faviconUrl", &self.favicon_url),
        ] {
            if v.as_ref()
                .is_some_and(|s| s.len() > MAX_BRANDING || s.chars().any(char::is_control))
            {
                return Err((
                    field,
                    format!("{field} must be at most {MAX_BRANDING} printable characters"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_dropped_and_known_ones_kept() {
        let v = serde_json::json!({
            "sessionLifetimeSeconds": 3600,
            "security": {"passwordMinLength": 12, "requireSpecialChars": true, "maxHistory": 3},
            "smtp": {"password": "secret"},
            "logoUrl": "https://example.com/logo.png"
        });
        let s = TenantSettings::from_json(&v);
        assert_eq!(s.session_lifetime_seconds, Some(3600));
        assert_eq!(s.security.password_min_length, Some(12));
        assert_eq!(s.security.require_special_chars, Some(true));
        let back = s.to_json().to_string();
        assert!(
            !back.contains("secret") && !back.contains("maxHistory"),
            "{back}"
        );
        assert_eq!(
            TenantSettings::from_json(&serde_json::json!([1])),
            TenantSettings::default()
        );
        assert!(s.check().is_ok());
        let bad = TenantSettings {
            access_token_lifetime_seconds: Some(1),
            ..TenantSettings::default()
        };
        assert_eq!(bad.check().unwrap_err().0, "accessTokenLifetimeSeconds");
    }
}
