//! Stable error codes and the two error body shapes (`/v2/*` and RFC 6749 for `/oauth2/*`),
//! each with its HTTP status: [`ErrorCode`] for `/v2/*`, [`OAuthErrorCode`] for `/oauth2/*`.

use serde::Serialize;

/// Every error code the API can answer with. The string form and the HTTP status of each code
/// are fixed here and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidJson,
    BadRequest,
    InvalidCredentials,
    TokenInvalid,
    SessionExpired,
    RefreshTokenReuse,
    Unauthorized,
    CsrfTokenInvalid,
    /// A browser request from another site to a route that sets or relies on a cookie.
    CrossSiteRequest,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimitExceeded,
    Internal,
    Overloaded,
    Unavailable,
    Timeout,
    /// The client requires a verified email (after a right password).
    EmailNotVerified,
    /// A wrong, replayed or used TOTP or recovery code.
    InvalidMfaCode,
    /// An unknown, expired, used or exhausted `mfa_token`.
    MfaTokenInvalid,
    /// The user has no second factor to use or change.
    MfaNotEnrolled,
    /// The user already has a confirmed second factor.
    MfaAlreadyEnabled,
    /// A sensitive MFA change needs a code, a recovery code or the password.
    MfaProofRequired,
    /// An unknown, expired or used email link.
    EmailTokenInvalid,
    /// The client may not do this: a machine client signing a user in, a grant it lacks.
    UnauthorizedClient,
    /// The change needs a recent sign-in (HELLOJOHN_REAUTH_MAX_AGE).
    ReauthenticationRequired,
    /// A token of a third-party client (or of another audience) may not manage the account.
    FirstPartyRequired,
    /// The resource changed since the version the request names (`If-Match`).
    PreconditionFailed,
    /// The change needs the version it applies to (`If-Match`).
    PreconditionRequired,
}

impl ErrorCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "INVALID_JSON",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::InvalidCredentials => "INVALID_CREDENTIALS",
            ErrorCode::TokenInvalid => "TOKEN_INVALID",
            ErrorCode::SessionExpired => "SESSION_EXPIRED",
            ErrorCode::RefreshTokenReuse => "REFRESH_TOKEN_REUSE",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::CsrfTokenInvalid => "CSRF_TOKEN_INVALID",
            ErrorCode::CrossSiteRequest => "CROSS_SITE_REQUEST",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ErrorCode::RateLimitExceeded => "RATE_LIMIT_EXCEEDED",
            ErrorCode::Internal => "INTERNAL_ERROR",
            ErrorCode::Overloaded => "OVERLOADED",
            ErrorCode::Unavailable => "SERVICE_UNAVAILABLE",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::EmailNotVerified => "EMAIL_NOT_VERIFIED",
            ErrorCode::InvalidMfaCode => "INVALID_MFA_CODE",
            ErrorCode::MfaTokenInvalid => "MFA_TOKEN_INVALID",
            ErrorCode::MfaNotEnrolled => "MFA_NOT_ENROLLED",
            ErrorCode::MfaAlreadyEnabled => "MFA_ALREADY_ENABLED",
            ErrorCode::MfaProofRequired => "MFA_PROOF_REQUIRED",
            ErrorCode::EmailTokenInvalid => "EMAIL_TOKEN_INVALID",
            ErrorCode::UnauthorizedClient => "UNAUTHORIZED_CLIENT",
            ErrorCode::ReauthenticationRequired => "REAUTHENTICATION_REQUIRED",
            ErrorCode::FirstPartyRequired => "FIRST_PARTY_REQUIRED",
            ErrorCode::PreconditionFailed => "PRECONDITION_FAILED",
            ErrorCode::PreconditionRequired => "PRECONDITION_REQUIRED",
        }
    }

    /// The HTTP status this code is answered with.
    pub const fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidJson
            | ErrorCode::BadRequest
            | ErrorCode::MfaTokenInvalid
            | ErrorCode::MfaNotEnrolled
            | ErrorCode::MfaProofRequired
            | ErrorCode::EmailTokenInvalid
            | ErrorCode::UnauthorizedClient => 400,
            ErrorCode::InvalidCredentials
            | ErrorCode::TokenInvalid
            | ErrorCode::SessionExpired
            | ErrorCode::RefreshTokenReuse
            | ErrorCode::Unauthorized
            | ErrorCode::InvalidMfaCode
            | ErrorCode::ReauthenticationRequired => 401,
            ErrorCode::CsrfTokenInvalid
            | ErrorCode::CrossSiteRequest
            | ErrorCode::Forbidden
            | ErrorCode::EmailNotVerified
            | ErrorCode::FirstPartyRequired => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict | ErrorCode::MfaAlreadyEnabled => 409,
            ErrorCode::PreconditionFailed => 412,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::PreconditionRequired => 428,
            ErrorCode::RateLimitExceeded => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Overloaded | ErrorCode::Unavailable => 503,
            ErrorCode::Timeout => 504,
        }
    }
}

