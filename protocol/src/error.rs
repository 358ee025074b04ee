//! Stable error codes and the two error body shapes (`/v2/*` and RFC 6749 for `/oauth2/*`).

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
        }
    }

    /// The HTTP status this code is answered with.
    pub const fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidJson | ErrorCode::BadRequest => 400,
            ErrorCode::InvalidCredentials
            | ErrorCode::TokenInvalid
            | ErrorCode::SessionExpired
            | ErrorCode::RefreshTokenReuse
            | ErrorCode::Unauthorized => 401,
            ErrorCode::CsrfTokenInvalid | ErrorCode::CrossSiteRequest | ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::RateLimitExceeded => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Overloaded | ErrorCode::Unavailable => 503,
            ErrorCode::Timeout => 504,
        }
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The `/v2/*` error body: `{"code": "...", "message": "...", "detail": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub detail: serde_json::Value,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            detail: serde_json::Value::Null,
        }
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The same error in RFC 6749 shape, for `/oauth2/*`.
    pub fn to_oauth(&self) -> OAuthError {
        let error = match self.code {
            ErrorCode::InvalidJson
            | ErrorCode::BadRequest
            | ErrorCode::PayloadTooLarge
            | ErrorCode::UnsupportedMediaType => "invalid_request",
            ErrorCode::TokenInvalid
            | ErrorCode::SessionExpired
            | ErrorCode::RefreshTokenReuse
            | ErrorCode::InvalidCredentials => "invalid_grant",
            ErrorCode::Unauthorized | ErrorCode::Forbidden => "invalid_client",
            ErrorCode::Overloaded | ErrorCode::Unavailable | ErrorCode::RateLimitExceeded => {
                "temporarily_unavailable"
            }
            _ => "server_error",
        };
        OAuthError {
            error,
            error_description: self.message.clone(),
        }
    }
}

/// The RFC 6749 section 5.2 error body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OAuthError {
    pub error: &'static str,
    pub error_description: String,
}

impl OAuthError {
    /// RFC 6749: invalid_client is 401, server trouble is 5xx, everything else 400.
    pub fn status(&self) -> u16 {
        match self.error {
            "invalid_client" => 401,
            "temporarily_unavailable" => 503,
            "server_error" => 500,
            _ => 400,
        }
    }
}
