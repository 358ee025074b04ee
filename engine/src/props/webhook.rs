//! Webhook endpoint URLs (set by tenant administrators, read back from the database by the
//! delivery worker), the SSRF address check, event lists and secrets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::{cases, pieces};
use crate::webhook::send::parse_url;
use crate::webhook::signature::{check_secret, standard_key};
use crate::webhook::ssrf::forbidden;
use crate::webhook::{parse_event_list, ALL_EVENTS};

fn url() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(
        &[
            "http://",
            "https://",
            "HTTP://",
            "ftp://",
            "http:/",
            "",
            "//",
            "javascript:",
        ][..],
    );
    let userinfo = prop::sample::select(&["", "user@", "u:p@", "@", "a@b@"][..]);
    let host = prop_oneof![
        Just("example.com".to_string()),
        Just("localhost".to_string()),
        any::<[u8; 4]>().prop_map(|o| Ipv4Addr::from(o).to_string()),
        any::<[u8; 16]>().prop_map(|o| format!("[{}]", Ipv6Addr::from(o))),
        Just("[::ffff:127.0.0.1]".to_string()),
        Just("[::1".to_string()),
        "[a-z0-9.-]{0,20}",
        "[ -~]{0,12}",
    ];
    let port = prop::sample::select(&["", ":80", ":0", ":65535", ":65536", ":-1", ":x", ":"][..]);
    let rest = pieces(
        &[
            "/", "hook", "?", "a=b", "&", "#", "%", "%zz", " ", "\\", "..", "@",
        ],
        8,
    );
    (scheme, userinfo, host, port, rest).prop_map(|(s, u, h, p, r)| format!("{s}{u}{h}{p}{r}"))
}

proptest! {
    #![proptest_config(cases(1024))]

    /// Whatever is typed as an endpoint URL, it is refused or it is an http(s) URL with a host
    /// and no credentials or fragment.
    #[test]
    fn endpoint_urls_parse_or_are_refused(text in prop_oneof![any::<String>(), url()]) {
        if let Ok(t) = parse_url(&text) {
            let lower = text.to_ascii_lowercase();
            prop_assert!(lower.starts_with("http://") || lower.starts_with("https://"), "{:?}", text);
            prop_assert!(!t.host.is_empty());
            prop_assert!(!t.authority.contains('@'));
            prop_assert!(!text.contains('#'));
            prop_assert_eq!(t.https, lower.starts_with("https://"));
        }
    }

    /// Every address gets an answer; the ranges that are internal by definition are always
    /// refused, also when written as IPv4-mapped IPv6.
    #[test]
    fn internal_addresses_are_refused(octets in any::<[u8; 4]>(), v6 in any::<[u8; 16]>()) {
        let _ = forbidden(IpAddr::V6(Ipv6Addr::from(v6)));
        let v4 = Ipv4Addr::from(octets);
        let verdict = forbidden(IpAddr::V4(v4));
        let internal = v4.is_loopback() || v4.is_private() || v4.is_link_local()
            || v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() || octets[0] == 0;
        if internal {
            prop_assert!(verdict.is_some(), "{} allowed", v4);
        }
        let mapped = forbidden(IpAddr::V6(v4.to_ipv6_mapped()));
        prop_assert_eq!(mapped.is_some(), verdict.is_some(), "{} and its mapped form disagree", v4);
    }

    #[test]
    fn event_lists_and_secrets(
        list in prop_oneof![
            any::<String>(),
            pieces(&["user.login", "user.registered", ",", " ", "*", "user.", "login"], 10),
        ],
        secret in prop_oneof![any::<String>(), "whsec_[A-Za-z0-9+/=]{0,60}", "[!-~]{10,20}"],
    ) {
        if let Ok(events) = parse_event_list(&list) {
            prop_assert!(!events.is_empty());
            for e in &events {
                prop_assert!(e == ALL_EVENTS || crate::webhook::EventType::parse(e).is_some());
            }
        }
        if check_secret(&secret).is_ok() {
            prop_assert!((16..=256).contains(&secret.len()));
        }
        prop_assert!(!standard_key(&secret).is_empty() || secret.is_empty());
    }
}
