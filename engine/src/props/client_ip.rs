//! The client address from `X-Forwarded-For` / `X-Real-IP`: written by anyone, believed only
//! from trusted proxies.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

use super::{cases, header_bytes};
use crate::client_ip::{client_ip, subject};
use crate::config::Cidr;

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o))),
        any::<[u8; 16]>().prop_map(|o| IpAddr::V6(Ipv6Addr::from(o))),
        // IPv4-mapped IPv6, which must be judged as the IPv4 address.
        any::<[u8; 4]>().prop_map(|o| IpAddr::V6(Ipv4Addr::from(o).to_ipv6_mapped())),
        prop::sample::select(vec![
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::from([10, 0, 0, 1]),
            IpAddr::from([10, 1, 2, 3]),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]),
    ]
}

fn cidr() -> impl Strategy<Value = Cidr> {
    (ip(), 0u8..=128).prop_map(|(addr, p)| {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        Cidr {
            addr,
            prefix: p.min(max),
        }
    })
}

/// One hop as a proxy or a client might write it.
fn hop() -> impl Strategy<Value = String> {
    prop_oneof![
        ip().prop_map(|ip| ip.to_string()),
        (ip(), any::<u16>()).prop_map(|(ip, port)| match ip {
            IpAddr::V4(v4) => format!("{v4}:{port}"),
            IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        }),
        ip().prop_map(|ip| format!("\"{ip}\"")),
        ip().prop_map(|ip| format!("[{ip}]")),
        "[ -~]{0,20}",
        Just("unknown".to_string()),
        Just(String::new()),
    ]
}

fn forwarded() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(hop(), 0..6).prop_map(|h| h.join(", ").into_bytes()),
        prop::collection::vec(hop(), 0..6).prop_map(|h| h.join(",").into_bytes()),
        header_bytes(80),
    ]
}

fn headers(xff: &[Vec<u8>], real: Option<&[u8]>) -> HeaderMap {
    let mut h = HeaderMap::new();
    for line in xff {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            h.append("x-forwarded-for", v);
        }
    }
    if let Some(Ok(v)) = real.map(HeaderValue::from_bytes) {
        h.append("x-real-ip", v);
    }
    h
}

/// Any address a hop could be read as: bare, with a port, bracketed, quoted.
fn loose_addr(hop: &str) -> Option<IpAddr> {
    let t = hop.trim().trim_matches('"');
    t.parse::<IpAddr>()
        .ok()
        .or_else(|| t.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            t.strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .and_then(|(ip, _)| ip.parse().ok())
        })
        .map(|ip: IpAddr| ip.to_canonical())
}

proptest! {
    #![proptest_config(cases(1024))]

    /// The answer is the peer, or an address that a header of a trusted peer carries; an
    /// untrusted peer's headers are never believed.
    #[test]
    fn the_client_is_the_peer_or_named_by_a_trusted_peer(
        peer in ip(),
        trusted_peer in any::<bool>(),
        proxies in prop::collection::vec(cidr(), 0..4),
        xff in prop::collection::vec(forwarded(), 0..3),
        real in prop::option::of(forwarded()),
    ) {
        let mut proxies = proxies;
        if trusted_peer {
            proxies.push(Cidr { addr: peer, prefix: if peer.is_ipv4() { 32 } else { 128 } });
        }
        let h = headers(&xff, real.as_deref());
        let got = client_ip(peer, &h, &proxies);
        let peer = peer.to_canonical();
        let believed = proxies.iter().any(|c| c.contains(peer));
        if !believed {
            prop_assert_eq!(got, peer);
        } else if got != peer {
            let named = h
                .iter()
                .filter_map(|(_, v)| v.to_str().ok())
                .flat_map(|text| text.split(','))
                .filter_map(loose_addr)
                .any(|a| a == got);
            prop_assert!(named, "{} is in no header", got);
        }
        // Rate-limit subjects are always short, whatever the address.
        prop_assert!(subject(got).len() <= 45);
    }
}
