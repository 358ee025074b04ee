//! Request and response bodies of MFA (`/v2/mfa/*`) and the email flows (`/v2/auth/forgot`,
//! `/v2/auth/reset`, `/v2/auth/verify-email*`), as HelloJohn's server and SDK name them.

use serde::{Deserialize, Serialize};

/// `200` of a sign-in whose second factor is due (HelloJohn answers 200, not 401).
#[derive(Debug, Serialize)]
pub struct MfaRequiredResponse {
    pub mfa_required: bool,
    pub mfa_token: String,
    pub amr: Vec<&'static str>,
    pub available_factors: Vec<&'static str>,
    pub preferred_factor: &'static str,
    /// Seconds the `mfa_token` works (an addition to HelloJohn's body).
    pub expires_in: u64,
}

/// `POST /v2/mfa/totp/enroll`.
#[derive(Debug, Serialize)]
pub struct TotpEnrollResponse {
    pub secret_base32: String,
    pub otpauth_url: String,
}

/// `POST /v2/mfa/totp/verify`, `/disable`, `/v2/mfa/recovery/rotate` and
/// `/v2/mfa/totp/challenge` (every field optional here; each route says what it needs).
#[derive(Debug, Default, Deserialize)]
pub struct MfaRequest {
    pub code: Option<String>,
    pub recovery: Option<String>,
    pub password: Option<String>,
    pub mfa_token: Option<String>,
    /// What older SDKs send for `mfa_token`.
    pub challenge_id: Option<String>,
    pub remember_device: Option<bool>,
}

/// `POST /v2/mfa/totp/verify`.
#[derive(Debug, Serialize)]
pub struct TotpVerifyResponse {
    pub enabled: bool,
    pub recovery_codes: Vec<String>,
}

/// `POST /v2/mfa/totp/disable`.
#[derive(Debug, Serialize)]
pub struct TotpDisableResponse {
    pub disabled: bool,
}

/// `POST /v2/mfa/recovery/rotate` (`codes` is what the SDK reads, `recovery_codes` what
/// HelloJohn's server sends: both, the same list).
#[derive(Debug, Serialize)]
pub struct RecoveryRotateResponse {
    pub rotated: bool,
    pub recovery_codes: Vec<String>,
    pub codes: Vec<String>,
}

/// `GET /v2/mfa/factors`.
#[derive(Debug, Serialize)]
pub struct FactorsResponse {
    pub available_factors: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_factor: Option<&'static str>,
    pub recovery_codes_left: u32,
}

/// `POST /v2/auth/forgot` and `POST /v2/auth/verify-email/start`.
#[derive(Debug, Default, Deserialize)]
pub struct EmailStartRequest {
    pub tenant_id: Option<String>,
    pub tenant: Option<String>,
    pub client_id: Option<String>,
    pub email: Option<String>,
    pub redirect_uri: Option<String>,
}

/// `POST /v2/auth/reset`.
#[derive(Debug, Default, Deserialize)]
pub struct ResetRequest {
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub token: Option<String>,
    pub new_password: Option<String>,
    /// The hosted reset page's field name.
    pub password: Option<String>,
}

/// `{"status": ...}`: `ok` (forgot), `verified` (verify-email).
#[derive(Debug, Serialize)]
pub struct StatusResponse {
    pub status: &'static str,
}
