//! The HTTP API. Every error is `{"error": {"code", "message"}}` with one status per
//! error kind, mapped here and nowhere else; bad input is a 4xx, never a 500 or a panic.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kms_protocol::SessionKind;
use kms_protocol::api::{
    ErrorDetail, ErrorResponse, HealthResponse, PubkeyResponse, SessionStatus,
};
use kms_protocol::dkg::wire::{Body, Kind};
use kms_protocol::messages::SignedMessage;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::metrics::KindLabel;
use crate::node::{Delivery, NodeShared, Refusal, response_for};
use crate::transport::kind_name;

/// An API error: status, stable code, reason.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

/// A rate limit and a concurrency limit in front of an expensive endpoint: a request
/// over either is refused before any work (429 `rate_limited`, 503 `busy`).
pub struct Admission {
    limiter: governor::DefaultDirectRateLimiter,
    slots: tokio::sync::Semaphore,
    what: &'static str,
}

impl Admission {
    /// `rate_per_sec` sustained with bursts of `burst`, `concurrency` at once (all
    /// positive, as the configuration validates; zero is read as one). `what` names the
    /// requests in the refusal (`sign`, `secrets`).
    pub fn new(rate_per_sec: u32, burst: u32, concurrency: usize, what: &'static str) -> Self {
        let positive = |n: u32| std::num::NonZeroU32::new(n).unwrap_or(std::num::NonZeroU32::MIN);
        let quota =
            governor::Quota::per_second(positive(rate_per_sec)).allow_burst(positive(burst));
        Self {
            limiter: governor::RateLimiter::direct(quota),
            slots: tokio::sync::Semaphore::new(concurrency.max(1)),
            what,
        }
    }

    /// A slot for one request, held until it is dropped; or the refusal, whose
    /// [`ApiError::code`] is what the caller counts.
    pub(crate) fn admit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        if self.limiter.check().is_err() {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many {} requests; retry later", self.what),
            ));
        }
        self.slots.try_acquire().map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                format!("too many {} requests in flight; retry later", self.what),
            )
        })
    }
}

impl ApiError {
    /// The stable error code (`rate_limited`, `bad_request`, ...).
    pub(crate) fn code(&self) -> &'static str {
        self.code
    }

    /// Status, code and message.
    pub(crate) fn into_parts(self) -> (StatusCode, &'static str, String) {
        (self.status, self.code, self.message)
    }

    /// An error answer: `status`, a stable `code`, a message without secrets.
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorResponse {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

/// A JSON body, size-limited, whose every rejection is an [`ApiError`].
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e: BytesRejection| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        "request body too large",
                    )
                } else {
                    ApiError::bad_request("could not read the request body")
                }
            })?;
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}

type Shared = State<Arc<NodeShared>>;

/// The node's routes.
pub fn router(shared: Arc<NodeShared>) -> anyhow::Result<Router> {
    let limit = shared.cfg.limits.max_body_bytes;
    let release = crate::release::router(&shared)?;
    Ok(Router::new()
        .route("/dkg/commitment", post(dkg_commitment))
        .route("/dkg/share", post(dkg_share))
        .route("/dkg/ack", post(dkg_ack))
        .route("/reshare/commitment", post(reshare_commitment))
        .route("/reshare/share", post(reshare_share))
        .route("/reshare/ack", post(reshare_ack))
        .route("/reshare/complete", post(reshare_complete))
        .route("/pubkey", get(pubkey))
        .route("/versions", get(versions))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/attestation", get(attestation))
        .route("/v2/sessions/{ts}/transcript", get(transcript))
        .merge(release)
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this endpoint",
            )
        })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared))
}

/// Which message kinds an endpoint takes ([`Kind::endpoint_leaf`]).
#[derive(Clone, Copy)]
enum Leaf {
    Commitment,
    Share,
    Ack,
}

impl Leaf {
    fn accepts(self, k: Kind) -> bool {
        let leaf = match self {
            Leaf::Commitment => "commitment",
            Leaf::Share => "share",
            Leaf::Ack => "ack",
        };
        k.endpoint_leaf() == leaf
    }
}

/// The one place a protocol refusal becomes an HTTP status and a stable code.
fn refusal_error(r: Refusal) -> ApiError {
    match r {
        Refusal::Protocol(e) => {
            let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            ApiError::new(status, e.code(), e.to_string())
        }
        Refusal::NotParticipant => ApiError::new(
            StatusCode::FORBIDDEN,
            "unknown_sender",
            "the signer is not a participant of this session",
        ),
        Refusal::Misshapen(why) => ApiError::new(StatusCode::BAD_REQUEST, "malformed", why),
        Refusal::OverQuota => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "this source sent more messages into the session than a participant can",
        ),
        Refusal::UnknownSender => ApiError::new(
            StatusCode::FORBIDDEN,
            "unknown_sender",
            "sender is not an operator of the current set",
        ),
        Refusal::WrongEndpoint => {
            ApiError::bad_request("message sent to the wrong session kind endpoint")
        }
        Refusal::OtherSession => ApiError::new(
            StatusCode::CONFLICT,
            "rejected",
            "message for another session",
        ),
        Refusal::EarlyBufferFull => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many early messages",
        ),
    }
}

