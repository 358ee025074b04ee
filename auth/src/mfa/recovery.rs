//! Recovery codes: single-use codes a user keeps for when the authenticator is lost.
//!
//! A set is [`RECOVERY_CODES`] codes of 10 characters (50 bits each) from an alphabet without
//! the easily confused `0`, `O`, `1` and `I` (HelloJohn's Go server uses the same), shown as
//! `XXXXX-XXXXX`. Only [`hash`]es of [`normalize`]d codes are stored; a code is deleted once
//! used.

use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use std::collections::HashSet;

/// Codes in a set made by [`generate`].
pub const RECOVERY_CODES: usize = 10;

/// Characters of a code (without the display hyphen).
pub const CODE_LEN: usize = 10;

/// The alphabet of codes: 32 characters, so each is 5 uniform random bits.
pub const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Input longer than this is refused by [`normalize`] before any work.
pub const MAX_INPUT_LEN: usize = 64;

/// One code, normalised (10 characters, no hyphen), from the operating system's CSPRNG.
/// The alphabet has exactly 32 characters, so the low 5 bits of a random byte pick one
/// uniformly (no modulo bias).
fn random_code() -> String {
    let mut bytes = [0u8; CODE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|&b| char::from(ALPHABET[usize::from(b & 0x1f)]))
        .collect()
}

/// A new set of [`RECOVERY_CODES`] distinct codes, formatted `XXXXX-XXXXX` for display.
/// Show them once, store their [`hash`]es (of the [`normalize`]d form), never the codes.
pub fn generate() -> Vec<String> {
    let mut seen = HashSet::with_capacity(RECOVERY_CODES);
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    while codes.len() < RECOVERY_CODES {
        let code = random_code();
        // Two equal codes out of 2^50 are all but impossible; a set still never has one.
        if seen.insert(code.clone()) {
            let (head, tail) = code.split_at(CODE_LEN / 2);
            codes.push(format!("{head}-{tail}"));
        }
    }
    codes
}

/// A code as typed, normalised for [`hash`]: ASCII letters upper-cased, spaces and hyphens
/// removed. `None` unless exactly [`CODE_LEN`] characters of [`ALPHABET`] remain, or when the
/// input is over [`MAX_INPUT_LEN`] bytes (refused before any work).
pub fn normalize(input: &str) -> Option<String> {
    if input.len() > MAX_INPUT_LEN {
        return None;
    }
    let mut out = String::with_capacity(CODE_LEN);
    for byte in input.bytes() {
        if matches!(byte, b' ' | b'-') {
            continue;
        }
        let upper = byte.to_ascii_uppercase();
        if out.len() == CODE_LEN || !ALPHABET.contains(&upper) {
            return None;
        }
        out.push(char::from(upper));
    }
    (out.len() == CODE_LEN).then_some(out)
}

/// SHA-256 of a [`normalize`]d code: what is stored and looked up. Compare stored hashes in
/// constant time ([`crate::constant_time_eq`]).
pub fn hash(normalized: &str) -> [u8; 32] {
    Sha256::digest(normalized.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_sets_have_the_documented_shape() {
        let codes = generate();
        assert_eq!(codes.len(), RECOVERY_CODES);
        for code in &codes {
            assert_eq!(code.len(), CODE_LEN + 1, "{code}");
            assert_eq!(&code[5..6], "-", "{code}");
            assert!(code.bytes().enumerate().all(|(i, b)| if i == 5 {
                b == b'-'
            } else {
                ALPHABET.contains(&b)
            }));
            let normalized = normalize(code).expect("a generated code normalises");
            assert_eq!(normalized, code.replace('-', ""));
        }
        let unique: HashSet<&String> = codes.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODES);
    }

    #[test]
    fn codes_are_unique_across_sets_and_use_the_whole_alphabet() {
        let mut all = HashSet::new();
        let mut used = HashSet::new();
        for _ in 0..100 {
            for code in generate() {
                used.extend(code.bytes().filter(|&b| b != b'-'));
                assert!(all.insert(code));
            }
        }
        assert_eq!(all.len(), 100 * RECOVERY_CODES);
        // 10,000 characters: every one of the 32 appears (missing one: ~32 * e^-312).
        assert_eq!(used.len(), ALPHABET.len());
    }

    #[test]
    fn alphabet_has_no_ambiguous_characters() {
        assert_eq!(ALPHABET.len(), 32);
        let distinct: HashSet<&u8> = ALPHABET.iter().collect();
        assert_eq!(distinct.len(), 32);
        for confusing in [b'0', b'O', b'1', b'I'] {
            assert!(!ALPHABET.contains(&confusing));
        }
    }

    #[test]
    fn normalize_accepts_what_users_type() {
        for typed in [
            "ABCDE-FGH23",
            "abcde-fgh23",
            "ABCDEFGH23",
            " abcde fgh23 ",
            "ab-cd-ef-gh-23",
            "A B C D E F G H 2 3",
            "--ABCDE--FGH23--",
        ] {
            assert_eq!(normalize(typed).as_deref(), Some("ABCDEFGH23"), "{typed:?}");
        }
    }

    #[test]
    fn normalize_refuses_everything_else() {
        for bad in [
            "",
            "-----",
            "ABCDE-FGH2",      // 9
            "ABCDE-FGH234",    // 11
            "ABCDE-FGH20",     // 0
            "ABCDE-FGH2O",     // O
            "ABCDE-FGH21",     // 1
            "ABCDE-FGH2I",     // I
            "ABCDE_FGH23",     // underscore
            "ABCDE\tFGH23",    // tab
            "ABCDE-FGH2é",     // non-ASCII
            "ABCDE-FGH2\u{0}", // NUL
        ] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
        let padded = format!("ABCDE-FGH23{}", " ".repeat(MAX_INPUT_LEN));
        assert_eq!(normalize(&padded), None);
        let just_fits = format!("ABCDE-FGH23{}", " ".repeat(MAX_INPUT_LEN - 11));
        assert_eq!(normalize(&just_fits).as_deref(), Some("ABCDEFGH23"));
    }

    #[test]
    fn hash_is_sha256_of_the_normalized_code() {
        // SHA-256("ABCDEFGH23"), computed independently.
        let expected = Sha256::digest(b"ABCDEFGH23");
        assert_eq!(hash("ABCDEFGH23")[..], expected[..]);
        let typed = normalize("abcde-fgh23").expect("valid");
        assert_eq!(hash(&typed), hash("ABCDEFGH23"));
        assert_ne!(hash("ABCDEFGH23"), hash("ABCDEFGH24"));
        // Known answer: SHA-256("abc").
        assert_eq!(
            hash("abc"),
            [
                0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
                0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
                0xf2, 0x00, 0x15, 0xad,
            ]
        );
    }
}
