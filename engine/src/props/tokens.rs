//! Access-token verification (`Authorization: Bearer`, `/userinfo`, `/v2/me`, logout) and the
//! master key, which reads the environment and decrypts database rows.

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use hmac::{Hmac, Mac as _};
use proptest::prelude::*;
use protocol::token::AccessClaims;
use serde_json::{json, Value};
use sha2::Sha256;

use super::{cases, pieces};
use auth::keys::{new_key, new_signing_key, KeyRing, MasterKey, SigningAlg};
use auth::tokens::{TokenError, MAX_TOKEN_LEN};

const ISS: &str = "https://id.example.com";
const NOW: i64 = 1_700_000_000;

/// A key ring of two Ed25519 keys (the newer one signs, both verify) and an RSA key, the
/// Ed25519 signing key, and one valid token: made once, because key generation is the slow
/// part.
struct Fixture {
    ring: KeyRing,
    signing: SigningKey,
    token: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let master = MasterKey::generate();
        let (old, _) = new_signing_key(&master, NOW - 10).unwrap();
        let (current, signing) = new_signing_key(&master, NOW).unwrap();
        let rsa = new_key(&master, SigningAlg::Rs256, NOW).unwrap();
        let lifetime = std::time::Duration::from_secs(900);
        let ring = KeyRing::from_records(&[old, current, rsa], &master, NOW, lifetime).unwrap();
        let token = ring.sign(&claims());
        Fixture {
            ring,
            signing,
            token,
        }
    })
}

fn claims() -> AccessClaims {
    AccessClaims {
        iss: ISS.into(),
        sub: "0190d1a4-0000-7000-8000-000000000001".into(),
        aud: "local-app".into(),
        iat: NOW,
        nbf: NOW,
        exp: NOW + 900,
        tid: "0190d1a4-0000-7000-8000-000000000002".into(),
        amr: vec!["pwd".into()],
        scp: "openid".into(),
        custom: json!({"plan": "pro"}),
        sid: None,
        jti: String::new(),
        auth_time: None,
    }
}

/// A compact JWT of any header and claims bytes, signed with the ring's current key.
fn signed_raw(header: &[u8], claims: &[u8]) -> String {
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(claims));
    let signature = fixture().signing.sign(token.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
    token
}

/// The JSON text `{"a": … {"a": leaf} … }` or `[[ … leaf … ]]`, `depth` containers deep,
/// written directly: a `serde_json::Value` that deep would recurse through the test's stack
/// when serialised or dropped.
fn nested(depth: usize, arrays: bool, leaf: &str) -> String {
    let leaf = serde_json::to_string(leaf).unwrap();
    let (open, close) = if arrays { ("[", "]") } else { ("{\"a\":", "}") };
    format!("{}{leaf}{}", open.repeat(depth), close.repeat(depth))
}

