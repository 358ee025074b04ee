//! JSON decoding through simd-json and encoding through serde_json.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ApiError, ErrorCode};

/// The deepest nesting of arrays and objects a request body may have: the document itself is
/// level 1, so `{"a":[1]}` is 2 deep. Parsing JSON into serde types recurses once per level on
/// the thread's stack, and a stack overflow aborts the whole process (it cannot be caught), so
/// a body is measured with [`check_depth`] before it is parsed. 32 is far beyond any request
/// body of the API and far below what a 2 MiB thread stack survives (about 12,000).
pub const MAX_JSON_DEPTH: usize = 32;

/// Why [`check_depth`] refused a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepthError {
    /// Arrays and objects nest deeper than the limit.
    TooDeep,
    /// A backslash outside a string: never valid JSON. It is refused here because JSON parsers
    /// that find string boundaries by counting backslashes could disagree with this scan about
    /// where a string starts, and then about which brackets are inside strings.
    StrayBackslash,
}

/// Measures the nesting of a JSON document in one pass without recursion, and refuses it when
/// arrays and objects nest deeper than `max`. Brackets inside strings (escapes included) do
/// not count. The document is not validated otherwise: a malformed one that passes is refused
/// by the parser, which then recurses at most `max` levels.
pub fn check_depth(body: &[u8], max: usize) -> Result<(), DepthError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(DepthError::TooDeep);
                }
            }
            // Unbalanced closers are the parser's to refuse; they never deepen anything.
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'\\' => return Err(DepthError::StrayBackslash),
            _ => {}
        }
    }
    Ok(())
}

/// Parses a request body. simd-json parses in place, so the body is taken by value.
/// Malformed JSON and JSON of the wrong shape are both `INVALID_JSON`, with the parser's words
/// in `detail` (they never contain the body's values). A body nested deeper than
/// [`MAX_JSON_DEPTH`] is `INVALID_JSON` with `detail.max_depth`, refused before it is parsed.
pub fn from_body<T: DeserializeOwned>(mut body: Vec<u8>) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidJson,
            "request body is empty",
        ));
    }
    match check_depth(&body, MAX_JSON_DEPTH) {
        Ok(()) => {}
        Err(DepthError::TooDeep) => {
            return Err(ApiError::new(
                ErrorCode::InvalidJson,
                format!("request body nests JSON deeper than {MAX_JSON_DEPTH} levels"),
            )
            .with("max_depth", MAX_JSON_DEPTH))
        }
        Err(DepthError::StrayBackslash) => {
            return Err(
                ApiError::new(ErrorCode::InvalidJson, "request body is not valid JSON")
                    .with_text("backslash outside a string"),
            )
        }
    }
    simd_json::serde::from_slice::<T>(&mut body).map_err(|e| {
        ApiError::new(ErrorCode::InvalidJson, "request body is not valid JSON")
            .with_text(describe(&e))
    })
}

fn describe(e: &simd_json::Error) -> String {
    // simd-json's Display can include the offending character; keep only the kind of error.
    let text = e.to_string();
    text.chars().take(200).collect()
}

/// A JSON document carried without being read (user and app metadata, custom fields).
pub type Document = serde_json::Value;

/// `bytes` as a `T`, or `None` when they are not its JSON. For small, already bounded inputs
/// (a token's parts); request bodies go through [`from_body`].
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    serde_json::from_slice(bytes).ok()
}

/// A request body sent as a form (`application/x-www-form-urlencoded`, already decoded into
/// pairs) read as the `T` its JSON would be: every field a string.
pub fn from_form<T: DeserializeOwned>(pairs: Vec<(String, String)>) -> Result<T, ApiError> {
    let map: serde_json::Map<String, serde_json::Value> = pairs
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|_| ApiError::new(ErrorCode::BadRequest, "form fields are not valid"))
}

