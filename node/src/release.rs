//! Key-release endpoints: `POST /app/sign` ([`crate::app_sign`]) and `POST /secrets`
//! ([`crate::secrets`]), with what they share — the app registry, the nonce store, the
//! audit log, admission limits, the checks of an app's attestation — and one error
//! type whose code is what the HTTP answer, the metrics and the audit log carry.
//!
//! Rule of both endpoints: the caller proves it may have the app's key material by a
//! method the app's registration names *before* anything secret is computed, the
//! release is recorded in the audit log before the answer leaves, and what is released
//! is encrypted to a one-time key of the caller.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use kms_attestation::{Error as AttestError, Evidence, Subject, VerifiedTd};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::apps::{App, AppRegistry};
use crate::audit::{AuditEntry, AuditLog, Principal};
use crate::http::{Admission, ApiError, ApiJson};
use crate::metrics::{ReleaseLabels, ResultLabel};
use crate::node::NodeShared;
use crate::replay::{NonceRefusal, NonceScope, Nonces};

/// Largest attestation field (characters): a DCAP quote with its certification chain
/// is ~10 KiB, a Trust Authority token a few.
pub const MAX_ATTESTATION_CHARS: usize = 128 * 1024;
/// Nonce lengths accepted for attested requests (bytes).
pub const NONCE_BYTES: std::ops::RangeInclusive<usize> = 16..=64;
/// How far in the future an attestation time may be.
pub const MAX_CLOCK_SKEW_SECS: u64 = 60;

