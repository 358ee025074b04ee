//! JSON decoding through simd-json and encoding through serde_json.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ApiError, ErrorCode};

/// Parses a request body. simd-json parses in place, so the body is taken by value.
/// Malformed JSON and JSON of the wrong shape are both `INVALID_JSON`, with the parser's words
/// in `detail` (they never contain the body's values).
pub fn from_body<T: DeserializeOwned>(mut body: Vec<u8>) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidJson,
            "request body is empty",
        ));
    }
    simd_json::serde::from_slice::<T>(&mut body).map_err(|e| {
        ApiError::new(ErrorCode::InvalidJson, "request body is not valid JSON")
            .with_detail(serde_json::Value::String(describe(&e)))
    })
}

fn describe(e: &simd_json::Error) -> String {
    // simd-json's Display can include the offending character; keep only the kind of error.
    let text = e.to_string();
    text.chars().take(200).collect()
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
