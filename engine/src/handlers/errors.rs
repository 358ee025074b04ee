//! The one place where domain denials and store faults become HTTP error codes.

use protocol::{ApiError, ErrorCode};
use store::StoreError;

use auth::flows::Denial;
use auth::limiter::Decision;

pub fn denial(d: &Denial) -> ApiError {
    match d {
        Denial::InvalidCredentials => {
            ApiError::new(ErrorCode::InvalidCredentials, "invalid email or password")
        }
        Denial::Overloaded { retry_after } => ApiError::new(
            ErrorCode::Overloaded,
            "the server is at capacity; retry later",
        )
        .with("retry_after", retry_after.as_secs().max(1)),
        Denial::EmailTaken => {
            ApiError::new(ErrorCode::Conflict, "email is already registered").with_field("email")
        }
        Denial::WeakPassword(v) => ApiError::new(ErrorCode::BadRequest, v.message())
            .with_field("password")
            .with("rule", v.rule()),
        Denial::InvalidEmail => {
            ApiError::new(ErrorCode::BadRequest, "email is not a valid address").with_field("email")
        }
        Denial::TokenInvalid => {
            ApiError::new(ErrorCode::TokenInvalid, "token is invalid or expired")
        }
        Denial::TokenReuse => ApiError::new(
            ErrorCode::RefreshTokenReuse,
            "refresh token was already used; all tokens of this sign-in are revoked",
        ),
        Denial::SessionExpired => {
            ApiError::new(ErrorCode::SessionExpired, "session expired or signed out")
        }
        Denial::NotOwner => ApiError::new(
            ErrorCode::Forbidden,
            "the token was not issued to the caller",
        ),
        Denial::InvalidClient => {
            ApiError::new(ErrorCode::Unauthorized, "client authentication failed")
        }
        Denial::RateLimited { decision, .. } => rate_limited(decision),
        Denial::EmailNotVerified => ApiError::new(
            ErrorCode::EmailNotVerified,
            "please verify your email before signing in",
        ),
        Denial::InvalidMfaCode => ApiError::new(ErrorCode::InvalidMfaCode, "invalid MFA code"),
        Denial::MfaTokenInvalid => ApiError::new(
            ErrorCode::MfaTokenInvalid,
            "mfa_token is invalid, expired or already used; sign in again",
        ),
        Denial::MfaNotEnrolled => {
            ApiError::new(ErrorCode::MfaNotEnrolled, "no second factor is enrolled")
        }
        Denial::MfaAlreadyEnabled => ApiError::new(
            ErrorCode::MfaAlreadyEnabled,
            "a second factor is already enabled; disable it first",
        ),
        Denial::MfaProofRequired => ApiError::new(
            ErrorCode::MfaProofRequired,
            "a current code, a recovery code or the password is required",
        ),
        Denial::EmailTokenInvalid => ApiError::new(
            ErrorCode::EmailTokenInvalid,
            "the link is invalid or expired",
        ),
        Denial::UnauthorizedClient(why) => {
            ApiError::new(ErrorCode::UnauthorizedClient, *why).with_field("client_id")
        }
        Denial::ReauthenticationRequired => ApiError::new(
            ErrorCode::ReauthenticationRequired,
            "this change needs a recent sign-in; sign in again",
        ),
        Denial::FirstPartyRequired => ApiError::new(
            ErrorCode::FirstPartyRequired,
            "a token of this client may not manage the account",
        ),
    }
}

/// 429: a rate limit was hit (the handler pipeline adds `Retry-After` and `X-RateLimit-*`).
pub fn rate_limited(d: &Decision) -> ApiError {
    ApiError::new(
        ErrorCode::RateLimitExceeded,
        "too many requests; retry later",
    )
    .with("retry_after", d.retry_after_secs())
}

/// A store fault. Unavailability is 503 (safe to retry: nothing was committed).
pub fn store(e: &StoreError) -> ApiError {
    match e {
        StoreError::Unavailable(_) => {
            tracing::warn!(error = %e, "store unavailable");
            ApiError::new(
                ErrorCode::Unavailable,
                "the database is unavailable; retry later",
            )
        }
        StoreError::Conflict(what) => {
            ApiError::new(ErrorCode::Conflict, format!("{what} already exists"))
        }
        StoreError::Schema(_) | StoreError::Internal(_) => {
            tracing::error!(error = %e, "store error");
            ApiError::new(ErrorCode::Internal, "internal error")
        }
    }
}

pub fn missing(field: &'static str) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, format!("{field} is required")).with_field(field)
}
