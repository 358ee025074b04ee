//! API keys: the admin API's credentials. A token is `hjk_` and 43 base64url characters (32
//! random bytes); the store keeps its SHA-256 (a slow hash buys nothing against 256 random
//! bits) and the first 12 characters, to tell keys apart in a list.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

/// What every token starts with.
pub const TOKEN_PREFIX: &str = "hjk_";
/// Characters of the token kept as `key_prefix`.
pub const PREFIX_LEN: usize = 12;
/// Length of a token: the prefix and 43 base64url characters.
pub const TOKEN_LEN: usize = 4 + 43;

/// A new token, its `key_prefix` and its hash.
pub fn generate() -> (String, String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let prefix = token[..PREFIX_LEN].to_string();
    let hash = hash(&token);
    (token, prefix, hash)
}

/// The SHA-256 of a token, as stored.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether `token` has a token's shape (checked before any lookup; says nothing of validity).
pub fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_LEN
        && token.starts_with(TOKEN_PREFIX)
        && token[TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The `key_prefix` of a well-formed token, for logs (never the token).
pub fn prefix_of(token: &str) -> Option<&str> {
    well_formed(token).then(|| &token[..PREFIX_LEN])
}

/// What a key (or an admin) may do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Everything.
    Admin,
    /// Every `GET`.
    ReadOnly,
    /// The routes of one tenant (by slug); not API keys, admins or the tenants themselves.
    Tenant(String),
}

impl Scope {
    /// `admin`, `readonly` or `tenant:{slug}` (1-64 of `a-z`, `0-9`, `-`).
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "admin" => Some(Scope::Admin),
            "readonly" => Some(Scope::ReadOnly),
            _ => {
                let slug = s.strip_prefix("tenant:")?;
                let ok = (1..=64).contains(&slug.len())
                    && slug
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                ok.then(|| Scope::Tenant(slug.to_string()))
            }
        }
    }

    pub fn as_string(&self) -> String {
        match self {
            Scope::Admin => "admin".to_string(),
            Scope::ReadOnly => "readonly".to_string(),
            Scope::Tenant(slug) => format!("tenant:{slug}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_their_shape_and_hash() {
        let (token, prefix, h) = generate();
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(well_formed(&token));
        assert!(token.starts_with(&prefix) && prefix.len() == PREFIX_LEN);
        assert_eq!(hash(&token), h);
        assert_ne!(generate().0, token);
        assert!(!well_formed("hjk_short"));
        assert!(!well_formed(&format!("xyz_{}", &token[4..])));
        assert_eq!(prefix_of("password123"), None);
    }

    #[test]
    fn scopes_round_trip() {
        for s in ["admin", "readonly", "tenant:acme-1"] {
            assert_eq!(Scope::parse(s).unwrap().as_string(), s);
        }
        for bad in ["", "root", "tenant:", "tenant:Acme", "tenant:a b", "Admin"] {
            assert_eq!(Scope::parse(bad), None, "{bad}");
        }
        assert_eq!(Scope::parse(&format!("tenant:{}", "a".repeat(65))), None);
    }
}
