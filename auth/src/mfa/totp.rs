//! Time-based one-time passwords: RFC 6238 TOTP over RFC 4226 HOTP with HMAC-SHA1.
//!
//! SHA-1 is what authenticator apps implement (most ignore the `algorithm` parameter of the
//! enrolment URL), and HMAC-SHA1 is not weakened by SHA-1's collision attacks.
//!
//! [`verify`] compares codes in constant time and looks at every step of the window, so its
//! timing says nothing about which step (if any) matched. It returns the matched step: the
//! caller stores it and refuses any later code whose step is not greater (RFC 6238 §5.2: a
//! code is accepted at most once).

use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use sha1::Sha1;
use subtle::{Choice, ConditionallySelectable as _, ConstantTimeEq as _};
use zeroize::{Zeroize as _, Zeroizing};

/// Bytes of a secret made by [`TotpSecret::generate`]: 160 bits, RFC 4226's recommendation
/// and the size of an HMAC-SHA1 output.
pub const SECRET_LEN: usize = 20;

/// The most steps on either side of the current one that [`verify`] looks at; a larger
/// [`TotpParams::window`] is treated as this.
pub const MAX_WINDOW: u32 = 10;

/// Base32 text longer than this is refused by [`TotpSecret::from_base32`] before any work.
pub const MAX_BASE32_LEN: usize = 1024;

/// Codes longer than this (spaces included) are refused by [`verify`] before any work.
const MAX_CODE_INPUT_LEN: usize = 64;

/// RFC 4648 base32 alphabet.
const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A TOTP shared secret. Zeroed when dropped; `Debug` does not show it.
#[derive(Clone)]
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl TotpSecret {
    /// A new random secret of [`SECRET_LEN`] bytes from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_LEN]);
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        TotpSecret(bytes)
    }

    /// A secret from its raw bytes (for instance once decrypted from the store). The bytes
    /// are copied; the caller zeroes its own copy.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        TotpSecret(Zeroizing::new(bytes.to_vec()))
    }

    /// The raw bytes of the secret (to encrypt for the store, or to compute codes).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// RFC 4648 base32 of the secret, upper case, without padding: what authenticator apps
    /// take when the secret is typed in, and the `secret` of the enrolment URL.
    pub fn to_base32(&self) -> String {
        let bytes: &[u8] = &self.0;
        let mut out = String::with_capacity((bytes.len() * 8).div_ceil(5));
        let mut buffer: u16 = 0;
        let mut bits: u32 = 0;
        for &byte in bytes {
            buffer = (buffer << 8) | u16::from(byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(char::from(
                    BASE32_ALPHABET[usize::from((buffer >> bits) & 0x1f)],
                ));
            }
            // Keep only the bits not yet written, so the shifts above never overflow.
            buffer &= (1 << bits) - 1;
        }
        if bits > 0 {
            out.push(char::from(
                BASE32_ALPHABET[usize::from((buffer << (5 - bits)) & 0x1f)],
            ));
        }
        out
    }

    /// Parses RFC 4648 base32: case-insensitive, spaces anywhere, `=` padding at the end.
    /// `None` for an empty secret, a character outside the alphabet, padding that is not at
    /// the end, a length no byte string encodes to, or text over [`MAX_BASE32_LEN`] bytes.
    /// Unused trailing bits of the last character are ignored.
    pub fn from_base32(text: &str) -> Option<Self> {
        if text.len() > MAX_BASE32_LEN {
            return None;
        }
        let mut out = Zeroizing::new(Vec::with_capacity(text.len() * 5 / 8));
        let mut buffer: u16 = 0;
        let mut bits: u32 = 0;
        let mut symbols: usize = 0;
        let mut padding = false;
        for byte in text.bytes() {
            match byte {
                b' ' => continue,
                b'=' => {
                    padding = true;
                    continue;
                }
                _ if padding => return None,
                _ => {}
            }
            let value = match byte.to_ascii_uppercase() {
                c @ b'A'..=b'Z' => c - b'A',
                c @ b'2'..=b'7' => c - b'2' + 26,
                _ => return None,
            };
            symbols += 1;
            buffer = (buffer << 5) | u16::from(value);
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push(((buffer >> bits) & 0xff) as u8);
            }
            buffer &= (1 << bits) - 1;
        }
        buffer.zeroize();
        // 8 symbols encode 5 bytes; a final group of 1, 3 or 6 symbols encodes no whole byte.
        if out.is_empty() || matches!(symbols % 8, 1 | 3 | 6) {
            return None;
        }
        Some(TotpSecret(out))
    }
}

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

