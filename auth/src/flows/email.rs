//! The one stored form of an email address, and what counts as one.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization as _;

/// The longest address accepted, in bytes of its normalised form (RFC 5321: a path is at
/// most 256 octets, angle brackets included).
pub const MAX_EMAIL_BYTES: usize = 254;
/// The longest local part (before the `@`), in bytes (RFC 5321).
pub const MAX_LOCAL_PART_BYTES: usize = 64;
/// The longest domain label, in characters (RFC 1035 counts the octets of the ASCII form; an
/// IDN label is checked on its Unicode form, which is never longer).
pub(super) const MAX_LABEL_CHARS: usize = 63;

/// The one form of an email address that is stored and looked up: NFKC-normalised (so the
/// full-width `ｚｅｄ@x.com` is `zed@x.com`), trimmed and lower-cased (the whole address:
/// stored addresses are lower case, and sign-in looks them up with this same function).
/// `None` when it is not a plausible address:
///
/// * the local part is 1-64 bytes of letters and digits (any script), combining marks, and
///   the RFC 5322 `atext` symbols `!#$%&'*+-/=?^_`{|}~`, with dots only between other
///   characters. So no quotes, angle brackets, spaces, `@`, backslashes or parentheses (the
///   quoted and commented forms of RFC 5322 are refused: nobody needs them, and they carry
///   markup into every page that shows the address);
/// * the domain is a hostname of at least two dot-separated labels, each 1-63 letters,
///   digits and hyphens (any script: an IDN is kept in its Unicode form), no hyphen at either
///   end, and a top-level label that is not all digits (so no IP addresses);
/// * at most 254 bytes in all;
/// * no control, format (Cf: zero-width spaces and joiners, bidi embeddings, overrides and
///   isolates, the BOM), private-use, unassigned or other invisible characters (fillers,
///   variation selectors), anywhere: the allow-lists above admit none of them, and
///   [`invisible`] names those that Unicode counts as letters or marks.
pub fn normalize_email(email: &str) -> Option<String> {
    // NFKC can make a string longer (a few characters expand many times), so the work is
    // bounded first: nothing this long can normalise into a valid address that fits.
    if email.len() > 4 * MAX_EMAIL_BYTES {
        return None;
    }
    let folded: String = email.nfkc().collect::<String>().trim().to_lowercase();
    // Lower-casing can undo the composition (`İ` becomes `i` + a combining dot); composing
    // again gives every address exactly one stored form.
    let e: String = folded.nfc().collect();
    if e.len() > MAX_EMAIL_BYTES {
        return None;
    }
    let (local, domain) = e.split_once('@')?;
    (valid_local_part(local) && valid_domain(domain)).then_some(e)
}

/// Characters that Unicode counts as letters or combining marks but that show nothing (or
/// nothing distinguishable): Hangul fillers, the combining grapheme joiner, Khmer inherent
/// vowels, Mongolian free variation selectors, variation selectors.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FFA0}'
            | '\u{E0100}'..='\u{E01EF}'
    )
}

/// A letter, digit or combining mark of any script, not an invisible one. Control, format,
/// space, private-use and unassigned characters are none of these.
fn word_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric();
    }
    (c.is_alphanumeric() || is_combining_mark(c)) && !invisible(c)
}

