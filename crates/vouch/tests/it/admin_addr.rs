//! `vouch serve --admin-addr`, the real binary: the banner names both
//! addresses, each serves its own routes, and SIGTERM stops both cleanly
//! (also when it arrives during start-up).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::offline::*;

/// The URL after `label` in the banner.
fn url_after(banner: &str, label: &str) -> String {
    banner
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in the banner:\n{banner}"))
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_banner_names_both_addresses_and_sigterm_stops_both() {
    let dir = tempfile::tempdir().unwrap();
    let s = Serve::start(dir.path(), &["--admin-addr", "127.0.0.1:0"], &[]);
    let banner = s.banner();
    let widget = url_after(&banner, "Widget API:");
    let admin_api = url_after(&banner, "Admin API:");
    let metrics = url_after(&banner, "Metrics:");
    assert!(widget.starts_with(&s.base), "{banner}");
    let admin_base = admin_api
        .strip_suffix("/admin/v1/environments")
        .unwrap()
        .to_string();
    assert_ne!(admin_base, s.base, "{banner}");
    assert_eq!(metrics, format!("{admin_base}/metrics"));
    assert!(banner.contains("keep it private"), "{banner}");
    assert!(
        banner.contains(&format!("admin UI ({admin_base}/admin")),
        "the first-start hint points at the admin address: {banner}"
    );

    let (status, body) = call(&s.base, "GET", "/admin/v1/environments", Some(ADMIN), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    expect(
        call(
            &admin_base,
            "GET",
            "/admin/v1/environments",
            Some(ADMIN),
            None,
        )
        .await,
        200,
    );
    assert_eq!(call(&s.base, "GET", "/metrics", None, None).await.0, 404);
    assert_eq!(
        call(&admin_base, "GET", "/metrics", None, None).await.0,
        200
    );
    // `vouch healthcheck` asks the main address, which keeps /readyz.
    let port = s.base.rsplit(':').next().unwrap().to_string();
    ok(&vouch(
        &["healthcheck", "--addr", &format!("127.0.0.1:{port}")],
        &[],
    ));

    let admin_addr = admin_base.strip_prefix("http://").unwrap().to_string();
    let main_addr = s.base.strip_prefix("http://").unwrap().to_string();
    s.stop();
    for addr in [main_addr, admin_addr] {
        assert!(
            std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(1))
                .is_err(),
            "{addr} still accepts after the exit"
        );
    }
}

#[test]
fn sigterm_during_start_up_still_exits_cleanly() {
    // Before the signal handlers were installed first thing, a SIGTERM that
    // arrived while the store opened killed the process (exit by signal).
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        Serve::start(dir.path(), &["--admin-addr", "127.0.0.1:0"], &[]).stop();
    }
}

#[test]
fn the_admin_address_must_differ_from_the_main_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = vouch(
        &[
            "serve",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--addr",
            "127.0.0.1:18555",
            "--admin-addr",
            "127.0.0.1:18555",
        ],
        &[],
    );
    let err = fails(&out, 1);
    assert!(
        err.contains("VOUCH_ADMIN_ADDR must be another address"),
        "{err}"
    );
}
