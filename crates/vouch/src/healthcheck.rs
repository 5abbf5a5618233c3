//! `vouch healthcheck`: GET /readyz and turn the answer into an exit status.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::HealthcheckArgs;
use crate::input::usage;

/// Exits 0 on a 200 answer, 1 on any other answer or none; 2 for an unusable URL.
pub fn run(args: &HealthcheckArgs) -> anyhow::Result<ExitCode> {
    let url = match &args.url {
        Some(url) => url.clone(),
        None => readyz_url(&args.addr),
    };
    let parsed = match reqwest::Url::parse(&url) {
        Ok(parsed) if parsed.scheme() == "http" => parsed,
        Ok(_) => return usage(format!("--url must be a plain http:// URL (got {url:?})")),
        Err(e) => return usage(format!("{url:?} is not a URL: {e}")),
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout))
        // A redirect is not readiness: report it instead of following it.
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answer = runtime.block_on(async { client.get(parsed).send().await });
    match answer {
        Ok(resp) if resp.status() == reqwest::StatusCode::OK => {
            println!("ready: {url}");
            Ok(ExitCode::SUCCESS)
        }
        Ok(resp) => {
            eprintln!("not ready: {url} answered {}", resp.status());
            Ok(ExitCode::from(1))
        }
        Err(e) => {
            eprintln!("not ready: {url}: {}", describe(&e));
            Ok(ExitCode::from(1))
        }
    }
}

/// `http://ADDR/readyz`, asking an unspecified listen address on loopback.
fn readyz_url(addr: &str) -> String {
    match addr.parse::<SocketAddr>() {
        Ok(mut socket) => {
            if socket.ip().is_unspecified() {
                socket.set_ip(match socket.ip() {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
                });
            }
            format!("http://{socket}/readyz")
        }
        // A host name (`localhost:8080`) is used as given.
        Err(_) => format!("http://{addr}/readyz"),
    }
}

/// The error and its causes on one line (reqwest's own message is only the outermost).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::readyz_url;

    #[test]
    fn unspecified_listen_addresses_are_asked_on_loopback() {
        assert_eq!(readyz_url("0.0.0.0:8080"), "http://127.0.0.1:8080/readyz");
        assert_eq!(readyz_url("[::]:9000"), "http://[::1]:9000/readyz");
        assert_eq!(readyz_url("10.1.2.3:80"), "http://10.1.2.3:80/readyz");
        assert_eq!(readyz_url("localhost:8080"), "http://localhost:8080/readyz");
    }
}
