//! Stored password hashes (PHC strings read from the database, or imported) and the password
//! policy (request bodies).

// The properties run the hasher directly, with cheap parameters, on the test thread.
#![allow(clippy::disallowed_methods)]

use argon2::password_hash::PasswordHash;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use proptest::prelude::*;

use super::{cases, pieces};
use auth::password::{check_policy, Hasher, Params, MAX_LENGTH, MIN_LENGTH};

/// Cheap parameters, so a case costs microseconds.
const CHEAP: Params = Params {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

/// Whether a PHC string is cheap enough to verify in a property test. Costlier strings are
/// only parsed: their cost bounds are `password.rs`'s business, and a property that ran them
/// could take minutes per case.
fn cheap_enough(phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return true;
    };
    match argon2::Params::try_from(&parsed) {
        Ok(p) => p.m_cost() <= 1024 && p.t_cost() <= 4 && p.p_cost() <= 4,
        Err(_) => true,
    }
}

fn b64(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes)
}

thread_local! {
    static HASHER: std::cell::RefCell<Hasher> = std::cell::RefCell::new(Hasher::new(CHEAP).unwrap());
}

fn verify(password: &str, phc: &str) -> bool {
    HASHER.with(|h| h.borrow_mut().verify(password, phc).is_match())
}

/// `$argon2id$v=19$m=64,t=1,p=1$<salt>$<tag>` with every part drawn from valid and invalid
/// choices.
fn near_valid_phc() -> impl Strategy<Value = String> {
    (
        prop::sample::select(
            &[
                "argon2id", "argon2i", "argon2d", "argon2", "scrypt", "", "ARGON2ID",
            ][..],
        ),
        prop::sample::select(&["v=19$", "v=16$", "", "v=0$", "v=4294967296$", "v=19,v=19$"][..]),
        0u32..300,
        0u32..5,
        0u32..6,
        prop::sample::select(&["", ",keyid=AAAA", ",data=AAAA", ",x=1", ",m=8", ",t=", ",,"][..]),
        prop::collection::vec(any::<u8>(), 0..70),
        prop::collection::vec(any::<u8>(), 0..140),
    )
        .prop_map(|(alg, version, m, t, p, extra, salt, tag)| {
            format!(
                "${alg}${version}m={m},t={t},p={p}{extra}${}${}",
                b64(&salt),
                b64(&tag)
            )
        })
}

proptest! {
    #![proptest_config(cases(256))]

    /// Garbage and nearly valid PHC strings never panic and never match a password.
    #[test]
    fn phc_strings_never_panic_or_match(
        phc in prop_oneof![
            any::<String>(),
            pieces(&["$", "argon2id", "v=19", "m=", "t=", "p=", ",", "=", "AAAA", "+/", "$$"], 24),
            near_valid_phc(),
        ],
        password in any::<String>(),
    ) {
        if cheap_enough(&phc) {
            prop_assert!(!verify(&password, &phc), "{:?}", phc);
        }
    }

    /// Edits of a real hash never panic; only the unedited hash is sure to match.
    #[test]
    fn edited_hashes_never_panic(
        password in "[ -~]{1,20}",
        at in any::<usize>(),
        c in prop_oneof![any::<char>(), prop::sample::select(vec!['$', ',', '=', '0', '9', 'A', '+'])],
        delete in any::<bool>(),
    ) {
        let phc = HASHER.with(|h| h.borrow_mut().hash(&password)).unwrap();
        prop_assert!(verify(&password, &phc));
        let mut chars: Vec<char> = phc.chars().collect();
        let i = at % chars.len();
        if delete { chars.remove(i); } else { chars[i] = c; }
        let edited: String = chars.into_iter().collect();
        if cheap_enough(&edited) {
            let _ = verify(&password, &edited);
        }
    }

    #[test]
    fn policy_never_panics(password in prop_oneof![any::<String>(), "[a-zA-Z0-9]{0,140}"]) {
        if check_policy(&password).is_ok() {
            let n = password.chars().count();
            prop_assert!((MIN_LENGTH..=MAX_LENGTH).contains(&n));
        }
    }
}
