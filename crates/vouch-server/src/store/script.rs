//! The transaction scripts' decisions, pure: from what a transaction read,
//! what it answers and which [`Write`]s it makes. No database here — the
//! scripts in `ops` read, call these, and hand the writes to `write::execute`.

use serde_json::{Map, Value};

use super::write::Write;
use crate::events::{Event, EventType};
use crate::model::*;

/// A webhook endpoint as the outbox sees it: what it subscribes to, whether it is disabled.
#[derive(Clone, Debug)]
pub struct Subscriber {
    pub id: String,
    pub event_types: Option<Vec<String>>,
    pub disabled: bool,
}

impl From<&WebhookEndpoint> for Subscriber {
    fn from(w: &WebhookEndpoint) -> Self {
        Self {
            id: w.id.clone(),
            event_types: w.event_types.clone(),
            disabled: w.disabled_at.is_some(),
        }
    }
}

/// The outbox write for `event`: one delivery per endpoint that subscribes to
/// its type (held when the endpoint is disabled); None when nobody listens.
pub fn enqueue(event: Event, subscribers: &[Subscriber]) -> Option<Write> {
    let deliveries: Vec<(String, bool)> = subscribers
        .iter()
        .filter(|s| {
            s.event_types
                .as_ref()
                .is_none_or(|t| t.iter().any(|t| t == event.kind.as_str()))
        })
        .map(|s| (s.id.clone(), s.disabled))
        .collect();
    (!deliveries.is_empty()).then(|| Write::Enqueue {
        message_id: vouch_core::keys::generate_id("msg"),
        event,
        deliveries,
    })
}

