//! TOTP codes computed the plain way (RFC 6238 over RFC 4226, HMAC-SHA1, 6 digits, 30 s), so
//! tests check the server's MFA against code that is not the server's.

use hmac::{Hmac, Mac as _};

/// RFC 4648 base32 (padding ignored) to bytes. Panics on other characters.
pub fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u64, 0u32);
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET
            .iter()
            .position(|a| *a == c)
            .unwrap_or_else(|| panic!("not base32: {text}")) as u64;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

/// The 6-digit code of `secret` for time step `step`.
pub fn code(secret: &[u8], step: i64) -> String {
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("any key"));
    mac.update(&(step as u64).to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = (h[19] & 0x0f) as usize;
    let bin = ((u32::from(h[offset]) & 0x7f) << 24)
        | (u32::from(h[offset + 1]) << 16)
        | (u32::from(h[offset + 2]) << 8)
        | u32::from(h[offset + 3]);
    format!("{:06}", bin % 1_000_000)
}

/// The current time step (Unix seconds / 30).
#[allow(clippy::disallowed_methods)] // Tests' own clock: the server's is not asked on purpose.
pub fn step_now() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    (secs / 30) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_vectors_truncated_to_six_digits() {
        let secret = b"12345678901234567890";
        assert_eq!(code(secret, 59 / 30), "287082");
        assert_eq!(code(secret, 1111111109 / 30), "081804");
        assert_eq!(code(secret, 1234567890 / 30), "005924");
        assert_eq!(code(secret, 2000000000 / 30), "279037");
        assert_eq!(base32_decode("MZXW6YTBOI"), b"foobar");
    }
}