fn valid_local_part(local: &str) -> bool {
    const ATEXT_SYMBOLS: &str = "!#$%&'*+-/=?^_`{|}~";
    !local.is_empty()
        && local.len() <= MAX_LOCAL_PART_BYTES
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| word_char(c) || c == '.' || ATEXT_SYMBOLS.contains(c))
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && domain.len() <= MAX_EMAIL_BYTES - 2
        && labels.iter().all(|label| {
            let first = label.chars().next();
            label.chars().count() <= MAX_LABEL_CHARS
                && first.is_some_and(|c| c != '-' && !is_combining_mark(c))
                && !label.ends_with('-')
                && label.chars().all(|c| word_char(c) || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| !tld.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised() {
        for (given, stored) in [
            ("  Ada@Example.COM ", "ada@example.com"),
            // Full width (NFKC), and an ideographic space around it (trimmed after NFKC).
            ("ｚｅｄ@ｘ.ｃｏｍ", "zed@x.com"),
            ("\u{3000}ＺＥＤ@x.com\u{3000}", "zed@x.com"),
            ("ｚｅｄ@x.com", "zed@x.com"),
            // Non-ASCII letters stay, lower-cased and composed: a decomposed `ë` is the same
            // address as the precomposed one.
            ("ZOË@example.com", "zoë@example.com"),
            ("zoe\u{0308}@example.com", "zoë@example.com"),
            ("İ@example.com", "i\u{0307}@example.com"),
            // An IDN stays in its Unicode form; punycode labels are plain ASCII labels.
            ("ada@bücher.example", "ada@bücher.example"),
            ("ada@xn--bcher-kva.example", "ada@xn--bcher-kva.example"),
            ("用户@例子.广告", "用户@例子.广告"),
            // The atext symbols of RFC 5322 and dots between other characters.
            (
                "o'brien+tag@mail.example.co.uk",
                "o'brien+tag@mail.example.co.uk",
            ),
            (
                "a.b-c_d!#$%&*/=?^`{|}~@x-y.io",
                "a.b-c_d!#$%&*/=?^`{|}~@x-y.io",
            ),
        ] {
            assert_eq!(normalize_email(given).as_deref(), Some(stored), "{given:?}");
            // Normalising twice changes nothing: the stored form is a fixed point.
            assert_eq!(
                normalize_email(stored).as_deref(),
                Some(stored),
                "{stored:?}"
            );
        }
    }

    #[test]
    fn implausible_addresses_are_refused() {
        let long_local = format!("{}@x.com", "a".repeat(MAX_LOCAL_PART_BYTES + 1));
        let long_label = format!("a@{}.com", "b".repeat(MAX_LABEL_CHARS + 1));
        let long_total = format!("a@{}com", format!("{}.", "b".repeat(50)).repeat(5));
        assert!(long_total.len() > MAX_EMAIL_BYTES, "{}", long_total.len());
        for bad in [
            "",
            "ada",
            "@x.com",
            "ada@",
            "a b@c.d",
            "a@b@c.d",
            "\"<script>\"@x.com",
            "<ada@x.com>",
            "ada@x.com>",
            "\"ada\"@x.com",
            "ada(comment)@x.com",
            "a\\b@x.com",
            "a,b@x.com",
            ".ada@x.com",
            "ada.@x.com",
            "a..da@x.com",
            "ada@localhost",
            "ada@x..com",
            "ada@.x.com",
            "ada@x.com.",
            "ada@-x.com",
            "ada@x-.com",
            "ada@1.2.3.4",
            "ada@[127.0.0.1]",
            "ada@x_y.com",
            &long_local,
            &long_label,
            &long_total,
            &"a".repeat(10_000),
        ] {
            assert_eq!(normalize_email(bad), None, "{bad:?}");
        }
        let local = "a".repeat(MAX_LOCAL_PART_BYTES);
        assert!(normalize_email(&format!("{local}@x.com")).is_some());
    }

    #[test]
    fn invisible_control_format_and_bidi_characters_are_refused() {
        for c in [
            '\u{0000}',
            '\u{0007}',
            '\u{001B}',
            '\u{007F}',
            '\u{0090}', // controls
            '\u{00AD}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}', // format
            '\u{200E}',
            '\u{200F}',
            '\u{202A}',
            '\u{202E}',
            '\u{2066}',
            '\u{2069}', // bidi
            '\u{061C}',
            '\u{180E}',
            '\u{E0041}', // Arabic letter mark, Mongolian separator, tag
            '\u{034F}',
            '\u{115F}',
            '\u{1160}',
            '\u{3164}',
            '\u{FFA0}',
            '\u{17B4}', // invisible
            '\u{FE0F}',
            '\u{E0100}',
            '\u{180B}', // variation selectors
            '\u{2800}', // braille blank
            '\u{E000}',
            '\u{F8FF}',
            '\u{10FFFD}', // private use
            '\u{0378}',   // unassigned
        ] {
            for at in [0, 2, 3] {
                let mut local: Vec<char> = "zed".chars().collect();
                local.insert(at, c);
                let address: String = local.into_iter().collect::<String>() + "@x.com";
                assert_eq!(
                    normalize_email(&address),
                    None,
                    "U+{:04X} at {at}",
                    c as u32
                );
            }
            assert_eq!(
                normalize_email(&format!("zed@x{c}y.com")),
                None,
                "U+{:04X} in the domain",
                c as u32
            );
        }
        // Spaces: trimmed at either end (after NFKC), refused inside.
        for c in [
            '\u{0020}', '\u{00A0}', '\u{0085}', '\u{2028}', '\u{3000}', '\u{205F}',
        ] {
            assert_eq!(
                normalize_email(&format!("z{c}ed@x.com")),
                None,
                "U+{:04X}",
                c as u32
            );
            assert_eq!(
                normalize_email(&format!("zed{c}@x.com")),
                None,
                "U+{:04X}",
                c as u32
            );
            assert_eq!(
                normalize_email(&format!("zed@x{c}.com")),
                None,
                "U+{:04X}",
                c as u32
            );
            assert_eq!(
                normalize_email(&format!("{c}zed@x.com{c}")).as_deref(),
                Some("zed@x.com")
            );
        }
        // The examples of the report.
        for bad in [
            "\u{200b}zed@x.com",
            "\u{202e}zed@x.com",
            "\"<script>\"@x.com",
        ] {
            assert_eq!(normalize_email(bad), None, "{bad:?}");
        }
        assert_eq!(
            normalize_email("ｚｅｄ@x.com").as_deref(),
            Some("zed@x.com")
        );
    }
}
