//! Webhook URL safety: by default no delivery reaches loopback, link-local or
//! private addresses (checked at creation and again on every connection).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether an address is one a public webhook must never reach.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.octets()[0] == 0
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64) // CGNAT
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local
                || (seg[0] & 0xffc0) == 0xfe80 // link local
        }
    }
}

/// Checks a URL at creation: http(s), a host, and no private IP literal.
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
    if !allow_private {
        let ip = match host {
            url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
            url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
            url::Host::Domain(d)
                if d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost") =>
            {
                return Err("`url` points at this machine (localhost); webhooks must reach a public address (start Vouch with --allow-private-webhooks to permit it)".into());
            }
            url::Host::Domain(_) => None,
        };
        if let Some(ip) = ip
            && is_private(ip)
        {
            return Err(format!(
                "`url` points at a private or loopback address ({ip}); webhooks must reach a public address (start Vouch with --allow-private-webhooks to permit it)"
            ));
        }
    }
    Ok(parsed)
}

/// A resolver that drops private addresses, so a public name that resolves to
/// a private address (DNS rebinding) cannot be used to reach the inside.
#[derive(Debug, Clone, Copy)]
pub struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = format!("{}:0", name.as_str());
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host(host)
                .await?
                .filter(|a| !is_private(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err("the webhook host resolves only to private addresses".into());
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
mod tests {
    use super::*;

    #[test]
    fn private_targets_are_refused_by_default() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://localhost/",
            "ftp://example.com/",
        ] {
            assert!(check_url(url, false).is_err(), "{url}");
        }
        assert!(check_url("https://hooks.example.com/vouch", false).is_ok());
        assert!(check_url("http://127.0.0.1:8080/hook", true).is_ok());
    }
}
