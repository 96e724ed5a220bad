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
//! [`kms_attestation::secrets_report_data`]`(rsa_pubkey_tmp, nonce, app_id)` (403
//! `binding_mismatch`), and the nonce was not used before (409 `nonce_reused`).
//!
//! Nonces are remembered **per node**, in memory, until their `attest_time` leaves
//! the acceptance window (after which the request would be refused as stale anyway);
//! at most `secrets.max_nonces` at once (more: 503 `busy`). A restart forgets them,
//! but a replay after a restart still needs an attestation younger than the window,
//! and obtains only what the attested TD's RSA key can decrypt.
//!
//! Response: `{encrypted_env, public_env, encrypted_partial_sig, operatorAddress,
//! version}`: the registered environment as is (hex of an IBE ciphertext to the app
//! ID, and the clear public part), and base64 of RSA-OAEP(SHA-256, MGF1-SHA-256) of the
//! 48-byte compressed partial signature `s_i·H1(app_id)` with the key version active at
//! `attest_time`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use kms_attestation::{Error as AttestError, Evidence, Subject, VerifiedTd, secrets_report_data};
use kms_crypto::{OperatorAddress, tbls};
use kms_protocol::api::MAX_APP_ID_BYTES;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPublicKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::apps::AppRegistry;
use crate::http::ApiJson;
use crate::metrics::ResultLabel;
use crate::node::NodeShared;

/// Largest `/secrets` body (a DCAP quote with its certification chain is ~10 KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Largest `attestation` field (characters).
pub const MAX_ATTESTATION_CHARS: usize = 128 * 1024;
/// Largest `rsa_pubkey_tmp` field (characters).
pub const MAX_PEM_CHARS: usize = 8 * 1024;
/// RSA key sizes accepted (bits).
pub const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;
/// Nonce lengths accepted (bytes).
pub const NONCE_BYTES: std::ops::RangeInclusive<usize> = 16..=64;
/// How far in the future `attest_time` may be.
pub const MAX_CLOCK_SKEW_SECS: u64 = 60;

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

/// A `/secrets` refusal: status, stable code, a message without secrets.
#[derive(Debug)]
pub struct SecretsError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl SecretsError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// The attestation error kind as the code; evidence the node refuses is 403,
    /// evidence it cannot parse 400, a verifier without collateral 503.
    fn attestation(e: &AttestError) -> Self {
        let kind = e.kind();
        let status = match kind {
            "malformed" | "method_not_configured" | "simulated_refused" => StatusCode::BAD_REQUEST,
            "collateral_unavailable" | "config" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::FORBIDDEN,
        };
        Self::new(status, kind, format!("attestation refused: {e}"))
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for SecretsError {
    fn into_response(self) -> Response {
        crate::http::ApiError::new(self.status, self.code, self.message).into_response()
    }
}

/// Nonces seen, each with the unix second after which it may be forgotten.
struct Nonces {
    seen: HashMap<Vec<u8>, u64>,
    max: usize,
}

impl Nonces {
    fn insert(&mut self, nonce: Vec<u8>, expires: u64, now: u64) -> Result<(), SecretsError> {
        if self.seen.get(&nonce).is_some_and(|&e| e >= now) {
            return Err(SecretsError::new(
                StatusCode::CONFLICT,
                "nonce_reused",
                "this nonce was already used",
            ));
        }
        if self.seen.len() >= self.max {
            self.seen.retain(|_, e| *e >= now);
        }
        if self.seen.len() >= self.max {
            return Err(SecretsError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "too many secrets requests in the attestation window; retry later",
            ));
        }
        self.seen.insert(nonce, expires);
        Ok(())
    }
}

/// The state of the `/secrets` route.
pub struct SecretsState {
    shared: Arc<NodeShared>,
    /// The app registry.
    pub apps: AppRegistry,
    nonces: Mutex<Nonces>,
    admission: crate::http::Admission,
}

impl SecretsState {
    /// Reads the registry named in the node's configuration.
    pub fn new(shared: Arc<NodeShared>) -> Self {
        let c = &shared.cfg.secrets;
        let apps = AppRegistry::new(c.apps_file.clone(), Duration::from_secs(c.reload_secs));
        let nonces = Mutex::new(Nonces {
            seen: HashMap::new(),
            max: c.max_nonces,
        });
        let l = &shared.cfg.limits;
        let admission = crate::http::Admission::new(
            l.secrets_rate_per_sec,
            l.secrets_burst,
            l.secrets_concurrency,
            "secrets",
        );
        Self {
            shared,
            apps,
            nonces,
            admission,
        }
    }

