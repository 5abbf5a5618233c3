//! Clients that stall mid-request hold nothing: everyone else is served, and the stalled
//! connections are answered or closed by the read timeouts.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::assert_alive;
use crate::common::*;

/// Reads until the peer closes the connection; returns what arrived and when it closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.checked_sub(start.elapsed()).unwrap_or_default();
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (got, start.elapsed()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "the server kept a stalled connection open for {limit:?}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_hold_nothing() {
    let s = Server::start().await;
    let env = s.env().await;
    // Many clients that send half a request line or half the headers, then stall.
    let mut stalled = Vec::new();
    for i in 0..40 {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        let part: &[u8] = if i % 2 == 0 {
            b"POST /v1/ident"
        } else {
            b"POST /v1/identify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        };
        c.write_all(part).await.unwrap();
        stalled.push(c);
    }
    // One that sends its headers and half its body.
    let mut half_body = TcpStream::connect(s.addr).await.unwrap();
    half_body
        .write_all(
            format!(
                "POST /v1/identify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"user_id\":",
                env.pk
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    // Meanwhile everyone else is served promptly.
    for i in 0..20 {
        let started = Instant::now();
        s.identify_ok(&env.pk, &json!({"user_id": format!("meanwhile-{i}")}))
            .await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a normal request waited"
        );
    }
    // The half-sent body gets a JSON error once the body read times out, then the close.
    let (answer, after) = read_until_closed(&mut half_body, Duration::from_secs(25)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 400") || text.starts_with("HTTP/1.1 408"),
        "half-sent body answered {text:?}"
    );
    assert!(
        text.contains("\"error\":{\"code\":"),
        "not a JSON error: {text:?}"
    );
    assert!(
        after >= Duration::from_secs(5),
        "the body timeout fired early ({after:?})"
    );
    // The stalled headers are dropped by the header read timeout.
    for c in &mut stalled {
        let (_, after) = read_until_closed(c, Duration::from_secs(25)).await;
        assert!(after < Duration::from_secs(25));
    }
    assert_alive(&s, "slow clients").await;
}
