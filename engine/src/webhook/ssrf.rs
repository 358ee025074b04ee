//! Refusing deliveries to internal addresses (server-side request forgery).
//!
//! An endpoint URL is chosen by whoever administers a tenant; without a check, a delivery could
//! reach the instance's own loopback services, the cloud metadata service (169.254.169.254) or
//! the private network. The host is resolved once per attempt and the delivery connects only to
//! the addresses that were checked, so a DNS answer that changes between check and connect
//! (rebinding) cannot slip through. Any forbidden address in the answer refuses the delivery.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why an address may not be a webhook target, or `None` when it may.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT)")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_broadcast() || a >= 240 {
        Some("reserved")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if first & 0xfe00 == 0xfc00 {
        Some("private (unique local)")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if first == 0x2002 {
        // 6to4 embeds an IPv4 address: judge that one.
        let [_, hi, lo, ..] = ip.segments();
        let v4 = Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
        forbidden_v4(v4)
    } else {
        None
    }
}

/// The addresses to connect to for `host:port`: an IP literal as is, a name through the
/// system resolver. Unless `allow_private`, refuses when any address is forbidden.
pub async fn resolve(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
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

    #[test]
    fn internal_addresses_are_refused() {
        for bad in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.254",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2002:7f00:1::1",
        ] {
            assert!(forbidden(ip(bad)).is_some(), "{bad} should be refused");
        }
        for good in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:93.184.216.34",
            "2002:5db8:d822::1",
        ] {
            assert_eq!(forbidden(ip(good)), None, "{good} should be allowed");
        }
    }

    #[tokio::test]
    async fn resolution_is_checked_unless_allowed() {
        let refused = resolve("127.0.0.1", 80, false).await.unwrap_err();
        assert!(refused.contains("loopback"), "{refused}");
        assert!(resolve("[::1]".trim_matches(['[', ']']), 80, false)
            .await
            .is_err());
        assert!(resolve("localhost", 80, false).await.is_err());
        assert_eq!(
            resolve("127.0.0.1", 8080, true).await.unwrap(),
            vec!["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            resolve("93.184.216.34", 443, false).await.unwrap()[0].port(),
            443
        );
    }
}
