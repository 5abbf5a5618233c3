//! The client address behind trusted reverse proxies (`--trusted-proxies`).
//!
//! The client is the TCP peer unless the peer is a trusted proxy; then it is the
//! rightmost `X-Forwarded-For` entry that is not itself trusted. Each proxy appends
//! the address it got the request from, so the entries right of the first untrusted
//! one were written by proxies we trust, and everything left of it by the client
//! (who can write anything there).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The header a proxy appends the client's address to.
pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// Proxies whose `X-Forwarded-For` is believed: CIDRs or bare addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// No proxy is trusted (the default): the client is always the TCP peer.
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` (IPv4-mapped IPv6 counts as IPv4) is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client address of a request that came from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        // Several X-Forwarded-For headers are one list, in order.
        let entries: Vec<&str> = headers
            .get_all(FORWARDED_FOR)
            .iter()
            .flat_map(|v| v.to_str().unwrap_or("\u{0}").split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for entry in entries.iter().rev() {
            let Some(ip) = parse_entry(entry) else {
                // A trusted proxy writes a valid address; a garbled one came from
                // the client side, so nothing at or left of it is believed.
                return client;
            };
            if !self.contains(ip) {
                return ip;
            }
            client = ip;
        }
        // Every hop was a trusted proxy: the request started at the leftmost one.
        client
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// Comma-separated CIDRs (`10.0.0.0/8`, `2001:db8::/32`) or bare addresses; blank
    /// entries are skipped, so an empty value trusts no one.
    fn from_str(text: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let net = match IpNet::from_str(entry) {
                Ok(net) => net.trunc(),
                Err(_) => IpAddr::from_str(entry).map(IpNet::from).map_err(|_| {
                    format!(
                        "`{entry}` is not an IP address or CIDR (e.g. 10.0.0.0/8, 192.0.2.7, 2001:db8::/32)"
                    )
                })?,
            };
            nets.push(match net {
                // A mapped form matches the IPv4 addresses it stands for.
                IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
                    Some(v4) => IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96)
                        .map_err(|e| format!("`{entry}`: {e}"))?,
                    None => net,
                },
                other => other,
            });
        }
        Ok(Self(nets))
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&list.join(","))
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`), as some proxies write it.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = IpAddr::from_str(entry) {
        return Some(canonical(ip));
    }
    std::net::SocketAddr::from_str(entry)
        .ok()
        .map(|s| canonical(s.ip()))
}

