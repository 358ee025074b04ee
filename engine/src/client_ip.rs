//! The client's address, for rate limits and the access log.
//!
//! `X-Forwarded-For` and `X-Real-IP` are written by whoever sends them, so they are believed
//! only when the socket peer is a trusted proxy (`HELLOJOHN_TRUSTED_PROXIES`), and only the one
//! header named by `HELLOJOHN_CLIENT_IP_HEADER` is read; the other is ignored entirely. A proxy
//! that sets one of them usually passes the other through from the client untouched, so
//! reading both would let a client choose its own address (nginx configured with only
//! `proxy_set_header X-Real-IP $remote_addr` forwards the client's own `X-Forwarded-For`).
//!
//! * `x-forwarded-for` (the default): the client is the right-most `X-Forwarded-For` address
//!   that is not itself a trusted proxy: every proxy appends the address it received the
//!   request from, so addresses to the left of the first untrusted hop may be forged by the
//!   client. Without a usable address, the peer.
//! * `x-real-ip`: the client is the address in `X-Real-IP`, which the proxy sets (replacing
//!   any the client sent). When several lines arrive, the last one counts, the one added
//!   nearest to this server. Without a usable address, the peer.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;

use crate::config::Cidr;

/// The header a trusted proxy names the client in (`HELLOJOHN_CLIENT_IP_HEADER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientIpHeader {
    /// `X-Forwarded-For`, read from the right: for chains of proxies that each append to it.
    #[default]
    XForwardedFor,
    /// `X-Real-IP`: for a single proxy that sets it to the address it received the request
    /// from and does not maintain `X-Forwarded-For`.
    XRealIp,
}

impl ClientIpHeader {
    /// The setting's value: `x-forwarded-for` or `x-real-ip`, in any case.
    pub fn parse(value: &str) -> Result<ClientIpHeader, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(ClientIpHeader::XForwardedFor),
            "x-real-ip" => Ok(ClientIpHeader::XRealIp),
            _ => Err("must be x-forwarded-for or x-real-ip".to_string()),
        }
    }

    /// The header's name, lower-case.
    pub fn name(self) -> &'static str {
        match self {
            ClientIpHeader::XForwardedFor => "x-forwarded-for",
            ClientIpHeader::XRealIp => "x-real-ip",
        }
    }
}

impl fmt::Display for ClientIpHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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

/// The client address of a request whose socket peer is `peer`, read from `X-Forwarded-For`
/// (the default `HELLOJOHN_CLIENT_IP_HEADER`) when the peer is a trusted proxy.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, proxies: &[Cidr]) -> IpAddr {
    client_ip_with(peer, headers, proxies, ClientIpHeader::XForwardedFor)
}

/// The client address of a request whose socket peer is `peer`, read from `header` when the
/// peer is a trusted proxy (see the module docs).
pub fn client_ip_with(
    peer: IpAddr,
    headers: &HeaderMap,
    proxies: &[Cidr],
    header: ClientIpHeader,
) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted(peer, proxies) {
        return peer;
    }
    let named = match header {
        ClientIpHeader::XForwardedFor => from_forwarded_for(headers, proxies),
        ClientIpHeader::XRealIp => from_real_ip(headers),
    };
    named.unwrap_or(peer)
}

/// The right-most `X-Forwarded-For` hop that is not a trusted proxy; the farthest hop when all
/// of them are; `None` when there is no usable hop.
fn from_forwarded_for(headers: &HeaderMap, proxies: &[Cidr]) -> Option<IpAddr> {
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
            Some(ip) => return Some(ip),
            // A garbled hop: nothing to its left can be trusted.
            None => break,
        }
    }
    // Every hop was one of our proxies: the farthest one is the client.
    leftmost_trusted
}

