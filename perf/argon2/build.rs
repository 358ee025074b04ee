//! Links the C implementations under test through pkg-config: Debian's `libargon2-dev` (the
//! reference implementation) and, unless the `bundled-sodium` feature builds its own,
//! `libsodium-dev`.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if let Err(e) = pkg_config::Config::new().probe("libargon2") {
        panic!("libargon2 not found ({e}); install libargon2-dev and pkg-config");
    }
    if std::env::var_os("CARGO_FEATURE_BUNDLED_SODIUM").is_none() {
        if let Err(e) = pkg_config::Config::new().probe("libsodium") {
            panic!("libsodium not found ({e}); install libsodium-dev and pkg-config");
        }
    }
}