/// Serialises a response body. Serialising our own types cannot fail; if it ever did the
/// answer is a fixed internal-error body rather than a panic.
pub fn to_vec<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|_| {
        br#"{"code":"INTERNAL_ERROR","message":"response encoding failed","detail":null}"#.to_vec()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Probe {
        email: String,
    }

    #[test]
    fn parses_valid_json() {
        let p: Probe = from_body(br#"{"email":"a@b.c","extra":1}"#.to_vec()).unwrap();
        assert_eq!(p.email, "a@b.c");
    }

    #[test]
    fn malformed_and_wrong_shape_are_invalid_json() {
        for body in [&b"{\"email\":"[..], b"[1,2]", b"", b"{\"email\":5}"] {
            let e = from_body::<Probe>(body.to_vec()).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidJson);
            assert_eq!(e.status(), 400);
        }
    }

    /// `{"zzz":` + `[` x n + `]` x n + `}`: the body that took the whole server down (issue 11).
    fn deep_arrays(n: usize) -> Vec<u8> {
        let mut body = b"{\"zzz\":".to_vec();
        body.extend(b"[".repeat(n));
        body.extend(b"]".repeat(n));
        body.push(b'}');
        body
    }

    /// `{"a":` x n + `1` + `}` x n.
    fn deep_objects(n: usize) -> Vec<u8> {
        let mut body = b"{\"a\":".repeat(n);
        body.push(b'1');
        body.extend(b"}".repeat(n));
        body
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        // 20,000 levels overflowed a 2 MiB stack (the shard threads' and this test thread's)
        // before the depth check existed; now they are a plain 400.
        for body in [
            deep_arrays(20_000),
            deep_objects(20_000),
            deep_arrays(MAX_JSON_DEPTH),
        ] {
            let e = from_body::<Probe>(body).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidJson);
            assert_eq!(e.status(), 400);
            assert_eq!(
                e.detail.to_json(),
                serde_json::json!({ "max_depth": MAX_JSON_DEPTH })
            );
        }
        // The same through `serde_json::Value` and `IgnoredAny`, which recurse the same way.
        let e = from_body::<serde_json::Value>(deep_objects(50_000)).unwrap_err();
        assert_eq!(e.detail.to_json()["max_depth"], MAX_JSON_DEPTH);
        let e = from_body::<serde::de::IgnoredAny>(deep_arrays(50_000)).unwrap_err();
        assert_eq!(e.detail.to_json()["max_depth"], MAX_JSON_DEPTH);
    }

    #[test]
    fn depth_limit_is_exact() {
        // `deep_arrays(n)` is n + 1 deep (the outer object), `deep_objects(n)` n deep.
        let v: serde_json::Value = from_body(deep_arrays(MAX_JSON_DEPTH - 1)).unwrap();
        assert!(v["zzz"].is_array());
        let v: serde_json::Value = from_body(deep_objects(MAX_JSON_DEPTH)).unwrap();
        assert!(v["a"].is_object());
        assert_eq!(
            check_depth(&deep_objects(MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH),
            Err(DepthError::TooDeep)
        );
        assert_eq!(check_depth(b"", 0), Ok(()));
        assert_eq!(check_depth(b"1", 0), Ok(()));
        assert_eq!(check_depth(b"[]", 0), Err(DepthError::TooDeep));
    }

    #[test]
    fn brackets_in_strings_do_not_count() {
        // Brackets, escaped quotes and escaped backslashes inside strings are text.
        let mut body = br#"{"email":"a@b.c","x":""#.to_vec();
        body.extend(b"[{".repeat(1000));
        body.extend(br#"\"[[[\\","y":[["\\\"]]"]]}"#);
        assert_eq!(check_depth(&body, 3), Ok(()));
        assert_eq!(check_depth(&body, 2), Err(DepthError::TooDeep));
        let p: Probe = from_body(body).unwrap();
        assert_eq!(p.email, "a@b.c");
        // An escaped backslash closes nothing: the quote after it ends the string, and the
        // brackets after that count.
        assert_eq!(check_depth(br#"["\\",[[1]]]"#, 2), Err(DepthError::TooDeep));
        assert_eq!(check_depth(br#"["\\",[[1]]]"#, 3), Ok(()));
    }

    #[test]
    fn backslash_outside_a_string_is_invalid_json() {
        assert_eq!(
            check_depth(br#"[\"[[[[", 1]"#, 10),
            Err(DepthError::StrayBackslash)
        );
        let e = from_body::<Probe>(br#"{\"email":"a"}"#.to_vec()).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidJson);
    }

    #[test]
    fn error_body_shape() {
        let e = ApiError::new(ErrorCode::Conflict, "email taken");
        let v: serde_json::Value = serde_json::from_slice(&to_vec(&e)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"code":"CONFLICT","message":"email taken","detail":null})
        );
    }
}