/// Every RFC 6749 error code the `/oauth2/*` endpoints answer with (section 4.1.2.1 for the
/// authorization endpoint, 5.2 for the token endpoint), with the OpenID Connect Core 3.1.2.6
/// additions and RFC 6750's `invalid_token`. The string form and the HTTP status of a JSON
/// answer are fixed here and nowhere else; an error sent back to a redirect URI or shown on a
/// page of ours carries only the string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OAuthErrorCode {
    InvalidRequest,
    /// Client authentication failed: an unknown client, a wrong or missing secret, a secret
    /// from a public client (401, with `WWW-Authenticate` when HTTP Basic was used).
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    /// RFC 6750 section 3.1: a Bearer token that is invalid or expired.
    InvalidToken,
    LoginRequired,
    ConsentRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    /// The server cannot answer now (its store is unreachable, it is at capacity, a rate
    /// limit): nothing was decided about the request, and a retry later is safe.
    TemporarilyUnavailable,
    ServerError,
}

impl OAuthErrorCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            OAuthErrorCode::InvalidRequest => "invalid_request",
            OAuthErrorCode::InvalidClient => "invalid_client",
            OAuthErrorCode::InvalidGrant => "invalid_grant",
            OAuthErrorCode::UnauthorizedClient => "unauthorized_client",
            OAuthErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            OAuthErrorCode::UnsupportedResponseType => "unsupported_response_type",
            OAuthErrorCode::InvalidScope => "invalid_scope",
            OAuthErrorCode::AccessDenied => "access_denied",
            OAuthErrorCode::InvalidToken => "invalid_token",
            OAuthErrorCode::LoginRequired => "login_required",
            OAuthErrorCode::ConsentRequired => "consent_required",
            OAuthErrorCode::RequestNotSupported => "request_not_supported",
            OAuthErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            OAuthErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            OAuthErrorCode::ServerError => "server_error",
        }
    }

    /// The HTTP status of a JSON answer with this code (RFC 6749 section 5.2: 400 unless the
    /// client failed to authenticate, 401; RFC 6750: 401 for a bad token; a fault of ours is
    /// 5xx, and `temporarily_unavailable` is 503 so that clients and proxies retry rather than
    /// act on a denial).
    pub const fn status(self) -> u16 {
        match self {
            OAuthErrorCode::InvalidClient | OAuthErrorCode::InvalidToken => 401,
            OAuthErrorCode::AccessDenied => 403,
            OAuthErrorCode::TemporarilyUnavailable => 503,
            OAuthErrorCode::ServerError => 500,
            OAuthErrorCode::InvalidRequest
            | OAuthErrorCode::InvalidGrant
            | OAuthErrorCode::UnauthorizedClient
            | OAuthErrorCode::UnsupportedGrantType
            | OAuthErrorCode::UnsupportedResponseType
            | OAuthErrorCode::InvalidScope
            | OAuthErrorCode::LoginRequired
            | OAuthErrorCode::ConsentRequired
            | OAuthErrorCode::RequestNotSupported
            | OAuthErrorCode::RequestUriNotSupported => 400,
        }
    }
}

