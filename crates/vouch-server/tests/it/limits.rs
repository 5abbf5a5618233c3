//! Limits that protect everyone else: a flood of wrong proofs throttles only
//! the client that sends it, and no call can make a user or company grow
//! without bound.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};

/// An HTTP client whose connections come from `addr` (any of 127.0.0.0/8).
fn client_from(addr: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(addr.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn post(
    http: &reqwest::Client,
    s: &Server,
    path: &str,
    bearer: &str,
    body: &Value,
) -> (u16, Value) {
    let r = http
        .post(s.url(path))
        .bearer_auth(bearer)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_wrong_proofs_never_stops_a_correct_one_from_elsewhere() {
    let s = Server::start().await;
    let env = s.env().await;
    avoid_minute_boundary(40).await;
    let victim = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "victim", "signature": env.sign("victim")}),
        )
        .await["session_token"]
        .as_str()
        .unwrap()
        .to_string();
    let attacker_session = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "mallory", "signature": env.sign("mallory")}),
        )
        .await["session_token"]
        .as_str()
        .unwrap()
        .to_string();
    // Ten attacker addresses, forty wrong signatures each for the victim's
    // user id and for the victim's company: far past every limit.
    let wrong = "0".repeat(64);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for a in 2..12 {
        let http = client_from(&format!("127.0.0.{a}"));
        for _ in 0..20 {
            let (st, _) = post(
                &http,
                &s,
                "/v1/identify",
                &env.pk,
                &json!({"user_id": "victim", "signature": wrong}),
            )
            .await;
            *statuses.entry(st).or_default() += 1;
            let (st, _) = post(
                &http,
                &s,
                "/v1/group",
                &attacker_session,
                &json!({"company_id": "acme", "signature": wrong}),
            )
            .await;
            *statuses.entry(st).or_default() += 1;
        }
    }
    // Each attacker address got its 10 + 10 answers of 401, then 429s.
    assert_eq!(statuses.get(&401), Some(&200), "{statuses:?}");
    assert_eq!(statuses.get(&429), Some(&200), "{statuses:?}");
    // The victim, from its own address, is served: signature and company signature.
    for _ in 0..5 {
        s.identify_ok(
            &env.pk,
            &json!({"user_id": "victim", "signature": env.sign("victim")}),
        )
        .await;
        s.group(
            &victim,
            &json!({"company_id": "acme", "signature": env.sign("acme")}),
        )
        .await
        .expect_status(200);
    }
    // Even from an attacker's own (throttled) address, a correct proof passes.
    let (st, v) = post(
        &client_from("127.0.0.2"),
        &s,
        "/v1/identify",
        &env.pk,
        &json!({"user_id": "victim", "signature": env.sign("victim")}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    // The victim's own mistake from its address is a plain 401, not someone else's 429.
    s.identify(&env.pk, &json!({"user_id": "victim", "signature": wrong}))
        .await
        .expect_error(401, "invalid_signature");
    // Throttling was audited once per limit reached, not per refused call.
    let throttled = s
        .admin_get(&format!(
            "/admin/v1/environments/{}/audit?kind=client.throttled&limit=200",
            env.id
        ))
        .await;
    let throttled = throttled["data"].as_array().unwrap();
    assert_eq!(
        throttled.len(),
        20,
        "two limits (user, company) for each of ten addresses"
    );
    assert!(throttled.iter().all(|a| a["kind"] == "client.throttled"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_environment_limits_are_settings() {
    let s = Server::start().await;
    let env = s
        .env_with(json!({"rate_limit_per_user": 2, "rate_limit_per_address": 3}))
        .await;
    avoid_minute_boundary(20).await;
    let wrong = "1".repeat(64);
    for _ in 0..2 {
        s.identify(&env.pk, &json!({"user_id": "a", "signature": wrong}))
            .await
            .expect_error(401, "invalid_signature");
    }
    let r = s
        .identify(&env.pk, &json!({"user_id": "a", "signature": wrong}))
        .await;
    r.expect_error(429, "rate_limited");
    assert!(r.header("retry-after").is_some());
    // The address limit: the third failure was one; a fourth on another id is over it.
    s.identify(&env.pk, &json!({"user_id": "b", "signature": wrong}))
        .await
        .expect_error(429, "rate_limited");
    s.identify_ok(
        &env.pk,
        &json!({"user_id": "b", "signature": env.sign("b")}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_attributes_are_bounded_and_nothing_is_stored_past_the_bound() {
    let s = Server::start().await;
    let env = s.env().await;
    let sig = env.sign("big");
    // 30 KiB in one call is fine; another 4 KiB would pass 32 KiB in all.
    s.identify_ok(
        &env.pk,
        &json!({"user_id": "big", "signature": sig, "attributes": {"a": "x".repeat(30 * 1024)}}),
    )
    .await;
    let msg = s
        .identify(
            &env.pk,
            &json!({"user_id": "big", "signature": sig, "attributes": {"b": "y".repeat(4 * 1024)}}),
        )
        .await
        .expect_error(400, "invalid_request");
    assert!(msg.contains("32 KiB"), "{msg}");
    let stored = s.admin_user(&env.id, "big").await.expect_status(200);
    assert!(stored["attributes"].get("b").is_none(), "nothing stored");
    // 200 keys at most.
    let many: serde_json::Map<String, Value> =
        (0..201).map(|i| (format!("k{i}"), json!(i))).collect();
    let msg = s
        .identify(
            &env.pk,
            &json!({"user_id": "keys", "signature": env.sign("keys"), "attributes": many}),
        )
        .await
        .expect_error(400, "invalid_request");
    assert!(msg.contains("200"), "{msg}");
    s.admin_user(&env.id, "keys")
        .await
        .expect_error(404, "not_found");
    // A company too.
    let session = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "member", "signature": env.sign("member")}),
        )
        .await["session_token"]
        .as_str()
        .unwrap()
        .to_string();
    let msg = s
        .group(
            &session,
            &json!({"company_id": "co", "attributes": {"blob": "z".repeat(33 * 1024)}}),
        )
        .await
        .expect_error(400, "invalid_request");
    assert!(msg.contains("32 KiB"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_belongs_to_at_most_100_companies_and_events_carry_at_most_8_kib() {
    let s = Server::start().await;
    let env = s.env().await;
    let session = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "joiner", "signature": env.sign("joiner")}),
        )
        .await["session_token"]
        .as_str()
        .unwrap()
        .to_string();
    for i in 0..100 {
        s.group(&session, &json!({"company_id": format!("c{i}")}))
            .await
            .expect_status(200);
    }
    let msg = s
        .group(&session, &json!({"company_id": "c100"}))
        .await
        .expect_error(400, "invalid_request");
    assert!(msg.contains("100 companies"), "{msg}");
    // A company it already belongs to can still be updated.
    s.group(
        &session,
        &json!({"company_id": "c7", "attributes": {"seen": true}}),
    )
    .await
    .expect_status(200);
    let user = s.admin_user(&env.id, "joiner").await.expect_status(200);
    assert_eq!(user["companies"].as_array().unwrap().len(), 100);
    // Event properties: 8 KiB.
    s.track(
        &session,
        &json!({"event": "ok", "properties": {"p": "x".repeat(7 * 1024)}}),
    )
    .await
    .expect_status(202);
    let msg = s
        .track(
            &session,
            &json!({"event": "big", "properties": {"p": "x".repeat(9 * 1024)}}),
        )
        .await
        .expect_error(400, "invalid_request");
    assert!(msg.contains("8 KiB"), "{msg}");
}

/// A user in 100 companies of 32 KiB each is 3.2 MiB of company attributes:
/// the user itself and `/v1/me` show them, a page of users does not.
#[tokio::test]
async fn a_page_of_users_stays_small_whatever_their_companies_carry() {
    let s = Server::start().await;
    let env = s.env().await;
    let session = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "member", "signature": env.sign("member")}),
        )
        .await["session_token"]
        .as_str()
        .unwrap()
        .to_string();
    // Just under 32 KiB of stored JSON per company.
    let blob = "x".repeat(32 * 1024 - 64);
    for i in 0..100 {
        s.group(
            &session,
            &json!({"company_id": format!("c{i:03}"), "attributes": {"blob": blob}}),
        )
        .await
        .expect_status(200);
    }
    let page = s
        .admin(
            reqwest::Method::GET,
            &format!("/admin/v1/environments/{}/users?limit=200", env.id),
            None,
        )
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.text.len() < 32 * 1024,
        "a users page of {} bytes",
        page.text.len()
    );
    let listed = page.body["data"][0]["companies"].as_array().unwrap();
    assert_eq!(listed.len(), 100);
    assert!(
        listed
            .iter()
            .all(|c| c["id"].is_string() && c.get("attributes").is_none())
    );
    // One user asked for by id, and the session's own user, carry the attributes.
    let one = s.admin_user(&env.id, "member").await.expect_status(200);
    let me = s.me(&session).await.expect_status(200);
    for user in [&one, &me["user"]] {
        let companies = user["companies"].as_array().unwrap();
        assert_eq!(companies.len(), 100);
        assert!(
            companies
                .iter()
                .all(|c| c["attributes"]["blob"] == blob.as_str())
        );
    }
}
