//! User and app metadata: the JSON objects attached to an account, and their limits.
//!
//! *User metadata* is what a user writes about themselves (the sign-up's `custom_fields`): it
//! is stored and shown back, never put into tokens, because anyone can write anything there.
//! *App metadata* is set only by an operator (`hj user set-app-metadata`) and is what the
//! access token's `custom` claim carries. Both are bounded in size and depth, so neither a
//! token nor a stored row can grow without limit, and nothing that walks them recurses deeply.

use serde_json::Value;

use crate::error::{ApiError, ErrorCode};

/// The most bytes a metadata object may take, serialised as compact JSON.
pub const MAX_METADATA_BYTES: usize = 4096;
/// The deepest nesting of objects and arrays in a metadata object; the object itself is 1.
pub const MAX_METADATA_DEPTH: usize = 8;
/// The longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Why a metadata value was refused. Each has a stable `rule` for `detail.rule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataViolation {
    /// Not a JSON object.
    NotObject,
    /// Over [`MAX_METADATA_BYTES`] serialised.
    TooLarge,
    /// Nested deeper than [`MAX_METADATA_DEPTH`].
    TooDeep,
}

impl MetadataViolation {
    /// The stable name of the broken rule (`detail.rule`).
    pub fn rule(self) -> &'static str {
        match self {
            MetadataViolation::NotObject => "object",
            MetadataViolation::TooLarge => "max_bytes",
            MetadataViolation::TooDeep => "max_depth",
        }
    }

    pub fn message(self, field: &str) -> String {
        match self {
            MetadataViolation::NotObject => format!("{field} must be a JSON object"),
            MetadataViolation::TooLarge => {
                format!("{field} must be at most {MAX_METADATA_BYTES} bytes of JSON")
            }
            MetadataViolation::TooDeep => {
                format!("{field} must be nested at most {MAX_METADATA_DEPTH} levels deep")
            }
        }
    }

    /// The 400 answer naming `field`: `BAD_REQUEST` with `detail.field` and `detail.rule`.
    pub fn to_api_error(self, field: &'static str) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, self.message(field))
            .with_field(field)
            .with("rule", self.rule())
    }
}

/// The user metadata of a sign-up: `custom_fields` (HelloJohn's SDK's name) or `user_metadata`,
/// not both; an empty object when neither. Checked against the metadata limits (400 naming the
/// field). It is stored and shown to the user, and never put into a token.
pub fn user_metadata(
    custom_fields: Option<serde_json::Value>,
    user_metadata: Option<serde_json::Value>,
) -> Result<serde_json::Value, ApiError> {
    let given = |v: &Option<serde_json::Value>| v.as_ref().is_some_and(|v| !v.is_null());
    let (field, value) = match (given(&custom_fields), given(&user_metadata)) {
        (true, true) => {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                "send custom_fields or user_metadata, not both",
            )
            .with_field("user_metadata"))
        }
        (true, false) => ("custom_fields", custom_fields),
        (false, true) => ("user_metadata", user_metadata),
        (false, false) => return Ok(serde_json::Value::Object(Default::default())),
    };
    let value = value.unwrap_or_default();
    check(&value).map_err(|v| v.to_api_error(field))?;
    Ok(value)
}

/// Checks a metadata value: a JSON object, at most [`MAX_METADATA_DEPTH`] levels of objects
/// and arrays, at most [`MAX_METADATA_BYTES`] serialised.
///
/// The depth is measured with an explicit stack, not by recursion, so a value nested
/// thousands of levels deep is refused without using the call stack; only a value that passed
/// the depth check is serialised (serde_json's serialiser recurses) to measure its size.
pub fn check(value: &Value) -> Result<(), MetadataViolation> {
    if !value.is_object() {
        return Err(MetadataViolation::NotObject);
    }
    let mut stack: Vec<(&Value, usize)> = vec![(value, 1)];
    while let Some((v, depth)) = stack.pop() {
        if depth > MAX_METADATA_DEPTH {
            return Err(MetadataViolation::TooDeep);
        }
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Object(m) => Box::new(m.values()),
            Value::Array(a) => Box::new(a.iter()),
            _ => continue,
        };
        stack.extend(
            children
                .filter(|c| c.is_object() || c.is_array())
                .map(|c| (c, depth + 1)),
        );
    }
    match serde_json::to_vec(value) {
        Ok(bytes) if bytes.len() <= MAX_METADATA_BYTES => Ok(()),
        _ => Err(MetadataViolation::TooLarge),
    }
}

/// Parses metadata given as JSON text (the operator's `--json`) and checks it.
///
/// Text longer than the size limit is refused before parsing; serde_json's own recursion
/// limit (128) bounds the parse of what is left.
pub fn parse(text: &str) -> Result<Value, String> {
    const FIELD: &str = "app metadata";
    // Whitespace does not count against the serialised size; anything longer than this
    // cannot be a valid value of at most MAX_METADATA_BYTES anyway, whatever its spacing.
    if text.len() > 16 * MAX_METADATA_BYTES {
        return Err(MetadataViolation::TooLarge.message(FIELD));
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("{FIELD} is not valid JSON: {e}"))?;
    check(&value).map_err(|v| v.message(FIELD))?;
    Ok(value)
}

/// Checks a display name: at most [`MAX_NAME_CHARS`] characters, none of them a control
/// character (a name is shown in pages and logs, where line breaks and escapes do harm).
pub fn check_name(name: &str) -> Result<(), ApiError> {
    let rule = if name.chars().count() > MAX_NAME_CHARS {
        "max_length"
    } else if name.chars().any(char::is_control) {
        "control_characters"
    } else {
        return Ok(());
    };
    Err(ApiError::new(
        ErrorCode::BadRequest,
        format!("name must be at most {MAX_NAME_CHARS} characters, without control characters"),
    )
    .with_field("name")
    .with("rule", rule))
}

