//! `PUT|PATCH /v2/admin/tenants/{tenant_id}/settings`: a patch of a tenant's settings, with
//! HelloJohn's names (camelCase). Absent keys stay as they are, `null` resets a key to the
//! server's default, and keys this server does not act on (HelloJohn's SMTP, user database,
//! cache and social-provider settings, which may carry secrets) are ignored, never stored.

use serde::de::{DeserializeOwned, Error};
use serde::{Deserialize, Deserializer};

fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// An object, or `null`; never an array of the fields in order, which a derived `Deserialize`
/// takes too.
pub(crate) fn object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Option::<serde_json::Value>::deserialize(d)? {
        None => Ok(None),
        Some(v @ serde_json::Value::Object(_)) => serde_json::from_value(v)
            .map(Some)
            .map_err(D::Error::custom),
        Some(_) => Err(D::Error::custom("expected an object or null")),
    }
}

/// The settings' patch.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsPatch {
    #[serde(default, deserialize_with = "nullable")]
    pub session_lifetime_seconds: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub refresh_token_lifetime_seconds: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub access_token_lifetime_seconds: Option<Option<i64>>,
    #[serde(default, deserialize_with = "object")]
    pub security: Option<SecurityPatch>,
    #[serde(default, deserialize_with = "nullable")]
    pub logo_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub brand_color: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub secondary_color: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub favicon_url: Option<Option<String>>,
    /// `global` or `path` (the tenant's issuer mode).
    pub issuer_mode: Option<String>,
}

/// The password policy's patch (HelloJohn's `security` object).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityPatch {
    #[serde(default, deserialize_with = "nullable")]
    pub password_min_length: Option<Option<u32>>,
    #[serde(default, deserialize_with = "nullable")]
    pub require_uppercase: Option<Option<bool>>,
    #[serde(default, deserialize_with = "nullable")]
    pub require_lowercase: Option<Option<bool>>,
    #[serde(default, deserialize_with = "nullable")]
    pub require_numbers: Option<Option<bool>>,
    #[serde(default, deserialize_with = "nullable")]
    pub require_special_chars: Option<Option<bool>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_null_and_unknown_keys() {
        let p: SettingsPatch = serde_json::from_str(
            r#"{"sessionLifetimeSeconds": null, "security": {"passwordMinLength": 12},
                "smtp": {"password": "x"}, "dsnEnc": "y"}"#,
        )
        .unwrap();
        assert_eq!(p.session_lifetime_seconds, Some(None));
        assert_eq!(p.refresh_token_lifetime_seconds, None);
        assert_eq!(p.security.unwrap().password_min_length, Some(Some(12)));
        assert!(serde_json::from_str::<SettingsPatch>(r#"{"security": [null]}"#).is_err());
        let p: SettingsPatch = serde_json::from_str(r#"{"security": null}"#).unwrap();
        assert!(p.security.is_none());
    }
}
