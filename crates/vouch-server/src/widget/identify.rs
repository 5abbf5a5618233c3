use axum::Json;
use axum::extract::State;
use serde_json::{Map, Value, json};
use vouch_core::diagnosis::{DiagnosisInput, diagnose};
use vouch_core::{KeyRing, ProofError, VerifiedBy};

use crate::api::{ErrorOut, IdentifyIn, IdentifyOut, WidgetUserOut};
use crate::error::{ApiError, ApiResult};
use crate::exposure;
use crate::extract::{ClientAddr, JsonBody, WidgetAuth};
use crate::model::{IdentifyCommand, IdentifyRejection, Proven, Ts};
use crate::state::{AppState, EnvContext, now};
use crate::store::NewAudit;

/// Identifies a user, with or without a proof of identity.
#[utoipa::path(post, path = "/v1/identify", tag = "widget",
    request_body = IdentifyIn,
    responses((status = 200, body = IdentifyOut), (status = "4XX", body = ErrorOut)),
    security(("publishable_key" = [])))]
#[tracing::instrument(skip_all, fields(env_id = %auth.ctx.env.id))]
pub async fn identify(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    auth: WidgetAuth,
    body: JsonBody,
) -> ApiResult<Json<IdentifyOut>> {
    exposure::scan_body(&state, &body.raw, &body.value).await?;
    let input: IdentifyIn = body.parse()?;
    super::check_id_pub("user_id", &input.user_id)?;
    if input.signature.is_some() && input.token.is_some() {
        return Err(ApiError::invalid_request(
            "Send one proof: either `signature` or `token`, not both.",
        ));
    }
    let ctx = &auth.ctx;
    let settings = &ctx.env.settings;
    let now = now();

    let attributes: Map<String, Value> = match &input.attributes {
        None => Map::new(),
        Some(raw) if input.attributes_signature.is_some() => {
            vouch_core::jcs::parse_attributes(raw.get())
                .map_err(|e| ApiError::invalid_request(e.to_string()))?
        }
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|_| ApiError::invalid_request("`attributes` must be a JSON object."))?,
    };
    if input.attributes_signature.is_some() && input.attributes.is_none() {
        return Err(ApiError::invalid_request(
            "`attributes_signature` was sent without `attributes`: send the attributes object it signs.",
        ));
    }

    let has_proof =
        input.signature.is_some() || input.token.is_some() || input.attributes_signature.is_some();
    let user_key = super::rate_key("u", &ctx.env.id, &input.user_id);
    let addr_key = super::rate_key("a", &ctx.env.id, &ip.to_string());
    let env_key = super::rate_key("e", &ctx.env.id, "");
    if has_proof {
        super::check_rate_limits(
            &state,
            &[
                (&user_key, settings.rate_limit_per_user),
                (&addr_key, settings.rate_limit_per_address),
                (&env_key, settings.rate_limit_per_environment),
            ],
            now,
        )
        .await?;
    }

    let failure = |err: ProofError, which: &'static str| Failure {
        err,
        which,
        user_key: &user_key,
        addr_key: &addr_key,
        env_key: &env_key,
    };
    let mut proof = None;
    let mut verified_attributes = Map::new();
    let mut jti = None;
    if let Some(sig) = &input.signature {
        match ctx
            .ring
            .verify_signature(input.user_id.as_bytes(), sig, now)
        {
            Ok(key_id) => {
                proof = Some(Proven {
                    by: VerifiedBy::Signature,
                    key_id: key_id.to_string(),
                })
            }
            Err(e) => {
                return Err(reject(
                    &state,
                    ctx,
                    &input,
                    &attributes,
                    failure(e, "signature"),
                    now,
                )
                .await);
            }
        }
    } else if let Some(token) = &input.token {
        match ctx.ring.verify_token(token, Some(&input.user_id), now) {
            Ok((key_id, claims)) => {
                proof = Some(Proven {
                    by: VerifiedBy::Token,
                    key_id: key_id.to_string(),
                });
                if let Some(a) = claims.attributes {
                    verified_attributes.extend(a);
                }
                if let Some(j) = claims.jti {
                    let until: Ts = claims
                        .exp
                        .map(|e| e.saturating_add(vouch_core::token::TOKEN_LEEWAY_SECONDS))
                        .unwrap_or(i64::MAX);
                    jti = Some((j, until));
                }
            }
            Err(e) => {
                return Err(
                    reject(&state, ctx, &input, &attributes, failure(e, "token"), now).await,
                );
            }
        }
    }
    let mut unproven = attributes;
    if let Some(asig) = &input.attributes_signature {
        match ctx.ring.verify_attributes(&unproven, asig, now) {
            Ok(_) => verified_attributes.extend(std::mem::take(&mut unproven)),
            Err(e) => {
                return Err(reject(
                    &state,
                    ctx,
                    &input,
                    &unproven,
                    failure(e, "attributes_signature"),
                    now,
                )
                .await);
            }
        }
    }

    let cmd = IdentifyCommand {
        env_id: ctx.env.id.clone(),
        user_id: input.user_id.clone(),
        proof,
        attributes: unproven,
        verified_attributes,
        enforcement: settings.enforcement,
        unsigned_limit: settings.unsigned_session_limit,
        jti,
        now,
    };
    let outcome = match state.store.identify(cmd).await? {
        Ok(o) => o,
        Err(rejection) => {
            let err = match rejection {
                IdentifyRejection::SignatureRequired(msg) => {
                    ApiError::unauthorized("signature_required", msg)
                }
                IdentifyRejection::UnsignedLimitReached => ApiError::forbidden(
                    "unsigned_limit_reached",
                    "This environment has reached its limit of unverified users: sign user ids on your backend and send `signature` with identify.",
                ),
                IdentifyRejection::TokenReplayed => ApiError::unauthorized(
                    "invalid_token",
                    "This identity token has already been used (its `jti` is single-use); issue a new token.",
                ),
            };
            record(&state, ctx, &input.user_id, &err, None, now).await;
            return Err(err);
        }
    };
    let user = &outcome.user;
    crate::metrics::METRICS.verification(
        if proof_given(&input) {
            "verified"
        } else {
            "unverified"
        },
        match (&input.signature, &input.token) {
            (Some(_), _) => "signature",
            (_, Some(_)) => "token",
            _ => "none",
        },
    );
    let visitor_id = vouch_core::keys::generate_id("vis");
    let (session_token, expires_at) = super::issue_session(
        &state,
        ctx,
        &user.id,
        &visitor_id,
        if outcome.user.verified && proof_given(&input) {
            user.verified_by
        } else {
            None
        },
        false,
    )?;
    Ok(Json(IdentifyOut {
        session_token,
        expires_at,
        user: WidgetUserOut {
            id: user.id.clone(),
            verified: user.verified,
            verified_by: user.verified_by,
            attributes: user.attributes.clone(),
            verified_attributes: user.verified_attributes.clone(),
        },
        ignored_attributes: outcome.ignored_attributes,
    }))
}

