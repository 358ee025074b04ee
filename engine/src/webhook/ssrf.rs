//! Refusing deliveries to internal addresses (server-side request forgery).
//!
//! An endpoint URL is chosen by whoever administers a tenant; without a check, a delivery could
//! reach the instance's own loopback services, the cloud metadata service (169.254.169.254) or
//! the private network. The host is resolved once per attempt and the delivery connects only to
//! the addresses that were checked, so a DNS answer that changes between check and connect
//! (rebinding) cannot slip through. Any forbidden address in the answer refuses the delivery.
//!
//! What is forbidden: every range of the IANA IPv4 and IPv6 Special-Purpose Address Registries
//! that is not globally reachable (loopback, private, shared, link-local, documentation,
//! benchmarking, reserved, discard, ...), multicast and broadcast, the deprecated IPv6
//! site-local range, and IPv6 outside global unicast (`2000::/3`). IPv6 addresses that carry an
//! IPv4 address (IPv4-mapped and IPv4-compatible, NAT64's well-known prefix, 6to4, Teredo) are
//! judged by that IPv4 address, because that is where a packet to them ends up: without this,
//! `::ffff:127.0.0.1`, `::127.0.0.1` or `64:ff9b::7f00:1` reach loopback through a translator
//! or the host's own dual stack.
//!
//! Both ends use these rules: `hj webhook create` refuses a forbidden address (or a name that
//! is loopback by definition) when the endpoint is made ([`check_host`]), and every delivery
//! attempt checks what the host resolves to just before it connects ([`resolve`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// An IPv4 network and why a webhook may not go there.
struct V4Net {
    net: u32,
    prefix: u32,
    why: &'static str,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u32, why: &'static str) -> V4Net {
    V4Net {
        net: u32::from_be_bytes([a, b, c, d]),
        prefix,
        why,
    }
}

/// IPv4 ranges refused, most specific first where they overlap. From the IANA IPv4
/// Special-Purpose Address Registry (every entry that is not globally reachable), plus
/// multicast. 192.0.0.0/24 is refused whole: its two globally reachable members (the PCP and
/// TURN anycast addresses 192.0.0.9 and 192.0.0.10) are never webhook receivers.
const V4_FORBIDDEN: &[V4Net] = &[
    v4(255, 255, 255, 255, 32, "broadcast"),
    v4(0, 0, 0, 0, 8, "unspecified (this network)"),
    v4(10, 0, 0, 0, 8, "private"),
    v4(100, 64, 0, 0, 10, "shared (carrier-grade NAT)"),
    v4(127, 0, 0, 0, 8, "loopback"),
    v4(169, 254, 0, 0, 16, "link-local"),
    v4(172, 16, 0, 0, 12, "private"),
    v4(192, 0, 0, 0, 24, "IETF protocol assignment"),
    v4(192, 0, 2, 0, 24, "documentation"),
    v4(192, 88, 99, 0, 24, "deprecated 6to4 relay anycast"),
    v4(192, 168, 0, 0, 16, "private"),
    v4(198, 18, 0, 0, 15, "benchmarking"),
    v4(198, 51, 100, 0, 24, "documentation"),
    v4(203, 0, 113, 0, 24, "documentation"),
    v4(224, 0, 0, 0, 4, "multicast"),
    v4(240, 0, 0, 0, 4, "reserved"),
];

/// An IPv6 network and why a webhook may not go there.
struct V6Net {
    net: u128,
    prefix: u32,
    why: &'static str,
}

const fn v6(segments: [u16; 8], prefix: u32, why: &'static str) -> V6Net {
    let mut net = 0u128;
    let mut i = 0;
    while i < 8 {
        net = (net << 16) | segments[i] as u128;
        i += 1;
    }
    V6Net { net, prefix, why }
}

