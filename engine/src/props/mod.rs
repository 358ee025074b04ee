//! Property tests: the engine's fuzzing on stable Rust.
//!
//! Each module feeds arbitrary bytes and structured, nearly valid input into one family of
//! parsers that read the network, the database or the environment, and asserts that none of
//! them panics or recurses without bound, and that garbage is refused the way the API promises
//! (for request bodies: a 4xx with a stable code). The JSON decoding itself is covered in
//! `protocol/src/props.rs`, the database and Redis URLs and cached sessions in the storage
//! crate's `props` modules.
//!
//! `cargo test` runs a bounded number of cases per property (the defaults below, chosen so the
//! whole suite stays well under a minute on a 2-core CI machine in a debug build);
//! `PROPTEST_CASES=N` overrides them, and `scripts/fuzz.sh` runs millions in release mode. See
//! docs/testing.md.
//!
//! The properties live here rather than beside each parser so that work on the parsers and on
//! their properties does not collide.

mod client_ip;
mod config;
mod email;
mod http;
mod password;
mod tokens;
mod webhook;

use proptest::prelude::*;

/// The proptest configuration of a property: `default_cases` cases unless `PROPTEST_CASES`
/// says otherwise (proptest's own default, 256, ignores how expensive a case is).
pub(crate) fn cases(default_cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    config
}

/// Header-value text as a client can send it: visible ASCII, spaces, tabs and obs-text bytes
/// (0x80-0xFF), which `http::HeaderValue` accepts and `to_str` then refuses.
pub(crate) fn header_bytes(max_len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            8 => 0x20u8..0x7f,
            1 => Just(b'\t'),
            1 => 0x80u8..=0xff,
        ],
        0..max_len,
    )
}

/// Strings that look like the given pieces strung together, with noise: the near-valid
/// inputs that reach a parser's deeper branches far more often than uniform bytes.
pub(crate) fn pieces(
    words: &'static [&'static str],
    max_pieces: usize,
) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            6 => prop::sample::select(words).prop_map(str::to_string),
            1 => any::<char>().prop_map(String::from),
            1 => "[0-9]{1,25}",
        ],
        0..max_pieces,
    )
    .prop_map(|parts| parts.concat())
}