/// Bytes of `v` as compact JSON, without building the text.
fn json_len(v: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

/// The stored-attribute limits of a user or company.
pub fn check_attribute_limits(
    what: &str,
    attributes: &Map<String, Value>,
) -> Result<(), IdentifyRejection> {
    if attributes.len() > MAX_ATTRIBUTE_KEYS {
        return Err(IdentifyRejection::TooLarge(format!(
            "A {what} may have at most {MAX_ATTRIBUTE_KEYS} stored attributes; this call would make {}. Nothing was stored.",
            attributes.len()
        )));
    }
    let bytes = json_len(attributes);
    if bytes > MAX_ATTRIBUTES_BYTES {
        return Err(IdentifyRejection::TooLarge(format!(
            "A {what}'s stored attributes may be at most {} KiB as JSON; this call would make {bytes} bytes. Nothing was stored.",
            MAX_ATTRIBUTES_BYTES / 1024
        )));
    }
    Ok(())
}

/// Applies the identity binding rules to one identify: pure, shared by every
/// store so both backends decide the same way inside their transaction.
pub fn apply_identify(
    existing: Option<UserRecord>,
    cmd: &IdentifyCommand,
    env_unsigned_count: i64,
) -> Result<IdentifyOutcome, IdentifyRejection> {
    if cmd.proof.is_none() {
        if cmd.enforcement == Enforcement::Enforce {
            return Err(IdentifyRejection::SignatureRequired(
                "Identity verification is enforced in this environment: send a `signature` or `token` with identify.",
            ));
        }
        if existing.as_ref().is_some_and(|u| u.verified) {
            return Err(IdentifyRejection::SignatureRequired(
                "This user id has been verified before, so every identify of it needs a `signature` or `token`.",
            ));
        }
    }
    let created = existing.is_none();
    let mut user = existing.unwrap_or_else(|| UserRecord {
        env_id: cmd.env_id.clone(),
        id: cmd.user_id.clone(),
        verified: false,
        verified_by: None,
        key_id: None,
        verified_at: None,
        attributes: Map::new(),
        verified_attributes: Map::new(),
        counted_unsigned: false,
        created_at: cmd.now,
        updated_at: cmd.now,
    });
    let before = user.clone();

    let mut counted_unsigned = false;
    if cmd.proof.is_none() && !user.counted_unsigned {
        if let Some(limit) = cmd.unsigned_limit
            && env_unsigned_count >= i64::try_from(limit).unwrap_or(i64::MAX)
        {
            return Err(IdentifyRejection::UnsignedLimitReached);
        }
        user.counted_unsigned = true;
        counted_unsigned = true;
    }

    if let Some(proof) = &cmd.proof {
        user.verified = true;
        user.verified_by = Some(proof.by);
        user.key_id = Some(proof.key_id.clone());
        let proof_changed = !before.verified
            || before.verified_by != user.verified_by
            || before.key_id != user.key_id;
        let stale = user
            .verified_at
            .is_none_or(|at| cmd.now.saturating_sub(at) >= VERIFIED_AT_RESOLUTION);
        if proof_changed || stale {
            user.verified_at = Some(cmd.now);
        }
    }
    for (k, v) in &cmd.verified_attributes {
        user.verified_attributes.insert(k.clone(), v.clone());
        user.attributes.insert(k.clone(), v.clone());
    }
    let mut ignored = Vec::new();
    for (k, v) in &cmd.attributes {
        if cmd.verified_attributes.contains_key(k) {
            continue;
        }
        match user.verified_attributes.get(k) {
            Some(locked) => {
                if locked != v {
                    ignored.push(k.clone());
                }
            }
            None => {
                user.attributes.insert(k.clone(), v.clone());
            }
        }
    }
    if user.attributes != before.attributes {
        check_attribute_limits("user", &user.attributes)?;
    }
    let changed = created
        || user.attributes != before.attributes
        || user.verified_attributes != before.verified_attributes
        || user.verified != before.verified
        || user.key_id != before.key_id
        || user.verified_by != before.verified_by;
    let touched = user.verified_at != before.verified_at;
    if changed || touched {
        user.updated_at = cmd.now;
    }
    Ok(IdentifyOutcome {
        user,
        created,
        changed,
        ignored_attributes: ignored,
        counted_unsigned,
        write: changed || touched || counted_unsigned,
    })
}

/// What an identify's transaction read.
#[derive(Clone, Debug, Default)]
pub struct IdentifyReads {
    pub jti_used: bool,
    pub user: Option<UserRecord>,
    /// The environment's unsigned counter (read only for unproven calls).
    pub unsigned_count: i64,
    /// The environment's webhook endpoints.
    pub subscribers: Vec<Subscriber>,
    /// The user's companies (read only when someone subscribes).
    pub companies: Vec<CompanyRecord>,
}

/// Decides an identify: the binding rules, then the user row, the unsigned
/// counter, the token's `jti` and the `user.*` event.
pub fn identify(
    reads: IdentifyReads,
    cmd: &IdentifyCommand,
) -> Result<(IdentifyOutcome, Vec<Write>), IdentifyRejection> {
    if reads.jti_used {
        return Err(IdentifyRejection::TokenReplayed);
    }
    let outcome = apply_identify(reads.user, cmd, reads.unsigned_count)?;
    let mut writes = Vec::new();
    if outcome.write {
        writes.push(Write::UpsertUser(outcome.user.clone()));
    }
    if outcome.counted_unsigned {
        writes.push(Write::BumpUnsigned(cmd.env_id.clone()));
    }
    if let Some((jti, until)) = &cmd.jti {
        writes.push(Write::RememberJti {
            env_id: cmd.env_id.clone(),
            jti: jti.clone(),
            until: *until,
        });
    }
    if outcome.created || outcome.changed {
        let kind = if outcome.created {
            EventType::UserCreated
        } else {
            EventType::UserUpdated
        };
        let event = Event::user(kind, &outcome.user, &reads.companies, cmd.now);
        writes.extend(enqueue(event, &reads.subscribers));
    }
    Ok((outcome, writes))
}

/// What a group call's transaction read.
#[derive(Clone, Debug, Default)]
pub struct GroupReads {
    pub company: Option<CompanyRecord>,
    /// The user's membership of this company: None, or whether it was proven.
    pub membership: Option<bool>,
    /// How many companies the user belongs to (read only for a new membership).
    pub memberships_of_user: i64,
}

/// Decides a group call. The same rules as a user: once a company is verified
/// every call for it needs a proof. The membership remembers whether its call
/// proved the company; when a company is verified for the first time, the
/// memberships made without proof are dropped, so they never expose its
/// verified attributes.
pub fn group(
    reads: GroupReads,
    cmd: &GroupCommand,
) -> Result<(CompanyRecord, Vec<Write>), IdentifyRejection> {
    if cmd.proof.is_none() {
        if cmd.enforcement == Enforcement::Enforce {
            return Err(IdentifyRejection::SignatureRequired(
                "Identity verification is enforced in this environment: send the company `signature` with group.",
            ));
        }
        if reads.company.as_ref().is_some_and(|c| c.verified) {
            return Err(IdentifyRejection::SignatureRequired(
                "This company id has been verified before, so every group call for it needs a `signature`.",
            ));
        }
    }
    if reads.membership.is_none() && reads.memberships_of_user >= MAX_COMPANIES_PER_USER {
        return Err(IdentifyRejection::TooLarge(format!(
            "A user may belong to at most {MAX_COMPANIES_PER_USER} companies. Nothing was stored."
        )));
    }
    let was_verified = reads.company.as_ref().is_some_and(|c| c.verified);
    let mut company = reads.company.unwrap_or_else(|| CompanyRecord {
        env_id: cmd.env_id.clone(),
        id: cmd.company_id.clone(),
        verified: false,
        key_id: None,
        verified_at: None,
        attributes: Map::new(),
        created_at: cmd.now,
        updated_at: cmd.now,
    });
    if let Some(key_id) = &cmd.proof {
        company.verified = true;
        company.key_id = Some(key_id.clone());
        company.verified_at = Some(cmd.now);
    }
    let before = company.attributes.clone();
    for (k, v) in &cmd.attributes {
        company.attributes.insert(k.clone(), v.clone());
    }
    if company.attributes != before {
        check_attribute_limits("company", &company.attributes)?;
    }
    company.updated_at = cmd.now;
    let mut writes = vec![Write::UpsertCompany(company.clone())];
    let proven = cmd.proof.is_some();
    if reads.membership.is_none() || (proven && reads.membership == Some(false)) {
        writes.push(Write::UpsertMembership {
            env_id: cmd.env_id.clone(),
            user_id: cmd.user_id.clone(),
            company_id: cmd.company_id.clone(),
            proven,
            at: cmd.now,
        });
    }
    if company.verified && !was_verified {
        writes.push(Write::DropUnprovenMemberships {
            env_id: cmd.env_id.clone(),
            company_id: cmd.company_id.clone(),
        });
    }
    Ok((company, writes))
}

/// Claims due deliveries: each claim counts as an attempt and already moves
/// the delivery to its next retry (`schedule_ms[attempts]` after now). With no
/// retry left it gets a short lease instead, so a last attempt cut short by a
/// crash is tried once more after the restart rather than staying pending.
pub fn claim(
    due: Vec<super::rows::DueDelivery>,
    now_ms: i64,
    schedule_ms: &[i64],
) -> (Vec<ClaimedDelivery>, Vec<Write>) {
    let mut claimed = Vec::with_capacity(due.len());
    let mut writes = Vec::with_capacity(due.len());
    for d in due {
        let attempt = d.attempts + 1;
        let next = usize::try_from(d.attempts)
            .ok()
            .and_then(|i| schedule_ms.get(i))
            .map(|delay| now_ms + delay);
        writes.push(Write::ClaimDelivery {
            delivery_id: d.delivery_id.clone(),
            attempts: attempt,
            next_at_ms: next.unwrap_or(now_ms + FINAL_ATTEMPT_LEASE_MS),
            now_ms,
        });
        claimed.push(ClaimedDelivery {
            delivery_id: d.delivery_id,
            message_id: d.message_id,
            endpoint_id: d.endpoint_id,
            env_id: d.env_id,
            url: d.url,
            secrets: d.secrets,
            payload: d.payload,
            message_created_at: d.message_created_at,
            attempt,
            next_attempt_at: next,
        });
    }
    (claimed, writes)
}

/// How long a claimed last attempt is left alone before it counts as cut
/// short by a crash; longer than any attempt takes.
pub const FINAL_ATTEMPT_LEASE_MS: i64 = 15_000;

/// Logs an attempt: a success completes the delivery, a failure with retries
/// left waits for the next, the last failure kills it and disables the
/// endpoint (what else is queued for it is held until a replay).
pub fn attempt(o: &AttemptOutcome) -> Vec<Write> {
    let d = &o.delivery;
    let at = o.at_ms / 1000;
    let status = if o.success {
        "delivered"
    } else if d.next_attempt_at.is_none() {
        "dead"
    } else {
        "pending"
    };
    let mut writes = vec![
        Write::InsertAttempt(o.clone()),
        Write::DeliveryStatus {
            delivery_id: d.delivery_id.clone(),
            status,
            at,
        },
    ];
    if status == "dead" {
        writes.push(Write::DisableWebhook {
            endpoint_id: d.endpoint_id.clone(),
            reason: disabled_reason(d),
            at,
        });
    }
    writes
}

/// Why an endpoint was disabled, as stored and audited.
pub fn disabled_reason(d: &ClaimedDelivery) -> String {
    format!(
        "Disabled after {} failed attempts to deliver {}; re-enable it and replay once the receiver works.",
        d.attempt, d.message_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use vouch_core::VerifiedBy;

    fn cmd(proof: bool) -> IdentifyCommand {
        IdentifyCommand {
            env_id: "env_1".into(),
            user_id: "42".into(),
            proof: proof.then(|| Proven {
                by: VerifiedBy::Signature,
                key_id: "key_1".into(),
            }),
            attributes: Map::new(),
            verified_attributes: Map::new(),
            enforcement: Enforcement::Off,
            unsigned_limit: None,
            jti: None,
            now: 1000,
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn once_verified_user_needs_proof_forever() {
        let first = apply_identify(None, &cmd(true), 0).unwrap();
        assert!(first.user.verified);
        let again = apply_identify(Some(first.user), &cmd(false), 0);
        assert!(matches!(
            again,
            Err(IdentifyRejection::SignatureRequired(_))
        ));
    }

    #[test]
    fn enforcement_rejects_unproven() {
        let mut c = cmd(false);
        c.enforcement = Enforcement::Enforce;
        assert!(apply_identify(None, &c, 0).is_err());
    }

    #[test]
    fn locked_attributes_are_not_overwritten_and_are_listed() {
        let mut c = cmd(true);
        c.verified_attributes = obj(json!({"plan": "pro", "name": "Ann"}));
        let first = apply_identify(None, &c, 0).unwrap();
        let mut c2 = cmd(true);
        c2.attributes = obj(json!({"plan": "enterprise", "name": "Ann", "city": "Oslo"}));
        let out = apply_identify(Some(first.user), &c2, 0).unwrap();
        assert_eq!(out.ignored_attributes, vec!["plan".to_string()]);
        assert_eq!(out.user.attributes["plan"], json!("pro"));
        assert_eq!(out.user.attributes["city"], json!("Oslo"));
    }

    #[test]
    fn a_repeat_identify_of_an_unchanged_user_writes_nothing() {
        let mut c = cmd(true);
        c.attributes = obj(json!({"plan": "pro"}));
        let first = apply_identify(None, &c, 0).unwrap();
        assert!(first.write && first.created);
        assert_eq!(first.user.verified_at, Some(1000));

        // Same proof and attributes within the resolution: nothing to write.
        c.now = 1000 + VERIFIED_AT_RESOLUTION - 1;
        let again = apply_identify(Some(first.user.clone()), &c, 0).unwrap();
        assert!(!again.write && !again.changed);
        assert_eq!(again.user, first.user);

        // A new attribute value is written at once, verified_at kept.
        let mut changed = c.clone();
        changed.attributes = obj(json!({"plan": "team"}));
        let out = apply_identify(Some(first.user.clone()), &changed, 0).unwrap();
        assert!(out.write && out.changed);
        assert_eq!(out.user.updated_at, changed.now);
        assert_eq!(out.user.verified_at, Some(1000));

        // Another key proves it: verified_at moves at once.
        let mut other_key = c.clone();
        other_key.proof = Some(Proven {
            by: VerifiedBy::Signature,
            key_id: "key_other".into(),
        });
        let out = apply_identify(Some(first.user.clone()), &other_key, 0).unwrap();
        assert!(out.write);
        assert_eq!(out.user.verified_at, Some(other_key.now));

        // Past the resolution the last proof is recorded again.
        c.now = 1000 + VERIFIED_AT_RESOLUTION;
        let later = apply_identify(Some(first.user), &c, 0).unwrap();
        assert!(later.write && !later.changed);
        assert_eq!(later.user.verified_at, Some(c.now));
        assert_eq!(later.user.updated_at, c.now);
    }

    #[test]
    fn unsigned_cap_counts_distinct_users_once() {
        let mut c = cmd(false);
        c.unsigned_limit = Some(1);
        let first = apply_identify(None, &c, 0).unwrap();
        assert!(first.counted_unsigned);
        // The same user again does not count twice, even at the cap.
        let again = apply_identify(Some(first.user), &c, 1).unwrap();
        assert!(!again.counted_unsigned);
        // A new user at the cap is refused.
        let mut other = c.clone();
        other.user_id = "43".into();
        assert_eq!(
            apply_identify(None, &other, 1).unwrap_err(),
            IdentifyRejection::UnsignedLimitReached
        );
    }
}
