//! Webhook URL safety: by default no delivery reaches an address that is not
//! public: loopback, private, link-local, CGNAT, multicast, reserved, … and the
//! IPv6 forms that carry an IPv4 address (mapped, IPv4-compatible, NAT64, 6to4),
//! nor a name under `localhost`. Checked at creation, and again at every delivery:
//! the stored URL's literal, and every address its name resolves to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why `ip` must not be a webhook target (e.g. `"loopback"`), or None when it is public.
pub fn disallowed(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => disallowed_v4(v4).map(str::to_string),
        IpAddr::V6(v6) => disallowed_v6(v6),
    }
}

/// Whether an address is one a public webhook must never reach.
pub fn is_private(ip: IpAddr) -> bool {
    disallowed(ip).is_some()
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn disallowed_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: &[([u8; 4], u32, &str)] = &[
        ([0, 0, 0, 0], 32, "unspecified"),
        ([0, 0, 0, 0], 8, "reserved (0.0.0.0/8, this network)"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([10, 0, 0, 0], 8, "private"),
        ([172, 16, 0, 0], 12, "private"),
        ([192, 168, 0, 0], 16, "private"),
        ([169, 254, 0, 0], 16, "link-local"),
        ([100, 64, 0, 0], 10, "CGNAT (100.64.0.0/10)"),
        (
            [192, 0, 0, 0],
            24,
            "reserved (192.0.0.0/24, IETF protocol assignments)",
        ),
        ([192, 0, 2, 0], 24, "documentation"),
        ([198, 51, 100, 0], 24, "documentation"),
        ([203, 0, 113, 0], 24, "documentation"),
        ([198, 18, 0, 0], 15, "benchmarking (198.18.0.0/15)"),
        (
            [192, 88, 99, 0],
            24,
            "reserved (192.88.99.0/24, 6to4 relay)",
        ),
        ([224, 0, 0, 0], 4, "multicast"),
        ([255, 255, 255, 255], 32, "broadcast"),
        ([240, 0, 0, 0], 4, "reserved (240.0.0.0/4)"),
    ];
    RANGES
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, why)| *why)
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

/// The IPv4 address in the low 32 bits.
fn low_v4(ip: Ipv6Addr) -> Ipv4Addr {
    let o = ip.octets();
    Ipv4Addr::new(o[12], o[13], o[14], o[15])
}

/// What the embedded IPv4 address is, for the message.
fn embedded(v4: Ipv4Addr) -> String {
    match disallowed_v4(v4) {
        Some(why) => format!("embedding {v4}, {why}"),
        None => format!("embedding {v4}"),
    }
}

fn disallowed_v6(ip: Ipv6Addr) -> Option<String> {
    if ip.is_unspecified() {
        return Some("unspecified".into());
    }
    if ip.is_loopback() {
        return Some("loopback".into());
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        // A mapped address is the IPv4 address it maps.
        return disallowed_v4(v4).map(|why| format!("{why} (IPv4-mapped {v4})"));
    }
    let s = ip.segments();
    let tunnelled = if in_v6(ip, [0; 8], 96) {
        Some(format!("IPv4-compatible (::/96, {})", embedded(low_v4(ip))))
    } else if in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96) {
        Some(format!("NAT64 (64:ff9b::/96, {})", embedded(low_v4(ip))))
    } else if in_v6(ip, [0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48) {
        Some("NAT64 (64:ff9b:1::/48, local use)".into())
    } else if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        Some(format!("6to4 (2002::/16, {})", embedded(v4)))
    } else if in_v6(ip, [0x2001, 0, 0, 0, 0, 0, 0, 0], 32) {
        Some("Teredo (2001::/32, tunnels to IPv4)".into())
    } else {
        None
    };
    if tunnelled.is_some() {
        return tunnelled;
    }
    const RANGES: &[([u16; 8], u32, &str)] = &[
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "unique-local (fc00::/7)"),
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local (fe80::/10)"),
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "site-local (fec0::/10)"),
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast"),
        (
            [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
            32,
            "documentation (2001:db8::/32)",
        ),
        (
            [0x3fff, 0, 0, 0, 0, 0, 0, 0],
            20,
            "documentation (3fff::/20)",
        ),
        (
            [0x2001, 2, 0, 0, 0, 0, 0, 0],
            48,
            "benchmarking (2001:2::/48)",
        ),
        (
            [0x100, 0, 0, 0, 0, 0, 0, 0],
            64,
            "reserved (100::/64, discard)",
        ),
    ];
    RANGES
        .iter()
        .find(|(net, prefix, _)| in_v6(ip, *net, *prefix))
        .map(|(_, _, why)| (*why).to_string())
}

/// Whether `host` is `localhost` or a name under it (RFC 6761), with or without the
/// final dot.
pub fn is_localhost_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

const HOW_TO_ALLOW: &str =
    "webhooks must reach a public address (start Vouch with --allow-private-webhooks to permit it)";

/// Checks a URL, at creation and before each delivery: http(s), a host, no
/// credentials, and (unless `allow_private`) no disallowed IP literal or name.
pub fn check_url(url: &str, allow_private: bool) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`url` is not a valid URL: {e}"))?;
    if parsed.scheme() != "https" && parsed.scheme() != "http" {
        return Err("`url` must use https:// (or http://)".into());
    }
    let Some(host) = parsed.host() else {
        return Err("`url` has no host".into());
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("`url` must not carry credentials".into());
    }
    if allow_private {
        return Ok(parsed);
    }
    let ip = match host {
        url::Host::Ipv4(v4) => IpAddr::V4(v4),
        url::Host::Ipv6(v6) => IpAddr::V6(v6),
        url::Host::Domain(d) if is_localhost_name(d) => {
            return Err(format!(
                "`url` points at this machine ({d} is a localhost name); {HOW_TO_ALLOW}"
            ));
        }
        url::Host::Domain(_) => return Ok(parsed),
    };
    match disallowed(ip) {
        Some(why) => Err(format!(
            "`url` points at a {why} address ({ip}), not a public one; {HOW_TO_ALLOW}"
        )),
        None => Ok(parsed),
    }
}