    async fn handle(&self, req: SecretsRequest) -> Result<SecretsResponse, SecretsError> {
        let s = &self.shared;
        if req.app_id.is_empty() || req.app_id.len() > MAX_APP_ID_BYTES {
            return Err(SecretsError::bad(
                "bad_request",
                format!("app_id must be 1 to {MAX_APP_ID_BYTES} bytes"),
            ));
        }
        if req.attestation.len() > MAX_ATTESTATION_CHARS {
            return Err(SecretsError::bad("bad_request", "attestation too long"));
        }
        let quote = |a: &str| {
            B64.decode(a)
                .map_err(|_| SecretsError::bad("bad_request", "attestation is not base64"))
        };
        let evidence = match req.attestation_method.as_str() {
            "dcap" => Evidence::Dcap(quote(&req.attestation)?),
            "simulated" => Evidence::Simulated(quote(&req.attestation)?),
            "ita" => Evidence::Ita(req.attestation.clone()),
            _ => {
                return Err(SecretsError::bad(
                    "bad_request",
                    "attestation_method must be dcap, ita or simulated",
                ));
            }
        };
        if req.rsa_pubkey_tmp.len() > MAX_PEM_CHARS {
            return Err(SecretsError::bad("bad_rsa_key", "rsa_pubkey_tmp too long"));
        }
        let rsa_key = RsaPublicKey::from_public_key_pem(&req.rsa_pubkey_tmp).map_err(|_| {
            SecretsError::bad(
                "bad_rsa_key",
                "rsa_pubkey_tmp is not a PEM RSA public key (SubjectPublicKeyInfo) of at most 4096 bits",
            )
        })?;
        let bits = rsa_key.n().bits();
        if !RSA_BITS.contains(&bits) {
            return Err(SecretsError::bad(
                "bad_rsa_key",
                format!(
                    "rsa_pubkey_tmp has {bits} bits; {} to {} are accepted",
                    RSA_BITS.start(),
                    RSA_BITS.end()
                ),
            ));
        }
        let nonce = decode_nonce(&req.nonce)?;
        let app = self.apps.get(&req.app_id).ok_or_else(|| {
            SecretsError::new(
                StatusCode::NOT_FOUND,
                "unknown_app",
                "no such app is registered at this node",
            )
        })?;
        let now = s.clock.now_ms() / 1000;
        let max_age = s.attestation.max_age_secs;
        if req.attest_time > now + MAX_CLOCK_SKEW_SECS {
            return Err(SecretsError::bad(
                "attest_time_in_future",
                format!("attest_time is more than {MAX_CLOCK_SKEW_SECS} s in the future"),
            ));
        }
        if now.saturating_sub(req.attest_time) > max_age {
            return Err(SecretsError::bad(
                "stale_attestation",
                format!("attest_time is older than {max_age} s"),
            ));
        }

        // Verification may cost milliseconds (DCAP): off the async workers.
        let expected = secrets_report_data(req.rsa_pubkey_tmp.as_bytes(), &nonce, &req.app_id);
        let attestation = s.attestation.clone();
        let app_id = req.app_id.clone();
        let builds = app.builds.clone();
        let appraised = tokio::task::spawn_blocking(move || -> Result<VerifiedTd, AttestError> {
            let td = attestation.verifier.verify(&evidence, now)?;
            let policy = &attestation.policy;
            policy.check_tcb(&td)?;
            if !builds.contains(&td.measurements()) {
                policy.check_measurements(&td, Subject::App(&app_id))?;
            }
            kms_attestation::check_binding(&td, &expected)?;
            Ok(td)
        })
        .await
        .map_err(|_| {
            SecretsError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "verification was interrupted; retry",
            )
        })?;
        appraised.map_err(|e| SecretsError::attestation(&e))?;

        let expires = req.attest_time.saturating_add(max_age);
        self.nonces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(nonce, expires, now)?;

