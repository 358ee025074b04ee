//! Signed tokens (compact JWS: access tokens, ID tokens) and opaque secrets (refresh tokens,
//! session ids, CSRF tokens).
//!
//! Only what is needed is implemented: compact serialisation, the two algorithms of the key
//! ring (EdDSA, RS256: see [`crate::keys`]), and the checks HelloJohn relies on. A token never
//! chooses its algorithm: the header's `alg` must be the algorithm of the key its `kid` names.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use protocol::token::{is_access_token_typ, AccessClaims, JwtHeader, ALG_EDDSA};
use rand::RngCore as _;
use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// Tokens longer than this are refused before any decoding work. Ours are well under 2 KiB
/// even with custom claims; the limit only bounds the work an attacker can cause.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// How far in the future `nbf` may be and still be accepted, in seconds. Instances' clocks
/// differ slightly, and a token signed by one instance is often checked by another within the
/// same second. Expiry gets no such allowance: a token is never honoured past its `exp`.
pub const NBF_LEEWAY_SECS: i64 = 5;

/// Why a token was refused. All of them answer `TOKEN_INVALID`; the variant is for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token algorithm is not supported or is not its key's")]
    UnsupportedAlgorithm,
    #[error("token was signed with an unknown key")]
    UnknownKey,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token issuer does not match")]
    WrongIssuer,
    /// An ID token where an access token belongs (a Bearer token must be `typ: at+jwt`, RFC
    /// 9068), or an access token where an ID token belongs (`id_token_hint`).
    #[error("token is not of the expected type")]
    WrongType,
    #[error("token was revoked")]
    Revoked,
}

/// A compact JWS taken apart, not yet verified.
pub(crate) struct Jws<'t> {
    pub header: JwtHeader,
    /// `header.claims`: the text the signature covers.
    pub signing_input: &'t str,
    claims_b64: &'t str,
    signature_b64: &'t str,
}

impl Jws<'_> {
    /// The signature bytes.
    pub fn signature(&self) -> Result<Vec<u8>, TokenError> {
        decode_part(self.signature_b64)
    }

    /// The claims, decoded (only once the signature has been verified).
    pub fn claims<T: DeserializeOwned>(&self) -> Result<T, TokenError> {
        protocol::json::from_slice(&decode_part(self.claims_b64)?).ok_or(TokenError::Malformed)
    }
}

/// Takes a compact JWS apart and parses its header. Tokens over [`MAX_TOKEN_LEN`] are refused
/// before any decoding.
/// Whether a token's header says it is an admin token (`typ: hj-admin+jwt`): a cheap look,
/// before any signature check, to pick the verifier. Says nothing of validity.
pub fn is_admin_typ(token: &str) -> bool {
    split(token).is_ok_and(|jws| {
        jws.header
            .typ
            .eq_ignore_ascii_case(protocol::token::TYP_ADMIN_JWT)
    })
}

pub(crate) fn split(token: &str) -> Result<Jws<'_>, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header: JwtHeader =
        protocol::json::from_slice(&decode_part(header_b64)?).ok_or(TokenError::Malformed)?;
    Ok(Jws {
        header,
        signing_input: &token[..header_b64.len() + 1 + claims_b64.len()],
        claims_b64,
        signature_b64,
    })
}

