//! The identity service shared by identify and group: one proof check, one
//! failure path (failed-verification limits, diagnosis, audit, the
//! `identity.rejected` webhook) and one mapping from the binding rules'
//! rejections to errors.
//!
//! Limits never stand between a client and a correct proof: a proof is
//! verified first, and only a wrong one is counted — per client address and
//! per (environment, subject, client address). A client over its limit gets
//! `rate_limited` for its wrong proofs instead of the 401.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use vouch_core::diagnosis::{DiagnosisInput, diagnose};
use vouch_core::{KeyRing, Mode, ProofError, VerifiedBy};

use crate::error::{ApiError, ErrorCode};
use crate::extract::ClientAddr;
use crate::model::{IdentifyRejection, NewAudit, Proven, Ts};
use crate::state::{AppState, EnvContext};

/// Which proof of a call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofKind {
    Signature,
    Token,
    AttributesSignature,
    CompanySignature,
}

impl ProofKind {
    fn as_str(self) -> &'static str {
        match self {
            ProofKind::Signature => "signature",
            ProofKind::Token => "token",
            ProofKind::AttributesSignature => "attributes_signature",
            ProofKind::CompanySignature => "company_signature",
        }
    }

    fn method(self) -> &'static str {
        match self {
            ProofKind::Token => "token",
            _ => "signature",
        }
    }
}

/// A failed proof and what the diagnosis may look at.
#[derive(Debug)]
pub struct Failure<'a> {
    pub err: ProofError,
    pub kind: ProofKind,
    /// The user the call is about (the session's user for group).
    pub user_id: &'a str,
    /// The company id of a group call.
    pub company_id: Option<&'a str>,
    /// The signature that failed (user or company), for the diagnosis.
    pub signature: Option<&'a str>,
    /// Attributes sent with the call, for the diagnosis.
    pub attributes: Option<&'a Map<String, Value>>,
}

/// Verifies against the cached key ring; when the proof fails in a way a
/// newer ring could fix (a secret just created or rotated on another node),
/// re-reads the environment once and tries again.
pub async fn verify<T>(
    state: &AppState,
    ctx: Arc<EnvContext>,
    check: impl Fn(&KeyRing) -> Result<T, ProofError>,
) -> (Arc<EnvContext>, Result<T, ProofError>) {
    let first = check(&ctx.ring);
    let stale = matches!(
        first,
        Err(ProofError::InvalidSignature
            | ProofError::NoActiveKey
            | ProofError::TokenBadSignature
            | ProofError::TokenUnknownKey)
    );
    if !stale {
        return (ctx, first);
    }
    match state.refreshed(&ctx).await {
        Some(fresh) if keys_differ(&fresh, &ctx) => {
            let again = check(&fresh.ring);
            (fresh, again)
        }
        _ => (ctx, first),
    }
}

fn keys_differ(a: &EnvContext, b: &EnvContext) -> bool {
    let ids = |c: &EnvContext| {
        c.secrets
            .iter()
            .map(|s| (s.id.clone(), s.expires_at, s.revoked_at))
            .collect::<Vec<_>>()
    };
    ids(a) != ids(b)
}

/// A bounded, separator-safe key for the failure counters.
fn limit_key(kind: &str, parts: &[&str]) -> String {
    let mut data = Vec::with_capacity(64);
    data.extend_from_slice(kind.as_bytes());
    for p in parts {
        data.push(0);
        data.extend_from_slice(p.as_bytes());
    }
    vouch_core::encoding::encode_mac(
        &vouch_core::keys::sha256(&data),
        vouch_core::SignatureEncoding::Hex,
    )
}