        let Some(v) = s.version_at(req.attest_time) else {
            return Err(SecretsError::new(
                StatusCode::NOT_FOUND,
                "no_version",
                "no key version was active at attest_time",
            ));
        };
        let partial =
            Zeroizing::new(tbls::sign_partial(&v.share, req.app_id.as_bytes()).to_compressed());
        let encrypted = rsa_key
            .encrypt(
                &mut rand_core::OsRng,
                Oaep::new::<sha2::Sha256>(),
                &partial[..],
            )
            .map_err(|_| SecretsError::bad("bad_rsa_key", "cannot encrypt to rsa_pubkey_tmp"))?;
        Ok(SecretsResponse {
            encrypted_env: app.encrypted_env,
            public_env: app.public_env,
            encrypted_partial_sig: B64.encode(encrypted),
            operator_address: s.address,
            version: v.session_timestamp.0,
        })
    }
}

/// Hex (optionally `0x`-prefixed) if it is hex, standard base64 otherwise; 16–64 bytes.
pub fn decode_nonce(text: &str) -> Result<Vec<u8>, SecretsError> {
    let bad = || {
        SecretsError::bad(
            "bad_request",
            format!(
                "nonce must be {} to {} bytes, hex or base64",
                NONCE_BYTES.start(),
                NONCE_BYTES.end()
            ),
        )
    };
    if text.len() > 2 + 2 * NONCE_BYTES.end() {
        return Err(bad());
    }
    let body = text.strip_prefix("0x").unwrap_or(text);
    let bytes = match hex::decode(body) {
        Ok(b) => b,
        Err(_) => B64.decode(text).map_err(|_| bad())?,
    };
    if !NONCE_BYTES.contains(&bytes.len()) {
        return Err(bad());
    }
    Ok(bytes)
}

async fn secrets(
    State(st): State<Arc<SecretsState>>,
    body: Result<ApiJson<SecretsRequest>, crate::http::ApiError>,
) -> Response {
    let count = |result: &str| {
        st.shared
            .metrics
            .secrets_requests
            .get_or_create(&ResultLabel {
                result: result.to_string(),
            })
            .inc();
    };
    let req = match body {
        Ok(ApiJson(req)) => req,
        Err(e) => {
            count("bad_request");
            return e.into_response();
        }
    };
    // Refused before any work: a flood costs neither quote verifications nor
    // blocking threads.
    let _slot = match st.admission.admit() {
        Ok(slot) => slot,
        Err(e) => {
            count(e.code());
            return e.into_response();
        }
    };
    match st.handle(req).await {
        Ok(r) => {
            count("ok");
            Json(r).into_response()
        }
        Err(e) => {
            count(e.code);
            e.into_response()
        }
    }
}

/// The `/secrets` route, with its own state and body limit, to merge into the node's
/// router.
pub fn router(shared: &Arc<NodeShared>) -> Router<Arc<NodeShared>> {
    let state = Arc::new(SecretsState::new(shared.clone()));
    Router::new()
        .route("/secrets", post(secrets))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_hex_or_base64_and_bounded() {
        assert_eq!(decode_nonce(&"ab".repeat(16)).unwrap(), vec![0xab; 16]);
        assert_eq!(
            decode_nonce(&format!("0x{}", "01".repeat(64))).unwrap(),
            vec![1; 64]
        );
        assert_eq!(decode_nonce(&B64.encode([7u8; 20])).unwrap(), vec![7; 20]);
        assert!(decode_nonce(&"ab".repeat(15)).is_err());
        assert!(decode_nonce(&"ab".repeat(65)).is_err());
        assert!(decode_nonce("not a nonce!").is_err());
    }

    #[test]
    fn a_nonce_is_accepted_once_until_it_expires() {
        let mut n = Nonces {
            seen: HashMap::new(),
            max: 2,
        };
        n.insert(vec![1], 100, 50).unwrap();
        assert_eq!(n.insert(vec![1], 100, 60).unwrap_err().code, "nonce_reused");
        n.insert(vec![2], 100, 60).unwrap();
        assert_eq!(n.insert(vec![3], 100, 60).unwrap_err().code, "busy");
        // Expired entries make room.
        n.insert(vec![3], 300, 200).unwrap();
        n.insert(vec![1], 300, 200).unwrap();
    }
}