/// IPv6 ranges refused after the embedded IPv4 addresses are judged, from the IANA IPv6
/// Special-Purpose Address Registry (every entry that is not globally reachable) and the
/// address architecture. `2001::/23` (IETF protocol assignments) is refused whole except
/// Teredo, which is judged by its client's IPv4 address first; its few globally reachable
/// members (AMT, AS112, ORCHIDv2, drone remote ID) are never webhook receivers. Anything else
/// outside `2000::/3` is refused as not global unicast.
const V6_FORBIDDEN: &[V6Net] = &[
    v6([0x0100, 0, 0, 0, 0, 0, 0, 0], 64, "discard-only"),
    v6([0x0100, 0, 0, 1, 0, 0, 0, 0], 64, "dummy prefix"),
    v6(
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        23,
        "IETF protocol assignment",
    ),
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, "documentation"),
    v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, "documentation"),
    v6(
        [0x5f00, 0, 0, 0, 0, 0, 0, 0],
        16,
        "segment routing (SRv6 SID)",
    ),
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "private (unique local)"),
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local"),
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "site-local (deprecated)"),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast"),
];

fn in_v4(ip: u32, net: &V4Net) -> bool {
    let mask = u32::MAX.checked_shl(32 - net.prefix).unwrap_or(0);
    ip & mask == net.net & mask
}

fn in_v6(ip: u128, net: u128, prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    ip & mask == net & mask
}

/// Why an address may not be a webhook target, or `None` when it may.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let ip = u32::from(ip);
    V4_FORBIDDEN.iter().find(|n| in_v4(ip, n)).map(|n| n.why)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(ip);
    // Before the IPv4-compatible range (::/96), which contains both.
    if bits == 0 {
        return Some("unspecified");
    }
    if bits == 1 {
        return Some("loopback");
    }
    // Local-use NAT64 (RFC 8215) is not globally reachable whatever IPv4 address it carries,
    // and its prefix length (hence where the IPv4 address sits) is a local choice.
    if in_v6(bits, 0x0064_ff9b_0001 << 80, 48) {
        return Some("local-use IPv4/IPv6 translation");
    }
    if let Some(v4) = embedded_v4(ip) {
        return forbidden_v4(v4);
    }
    if let Some(n) = V6_FORBIDDEN.iter().find(|n| in_v6(bits, n.net, n.prefix)) {
        return Some(n.why);
    }
    if !in_v6(bits, 0x2000 << 112, 3) {
        return Some("reserved (not global unicast)");
    }
    None
}

/// The IPv4 address a packet to `ip` is delivered to, for the IPv6 forms that carry one:
/// IPv4-mapped (`::ffff:0:0/96`), IPv4-compatible (`::/96`, deprecated but still routed to the
/// IPv4 address by some stacks), NAT64's well-known prefix (`64:ff9b::/96`), 6to4 (`2002::/16`,
/// the address in bits 16 to 47) and Teredo (`2001::/32`, whose client address is the bitwise
/// NOT of the last 32 bits).
pub fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let low32 = bits as u32;
    if bits >> 32 == 0xffff || bits >> 32 == 0 {
        return Some(Ipv4Addr::from(low32));
    }
    if bits >> 32 == 0x0064_ff9b << 64 {
        return Some(Ipv4Addr::from(low32));
    }
    if bits >> 112 == 0x2002 {
        return Some(Ipv4Addr::from((bits >> 80) as u32));
    }
    if bits >> 96 == 0x2001_0000 {
        return Some(Ipv4Addr::from(!low32));
    }
    None
}

/// An IPv4 address written as the C library's `inet_aton` reads it, which is how the system
/// resolver reads a numeric host name: one to four parts separated by dots, each decimal,
/// octal (a leading `0`) or hexadecimal (`0x`), the last part filling the remaining bytes
/// (`127.1`, `2130706433`, `0x7f.0.0.1`, `0177.0.0.1` are all 127.0.0.1). `None` for anything
/// else.
pub fn legacy_ipv4(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut values = Vec::with_capacity(parts.len());
    for part in &parts {
        let (digits, radix) =
            if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
                (hex, 16)
            } else if part.len() > 1 && part.starts_with('0') {
                (&part[1..], 8)
            } else {
                (*part, 10)
            };
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        values.push(u64::from_str_radix(digits, radix).ok()?);
    }
    let (last, leading) = values.split_last()?;
    if leading.iter().any(|v| *v > 255) {
        return None;
    }
    let last_bits = 8 * (4 - leading.len() as u32);
    if *last >= 1u64 << last_bits {
        return None;
    }
    let mut address = 0u64;
    for v in leading {
        address = (address << 8) | v;
    }
    address = (address << last_bits) | last;
    u32::try_from(address).ok().map(Ipv4Addr::from)
}