impl Serialize for OAuthErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The `/v2/*` error body: `{"code": "...", "message": "...", "detail": ...}`.
/// One value in an error's `detail` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetailValue {
    Text(String),
    Number(u64),
}

impl From<&str> for DetailValue {
    fn from(s: &str) -> DetailValue {
        DetailValue::Text(s.to_string())
    }
}

impl From<String> for DetailValue {
    fn from(s: String) -> DetailValue {
        DetailValue::Text(s)
    }
}

impl From<u64> for DetailValue {
    fn from(n: u64) -> DetailValue {
        DetailValue::Number(n)
    }
}

impl From<usize> for DetailValue {
    fn from(n: usize) -> DetailValue {
        DetailValue::Number(u64::try_from(n).unwrap_or(u64::MAX))
    }
}

/// An error's `detail`: `null`, a sentence, or an object of named values (`field`, `rule`,
/// `retry_after`, ...). Typed, so that the layers above build it without JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Detail {
    #[default]
    None,
    Text(String),
    Entries(Vec<(&'static str, DetailValue)>),
}

impl Detail {
    /// The named value, in an object detail.
    pub fn get(&self, key: &str) -> Option<&DetailValue> {
        match self {
            Detail::Entries(e) => e.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The detail as the JSON value it is written as.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Detail::None => serde_json::Value::Null,
            Detail::Text(t) => serde_json::Value::String(t.clone()),
            Detail::Entries(e) => serde_json::Value::Object(
                e.iter()
                    .map(|(k, v)| {
                        let v = match v {
                            DetailValue::Text(t) => serde_json::Value::String(t.clone()),
                            DetailValue::Number(n) => serde_json::Value::from(*n),
                        };
                        (k.to_string(), v)
                    })
                    .collect(),
            ),
        }
    }
}

impl Serialize for Detail {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub detail: Detail,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            detail: Detail::None,
        }
    }

    /// Adds `key: value` to the detail object (a sentence detail is replaced).
    pub fn with(mut self, key: &'static str, value: impl Into<DetailValue>) -> Self {
        let value = value.into();
        match &mut self.detail {
            Detail::Entries(e) => match e.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => *v = value,
                None => e.push((key, value)),
            },
            d => *d = Detail::Entries(vec![(key, value)]),
        }
        self
    }

    /// `detail.field`: the request field the error is about.
    pub fn with_field(self, field: &str) -> Self {
        self.with("field", field)
    }

    /// A sentence as the detail.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.detail = Detail::Text(text.into());
        self
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The same error in RFC 6749 shape, for `/oauth2/*`.
    pub fn to_oauth(&self) -> OAuthError {
        use OAuthErrorCode as O;
        let error = match self.code {
            ErrorCode::InvalidJson
            | ErrorCode::BadRequest
            | ErrorCode::PayloadTooLarge
            | ErrorCode::UnsupportedMediaType => O::InvalidRequest,
            ErrorCode::TokenInvalid
            | ErrorCode::SessionExpired
            | ErrorCode::RefreshTokenReuse
            | ErrorCode::InvalidCredentials
            | ErrorCode::EmailNotVerified => O::InvalidGrant,
            ErrorCode::UnauthorizedClient => O::UnauthorizedClient,
            ErrorCode::Unauthorized | ErrorCode::Forbidden => O::InvalidClient,
            ErrorCode::Overloaded | ErrorCode::Unavailable | ErrorCode::RateLimitExceeded => {
                O::TemporarilyUnavailable
            }
            _ => O::ServerError,
        };
        OAuthError::new(error, self.message.clone())
    }
}

/// The RFC 6749 section 5.2 error body, the one error type of the `/oauth2/*` JSON endpoints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OAuthError {
    pub error: OAuthErrorCode,
    pub error_description: String,
}

impl OAuthError {
    pub fn new(error: OAuthErrorCode, description: impl Into<String>) -> OAuthError {
        OAuthError {
            error,
            error_description: description.into(),
        }
    }

