//! `POST /secrets`: an application running in a TD proves what it runs and receives
//! its registered environment and this operator's partial signature of its app ID,
//! encrypted to a one-time RSA key that lives in the TD.
//!
//! Request (JSON, unknown fields refused, body ≤ [`MAX_BODY_BYTES`]):
//! `{app_id, attestation_method: "dcap"|"ita"|"simulated", attestation, rsa_pubkey_tmp,
//! attest_time, nonce}` where `attestation` is the base64 (standard alphabet, padded) of
//! the raw quote for `dcap` and `simulated`, the JWT for `ita`; `rsa_pubkey_tmp` is a
//! PEM SubjectPublicKeyInfo RSA key of 2048 to 4096 bits; `attest_time` is unix
//! seconds; `nonce` is 16 to 64 bytes, as hex (optionally `0x`-prefixed; tried first)
//! or standard base64.
//!
//! Checks, in order: input shapes (400), the app is registered (404 `unknown_app`),
//! `attest_time` is at most `attestation.max_age_secs` old and at most
//! [`MAX_CLOCK_SKEW_SECS`] in the future (400 `stale_attestation` /
//! `attest_time_in_future`), the evidence verifies (403 with the attestation error
//! kind, e.g. `bad_signature`), its TCB status is accepted and its measurements are a
//! build registered for the app (in the apps file or the policy file; 403
//! `measurement_not_allowed`), its `report_data` is
//! [`kms_attestation::secrets_report_data`]`(rsa_pubkey_tmp, nonce, app_id,
//! attest_time)` (403 `binding_mismatch`), and the nonce was not used before (409
//! `nonce_reused`). The release is then written to the audit log (503
//! `audit_unavailable` if it cannot be), and every refusal after the app lookup too.
//!
//! Nonces are remembered **per node**, in memory, until their `attest_time` leaves
//! the acceptance window ([`crate::replay`]); at most `secrets.max_nonces` at once
//! (more: 503 `busy`). Because `attest_time` is bound in `report_data`, a captured
//! request cannot be replayed with a fresh `attest_time` once its nonce is forgotten:
//! its quote still names the old time, which is then stale.
//!
//! Response: `{encrypted_env, public_env, encrypted_partial_sig, operatorAddress,
//! version}`: the registered environment as is (hex of an IBE ciphertext to the app
//! ID, and the clear public part), and base64 of RSA-OAEP(SHA-256, MGF1-SHA-256) of the
//! 48-byte compressed partial signature `s_i·H1(app_id)` with the key version active at
//! `attest_time`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use kms_attestation::secrets_report_data;
use kms_crypto::{OperatorAddress, tbls};
use kms_protocol::api::MAX_APP_ID_BYTES;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPublicKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::audit::{AuditEntry, Principal};
use crate::http::ApiJson;
use crate::release::{
    Caller, ReleaseError, ReleaseState, admit, count, decode_nonce, evidence_from_wire,
};
use crate::replay::NonceScope;

const ENDPOINT: &str = "secrets";

/// Largest `/secrets` body (a DCAP quote with its certification chain is ~10 KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Largest `rsa_pubkey_tmp` field (characters).
pub const MAX_PEM_CHARS: usize = 8 * 1024;
/// RSA key sizes accepted (bits).
pub const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

/// `POST /secrets` request.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsRequest {
    /// The application.
    pub app_id: String,
    /// `dcap`, `ita` or `simulated` (insecure-dev nodes only).
    pub attestation_method: String,
    /// base64 of the quote (`dcap`, `simulated`) or the JWT (`ita`).
    pub attestation: String,
    /// PEM SubjectPublicKeyInfo of the one-time RSA key (2048–4096 bits).
    pub rsa_pubkey_tmp: String,
    /// When the TD attested (unix seconds); selects the key version.
    pub attest_time: u64,
    /// 16–64 bytes, hex or base64.
    pub nonce: String,
}

/// `POST /secrets` response.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsResponse {
    /// Hex of the registered IBE ciphertext to the app ID (empty if none).
    pub encrypted_env: String,
    /// The registered public environment.
    pub public_env: String,
    /// base64 of RSA-OAEP-SHA256(rsa_pubkey_tmp, compressed partial signature).
    pub encrypted_partial_sig: String,
    /// The operator answering.
    #[serde(rename = "operatorAddress")]
    pub operator_address: OperatorAddress,
    /// The key version used.
    pub version: u64,
}

