//! `POST /app/sign`: this operator's partial `s_i·H1(appID)` of an app's key, released
//! only to a caller that proves, by a method the app's registration names, that it
//! may have the key — and sealed to that caller's one-time key.
//!
//! Request `{appID, attestationTime?, auth}` (unknown fields refused); `auth` is one of
//! ([`kms_protocol::release`]):
//! - `{"method": "owner", node, expiry, nonce, responseKey, signature}`: an EIP-712
//!   signature of the app's registered `owner` over the app, this node, the version
//!   time, the expiry (at most [`MAX_OWNER_REQUEST_LIFETIME_SECS`] ahead) and the
//!   one-time key;
//! - `{"method": "attestation", attestationMethod, attestation, attestTime, nonce,
//!   responseKey}`: evidence of a build registered for the app whose `report_data` is
//!   `kms_attestation::app_sign_report_data(responseKey, nonce, appID, attestTime)`;
//!   the version is the one active at `attestTime`.
//!
//! Checks, in order, before anything secret is computed: rate limits (429/503), shapes
//! (400), `auth` present (401 `unauthorized`), the app is registered (404
//! `unknown_app`) and names the method (403 `method_not_allowed`); then for `owner`:
//! this node is the one named (401 `wrong_node`), the expiry (401 `expired`, 400
//! `expiry_too_far`), the signature (401 `bad_signature`), the nonce unused (401
//! `nonce_reused`); for `attestation`: the time window (400), the evidence, TCB,
//! measurements and binding (403 with the attestation error kind), the nonce unused
//! (409 `nonce_reused`). Then the version (404), the audit line (503
//! `audit_unavailable` if it cannot be written) and the answer
//! `{operatorAddress, version, encryptedPartialSignature}`.
//!
//! With `insecure.unauthenticated_app_sign` (development clusters only) a request
//! without `auth` is answered in clear with `s_i·H(appID)` in the insecure-dev domain
//! (`tbls::INSECURE_DEV_DST`), which never combines into an app key.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kms_crypto::sealed::{self, OneTimePublicKey};
use kms_crypto::tbls::{self, SigningDomain};
use kms_protocol::KeyShareVersion;
use kms_protocol::api::{MAX_APP_ID_BYTES, SealedSignResponse, SignRequest, SignResponse};
use kms_protocol::release::{
    AttestedAuthorization, Authorization, MAX_OWNER_REQUEST_LIFETIME_SECS, OwnerAuthorization,
    owner_request_hash, partial_aad,
};
use zeroize::Zeroizing;

use crate::audit::{AuditEntry, Principal};
use crate::http::{ApiError, ApiJson};
use crate::release::{
    Caller, ReleaseError, ReleaseState, admit, count, decode_nonce, evidence_from_wire,
};
use crate::replay::NonceScope;

/// Largest `/app/sign` body (an attested request carries a quote).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

const ENDPOINT: &str = "app_sign";

/// The handler.
pub(crate) async fn app_sign(
    State(st): State<Arc<ReleaseState>>,
    caller: Caller,
    body: Result<ApiJson<SignRequest>, ApiError>,
) -> Response {
    let started = Instant::now();
    let requests = &st.shared.metrics.sign_requests;
    let (_slot, req) = match admit(&st.sign_admission, requests, body) {
        Ok(admitted) => admitted,
        Err(refused) => return refused.into_response(),
    };
    let answer = match &req.auth {
        None => unauthenticated(&st, &req).map(|r| Json(r).into_response()),
        Some(auth) => authorized(&st, &req, auth, &caller)
            .await
            .map(|r| Json(r).into_response()),
    };
    match answer {
        Ok(r) => {
            count(requests, "ok");
            st.shared
                .metrics
                .sign_latency
                .observe(started.elapsed().as_secs_f64());
            r
        }
        Err(e) => {
            count(requests, e.code());
            e.into_response()
        }
    }
}

