//! Client secrets of confidential clients: generated here, shown to the operator once, and
//! stored only as their SHA-256.
//!
//! A secret is 32 bytes from the operating system's CSPRNG, so a plain SHA-256 is enough to
//! store it (nothing to guess, unlike a password: no slow hash needed), and checking one costs
//! microseconds.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// A new secret: 32 random bytes as unpadded base64url (43 characters).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the store keeps of a secret: its SHA-256 as 64 lower-case hex digits.
pub fn hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether `secret` is the one whose [`hash`] is `stored_hash`. The comparison takes the same
/// time wherever the hashes differ.
pub fn verify(secret: &str, stored_hash: &str) -> bool {
    let computed = hash(secret);
    computed.len() == stored_hash.len()
        && bool::from(computed.as_bytes().ct_eq(stored_hash.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_43_url_safe_characters_and_differ() {
        let a = generate();
        let b = generate();
        assert_eq!(a.len(), 43);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(a, b);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
    }

    #[test]
    fn hash_is_sha256_hex() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let secret = generate();
        assert_eq!(hash(&secret), hash(&secret));
        assert_ne!(hash(&secret), hash(&generate()));
        assert!(!hash(&secret).contains(&secret));
    }

    #[test]
    fn verify_accepts_only_the_secret() {
        let secret = generate();
        let stored = hash(&secret);
        assert!(verify(&secret, &stored));
        assert!(!verify(&generate(), &stored));
        assert!(!verify(&secret[..42], &stored));
        assert!(!verify(&format!("{secret} "), &stored));
        assert!(!verify(&secret, &stored[..63]));
        assert!(!verify(&secret, ""));
        assert!(!verify(&secret, &stored.to_uppercase()));
        // The stored hash is not itself a secret that verifies.
        assert!(!verify(&stored, &stored));
    }
}