/// The address a host of a URL names without any lookup: an IP literal (IPv6 without
/// brackets), or a numeric IPv4 form the resolver would read as one (see [`legacy_ipv4`]).
fn literal(host: &str) -> Option<IpAddr> {
    host.parse::<IpAddr>()
        .ok()
        .or_else(|| legacy_ipv4(host).map(IpAddr::V4))
}

/// Whether `host` is a `localhost` name, which RFC 6761 reserves for loopback.
fn is_localhost(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// The check when an endpoint is created: refuses a host that is a forbidden address (in any
/// numeric form) or a `localhost` name, unless `allow_private`. Other names are checked at
/// every delivery, where they are resolved ([`resolve`]).
pub fn check_host(host: &str, allow_private: bool) -> Result<(), String> {
    if allow_private {
        return Ok(());
    }
    let why = match literal(host) {
        Some(ip) => forbidden(ip).map(|why| format!("{ip} is a {why} address")),
        None => is_localhost(host).then(|| format!("{host} is a loopback name")),
    };
    match why {
        Some(why) => Err(format!(
            "{why}: deliveries to it are refused unless HELLOJOHN_WEBHOOK_ALLOW_PRIVATE=true"
        )),
        None => Ok(()),
    }
}

/// The addresses to connect to for `host:port`: an IP literal as is, a name through the
/// system resolver. Unless `allow_private`, refuses when any address is forbidden.
pub async fn resolve(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> = match literal(host) {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(format!("{host} has no address"));
    }
    if !allow_private {
        for a in &addrs {
            if let Some(why) = forbidden(a.ip()) {
                return Err(format!(
                    "refused: {host} resolves to {} ({why} address); set \
                     HELLOJOHN_WEBHOOK_ALLOW_PRIVATE=true to allow",
                    a.ip()
                ));
            }
        }
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Every special-purpose range, with an address at its start and one at its end where the
    /// range is larger than one address, and the reason given.
    const REFUSED: &[(&str, &str)] = &[
        // IPv4.
        ("0.0.0.0", "unspecified (this network)"),
        ("0.1.2.3", "unspecified (this network)"),
        ("0.255.255.255", "unspecified (this network)"),
        ("10.0.0.0", "private"),
        ("10.1.2.3", "private"),
        ("10.255.255.255", "private"),
        ("100.64.0.0", "shared (carrier-grade NAT)"),
        ("100.64.0.1", "shared (carrier-grade NAT)"),
        ("100.127.255.255", "shared (carrier-grade NAT)"),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("127.255.255.255", "loopback"),
        ("169.254.0.0", "link-local"),
        ("169.254.169.254", "link-local"),
        ("169.254.255.255", "link-local"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.0.0.0", "IETF protocol assignment"),
        ("192.0.0.8", "IETF protocol assignment"),
        ("192.0.0.9", "IETF protocol assignment"),
        ("192.0.0.170", "IETF protocol assignment"),
        ("192.0.0.255", "IETF protocol assignment"),
        ("192.0.2.0", "documentation"),
        ("192.0.2.255", "documentation"),
        ("192.88.99.1", "deprecated 6to4 relay anycast"),
        ("192.168.0.0", "private"),
        ("192.168.1.1", "private"),
        ("192.168.255.255", "private"),
        ("198.18.0.0", "benchmarking"),
        ("198.19.255.255", "benchmarking"),
        ("198.51.100.0", "documentation"),
        ("198.51.100.255", "documentation"),
        ("203.0.113.0", "documentation"),
        ("203.0.113.255", "documentation"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.255", "multicast"),
        ("240.0.0.0", "reserved"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.254", "reserved"),
        ("255.255.255.255", "broadcast"),
        // IPv6 without an IPv4 address in it.
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("64:ff9b:1::", "local-use IPv4/IPv6 translation"),
        ("64:ff9b:1::808:808", "local-use IPv4/IPv6 translation"),
        (
            "64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
            "local-use IPv4/IPv6 translation",
        ),
        ("100::", "discard-only"),
        ("100::ffff:ffff:ffff:ffff", "discard-only"),
        ("100:0:0:1::1", "dummy prefix"),
        ("100:0:0:2::1", "reserved (not global unicast)"),
        ("2001:1::1", "IETF protocol assignment"),
        ("2001:2::", "IETF protocol assignment"),
        ("2001:3::1", "IETF protocol assignment"),
        ("2001:10::1", "IETF protocol assignment"),
        (
            "2001:1f:ffff:ffff:ffff:ffff:ffff:ffff",
            "IETF protocol assignment",
        ),
        ("2001:20::1", "IETF protocol assignment"),
        (
            "2001:2f:ffff:ffff:ffff:ffff:ffff:ffff",
            "IETF protocol assignment",
        ),
        (
            "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
            "IETF protocol assignment",
        ),
        ("2001:db8::", "documentation"),
        ("2001:db8::1", "documentation"),
        ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"),
        ("3fff::", "documentation"),
        ("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"),
        ("5f00::", "segment routing (SRv6 SID)"),
        ("5f00:ffff::1", "segment routing (SRv6 SID)"),
        ("fc00::1", "private (unique local)"),
        ("fd12:3456::1", "private (unique local)"),
        (
            "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "private (unique local)",
        ),
        ("fe80::", "link-local"),
        ("fe80::1", "link-local"),
        ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local"),
        ("fec0::", "site-local (deprecated)"),
        ("fec0::1", "site-local (deprecated)"),
        (
            "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "site-local (deprecated)",
        ),
        ("ff00::", "multicast"),
        ("ff02::1", "multicast"),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast"),
        // Outside 2000::/3 and not one of the forms that carry an IPv4 address.
        ("1::1", "reserved (not global unicast)"),
        ("::1:0:0:1", "reserved (not global unicast)"),
        ("::ffff:0:7f00:1", "reserved (not global unicast)"),
        ("4000::1", "reserved (not global unicast)"),
        ("e000::1", "reserved (not global unicast)"),
        // IPv4-mapped.
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:198.18.0.1", "benchmarking"),
        // IPv4-compatible.
        ("::127.0.0.1", "loopback"),
        ("::7f00:1", "loopback"),
        ("::10.0.0.1", "private"),
        ("::169.254.169.254", "link-local"),
        ("::0.0.0.2", "unspecified (this network)"),
        // NAT64, well-known prefix.
        ("64:ff9b::7f00:1", "loopback"),
        ("64:ff9b::127.0.0.1", "loopback"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("64:ff9b::c000:0201", "documentation"),
        // 6to4.
        ("2002:7f00:1::1", "loopback"),
        ("2002:a00:1::", "private"),
        ("2002:c0a8:101:1::1", "private"),
        ("2002:c612:1::1", "benchmarking"),
        // Teredo: the client address is the bitwise NOT of the last 32 bits (!0x80fffffe is
        // 127.0.0.1, !0xf5fffffe is 10.0.0.1, !0x56015601 is 169.254.169.254).
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),
        ("2001::f5ff:fffe", "private"),
        ("2001:0:4136:e378:8000:63bf:5601:5601", "link-local"),
    ];

    /// Public addresses, directly and in each IPv6 form that carries an IPv4 address.
    const ALLOWED: &[&str] = &[
        "93.184.216.34",
        "8.8.8.8",
        "1.1.1.1",
        "172.32.0.1",
        "172.15.255.255",
        "100.63.255.255",
        "100.128.0.1",
        "192.0.1.1",
        "192.0.3.1",
        "192.31.196.1",
        "192.52.193.1",
        "198.17.255.255",
        "198.20.0.1",
        "198.51.99.1",
        "203.0.112.1",
        "223.255.255.255",
        "2606:4700::1111",
        "2a00:1450:4001::200e",
        "2620:4f:8000::1",
        "2001:200::1",
        "3ffe::1",
        "::ffff:93.184.216.34",
        "::8.8.8.8",
        "64:ff9b::808:808",
        "2002:5db8:d822::1",
        // Teredo to 8.8.8.8: !0x08080808 = 0xf7f7f7f7.
        "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
    ];

    #[test]
    fn every_special_purpose_range_is_refused_with_its_reason() {
        for (bad, why) in REFUSED {
            assert_eq!(forbidden(ip(bad)), Some(*why), "{bad}");
        }
    }

    #[test]
    fn public_addresses_are_allowed_in_every_form() {
        for good in ALLOWED {
            assert_eq!(forbidden(ip(good)), None, "{good} should be allowed");
        }
    }

    #[test]
    fn embedded_ipv4_is_decoded() {
        let v4 = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let v6 = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        for (addr, want) in [
            ("::ffff:1.2.3.4", "1.2.3.4"),
            ("::1.2.3.4", "1.2.3.4"),
            ("64:ff9b::102:304", "1.2.3.4"),
            ("2002:102:304::1", "1.2.3.4"),
            ("2001:0:4136:e378:8000:63bf:fefd:fcfb", "1.2.3.4"),
        ] {
            assert_eq!(embedded_v4(v6(addr)), Some(v4(want)), "{addr}");
        }
        for none in ["2606:4700::1111", "64:ff9b:1::102:304", "2001:1::102:304"] {
            assert_eq!(embedded_v4(v6(none)), None, "{none}");
        }
    }

    #[test]
    fn numeric_hosts_are_read_as_the_resolver_reads_them() {
        for (host, want) in [
            ("127.0.0.1", Some("127.0.0.1")),
            ("127.1", Some("127.0.0.1")),
            ("127.0.1", Some("127.0.0.1")),
            ("2130706433", Some("127.0.0.1")),
            ("0x7f000001", Some("127.0.0.1")),
            ("0x7f.0.0.1", Some("127.0.0.1")),
            ("0177.0.0.1", Some("127.0.0.1")),
            ("0", Some("0.0.0.0")),
            ("10.0x10000", Some("10.1.0.0")),
            ("256.0.0.1", None),
            ("1.2.3.4.5", None),
            ("4294967296", None),
            ("08.0.0.1", None),
            ("127.0.0.1.", None),
            ("example.com", None),
            ("cafe.de", None),
            ("0x", None),
            ("", None),
        ] {
            assert_eq!(
                legacy_ipv4(host),
                want.map(|w| w.parse::<Ipv4Addr>().unwrap()),
                "{host}"
            );
        }
    }

    #[test]
    fn creation_refuses_forbidden_literals_and_localhost() {
        for bad in [
            "127.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "fec0::1",
            "192.0.0.1",
            "198.18.0.1",
            "2130706433",
            "127.1",
            "localhost",
            "LocalHost.",
            "app.localhost",
        ] {
            let err = check_host(bad, false).unwrap_err();
            assert!(
                err.contains("HELLOJOHN_WEBHOOK_ALLOW_PRIVATE"),
                "{bad}: {err}"
            );
            assert_eq!(check_host(bad, true), Ok(()), "{bad} when allowed");
        }
        for good in [
            "example.com",
            "93.184.216.34",
            "2606:4700::1111",
            "localhost.example.com",
        ] {
            assert_eq!(check_host(good, false), Ok(()), "{good}");
        }
    }

    #[tokio::test]
    async fn resolution_is_checked_unless_allowed() {
        let refused = resolve("127.0.0.1", 80, false).await.unwrap_err();
        assert!(refused.contains("loopback"), "{refused}");
        assert!(resolve("::1", 80, false).await.is_err());
        assert!(resolve("localhost", 80, false).await.is_err());
        // Embedded and numeric forms are refused at connect time too, without a lookup.
        for bad in [
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "fec0::1",
            "2130706433",
            "0x7f.1",
        ] {
            let refused = resolve(bad, 80, false).await.unwrap_err();
            assert!(refused.contains("refused"), "{bad}: {refused}");
        }
        assert_eq!(
            resolve("127.0.0.1", 8080, true).await.unwrap(),
            vec!["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            resolve("127.1", 8080, true).await.unwrap(),
            vec!["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            resolve("93.184.216.34", 443, false).await.unwrap()[0].port(),
            443
        );
    }
}
