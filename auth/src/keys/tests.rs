use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use protocol::token::{AccessClaims, JwtHeader};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use storage::sqlite::SqliteStore;
use store::prelude::*;
use testkit::TempDir;

use super::master::NONCE_LEN;
use super::*;
use crate::tokens::{self, TokenError};

const ISS: &str = "http://localhost:8080";
const NOW: i64 = 1_700_000_000;
/// The longest token lifetime of these rings.
const LIFETIME: Duration = Duration::from_secs(900);
const L: i64 = 900;

async fn store(dir: &Path) -> Arc<SqliteStore> {
    let store = SqliteStore::open(&dir.join("db"), 1).unwrap();
    store.migrate().await.unwrap();
    Arc::new(store)
}

fn claims(now: i64) -> AccessClaims {
    AccessClaims {
        iss: ISS.into(),
        sub: "user-1".into(),
        aud: "local-app".into(),
        iat: now,
        nbf: now,
        exp: now + 900,
        tid: "tenant-1".into(),
        amr: vec!["pwd".into()],
        scp: String::new(),
        custom: Default::default(),
        sid: None,
        jti: String::new(),
        auth_time: None,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct IdClaims {
    iss: String,
    sub: String,
    aud: String,
    iat: i64,
    exp: i64,
    nonce: String,
    /// Every ID token of ours names its authorized party (OpenID Connect Core 2).
    azp: String,
}

fn id_claims(now: i64) -> IdClaims {
    IdClaims {
        iss: ISS.into(),
        sub: "user-1".into(),
        aud: "local-app".into(),
        iat: now,
        exp: now + 300,
        nonce: "n-0S6_WzA2Mj".into(),
        azp: "local-app".into(),
    }
}

fn header_of(token: &str) -> JwtHeader {
    let b64 = token.split('.').next().unwrap();
    protocol::json::from_slice(&URL_SAFE_NO_PAD.decode(b64).unwrap()).unwrap()
}

/// `token` with its header replaced (signature kept).
fn with_header(token: &str, header: &str) -> String {
    let mut parts = token.splitn(2, '.');
    parts.next();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        parts.next().unwrap()
    )
}

/// RSA records are slow to make: a few, made once, under one master key.
fn rsa_records() -> &'static [store::SigningKey; 3] {
    static RECORDS: OnceLock<[store::SigningKey; 3]> = OnceLock::new();
    RECORDS.get_or_init(|| {
        core::array::from_fn(|_| new_key(&master(), SigningAlg::Rs256, NOW).unwrap())
    })
}

fn master() -> MasterKey {
    MasterKey::from_bytes([3; 32])
}

fn ed(now: i64) -> store::SigningKey {
    new_key(&master(), SigningAlg::EdDsa, now).unwrap()
}

#[test]
fn kid_is_base64url_of_sha256_prefix() {
    let kid = kid_of(&[0u8; 32]);
    assert_eq!(kid.len(), 16);
    let digest = Sha256::digest([0u8; 32]);
    assert_eq!(URL_SAFE_NO_PAD.decode(&kid).unwrap(), digest[..12].to_vec());
}