/// A resolver that drops private addresses, so a public name that resolves to
/// a private address (DNS rebinding) cannot be used to reach the inside.
#[derive(Debug, Clone, Copy)]
pub struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            if is_localhost_name(name.as_str()) {
                return Err(
                    format!("{} is a localhost name; {HOW_TO_ALLOW}", name.as_str()).into(),
                );
            }
            let host = format!("{}:0", name.as_str());
            let mut refused = None;
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host(host)
                .await?
                .filter(|a| match disallowed(a.ip()) {
                    Some(why) => {
                        refused.get_or_insert_with(|| format!("{} ({why})", a.ip()));
                        false
                    }
                    None => true,
                })
                .collect();
            if addrs.is_empty() {
                let example = refused.unwrap_or_else(|| "none".into());
                return Err(format!(
                    "{} resolves to no public address (e.g. {example}); {HOW_TO_ALLOW}",
                    name.as_str()
                )
                .into());
            }
            let iter: Addrs = Box::new(addrs.into_iter());
            Ok(iter)
        })
    }
}

/// The HTTP client of the dispatcher: no redirects, bounded timeouts.
pub fn client(allow_private: bool) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(10))
        .user_agent(concat!("Vouch-Webhooks/", env!("CARGO_PKG_VERSION")))
        .no_proxy();
    if !allow_private {
        b = b.dns_resolver(Arc::new(PublicOnlyResolver));
    }
    Ok(b.build()?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_non_public_range_is_refused_with_its_name() {
        // (address, a word the reason must contain)
        let refused = [
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "reserved"),
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("10.0.0.1", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.0.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "CGNAT"),
            ("100.127.255.255", "CGNAT"),
            ("192.0.0.8", "reserved"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("192.88.99.1", "6to4 relay"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.254", "reserved"),
            ("255.255.255.255", "broadcast"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.1.2.3", "private"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("::127.0.0.1", "127.0.0.1, loopback"),
            ("::8.8.8.8", "IPv4-compatible"),
            ("64:ff9b::7f00:1", "NAT64"),
            ("64:ff9b::7f00:1", "127.0.0.1, loopback"),
            ("64:ff9b::808:808", "NAT64"),
            ("64:ff9b:1::1", "NAT64"),
            ("2002:7f00:1::", "6to4"),
            ("2002:7f00:1::", "127.0.0.1, loopback"),
            ("2002:a00:1::1", "10.0.0.1, private"),
            ("2002:808:808::1", "6to4"),
            ("2001:0:4136:e378::1", "Teredo"),
            ("fc00::1", "unique-local"),
            ("fd12:3456::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "site-local"),
            ("feff::1", "site-local"),
            ("ff02::1", "multicast"),
            ("ff0e::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("3fff:fff::1", "documentation"),
            ("2001:2::1", "benchmarking"),
            ("100::1", "reserved"),
        ];
        for (addr, why) in refused {
            let reason = disallowed(addr.parse().unwrap());
            assert!(
                reason.as_deref().is_some_and(|r| r.contains(why)),
                "{addr}: {reason:?} should say {why:?}"
            );
        }
        for addr in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "198.17.255.255",
            "198.20.0.1",
            "192.0.1.1",
            "223.255.255.255",
            "::ffff:8.8.8.8",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "64:ff9c::1",
            "2003::1",
            "fbff::1",
            "2001:db9::1",
        ] {
            assert_eq!(disallowed(addr.parse().unwrap()), None, "{addr}");
        }
    }

    #[test]
    fn urls_are_checked_by_literal_and_by_localhost_name() {
        for (url, why) in [
            ("http://127.0.0.1:8080/hook", "loopback"),
            ("http://0x7f.1/", "loopback"),
            ("http://2130706433/", "loopback"),
            ("http://[::ffff:7f00:1]/", "loopback"),
            ("http://[64:ff9b::a00:1]/", "NAT64"),
            ("http://localhost/", "localhost"),
            ("http://LocalHost./", "localhost"),
            ("http://a.b.localhost/", "localhost"),
            ("http://a.localhost./", "localhost"),
        ] {
            let err = check_url(url, false).unwrap_err();
            assert!(
                err.contains(why) && err.contains("--allow-private-webhooks"),
                "{url}: {err}"
            );
        }
        assert!(check_url("ftp://example.com/", false).is_err());
        assert!(check_url("https://user:pw@example.com/", false).is_err());
        for ok in [
            "https://hooks.example.com/vouch",
            "https://localhost.example.com/",
            "https://mylocalhost/",
            "http://8.8.8.8/",
        ] {
            assert!(check_url(ok, false).is_ok(), "{ok}");
        }
        // The operator's choice: everything goes.
        assert!(check_url("http://127.0.0.1:8080/hook", true).is_ok());
        assert!(check_url("http://localhost./", true).is_ok());
    }

    #[tokio::test]
    async fn the_delivery_resolver_refuses_names_that_resolve_only_inside() {
        let err = PublicOnlyResolver
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("localhost"), "{err}");
    }
}