/// Counts the failure; `Some(429)` when the client is over a limit. The
/// first failure over a limit in a window is audited.
async fn throttle(
    state: &AppState,
    ctx: &EnvContext,
    client: &ClientAddr,
    f: &Failure<'_>,
    now: Ts,
) -> Option<ApiError> {
    let env = ctx.env.id.as_str();
    let addr = client.key();
    let (scope, subject) = match f.company_id {
        Some(c) => ("company", c),
        None => ("user", f.user_id),
    };
    let keys = [
        limit_key("a", &[env, &addr]),
        limit_key(scope, &[env, subject, &addr]),
    ];
    let counts = match state.store.count_failures(&keys, now).await {
        Ok(c) => c,
        Err(e) => {
            // Counting failed (the database is down): answer the 401 anyway.
            tracing::warn!(error = %e, "could not count a failed verification");
            return None;
        }
    };
    let s = &ctx.env.settings;
    let limits = [
        ("address", s.rate_limit_per_address),
        (scope, s.rate_limit_per_user),
    ];
    let over: Vec<_> = limits
        .iter()
        .zip(&counts)
        .filter(|((_, limit), n)| **n > *limit)
        .collect();
    if over.is_empty() {
        return None;
    }
    state.store.count_rejection(env, now);
    crate::metrics::METRICS.verification("rejected", f.kind.method());
    let retry = crate::ratelimit::retry_after(now);
    if let Some(((which, limit), _)) = over.iter().find(|((_, l), n)| **n == l + 1) {
        let audit = NewAudit {
            env_id: Some(env.to_string()),
            kind: "client.throttled",
            user_id: Some(f.user_id.to_string()),
            key_id: None,
            actor: None,
            detail: json!({
                "message": format!("A client reached {limit} failed verifications a minute per {which}; its wrong proofs answer 429 for {retry} s. Correct proofs are still accepted."),
                "client": addr,
                "limit": limit,
                "per": which,
                "company_id": f.company_id,
            }),
            at: now,
        };
        if let Err(e) = state.store.append_audit(audit).await {
            tracing::error!(error = %e, "could not audit a throttled client");
        }
    }
    Some(ApiError::rate_limited(retry))
}

/// A failed proof: counted (429 when the client is over a limit), diagnosed,
/// audited and sent as `identity.rejected`. In a test environment the message
/// names the likely mistake; a live one keeps the generic message, so an
/// attacker learns nothing.
pub async fn refuse(
    state: &AppState,
    ctx: &EnvContext,
    client: &ClientAddr,
    f: Failure<'_>,
    now: Ts,
) -> ApiError {
    if let Some(limited) = throttle(state, ctx, client, &f, now).await {
        return limited;
    }
    let mut err = ApiError::from_proof(&f.err, f.kind == ProofKind::AttributesSignature);
    let mut detail = json!({ "proof": f.kind.as_str() });
    if let Some(sig) = f.signature {
        let (cause, diagnosis) = diagnosis(state, ctx, &f, sig, now).await;
        if ctx.env.settings.mode == Mode::Test && cause != "unknown" {
            err.message = format!("{}: {diagnosis}", err.message);
        }
        detail["cause"] = json!(cause);
        detail["diagnosis"] = json!(diagnosis);
    }
    if let Some(c) = f.company_id {
        detail["company_id"] = json!(c);
    }
    record(state, ctx, f.user_id, &err, detail, f.kind.method(), now).await;
    err
}

