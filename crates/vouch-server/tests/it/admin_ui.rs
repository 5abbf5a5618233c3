//! The admin UI's server side: sign-in cookies, the CSRF guard on cookie-authenticated
//! writes, and the security headers of every page. (The pages themselves are driven in
//! Chromium by tests/browser/admin.test.mjs.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{ADMIN_TOKEN, Server};
use reqwest::Method;
use serde_json::json;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn set_cookies(r: &crate::common::Resp) -> Vec<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

fn cookie_value(cookies: &[String], name: &str) -> String {
    let c = cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {cookies:?}"));
    c.split(';').next().unwrap()[name.len() + 1..].to_string()
}

async fn sign_in(server: &Server) -> (String, String) {
    let r = server
        .post("/admin/login", None, &json!({"token": ADMIN_TOKEN}))
        .await;
    let cookies = set_cookies(&r);
    r.expect_status(200);
    (
        cookie_value(&cookies, "vouch_admin"),
        cookie_value(&cookies, "vouch_csrf"),
    )
}

#[tokio::test]
async fn sign_in_sets_an_http_only_same_site_strict_cookie() {
    let server = Server::start().await;
    let wrong = server
        .post(
            "/admin/login",
            None,
            &json!({"token": "vat_not-the-right-one-0123456789abcdef"}),
        )
        .await;
    wrong.expect_error(401, "invalid_admin_token");
    assert!(set_cookies(&wrong).is_empty());

    let r = server
        .post("/admin/login", None, &json!({"token": ADMIN_TOKEN}))
        .await;
    let cookies = set_cookies(&r);
    assert_eq!(r.status, 200, "{}", r.text);
    let admin = cookies
        .iter()
        .find(|c| c.starts_with("vouch_admin="))
        .unwrap();
    assert!(admin.contains("; HttpOnly"), "{admin}");
    assert!(admin.contains("; SameSite=Strict"), "{admin}");
    assert!(admin.contains("; Path=/"), "{admin}");
    assert!(!admin.contains("Secure"), "plain http: no Secure flag");
    let csrf = cookies
        .iter()
        .find(|c| c.starts_with("vouch_csrf="))
        .unwrap();
    assert!(
        !csrf.contains("HttpOnly"),
        "the page's script reads it: {csrf}"
    );
    assert!(csrf.contains("; SameSite=Strict"), "{csrf}");

    let https = server
        .request(
            Method::POST,
            "/admin/login",
            None,
            &[("x-forwarded-proto", "https")],
            Some((
                "application/json",
                json!({"token": ADMIN_TOKEN}).to_string().into_bytes(),
            )),
        )
        .await;
    assert!(
        set_cookies(&https).iter().all(|c| c.ends_with("; Secure")),
        "Secure behind https"
    );
    server.stop().await;
}

#[tokio::test]
async fn cookie_authenticated_writes_need_the_csrf_token() {
    let server = Server::start().await;
    let env = server.env().await;
    let (admin, csrf) = sign_in(&server).await;
    let path = format!("/admin/v1/environments/{}", env.id);
    let patch = |cookie: String, header: Option<String>| {
        let server = &server;
        let path = path.clone();
        async move {
            let mut headers = vec![("cookie", cookie.as_str())];
            if let Some(h) = &header {
                headers.push(("x-csrf-token", h.as_str()));
            }
            server
                .request(
                    Method::PATCH,
                    &path,
                    None,
                    &headers,
                    Some((
                        "application/json",
                        json!({"allow_anonymous": false}).to_string().into_bytes(),
                    )),
                )
                .await
        }
    };
    let both = format!("vouch_admin={admin}; vouch_csrf={csrf}");

    let msg = patch(both.clone(), None)
        .await
        .expect_error(401, "invalid_admin_token");
    assert!(msg.contains("CSRF"), "{msg}");
    patch(both.clone(), Some("nope".into()))
        .await
        .expect_error(401, "invalid_admin_token");
    // A cookie planted by someone else (header and cookie agree, but it was not minted
    // for this admin token) does not pass either.
    let planted = "AAAAAAAAAAAAAAAAAAAAAA.forged";
    patch(
        format!("vouch_admin={admin}; vouch_csrf={planted}"),
        Some(planted.into()),
    )
    .await
    .expect_error(401, "invalid_admin_token");
    assert_eq!(
        server.admin_get(&path).await["allow_anonymous"],
        json!(true),
        "nothing changed"
    );

    let ok = patch(both.clone(), Some(csrf.clone()))
        .await
        .expect_status(200);
    assert_eq!(ok["allow_anonymous"], json!(false));
    // Reads need no CSRF token; bearer-authenticated calls never do.
    server
        .request(Method::GET, &path, None, &[("cookie", both.as_str())], None)
        .await
        .expect_status(200);
    server
        .admin(
            Method::PATCH,
            &path,
            Some(&json!({"allow_anonymous": true})),
        )
        .await
        .expect_status(200);
    server.stop().await;
}

#[tokio::test]
async fn admin_pages_carry_a_strict_content_security_policy() {
    let server = Server::start().await;
    let no_redirects = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let anon = no_redirects.get(server.url("/admin")).send().await.unwrap();
    assert_eq!(anon.status(), 303);
    assert_eq!(anon.headers()["location"], "/admin/login");

    for (path, content_type) in [
        ("/admin/login", "text/html"),
        ("/admin/assets/app.js", "text/javascript"),
        ("/admin/assets/admin.css", "text/css"),
    ] {
        let r = server.get(path, None).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-security-policy"), Some(CSP), "{path}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
        assert!(
            r.header("content-type").unwrap().starts_with(content_type),
            "{path}"
        );
    }
    let login = server.get("/admin/login", None).await;
    assert_eq!(login.header("cache-control"), Some("no-store"));
    assert!(!login.text.contains("<style") && !login.text.contains(" style="));
    server
        .get("/admin/assets/..%2F..%2FCargo.toml", None)
        .await
        .expect_error(404, "not_found");

    let (admin, _) = sign_in(&server).await;
    let page = no_redirects
        .get(server.url("/admin"))
        .header("cookie", format!("vouch_admin={admin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("vouch_csrf=")),
        "a sign-in without its CSRF cookie gets a fresh one"
    );
    server.stop().await;
}

#[tokio::test]
async fn sign_in_from_another_site_and_sign_out() {
    let server = Server::start().await;
    let body = json!({"token": ADMIN_TOKEN}).to_string().into_bytes();
    server
        .request(
            Method::POST,
            "/admin/login",
            None,
            &[("origin", "https://evil.example")],
            Some(("application/json", body)),
        )
        .await
        .expect_error(403, "origin_not_allowed");

    let out = server.post_raw("/admin/logout", None, "", "").await;
    let cookies = set_cookies(&out);
    assert_eq!(out.status, 200);
    for name in ["vouch_admin=;", "vouch_csrf=;"] {
        let c = cookies.iter().find(|c| c.starts_with(name)).unwrap();
        assert!(c.contains("Max-Age=0"), "{c}");
    }
    server.stop().await;
}