/// The compact JWS of `header` and `claims` (JSON), signed by `sign`.
pub(crate) fn compact(
    header: &JwtHeader,
    claims: &[u8],
    sign: impl FnOnce(&[u8]) -> Vec<u8>,
) -> String {
    let header = protocol::json::to_vec(header);
    // Room for an RSA-2048 signature too (256 bytes).
    let mut token = String::with_capacity((header.len() + claims.len()) * 4 / 3 + 2 + 346 + 4);
    URL_SAFE_NO_PAD.encode_string(&header, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(claims, &mut token);
    let signature = sign(token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    token
}

/// The time checks of an access token once its signature holds: `exp` and `nbf` against
/// `now` (Unix seconds).
pub(crate) fn check_access_times(claims: &AccessClaims, now: i64) -> Result<(), TokenError> {
    if now >= claims.exp {
        return Err(TokenError::Expired);
    }
    if claims.nbf > now.saturating_add(NBF_LEEWAY_SECS) {
        return Err(TokenError::NotYetValid);
    }
    Ok(())
}

/// An access token's header must say so (`typ: at+jwt`, RFC 9068): an ID token, signed by
/// the same keys, is refused as a Bearer token.
pub(crate) fn check_access_typ(header: &JwtHeader) -> Result<(), TokenError> {
    if is_access_token_typ(&header.typ) {
        Ok(())
    } else {
        Err(TokenError::WrongType)
    }
}

/// Signs access-token `claims` with the Ed25519 `key`, naming `kid` in the header (`typ:
/// at+jwt`). Returns the compact JWT.
pub fn sign(kid: &str, key: &SigningKey, claims: &AccessClaims) -> String {
    // Serialising these types cannot fail: every field is a string, an integer, a list of
    // strings or a JSON value (whose map keys are always strings).
    compact(
        &JwtHeader::access(ALG_EDDSA, kid),
        &protocol::json::to_vec(claims),
        |message| key.sign(message).to_bytes().to_vec(),
    )
}

/// Verifies an EdDSA-signed access token: its shape, `alg`, `typ: at+jwt`, the key named by
/// `kid` (found with `key_for`), the signature, then `exp` and `nbf` against `now` (Unix
/// seconds) and `iss` against `issuer`. (The key ring verifies both algorithms and every
/// tenant's keys: [`crate::KeyRing::verify`].)
pub fn verify<'k>(
    token: &str,
    now: i64,
    issuer: &str,
    key_for: impl FnOnce(&str) -> Option<&'k VerifyingKey>,
) -> Result<AccessClaims, TokenError> {
    let jws = split(token)?;
    if jws.header.alg != ALG_EDDSA {
        return Err(TokenError::UnsupportedAlgorithm);
    }
    check_access_typ(&jws.header)?;
    let key = key_for(&jws.header.kid).ok_or(TokenError::UnknownKey)?;
    let signature = Signature::from_slice(&jws.signature()?).map_err(|_| TokenError::Malformed)?;
    // `verify_strict` also refuses small-order keys and non-canonical signatures, so a token
    // has exactly one valid encoding.
    key.verify_strict(jws.signing_input.as_bytes(), &signature)
        .map_err(|_| TokenError::BadSignature)?;
    let claims: AccessClaims = jws.claims()?;
    check_access_times(&claims, now)?;
    if claims.iss != issuer {
        return Err(TokenError::WrongIssuer);
    }
    Ok(claims)
}

fn decode_part(part: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)
}

/// Fills 32 bytes from the operating system's generator.
fn random_32() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A new opaque secret (refresh token, session id): 32 random bytes as unpadded base64url
/// (43 characters), and the SHA-256 of that text, which is all the store keeps.
pub fn new_opaque_token() -> (String, [u8; 32]) {
    let token = URL_SAFE_NO_PAD.encode(random_32());
    let hash = hash_opaque(&token);
    (token, hash)
}

/// A new token id (`jti`): 16 random bytes as unpadded base64url (22 characters), from the
/// thread's CSPRNG (it identifies a token; it grants nothing, so no system call per token).
pub fn new_jti() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 of an opaque secret's text, to look it up in the store.
pub fn hash_opaque(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new CSRF token that is bound to no session (answered by `/v2/csrf` before sign-in). It
/// passes no check on its own: a sign-out through the cookie needs [`CsrfKey::token_for`]
/// the session.
pub fn new_csrf_token() -> String {
    URL_SAFE_NO_PAD.encode(random_32())
}

/// The key that binds CSRF tokens to cookie sessions. Derived from the master key, so every
/// instance of a deployment computes the same token for a session and a token chosen by the
/// caller (a self-set cookie and header pair) never passes.
#[derive(Clone)]
pub struct CsrfKey(zeroize::Zeroizing<[u8; 32]>);

impl std::fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKey(<redacted>)")
    }
}

