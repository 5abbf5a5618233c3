//! A receiver that fails: the attempt is retried under the same webhook id and logged,
//! and an endpoint that keeps failing is disabled, holds its events and replays them.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_attempt_is_retried_under_the_same_webhook_id_and_logged() {
    let vouch = Vouch::start(true, Some(vec![400, 400, 400, 60_000])).await;
    let env = vouch.env().await;
    let recv = Receiver::start(Answer::Status(200)).await;
    recv.then(Answer::Status(500));
    let (wh, secret) = vouch
        .webhook(&env, &recv.url, Some(&["user.created"]))
        .await;

    vouch.identify_signed(&env, "retry-me", json!({})).await;
    let hits = recv.wait_count(2).await;
    let (first, second) = (&hits[0], &hits[1]);
    assert_eq!((first.answered, second.answered), (500, 200));
    assert_eq!(
        first.id(),
        second.id(),
        "one stable webhook-id across attempts"
    );
    assert_eq!(first.body, second.body);
    assert_standard(first, &secret);
    assert_standard(second, &secret);
    let gap = second.at - first.at;
    assert!(
        gap >= Duration::from_millis(300),
        "retried after {gap:?}, before the 400 ms (±20 %) schedule"
    );

    let log = vouch.wait_deliveries(&env, &wh, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log_again = vouch.deliveries(&env, &wh).await;
    assert_eq!(
        log_again.len(),
        2,
        "no attempt after the success: {log_again:?}"
    );
    let (a1, a2) = (&log[0], &log[1]);
    for a in [a1, a2] {
        assert_eq!(a["message_id"], json!(first.id()), "{a}");
        assert!(a["delivery_id"].is_string(), "{a}");
        let latency = a["latency_ms"].as_i64().expect("latency_ms");
        assert!((0..10_000).contains(&latency), "{a}");
        parse_rfc3339(a["created_at"].as_str().expect("created_at"));
    }
    assert_eq!(a1["attempt"], 1);
    assert_eq!(a1["status_code"], 500);
    assert_eq!(a1["success"], false);
    let snippet = a1["response"].as_str().expect("a response snippet");
    assert!(snippet.starts_with("boom boom"), "{snippet:.40}");
    assert!(
        snippet.len() <= 1024 && snippet.len() < failure_body().len(),
        "the response is cut to a snippet ({} bytes)",
        snippet.len()
    );
    let next = parse_rfc3339(
        a1["next_retry_at"]
            .as_str()
            .expect("next_retry_at on the failure"),
    );
    assert!(next >= parse_rfc3339(a1["created_at"].as_str().unwrap()) - time::Duration::seconds(1));
    assert_eq!(a2["attempt"], 2);
    assert_eq!(a2["status_code"], 200);
    assert_eq!(a2["success"], true);
    assert_eq!(a2["response"], "ok");
    assert_eq!(a2["next_retry_at"], Value::Null, "{a2}");
    assert_eq!(a2["error"], Value::Null, "{a2}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_is_disabled_holds_events_and_replays_them() {
    let vouch = Vouch::start(true, Some(vec![100, 200])).await;
    let env = vouch.env().await;
    let recv = Receiver::start(Answer::Status(503)).await;
    let (wh, secret) = vouch.webhook(&env, &recv.url, None).await;
    let wh_path = format!("/admin/v1/environments/{}/webhooks/{wh}", env.id);

    vouch.identify_signed(&env, "first", json!({})).await;
    // The first try and both scheduled retries, then the endpoint is disabled.
    let hits = recv.wait_count(3).await;
    let first_id = hits[0].id();
    assert!(hits.iter().all(|h| h.id() == first_id));
    let until = Instant::now() + Duration::from_secs(10);
    let w = loop {
        let w = vouch.get_webhook(&env, &wh).await;
        if w["disabled"] == true {
            break w;
        }
        assert!(Instant::now() < until, "not disabled: {w}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let reason = w["disabled_reason"].as_str().expect("disabled_reason");
    assert!(!reason.is_empty());
    parse_rfc3339(w["disabled_at"].as_str().expect("disabled_at"));
    let audit = vouch.audit(&env).await;
    let entry = audit
        .iter()
        .find(|a| a["kind"] == "webhook.disabled")
        .unwrap_or_else(|| panic!("no webhook.disabled audit entry: {audit:?}"));
    assert_eq!(entry["detail"]["endpoint_id"], json!(wh), "{entry}");

    let log = vouch.wait_deliveries(&env, &wh, 3).await;
    assert_eq!(log.len(), 3, "{log:?}");
    for (i, a) in log.iter().enumerate() {
        assert_eq!(a["attempt"], json!(i + 1));
        assert_eq!(a["status_code"], 503);
        assert_eq!(a["success"], false);
        assert_eq!(a["next_retry_at"].is_string(), i < 2, "{a}");
    }

    // While disabled, new events are held, not sent.
    vouch.identify_signed(&env, "second", json!({})).await;
    vouch
        .admin_ok(
            Method::POST,
            &format!("/admin/v1/environments/{}/secrets", env.id),
            Some(&json!({})),
            201,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        recv.hits().len(),
        3,
        "nothing is sent to a disabled endpoint"
    );
    let (status, v) = vouch
        .admin(Method::POST, &format!("{wh_path}/replay"), None)
        .await;
    assert_eq!(status, 409, "replay while disabled: {v}");
    assert_eq!(v["error"]["code"], "conflict");

    // The receiver is fixed; an operator enables the endpoint ...
    recv.set_default(Answer::Status(200));
    let w = vouch
        .admin_ok(Method::POST, &format!("{wh_path}/enable"), None, 200)
        .await;
    assert_eq!(w["disabled"], false, "{w}");
    assert_eq!(w["disabled_reason"], Value::Null, "{w}");
    // ... a new event goes out at once; the held ones wait for the replay.
    vouch.identify_signed(&env, "third", json!({})).await;
    let hits = recv.wait_count(4).await;
    assert_eq!(hits[3].json()["data"]["id"], "third");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(recv.hits().len(), 4, "held events are sent only on replay");

    let v = vouch
        .admin_ok(Method::POST, &format!("{wh_path}/replay"), None, 200)
        .await;
    assert_eq!(v["queued"], 3, "the dead event and the two held ones: {v}");
    let hits = recv
        .wait("the replayed events", |h| {
            h.iter().filter(|h| h.answered == 200).count() >= 4
        })
        .await;
    let delivered: Vec<&Hit> = hits.iter().filter(|h| h.answered == 200).collect();
    let kinds = sorted(delivered.iter().map(|h| h.kind()).collect());
    assert_eq!(
        kinds,
        [
            "secret.created",
            "user.created",
            "user.created",
            "user.created"
        ]
    );
    assert!(
        delivered.iter().any(|h| h.id() == first_id),
        "the dead event is replayed under its original webhook-id"
    );
    let users: BTreeSet<String> = delivered
        .iter()
        .filter(|h| h.kind() == "user.created")
        .map(|h| h.json()["data"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        users,
        BTreeSet::from(["first", "second", "third"].map(String::from))
    );
    for h in &delivered {
        assert_standard(h, &secret);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(recv.hits().len(), 7, "each replayed event is sent once");
    let audit = vouch.audit(&env).await;
    assert!(
        audit.iter().any(|a| a["kind"] == "webhook.enabled"),
        "{audit:?}"
    );
}
