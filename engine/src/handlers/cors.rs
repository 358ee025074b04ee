//! CORS with credentials for the configured origins only.

use http::header::{
    HeaderValue, ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS,
    ACCESS_CONTROL_MAX_AGE, ORIGIN,
};
use http::HeaderMap;

use crate::http::{empty, Resp};
use crate::router::Route;

/// The request's `Origin`, when it is one of the configured origins (exact match).
pub fn allowed_origin(allowed: &[String], headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(ORIGIN)?;
    let text = origin.to_str().ok()?;
    allowed.iter().any(|o| o == text).then(|| origin.clone())
}

pub fn decorate(resp: &mut Resp, origin: HeaderValue) {
    let h = resp.headers_mut();
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    h.insert(
        ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Retry-After, X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"),
    );
}

/// Answers a preflight. Unknown origins get 204 without CORS headers, so the browser refuses.
pub fn preflight(route: Route, origin_allowed: bool) -> Resp {
    if route == Route::Unmatched {
        return crate::http::error(
            &protocol::ApiError::new(protocol::ErrorCode::NotFound, "no such route"),
            false,
        );
    }
    let mut resp = empty(204);
    if origin_allowed {
        let methods = if route.allows(&http::Method::POST) && route.allows(&http::Method::GET) {
            "GET, POST, OPTIONS"
        } else if route.allows(&http::Method::POST) {
            "POST, OPTIONS"
        } else {
            "GET, HEAD, OPTIONS"
        };
        let h = resp.headers_mut();
        h.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(methods),
        );
        h.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Authorization, Content-Type, X-CSRF-Token, X-Tenant-ID, X-Tenant-Slug, X-Request-Id"),
        );
        h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
    resp
}