impl CsrfKey {
    pub fn from_bytes(key: [u8; 32]) -> CsrfKey {
        CsrfKey(zeroize::Zeroizing::new(key))
    }

    /// The CSRF token of the session whose cookie value is `session_cookie`: an HMAC-SHA256
    /// of the cookie, unpadded base64url. The cookie is HttpOnly, so only a page that was
    /// handed the token (by `/v2/csrf` or the session sign-in's `csrf` cookie) knows it.
    pub fn token_for(&self, session_cookie: &str) -> String {
        use hmac::{Hmac, Mac as _};
        let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(self.0.as_ref())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"hellojohn csrf v1\0");
        mac.update(session_cookie.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Whether `token` is the CSRF token of `session_cookie` (constant time).
    pub fn verify(&self, session_cookie: &str, token: &str) -> bool {
        constant_time_eq(self.token_for(session_cookie).as_bytes(), token.as_bytes())
    }
}

/// Compares two secrets in time that does not depend on where they differ. Lengths are not
/// secret (tokens have a fixed length), so different lengths return false at once.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "https://id.example.com";

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn claims(now: i64) -> AccessClaims {
        AccessClaims {
            iss: ISS.into(),
            sub: "0190d1a4-0000-7000-8000-000000000001".into(),
            aud: "local-app".into(),
            iat: now,
            nbf: now,
            exp: now + 900,
            tid: "0190d1a4-0000-7000-8000-000000000002".into(),
            amr: vec!["pwd".into()],
            scp: "openid profile".into(),
            custom: protocol::json::from_slice(br#"{"plan": "pro"}"#).unwrap(),
            sid: None,
            jti: String::new(),
            auth_time: None,
        }
    }

    fn check(token: &str, now: i64, vk: &VerifyingKey) -> Result<AccessClaims, TokenError> {
        verify(token, now, ISS, |kid| (kid == "k1").then_some(vk))
    }

    #[test]
    fn sign_then_verify_round_trips() {
        let now = 1_700_000_000;
        let key = key();
        let vk = key.verifying_key();
        let token = sign("k1", &key, &claims(now));
        assert_eq!(token.split('.').count(), 3);
        assert!(!token.contains('='));
        let header: JwtHeader = protocol::json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (
                header.alg.as_str(),
                header.typ.as_str(),
                header.kid.as_str()
            ),
            ("EdDSA", "at+jwt", "k1")
        );
        assert_eq!(check(&token, now, &vk).unwrap(), claims(now));
        assert_eq!(check(&token, now + 899, &vk).unwrap().sub, claims(now).sub);
    }

    #[test]
    // jsonwebtoken checks `exp` against the wall clock, so the token must be made with it.
    #[allow(clippy::disallowed_methods)]
    fn verifies_with_the_jsonwebtoken_crate() {
        use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
        // The wall clock, because jsonwebtoken checks `exp` against it.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let key = key();
        let token = sign("k1", &key, &claims(now));
        let x = URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
        let decoding = DecodingKey::from_ed_components(&x).unwrap();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&["local-app"]);
        validation.set_issuer(&[ISS]);
        let data = decode::<AccessClaims>(&token, &decoding, &validation).unwrap();
        assert_eq!(data.header.kid.as_deref(), Some("k1"));
        assert_eq!(data.claims.sub, "0190d1a4-0000-7000-8000-000000000001");
        assert_eq!(data.claims.scp, "openid profile");
        assert_eq!(data.claims.custom["plan"], "pro");

