//! The metadata of an event draft: string keys with plain values. The flows fill it without
//! seeing JSON; the store writes it as a JSON object (keys sorted, as serde_json's map sorts).

/// One metadata value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaValue {
    Str(String),
    Int(i64),
}

impl From<&str> for MetaValue {
    fn from(s: &str) -> MetaValue {
        MetaValue::Str(s.to_string())
    }
}

impl From<String> for MetaValue {
    fn from(s: String) -> MetaValue {
        MetaValue::Str(s)
    }
}

impl From<u64> for MetaValue {
    fn from(n: u64) -> MetaValue {
        MetaValue::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

/// An event's metadata (an empty object when nothing was set).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventMeta(Vec<(String, MetaValue)>);

impl EventMeta {
    pub fn new() -> EventMeta {
        EventMeta::default()
    }

    /// Sets `key`, replacing an earlier value.
    pub fn insert(&mut self, key: &str, value: impl Into<MetaValue>) {
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.0.push((key.to_string(), value)),
        }
    }

    /// Sets `key` unless it is already set.
    pub fn insert_default(&mut self, key: &str, value: impl FnOnce() -> MetaValue) {
        if self.get(key).is_none() {
            self.0.push((key.to_string(), value()));
        }
    }

    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The JSON object the store writes.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.0
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        MetaValue::Str(s) => serde_json::Value::String(s.clone()),
                        MetaValue::Int(n) => serde_json::Value::from(*n),
                    };
                    (k.clone(), v)
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_set_once_and_written_as_an_object() {
        let mut m = EventMeta::new();
        assert_eq!(m.to_json(), serde_json::json!({}));
        m.insert("client_id", "app");
        m.insert("client_id", "web");
        m.insert_default("client_id", || "ignored".into());
        m.insert_default("family_id", || "f1".into());
        m.insert("revoked", 3u64);
        assert_eq!(m.get("client_id"), Some(&MetaValue::Str("web".into())));
        assert_eq!(
            m.to_json(),
            serde_json::json!({"client_id": "web", "family_id": "f1", "revoked": 3})
        );
    }
}
