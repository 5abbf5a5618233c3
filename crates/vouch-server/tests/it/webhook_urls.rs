//! The webhook URL filter, black-box: every disallowed form is refused at creation with
//! 400 `invalid_request` saying why, and an endpoint stored while private targets were
//! allowed is refused again at delivery once they are not (no request reaches it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

async fn create(s: &Server, env: &str, url: &str) -> Resp {
    s.admin(
        Method::POST,
        &format!("/admin/v1/environments/{env}/webhooks"),
        Some(&json!({"url": url})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_urls_aimed_inside_are_refused_at_creation_with_the_reason() {
    let s = Server::start().await;
    let env = s.env().await;
    // (URL, a word the refusal must contain)
    let refused = [
        ("http://127.0.0.1:9/hook", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://2130706433/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[::127.0.0.1]/", "IPv4-compatible"),
        ("http://[64:ff9b::7f00:1]/", "NAT64"),
        ("http://[64:ff9b::808:808]/", "NAT64"),
        ("http://[2002:7f00:1::]/", "6to4"),
        ("http://[2002:808:808::1]/", "6to4"),
        ("http://[fec0::1]/", "site-local"),
        ("http://[fd00::1]/", "unique-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[ff02::1]/", "multicast"),
        ("http://[::]/", "unspecified"),
        ("http://[2001:db8::1]/", "documentation"),
        ("http://10.0.0.1/", "private"),
        ("http://172.16.5.4/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://100.64.0.1/", "CGNAT"),
        ("http://198.18.0.1/", "benchmarking"),
        ("http://198.19.255.254/", "benchmarking"),
        ("http://192.0.0.8/", "reserved"),
        ("http://240.0.0.1/", "reserved"),
        ("http://224.0.0.1/", "multicast"),
        ("http://239.255.255.250/", "multicast"),
        ("http://255.255.255.255/", "broadcast"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://192.0.2.1/", "documentation"),
        ("http://203.0.113.9/", "documentation"),
        ("http://localhost/", "localhost"),
        ("http://localhost./", "localhost"),
        ("http://LOCALHOST.:8080/", "localhost"),
        ("http://api.localhost/", "localhost"),
        ("http://api.localhost./", "localhost"),
    ];
    let mut wrong = Vec::new();
    for (url, why) in refused {
        let r = create(&s, &env.id, url).await;
        if r.status != 400 || r.body["error"]["code"] != "invalid_request" {
            wrong.push(format!("{url}: {} {}", r.status, r.text));
            continue;
        }
        let message = r.expect_error(400, "invalid_request");
        if !message.to_lowercase().contains(&why.to_lowercase())
            || !message.contains("--allow-private-webhooks")
        {
            wrong.push(format!("{url}: message {message:?} should say {why:?}"));
        }
    }
    assert!(wrong.is_empty(), "accepted or unexplained: {wrong:#?}");
    // Public addresses and names are fine.
    for url in [
        "https://hooks.example.com/vouch",
        "http://8.8.8.8/hook",
        "https://[2606:4700:4700::1111]/hook",
        "https://localhost.example.com/hook",
        "https://notlocalhost.example/hook",
    ] {
        create(&s, &env.id, url).await.expect_status(201);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_private_webhook_url_is_refused_again_at_delivery() {
    // A receiver on loopback that counts the connections it gets.
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", receiver.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = receiver.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            use tokio::io::AsyncWriteExt;
            let _ = c
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        }
    });
    // Allowed at creation while the operator permitted private targets…
    let s = Server::start_configured(|c| c.allow_private_webhooks = true).await;
    let env = s.env().await;
    let created = create(&s, &env.id, &url).await.expect_status(201);
    let wh = created["id"].as_str().unwrap().to_string();
    let dir = s.stop().await;
    // …then the server restarts without that permission and an event is due.
    let s = Server::start_configured_in(dir, |_| {}).await;
    s.identify_ok(&env.pk, &json!({"user_id": "u1"})).await;
    let path = format!("/admin/v1/environments/{}/webhooks/{wh}/deliveries", env.id);
    let mut attempts = Vec::new();
    for _ in 0..100 {
        attempts = s.admin_get(&path).await["data"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !attempts.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first: &Value = attempts.first().expect("an attempt is logged within 10 s");
    assert_eq!(first["success"], json!(false), "{first}");
    let error = first["error"].as_str().unwrap_or("");
    assert!(
        error.contains("loopback") && error.contains("--allow-private-webhooks"),
        "the attempt's error should say why: {first}"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a request reached the loopback receiver"
    );
}