        // The independent library refuses a token signed by another key.
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let forged = sign("k1", &other, &claims(now));
        assert!(decode::<AccessClaims>(&forged, &decoding, &validation).is_err());
    }

    #[test]
    fn tampered_tokens_fail() {
        let now = 1_700_000_000;
        let key = key();
        let vk = key.verifying_key();
        let token = sign("k1", &key, &claims(now));
        let parts: Vec<&str> = token.split('.').collect();

        // Claims changed after signing.
        let mut evil = claims(now);
        evil.sub = "someone-else".into();
        let evil_claims = URL_SAFE_NO_PAD.encode(protocol::json::to_vec(&evil));
        let forged = format!("{}.{}.{}", parts[0], evil_claims, parts[2]);
        assert_eq!(check(&forged, now, &vk), Err(TokenError::BadSignature));

        // One signature character flipped.
        let mut sig = parts[2].to_string();
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        sig.replace_range(0..1, flipped);
        let forged = format!("{}.{}.{}", parts[0], parts[1], sig);
        assert_eq!(check(&forged, now, &vk), Err(TokenError::BadSignature));

        // `alg: none` and HS256 are refused before any key is looked up.
        for alg in ["none", "HS256"] {
            let header =
                URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"at+jwt","kid":"k1"}}"#));
            let forged = format!("{header}.{}.", parts[1]);
            assert_eq!(
                check(&forged, now, &vk),
                Err(TokenError::UnsupportedAlgorithm)
            );
        }

        // A JWT that is not typed as an access token (an ID token's `typ: JWT`).
        let id_typed = compact(
            &JwtHeader::eddsa("k1"),
            &protocol::json::to_vec(&claims(now)),
            |m| key.sign(m).to_bytes().to_vec(),
        );
        assert_eq!(check(&id_typed, now, &vk), Err(TokenError::WrongType));

        // Unknown kid.
        let other_kid = sign("k2", &key, &claims(now));
        assert_eq!(check(&other_kid, now, &vk), Err(TokenError::UnknownKey));

        // Shapes that are not JWTs.
        let appended = format!("{token}x");
        for bad in ["", "a.b", "a.b.c.d", "!!.!!.!!", appended.as_str()] {
            assert!(check(bad, now, &vk).is_err(), "{bad}");
        }
        assert_eq!(
            check(&"a".repeat(MAX_TOKEN_LEN + 1), now, &vk),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn time_and_issuer_checks() {
        let now = 1_700_000_000;
        let key = key();
        let vk = key.verifying_key();
        let token = sign("k1", &key, &claims(now));
        assert_eq!(check(&token, now + 900, &vk), Err(TokenError::Expired));
        assert_eq!(check(&token, now + 10_000, &vk), Err(TokenError::Expired));
        // Within the clock-skew allowance, then beyond it.
        assert!(check(&token, now - NBF_LEEWAY_SECS, &vk).is_ok());
        assert_eq!(
            check(&token, now - NBF_LEEWAY_SECS - 1, &vk),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(
            verify(&token, now, "https://evil.example.com", |_| Some(&vk)),
            Err(TokenError::WrongIssuer)
        );
    }

    #[test]
    fn opaque_tokens() {
        let (token, hash) = new_opaque_token();
        assert_eq!(token.len(), 43);
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), 32);
        assert_eq!(hash, hash_opaque(&token));
        assert_eq!(hash.to_vec(), Sha256::digest(token.as_bytes()).to_vec());
        let (other, other_hash) = new_opaque_token();
        assert_ne!(token, other);
        assert_ne!(hash, other_hash);
        // Known SHA-256 value, so the stored hashes stay compatible across versions.
        assert_eq!(
            hash_opaque("abc")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn csrf_and_constant_time_eq() {
        let a = new_csrf_token();
        let b = new_csrf_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(constant_time_eq(a.as_bytes(), a.clone().as_bytes()));
        assert!(!constant_time_eq(a.as_bytes(), b.as_bytes()));
        assert!(!constant_time_eq(a.as_bytes(), &a.as_bytes()[..42]));
        assert!(constant_time_eq(b"", b""));
    }
}