/// TOTP parameters. The defaults (30-second steps, 6 digits, one step either side) are what
/// authenticator apps assume; only `window` is usefully changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpParams {
    /// Length of a time step, in seconds (RFC 6238's X). 30 by default; 0 accepts no code.
    pub step_secs: u64,
    /// Digits of a code, 6 by default. [`verify`] accepts no code unless this is 6 to 9.
    pub digits: u32,
    /// Steps accepted on either side of the current one, for clock drift and typing time.
    /// 1 by default; at most [`MAX_WINDOW`] are looked at.
    pub window: u32,
}

impl Default for TotpParams {
    fn default() -> Self {
        TotpParams {
            step_secs: 30,
            digits: 6,
            window: 1,
        }
    }
}

/// The RFC 4226 HOTP value of `secret` at `counter`: HMAC-SHA1 of the big-endian counter,
/// dynamic truncation to 31 bits, then the last `digits` decimal digits (all 31 bits when
/// `digits` is 10 or more). Format it with leading zeros to `digits` characters.
pub fn code_at(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let mut mac = <Hmac<Sha1> as hmac::digest::KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    match 10u32.checked_pow(digits) {
        Some(modulus) => binary % modulus,
        None => binary,
    }
}

/// `code` as exactly `digits` ASCII digits, with leading zeros, in a fixed buffer.
fn format_code(code: u32, digits: usize) -> [u8; 9] {
    let mut out = [b'0'; 9];
    let mut rest = code;
    for slot in out[..digits].iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out
}

/// Verifies a TOTP `code` typed at `unix_secs` (seconds since the Unix epoch).
///
/// `code` must be exactly `params.digits` ASCII digits once spaces are removed (so
/// "123 456" is accepted); anything else is `None`. The steps from `-window` to `+window`
/// around `floor(unix_secs / step_secs)` are all computed and compared in constant time,
/// with no early exit. Returns the matched step (the HOTP counter), the highest one should
/// two steps share the code; the caller must refuse a code whose step is not greater than
/// the last one it accepted. Steps before the epoch never match.
pub fn verify(secret: &TotpSecret, code: &str, unix_secs: i64, params: &TotpParams) -> Option<i64> {
    if code.len() > MAX_CODE_INPUT_LEN || !(6..=9).contains(&params.digits) {
        return None;
    }
    let digits = params.digits as usize;
    let mut typed = [0u8; 9];
    let mut len = 0usize;
    for byte in code.bytes() {
        match byte {
            b' ' => {}
            b'0'..=b'9' if len < digits => {
                typed[len] = byte;
                len += 1;
            }
            _ => return None,
        }
    }
    if len != digits {
        return None;
    }
    let step_secs = i64::try_from(params.step_secs).ok().filter(|&s| s > 0)?;
    let current = unix_secs.div_euclid(step_secs);
    let window = i64::from(params.window.min(MAX_WINDOW));

    let mut found = Choice::from(0);
    let mut matched: i64 = 0;
    for offset in -window..=window {
        let Some(step) = current.checked_add(offset) else {
            continue;
        };
        let Ok(counter) = u64::try_from(step) else {
            continue;
        };
        let expected = format_code(code_at(secret.as_bytes(), counter, params.digits), digits);
        let hit = expected[..digits].ct_eq(&typed[..digits]);
        matched.conditional_assign(&step, hit);
        found |= hit;
    }
    bool::from(found).then_some(matched)
}

/// Percent-encodes everything but RFC 3986's unreserved characters (spaces become `%20`,
/// which every authenticator app decodes; `+` would be read literally by some).
fn percent_encode(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
}

