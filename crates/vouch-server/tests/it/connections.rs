//! Connection bounds against the real server and real sockets: silent connections,
//! many connections from one address, clients that never read their answers, idle
//! keep-alive, and oversized bodies. Client sockets are bound to different loopback
//! addresses (all of 127.0.0.0/8 is loopback on Linux), so one test is many clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// `GET /healthz` on a new connection from `from`; the time it took to answer 200.
async fn healthz_from(from: IpAddr, server: SocketAddr, limit: Duration) -> Duration {
    let started = Instant::now();
    let answer = tokio::time::timeout(limit, async {
        let mut c = connect_from(from, server).await;
        raw_exchange(
            &mut c,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            limit,
        )
        .await
    })
    .await
    .unwrap_or_else(|_| panic!("/healthz from {from} did not answer within {limit:?}"));
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "/healthz from {from} answered {answer:?}"
    );
    started.elapsed()
}

/// Whether the server has closed `stream` (EOF or reset) within `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_block_no_one_and_are_closed_after_10_s() {
    vouch_server::raise_open_files_limit();
    let s = Server::start().await;
    // 1 100 connections that send nothing, 220 from each of five addresses (under the
    // per-address cap, so only the head timeout can close them).
    let mut silent = Vec::new();
    for i in 0..1100u32 {
        let from = loopback(2 + (i % 5) as u8);
        silent.push((connect_from(from, s.addr).await, Instant::now()));
    }
    // Meanwhile another address is served at once, again and again.
    let mut worst = Duration::ZERO;
    for _ in 0..10 {
        worst = worst.max(healthz_from(loopback(1), s.addr, Duration::from_secs(2)).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eprintln!("/healthz during the silent flood of 1100: worst {worst:?}");
    // Each silent one is closed by the server about 10 s after it was accepted.
    let mut waits = JoinSet::new();
    for (mut c, opened) in silent {
        waits.spawn(async move {
            let closed = closed_within(&mut c, Duration::from_secs(16)).await;
            (closed, opened.elapsed())
        });
    }
    let (mut earliest, mut latest) = (Duration::MAX, Duration::ZERO);
    while let Some(r) = waits.join_next().await {
        let (closed, after) = r.unwrap();
        assert!(closed, "a silent connection was still open after {after:?}");
        earliest = earliest.min(after);
        latest = latest.max(after);
    }
    eprintln!("silent connections closed between {earliest:?} and {latest:?} after connect");
    assert!(
        earliest >= Duration::from_secs(9),
        "a silent connection was closed before the 10 s head timeout ({earliest:?})"
    );
    assert!(
        latest <= Duration::from_secs(13),
        "a silent connection outlived the head timeout by far ({latest:?})"
    );
    healthz_from(loopback(1), s.addr, Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_256_from_one_address_are_closed_at_once_while_others_are_served() {
    vouch_server::raise_open_files_limit();
    let s = Server::start().await;
    let flooder = loopback(9);
    let mut conns = Vec::new();
    for _ in 0..400 {
        conns.push(connect_from(flooder, s.addr).await);
    }
    let worst = healthz_from(loopback(1), s.addr, Duration::from_secs(2)).await;
    eprintln!("/healthz during the flood of 400 from one address: {worst:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut open = Vec::new();
    let mut closed = 0;
    for mut c in conns {
        if closed_within(&mut c, Duration::from_millis(20)).await {
            closed += 1;
        } else {
            open.push(c);
        }
    }
    assert_eq!(
        (open.len(), closed),
        (256, 144),
        "open and closed connections from one address"
    );
    // The ones kept are really served.
    let answer = raw_exchange(
        &mut open[0],
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(2),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    // Another address still is, and the flooder gets a slot back once one is freed.
    healthz_from(loopback(1), s.addr, Duration::from_secs(2)).await;
    drop(open.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    healthz_from(flooder, s.addr, Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_sent_whole_gets_a_readable_413_every_time() {
    let s = Server::start().await;
    let env = s.env().await;
    let body = vec![b'a'; 512 * 1024];
    let mut readable = 0;
    let mut answers = Vec::new();
    for _ in 0..20 {
        // A small send buffer, so the client is still sending when the 413 is written
        // (on loopback, a large buffer would take the whole body before the server reads).
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(16 * 1024).unwrap();
        let mut c = socket.connect(s.addr).await.unwrap();
        let head = format!(
            "POST /v1/identify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            env.pk,
            body.len()
        );
        // As most clients do: the whole request first, then the answer.
        c.write_all(head.as_bytes()).await.unwrap();
        let sent = c.write_all(&body).await;
        let mut got = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut got)).await;
        let text = String::from_utf8_lossy(&got).into_owned();
        if sent.is_ok()
            && text.starts_with("HTTP/1.1 413")
            && text.contains(r#"{"error":{"code":"payload_too_large""#)
        {
            readable += 1;
        } else {
            answers.push(format!("sent {sent:?}, read {read:?}: {text:?}"));
        }
    }
    assert_eq!(readable, 20, "unreadable 413 answers: {answers:#?}");
}

/// A server whose connection deadlines are short, so a test can wait them out.
async fn start_with_timeouts(head: u64, idle: u64, write: u64) -> Server {
    Server::start_configured(|c| {
        c.timeouts = vouch_server::config::Timeouts {
            head: Duration::from_millis(head),
            idle: Duration::from_millis(idle),
            write: Duration::from_millis(write),
        };
    })
    .await
}

/// The size of one `GET /openapi.json` answer, head included.
async fn openapi_answer_len(s: &Server) -> usize {
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let answer = raw_exchange(
        &mut c,
        b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{}", &answer[..100]);
    answer.len()
}

/// `n` pipelined `GET /openapi.json`, sent at once.
fn pipelined_openapi(n: usize) -> Vec<u8> {
    b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_the_client_does_not_read_is_dropped_after_the_write_timeout() {
    let s = start_with_timeouts(10_000, 60_000, 2_000).await;
    let one = openapi_answer_len(&s).await;
    // Far more than the kernel buffers of both ends can hold (a few MiB on loopback).
    let n = (24 << 20) / one + 1;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut c = socket.connect(s.addr).await.unwrap();
    c.write_all(&pipelined_openapi(n)).await.unwrap();
    // The client reads nothing for a while: the server's writes stall.
    tokio::time::sleep(Duration::from_secs(5)).await;
    // By now the server has closed: what reaches the client is what the kernels held,
    // then the end of the stream; never all the answers.
    let mut got = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match c.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(k) => got += k,
            }
        }
    })
    .await;
    eprintln!(
        "unread flood: {got} of {} bytes arrived before the close",
        n * one
    );
    assert!(
        ended.is_ok(),
        "the connection stayed open ({got} bytes read)"
    );
    assert!(
        got < n * one,
        "every answer was delivered ({got} bytes): the stalled connection was not dropped"
    );
    healthz_from(loopback(1), s.addr, Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reads_slowly_gets_every_answer() {
    let s = start_with_timeouts(10_000, 60_000, 2_000).await;
    let one = openapi_answer_len(&s).await;
    let n = (12 << 20) / one + 1;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(&pipelined_openapi(n)).await.unwrap();
    // 64 KiB every 20 ms (about 3 MiB/s): slow, but never stalled for 2 s.
    let started = Instant::now();
    let mut got = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    while got < n * one {
        match tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(k)) => got += k,
            Err(_) => panic!("no data for 5 s after {got} bytes"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("slow reader: {got} bytes in {:?}", started.elapsed());
    assert_eq!(got, n * one, "the slow reader's connection was cut");
    assert!(
        started.elapsed() > Duration::from_secs(3),
        "the transfer was too fast to prove anything ({:?})",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_outlives_the_head_timeout_and_is_closed_when_idle() {
    let s = start_with_timeouts(1_000, 3_000, 30_000).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let get = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let limit = Duration::from_secs(2);
    assert!(
        raw_exchange(&mut c, get, limit)
            .await
            .starts_with("HTTP/1.1 200")
    );
    // Longer than the head timeout, shorter than the idle one: still usable.
    tokio::time::sleep(Duration::from_millis(1_800)).await;
    assert!(
        raw_exchange(&mut c, get, limit)
            .await
            .starts_with("HTTP/1.1 200")
    );
    let idle = Instant::now();
    assert!(
        closed_within(&mut c, Duration::from_secs(6)).await,
        "idle connection kept"
    );
    let after = idle.elapsed();
    assert!(
        after >= Duration::from_millis(2_500) && after <= Duration::from_millis(4_500),
        "closed {after:?} after its last answer, not after the 3 s idle timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_request_head_that_stalls_is_closed_after_the_head_timeout() {
    let s = start_with_timeouts(1_000, 30_000, 30_000).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let answer = raw_exchange(
        &mut c,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(2),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"));
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost:")
        .await
        .unwrap();
    let started = Instant::now();
    assert!(closed_within(&mut c, Duration::from_secs(5)).await);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a half-sent head was kept {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_is_not_capped_per_address_but_other_peers_are() {
    let s = Server::start_configured(|c| {
        c.max_connections_per_ip = 4;
        c.trusted_proxies = "127.0.0.1".parse().unwrap();
    })
    .await;
    let mut proxy = Vec::new();
    let mut client = Vec::new();
    for _ in 0..10 {
        proxy.push(connect_from(loopback(1), s.addr).await);
        client.push(connect_from(loopback(2), s.addr).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let open = |conns: Vec<TcpStream>| async move {
        let mut n = 0;
        for mut c in conns {
            if !closed_within(&mut c, Duration::from_millis(20)).await {
                n += 1;
            }
        }
        n
    };
    assert_eq!(open(proxy).await, 10, "connections from the trusted proxy");
    assert_eq!(
        open(client).await,
        4,
        "connections from an untrusted address"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_without_tls_is_served_through_the_same_bounds() {
    let s = Server::start().await;
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    for _ in 0..3 {
        let r = h2.get(s.url("/openapi.json")).send().await.unwrap();
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        assert_eq!(r.status(), 200);
        assert!(r.bytes().await.unwrap().len() > 1000);
    }
    // A connection that sends only the HTTP/2 preface gets no more time than one that
    // sends nothing.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    assert!(closed_within(&mut c, Duration::from_secs(14)).await);
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
}

/// Sends `GET path` with `bearer` from `from` on a socket with a tiny receive
/// buffer, and reads nothing: the answer stays with the server.
async fn ask_and_never_read(from: IpAddr, to: SocketAddr, path: &str, bearer: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let mut c = socket.connect(to).await.unwrap();
    let ask = format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {bearer}\r\n\r\n");
    c.write_all(ask.as_bytes()).await.unwrap();
    c
}

/// A user in 100 companies of 32 KiB makes `/v1/me` 3.3 MB, and anyone with
/// the publishable key can build one. Clients that ask for it and never read
/// used to pin every copy (200 of them: 930 MiB); now one address gets at
/// most 32 MiB of such answers in flight and then 503 at once, while another
/// address is served, and the budget comes back when the hoarders go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_answers_nobody_reads_are_bounded_per_client_address() {
    let s = Server::start().await;
    let env = s.env().await;
    let session = s.identify_ok(&env.pk, &json!({"user_id": "hoarder"})).await["session_token"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = "x".repeat(32 * 1024 - 64);
    for i in 0..100 {
        s.group(
            &session,
            &json!({"company_id": format!("c{i:03}"), "attributes": {"blob": blob}}),
        )
        .await
        .expect_status(200);
    }
    let size = s.me(&session).await.text.len();
    assert!(size > 3_000_000, "/v1/me is {size} bytes");

    // From one address, one request after another, never reading: the answers
    // fit 32 MiB about ten times, then the next one is refused at once.
    let hoarder = loopback(40);
    let mut held = Vec::new();
    let mut refused = None;
    for _ in 0..20 {
        let mut c = ask_and_never_read(hoarder, s.addr, "/v1/me", &session).await;
        // A refusal is small: it arrives whole at once. An answer being held
        // shows only its first bytes (what the kernels buffer).
        let mut head = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut head))
            .await
            .expect("an answer starts within 5 s")
            .unwrap();
        let text = String::from_utf8_lossy(&head[..n]).to_string();
        if text.starts_with("HTTP/1.1 503") {
            refused = Some(text);
            break;
        }
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        held.push(c);
    }
    let refused = refused.expect("a client holding 20 unread answers of 3.3 MB is refused");
    let answers = held.len();
    assert!(
        (8..=10).contains(&answers),
        "{answers} unread answers of {size} bytes were let through before the refusal"
    );
    assert!(refused.contains("\"code\":\"unavailable\""), "{refused}");
    assert!(
        refused.to_lowercase().contains("retry-after: 1"),
        "{refused}"
    );

    // Another address is served in full meanwhile, and small answers never wait.
    let other = s.me(&session).await;
    assert_eq!(other.status, 200);
    assert_eq!(other.text.len(), size);
    healthz_from(loopback(41), s.addr, Duration::from_secs(2)).await;

    // When the hoarder's connections go, its budget comes back.
    drop(held);
    let started = Instant::now();
    loop {
        let mut c = ask_and_never_read(hoarder, s.addr, "/v1/me", &session).await;
        let mut head = vec![0u8; 64];
        let n = c.read(&mut head).await.unwrap();
        if head[..n].starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the budget did not come back after the connections closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