#[test]
fn rsa_key_generation_in_a_test_build() {
    let started = std::time::Instant::now();
    let record = new_key(&master(), SigningAlg::Rs256, NOW).unwrap();
    let took = started.elapsed();
    eprintln!("one RSA-{RSA_BITS} key generation took {took:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert_eq!(record.alg, SigningAlg::Rs256);
    assert_eq!(record.kid, kid_of(&record.public_key));
    assert_eq!((record.created_at, record.activates_at), (NOW, NOW));
    // The PKCS#1 DER of a 2048-bit public key, and of its private key, sealed.
    assert_eq!(record.public_key.len(), 270);
    assert!(record.private_key_encrypted.len() > 1100);
}

#[test]
fn sealed_private_keys_are_bound_to_their_row_and_algorithm() {
    let rsa = rsa_records()[0].clone();
    let other = rsa_records()[1].clone();
    assert!(material::PrivateKey::decrypt(&rsa, &master()).is_ok());
    // The RSA AAD names the algorithm: the bare public key is not it.
    assert!(master()
        .decrypt(&rsa.private_key_encrypted, &rsa.public_key)
        .is_none());
    // Another row's ciphertext, or this row relabelled, does not decrypt.
    let moved = store::SigningKey {
        private_key_encrypted: other.private_key_encrypted.clone(),
        ..rsa.clone()
    };
    assert!(matches!(
        material::PrivateKey::decrypt(&moved, &master()),
        Err(KeyError::WrongMasterKey { .. })
    ));
    let relabelled = store::SigningKey {
        alg: SigningAlg::EdDsa,
        ..rsa.clone()
    };
    assert!(material::PrivateKey::decrypt(&relabelled, &master()).is_err());
    assert!(matches!(
        material::PrivateKey::decrypt(&rsa, &MasterKey::from_bytes([4; 32])),
        Err(KeyError::WrongMasterKey { .. })
    ));
    // Ed25519 keys keep the scheme of the keys stored before RSA existed.
    let ed = ed(NOW);
    assert_eq!(ed.private_key_encrypted.len(), NONCE_LEN + 32 + 16);
    assert!(master()
        .decrypt(&ed.private_key_encrypted, &ed.public_key)
        .is_some());
}

fn ring(records: &[store::SigningKey], now: i64) -> KeyRing {
    KeyRing::from_records(records, &master(), now, LIFETIME).unwrap()
}

#[test]
fn signs_and_verifies_both_algorithms() {
    let (e, r) = (ed(NOW), rsa_records()[0].clone());
    let ring = ring(&[e.clone(), r.clone()], NOW);

    // Access tokens: EdDSA, `typ: at+jwt`, byte for byte what `tokens::sign` makes.
    let access = ring.sign(&claims(NOW));
    assert_eq!(header_of(&access), JwtHeader::access("EdDSA", &e.kid));
    assert_eq!(ring.verify(&access, NOW + 1, ISS).unwrap(), claims(NOW));
    let key = match material::PrivateKey::decrypt(&e, &master()).unwrap() {
        material::PrivateKey::Ed25519(k) => k,
        material::PrivateKey::Rsa(_) => unreachable!(),
    };
    assert_eq!(access, tokens::sign(&e.kid, &key, &claims(NOW)));

    // ID tokens: RS256 by default, EdDSA on request.
    let rs = ring.sign_id_token(&id_claims(NOW));
    assert_eq!(header_of(&rs), JwtHeader::rs256(&r.kid));
    assert_eq!(
        rs.split('.').nth(2).unwrap().len(),
        342,
        "256 signature bytes"
    );
    let eddsa = ring.sign_id_token_with(SigningAlg::EdDsa, &id_claims(NOW));
    assert_eq!(header_of(&eddsa), JwtHeader::eddsa(&e.kid));
    for token in [&rs, &eddsa] {
        let back: IdClaims = ring.verify_signed(token, NOW + 1).unwrap();
        assert_eq!(back, id_claims(NOW));
        assert_eq!(
            ring.verify_id_token_hint(token, ISS).map(|h| h.sub),
            Some("user-1".to_string())
        );
        assert_eq!(
            ring.verify_id_token_hint(token, "https://evil.example"),
            None
        );
    }

    // Access claims signed with RS256 verify as access tokens too.
    let rs_access = ring.sign_access_with(SigningAlg::Rs256, &claims(NOW));
    assert_eq!(header_of(&rs_access), JwtHeader::access("RS256", &r.kid));
    assert_eq!(ring.verify(&rs_access, NOW + 1, ISS).unwrap(), claims(NOW));
    assert_eq!(
        ring.verify(&rs_access, NOW + 900, ISS),
        Err(TokenError::Expired)
    );

    // Each kind is refused where the other belongs: an ID token (even one whose claims would
    // otherwise do, with the `azp` every ID token has) is no Bearer token, an access token no
    // `id_token_hint`.
    #[derive(serde::Serialize)]
    struct IdShaped {
        #[serde(flatten)]
        claims: AccessClaims,
        azp: String,
    }
    for alg in SigningAlg::ALL {
        let id_shaped = ring.sign_id_token_with(
            alg,
            &IdShaped {
                claims: claims(NOW),
                azp: "local-app".into(),
            },
        );
        assert_eq!(header_of(&id_shaped).typ, "JWT");
        assert_eq!(
            ring.verify(&id_shaped, NOW + 1, ISS),
            Err(TokenError::WrongType)
        );
    }
    for token in [&access, &rs_access] {
        assert_eq!(ring.verify_id_token_hint(token, ISS), None);
    }
}

#[test]
fn access_token_typ_is_checked_case_insensitively_under_the_signature() {
    let (e, r) = (ed(NOW), rsa_records()[0].clone());
    let ring = ring(&[e.clone(), r], NOW);
    let key = match material::PrivateKey::decrypt(&e, &master()).unwrap() {
        material::PrivateKey::Ed25519(k) => k,
        material::PrivateKey::Rsa(_) => unreachable!(),
    };
    let signed_with = |typ: &str| {
        let header = format!(r#"{{"alg":"EdDSA","typ":"{typ}","kid":"{}"}}"#, e.kid);
        tokens::compact(
            &protocol::json::from_slice(header.as_bytes()).unwrap(),
            &protocol::json::to_vec(&claims(NOW)),
            |m| ed25519_dalek::Signer::sign(&*key, m).to_bytes().to_vec(),
        )
    };
    for typ in ["at+jwt", "AT+JWT", "application/at+jwt"] {
        assert!(ring.verify(&signed_with(typ), NOW, ISS).is_ok(), "{typ}");
    }
    for typ in ["", "application/jwt", "id_token"] {
        assert_eq!(
            ring.verify(&signed_with(typ), NOW, ISS),
            Err(TokenError::WrongType),
            "{typ}"
        );
    }
    // `typ: JWT` without `azp`: an access token of the previous release, accepted during a
    // rolling upgrade; an ID token (it always has `azp`) is not.
    assert!(ring.verify(&signed_with("JWT"), NOW, ISS).is_ok());
    let id_typed = ring.sign_id_token_with(SigningAlg::EdDsa, &id_claims(NOW));
    assert_eq!(ring.verify(&id_typed, NOW, ISS), Err(TokenError::WrongType));
}

#[test]
fn an_independent_library_verifies_both_algorithms_from_the_jwks() {
    use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
    let (e, r) = (ed(NOW), rsa_records()[0].clone());
    let ring = ring(&[e.clone(), r.clone()], NOW);
    let jwks = ring.jwks();
    assert_eq!(jwks.keys.len(), 2);
    for (alg, token) in [
        (
            Algorithm::RS256,
            ring.sign_id_token_with(SigningAlg::Rs256, &id_claims(NOW)),
        ),
        (
            Algorithm::EdDSA,
            ring.sign_id_token_with(SigningAlg::EdDsa, &id_claims(NOW)),
        ),
    ] {
        let kid = decode_header(&token).unwrap().kid.unwrap();
        let jwk = jwks.keys.iter().find(|k| k.kid == kid).unwrap();
        let key = match alg {
            Algorithm::RS256 => DecodingKey::from_rsa_components(&jwk.n, &jwk.e).unwrap(),
            _ => DecodingKey::from_ed_components(&jwk.x).unwrap(),
        };
        let mut validation = Validation::new(alg);
        // No wall clock in this crate's tests: times are checked by our own tests.
        validation.validate_exp = false;
        validation.set_audience(&["local-app"]);
        validation.set_issuer(&[ISS]);
        let data = decode::<IdClaims>(&token, &key, &validation).unwrap();
        assert_eq!(data.claims, id_claims(NOW));
        // The other algorithm with the same key is refused.
        let other = if alg == Algorithm::RS256 {
            Algorithm::EdDSA
        } else {
            Algorithm::RS256
        };
        assert!(decode::<IdClaims>(&token, &key, &Validation::new(other)).is_err());
    }
    let rsa_jwk = jwks.keys.iter().find(|k| k.kid == r.kid).unwrap();
    assert_eq!(
        (
            rsa_jwk.kty.as_str(),
            rsa_jwk.alg.as_str(),
            rsa_jwk.use_.as_str()
        ),
        ("RSA", "RS256", "sig")
    );
    assert_eq!(rsa_jwk.e, "AQAB");
    assert_eq!(URL_SAFE_NO_PAD.decode(&rsa_jwk.n).unwrap().len(), 256);
    assert!(rsa_jwk.x.is_empty() && rsa_jwk.crv.is_empty());
}

#[test]
fn verification_refuses_an_algorithm_that_is_not_its_keys() {
    let (e, r) = (ed(NOW), rsa_records()[0].clone());
    let ring = ring(&[e.clone(), r.clone()], NOW);
    let rs = ring.sign_id_token(&claims(NOW));
    let eddsa = ring.sign(&claims(NOW));
    let check = |t: &str| ring.verify(t, NOW + 1, ISS);

    // The RSA key named with EdDSA, the Ed25519 key named with RS256.
    let h = |alg: &str, kid: &str| format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{kid}"}}"#);
    for forged in [
        with_header(&rs, &h("EdDSA", &r.kid)),
        with_header(&eddsa, &h("RS256", &e.kid)),
    ] {
        assert_eq!(check(&forged), Err(TokenError::UnsupportedAlgorithm));
    }
    // Algorithms the ring does not know, with either key; HS256 "signed" with the public key
    // as the HMAC secret (the classic confusion) included.
    for alg in ["none", "HS256", "RS512", "PS256", "ES256", "rs256", ""] {
        for kid in [&r.kid, &e.kid] {
            let forged = with_header(&rs, &h(alg, kid));
            assert_eq!(
                check(&forged),
                Err(TokenError::UnsupportedAlgorithm),
                "{alg}"
            );
        }
    }
    let hs = {
        use hmac::{Hmac, Mac as _};
        let signing_input = with_header(&rs, &h("HS256", &r.kid));
        let signing_input = signing_input.rsplit_once('.').unwrap().0.to_string();
        let mut mac =
            <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(&r.public_key).unwrap();
        mac.update(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    };
    assert_eq!(check(&hs), Err(TokenError::UnsupportedAlgorithm));

    // Unknown kid; a signature of the other key; a flipped signature byte.
    assert_eq!(
        check(&with_header(&rs, &h("RS256", "nope"))),
        Err(TokenError::UnknownKey)
    );
    let other = ring_with_other_rsa();
    let foreign = other.sign_id_token(&claims(NOW));
    assert_eq!(check(&foreign), Err(TokenError::UnknownKey));
    let (signed, sig) = rs.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    sig[10] ^= 1;
    let tampered = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(&sig));
    assert_eq!(check(&tampered), Err(TokenError::BadSignature));
    let short = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(&sig[..255]));
    assert_eq!(check(&short), Err(TokenError::BadSignature));
    // Another RSA key's signature under this kid.
    let (_, foreign_sig) = foreign.rsplit_once('.').unwrap();
    assert_eq!(
        check(&format!("{signed}.{foreign_sig}")),
        Err(TokenError::BadSignature)
    );
}

fn ring_with_other_rsa() -> KeyRing {
    ring(&[ed(NOW), rsa_records()[1].clone()], NOW)
}

#[test]
fn a_ring_needs_a_signer_of_each_algorithm() {
    let err = KeyRing::from_records(&[ed(NOW)], &master(), NOW, LIFETIME).unwrap_err();
    assert!(matches!(err, KeyError::NoActiveKey(SigningAlg::Rs256)));
    assert_eq!(err.to_string(), "the store has no usable RS256 signing key");
    let err = KeyRing::from_records(&rsa_records()[..1], &master(), NOW, LIFETIME).unwrap_err();
    assert!(matches!(err, KeyError::NoActiveKey(SigningAlg::EdDsa)));
}

/// A rotation's records as the store holds them: `old` signs until `t1`, `new` from `t1`.
fn rotated(
    mut old: store::SigningKey,
    mut new: store::SigningKey,
    t1: i64,
) -> [store::SigningKey; 2] {
    old.retired_at = Some(t1);
    new.activates_at = t1;
    [old, new]
}

#[test]
fn the_key_that_signs_is_the_one_active_when_the_token_is_issued() {
    let t1 = NOW + 600;
    let [a, b] = rotated(ed(NOW - 3600), ed(NOW), t1);
    let [ra, rb] = rotated(rsa_records()[0].clone(), rsa_records()[1].clone(), t1);
    let ring = ring(&[a.clone(), b.clone(), ra.clone(), rb.clone()], NOW);

    // Before the hand-over the old keys sign; from it, the new ones. No reload needed.
    assert_eq!(ring.active_kid(SigningAlg::EdDsa, t1 - 1), a.kid);
    assert_eq!(ring.active_kid(SigningAlg::EdDsa, t1), b.kid);
    assert_eq!(ring.active_kid(SigningAlg::Rs256, t1 - 1), ra.kid);
    assert_eq!(ring.active_kid(SigningAlg::Rs256, t1), rb.kid);
    assert_eq!(header_of(&ring.sign(&claims(t1 - 1))).kid, a.kid);
    assert_eq!(header_of(&ring.sign(&claims(t1))).kid, b.kid);
    assert_eq!(
        header_of(&ring.sign_id_token(&id_claims(t1 - 1))).kid,
        ra.kid
    );
    assert_eq!(header_of(&ring.sign_id_token(&id_claims(t1))).kid, rb.kid);

    // Every key is published from its creation, pending ones included; distinct kids; EdDSA
    // keys first, newest first.
    let kids: Vec<String> = ring.jwks().keys.into_iter().map(|k| k.kid).collect();
    assert_eq!(kids, [&*b.kid, &a.kid, &rb.kid, &ra.kid]);

    // The last token of the old key verifies until it expires, with a ring built at any time
    // before then; after, the key is gone.
    let last = ring.sign(&claims(t1 - 1));
    assert_eq!(ring.verify(&last, t1 + L - 2, ISS).unwrap().sub, "user-1");
    let later = self::ring(&[a.clone(), b.clone(), ra.clone(), rb.clone()], t1 + L - 1);
    assert_eq!(later.verify(&last, t1 + L - 2, ISS).unwrap().sub, "user-1");
    assert_eq!(later.jwks().keys.len(), 4);
    let expired = self::ring(&[a.clone(), b.clone(), ra.clone(), rb.clone()], t1 + L);
    let kids: Vec<String> = expired.jwks().keys.into_iter().map(|k| k.kid).collect();
    assert_eq!(kids, [&*b.kid, &rb.kid]);
    assert_eq!(
        expired.verify(&last, t1 + L - 1, ISS),
        Err(TokenError::UnknownKey)
    );
    // The same ring refuses the old key at the end of its window, whenever it was built.
    let old_id = ring.sign_id_token_with(SigningAlg::Rs256, &id_claims(t1 - 1));
    assert!(ring.verify_signed::<IdClaims>(&old_id, t1 + L - 1).is_ok());
    assert_eq!(
        ring.verify_signed::<IdClaims>(&old_id, t1 + L).unwrap_err(),
        TokenError::UnknownKey
    );

    // States for `hj keys list`.
    for (now, a_state, b_state) in [
        (NOW, KeyState::Active, KeyState::Pending),
        (t1, KeyState::Retiring, KeyState::Active),
        (t1 + L, KeyState::Expired, KeyState::Active),
    ] {
        assert_eq!(KeyState::of(&a, now, L), a_state, "{now}");
        assert_eq!(KeyState::of(&b, now, L), b_state, "{now}");
    }
}

#[test]
fn without_a_key_active_at_signing_time_the_newest_activated_one_signs() {
    // A store edited by hand: the only Ed25519 key retired a minute ago.
    let mut a = ed(NOW - 3600);
    a.retired_at = Some(NOW - 60);
    let mut pending = ed(NOW);
    pending.activates_at = NOW + 600;
    let ring = ring(&[a.clone(), pending.clone(), rsa_records()[0].clone()], NOW);
    assert_eq!(ring.active_kid(SigningAlg::EdDsa, NOW), a.kid);
    // Before any key has activated: the first to activate.
    assert_eq!(ring.active_kid(SigningAlg::EdDsa, NOW - 7200), a.kid);
    let only_pending = self::ring(&[pending.clone(), rsa_records()[0].clone()], NOW);
    assert_eq!(only_pending.active_kid(SigningAlg::EdDsa, NOW), pending.kid);
}

#[tokio::test]
async fn concurrent_creation_yields_one_key_per_algorithm_and_reload_verifies() {
    let dir = TempDir::new("ring");
    let store = store(dir.path()).await;
    let master = MasterKey::from_bytes([5; 32]);
    let (a, b) = tokio::join!(
        KeyRing::load_or_create(&*store, &master, NOW, LIFETIME),
        KeyRing::load_or_create(&*store, &master, NOW, LIFETIME)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let stored = store.list_signing_keys().await.unwrap();
    assert_eq!(stored.len(), 2, "{stored:?}");
    for alg in SigningAlg::ALL {
        assert_eq!(a.active_kid(alg, NOW), b.active_kid(alg, NOW));
        let key = stored.iter().find(|k| k.alg == alg).unwrap();
        assert_eq!(key.kid, a.active_kid(alg, NOW));
        assert_eq!(key.kid, kid_of(&key.public_key));
    }
    let jwks = a.jwks();
    assert_eq!(jwks.keys.len(), 2);
    assert_ne!(jwks.keys[0].kid, jwks.keys[1].kid);
    let ed_key = stored.iter().find(|k| k.alg == SigningAlg::EdDsa).unwrap();
    assert_eq!(
        URL_SAFE_NO_PAD.decode(&jwks.keys[0].x).unwrap(),
        ed_key.public_key
    );

    // Signed by one instance, verified by the other.
    let token = a.sign(&claims(NOW));
    assert_eq!(b.verify(&token, NOW + 1, ISS).unwrap(), claims(NOW));
    let id = a.sign_id_token(&id_claims(NOW));
    assert_eq!(
        b.verify_signed::<IdClaims>(&id, NOW + 1).unwrap(),
        id_claims(NOW)
    );

    // A restart with the same master key verifies tokens signed before it, creating nothing.
    drop((a, b));
    let reloaded = KeyRing::load_or_create(&*store, &master, NOW + 60, LIFETIME)
        .await
        .unwrap();
    assert_eq!(
        reloaded.verify(&token, NOW + 60, ISS).unwrap().sub,
        "user-1"
    );
    assert_eq!(store.list_signing_keys().await.unwrap().len(), 2);

    // A wrong master key is a clear error at load.
    let wrong = MasterKey::from_bytes([6; 32]);
    let err = KeyRing::load_or_create(&*store, &wrong, NOW, LIFETIME)
        .await
        .unwrap_err();
    assert!(matches!(err, KeyError::WrongMasterKey { .. }));
    // It names the key, its (known) algorithm and the setting to check: only a key this
    // release knows is ever decrypted (the store skips the others, see `store::tolerance`).
    let text = err.to_string();
    assert!(text.starts_with("cannot decrypt signing key "), "{text}");
    assert!(
        text.contains("(EdDSA)") || text.contains("(RS256)"),
        "{text}"
    );
    assert!(
        text.ends_with("is HELLOJOHN_MASTER_KEY the key it was sealed with?"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_database_agree_on_one_key_per_algorithm() {
    // Two store instances on one file behave like two processes starting at once.
    let dir = TempDir::new("two-stores");
    let first = store(dir.path()).await;
    let second = store(dir.path()).await;
    let master = MasterKey::from_bytes([7; 32]);
    let (a, b) = tokio::join!(
        KeyRing::load_or_create(&*first, &master, 10, LIFETIME),
        KeyRing::load_or_create(&*second, &master, 10, LIFETIME)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    for alg in SigningAlg::ALL {
        assert_eq!(a.active_kid(alg, 10), b.active_kid(alg, 10));
    }
    assert_eq!(first.list_signing_keys().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_store_with_only_retired_keys_gets_new_ones_and_old_tokens_verify_while_they_live() {
    let dir = TempDir::new("retired");
    let store = store(dir.path()).await;
    let master = MasterKey::from_bytes([8; 32]);
    let (mut old, old_key) = new_signing_key(&master, NOW - 86_400).unwrap();
    old.retired_at = Some(NOW - 60);
    let old_kid = old.kid.clone();
    // With no key that is not retired, the retired one is inserted and none is returned.
    assert!(store
        .insert_signing_key_if_none(old)
        .await
        .unwrap()
        .is_empty());
    let old_token = tokens::sign(&old_kid, &old_key, &claims(NOW - 61));

    let ring = KeyRing::load_or_create(&*store, &master, NOW, LIFETIME)
        .await
        .unwrap();
    assert_ne!(ring.active_kid(SigningAlg::EdDsa, NOW), old_kid);
    assert_eq!(ring.verify(&old_token, NOW, ISS).unwrap().sub, "user-1");
    let kids: Vec<String> = ring.jwks().keys.into_iter().map(|k| k.kid).collect();
    assert_eq!(kids.len(), 3);
    assert_eq!(kids[1], old_kid, "after the active Ed25519 key");
    assert!(ring
        .sign(&claims(NOW))
        .starts_with(
            &URL_SAFE_NO_PAD.encode(protocol::json::to_vec(&JwtHeader::access(
                "EdDSA",
                ring.active_kid(SigningAlg::EdDsa, NOW)
            )))
        ));
}

#[tokio::test]
async fn rotation_publishes_first_then_hands_over_and_reload_sees_it() {
    let dir = TempDir::new("rotate");
    let store = store(dir.path()).await;
    let master = MasterKey::from_bytes([9; 32]);
    let ring = KeyRing::load_or_create(&*store, &master, NOW, LIFETIME)
        .await
        .unwrap();
    let old_ed = ring.active_kid(SigningAlg::EdDsa, NOW);
    let old_rs = ring.active_kid(SigningAlg::Rs256, NOW);
    let old_token = ring.sign(&claims(NOW + 5));
    let old_id = ring.sign_id_token(&id_claims(NOW + 5));

    let delay = Duration::from_secs(600);
    let t = NOW + 10;
    let mut rotations = Vec::new();
    for alg in SigningAlg::ALL {
        let r = rotate(&*store, &master, alg, t, delay).await.unwrap();
        assert_eq!((r.alg, r.activates_at, r.retired), (alg, t + 600, 1));
        rotations.push(r);
    }
    // Before a reload nothing changed here; after it, the new keys are published but the
    // old ones still sign.
    assert_eq!(ring.jwks().keys.len(), 2);
    ring.reload(&*store, t + 1).await.unwrap();
    let kids: Vec<String> = ring.jwks().keys.into_iter().map(|k| k.kid).collect();
    assert_eq!(kids.len(), 4);
    for r in &rotations {
        assert!(kids.contains(&r.kid));
        assert_ne!(ring.active_kid(r.alg, t + 599), r.kid);
        assert_eq!(ring.active_kid(r.alg, t + 600), r.kid, "switches on time");
    }
    assert_eq!(ring.active_kid(SigningAlg::EdDsa, t + 599), old_ed);
    assert_eq!(ring.active_kid(SigningAlg::Rs256, t + 599), old_rs);
    let states: Vec<(String, KeyState)> = store
        .list_signing_keys()
        .await
        .unwrap()
        .iter()
        .map(|k| (k.kid.clone(), KeyState::of(k, t + 1, L)))
        .collect();
    assert_eq!(
        states
            .iter()
            .filter(|(_, s)| *s == KeyState::Pending)
            .count(),
        2,
        "{states:?}"
    );

    // Long after the hand-over: the old keys' tokens have expired and so have the keys.
    ring.reload(&*store, t + 600 + L).await.unwrap();
    let kids: Vec<String> = ring.jwks().keys.into_iter().map(|k| k.kid).collect();
    assert_eq!(kids, [rotations[0].kid.clone(), rotations[1].kid.clone()]);
    assert_eq!(
        ring.verify(&old_token, NOW + 6, ISS),
        Err(TokenError::UnknownKey)
    );
    assert!(ring.verify_signed::<IdClaims>(&old_id, NOW + 6).is_err());

    // A rotation of an algorithm with no key signing now activates at once.
    let empty_dir = TempDir::new("rotate-empty");
    let empty = self::store(empty_dir.path()).await;
    let r = rotate(&*empty, &master, SigningAlg::EdDsa, t, delay)
        .await
        .unwrap();
    assert_eq!((r.activates_at, r.retired), (t, 0));
}

#[tokio::test]
async fn a_failed_reload_keeps_the_keys() {
    let dir = TempDir::new("reload-fail");
    let store = store(dir.path()).await;
    let master = MasterKey::from_bytes([10; 32]);
    let ring = KeyRing::load_or_create(&*store, &master, NOW, LIFETIME)
        .await
        .unwrap();
    let before = ring.jwks();
    // A key sealed under another master key cannot sign here: the reload fails whole.
    rotate(
        &*store,
        &MasterKey::from_bytes([11; 32]),
        SigningAlg::EdDsa,
        NOW,
        LIFETIME,
    )
    .await
    .unwrap();
    assert!(matches!(
        ring.reload(&*store, NOW + 1).await,
        Err(KeyError::WrongMasterKey { .. })
    ));
    assert_eq!(ring.jwks(), before);
}