/// The enrolment URL (Google Authenticator's key URI format), usually shown as a QR code:
/// `otpauth://totp/<issuer>:<account>?secret=<base32>&issuer=<issuer>&algorithm=SHA1&digits=<d>&period=<s>`.
///
/// Issuer and account are percent-encoded in the label and in the parameters (a colon in
/// either becomes `%3A`, so the label's one literal colon is the separator). With an empty
/// `issuer`, the label is the account alone and there is no `issuer` parameter. The URL
/// contains the secret: it must not be logged.
pub fn otpauth_url(
    secret: &TotpSecret,
    issuer: &str,
    account: &str,
    params: &TotpParams,
) -> String {
    let secret = Zeroizing::new(secret.to_base32());
    let mut url = String::with_capacity(64 + secret.len() + 3 * (2 * issuer.len() + account.len()));
    url.push_str("otpauth://totp/");
    if !issuer.is_empty() {
        percent_encode(issuer, &mut url);
        url.push(':');
    }
    percent_encode(account, &mut url);
    url.push_str("?secret=");
    url.push_str(&secret);
    if !issuer.is_empty() {
        url.push_str("&issuer=");
        percent_encode(issuer, &mut url);
    }
    url.push_str("&algorithm=SHA1&digits=");
    url.push_str(&params.digits.to_string());
    url.push_str("&period=");
    url.push_str(&params.step_secs.to_string());
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    fn code_string(secret: &[u8], counter: u64, digits: u32) -> String {
        format!(
            "{:0width$}",
            code_at(secret, counter, digits),
            width = digits as usize
        )
    }

    #[test]
    fn rfc4226_appendix_d_hotp_values() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, want) in expected.into_iter().enumerate() {
            assert_eq!(
                code_at(RFC_SECRET, counter as u64, 6),
                want,
                "counter {counter}"
            );
        }
    }

    #[test]
    fn rfc6238_appendix_b_sha1_vectors() {
        let vectors: [(i64, &str); 6] = [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ];
        let secret = TotpSecret::from_bytes(RFC_SECRET);
        let params = TotpParams {
            digits: 8,
            window: 0,
            ..TotpParams::default()
        };
        for (time, want) in vectors {
            let step = time / 30;
            assert_eq!(code_string(RFC_SECRET, step as u64, 8), want, "time {time}");
            assert_eq!(
                verify(&secret, want, time, &params),
                Some(step),
                "time {time}"
            );
        }
    }

    #[test]
    fn window_accepts_one_step_either_side_and_refuses_two() {
        let secret = TotpSecret::generate();
        let params = TotpParams::default();
        let now: i64 = 1_700_000_015;
        let current = now / 30;
        for offset in -3i64..=3 {
            let step = current + offset;
            let code = code_string(secret.as_bytes(), step as u64, 6);
            let got = verify(&secret, &code, now, &params);
            if offset.abs() <= 1 {
                // Another step of the window could share the code (one chance in a million
                // each); the highest matching step is returned.
                assert!(got.is_some_and(|s| s >= step), "offset {offset}: {got:?}");
            } else if got.is_some() {
                // Only a collision with a step of the window can accept it.
                let colliding = (-1i64..=1)
                    .any(|o| code_string(secret.as_bytes(), (current + o) as u64, 6) == code);
                assert!(colliding, "offset {offset} accepted");
            }
        }
    }

    #[test]
    fn window_with_the_rfc_secret() {
        let secret = TotpSecret::from_bytes(RFC_SECRET);
        let params = TotpParams::default();
        // At t = 59 the step is 1. Step 0's code (755224 in 8 → 6 digits from RFC 4226 too).
        let t = 59 + 30 * 5; // step 6
        for (counter, code) in [
            (4, "338314"),
            (5, "254676"),
            (6, "287922"),
            (7, "162583"),
            (8, "399871"),
        ] {
            let got = verify(&secret, code, t, &params);
            if (5..=7).contains(&counter) {
                assert_eq!(got, Some(counter), "counter {counter}");
            } else {
                assert_eq!(got, None, "counter {counter}");
            }
        }
        // Window 0 accepts only the current step.
        let strict = TotpParams {
            window: 0,
            ..params
        };
        assert_eq!(verify(&secret, "287922", t, &strict), Some(6));
        assert_eq!(verify(&secret, "254676", t, &strict), None);
        // Wider windows reach further.
        let wide = TotpParams {
            window: 2,
            ..params
        };
        assert_eq!(verify(&secret, "338314", t, &wide), Some(4));
    }

    #[test]
    fn steps_before_the_epoch_never_match() {
        let secret = TotpSecret::from_bytes(RFC_SECRET);
        // At t = 10 the step is 0: step -1 does not exist, step 0 and 1 do.
        let params = TotpParams::default();
        assert_eq!(verify(&secret, "755224", 10, &params), Some(0));
        assert_eq!(verify(&secret, "287082", 10, &params), Some(1));
        assert_eq!(verify(&secret, "755224", -1_000, &params), None);
    }

    #[test]
    fn code_format_is_checked() {
        let secret = TotpSecret::from_bytes(RFC_SECRET);
        let params = TotpParams::default();
        let t = 59 + 30 * 5; // step 6: 287922
        assert_eq!(verify(&secret, "287922", t, &params), Some(6));
        assert_eq!(verify(&secret, "287 922", t, &params), Some(6));
        assert_eq!(verify(&secret, " 28 79 22 ", t, &params), Some(6));
        for bad in [
            "28792",
            "2879220",
            "28792a",
            "abcdef",
            "",
            "287-922",
            "287922\n",
            "２８７９２２",
            "+287922",
            "-28792",
        ] {
            assert_eq!(verify(&secret, bad, t, &params), None, "{bad:?}");
        }
        let long = format!("287922{}", " ".repeat(100));
        assert_eq!(verify(&secret, &long, t, &params), None);
        // Unsupported parameters accept nothing.
        for params in [
            TotpParams {
                digits: 5,
                ..params
            },
            TotpParams {
                digits: 10,
                ..params
            },
            TotpParams {
                step_secs: 0,
                ..params
            },
            TotpParams {
                step_secs: u64::MAX,
                ..params
            },
        ] {
            assert_eq!(verify(&secret, "287922", t, &params), None, "{params:?}");
        }
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let secret = TotpSecret::from_bytes(RFC_SECRET);
        let params = TotpParams {
            step_secs: 1,
            window: MAX_WINDOW + 5,
            ..TotpParams::default()
        };
        let _ = verify(&secret, "123456", i64::MAX, &params);
        let _ = verify(&secret, "123456", i64::MIN, &params);
        assert!(code_at(RFC_SECRET, u64::MAX, 6) < 1_000_000);
        assert!(code_at(RFC_SECRET, 1, 10) < 1 << 31);
    }

    #[test]
    fn base32_known_vectors() {
        let vectors = [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(
                TotpSecret::from_bytes(plain.as_bytes()).to_base32(),
                encoded
            );
            if !plain.is_empty() {
                let parsed = TotpSecret::from_base32(encoded).expect(encoded);
                assert_eq!(parsed.as_bytes(), plain.as_bytes());
            }
        }
        assert_eq!(
            TotpSecret::from_bytes(RFC_SECRET).to_base32(),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
    }

    #[test]
    fn base32_parsing_is_lenient_about_case_spaces_and_padding() {
        for text in [
            "MZXW6YTBOI",
            "mzxw6ytboi",
            "mzxw 6ytb oi",
            "MZXW6YTBOI======",
            " MzXw6YtBoI ==== == ",
        ] {
            let parsed = TotpSecret::from_base32(text).expect(text);
            assert_eq!(parsed.as_bytes(), b"foobar", "{text:?}");
        }
        for bad in [
            "",
            "   ",
            "====",
            "MZXW6YTBO1",
            "MZXW6YTBO8",
            "MZ=XW6YTBOI",
            "M",
            "MZX",
            "MZXW6Y",
            "MZXW6YTB-OI",
            "MZXW6YTBOI\n",
            "é",
        ] {
            assert!(TotpSecret::from_base32(bad).is_none(), "{bad:?}");
        }
        assert!(TotpSecret::from_base32(&"A".repeat(MAX_BASE32_LEN + 8)).is_none());
    }

    #[test]
    fn base32_round_trip() {
        for len in 0..64usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
            let secret = TotpSecret::from_bytes(&bytes);
            let text = secret.to_base32();
            assert!(!text.contains('='));
            assert!(text.bytes().all(|b| BASE32_ALPHABET.contains(&b)));
            if len > 0 {
                let back = TotpSecret::from_base32(&text).expect("round trip");
                assert_eq!(back.as_bytes(), &bytes[..]);
                let lower = TotpSecret::from_base32(&text.to_lowercase()).expect("lower");
                assert_eq!(lower.as_bytes(), &bytes[..]);
            }
        }
        let generated = TotpSecret::generate();
        assert_eq!(generated.as_bytes().len(), SECRET_LEN);
        assert_eq!(generated.to_base32().len(), 32);
        let back = TotpSecret::from_base32(&generated.to_base32()).expect("generated");
        assert_eq!(back.as_bytes(), generated.as_bytes());
        assert_ne!(TotpSecret::generate().as_bytes(), generated.as_bytes());
    }

    #[test]
    fn debug_redacts_the_secret() {
        let secret = TotpSecret::from_bytes(b"foobar");
        let shown = format!("{secret:?}");
        assert!(!shown.contains("MZXW"));
        assert!(!shown.contains("102"));
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn otpauth_url_escapes_label_and_parameters() {
        let secret = TotpSecret::from_bytes(b"foobar");
        let url = otpauth_url(
            &secret,
            "Acme Corp: Staging",
            "ana+mfa@example.com",
            &TotpParams::default(),
        );
        assert_eq!(
            url,
            "otpauth://totp/Acme%20Corp%3A%20Staging:ana%2Bmfa%40example.com\
             ?secret=MZXW6YTBOI&issuer=Acme%20Corp%3A%20Staging&algorithm=SHA1&digits=6&period=30"
        );
        let plain = otpauth_url(&secret, "HelloJohn", "ana", &TotpParams::default());
        assert_eq!(
            plain,
            "otpauth://totp/HelloJohn:ana?secret=MZXW6YTBOI&issuer=HelloJohn&algorithm=SHA1&digits=6&period=30"
        );
        let no_issuer = otpauth_url(
            &secret,
            "",
            "José&co",
            &TotpParams {
                digits: 8,
                step_secs: 60,
                window: 1,
            },
        );
        assert_eq!(
            no_issuer,
            "otpauth://totp/Jos%C3%A9%26co?secret=MZXW6YTBOI&algorithm=SHA1&digits=8&period=60"
        );
    }
}
