//! Stored password hashes whose Argon2 cost is beyond `HELLOJOHN_ARGON2_MAX_*`: a sign-in
//! against one fails like a wrong password, at once, without holding a hashing thread.

use std::time::{Duration, Instant};

use crate::support::{Fixture, TestServer, PASSWORD};

const HASHES: &str = "hellojohn_hash_pool_hashes_total";

/// A well-formed PHC string with t=300 at OWASP's m=19456: run, it would hold a hashing thread
/// for about 6 s per attempt (far longer in a debug build). Its tag matches no password.
const T300: &str = "$argon2id$v=19$m=19456,t=300,p=1$MDEyMzQ1Njc4OWFiY2RlZg$T4/omaWL/5ukLzshadBItERFNqPjcXmxdIJraRbPTy0";

fn unique_email(tag: &str) -> String {
    format!(
        "{tag}-{}@example.com",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Registers `email` and replaces its stored hash with `phc` through the store, as a restored
/// dump or a corrupt row would.
async fn plant(s: &TestServer, fx: &Fixture, email: &str, phc: &str) {
    s.register(fx, email).await;
    let store = s.store();
    let login = store
        .find_password_login(fx.tenant.id, email)
        .await
        .unwrap()
        .expect("the user just registered");
    let replaced = store
        .upgrade_password_hash(login.user.id, &login.password_hash, phc)
        .await
        .unwrap();
    assert!(replaced);
}

#[tokio::test]
async fn a_stored_hash_beyond_the_bounds_is_a_quick_401_and_holds_no_worker() {
    // One hashing thread: a stored hash that held it would stall every other sign-in.
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let victim = unique_email("t300");
    let other = unique_email("normal");
    plant(&s, &fx, &victim, T300).await;
    s.register(&fx, &other).await;

    // The right password of the planted account and a wrong one: both a plain 401.
    for password in [PASSWORD, "Wrong-Password-1"] {
        let hashes_before = s.metric_value(HASHES).await;
        let started = Instant::now();
        let (status, body) = s.login(&fx, &victim, password).await;
        let took = started.elapsed();
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["code"], "INVALID_CREDENTIALS", "{body}");
        assert!(
            took < Duration::from_secs(1),
            "the t=300 hash ran: {took:?}"
        );
        // One verification (of the dummy hash), as for a wrong password: the time tells nothing.
        assert_eq!(s.metric_value(HASHES).await - hashes_before, 1.0);
    }
    // The answer is the one a wrong password gets on a normal account.
    let (_, planted_body) = s.login(&fx, &victim, PASSWORD).await;
    let (_, wrong_body) = s.login(&fx, &other, "Wrong-Password-1").await;
    assert_eq!(planted_body, wrong_body);

    // The only hashing thread is free: a normal sign-in right after succeeds at once.
    let started = Instant::now();
    let (status, body) = s.login(&fx, &other, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < Duration::from_secs(1));
    s.stop().await;
}

#[tokio::test]
async fn raised_bounds_let_a_costlier_stored_hash_verify() {
    // The settable bound: with HELLOJOHN_ARGON2_MAX_ITERATIONS raised, a cheap-memory t=12
    // hash (refused by the default t <= 10) verifies and is upgraded to the current cost.
    let t12 = {
        use argon2::password_hash::{PasswordHasher as _, SaltString};
        let params = argon2::Params::new(64, 12, 1, Some(32)).unwrap();
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(PASSWORD.as_bytes(), &salt)
            .unwrap()
            .to_string()
    };
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let email = unique_email("t12");
    plant(&s, &fx, &email, &t12).await;
    let (status, body) = s.login(&fx, &email, PASSWORD).await;
    assert_eq!(status, 401, "refused by the default bounds: {body}");
    s.stop().await;

    let s = TestServer::with(&[("HELLOJOHN_ARGON2_MAX_ITERATIONS", "12")]).await;
    let fx = s.fixture().await;
    plant(&s, &fx, &email, &t12).await;
    let (status, body) = s.login(&fx, &email, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    s.stop().await;
}
