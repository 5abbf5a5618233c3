//! Where deliveries may go: private addresses are refused by default and redirects are
//! not followed.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_are_refused_by_default() {
    let vouch = Vouch::start(false, None).await;
    let env = vouch.env().await;
    let path = format!("/admin/v1/environments/{}/webhooks", env.id);
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://[::1]:9/hook",
        "http://10.0.0.7/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "ftp://hooks.example.com/",
        "not a url",
    ] {
        let (status, v) = vouch
            .admin(Method::POST, &path, Some(&json!({"url": url})))
            .await;
        assert_eq!(status, 400, "{url}: {v}");
        assert_eq!(v["error"]["code"], "invalid_request", "{url}: {v}");
    }
    let (status, v) = vouch
        .admin(
            Method::POST,
            &path,
            Some(&json!({"url": "https://hooks.example.com/x", "event_types": ["user.exploded"]})),
        )
        .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (400, &json!("invalid_request")),
        "{v}"
    );
    let list = vouch.admin_ok(Method::GET, &path, None, 200).await;
    assert_eq!(list["data"], json!([]), "nothing was created");
    // A public URL is accepted.
    let v = vouch
        .admin_ok(
            Method::POST,
            &path,
            Some(&json!({"url": "https://hooks.example.com/vouch"})),
            201,
        )
        .await;
    assert!(v["secret"].as_str().unwrap().starts_with("whsec_"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed() {
    let vouch = Vouch::start(true, Some(vec![60_000])).await;
    let env = vouch.env().await;
    let target = Receiver::start(Answer::Status(200)).await;
    let redirecting = Receiver::start(Answer::Redirect(target.url.clone())).await;
    let (wh, _) = vouch
        .webhook(&env, &redirecting.url, Some(&["user.created"]))
        .await;

    vouch.identify_signed(&env, "redirected", json!({})).await;
    redirecting.wait_count(1).await;
    let log = vouch.wait_deliveries(&env, &wh, 1).await;
    let a = &log[0];
    assert_eq!(a["status_code"], 302, "{a}");
    assert_eq!(a["success"], false, "a redirect is a failed attempt: {a}");
    assert!(a["next_retry_at"].is_string(), "retried later: {a}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(target.hits().is_empty(), "the redirect was followed");
    assert_eq!(redirecting.hits().len(), 1);
    assert_eq!(vouch.get_webhook(&env, &wh).await["disabled"], false);
}