    /// `invalid_client`: the client did not authenticate (or is unknown: the answer is the
    /// same, so it says nothing about which client ids exist).
    pub fn invalid_client() -> OAuthError {
        OAuthError::new(
            OAuthErrorCode::InvalidClient,
            "client authentication failed",
        )
    }

    /// `temporarily_unavailable`: the store could not answer; nothing was decided.
    pub fn unavailable() -> OAuthError {
        OAuthError::new(
            OAuthErrorCode::TemporarilyUnavailable,
            "the service is unavailable; try again in a moment",
        )
    }

    /// The HTTP status of this answer ([`OAuthErrorCode::status`]).
    pub fn status(&self) -> u16 {
        self.error.status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(e: &ApiError) -> String {
        String::from_utf8(crate::json::to_vec(e)).unwrap()
    }

    #[test]
    fn details_are_written_as_null_a_sentence_or_an_object() {
        let e = ApiError::new(ErrorCode::NotFound, "no such route");
        assert_eq!(
            body(&e),
            r#"{"code":"NOT_FOUND","message":"no such route","detail":null}"#
        );
        let e = ApiError::new(ErrorCode::InvalidJson, "bad").with_text("EOF");
        assert_eq!(
            body(&e),
            r#"{"code":"INVALID_JSON","message":"bad","detail":"EOF"}"#
        );
        let e = ApiError::new(ErrorCode::BadRequest, "weak")
            .with_field("password")
            .with("rule", "digit")
            .with("rule", "uppercase")
            .with("retry_after", 3u64);
        assert_eq!(e.detail.get("rule"), Some(&DetailValue::from("uppercase")));
        // Keys come out sorted (serde_json's map), as they did when details were JSON values.
        assert_eq!(
            body(&e),
            r#"{"code":"BAD_REQUEST","message":"weak","detail":{"field":"password","retry_after":3,"rule":"uppercase"}}"#
        );
    }

    #[test]
    fn oauth_errors_have_rfc6749_bodies_and_statuses() {
        let e = OAuthError::invalid_client();
        assert_eq!(e.status(), 401);
        assert_eq!(
            String::from_utf8(crate::json::to_vec(&e)).unwrap(),
            r#"{"error":"invalid_client","error_description":"client authentication failed"}"#
        );
        let e = OAuthError::unavailable();
        assert_eq!(e.status(), 503);
        assert_eq!(
            String::from_utf8(crate::json::to_vec(&e)).unwrap(),
            r#"{"error":"temporarily_unavailable","error_description":"the service is unavailable; try again in a moment"}"#
        );
        for (code, status) in [
            (OAuthErrorCode::InvalidRequest, 400),
            (OAuthErrorCode::InvalidGrant, 400),
            (OAuthErrorCode::UnauthorizedClient, 400),
            (OAuthErrorCode::UnsupportedGrantType, 400),
            (OAuthErrorCode::InvalidScope, 400),
            (OAuthErrorCode::InvalidToken, 401),
            (OAuthErrorCode::ServerError, 500),
        ] {
            assert_eq!(code.status(), status, "{code}");
        }
        assert_eq!(
            OAuthErrorCode::UnsupportedGrantType.as_str(),
            "unsupported_grant_type"
        );
    }

    #[test]
    fn an_unavailable_store_is_temporarily_unavailable_in_oauth_shape() {
        for code in [
            ErrorCode::Unavailable,
            ErrorCode::Overloaded,
            ErrorCode::RateLimitExceeded,
        ] {
            let e = ApiError::new(code, "later").to_oauth();
            assert_eq!(e.error, OAuthErrorCode::TemporarilyUnavailable, "{code:?}");
            assert_eq!(e.status(), 503);
        }
        let e = ApiError::new(ErrorCode::Unauthorized, "who").to_oauth();
        assert_eq!(e.error, OAuthErrorCode::InvalidClient);
        assert_eq!(e.status(), 401);
    }
}
