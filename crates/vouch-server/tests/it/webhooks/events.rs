//! Every event type arrives signed (by our check and by `standardwebhooks`), and an
//! endpoint gets only the types it subscribed to.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_type_arrives_signed_and_filtered() {
    let vouch = Vouch::start(true, None).await;
    let env = vouch.env().await;
    let all = Receiver::start(Answer::Status(200)).await;
    let some = Receiver::start(Answer::Status(204)).await;
    let (_, sec_all) = vouch.webhook(&env, &all.url, None).await;
    let filtered = ["identity.rejected", "secret.revoked"];
    let (_, sec_some) = vouch.webhook(&env, &some.url, Some(&filtered)).await;
    assert_ne!(sec_all, sec_some);

    // user.created, then user.updated.
    vouch
        .identify_signed(&env, "user-1", json!({"plan": "free"}))
        .await;
    vouch
        .identify_signed(&env, "user-1", json!({"plan": "pro"}))
        .await;
    // identity.rejected: a wrong signature.
    let bad = sign_hex("sk_test_not_the_right_secret_0123456789abcdef", "user-2");
    let (status, v) = vouch
        .identify(&env, &json!({"user_id": "user-2", "signature": bad}))
        .await;
    assert_eq!(status, 401, "{v}");
    // identity.rejected again: a wrong company signature on group goes through
    // the same failure path as identify.
    let sig = sign_hex(&env.secret, "user-4");
    let (status, v) = vouch
        .identify(&env, &json!({"user_id": "user-4", "signature": sig}))
        .await;
    assert_eq!(status, 200, "{v}");
    let session = v["session_token"].as_str().unwrap().to_string();
    let (status, v) = vouch
        .call(
            Method::POST,
            "/v1/group",
            &session,
            Some(&json!({"company_id": "acme", "signature": bad})),
        )
        .await;
    assert_eq!(status, 401, "{v}");
    // user.deleted: user-4 is erased.
    vouch
        .admin_ok(
            Method::DELETE,
            &format!("/admin/v1/environments/{}/users/user-4", env.id),
            None,
            204,
        )
        .await;
    // secret.created, secret.revoked.
    let secrets = format!("/admin/v1/environments/{}/secrets", env.id);
    let s2 = vouch
        .admin_ok(Method::POST, &secrets, Some(&json!({})), 201)
        .await;
    let (k2, v2) = (
        s2["id"].as_str().unwrap().to_string(),
        s2["value"].as_str().unwrap().to_string(),
    );
    vouch
        .admin_ok(Method::DELETE, &format!("{secrets}/{k2}"), None, 200)
        .await;
    // secret.created, then secret.exposed: its value arrives on the widget API.
    let s3 = vouch
        .admin_ok(Method::POST, &secrets, Some(&json!({})), 201)
        .await;
    let (k3, v3) = (
        s3["id"].as_str().unwrap().to_string(),
        s3["value"].as_str().unwrap().to_string(),
    );
    let (status, v) = vouch
        .identify(
            &env,
            &json!({"user_id": "user-3", "attributes": {"note": v3}}),
        )
        .await;
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["error"]["code"], "secret_key_exposed");

    let expected = sorted(
        [
            "user.created",
            "user.updated",
            "identity.rejected",
            "user.created",
            "identity.rejected",
            "user.deleted",
            "secret.created",
            "secret.revoked",
            "secret.created",
            "secret.exposed",
        ]
        .map(String::from)
        .to_vec(),
    );
    all.wait_count(expected.len()).await;
    some.wait_count(3).await;
    // Nothing more arrives (one request per event when the receiver succeeds).
    tokio::time::sleep(Duration::from_millis(700)).await;
    let hits_all = all.hits();
    let hits_some = some.hits();
    assert_eq!(
        sorted(hits_all.iter().map(Hit::kind).collect()),
        expected,
        "every type reaches the endpoint without a filter"
    );
    assert_eq!(
        sorted(hits_some.iter().map(Hit::kind).collect()),
        sorted(
            ["identity.rejected", "identity.rejected", "secret.revoked"]
                .map(String::from)
                .to_vec()
        ),
        "only subscribed types reach the filtered endpoint"
    );
    let ids: BTreeSet<String> = hits_all.iter().map(Hit::id).collect();
    assert_eq!(ids.len(), hits_all.len(), "one webhook-id per event");

    for hit in &hits_all {
        assert_standard(hit, &sec_all);
        assert!(
            !verifies_ours(&sec_some, hit),
            "another endpoint's secret must not verify"
        );
    }
    for hit in &hits_some {
        assert_standard(hit, &sec_some);
        // The same event under the same webhook-id and body on every endpoint.
        let twin = hits_all
            .iter()
            .find(|h| h.id() == hit.id())
            .expect("the filtered endpoint's event also reached the other one");
        assert_eq!(twin.body, hit.body);
    }

    // Secret values never leave Vouch in a webhook body.
    for hit in hits_all.iter().chain(&hits_some) {
        for value in [&env.secret, &v2, &v3] {
            assert!(
                !hit.body.contains(value.as_str()),
                "a secret value in {}",
                hit.body
            );
        }
    }

    // The objects concerned.
    let by_kind = |kind: &str| -> Vec<Value> {
        hits_all
            .iter()
            .filter(|h| h.kind() == kind)
            .map(|h| h.json()["data"].clone())
            .collect()
    };
    let user_keys = BTreeSet::from([
        "environment_id",
        "id",
        "verified",
        "verified_by",
        "key_id",
        "verified_at",
        "attributes",
        "verified_attributes",
        "companies",
        "created_at",
        "updated_at",
    ]);
    for (kind, plan) in [("user.created", "free"), ("user.updated", "pro")] {
        let data = &by_kind(kind)
            .into_iter()
            .find(|d| d["id"] == "user-1")
            .unwrap();
        let keys: BTreeSet<&str> = data
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, user_keys, "{kind}: the user object: {data}");
        assert_eq!(data["id"], "user-1");
        assert_eq!(data["verified"], true);
        assert_eq!(data["verified_by"], "signature");
        assert_eq!(data["attributes"]["plan"], plan, "{kind}: {data}");
    }
    let rejected = by_kind("identity.rejected");
    let user = rejected.iter().find(|r| r["user_id"] == "user-2").unwrap();
    assert_eq!(user["environment_id"], json!(env.id), "{user}");
    assert_eq!(user["code"], "invalid_signature", "{user}");
    assert_eq!(user["proof"], "signature", "{user}");
    let company = rejected.iter().find(|r| r["user_id"] == "user-4").unwrap();
    assert_eq!(company["company_id"], "acme", "{company}");
    assert_eq!(company["proof"], "company_signature", "{company}");
    assert_eq!(company["code"], "invalid_signature", "{company}");
    assert!(company["diagnosis"].is_string(), "{company}");
    // An erased user's webhook names it and carries none of its attributes.
    let deleted = &by_kind("user.deleted")[0];
    assert_eq!(deleted["id"], "user-4", "{deleted}");
    assert!(deleted.get("attributes").is_none(), "{deleted}");

    let created: BTreeSet<String> = by_kind("secret.created")
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(created, BTreeSet::from([k2.clone(), k3.clone()]));
    let revoked = &by_kind("secret.revoked")[0];
    assert_eq!(
        (revoked["id"].as_str(), revoked["status"].as_str()),
        (Some(k2.as_str()), Some("revoked"))
    );
    let exposed = &by_kind("secret.exposed")[0];
    assert_eq!(
        (exposed["id"].as_str(), exposed["status"].as_str()),
        (Some(k3.as_str()), Some("revoked"))
    );
    for data in by_kind("secret.created").iter().chain([revoked, exposed]) {
        assert!(data.get("value").is_none(), "secret metadata only: {data}");
        assert!(data["created_at"].is_string(), "{data}");
        assert_eq!(data["environment_id"], json!(env.id), "{data}");
    }

    // The independent verifier accepts every request under its endpoint's secret ...
    let mut genuine: Vec<(&str, &Hit, Option<&str>)> = hits_all
        .iter()
        .map(|h| (sec_all.as_str(), h, None))
        .collect();
    genuine.extend(hits_some.iter().map(|h| (sec_some.as_str(), h, None)));
    let ok = verify_python(&genuine);
    assert!(
        ok.iter().all(|b| *b),
        "standardwebhooks rejected a delivery: {ok:?}"
    );
    // ... and rejects a changed body or another secret (it is not a no-op).
    let tampered = hits_all[0].body.replacen('{', "{ ", 1);
    let forged = verify_python(&[
        (sec_all.as_str(), &hits_all[0], Some(tampered.as_str())),
        (sec_some.as_str(), &hits_all[0], None),
    ]);
    assert_eq!(forged, [false, false]);
}