async fn protocol(
    shared: Arc<NodeShared>,
    session: SessionKind,
    leaf: Leaf,
    message: SignedMessage,
    source: Option<std::net::IpAddr>,
) -> Result<Response, ApiError> {
    let reject = |e: ApiError| {
        shared.metrics.reject(e.code);
        e
    };
    let body =
        Body::decode(&message.payload).map_err(|e| reject(refusal_error(Refusal::Protocol(e))))?;
    let kind = body.kind();
    if !leaf.accepts(kind) {
        return Err(reject(ApiError::bad_request(format!(
            "a {} message does not belong on this endpoint",
            kind_name(kind)
        ))));
    }
    match shared.deliver(session, message, source).await {
        Ok(d) => {
            shared
                .metrics
                .messages_in
                .get_or_create(&KindLabel {
                    kind: kind_name(kind).to_string(),
                })
                .inc();
            let (status, state) = match d {
                Delivery::Accepted => (StatusCode::OK, "accepted"),
                Delivery::Buffered => (StatusCode::ACCEPTED, "buffered"),
            };
            Ok((status, Json(json!({ "status": state }))).into_response())
        }
        Err(r) => Err(reject(refusal_error(r))),
    }
}

macro_rules! protocol_endpoint {
    ($name:ident, $session:expr, $leaf:expr) => {
        async fn $name(
            State(s): Shared,
            caller: crate::release::Caller,
            ApiJson(m): ApiJson<SignedMessage>,
        ) -> Result<Response, ApiError> {
            protocol(s, $session, $leaf, m, caller.0.map(|a| a.ip())).await
        }
    };
}

protocol_endpoint!(dkg_commitment, SessionKind::Dkg, Leaf::Commitment);
protocol_endpoint!(dkg_share, SessionKind::Dkg, Leaf::Share);
protocol_endpoint!(dkg_ack, SessionKind::Dkg, Leaf::Ack);
protocol_endpoint!(reshare_commitment, SessionKind::Reshare, Leaf::Commitment);
protocol_endpoint!(reshare_share, SessionKind::Reshare, Leaf::Share);
protocol_endpoint!(reshare_ack, SessionKind::Reshare, Leaf::Ack);

async fn reshare_complete(
    State(s): Shared,
    ApiJson(m): ApiJson<SignedMessage>,
) -> Result<Response, ApiError> {
    match s.record_completion(&m) {
        Ok(()) => Ok(Json(json!({ "status": "recorded" })).into_response()),
        Err(r) => {
            let e = if r.contains("operator") {
                ApiError::new(StatusCode::FORBIDDEN, "unknown_sender", r)
            } else if r.contains("signature") {
                ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", r)
            } else {
                ApiError::bad_request(r)
            };
            s.metrics.reject(e.code);
            Err(e)
        }
    }
}

async fn pubkey(State(s): Shared) -> Result<Json<PubkeyResponse>, ApiError> {
    let v = s.active_version().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_key",
            "this node holds no key version yet (DKG has not completed)",
        )
    })?;
    Ok(Json(response_for(s.address, &v)))
}

/// Every key version this node holds, newest (active) first: operators compare them
/// to find the newest version a threshold agrees on.
async fn versions(State(s): Shared) -> Json<Vec<PubkeyResponse>> {
    Json(s.version_reports())
}

async fn health(State(s): Shared) -> Json<HealthResponse> {
    let active = s.active_version().map(|v| v.session_timestamp.0);
    Json(HealthResponse {
        status: "ok".into(),
        operator_address: s.address,
        ready: active.is_some(),
        active_version: active,
        session_in_progress: s.current_session().map(|x| SessionStatus {
            timestamp: x.timestamp(),
            kind: x.kind(),
        }),
        insecure_modes: s.insecure_modes.clone(),
    })
}

async fn metrics(State(s): Shared) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

/// This node's evidence: a quote binding its operator key and TLS certificate.
/// `GET /v2/sessions/{ts}/transcript`: the signed messages this node holds of a
/// session it finished recently (all public: dealings carry ciphertexts only), for a
/// peer that missed the session (`crate::catchup`).
async fn transcript(
    State(s): Shared,
    ts: Result<axum::extract::Path<u64>, axum::extract::rejection::PathRejection>,
) -> Result<Response, ApiError> {
    let Ok(axum::extract::Path(ts)) = ts else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            "the session is a Unix timestamp",
        ));
    };
    match s.transcript(ts) {
        Some(json) => Ok((
            [(header::CONTENT_TYPE, "application/json")],
            json.as_ref().clone(),
        )
            .into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_transcript",
            "this node holds no transcript of that session",
        )),
    }
}

/// `GET /attestation[?session=ts]`.
#[derive(Debug, Default, serde::Deserialize)]
struct AttestationQuery {
    /// The session whose share-encryption key the caller wants (default: now's).
    session: Option<u64>,
}

async fn attestation(
    State(s): Shared,
    query: Result<axum::extract::Query<AttestationQuery>, axum::extract::rejection::QueryRejection>,
) -> Json<crate::attest::AttestationResponse> {
    let mut r = s.attestation.response(s.address);
    let deployment = s.deployment().await.hash();
    let now = s.clock.now_ms() / 1000;
    // A malformed query is no reason to refuse an attestation: now's key.
    let session = query.ok().and_then(|q| q.0.session).unwrap_or(now);
    r.encryption_key = Some(
        s.encryption_keys
            .for_session(session, now, &deployment.0)
            .certificate,
    );
    Json(r)
}
