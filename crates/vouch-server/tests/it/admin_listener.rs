//! `--admin-addr`: the admin API, the admin UI and `/metrics` only on the admin
//! listener, the widget API and the public routes only on the main one, both
//! under the same connection bounds and stopped together. Without it, one
//! listener serves everything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use crate::common::*;

/// The fallback's message: no route matched at all.
const NO_ROUTE: &str = "No such endpoint";

/// Any call to `base`; the same answer type as the harness's.
async fn call(
    s: &Server,
    base: &str,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> Resp {
    let mut req = s.http.request(method, format!("{base}{path}"));
    if let Some(b) = bearer {
        req = req.header("authorization", format!("Bearer {b}"));
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.expect("the server answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("a body");
    Resp {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

/// Every (method, path) of the OpenAPI document whose path starts with one of
/// `prefixes`, path parameters filled with ids that do not exist.
fn routes(doc: &Value, prefixes: &[&str]) -> Vec<(Method, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if !prefixes.iter().any(|p| path.starts_with(p)) {
            continue;
        }
        let mut filled = String::new();
        let mut in_param = false;
        for c in path.chars() {
            match c {
                '{' => in_param = true,
                '}' => {
                    in_param = false;
                    filled.push_str("missing_0");
                }
                _ if !in_param => filled.push(c),
                _ => {}
            }
        }
        for method in item.as_object().expect("path item").keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
            out.push((m, filled.clone()));
        }
    }
    out
}

/// The admin UI's routes (HTML, not in the OpenAPI document).
fn admin_ui_routes() -> Vec<(Method, String)> {
    vec![
        (Method::GET, "/admin".into()),
        (Method::GET, "/admin/".into()),
        (Method::GET, "/admin/login".into()),
        (Method::POST, "/admin/login".into()),
        (Method::POST, "/admin/logout".into()),
        (Method::GET, "/admin/assets/app.js".into()),
        (Method::GET, "/admin/assets/admin.css".into()),
        (
            Method::GET,
            "/admin/ui/environments/missing_0/secret-hints".into(),
        ),
    ]
}

fn is_no_route(r: &Resp) -> bool {
    r.status == 404
        && r.body["error"]["code"] == "not_found"
        && r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(NO_ROUTE))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_admin_address_every_admin_route_and_metrics_answer_404_on_the_main_one() {
    let (s, admin) = Server::start_split(|_| {}).await;
    let admin_base = format!("http://{admin}");
    let whole = call(&s, &admin_base, Method::GET, "/openapi.json", None, None)
        .await
        .expect_status(200);
    let mut admin_routes = routes(&whole, &["/admin", "/metrics"]);
    assert!(
        admin_routes.len() >= 30,
        "the admin address documents the admin API: {admin_routes:?}"
    );
    assert!(admin_routes.iter().any(|(_, p)| p == "/metrics"));
    admin_routes.extend(admin_ui_routes());
    for (method, path) in &admin_routes {
        let body = (*method != Method::GET).then(|| json!({}));
        let on_main = call(
            &s,
            &s.base,
            method.clone(),
            path,
            Some(ADMIN_TOKEN),
            body.as_ref(),
        )
        .await;
        assert!(
            is_no_route(&on_main),
            "{method} {path} on the main address: {} {}",
            on_main.status,
            on_main.text
        );
        assert_json_error_shape(&on_main);
        let on_admin = call(
            &s,
            &admin_base,
            method.clone(),
            path,
            Some(ADMIN_TOKEN),
            body.as_ref(),
        )
        .await;
        assert!(
            !is_no_route(&on_admin) && on_admin.status < 500,
            "{method} {path} is served on the admin address: {} {}",
            on_admin.status,
            on_admin.text
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_admin_address_the_widget_api_works_on_the_main_one_only() {
    let (s, admin) = Server::start_split(|_| {}).await;
    let admin_base = format!("http://{admin}");
    let created = call(
        &s,
        &admin_base,
        Method::POST,
        "/admin/v1/environments",
        Some(ADMIN_TOKEN),
        Some(&json!({"name": "split"})),
    )
    .await
    .expect_status(201);
    let pk = created["publishable_key"].as_str().unwrap();
    let secret = created["secret"]["value"].as_str().unwrap();
    let body = json!({"user_id": "42", "signature": sign_hex(secret, "42")});
    let ok = s.identify_ok(pk, &body).await;
    assert_eq!(ok["user"]["verified"], true);
    let session = ok["session_token"].as_str().unwrap();
    s.me(session).await.expect_status(200);
    let on_admin = call(
        &s,
        &admin_base,
        Method::POST,
        "/v1/identify",
        Some(pk),
        Some(&body),
    )
    .await;
    assert!(is_no_route(&on_admin), "{}", on_admin.text);

    for path in [
        "/healthz",
        "/readyz",
        "/.well-known/jwks.json",
        "/sdk/vouch.js",
        "/openapi.json",
    ] {
        s.get(path, None).await.expect_status(200);
    }
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        call(&s, &admin_base, Method::GET, path, None, None)
            .await
            .expect_status(200);
    }
    // The demo stays on the main address (it is off here: 404 on both).
    s.get("/demo", None).await.expect_error(404, "not_found");

    // The public document advertises no admin route; the admin one has them all.
    let public = s.get("/openapi.json", None).await.expect_status(200);
    let paths: Vec<&String> = public["paths"].as_object().unwrap().keys().collect();
    assert!(paths.iter().any(|p| p.starts_with("/v1/")), "{paths:?}");
    assert!(
        paths
            .iter()
            .all(|p| !p.starts_with("/admin") && *p != "/metrics"),
        "the main address's document names admin routes: {paths:?}"
    );
    let whole = call(&s, &admin_base, Method::GET, "/openapi.json", None, None)
        .await
        .expect_status(200);
    let whole_paths = whole["paths"].as_object().unwrap();
    for p in &paths {
        assert!(whole_paths.contains_key(p.as_str()), "{p} missing");
    }

    // The admin listener's metrics count the main listener's traffic.
    let metrics = call(&s, &admin_base, Method::GET, "/metrics", None, None).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.text.contains("route=\"/v1/identify\""),
        "{}",
        metrics.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_admin_address_one_listener_serves_everything() {
    let s = Server::start_sqlite().await;
    let whole = s.get("/openapi.json", None).await.expect_status(200);
    let mut all = routes(&whole, &["/admin", "/metrics"]);
    assert!(all.len() >= 30, "{all:?}");
    all.extend(admin_ui_routes());
    let no_redirects = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (method, path) in &all {
        let mut req = no_redirects
            .request(method.clone(), s.url(path))
            .header("authorization", format!("Bearer {ADMIN_TOKEN}"));
        if *method != Method::GET {
            req = req.header("content-type", "application/json").body("{}");
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let served = !(status == 404 && text.contains(NO_ROUTE));
        assert!(served && status < 500, "{method} {path}: {status} {text}");
    }
    let env = s.env().await;
    s.identify_ok(
        &env.pk,
        &json!({"user_id": "7", "signature": env.sign("7")}),
    )
    .await;
    let metrics = s.get("/metrics", None).await;
    assert_eq!(metrics.status, 200);
}

/// Whether `addr` accepts a TCP connection.
async fn accepts(addr: SocketAddr) -> bool {
    tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
        .await
        .is_ok_and(|r| r.is_ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_stops_both_listeners() {
    let (s, admin) = Server::start_split(|_| {}).await;
    let main = s.addr;
    assert!(accepts(main).await && accepts(admin).await);
    s.stop().await;
    assert!(!accepts(main).await, "the main listener still accepts");
    assert!(!accepts(admin).await, "the admin listener still accepts");
}

/// Reads until the peer closes or `limit` passes; whether it closed.
async fn closed_within(stream: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_has_the_same_connection_bounds() {
    let (s, admin) = Server::start_split(|c| {
        c.timeouts.head = Duration::from_millis(400);
        c.max_connections_per_ip = 2;
    })
    .await;
    for addr in [s.addr, admin] {
        // A silent connection is closed by the head deadline.
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        let started = std::time::Instant::now();
        assert!(closed_within(&mut silent, Duration::from_secs(3)).await);
        assert!(started.elapsed() >= Duration::from_millis(300), "{addr}");
        // Over the per-address cap: closed at once.
        let _a = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _b = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert!(
            closed_within(&mut third, Duration::from_millis(300)).await,
            "{addr}: a third connection from one address is closed at once"
        );
    }
}
