//! Signing secrets and the two signatures every delivery carries.
//!
//! * `X-HelloJohn-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, keyed with the
//!   secret exactly as shown to the operator (its UTF-8 bytes, `whsec_` prefix included).
//! * Standard Webhooks (<https://www.standardwebhooks.com>): `webhook-signature:
//!   v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>`, keyed with the
//!   secret's bytes: for `whsec_<base64>` the decoded bytes, as the Standard Webhooks libraries
//!   do; for any other secret its UTF-8 bytes.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha2::Sha256;

/// Prefix of generated secrets (the Standard Webhooks convention).
pub const SECRET_PREFIX: &str = "whsec_";
/// Bytes of randomness in a generated secret.
pub const SECRET_BYTES: usize = 32;
/// The shortest secret an operator may choose.
pub const MIN_SECRET_LEN: usize = 16;

/// A new secret: `whsec_` and the base64 of 32 random bytes.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes));
    bytes.fill(0);
    secret
}

/// Checks an operator-chosen secret: printable ASCII without spaces, 16 to 256 characters.
pub fn check_secret(secret: &str) -> Result<(), String> {
    if secret.len() < MIN_SECRET_LEN || secret.len() > 256 {
        return Err(format!(
            "a webhook secret must be {MIN_SECRET_LEN} to 256 characters (omit --secret to generate one)"
        ));
    }
    if !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("a webhook secret must be printable ASCII without spaces".to_string());
    }
    Ok(())
}

/// The HMAC key of the Standard Webhooks signature.
pub fn standard_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix(SECRET_PREFIX)
        .and_then(|b64| STANDARD.decode(b64).ok())
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// The `X-HelloJohn-Signature` value: `t=<timestamp>,v1=<hex>`.
pub fn hellojohn_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    let mac = hmac_sha256(secret.as_bytes(), &[t.as_bytes(), b".", body]);
    format!("t={t},v1={}", hex(&mac))
}

/// The `webhook-signature` value: `v1,<base64>`.
pub fn standard_signature(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    let mac = hmac_sha256(
        &standard_key(secret),
        &[msg_id.as_bytes(), b".", t.as_bytes(), b".", body],
    );
    format!("v1,{}", STANDARD.encode(mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn standard_webhooks_reference_vector() {
        let sig = standard_signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    /// RFC 4231 test case 2 ("Jefe"), through the HelloJohn framing.
    #[test]
    fn hellojohn_signature_is_hex_hmac_of_t_dot_body() {
        // HMAC-SHA256("Jefe", "what do ya want for nothing?") split as "<t>.<body>".
        let sig = hellojohn_signature("Jefe", 0, b"what do ya want for nothing?");
        assert!(sig.starts_with("t=0,v1="));
        let direct = hex(&hmac_sha256(b"Jefe", &[b"0.what do ya want for nothing?"]));
        assert_eq!(sig, format!("t=0,v1={direct}"));
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", &[b"what do ya want for nothing?"])),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn generated_secrets() {
        let s = generate_secret();
        assert!(s.starts_with(SECRET_PREFIX));
        assert_eq!(standard_key(&s).len(), SECRET_BYTES);
        assert_ne!(s, generate_secret());
        assert!(check_secret(&s).is_ok());
        assert!(check_secret("short").is_err());
        assert!(check_secret("has a space in it, sadly").is_err());
        assert_eq!(standard_key("plain-secret-0123"), b"plain-secret-0123");
    }
}
