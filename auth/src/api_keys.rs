//! API keys of the admin API: their tokens, how they are stored and their scopes. `hj api-key`
//! and the engine make and check keys only through this module.
//!
//! A token is `hjk_` and 32 bytes from the operating system's CSPRNG as unpadded base64url
//! (47 characters in all). Nothing about it can be guessed, so, as with refresh tokens and
//! client secrets, the store keeps only its SHA-256 (no slow hash); the first 12 characters
//! (`hjk_` and 8 more) are kept in clear to tell keys apart in a list.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;

/// What every API key token starts with, so that a leaked one is recognisable (secret
/// scanners) and never mistaken for another kind of token.
pub const TOKEN_PREFIX: &str = "hjk_";

/// How many characters of the token are kept in clear: `hjk_` and 8 more.
pub const KEY_PREFIX_LEN: usize = 12;

/// The length of a token: `hjk_` and 43 base64url characters.
pub const TOKEN_LEN: usize = 47;

/// The longest tenant slug a `tenant:{slug}` scope names.
const MAX_SLUG: usize = 64;

/// A new key: its token (shown once, never stored), its prefix (stored, shown in lists) and
/// the SHA-256 of the token (stored, what a request's token is looked up by).
pub fn generate() -> (String, String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let mut token = String::with_capacity(TOKEN_LEN);
    token.push_str(TOKEN_PREFIX);
    URL_SAFE_NO_PAD.encode_string(bytes, &mut token);
    let prefix = token[..KEY_PREFIX_LEN].to_string();
    let hash = hash(&token);
    (token, prefix, hash)
}

/// What the store keeps of a token, and looks a presented one up by: the SHA-256 of its text.
pub fn hash(token: &str) -> [u8; 32] {
    crate::tokens::hash_opaque(token)
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
    well_formed(token).then(|| &token[..KEY_PREFIX_LEN])
}

/// What a key may do. Stored as its [`Scope::as_string`]; a stored scope that does not parse
/// (a newer release's) grants nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Everything, every tenant (`admin`).
    Admin,
    /// Every read, no change (`readonly`).
    ReadOnly,
    /// Everything within one tenant, named by its slug (`tenant:{slug}`).
    Tenant(String),
}

impl Scope {
    /// `admin`, `readonly` or `tenant:{slug}` (a slug of 1-64 characters of `a-z`, `0-9` and
    /// `-`); anything else is `None`.
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "admin" => Some(Scope::Admin),
            "readonly" => Some(Scope::ReadOnly),
            _ => {
                let slug = s.strip_prefix("tenant:")?;
                slug_ok(slug).then(|| Scope::Tenant(slug.to_string()))
            }
        }
    }

    /// The scope as stored and as [`Scope::parse`] reads it.
    pub fn as_string(&self) -> String {
        match self {
            Scope::Admin => "admin".to_string(),
            Scope::ReadOnly => "readonly".to_string(),
            Scope::Tenant(slug) => format!("tenant:{slug}"),
        }
    }
}

fn slug_ok(slug: &str) -> bool {
    (1..=MAX_SLUG).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest as _, Sha256};

    #[test]
    fn token_shapes_are_recognised_before_any_lookup() {
        let (token, prefix, _) = generate();
        assert!(well_formed(&token));
        assert_eq!(prefix_of(&token), Some(prefix.as_str()));
        assert!(!well_formed("hjk_short"));
        assert!(!well_formed(&format!("xyz_{}", &token[4..])));
        assert!(!well_formed(&format!("{}!", &token[..TOKEN_LEN - 1])));
        assert_eq!(prefix_of("a password typed in the wrong field"), None);
    }

    #[test]
    fn tokens_are_hjk_and_43_url_safe_characters_and_differ() {
        let (token, prefix, hash) = generate();
        assert_eq!(token.len(), TOKEN_LEN);
        let body = token.strip_prefix("hjk_").expect("the hjk_ prefix");
        assert_eq!(body.len(), 43);
        assert!(body
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(URL_SAFE_NO_PAD.decode(body).unwrap().len(), 32);
        assert_eq!(prefix.len(), 12);
        assert!(token.starts_with(&prefix) && prefix.starts_with("hjk_"));
        assert_eq!(hash, super::hash(&token));

        let (other, other_prefix, other_hash) = generate();
        assert_ne!(token, other);
        assert_ne!(hash, other_hash);
        assert_ne!(
            prefix, other_prefix,
            "8 random characters: a clash is 1 in 2^48"
        );
    }

    #[test]
    fn the_hash_is_the_sha256_of_the_whole_token() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            hash("abc").to_vec(),
            [
                0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
                0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
                0xf2, 0x00, 0x15, 0xad
            ]
        );
        let (token, _, stored) = generate();
        assert_eq!(stored.to_vec(), Sha256::digest(token.as_bytes()).to_vec());
        assert_ne!(
            hash(&token[4..]),
            stored,
            "the prefix is part of what is hashed"
        );
    }

    #[test]
    fn scopes_parse_and_print_back() {
        for (text, scope) in [
            ("admin", Scope::Admin),
            ("readonly", Scope::ReadOnly),
            ("tenant:acme", Scope::Tenant("acme".into())),
            ("tenant:a", Scope::Tenant("a".into())),
            ("tenant:acme-2", Scope::Tenant("acme-2".into())),
        ] {
            assert_eq!(Scope::parse(text), Some(scope.clone()), "{text}");
            assert_eq!(scope.as_string(), text);
        }
        let longest = format!("tenant:{}", "a".repeat(64));
        assert_eq!(Scope::parse(&longest).map(|s| s.as_string()), Some(longest));
    }

    #[test]
    fn anything_else_is_no_scope() {
        let too_long = format!("tenant:{}", "a".repeat(65));
        for text in [
            "",
            "Admin",
            "ADMIN",
            "admin ",
            " admin",
            "read-only",
            "readOnly",
            "tenant",
            "tenant:",
            "tenant:Acme",
            "tenant:acme_1",
            "tenant:acme.io",
            "tenant:acme/x",
            "tenant: acme",
            "tenant:é",
            "tenants:acme",
            too_long.as_str(),
        ] {
            assert_eq!(Scope::parse(text), None, "{text:?}");
        }
    }
}
