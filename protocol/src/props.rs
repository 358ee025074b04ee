//! Property tests of JSON decoding: every request body of the API goes through
//! [`from_body`], so arbitrary bytes, nearly valid bodies and deep nesting go in here. The
//! engine's parsers have their own in `engine/src/props/`; docs/testing.md describes both.
//!
//! `cargo test` runs a bounded number of cases per property; `PROPTEST_CASES=N` overrides it
//! and `scripts/fuzz.sh` runs millions in release mode.

use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::auth::{LoginRequest, LogoutRequest, RefreshRequest, RegisterRequest};
use crate::error::{ApiError, ErrorCode};
use crate::json::{check_depth, from_body, MAX_JSON_DEPTH};
use crate::token::{AccessClaims, Jwks, JwtHeader};

/// `default_cases` cases unless `PROPTEST_CASES` says otherwise.
fn cases(default_cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    config
}

/// The nesting depth of a value: scalars 0, each array or object one more than its deepest
/// member. Iterative, because the values under test may be deep.
fn depth(v: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Array(items) => {
                deepest = deepest.max(d + 1);
                stack.extend(items.iter().map(|i| (i, d + 1)));
            }
            Value::Object(map) => {
                deepest = deepest.max(d + 1);
                stack.extend(map.values().map(|i| (i, d + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// Strings full of what a depth scan could mistake for structure.
fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(
            prop::sample::select(vec![
                '[', ']', '{', '}', '"', '\\', ':', ',', 'a', 'é', '\u{0}', '\n', '😀'
            ]),
            0..16,
        )
        .prop_map(String::from_iter),
    ]
}

/// Any JSON value (integers only, so values survive a round trip exactly), a few levels deep,
/// then wrapped in up to `max_wrap` more arrays and objects.
fn value(max_wrap: usize) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        tricky_string().prop_map(Value::from),
    ];
    let tree = leaf.prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((tricky_string(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    });
    (
        tree,
        prop::collection::vec((any::<bool>(), tricky_string()), 0..max_wrap),
    )
        .prop_map(|(mut v, wraps)| {
            for (array, key) in wraps {
                v = if array {
                    Value::Array(vec![v])
                } else {
                    let mut m = Map::new();
                    m.insert(key, v);
                    Value::Object(m)
                };
            }
            v
        })
}

/// A request body as a client might send it: the fields of every auth request with values
/// of any type, unknown fields, and custom fields of any shape.
fn request_object() -> impl Strategy<Value = Map<String, Value>> {
    let field = prop::sample::select(
        &[
            "tenant_id",
            "client_id",
            "email",
            "password",
            "name",
            "custom_fields",
            "refresh_token",
            "post_logout_redirect_uri",
            "zzz",
            "",
        ][..],
    );
    let field_value = prop_oneof![
        4 => tricky_string().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => value(40),
    ];
    prop::collection::vec((field, field_value), 0..8)
        .prop_map(|kv| kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn assert_invalid_json(e: &ApiError) {
    assert_eq!(e.code, ErrorCode::InvalidJson, "{e:?}");
    assert_eq!(e.status(), 400);
}

/// Decodes `body` as every request and token type: each either parses or is 400
/// `INVALID_JSON`. Returns whether the register request parsed.
fn decode_all(body: &[u8]) -> bool {
    fn one<T: serde::de::DeserializeOwned>(body: &[u8]) -> bool {
        match from_body::<T>(body.to_vec()) {
            Ok(_) => true,
            Err(e) => {
                assert_invalid_json(&e);
                false
            }
        }
    }
    one::<LoginRequest>(body);
    one::<RefreshRequest>(body);
    one::<LogoutRequest>(body);
    one::<AccessClaims>(body);
    one::<JwtHeader>(body);
    one::<Jwks>(body);
    one::<serde::de::IgnoredAny>(body);
    one::<RegisterRequest>(body)
}

/// `{"zzz":` then `n` levels of `[` and `{"k":` in any mix, then their closers or not.
fn deep_body() -> impl Strategy<Value = (Vec<u8>, usize)> {
    (
        request_object(),
        prop::collection::vec(any::<bool>(), MAX_JSON_DEPTH..13_000),
        any::<bool>(),
    )
        .prop_map(|(fields, levels, close)| {
            let mut body = serde_json::to_vec(&Value::Object(fields)).unwrap();
            // Replace the closing brace with a deep member.
            body.pop();
            if body.len() > 1 {
                body.push(b',');
            }
            body.extend_from_slice(br#""zzz":"#);
            for &array in &levels {
                body.extend_from_slice(if array { b"[" } else { br#"{"k":"# });
            }
            body.push(b'1');
            if close {
                for &array in levels.iter().rev() {
                    body.push(if array { b']' } else { b'}' });
                }
            }
            body.push(b'}');
            (body, levels.len() + 1)
        })
}

proptest! {
    #![proptest_config(cases(256))]

    /// The scan agrees exactly with the real nesting of any JSON document, whatever its
    /// strings contain and however it is formatted.
    #[test]
    fn depth_scan_matches_real_depth(v in value(60), pretty in any::<bool>()) {
        let d = depth(&v);
        let text = if pretty { serde_json::to_vec_pretty(&v) } else { serde_json::to_vec(&v) }.unwrap();
        prop_assert_eq!(check_depth(&text, d).is_ok(), true);
        if d > 0 {
            prop_assert!(check_depth(&text, d - 1).is_err());
        }
        // Within the limit a document decodes to itself; beyond it, it is refused unparsed.
        match from_body::<Value>(text) {
            Ok(back) => {
                prop_assert!(d <= MAX_JSON_DEPTH);
                prop_assert_eq!(back, v);
            }
            Err(e) => {
                prop_assert!(d > MAX_JSON_DEPTH);
                assert_invalid_json(&e);
                prop_assert_eq!(&e.detail.to_json()["max_depth"], &Value::from(MAX_JSON_DEPTH));
            }
        }
    }

    /// Request bodies of every shape decode or are `INVALID_JSON`; a register body decodes
    /// exactly when its string fields are strings (or null) and it is not too deep.
    #[test]
    fn request_bodies_decode_or_are_invalid_json(fields in request_object()) {
        let strings_ok = ["tenant_id", "client_id", "email", "password", "name"]
            .iter()
            .all(|f| matches!(fields.get(*f), None | Some(Value::Null) | Some(Value::String(_))));
        let v = Value::Object(fields);
        let expected = strings_ok && depth(&v) <= MAX_JSON_DEPTH;
        let body = serde_json::to_vec(&v).unwrap();
        prop_assert_eq!(decode_all(&body), expected);
    }

    /// Near-valid bodies: a real body with a few bytes changed, inserted or cut.
    #[test]
    fn edited_bodies_decode_or_are_invalid_json(
        fields in request_object(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..5),
    ) {
        let mut body = serde_json::to_vec(&Value::Object(fields)).unwrap();
        for (at, byte, kind) in edits {
            let i = at % (body.len() + 1);
            match kind {
                0 => body.insert(i, byte),
                1 if i < body.len() => body[i] = byte,
                _ => body.truncate(i),
            }
        }
        decode_all(&body);
    }

    /// Bytes of any kind, and strings of JSON-ish tokens.
    #[test]
    fn arbitrary_bytes_are_invalid_json_or_decode(body in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        prop::collection::vec(
            prop::sample::select(&[
                "{", "}", "[", "]", ",", ":", "\"", "\\", "\"email\"", "\"custom_fields\"",
                "\"password\"", "1", "-0", "1e999", "null", "true", " ", "\"x\"", "\"\\u0000\"",
                "\"\\ud800\"", "\u{feff}", "\u{0}",
            ][..]),
            0..80,
        )
        .prop_map(|t| t.concat().into_bytes()),
    ]) {
        decode_all(&body);
    }
}

proptest! {
    #![proptest_config(cases(64))]

    /// Deep nesting inside an otherwise valid body, closed or not, is always refused as too
    /// deep, before any recursive parser sees it.
    #[test]
    fn deep_bodies_are_refused_as_too_deep((body, levels) in deep_body()) {
        prop_assert!(levels > MAX_JSON_DEPTH);
        for e in [
            from_body::<RegisterRequest>(body.clone()).unwrap_err(),
            from_body::<LoginRequest>(body.clone()).unwrap_err(),
            from_body::<LogoutRequest>(body.clone()).unwrap_err(),
            from_body::<RefreshRequest>(body.clone()).unwrap_err(),
            from_body::<Value>(body).unwrap_err(),
        ] {
            assert_invalid_json(&e);
            prop_assert_eq!(&e.detail.to_json()["max_depth"], &Value::from(MAX_JSON_DEPTH));
        }
    }
}

proptest! {
    #![proptest_config(cases(512))]

    /// Metadata of any shape and depth is accepted only within its limits (an object, at most
    /// `MAX_METADATA_DEPTH` levels, at most `MAX_METADATA_BYTES` serialised), and checking it
    /// never recurses (values here reach 6 + 40 levels).
    #[test]
    fn metadata_is_checked_within_its_limits(v in value(40)) {
        use crate::metadata::{check, MAX_METADATA_BYTES, MAX_METADATA_DEPTH};
        if check(&v).is_ok() {
            prop_assert!(v.is_object());
            prop_assert!(depth(&v) <= MAX_METADATA_DEPTH, "{}", depth(&v));
            prop_assert!(serde_json::to_vec(&v).unwrap().len() <= MAX_METADATA_BYTES);
        } else if v.is_object()
            && depth(&v) <= MAX_METADATA_DEPTH
            && serde_json::to_vec(&v).unwrap().len() <= MAX_METADATA_BYTES
        {
            prop_assert!(false, "refused within the limits: {}", v);
        }
    }

    /// The operator's metadata text and a display name: a value, or an error; never a panic.
    #[test]
    fn metadata_text_and_names_never_panic(text in prop_oneof![
        any::<String>(),
        tricky_string(),
        value(40).prop_map(|v| v.to_string()),
    ]) {
        if let Ok(v) = crate::metadata::parse(&text) {
            prop_assert!(crate::metadata::check(&v).is_ok());
        }
        if let Err(e) = crate::metadata::check_name(&text) {
            prop_assert_eq!(e.status(), 400);
            prop_assert_eq!(&e.detail.to_json()["field"], "name");
        }
    }
}
