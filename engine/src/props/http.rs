//! Request bodies, form and query decoding, `Authorization`, cookies, tenant selection and
//! routing: everything a handler reads from the request before any domain code runs.

use http::request::Parts;
use http::{HeaderValue, Request};
use proptest::prelude::*;
use protocol::auth::{LoginRequest, LogoutRequest, RefreshRequest, RegisterRequest};
use protocol::{ApiError, ErrorCode};

use super::{cases, header_bytes, pieces};
use crate::handlers::common::{bearer, cookie, parse, tenant_key, Accept};
use crate::http::{form_pairs, percent_decode, query_param};
use crate::router::Route;
use crate::webhook::Origin;

/// Percent-encodes every byte that is not alphanumeric, and spaces as `+`, the way browsers
/// encode `application/x-www-form-urlencoded`.
fn form_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b' ' => out.push('+'),
            b if b.is_ascii_alphanumeric() => out.push(b as char),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The request head of a POST with these headers; headers whose bytes `http` refuses are
/// left out (hyper would have refused the request before any handler).
fn parts(headers: &[(&str, Vec<u8>)], query: Option<&str>) -> Parts {
    let uri = match query {
        Some(q) => format!("/v2/auth/login?{q}"),
        None => "/v2/auth/login".to_string(),
    };
    let mut builder = Request::post(uri.as_str());
    if builder.uri_ref().is_none() {
        builder = Request::post("/v2/auth/login");
    }
    let mut req = builder.body(()).unwrap_or_else(|_| Request::new(()));
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            req.headers_mut().append(name, value);
        }
    }
    req.into_parts().0
}

fn content_type() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        Just(None),
        Just(Some(b"application/json".to_vec())),
        Just(Some(b"application/json; charset=utf-8".to_vec())),
        Just(Some(b"application/x-www-form-urlencoded".to_vec())),
        Just(Some(
            b"  APPLICATION/X-WWW-FORM-URLENCODED;charset=UTF-8".to_vec()
        )),
        Just(Some(b"text/plain".to_vec())),
        header_bytes(40).prop_map(Some),
    ]
}

/// Bodies: raw bytes, form-like text, JSON-like text and deep nesting.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        pieces(
            &[
                "email",
                "password",
                "tenant_id",
                "client_id",
                "=",
                "&",
                "%",
                "%4",
                "%zz",
                "%00",
                "+",
                "%40",
                "%C3%A9",
                "%FF",
                "refresh_token",
                "name",
                "custom_fields",
                "[]",
            ],
            40,
        )
        .prop_map(String::into_bytes),
        pieces(
            &[
                "{",
                "}",
                "[",
                "]",
                ",",
                ":",
                "\"",
                "\\",
                "\"email\"",
                "\"password\"",
                "\"custom_fields\"",
                "\"tenant_id\"",
                "1",
                "-0.5e9",
                "null",
                "true",
                " ",
                "\"x\"",
                "\"\\u0000\"",
                "\"\\ud800\"",
            ],
            60,
        )
        .prop_map(String::into_bytes),
        (1usize..20_000, prop::bool::ANY).prop_map(|(n, arrays)| {
            let (open, close): (&[u8], &[u8]) = if arrays {
                (b"[", b"]")
            } else {
                (b"{\"a\":", b"}")
            };
            let mut b = open.repeat(n);
            b.extend(close.repeat(n));
            b
        }),
    ]
}

/// The codes a body parser may refuse with, all 400.
fn assert_body_error(e: &ApiError) {
    assert!(
        matches!(
            e.code,
            ErrorCode::InvalidJson | ErrorCode::BadRequest | ErrorCode::UnsupportedMediaType
        ),
        "unexpected code {:?}",
        e.code
    );
    assert!(matches!(e.status(), 400 | 415), "{}", e.status());
}

