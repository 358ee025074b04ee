//! Email addresses: every sign-up and sign-in normalises the address it is given
//! (`auth::flows::normalize_email`), with NFKC and allow-lists. Whatever comes in, the answer is
//! one plausible, visible, stable address or a refusal.

use proptest::prelude::*;

use super::{cases, pieces};
use auth::flows::normalize_email;

/// Format characters (Unicode category Cf) that hide or reorder text: zero-width spaces and
/// joiners, bidi marks, embeddings, overrides and isolates, the word joiner, the BOM.
fn hides_text(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
    )
}

fn addresses() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        pieces(
            &[
                "ada",
                "zed",
                "@",
                "@",
                "example.com",
                "x.com",
                ".",
                "..",
                "-",
                "xn--",
                " ",
                "\u{200b}",
                "\u{202e}",
                "\u{2066}",
                "\u{feff}",
                "\u{00ad}",
                "ｚｅｄ",
                "＠",
                "İ",
                "ß",
                "\u{0301}",
                "\"",
                "<",
                ">",
                "\\",
                "(",
                ")",
                "1.2.3.4",
                "例え",
                ".jp",
                "ﬀ",
                "\u{3164}",
                "\u{fe0f}",
                "Ⅸ",
            ],
            8,
        ),
    ]
}

proptest! {
    #![proptest_config(cases(2048))]

    #[test]
    fn addresses_normalise_to_one_visible_stable_form_or_are_refused(raw in addresses()) {
        if let Some(e) = normalize_email(&raw) {
            prop_assert!(e.len() <= 254, "{}", e);
            prop_assert_eq!(e.matches('@').count(), 1, "{}", e);
            prop_assert!(
                !e.chars().any(|c| c.is_control() || c.is_whitespace() || hides_text(c)),
                "{:?}", e
            );
            prop_assert!(!e.contains(['"', '<', '>', '\\', '(', ')']), "{}", e);
            // Normalising again changes nothing: one stored form per address.
            prop_assert_eq!(normalize_email(&e), Some(e.clone()));
        }
    }
}
