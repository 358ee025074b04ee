//! User and event metadata: a JSON object the store keeps as it is given.
//!
//! A newtype, not the JSON library's value type, so that the contract decides what metadata is
//! (an object; `{}` when empty) and callers convert at the wire boundary (`protocol`), where the
//! rules on size, depth and key names are checked before anything reaches the store.

/// A JSON object of metadata (`custom_fields`, `app_metadata`, an event's `metadata`).
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata(serde_json::Value);

impl Metadata {
    /// `{}`.
    pub fn empty() -> Metadata {
        Metadata(serde_json::Value::Object(serde_json::Map::new()))
    }

    /// Wraps a value the caller has checked (an object). Anything else is kept as it is, so a
    /// row written by another release reads back unchanged.
    pub fn from_json(value: serde_json::Value) -> Metadata {
        Metadata(value)
    }

    pub fn as_json(&self) -> &serde_json::Value {
        &self.0
    }

    pub fn into_json(self) -> serde_json::Value {
        self.0
    }

    /// Whether it is an object without keys (or not an object at all).
    pub fn is_empty(&self) -> bool {
        self.0.as_object().is_none_or(|o| o.is_empty())
    }
}

impl PartialEq<serde_json::Value> for Metadata {
    fn eq(&self, other: &serde_json::Value) -> bool {
        &self.0 == other
    }
}

/// The JSON text (compact).
impl std::fmt::Display for Metadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl Default for Metadata {
    fn default() -> Metadata {
        Metadata::empty()
    }
}

impl From<serde_json::Value> for Metadata {
    fn from(value: serde_json::Value) -> Metadata {
        Metadata(value)
    }
}

#[cfg(test)]
mod tests {
    use super::Metadata;

    #[test]
    fn empty_is_an_empty_object() {
        assert_eq!(Metadata::empty().as_json(), &serde_json::json!({}));
        assert!(Metadata::default().is_empty());
        assert!(!Metadata::from_json(serde_json::json!({"a": 1})).is_empty());
    }
}
