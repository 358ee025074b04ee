//! The client's address, for rate limits and the access log.
//!
//! `X-Forwarded-For` and `X-Real-IP` are written by whoever sends them, so they are believed
//! only when the socket peer is a trusted proxy (`HELLOJOHN_TRUSTED_PROXIES`). Then the client
//! is the right-most `X-Forwarded-For` address that is not itself a trusted proxy: every proxy
//! appends the address it received the request from, so addresses to the left of the first
//! untrusted hop may be forged by the client. Without a usable `X-Forwarded-For`,
//! `X-Real-IP` is taken; without that, the peer.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;

use crate::config::Cidr;

fn trusted(ip: IpAddr, proxies: &[Cidr]) -> bool {
    proxies.iter().any(|c| c.contains(ip))
}

/// One address of a forwarding header: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`,
/// `[2001:db8::1]:443`, optionally quoted.
fn parse_addr(text: &str) -> Option<IpAddr> {
    let t = text.trim().trim_matches('"');
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = t.parse::<SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    t.strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .and_then(|(ip, _)| ip.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
}

/// The client address of a request whose socket peer is `peer`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, proxies: &[Cidr]) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted(peer, proxies) {
        return peer;
    }
    // Every X-Forwarded-For line in order, each a comma-separated list (left = farthest).
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    let mut leftmost_trusted = None;
    for hop in hops.iter().rev() {
        match parse_addr(hop) {
            Some(ip) if trusted(ip, proxies) => leftmost_trusted = Some(ip),
            Some(ip) => return ip,
            // A garbled hop: nothing to its left can be trusted.
            None => break,
        }
    }
    if let Some(ip) = leftmost_trusted {
        // Every hop was one of our proxies: the farthest one is the client.
        return ip;
    }
    headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_addr)
        .unwrap_or(peer)
}

/// The rate-limit subject of an address: IPv4 as is; IPv6 by its /64, the block one subscriber
/// usually holds (so a client cannot dodge a limit by walking its own prefix).
pub fn subject(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let net = u128::from(v6) & (u128::MAX << 64);
            format!("{}/64", std::net::Ipv6Addr::from(net))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter()
            .map(|c| {
                let (a, p) = c.split_once('/').unwrap();
                Cidr {
                    addr: a.parse().unwrap(),
                    prefix: p.parse().unwrap(),
                }
            })
            .collect()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_headers_are_ignored() {
        let h = headers(&[("x-forwarded-for", "1.1.1.1"), ("x-real-ip", "2.2.2.2")]);
        assert_eq!(client_ip(ip("9.9.9.9"), &h, &[]), ip("9.9.9.9"));
        let proxies = cidrs(&["10.0.0.0/8"]);
        assert_eq!(client_ip(ip("9.9.9.9"), &h, &proxies), ip("9.9.9.9"));
    }

    #[test]
    fn rightmost_untrusted_hop_from_a_trusted_peer() {
        let proxies = cidrs(&["10.0.0.0/8", "127.0.0.1/32"]);
        // The client forged "6.6.6.6"; our proxy appended the real client 5.5.5.5, then an
        // inner proxy appended the outer one.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 5.5.5.5, 10.0.0.2")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &proxies), ip("5.5.5.5"));
        // Several header lines read as one list.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "5.5.5.5, 10.1.1.1"),
        ]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &proxies), ip("5.5.5.5"));
        // Ports, brackets and IPv6.
        let h = headers(&[("x-forwarded-for", "[2001:db8::7]:443, 1.2.3.4:80")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &proxies), ip("1.2.3.4"));
        let h = headers(&[("x-forwarded-for", "2001:db8::7")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &proxies), ip("2001:db8::7"));
    }

    #[test]
    fn fallbacks() {
        let proxies = cidrs(&["10.0.0.0/8"]);
        // Only proxies in the chain: the farthest is the client.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.2")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &proxies), ip("10.9.9.9"));
        // No X-Forwarded-For: X-Real-IP.
        let h = headers(&[("x-real-ip", "7.7.7.7")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &proxies), ip("7.7.7.7"));
        // A garbled right-most hop: X-Real-IP, then the peer.
        let h = headers(&[
            ("x-forwarded-for", "8.8.8.8, garbage"),
            ("x-real-ip", "7.7.7.7"),
        ]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &proxies), ip("7.7.7.7"));
        let h = headers(&[("x-forwarded-for", "not an ip")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &proxies), ip("10.0.0.1"));
        // Nothing at all.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &HeaderMap::new(), &proxies),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn mapped_ipv4_peers_match_ipv4_proxies() {
        let proxies = cidrs(&["127.0.0.1/32"]);
        let h = headers(&[("x-forwarded-for", "::ffff:5.5.5.5")]);
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), &h, &proxies),
            ip("5.5.5.5")
        );
    }

    #[test]
    fn subjects() {
        assert_eq!(subject(ip("203.0.113.9")), "203.0.113.9");
        assert_eq!(subject(ip("::ffff:203.0.113.9")), "203.0.113.9");
        assert_eq!(subject(ip("2001:db8:1:2:3:4:5:6")), "2001:db8:1:2::/64");
        assert_eq!(
            subject(ip("2001:db8:1:2:ffff::1")),
            subject(ip("2001:db8:1:2::9"))
        );
    }
}