/// The address of the last `X-Real-IP` line, if it is one.
fn from_real_ip(headers: &HeaderMap) -> Option<IpAddr> {
    headers
        .get_all("x-real-ip")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(parse_addr)
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

    const BOTH: [ClientIpHeader; 2] = [ClientIpHeader::XForwardedFor, ClientIpHeader::XRealIp];

    #[test]
    fn untrusted_peer_headers_are_ignored() {
        let h = headers(&[("x-forwarded-for", "1.1.1.1"), ("x-real-ip", "2.2.2.2")]);
        let proxies = cidrs(&["10.0.0.0/8"]);
        for header in BOTH {
            assert_eq!(
                client_ip_with(ip("9.9.9.9"), &h, &[], header),
                ip("9.9.9.9")
            );
            assert_eq!(
                client_ip_with(ip("9.9.9.9"), &h, &proxies, header),
                ip("9.9.9.9"),
                "{header}"
            );
            // A peer just outside the trusted network, and an IPv6 peer that is not the
            // IPv4-mapped form of a trusted one, are not believed either.
            assert_eq!(
                client_ip_with(ip("11.0.0.1"), &h, &proxies, header),
                ip("11.0.0.1")
            );
            assert_eq!(
                client_ip_with(ip("::a00:1"), &h, &proxies, header),
                ip("::a00:1")
            );
        }
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
    fn forwarded_for_fallbacks_never_read_x_real_ip() {
        let proxies = cidrs(&["10.0.0.0/8"]);
        let xff = |h: &HeaderMap| {
            client_ip_with(ip("10.0.0.1"), h, &proxies, ClientIpHeader::XForwardedFor)
        };
        // Only proxies in the chain: the farthest is the client.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.2")]);
        assert_eq!(xff(&h), ip("10.9.9.9"));
        // No X-Forwarded-For: the peer; X-Real-IP is not this mode's header.
        let h = headers(&[("x-real-ip", "7.7.7.7")]);
        assert_eq!(xff(&h), ip("10.0.0.1"));
        // A garbled right-most hop: the peer, whatever X-Real-IP says.
        let h = headers(&[
            ("x-forwarded-for", "8.8.8.8, garbage"),
            ("x-real-ip", "7.7.7.7"),
        ]);
        assert_eq!(xff(&h), ip("10.0.0.1"));
        let h = headers(&[("x-forwarded-for", "not an ip")]);
        assert_eq!(xff(&h), ip("10.0.0.1"));
        // Nothing at all.
        assert_eq!(xff(&HeaderMap::new()), ip("10.0.0.1"));
    }

    #[test]
    fn real_ip_mode_reads_only_x_real_ip() {
        let proxies = cidrs(&["10.0.0.0/8"]);
        let real =
            |h: &HeaderMap| client_ip_with(ip("10.0.0.1"), h, &proxies, ClientIpHeader::XRealIp);
        let h = headers(&[("x-real-ip", "5.5.5.5")]);
        assert_eq!(real(&h), ip("5.5.5.5"));
        let h = headers(&[("x-real-ip", "[2001:db8::5]:443")]);
        assert_eq!(real(&h), ip("2001:db8::5"));
        let h = headers(&[("x-real-ip", "::ffff:5.5.5.5")]);
        assert_eq!(real(&h), ip("5.5.5.5"));
        // Several lines: the last, added nearest to this server, counts.
        let h = headers(&[("x-real-ip", "6.6.6.6"), ("x-real-ip", "5.5.5.5")]);
        assert_eq!(real(&h), ip("5.5.5.5"));
        // No X-Real-IP, or a garbled one (X-Real-IP is one address, not a list): the peer,
        // whatever X-Forwarded-For says.
        let h = headers(&[("x-forwarded-for", "6.6.6.6")]);
        assert_eq!(real(&h), ip("10.0.0.1"));
        for garbled in ["", "garbage", "5.5.5.5, 6.6.6.6", "5.5.5.5 6.6.6.6"] {
            let h = headers(&[("x-real-ip", garbled), ("x-forwarded-for", "6.6.6.6")]);
            assert_eq!(real(&h), ip("10.0.0.1"), "{garbled:?}");
        }
    }

    #[test]
    fn a_client_forged_forwarded_for_behind_a_real_ip_proxy() {
        // nginx with only `proxy_set_header X-Real-IP $remote_addr` passes the client's own
        // X-Forwarded-For through untouched: the client at 5.5.5.5 claims to be 6.6.6.6.
        let proxies = cidrs(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "6.6.6.6"), ("x-real-ip", "5.5.5.5")]);
        assert_eq!(
            client_ip_with(ip("10.0.0.1"), &h, &proxies, ClientIpHeader::XRealIp),
            ip("5.5.5.5"),
            "x-real-ip mode believes the proxy, not the client"
        );
        // The same request read in x-forwarded-for mode is the misconfiguration the setting
        // exists for: the forged address wins.
        assert_eq!(
            client_ip_with(ip("10.0.0.1"), &h, &proxies, ClientIpHeader::XForwardedFor),
            ip("6.6.6.6")
        );
        // The guide's nginx block sets both headers (X-Forwarded-For by appending
        // $remote_addr to what the client sent): either mode finds the real client.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 5.5.5.5"),
            ("x-real-ip", "5.5.5.5"),
        ]);
        for header in BOTH {
            assert_eq!(
                client_ip_with(ip("10.0.0.1"), &h, &proxies, header),
                ip("5.5.5.5"),
                "{header}"
            );
        }
    }

    #[test]
    fn header_setting_values() {
        assert_eq!(
            ClientIpHeader::parse("x-forwarded-for"),
            Ok(ClientIpHeader::XForwardedFor)
        );
        assert_eq!(
            ClientIpHeader::parse("X-Real-IP"),
            Ok(ClientIpHeader::XRealIp)
        );
        for bad in [
            "",
            "forwarded",
            "x-forwarded-for,x-real-ip",
            "cf-connecting-ip",
        ] {
            assert!(ClientIpHeader::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(ClientIpHeader::default(), ClientIpHeader::XForwardedFor);
        assert_eq!(ClientIpHeader::XRealIp.to_string(), "x-real-ip");
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
