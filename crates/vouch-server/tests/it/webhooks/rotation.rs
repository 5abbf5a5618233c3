//! A webhook secret rotation: while both secrets are live, both sign every delivery.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_rotation_both_secrets_sign_every_delivery() {
    let vouch = Vouch::start(true, None).await;
    let env = vouch.env().await;
    let recv = Receiver::start(Answer::Status(200)).await;
    let (wh, old) = vouch
        .webhook(&env, &recv.url, Some(&["user.created"]))
        .await;
    let rotate = format!(
        "/admin/v1/environments/{}/webhooks/{wh}/rotate-secret",
        env.id
    );

    let v = vouch
        .admin_ok(
            Method::POST,
            &rotate,
            Some(&json!({"grace_seconds": 3600})),
            200,
        )
        .await;
    let new = v["secret"].as_str().expect("the new secret").to_string();
    assert_whsec(&new);
    assert_ne!(new, old);

    vouch.identify_signed(&env, "rotating", json!({})).await;
    let hits = recv.wait_count(1).await;
    let hit = &hits[0];
    assert_standard(hit, &new);
    let ts: i64 = hit.h("webhook-timestamp").parse().unwrap();
    let expect = |s: &str| {
        format!(
            "v1,{}",
            vouch_server::webhooks::sign(s, &hit.id(), ts, hit.body.as_bytes()).unwrap()
        )
    };
    assert_eq!(
        hit.signatures().into_iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([expect(&old), expect(&new)]),
        "two v1 signatures, one per secret: {}",
        hit.h("webhook-signature")
    );
    let stranger = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    assert_eq!(
        verify_python(&[
            (old.as_str(), hit, None),
            (new.as_str(), hit, None),
            (stranger, hit, None)
        ]),
        [true, true, false]
    );

    // A rotation without grace: only the newest secret signs.
    let v = vouch
        .admin_ok(
            Method::POST,
            &rotate,
            Some(&json!({"grace_seconds": 0})),
            200,
        )
        .await;
    let newest = v["secret"].as_str().unwrap().to_string();
    vouch.identify_signed(&env, "rotated", json!({})).await;
    let hits = recv.wait_count(2).await;
    let hit = &hits[1];
    assert_eq!(hit.signatures().len(), 1, "{}", hit.h("webhook-signature"));
    assert!(verifies_ours(&newest, hit));
    assert!(!verifies_ours(&new, hit) && !verifies_ours(&old, hit));
    assert_eq!(
        verify_python(&[(newest.as_str(), hit, None), (new.as_str(), hit, None)]),
        [true, false]
    );

    // Deleting the endpoint stops it.
    let path = format!("/admin/v1/environments/{}/webhooks/{wh}", env.id);
    vouch.admin_ok(Method::DELETE, &path, None, 204).await;
    vouch.admin_ok(Method::GET, &path, None, 404).await;
    vouch.identify_signed(&env, "after-delete", json!({})).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(recv.hits().len(), 2, "a deleted endpoint receives nothing");
}
