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
    /// A confidential client's secret (or HTTP Basic).
    pub client_secret: Option<String>,
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
    /// A confidential client's secret (or HTTP Basic): such a client signs users in only
    /// when it authenticates.
    pub client_secret: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
}

/// `POST /v2/auth/refresh`.
#[derive(Debug, Default, Deserialize)]
pub struct RefreshRequest {
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    /// A confidential client's secret (public clients send none).
    pub client_secret: Option<String>,
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
    /// Only for clients with the `refresh_token` grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// `POST /v2/auth/register` through a client that requires a verified email: the account
/// exists, a verification mail is on its way, and no token is issued until the address is
/// verified.
#[derive(Debug, Serialize)]
pub struct PendingVerification {
    pub user_id: String,
    pub email_verification_required: bool,
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
    /// With scope `email` (or a token without scopes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// The rest with scope `profile` (or a token without scopes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// The user metadata (the sign-up's `custom_fields`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_fields: Option<serde_json::Value>,
    /// The same user metadata, under its own name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_metadata: Option<serde_json::Value>,
    /// The app metadata set by an operator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_metadata: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    /// With scope `profile`: when the profile last changed (OpenID Connect `updated_at`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct CsrfResponse {
    pub csrf_token: String,
}

/// `GET /.well-known/openid-configuration`.
#[derive(Debug, Serialize)]
pub struct OpenIdConfiguration {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub jwks_uri: String,
    pub end_session_endpoint: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub response_types_supported: Vec<&'static str>,
    pub response_modes_supported: Vec<&'static str>,
    pub grant_types_supported: Vec<&'static str>,
    pub subject_types_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub code_challenge_methods_supported: Vec<&'static str>,
    pub prompt_values_supported: Vec<&'static str>,
    pub scopes_supported: Vec<&'static str>,
    pub claims_supported: Vec<&'static str>,
    pub claims_parameter_supported: bool,
    pub request_parameter_supported: bool,
    pub request_uri_parameter_supported: bool,
    pub authorization_response_iss_parameter_supported: bool,
}

/// `GET /v2/auth/password-policy`: the rules a new password must meet, in HelloJohn's shape.
/// One policy serves every tenant here, so `configured` is always true.
#[derive(Debug, Serialize)]
pub struct PasswordPolicyResponse {
    pub configured: bool,
    pub tenant_id: String,
    pub min_length: usize,
    pub max_length: usize,
    pub require_uppercase: bool,
    pub require_lowercase: bool,
    pub require_numbers: bool,
    pub require_symbols: bool,
    pub max_history: u32,
    pub breach_detection: bool,
    pub common_password: bool,
    pub personal_info: bool,
}

/// `GET /v2/auth/providers`: the sign-in providers besides the password (none yet).
#[derive(Debug, Serialize)]
pub struct ProvidersResponse {
    pub providers: Vec<String>,
}

/// `GET /v2/auth/config?client_id=`: what a sign-in page needs to know of a client and its
/// tenant, in HelloJohn's shape.
#[derive(Debug, Serialize)]
pub struct AuthConfigResponse {
    pub tenant_name: String,
    pub tenant_slug: String,
    pub client_name: String,
    pub social_providers: Vec<String>,
    pub password_enabled: bool,
    pub features: std::collections::BTreeMap<&'static str, bool>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub require_email_verification: bool,
}

/// `POST /v2/auth/complete-profile`.
#[derive(Debug, Default, Deserialize)]
pub struct CompleteProfileRequest {
    pub custom_fields: Option<serde_json::Value>,
}

/// The answer of `POST /v2/auth/complete-profile`: the user's metadata after the merge.
#[derive(Debug, Serialize)]
pub struct CompleteProfileResponse {
    pub user_id: String,
    pub custom_fields: serde_json::Value,
}
