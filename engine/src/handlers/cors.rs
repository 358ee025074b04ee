//! CORS with credentials for the configured origins only.

use http::header::{
    HeaderValue, ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS,
    ACCESS_CONTROL_MAX_AGE, ORIGIN,
};
use http::HeaderMap;

use crate::http::{empty, Resp};
use crate::router::Route;

/// The origins trusted with credentials: `HELLOJOHN_CORS_ORIGINS` and every client's
/// `allowed_origins`.
pub struct Allowed<'a> {
    pub configured: &'a [String],
    pub clients: &'a crate::origins::ClientOrigins,
}

impl Allowed<'_> {
    pub fn contains(&self, origin: &str) -> bool {
        self.configured.iter().any(|o| o == origin) || self.clients.contains(origin)
    }
}

/// The request's `Origin`, when it is one of the allowed origins (exact match).
pub fn allowed_origin(allowed: &Allowed<'_>, headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(ORIGIN)?;
    let text = origin.to_str().ok()?;
    allowed.contains(text).then(|| origin.clone())
}

/// The origin (`scheme://host[:port]`, lower-case) of a URL such as the public base URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}").to_ascii_lowercase())
}

/// Whether a browser sent this request from another site, so a cookie it carries or receives
/// must not count (login CSRF, sign-out CSRF). A browser says so with `Sec-Fetch-Site:
/// cross-site`, or with an `Origin` that is neither this server's public origin nor one of
/// the configured CORS origins (`Origin: null`, sent by sandboxed frames and some redirects,
/// is never allowed). A configured origin passes even when it is another site. A request
/// with neither header does not come from a browser's
/// cross-site form or script, so it is not refused here.
pub fn cross_site(base_url: &str, allowed: &Allowed<'_>, headers: &HeaderMap) -> bool {
    let origin = match headers.get(ORIGIN).map(|o| o.to_str().map(str::trim)) {
        Some(Ok(o)) => Some(o),
        Some(Err(_)) => return true,
        None => None,
    };
    // A configured origin is trusted to call with credentials, even from another site.
    if origin.is_some_and(|o| allowed.contains(o)) {
        return false;
    }
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    if fetch_site.is_some_and(|v| v.eq_ignore_ascii_case("cross-site")) {
        return true;
    }
    match origin {
        None => false,
        Some(o) => origin_of(base_url).is_none_or(|own| !own.eq_ignore_ascii_case(o)),
    }
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
        HeaderValue::from_static("Retry-After, X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, ETag, X-Next-Cursor"),
    );
}

/// The preflight answer of an admin path, for an allowed origin: `methods` and the admin API's
/// request headers.
pub fn admin_preflight(methods: &str) -> Resp {
    let mut resp = empty(204);
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(methods) {
        h.insert(ACCESS_CONTROL_ALLOW_METHODS, v);
    }
    h.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(
            "Authorization, Content-Type, X-API-Key, X-Request-Id, If-Match, X-Tenant-ID",
        ),
    );
    h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    resp
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
        if let Route::Admin(admin) = route {
            return admin_preflight(&admin.allow_header());
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn cross_site_requests_are_recognised() {
        let base = "https://auth.example.com/base";
        let configured = vec!["https://app.example.com".to_string()];
        let clients = crate::origins::ClientOrigins::default();
        let cors = Allowed {
            configured: &configured,
            clients: &clients,
        };
        let cross = |pairs: &[(&'static str, &str)]| cross_site(base, &cors, &headers(pairs));
        // Not from a browser, or from this server's own pages, or from a configured origin.
        assert!(!cross(&[]));
        assert!(!cross(&[("origin", "https://auth.example.com")]));
        assert!(!cross(&[("origin", "HTTPS://Auth.Example.com")]));
        assert!(!cross(&[("origin", "https://app.example.com")]));
        assert!(!cross(&[("sec-fetch-site", "same-origin")]));
        assert!(!cross(&[("sec-fetch-site", "none")]));
        // From anywhere else.
        assert!(cross(&[("origin", "https://evil.example")]));
        assert!(cross(&[("origin", "null")]));
        assert!(cross(&[(
            "origin",
            "https://auth.example.com.evil.example"
        )]));
        assert!(cross(&[("origin", "http://auth.example.com")]));
        assert!(cross(&[("sec-fetch-site", "cross-site")]));
        assert!(cross(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://auth.example.com")
        ]));
        // A configured origin on another site is trusted.
        assert!(!cross(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://app.example.com")
        ]));
    }
}