impl ReleaseState {
    async fn secrets(
        &self,
        req: SecretsRequest,
        caller: &Caller,
    ) -> Result<SecretsResponse, ReleaseError> {
        let s = &self.shared;
        if req.app_id.is_empty() || req.app_id.len() > MAX_APP_ID_BYTES {
            return Err(ReleaseError::bad(
                "bad_request",
                format!("app_id must be 1 to {MAX_APP_ID_BYTES} bytes"),
            ));
        }
        let evidence = evidence_from_wire(&req.attestation_method, &req.attestation)?;
        if req.rsa_pubkey_tmp.len() > MAX_PEM_CHARS {
            return Err(ReleaseError::bad("bad_rsa_key", "rsa_pubkey_tmp too long"));
        }
        let rsa_key = RsaPublicKey::from_public_key_pem(&req.rsa_pubkey_tmp).map_err(|_| {
            ReleaseError::bad(
                "bad_rsa_key",
                "rsa_pubkey_tmp is not a PEM RSA public key (SubjectPublicKeyInfo) of at most 4096 bits",
            )
        })?;
        let bits = rsa_key.n().bits();
        if !RSA_BITS.contains(&bits) {
            return Err(ReleaseError::bad(
                "bad_rsa_key",
                format!(
                    "rsa_pubkey_tmp has {bits} bits; {} to {} are accepted",
                    RSA_BITS.start(),
                    RSA_BITS.end()
                ),
            ));
        }
        let nonce = decode_nonce(&req.nonce)?;
        let app = self.app(&req.app_id)?;
        let refuse = |e: ReleaseError| {
            self.record_refusal(
                ENDPOINT,
                &req.app_id,
                "attestation",
                Principal::None,
                caller,
                &e,
            );
            e
        };
        self.check_attest_time(req.attest_time).map_err(refuse)?;
        let expected = secrets_report_data(
            req.rsa_pubkey_tmp.as_bytes(),
            &nonce,
            &req.app_id,
            req.attest_time,
        );
        let td = self
            .appraise_app(&req.app_id, &app, evidence, expected)
            .await
            .map_err(refuse)?;
        let expires = req.attest_time.saturating_add(s.attestation.max_age_secs);
        self.use_nonce(NonceScope::Secrets, &nonce, expires, StatusCode::CONFLICT)
            .map_err(refuse)?;
        let principal = Principal::Attested {
            measurements: Box::new(td.measurements()),
            tcb_status: td.tcb_status.to_string(),
        };
        let Some(v) = s.version_at(req.attest_time) else {
            let e = ReleaseError::new(
                StatusCode::NOT_FOUND,
                "no_version",
                "no key version was active at attest_time",
            );
            self.record_refusal(ENDPOINT, &req.app_id, "attestation", principal, caller, &e);
            return Err(e);
        };
        let version = v.session_timestamp.0;
        let partial =
            Zeroizing::new(tbls::sign_partial(&v.share, req.app_id.as_bytes()).to_compressed());
        let encrypted = rsa_key
            .encrypt(
                &mut rand_core::OsRng,
                Oaep::new::<sha2::Sha256>(),
                &partial[..],
            )
            .map_err(|_| ReleaseError::bad("bad_rsa_key", "cannot encrypt to rsa_pubkey_tmp"))?;
        // Recorded before the answer leaves; unrecorded, it does not leave.
        self.record(AuditEntry {
            endpoint: ENDPOINT,
            app_id: req.app_id.clone(),
            version: Some(version),
            method: "attestation",
            principal,
            caller: caller.0.map(|a| a.to_string()),
            result: "released",
        })?;
        Ok(SecretsResponse {
            encrypted_env: app.encrypted_env,
            public_env: app.public_env,
            encrypted_partial_sig: B64.encode(encrypted),
            operator_address: s.address,
            version,
        })
    }
}

/// The handler.
pub(crate) async fn secrets(
    State(st): State<Arc<ReleaseState>>,
    caller: Caller,
    body: Result<ApiJson<SecretsRequest>, crate::http::ApiError>,
) -> Response {
    let requests = &st.shared.metrics.secrets_requests;
    let (_slot, req) = match admit(&st.secrets_admission, requests, body) {
        Ok(admitted) => admitted,
        Err(refused) => return refused.into_response(),
    };
    match st.secrets(req, &caller).await {
        Ok(r) => {
            count(requests, "ok");
            Json(r).into_response()
        }
        Err(e) => {
            count(requests, e.code());
            e.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_refuse_unknown_fields() {
        let ok = serde_json::json!({
            "app_id": "a", "attestation_method": "simulated", "attestation": "",
            "rsa_pubkey_tmp": "", "attest_time": 1, "nonce": ""
        });
        assert!(serde_json::from_value::<SecretsRequest>(ok.clone()).is_ok());
        let mut extra = ok;
        extra["more"] = 1.into();
        assert!(serde_json::from_value::<SecretsRequest>(extra).is_err());
    }
}