#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, char),
    Insert(usize, char),
    Delete(usize),
    SwapSegments(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let c = prop_oneof![
        8 => prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".chars().collect::<Vec<_>>()
        ),
        1 => prop::sample::select(vec!['.', '=', '+', '/', ' ', '%']),
        1 => any::<char>(),
    ];
    prop_oneof![
        (any::<usize>(), c.clone()).prop_map(|(i, c)| Edit::Replace(i, c)),
        (any::<usize>(), c).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<usize>().prop_map(Edit::Delete),
        (0usize..3, 0usize..3).prop_map(|(a, b)| Edit::SwapSegments(a, b)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(token: &str, edit: &Edit) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
    match *edit {
        Edit::Replace(i, c) if !chars.is_empty() => {
            let i = at(i, chars.len());
            chars[i] = c;
        }
        Edit::Insert(i, c) => {
            let i = at(i, chars.len() + 1);
            chars.insert(i, c);
        }
        Edit::Delete(i) if !chars.is_empty() => {
            let i = at(i, chars.len());
            chars.remove(i);
        }
        Edit::SwapSegments(a, b) => {
            let mut parts: Vec<&str> = token.split('.').collect();
            if a < parts.len() && b < parts.len() {
                parts.swap(a, b);
            }
            return parts.join(".");
        }
        Edit::Truncate(n) => chars.truncate(at(n, chars.len() + 1)),
        _ => {}
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(cases(1024))]

    #[test]
    fn arbitrary_text_never_verifies(text in prop_oneof![
        any::<String>(),
        pieces(&["eyJ", ".", "..", "AAAA", "-", "_", "=", "eyJhbGciOiJFZERTQSJ9", "e30"], 30),
    ]) {
        prop_assert!(fixture().ring.verify(&text, NOW, ISS).is_err());
    }

    /// Any change to a valid token makes it fail: there is exactly one encoding of a signed
    /// token (canonical base64, strict Ed25519 signatures).
    #[test]
    fn garbled_tokens_never_verify(edits in prop::collection::vec(edit(), 1..4)) {
        let f = fixture();
        prop_assert!(f.ring.verify(&f.token, NOW, ISS).is_ok());
        let mut garbled = f.token.clone();
        for e in &edits {
            garbled = apply(&garbled, e);
        }
        let result = f.ring.verify(&garbled, NOW, ISS);
        if garbled == f.token {
            prop_assert!(result.is_ok());
        } else {
            prop_assert!(result.is_err(), "{:?} of the token verified", edits);
        }
    }

    /// Whatever algorithm a header names and however the token is "signed" (nothing, random
    /// bytes, HMAC keyed with the public key, our own signature of other bytes), only EdDSA
    /// with our signature of exactly these bytes verifies.
    #[test]
    fn algorithm_confusion_is_refused(
        alg in prop_oneof![
            prop::sample::select(&[
                "none", "None", "NONE", "HS256", "HS384", "HS512", "RS256", "ES256", "PS256",
                "eddsa", "EDDSA", "EdDSA ", " EdDSA", "Ed25519", "", "EdDSA\u{0}",
            ][..]).prop_map(str::to_string),
            any::<String>(),
        ],
        kid_known in any::<bool>(),
        signature in 0u8..4,
        random in prop::collection::vec(any::<u8>(), 0..80),
    ) {
        let f = fixture();
        let kid = if kid_known { f.ring.active_kid(SigningAlg::EdDsa, NOW) } else { "k0".to_string() };
        let header = serde_json::to_vec(&json!({"alg": alg, "typ": "at+jwt", "kid": kid})).unwrap();
        let claims = serde_json::to_vec(&claims()).unwrap();
        let signed = format!("{}.{}", URL_SAFE_NO_PAD.encode(&header), URL_SAFE_NO_PAD.encode(&claims));
        let public = URL_SAFE_NO_PAD.encode(f.signing.verifying_key().as_bytes());
        let sig: Vec<u8> = match signature {
            0 => Vec::new(),
            1 => random,
            2 => {
                let mut mac = Hmac::<Sha256>::new_from_slice(public.as_bytes()).unwrap();
                mac.update(signed.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
            _ => f.signing.sign(f.token.as_bytes()).to_bytes().to_vec(),
        };
        let token = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(&sig));
        let result = f.ring.verify(&token, NOW, ISS);
        if alg == "RS256" && !kid_known {
            // A known algorithm naming no key of the ring.
            prop_assert!(result == Err(TokenError::UnknownKey) || result == Err(TokenError::Malformed), "{:?}", result);
        } else if alg != "EdDSA" {
            prop_assert!(result == Err(TokenError::UnsupportedAlgorithm) || result == Err(TokenError::Malformed), "{:?}", result);
        } else {
            prop_assert!(result.is_err());
        }
    }
}

proptest! {
    #![proptest_config(cases(128))]

    /// Claims and headers that carry our valid signature but hostile JSON: wrong types,
    /// missing fields, deep nesting. They are refused (or accepted when they happen to be
    /// valid), and nesting far past any stack's reach only makes them malformed.
    #[test]
    fn hostile_json_under_a_valid_signature(
        depth in prop_oneof![0usize..40, 100usize..140, 1_000usize..2_400],
        arrays in any::<bool>(),
        in_header in any::<bool>(),
        exp in prop_oneof![
            Just(Value::from(NOW + 60)),
            Just(Value::from("soon")),
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
        ],
        extra in pieces(&["{", "}", "[", "]", "\"", ":", ",", "1", "null"], 10),
    ) {
        const HOLE: &str = "\"@@deep@@\"";
        let mut claims_v = serde_json::to_value(claims()).unwrap();
        claims_v["exp"] = exp.clone();
        let mut header_v = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": fixture().ring.active_kid(SigningAlg::EdDsa, NOW)});
        if in_header { header_v["x"] = json!("@@deep@@") } else { claims_v["custom"] = json!("@@deep@@") }
        let deep = nested(depth, arrays, &extra);
        let header = serde_json::to_string(&header_v).unwrap().replace(HOLE, &deep);
        let claims_text = serde_json::to_string(&claims_v).unwrap().replace(HOLE, &deep);
        let token = signed_raw(header.as_bytes(), claims_text.as_bytes());
        let result = fixture().ring.verify(&token, NOW, ISS);
        let valid_exp = exp.as_i64().is_some_and(|e| e > NOW);
        if token.len() > MAX_TOKEN_LEN {
            prop_assert_eq!(result, Err(TokenError::Malformed));
        } else if in_header {
            // An unknown header member is skipped by serde_json without recursion, at any depth.
            prop_assert_eq!(result.is_ok(), valid_exp, "{:?}", result);
        } else if depth > 130 {
            // The custom claim is a `serde_json::Value`: serde_json stops at 128 levels.
            prop_assert_eq!(result, Err(TokenError::Malformed));
        } else if depth < 120 {
            prop_assert_eq!(result.is_ok(), valid_exp, "{:?}", result);
        }
        // Trailing bytes after the claims object are never accepted.
        if !extra.trim().is_empty() {
            let trailing = format!("{claims_text}{extra}");
            prop_assert!(fixture().ring.verify(&signed_raw(header.as_bytes(), trailing.as_bytes()), NOW, ISS).is_err());
        }
    }

    #[test]
    fn master_keys_and_sealed_blobs(
        text in prop_oneof![any::<String>(), "[0-9a-fA-F]{60,68}", "[A-Za-z0-9+/_=-]{40,48}"],
        blob in prop::collection::vec(any::<u8>(), 0..120),
        aad in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        if let Err(e) = MasterKey::parse(&text) {
            // A refusal never repeats the secret it was given.
            if text.trim().len() >= 8 {
                prop_assert!(!e.to_string().contains(text.trim()));
            }
        }
        // Random blobs never decrypt (authenticated encryption), whatever their length.
        prop_assert!(MasterKey::generate().decrypt(&blob, &aad).is_none());
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// RFC 9068: under a valid signature, only a header that types the token as an access
    /// token (`at+jwt`, `application/at+jwt`, any case) makes a Bearer token; an ID token's
    /// `JWT` (with the `azp` every ID token has), a missing or any other `typ` does not. `JWT`
    /// without `azp` is an access token of the previous release (rolling upgrades), accepted.
    #[test]
    fn only_access_token_types_are_bearer_tokens(
        typ in prop_oneof![
            prop::sample::select(&[
                "at+jwt", "AT+JWT", "At+Jwt", "application/at+jwt", "APPLICATION/AT+JWT",
                "JWT", "jwt", "", "at+jwt ", " at+jwt", "at+jwt\u{0}", "application/jwt",
                "application/", "at", "id+jwt", "application/at+jwt;x=1",
            ][..]).prop_map(str::to_string),
            any::<String>(),
        ],
    ) {
        let kid = fixture().ring.active_kid(SigningAlg::EdDsa, NOW);
        let header = serde_json::to_vec(&json!({"alg": "EdDSA", "typ": typ, "kid": kid})).unwrap();
        let access = typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt");
        let legacy = typ.eq_ignore_ascii_case("JWT");
        let mut id_shaped = serde_json::to_value(claims()).unwrap();
        id_shaped["azp"] = json!("local-app");
        for (claims, bearer) in [(serde_json::to_value(claims()).unwrap(), access || legacy), (id_shaped, access)] {
            let claims = serde_json::to_vec(&claims).unwrap();
            let result = fixture().ring.verify(&signed_raw(&header, &claims), NOW, ISS);
            if bearer {
                prop_assert!(result.is_ok(), "{:?}", result);
            } else {
                prop_assert_eq!(result, Err(TokenError::WrongType));
            }
        }
    }
}