fn check_app_id(app_id: &str) -> Result<(), ReleaseError> {
    if app_id.is_empty() || app_id.len() > MAX_APP_ID_BYTES {
        return Err(ReleaseError::bad(
            "bad_request",
            format!("appID must be 1 to {MAX_APP_ID_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// The version active at `at` (unix seconds), within the retention.
fn version_at(st: &ReleaseState, at: u64) -> Result<Arc<KeyShareVersion>, ReleaseError> {
    let s = &st.shared;
    let now = st.now();
    if at > now + 300 {
        return Err(ReleaseError::bad(
            "bad_request",
            "attestationTime is in the future",
        ));
    }
    let retention = s.cfg.store.retention_days * 24 * 3600;
    if at + retention < now {
        return Err(ReleaseError::new(
            StatusCode::NOT_FOUND,
            "version_expired",
            format!(
                "attestationTime {at} is older than the key retention ({} days)",
                s.cfg.store.retention_days
            ),
        ));
    }
    s.version_at(at).ok_or_else(|| {
        ReleaseError::new(
            StatusCode::NOT_FOUND,
            "no_version",
            format!("no key version was active at {at} (before genesis or pruned)"),
        )
    })
}

/// No `auth`: refused, unless the insecure development mode answers in its own domain.
fn unauthenticated(st: &ReleaseState, req: &SignRequest) -> Result<SignResponse, ReleaseError> {
    if !st.shared.cfg.insecure.unauthenticated_app_sign {
        return Err(ReleaseError::unauthorized(
            "unauthorized",
            "POST /app/sign needs `auth`: an owner-signed request or an attestation of a build registered for the app",
        ));
    }
    check_app_id(&req.app_id)?;
    let v = version_at(st, req.attestation_time.unwrap_or_else(|| st.now()))?;
    // Computed on the async worker: hash-to-G1 plus one G1 multiplication costs less
    // than handing it to the blocking pool and back under load.
    let partial = SigningDomain::InsecureDev
        .hash(req.app_id.as_bytes())
        .mul(&v.share);
    Ok(SignResponse {
        operator_address: st.shared.address,
        partial_signature: partial,
        version: v.session_timestamp.0,
    })
}

async fn authorized(
    st: &ReleaseState,
    req: &SignRequest,
    auth: &Authorization,
    caller: &Caller,
) -> Result<SealedSignResponse, ReleaseError> {
    check_app_id(&req.app_id)?;
    let method = auth.method();
    let response_key = OneTimePublicKey::from_bytes(auth.response_key().0).map_err(|_| {
        ReleaseError::bad(
            "bad_response_key",
            "responseKey is not an X25519 public key of full order",
        )
    })?;
    let app = st.app(&req.app_id)?;
    let refuse = |principal: Principal, e: ReleaseError| {
        st.record_refusal(ENDPOINT, &req.app_id, method, principal, caller, &e);
        e
    };
    let (principal, at) = match auth {
        Authorization::Owner(o) => {
            let Some(owner) = app.owner else {
                return Err(refuse(
                    Principal::None,
                    ReleaseError::forbidden(
                        "method_not_allowed",
                        "this app does not allow owner-signed requests (no owner registered)",
                    ),
                ));
            };
            check_owner(st, req, o, &owner).map_err(|e| refuse(Principal::None, e))?;
            (
                Principal::Owner { address: owner },
                req.attestation_time.unwrap_or_else(|| st.now()),
            )
        }
        Authorization::Attestation(a) => {
            if !st.allows_attestation(&req.app_id, &app) {
                return Err(refuse(
                    Principal::None,
                    ReleaseError::forbidden(
                        "method_not_allowed",
                        "this app has no registered builds: attestation cannot authorize it",
                    ),
                ));
            }
            let td = check_attested(st, req, a, &app)
                .await
                .map_err(|e| refuse(Principal::None, e))?;
            (
                Principal::Attested {
                    measurements: Box::new(td.measurements()),
                    tcb_status: td.tcb_status.to_string(),
                },
                a.attest_time,
            )
        }
    };
    let v = version_at(st, at).map_err(|e| refuse(principal.clone(), e))?;
    let version = v.session_timestamp.0;
    let partial =
        Zeroizing::new(tbls::sign_partial(&v.share, req.app_id.as_bytes()).to_compressed());
    let sealed = sealed::seal(
        &response_key,
        sealed::APP_SIGN_INFO,
        &partial_aad(&req.app_id, version, &st.shared.address),
        &partial[..],
        &mut rand_core::OsRng,
    )
    .map_err(|_| ReleaseError::bad("bad_response_key", "cannot seal to responseKey"))?;
    // Recorded before the answer leaves; unrecorded, it does not leave.
    st.record(AuditEntry {
        endpoint: ENDPOINT,
        app_id: req.app_id.clone(),
        version: Some(version),
        method,
        principal,
        caller: caller.0.map(|a| a.to_string()),
        result: "released",
    })?;
    Ok(SealedSignResponse {
        operator_address: st.shared.address,
        version,
        encrypted_partial_signature: format!("0x{}", hex::encode(sealed)),
    })
}

/// An owner-signed request: for this node, not expired, not too long-lived, signed by
/// the registered owner, nonce unused.
fn check_owner(
    st: &ReleaseState,
    req: &SignRequest,
    o: &OwnerAuthorization,
    owner: &kms_crypto::OperatorAddress,
) -> Result<(), ReleaseError> {
    let now = st.now();
    if o.node != st.shared.address {
        return Err(ReleaseError::unauthorized(
            "wrong_node",
            "the request is signed for another node",
        ));
    }
    if o.expiry <= now {
        return Err(ReleaseError::unauthorized(
            "expired",
            "the owner-signed request has expired",
        ));
    }
    if o.expiry > now + MAX_OWNER_REQUEST_LIFETIME_SECS {
        return Err(ReleaseError::bad(
            "expiry_too_far",
            format!("expiry may be at most {MAX_OWNER_REQUEST_LIFETIME_SECS} s ahead"),
        ));
    }
    let digest = owner_request_hash(&req.app_id, req.attestation_time.unwrap_or(0), o);
    o.signature.verify(&digest, owner).map_err(|_| {
        ReleaseError::unauthorized(
            "bad_signature",
            "the signature is not the registered owner's over this request",
        )
    })?;
    st.use_nonce(
        NonceScope::OwnerSign,
        &o.nonce.0,
        o.expiry,
        StatusCode::UNAUTHORIZED,
    )
}

/// An attested request: fresh, evidence of a build of the app bound to this request,
/// nonce unused.
async fn check_attested(
    st: &ReleaseState,
    req: &SignRequest,
    a: &AttestedAuthorization,
    app: &crate::apps::App,
) -> Result<kms_attestation::VerifiedTd, ReleaseError> {
    if req.attestation_time.is_some() {
        return Err(ReleaseError::bad(
            "bad_request",
            "an attested request selects its version by attestTime; leave attestationTime out",
        ));
    }
    let evidence = evidence_from_wire(&a.attestation_method, &a.attestation)?;
    let nonce = decode_nonce(&a.nonce)?;
    st.check_attest_time(a.attest_time)?;
    let expected = kms_attestation::app_sign_report_data(
        &a.response_key.0,
        &nonce,
        &req.app_id,
        a.attest_time,
    );
    let td = st
        .appraise_app(&req.app_id, app, evidence, expected)
        .await?;
    let expires = a
        .attest_time
        .saturating_add(st.shared.attestation.max_age_secs);
    st.use_nonce(
        NonceScope::AttestedSign,
        &nonce,
        expires,
        StatusCode::CONFLICT,
    )?;
    Ok(td)
}