async fn diagnosis(
    state: &AppState,
    ctx: &EnvContext,
    f: &Failure<'_>,
    signature: &str,
    now: Ts,
) -> (&'static str, String) {
    // The stored attributes too: the common mistake is signing the email the
    // customer knows the user by, sent in an earlier call.
    let mut known = match (
        f.company_id,
        state.store.get_user(&ctx.env.id, f.user_id).await,
    ) {
        (None, Ok(Some(u))) => u.attributes,
        _ => Map::new(),
    };
    if let Some(a) = f.attributes {
        known.extend(a.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let snap = state.snapshot();
    let others = snap.other_rings(&ctx.env.id);
    let cause = diagnose(
        &DiagnosisInput {
            message: f.company_id.unwrap_or(f.user_id),
            signature,
            keys: &ctx.ring,
            other_environments: &others,
            attributes: Some(&known),
        },
        now,
    );
    (cause.code(), cause.message())
}

/// Audits a rejected call, counts it and sends `identity.rejected`.
async fn record(
    state: &AppState,
    ctx: &EnvContext,
    user_id: &str,
    err: &ApiError,
    mut detail: Value,
    method: &str,
    now: Ts,
) {
    crate::metrics::METRICS.verification("rejected", method);
    detail["code"] = json!(err.code.as_str());
    detail["message"] = json!(err.message);
    let audit = NewAudit {
        env_id: Some(ctx.env.id.clone()),
        kind: "identity.rejected",
        user_id: Some(user_id.to_string()),
        key_id: None,
        actor: None,
        detail,
        at: now,
    };
    if let Err(e) = state.store.record_rejection(audit).await {
        tracing::error!(error = %e, "could not record a rejected call");
    }
}

/// A call the binding rules refused (no proof where one is needed, the
/// unsigned cap, a replayed token, a size limit): its error, audited.
pub async fn rejected(
    state: &AppState,
    ctx: &EnvContext,
    user_id: &str,
    company_id: Option<&str>,
    rejection: IdentifyRejection,
    now: Ts,
) -> ApiError {
    let err = match rejection {
        IdentifyRejection::SignatureRequired(msg) => {
            ApiError::new(ErrorCode::SignatureRequired, msg)
        }
        IdentifyRejection::UnsignedLimitReached => ErrorCode::UnsignedLimitReached.into(),
        IdentifyRejection::TokenReplayed => ApiError::new(
            ErrorCode::InvalidToken,
            "This identity token has already been used (its `jti` is single-use); issue a new token.",
        ),
        // Not an identity failure: nothing is audited.
        IdentifyRejection::TooLarge(msg) => return ApiError::invalid_request(msg),
    };
    let mut detail = json!({});
    if let Some(c) = company_id {
        detail["company_id"] = json!(c);
    }
    record(state, ctx, user_id, &err, detail, "none", now).await;
    err
}

/// What an identify proved: the user id (signature or token), the attributes
/// (`attributes_signature` or the token's claim), and a token's `jti`.
#[derive(Debug)]
pub struct UserProof {
    /// The environment as verified (re-read when the cached ring failed).
    pub ctx: Arc<EnvContext>,
    pub proof: Option<Proven>,
    pub verified_attributes: Map<String, Value>,
    pub unproven: Map<String, Value>,
    pub jti: Option<(String, Ts)>,
}

/// Checks an identify's proofs; a wrong one goes through [`refuse`].
pub async fn prove_user(
    state: &AppState,
    ctx: Arc<EnvContext>,
    client: &ClientAddr,
    input: &crate::api::IdentifyIn,
    attributes: Map<String, Value>,
    now: Ts,
) -> Result<UserProof, ApiError> {
    let fail = |err, kind, signature| Failure {
        err,
        kind,
        user_id: &input.user_id,
        company_id: None,
        signature,
        attributes: Some(&attributes),
    };
    let id = input.user_id.as_bytes();
    let (ctx, proved) = match (&input.signature, &input.token) {
        (Some(sig), _) => {
            let (ctx, r) = verify(state, ctx, |ring| {
                ring.verify_signature(id, sig, now)
                    .map(|k| (Some(proven(VerifiedBy::Signature, k)), Map::new(), None))
            })
            .await;
            let r = r.map_err(|e| fail(e, ProofKind::Signature, Some(sig)));
            (ctx, r)
        }
        (None, Some(token)) => {
            let (ctx, r) = verify(state, ctx, |ring| {
                ring.verify_token(token, Some(&input.user_id), now)
                    .map(|(k, c)| {
                        let proven = proven(VerifiedBy::Token, k);
                        let until = c.exp.map_or(Ts::MAX, |e| {
                            e.saturating_add(vouch_core::token::TOKEN_LEEWAY_SECONDS)
                        });
                        (
                            Some(proven),
                            c.attributes.unwrap_or_default(),
                            c.jti.map(|j| (j, until)),
                        )
                    })
            })
            .await;
            (ctx, r.map_err(|e| fail(e, ProofKind::Token, None)))
        }
        (None, None) => (ctx, Ok((None, Map::new(), None))),
    };
    let (proof, mut verified_attributes, jti) = match proved {
        Ok(p) => p,
        Err(f) => return Err(refuse(state, &ctx, client, f, now).await),
    };
    let mut unproven = Map::new();
    match &input.attributes_signature {
        Some(asig) => {
            if let Err(e) = ctx.ring.verify_attributes(&attributes, asig, now) {
                let f = fail(e, ProofKind::AttributesSignature, None);
                return Err(refuse(state, &ctx, client, f, now).await);
            }
            verified_attributes.extend(attributes);
        }
        None => unproven = attributes,
    }
    Ok(UserProof {
        ctx,
        proof,
        verified_attributes,
        unproven,
        jti,
    })
}

/// A proven signature or token of a user id.
pub fn proven(by: VerifiedBy, key_id: &str) -> Proven {
    Proven {
        by,
        key_id: key_id.to_string(),
    }
}