fn proof_given(input: &IdentifyIn) -> bool {
    input.signature.is_some() || input.token.is_some()
}

struct Failure<'a> {
    err: ProofError,
    which: &'static str,
    user_key: &'a str,
    addr_key: &'a str,
    env_key: &'a str,
}

/// A failed proof: counted for rate limiting, diagnosed and audited.
async fn reject(
    state: &AppState,
    ctx: &EnvContext,
    input: &IdentifyIn,
    attributes: &Map<String, Value>,
    f: Failure<'_>,
    now: Ts,
) -> ApiError {
    let err = ApiError::from_proof(&f.err, f.which == "attributes_signature");
    let _ = state.store.rate_fail(f.user_key, now).await;
    let _ = state.store.rate_fail(f.addr_key, now).await;
    let _ = state.store.rate_fail(f.env_key, now).await;
    let cause = match (&input.signature, f.which) {
        (Some(sig), "signature") => {
            // The stored attributes too: the common mistake is signing the
            // email the customer knows the user by, sent in an earlier call.
            let mut known = match state.store.get_user(&ctx.env.id, &input.user_id).await {
                Ok(Some(u)) => u.attributes,
                _ => Map::new(),
            };
            known.extend(attributes.iter().map(|(k, v)| (k.clone(), v.clone())));
            let snap = state.snapshot();
            let others: Vec<(&str, &KeyRing)> = snap
                .by_id
                .values()
                .filter(|o| o.env.id != ctx.env.id)
                .map(|o| (o.env.settings.name.as_str(), &o.ring))
                .collect();
            let cause = diagnose(
                &DiagnosisInput {
                    message: &input.user_id,
                    signature: sig,
                    keys: &ctx.ring,
                    other_environments: &others,
                    attributes: Some(&known),
                },
                now,
            );
            Some(json!({ "cause": cause.code(), "diagnosis": cause.message() }))
        }
        _ => None,
    };
    let mut detail = cause.unwrap_or_else(|| json!({}));
    if let Value::Object(m) = &mut detail {
        m.insert("proof".into(), json!(f.which));
    }
    record(state, ctx, &input.user_id, &err, Some(detail), now).await;
    err
}

/// Counts a rejected identify and writes its audit entry.
async fn record(
    state: &AppState,
    ctx: &EnvContext,
    user_id: &str,
    err: &ApiError,
    extra: Option<Value>,
    now: Ts,
) {
    let method = extra
        .as_ref()
        .and_then(|e| e.get("proof"))
        .and_then(Value::as_str)
        .map(|p| if p == "token" { "token" } else { "signature" })
        .unwrap_or("none");
    crate::metrics::METRICS.verification("rejected", method);
    let mut detail = json!({ "code": err.code, "message": err.message });
    if let (Value::Object(d), Some(Value::Object(e))) = (&mut detail, extra) {
        d.extend(e);
    }
    let audit = NewAudit {
        env_id: Some(ctx.env.id.clone()),
        kind: "identity.rejected",
        user_id: Some(user_id.to_string()),
        key_id: None,
        detail,
        at: now,
    };
    if let Err(e) = state.store.record_rejection(&ctx.env.id, audit).await {
        tracing::error!(error = %e, "could not record a rejected identify");
    }
}
