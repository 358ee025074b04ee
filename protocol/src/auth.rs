//! Request and response bodies of the auth endpoints (HelloJohn v2 wire API).
//!
//! Request fields are optional at this layer so that a missing field is reported as
//! `BAD_REQUEST` naming the field, while JSON that does not parse is `INVALID_JSON`.

use serde::{Deserialize, Serialize};

/// `POST /v2/auth/register`.
#[derive(Debug, Default, Deserialize)]
pub struct RegisterRequest {
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    pub name: Option<String>,
    /// User metadata, under the name the HelloJohn SDK sends.
    pub custom_fields: Option<serde_json::Value>,
    /// User metadata, under its own name (either this or `custom_fields`).
    pub user_metadata: Option<serde_json::Value>,
}

/// `POST /v2/auth/login` and `POST /v2/session/login` (JSON or form).
#[derive(Debug, Default, Deserialize)]
pub struct LoginRequest {
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
}

/// `POST /v2/auth/refresh`.
#[derive(Debug, Default, Deserialize)]
pub struct RefreshRequest {
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub refresh_token: Option<String>,
}

/// `POST /v2/auth/logout`.
#[derive(Debug, Default, Deserialize)]
pub struct LogoutRequest {
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub refresh_token: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
}

/// Login, refresh and token-endpoint answer; register adds `user_id`.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
}

#[derive(Debug, Serialize)]
pub struct LogoutResponse {
    pub post_logout_redirect_uri: String,
}

/// `GET /v2/me`: the access token's claims, and the user's own metadata.
#[derive(Debug, Serialize)]
pub struct MeResponse {
    pub sub: String,
    pub tid: String,
    pub aud: String,
    pub amr: Vec<String>,
    /// The token's `custom` claim: the app metadata when the token was issued.
    pub custom: serde_json::Value,
    /// The user metadata as stored now (never a claim of the token).
    pub user_metadata: serde_json::Value,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scp: String,
}

/// `GET|POST /userinfo` (OpenID Connect UserInfo).
#[derive(Debug, Serialize)]
pub struct UserInfoResponse {
    pub sub: String,
    pub email: String,
    pub email_verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub tenant_id: String,
    /// The user metadata (the sign-up's `custom_fields`).
    pub custom_fields: serde_json::Value,
    /// The same user metadata, under its own name.
    pub user_metadata: serde_json::Value,
    /// The app metadata set by an operator.
    pub app_metadata: serde_json::Value,
    pub created_at: i64,
}

#[derive(Debug, Serialize)]
pub struct CsrfResponse {
    pub csrf_token: String,
}

/// `GET /.well-known/openid-configuration`.
#[derive(Debug, Serialize)]
pub struct OpenIdConfiguration {
    pub issuer: String,
    pub jwks_uri: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub end_session_endpoint: String,
    pub response_types_supported: Vec<&'static str>,
    pub grant_types_supported: Vec<&'static str>,
    pub subject_types_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub scopes_supported: Vec<&'static str>,
    pub claims_supported: Vec<&'static str>,
}