proptest! {
    #![proptest_config(cases(1024))]

    #[test]
    fn form_pairs_and_query_params_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let pairs = form_pairs(&bytes);
        let separators = bytes.iter().filter(|b| **b == b'&').count();
        prop_assert!(pairs.len() <= separators + 1);
        let _ = percent_decode(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let found = query_param(Some(&text), "tenant_id");
        let expected = form_pairs(text.as_bytes())
            .into_iter()
            .find(|(k, _)| k == "tenant_id")
            .map(|(_, v)| v);
        prop_assert_eq!(found, expected);
    }

    #[test]
    fn form_encoding_round_trips(pairs in prop::collection::vec((any::<String>(), any::<String>()), 0..6)) {
        let body = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        prop_assert_eq!(form_pairs(body.as_bytes()), pairs);
    }

    #[test]
    fn bearer_is_a_trimmed_token_after_the_scheme(value in header_bytes(120)) {
        let p = parts(&[("authorization", value.clone())], None);
        if let Some(token) = bearer(&p) {
            let text = std::str::from_utf8(&value).unwrap().trim();
            prop_assert!(text.len() > 7 && text[..7].eq_ignore_ascii_case("bearer "), "{:?}", text);
            prop_assert!(!token.is_empty());
            prop_assert_eq!(token, token.trim());
            prop_assert!(text.ends_with(token));
        }
    }

    #[test]
    fn bearer_of_near_valid_headers(
        scheme in prop::sample::select(&["Bearer", "bearer", "BEARER", "Basic", "Bearer:", "", "Bearerx"][..]),
        gap in "[ \t]{0,3}",
        token in "[ -~]{0,40}",
    ) {
        let value = format!("{scheme}{gap}{token}");
        let p = parts(&[("authorization", value.clone().into_bytes())], None);
        if let Some(t) = bearer(&p) {
            prop_assert!(value.trim().to_ascii_lowercase().starts_with("bearer "), "{:?}", value);
            prop_assert!(value.trim().ends_with(t));
        }
    }

    #[test]
    fn cookies_come_from_the_cookie_header(
        lines in prop::collection::vec(
            prop_oneof![
                header_bytes(80),
                pieces(&["sid", "csrf_token", "=", ";", " ", "\"", "__Host-sid", "a=b"], 20)
                    .prop_map(String::into_bytes),
            ],
            0..4,
        ),
        name in prop::sample::select(&["sid", "__Host-sid", "csrf_token", ""][..]),
    ) {
        let headers: Vec<(&str, Vec<u8>)> = lines.into_iter().map(|l| ("cookie", l)).collect();
        let p = parts(&headers, None);
        if let Some(v) = cookie(&p, name) {
            prop_assert!(!v.is_empty());
            let all: Vec<&str> = p.headers.get_all("cookie").iter().filter_map(|h| h.to_str().ok()).collect();
            prop_assert!(all.iter().any(|h| h.contains(v)));
        }
    }

    #[test]
    fn tenant_key_never_panics_and_is_never_blank(
        body_value in prop::option::of(any::<String>()),
        id in header_bytes(60),
        slug in header_bytes(60),
        query in prop::option::of(pieces(&["tenant_id", "=", "&", "%", "%2", "+", "acme", "?", "#"], 12)),
    ) {
        let p = parts(&[("x-tenant-id", id), ("x-tenant-slug", slug)], query.as_deref());
        if let Some(key) = tenant_key(&p, body_value.as_deref()) {
            prop_assert!(!key.is_empty());
        }
    }

    #[test]
    fn routes_never_panic(path in prop_oneof![
        any::<String>(),
        pieces(&["/", "v2", "auth", "login", "/v2/auth/login", "/ping", "//", "%2F", ".."], 8),
    ]) {
        let route = Route::from_path(&path);
        if route != Route::Unmatched {
            prop_assert!(path.starts_with(route.template()));
        }
    }

    #[test]
    fn user_agents_are_cut_on_a_character_boundary(ua in any::<String>()) {
        let o = Origin::new(None, Some(&ua));
        if let Some(kept) = o.user_agent {
            prop_assert!(kept.len() <= Origin::MAX_USER_AGENT);
            prop_assert!(ua.trim().starts_with(&kept));
        }
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// Every auth body, as JSON, form, or anything else, parses or is refused with 400
    /// `INVALID_JSON` or `BAD_REQUEST`, or 415 for another media type; deep nesting never
    /// reaches a recursive parser.
    #[test]
    fn request_bodies_parse_or_are_400(ct in content_type(), body in body(), allow_empty in any::<bool>()) {
        let headers: Vec<(&str, Vec<u8>)> = ct.into_iter().map(|c| ("content-type", c)).collect();
        let p = parts(&headers, None);
        if let Err(e) = parse::<RegisterRequest>(&p, body.clone(), allow_empty, Accept::Json) {
            assert_body_error(&e);
        }
        if let Err(e) = parse::<LoginRequest>(&p, body.clone(), allow_empty, Accept::JsonOrForm) {
            assert_body_error(&e);
        }
        if let Err(e) = parse::<RefreshRequest>(&p, body.clone(), allow_empty, Accept::Json) {
            assert_body_error(&e);
        }
        if let Err(e) = parse::<LogoutRequest>(&p, body, allow_empty, Accept::Json) {
            assert_body_error(&e);
        }
    }

    /// A form body always parses into the login fields (they are all strings).
    #[test]
    fn form_bodies_fill_the_login_fields(
        email in any::<String>(),
        password in any::<String>(),
        noise in prop::collection::vec((any::<String>(), any::<String>()), 0..4),
    ) {
        let mut pairs = vec![("email".to_string(), email.clone()), ("password".to_string(), password.clone())];
        pairs.extend(noise.into_iter().filter(|(k, _)| k != "email" && k != "password"));
        let body = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let p = parts(&[("content-type", b"application/x-www-form-urlencoded".to_vec())], None);
        let r: LoginRequest = parse(&p, body.into_bytes(), false, Accept::JsonOrForm).unwrap();
        prop_assert_eq!(r.email, Some(email));
        prop_assert_eq!(r.password, Some(password));
    }
}