/// IPv4-mapped IPv6 (`::ffff:192.0.2.1`, as a dual-stack socket reports IPv4 peers)
/// as the IPv4 address it is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// What limits count per client: the IPv4 address, or the /64 of an IPv6 address
/// (one subscriber gets a whole /64, so a per-address count would be no bound).
pub fn address_key(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append(FORWARDED_FOR, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn client_address_is_resolved_through_trusted_proxies_only() {
        let trusted: TrustedProxies = "10.0.0.0/8, 192.0.2.7,2001:db8:ffff::/48".parse().unwrap();
        // (peer, X-Forwarded-For headers, client)
        let cases: &[(&str, &[&str], &str)] = &[
            // An untrusted peer's header is ignored, whatever it says.
            ("203.0.113.5", &["198.51.100.1"], "203.0.113.5"),
            ("203.0.113.5", &[], "203.0.113.5"),
            ("::ffff:203.0.113.5", &["198.51.100.1"], "203.0.113.5"),
            // A trusted peer without the header: the peer.
            ("10.1.2.3", &[], "10.1.2.3"),
            // The rightmost entry that is not trusted.
            ("10.1.2.3", &["198.51.100.1"], "198.51.100.1"),
            ("10.1.2.3", &["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
            (
                "10.1.2.3",
                &["6.6.6.6, 198.51.100.1, 10.9.9.9"],
                "198.51.100.1",
            ),
            (
                "10.1.2.3",
                &["6.6.6.6, 198.51.100.1, 192.0.2.7, 10.9.9.9"],
                "198.51.100.1",
            ),
            // Several headers are one list.
            (
                "10.1.2.3",
                &["6.6.6.6", "198.51.100.1, 10.9.9.9"],
                "198.51.100.1",
            ),
            // A mapped peer is trusted as its IPv4 address.
            ("::ffff:10.1.2.3", &["198.51.100.1"], "198.51.100.1"),
            // Entries with ports, and IPv6.
            ("10.1.2.3", &["198.51.100.1:4711"], "198.51.100.1"),
            ("10.1.2.3", &["[2001:db8:1::5]:4711"], "2001:db8:1::5"),
            ("2001:db8:ffff::1", &["2001:db8:1::5"], "2001:db8:1::5"),
            ("10.1.2.3", &["::ffff:198.51.100.1"], "198.51.100.1"),
            // All hops trusted: the leftmost.
            ("10.1.2.3", &["10.0.0.1, 192.0.2.7"], "10.0.0.1"),
            // Garbled: stop there; the last trusted hop seen, or the peer.
            ("10.1.2.3", &["garbage"], "10.1.2.3"),
            ("10.1.2.3", &["198.51.100.1, garbage"], "10.1.2.3"),
            ("10.1.2.3", &["198.51.100.1, garbage, 10.9.9.9"], "10.9.9.9"),
            ("10.1.2.3", &["garbage, 198.51.100.1"], "198.51.100.1"),
            ("10.1.2.3", &["198.51.100.1,"], "10.1.2.3"),
            ("10.1.2.3", &["unknown"], "10.1.2.3"),
        ];
        for (peer, xff, want) in cases {
            assert_eq!(
                trusted.client(ip(peer), &headers(xff)),
                ip(want),
                "peer {peer}, X-Forwarded-For {xff:?}"
            );
        }
        // No trusted proxies (the default): always the peer.
        assert_eq!(
            TrustedProxies::none().client(ip("10.1.2.3"), &headers(&["198.51.100.1"])),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn a_header_value_that_is_not_text_is_garbled() {
        let trusted: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let mut h = HeaderMap::new();
        h.append(
            FORWARDED_FOR,
            HeaderValue::from_bytes(b"198.51.100.1\xff").unwrap(),
        );
        assert_eq!(trusted.client(ip("10.1.2.3"), &h), ip("10.1.2.3"));
    }

    #[test]
    fn trusted_proxies_parse_cidrs_and_bare_addresses_and_name_a_bad_entry() {
        let t: TrustedProxies = " 10.0.0.0/8 ,192.0.2.7,, ::1, 2001:db8::/32 "
            .parse()
            .unwrap();
        assert!(t.contains(ip("10.200.0.1")));
        assert!(t.contains(ip("192.0.2.7")));
        assert!(!t.contains(ip("192.0.2.8")));
        assert!(t.contains(ip("::1")));
        assert!(t.contains(ip("2001:db8:5::1")));
        assert!(!t.contains(ip("2001:db9::1")));
        // Host bits are ignored; a mapped CIDR covers the IPv4 addresses.
        let t: TrustedProxies = "10.1.2.3/8,::ffff:172.16.0.0/108".parse().unwrap();
        assert!(t.contains(ip("10.9.9.9")));
        assert!(t.contains(ip("172.16.3.4")));
        assert!(t.contains(ip("::ffff:172.16.3.4")));
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
        for bad in [
            "10.0.0.0/33",
            "proxy.internal",
            "10.0.0.0/8,300.1.1.1",
            "1.2.3.4/",
        ] {
            let err = bad.parse::<TrustedProxies>().unwrap_err();
            let entry = bad.rsplit(',').next().unwrap();
            assert!(err.contains(&format!("`{entry}`")), "{bad}: {err}");
        }
    }

    #[test]
    fn address_key_is_the_ipv4_address_or_the_ipv6_slash_64() {
        for (addr, key) in [
            ("192.0.2.1", "192.0.2.1"),
            ("::ffff:192.0.2.1", "192.0.2.1"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
            ("2001:db8:1:2::", "2001:db8:1:2::/64"),
            ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
            ("::1", "::/64"),
            ("fe80::1", "fe80::/64"),
        ] {
            assert_eq!(address_key(ip(addr)), key, "{addr}");
        }
    }
}
