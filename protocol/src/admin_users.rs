//! The admin API's wire types for a tenant's users, refresh tokens and cookie sessions
//! (`/v2/admin/tenants/{tenant_id}/users|tokens|sessions`), with the field names HelloJohn's
//! admin console reads. Times are RFC 3339 strings in UTC. Nothing here ever carries a
//! password, a password hash, a token or the hash of a cookie.
//!
//! Lists are offset-paged (`page` from 1, `page_size`), as the console pages them; each
//! answer says how many there are in all under the same filters.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::admin::nullable;

/// A user of a tenant.
#[derive(Debug, Serialize)]
pub struct UserInfo {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    pub email_verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub disabled: bool,
    /// Set exactly while the user is disabled. The moment of the disabling is not stored, so
    /// this is the account's creation time: "disabled, at some time since this one".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// What the user wrote about themselves (never in a token).
    pub custom_fields: Value,
    /// What an operator set: the access token's `custom` claim.
    pub app_metadata: Value,
    /// `app_metadata` again, under the name the console reads.
    pub metadata: Value,
    pub mfa_enabled: bool,
    pub created_at: String,
}

/// `GET .../users`.
#[derive(Debug, Serialize)]
pub struct UserList {
    pub users: Vec<UserInfo>,
    pub total_count: u64,
    pub page: u32,
    pub page_size: u32,
}

/// `POST .../users`. Other members (the console's `source_client_id`) are ignored.
#[derive(Default, Deserialize)]
pub struct CreateUserRequest {
    pub email: Option<String>,
    /// Absent: the user has no password and cannot sign in with one.
    pub password: Option<String>,
    pub name: Option<String>,
    pub email_verified: Option<bool>,
    pub custom_fields: Option<Value>,
    pub app_metadata: Option<Value>,
}

impl std::fmt::Debug for CreateUserRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateUserRequest")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// `PUT|PATCH .../users/{user_id}`: absent (or `null` metadata) leaves a field as it is; a
/// `null` or empty name clears it. Other members (the console's `given_name`, `family_name`,
/// `locale`, `source_client_id`) are ignored.
#[derive(Debug, Default, Deserialize)]
pub struct UpdateUserRequest {
    pub email: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub name: Option<Option<String>>,
    pub custom_fields: Option<Value>,
    pub app_metadata: Option<Value>,
}

/// `POST .../users/{user_id}/set-password`.
#[derive(Default, Deserialize)]
pub struct SetPasswordRequest {
    pub password: Option<String>,
}

impl std::fmt::Debug for SetPasswordRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetPasswordRequest { .. }")
    }
}

/// `POST .../users/{user_id}/disable`.
#[derive(Debug, Default, Deserialize)]
pub struct DisableUserRequest {
    pub reason: Option<String>,
    /// Empty or absent: until enabled again (the only kind served).
    pub duration: Option<String>,
}

/// `POST .../users/{user_id}/set-email-verified`.
#[derive(Debug, Default, Deserialize)]
pub struct SetEmailVerifiedRequest {
    pub verified: Option<bool>,
}

/// A refresh token as the operator sees it: a refresh family (what one sign-in started),
/// standing as its latest token does.
#[derive(Debug, Serialize)]
pub struct TokenInfo {
    /// The family's id.
    pub id: String,
    pub user_id: String,
    pub user_email: String,
    pub client_id: String,
    /// When its latest token was issued (the last rotation).
    pub issued_at: String,
    pub expires_at: String,
    /// When the sign-in started the family.
    pub created_at: String,
    /// `active`, `expired` or `revoked`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// The scopes the code flow granted; absent for a password sign-in's family.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

/// `GET .../tokens`.
#[derive(Debug, Serialize)]
pub struct TokenList {
    pub tokens: Vec<TokenInfo>,
    pub total_count: u64,
    pub page: u32,
    pub page_size: u32,
}

/// How many active ones a client has.
#[derive(Debug, Serialize)]
pub struct ClientCount {
    pub client_id: String,
    pub count: u64,
}

/// `GET .../tokens/stats`. "Today" is the UTC day of the request.
#[derive(Debug, Serialize)]
pub struct TokenStats {
    pub total_active: u64,
    pub total_revoked: u64,
    pub total_expired: u64,
    /// Families started (sign-ins) today.
    pub issued_today: u64,
    pub revoked_today: u64,
    /// The mean life the active ones' latest tokens were given, in hours; 0 without any.
    pub avg_lifetime_hours: f64,
    pub by_client: Vec<ClientCount>,
}

/// `POST .../tokens/revoke-by-user` and `POST .../sessions/revoke-by-user`.
#[derive(Debug, Default, Deserialize)]
pub struct RevokeByUserRequest {
    pub user_id: Option<String>,
    pub reason: Option<String>,
}

/// `POST .../tokens/revoke-by-client`.
#[derive(Debug, Default, Deserialize)]
pub struct RevokeByClientRequest {
    pub client_id: Option<String>,
    pub reason: Option<String>,
}

/// `POST .../tokens/revoke-all`, `POST .../sessions/revoke-all` and
/// `POST .../sessions/{session_id}/revoke`.
#[derive(Debug, Default, Deserialize)]
pub struct RevokeRequest {
    pub reason: Option<String>,
}

/// The answer to a revocation: how many were active and are now revoked.
#[derive(Debug, Serialize)]
pub struct RevokeResponse {
    pub revoked_count: u64,
    pub message: String,
}

/// A cookie session as the operator sees it. What is not recorded (the client's address,
/// device, browser, system, place and last activity) is absent, never guessed.
#[derive(Debug, Serialize)]
pub struct SessionInfo {
    pub id: String,
    pub user_id: String,
    pub user_email: String,
    pub client_id: String,
    /// `active`, `expired` or `revoked`.
    pub status: &'static str,
    /// How the user signed in (RFC 8176 values).
    pub amr: Vec<String>,
    pub created_at: String,
    pub expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// `GET .../sessions`.
#[derive(Debug, Serialize)]
pub struct SessionList {
    pub sessions: Vec<SessionInfo>,
    pub total: u64,
    pub page: u32,
    pub page_size: u32,
    pub total_pages: u64,
}

/// How many active sessions a device type has.
#[derive(Debug, Serialize)]
pub struct DeviceCount {
    pub device_type: String,
    pub count: u64,
}

/// `GET .../sessions/stats`. "Today" is the UTC day of the request.
#[derive(Debug, Serialize)]
pub struct SessionStats {
    pub total_active: u64,
    pub total_revoked: u64,
    pub total_expired: u64,
    pub created_today: u64,
    pub by_client: Vec<ClientCount>,
    /// Always empty: device types are not recorded.
    pub by_device: Vec<DeviceCount>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_ignore_what_the_console_sends_besides() {
        let r: UpdateUserRequest = serde_json::from_str(
            r#"{"name":null,"given_name":"Ada","locale":"en","source_client_id":null}"#,
        )
        .unwrap();
        assert_eq!(r.name, Some(None));
        assert!(r.email.is_none() && r.custom_fields.is_none());
        let r: CreateUserRequest = serde_json::from_str(
            r#"{"email":"a@b.c","password":"Secret-123","source_client_id":"web"}"#,
        )
        .unwrap();
        assert!(!format!("{r:?}").contains("Secret"));
    }
}