/// Most keys one profile completion may set.
pub const MAX_PROFILE_FIELDS: usize = 50;
/// Longest key, and longest string value, of a profile completion.
pub const MAX_PROFILE_KEY_LEN: usize = 64;
pub const MAX_PROFILE_VALUE_LEN: usize = 1024;

/// The `custom_fields` of `POST /v2/auth/complete-profile`: an object of at most
/// [`MAX_PROFILE_FIELDS`] keys (1-64 characters) whose values are strings (at most 1024
/// characters), numbers or booleans. Nothing nested, so merging it key by key is the same on
/// every store. 400 naming `custom_fields` otherwise.
pub fn profile_patch(value: Option<Value>) -> Result<Value, ApiError> {
    let bad = |m: &str| ApiError::new(ErrorCode::BadRequest, m).with_field("custom_fields");
    let Some(Value::Object(map)) = value else {
        return Err(bad("custom_fields must be an object"));
    };
    if map.is_empty() || map.len() > MAX_PROFILE_FIELDS {
        return Err(bad("custom_fields must have 1 to 50 fields"));
    }
    for (k, v) in &map {
        if k.is_empty() || k.chars().count() > MAX_PROFILE_KEY_LEN {
            return Err(bad("field names are 1 to 64 characters"));
        }
        match v {
            Value::String(s) if s.chars().count() <= MAX_PROFILE_VALUE_LEN => {}
            Value::Number(_) | Value::Bool(_) => {}
            _ => {
                return Err(bad(
                    "field values are strings of at most 1024 characters, numbers or booleans",
                ))
            }
        }
    }
    Ok(Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An object nested `levels` deep: `{"a":{"a":...{}}}` (the outer object is level 1).
    fn nested(levels: usize) -> Value {
        let mut v = json!({});
        for _ in 1..levels {
            v = json!({ "a": v });
        }
        v
    }

    #[test]
    fn objects_within_the_limits_pass() {
        for v in [
            json!({}),
            json!({ "plan": "pro", "seats": 3, "tags": ["a", "b"], "x": null }),
            nested(MAX_METADATA_DEPTH),
            json!({ "s": "x".repeat(MAX_METADATA_BYTES - 8) }),
        ] {
            assert_eq!(check(&v), Ok(()), "{v}");
        }
    }

    #[test]
    fn only_objects_are_metadata() {
        for v in [json!([1]), json!("x"), json!(1), json!(null), json!(true)] {
            assert_eq!(check(&v), Err(MetadataViolation::NotObject), "{v}");
        }
    }

    #[test]
    fn depth_counts_objects_and_arrays() {
        assert_eq!(
            check(&nested(MAX_METADATA_DEPTH + 1)),
            Err(MetadataViolation::TooDeep)
        );
        let mut arrays = json!(1);
        for _ in 1..MAX_METADATA_DEPTH {
            arrays = json!([arrays]);
        }
        assert_eq!(check(&json!({ "a": arrays.clone() })), Ok(()));
        assert_eq!(
            check(&json!({ "a": [arrays] })),
            Err(MetadataViolation::TooDeep)
        );
    }

    #[test]
    fn a_very_deep_value_is_refused_without_recursion() {
        // Built iteratively, far deeper than a recursive walk could go on a 64 KiB stack.
        // It is leaked rather than dropped: dropping a `Value` recurses.
        let mut v = json!({});
        for _ in 0..10_000 {
            let mut m = serde_json::Map::new();
            m.insert("a".into(), v);
            v = Value::Object(m);
        }
        let result = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                let r = check(&v);
                std::mem::forget(v);
                r
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(result, Err(MetadataViolation::TooDeep));
    }

    #[test]
    fn size_is_the_compact_serialisation() {
        let limit = json!({ "s": "x".repeat(MAX_METADATA_BYTES - 8) });
        assert_eq!(
            serde_json::to_vec(&limit).unwrap().len(),
            MAX_METADATA_BYTES
        );
        let over = json!({ "s": "x".repeat(MAX_METADATA_BYTES - 7) });
        assert_eq!(check(&over), Err(MetadataViolation::TooLarge));
    }

    #[test]
    fn parse_checks_what_it_parses() {
        assert_eq!(
            parse(r#" { "role": "admin" } "#),
            Ok(json!({ "role": "admin" }))
        );
        for bad in [
            "",
            "nope",
            "[1]",
            "{\"a\":",
            &"[".repeat(60_000),
            &"[".repeat(100_000),
        ] {
            assert!(parse(bad).is_err(), "{bad:.20}");
        }
        let deep = format!(
            "{}{}",
            "{\"a\":".repeat(9),
            "{}".to_string() + &"}".repeat(9)
        );
        assert!(parse(&deep).unwrap_err().contains("levels"), "{deep}");
    }

    #[test]
    fn names_are_bounded() {
        assert!(check_name("Ada Lovelace").is_ok());
        assert!(check_name(&"é".repeat(MAX_NAME_CHARS)).is_ok());
        let e = check_name(&"é".repeat(MAX_NAME_CHARS + 1)).unwrap_err();
        assert_eq!(e.status(), 400);
        assert_eq!(
            e.detail.to_json(),
            json!({ "field": "name", "rule": "max_length" })
        );
        let e = check_name("Ada\nLovelace").unwrap_err();
        assert_eq!(e.detail.to_json()["rule"], "control_characters");
    }

    #[test]
    fn violations_name_the_field() {
        let e = MetadataViolation::TooDeep.to_api_error("custom_fields");
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert_eq!(
            e.detail.to_json(),
            json!({ "field": "custom_fields", "rule": "max_depth" })
        );
    }
}