/// A refused key-release request: status, stable code, a message without secrets.
#[derive(Debug)]
pub struct ReleaseError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ReleaseError {
    /// A refusal.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 with `code`.
    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401: the caller did not prove who it is (missing, bad, expired or replayed
    /// authorization).
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 403: the caller proved who it is, and that is not allowed this key.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// The attestation error kind as the code; evidence the node refuses is 403,
    /// evidence it cannot parse 400, a verifier without collateral 503.
    pub fn attestation(e: &AttestError) -> Self {
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

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<ApiError> for ReleaseError {
    fn from(e: ApiError) -> Self {
        let (status, code, message) = e.into_parts();
        Self::new(status, code, message)
    }
}

impl IntoResponse for ReleaseError {
    fn into_response(self) -> Response {
        ApiError::new(self.status, self.code, self.message).into_response()
    }
}

/// The caller's socket address (when the server recorded one).
pub struct Caller(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Caller(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// What the key-release endpoints share.
pub struct ReleaseState {
    /// The node.
    pub shared: Arc<NodeShared>,
    /// The app registry.
    pub apps: AppRegistry,
    nonces: Mutex<Nonces>,
    audit: AuditLog,
    /// `/app/sign` rate and concurrency limits.
    pub sign_admission: Admission,
    /// `/secrets` rate and concurrency limits.
    pub secrets_admission: Admission,
}

impl ReleaseState {
    /// Reads the registry named in the node's configuration and opens the audit log.
    pub fn new(shared: Arc<NodeShared>) -> anyhow::Result<Self> {
        let c = &shared.cfg.secrets;
        let apps = AppRegistry::new(c.apps_file.clone(), Duration::from_secs(c.reload_secs));
        let nonces = Mutex::new(Nonces::new(c.max_nonces));
        let audit = AuditLog::open(&shared.cfg.audit_file())?;
        let l = &shared.cfg.limits;
        let sign_admission = Admission::new(
            l.sign_rate_per_sec,
            l.sign_burst,
            l.sign_concurrency,
            "sign",
        );
        let secrets_admission = Admission::new(
            l.secrets_rate_per_sec,
            l.secrets_burst,
            l.secrets_concurrency,
            "secrets",
        );
        Ok(Self {
            shared,
            apps,
            nonces,
            audit,
            sign_admission,
            secrets_admission,
        })
    }

    /// Now, in unix seconds, by the node's clock.
    pub fn now(&self) -> u64 {
        self.shared.clock.now_ms() / 1000
    }

    /// The registered app, or 404 `unknown_app`.
    pub fn app(&self, app_id: &str) -> Result<App, ReleaseError> {
        self.apps.get(app_id).ok_or_else(|| {
            ReleaseError::new(
                StatusCode::NOT_FOUND,
                "unknown_app",
                "no such app is registered at this node",
            )
        })
    }

    /// Whether `app` names attestation as a method: builds listed for it in the app
    /// registry or in the attestation policy file.
    pub fn allows_attestation(&self, app_id: &str, app: &App) -> bool {
        !app.builds.is_empty()
            || self
                .shared
                .attestation
                .policy
                .apps
                .get(app_id)
                .is_some_and(|b| !b.is_empty())
    }

    /// Accepts `nonce` once in `scope` until `expires`.
    pub fn use_nonce(
        &self,
        scope: NonceScope,
        nonce: &[u8],
        expires: u64,
        reused_status: StatusCode,
    ) -> Result<(), ReleaseError> {
        let now = self.now();
        self.nonces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(scope, nonce, expires, now)
            .map_err(|r| match r {
                NonceRefusal::Reused => {
                    ReleaseError::new(reused_status, "nonce_reused", "this nonce was already used")
                }
                NonceRefusal::Full => ReleaseError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "too many key requests in the replay window; retry later",
                ),
            })
    }

    /// Checks an attestation time: at most `attestation.max_age_secs` old and at most
    /// [`MAX_CLOCK_SKEW_SECS`] ahead.
    pub fn check_attest_time(&self, attest_time: u64) -> Result<(), ReleaseError> {
        let now = self.now();
        let max_age = self.shared.attestation.max_age_secs;
        if attest_time > now + MAX_CLOCK_SKEW_SECS {
            return Err(ReleaseError::bad(
                "attest_time_in_future",
                format!("attest_time is more than {MAX_CLOCK_SKEW_SECS} s in the future"),
            ));
        }
        if now.saturating_sub(attest_time) > max_age {
            return Err(ReleaseError::bad(
                "stale_attestation",
                format!("attest_time is older than {max_age} s"),
            ));
        }
        Ok(())
    }

    /// Verifies an app's evidence (off the async workers: DCAP costs milliseconds):
    /// it verifies, its TCB status is accepted, its measurements are a build of
    /// `app` (registry or policy file) and its `report_data` is `expected`.
    pub async fn appraise_app(
        &self,
        app_id: &str,
        app: &App,
        evidence: Evidence,
        expected: [u8; 64],
    ) -> Result<VerifiedTd, ReleaseError> {
        let now = self.now();
        let attestation = self.shared.attestation.clone();
        let app_id = app_id.to_string();
        let builds = app.builds.clone();
        tokio::task::spawn_blocking(move || -> Result<VerifiedTd, AttestError> {
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
            ReleaseError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "verification was interrupted; retry",
            )
        })?
        .map_err(|e| ReleaseError::attestation(&e))
    }

    /// Records a decision in the audit log and the `kms_key_releases_total` counter.
    /// A release whose line cannot be written is refused (`audit_unavailable`).
    pub fn record(&self, entry: AuditEntry) -> Result<(), ReleaseError> {
        let count = |result: &str| {
            self.shared
                .metrics
                .key_releases
                .get_or_create(&ReleaseLabels {
                    endpoint: entry.endpoint.to_string(),
                    method: entry.method.to_string(),
                    result: result.to_string(),
                })
                .inc();
        };
        match self.audit.record(self.now(), &entry) {
            Ok(()) => {
                count(entry.result);
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot write the audit log: refusing key releases");
                count("audit_unavailable");
                Err(ReleaseError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "audit_unavailable",
                    "the node cannot record key releases right now; retry later",
                ))
            }
        }
    }

    /// Records a refusal (best effort: the refusal stands either way).
    pub fn record_refusal(
        &self,
        endpoint: &'static str,
        app_id: &str,
        method: &'static str,
        principal: Principal,
        caller: &Caller,
        error: &ReleaseError,
    ) {
        let _ = self.record(AuditEntry {
            endpoint,
            app_id: app_id.to_string(),
            version: None,
            method,
            principal,
            caller: caller.0.map(|a| a.to_string()),
            result: error.code(),
        });
    }
}

/// Counts one request's result (`ok` or the error code) in `family`.
pub fn count(family: &Family<ResultLabel, Counter>, result: &str) {
    family
        .get_or_create(&ResultLabel {
            result: result.to_string(),
        })
        .inc();
}

/// A rate and concurrency slot for the request and its parsed body, or the refusal
/// (already counted in `family`): refused before any work, so a flood costs neither
/// verifications nor signatures nor blocking threads.
pub fn admit<'a, T>(
    admission: &'a Admission,
    family: &Family<ResultLabel, Counter>,
    body: Result<ApiJson<T>, ApiError>,
) -> Result<(tokio::sync::SemaphorePermit<'a>, T), ApiError> {
    let refuse = |e: ApiError| {
        count(family, e.code());
        e
    };
    let slot = admission.admit().map_err(refuse)?;
    let ApiJson(req) = body.map_err(refuse)?;
    Ok((slot, req))
}

/// Attestation evidence from its wire form: `dcap` and `simulated` are base64 of the
/// quote, `ita` the JWT.
pub fn evidence_from_wire(method: &str, attestation: &str) -> Result<Evidence, ReleaseError> {
    if attestation.len() > MAX_ATTESTATION_CHARS {
        return Err(ReleaseError::bad("bad_request", "attestation too long"));
    }
    let quote = |a: &str| {
        B64.decode(a)
            .map_err(|_| ReleaseError::bad("bad_request", "attestation is not base64"))
    };
    Ok(match method {
        "dcap" => Evidence::Dcap(quote(attestation)?),
        "simulated" => Evidence::Simulated(quote(attestation)?),
        "ita" => Evidence::Ita(attestation.to_string()),
        _ => {
            return Err(ReleaseError::bad(
                "bad_request",
                "attestation_method must be dcap, ita or simulated",
            ));
        }
    })
}

/// Hex (optionally `0x`-prefixed) if it is hex, standard base64 otherwise; 16–64 bytes.
pub fn decode_nonce(text: &str) -> Result<Vec<u8>, ReleaseError> {
    let bad = || {
        ReleaseError::bad(
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

/// The two key-release routes, with their state and body limits, to merge into the
/// node's router.
pub fn router(shared: &Arc<NodeShared>) -> anyhow::Result<Router<Arc<NodeShared>>> {
    let state = Arc::new(ReleaseState::new(shared.clone())?);
    Ok(Router::new()
        .route(
            "/secrets",
            post(crate::secrets::secrets)
                .layer(DefaultBodyLimit::max(crate::secrets::MAX_BODY_BYTES)),
        )
        .route(
            "/app/sign",
            post(crate::app_sign::app_sign)
                .layer(DefaultBodyLimit::max(crate::app_sign::MAX_BODY_BYTES)),
        )
        .with_state(state))
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
}
