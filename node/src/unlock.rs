//! Remote unlock: a node whose operator key file is sealed, and which has no
//! passphrase in its environment, waits locked until its operator sends the
//! passphrase — encrypted to a key that only the node's measured TD holds.
//!
//! Inside a TDX guest the host sees the data disk (the sealed key file) and
//! everything the VM is given at launch (fw_cfg, SMBIOS strings, the serial
//! console); a passphrase passed any of those ways would be the host's too. So the
//! locked node serves, on `server.listen`, plain HTTP:
//!
//! - `GET /unlock`: a fresh X25519 key pair; the answer carries the public key, the
//!   operator address of the key file, and a quote whose `report_data` is
//!   [`kms_attestation::unlock_report_data`]`(address, public key)`. The key pair
//!   stays answerable for a few minutes whatever else is asked for; each source may
//!   ask a few times, then one more time per half minute (429 `rate_limited`), see
//!   [`challenges`].
//! - `POST /unlock` `{node_public_key, public_key, nonce, ciphertext}`: the
//!   operator's side of an X25519 exchange with that key pair, and the passphrase
//!   under AES-256-GCM with the key HKDF-SHA256(shared secret, salt = node key ‖
//!   operator key, info = [`HKDF_INFO`]) and authenticated data address ‖ node key.
//!   `node_public_key` names the challenge answered; it is used once, whatever the
//!   outcome (409 `no_challenge` for one never issued or already used, 409
//!   `expired_challenge` for one too old). If the passphrase opens the key file the
//!   node answers 200 and starts; otherwise 403 and it stays locked.
//! - `GET /health`: `{"status": "locked", ...}`.
//!
//! `kms-node unlock` is the operator's side: it verifies the quote (a released node
//! image on an accepted platform, bound to the key pair and the expected address)
//! before it encrypts anything. A host relaying the exchange sees only a public key
//! and a ciphertext for a private key that never leaves the TD; a replay reaches a
//! key pair that no longer exists. Guessing is bounded by Argon2id (one attempt at
//! a time, each a fresh quote and a key derivation).

pub mod challenges;
mod operator;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::Context;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use hkdf::Hkdf;
use kms_attestation::{Evidence, QuoteProvider, unlock_report_data};
use kms_crypto::OperatorAddress;
use kms_crypto::signer::SignatureScheme;
use kms_protocol::api::HealthResponse;
use ring::agreement::{EphemeralPrivateKey, UnparsedPublicKey, X25519, agree_ephemeral};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::sync::oneshot;
use tracing::{debug, info, warn};
use zeroize::Zeroizing;

use self::challenges::{ChallengeAdmission, Challenges, Refused, Unanswerable};
use crate::config::NodeConfig;
use crate::http::{ApiError, ApiJson};
use crate::keys::{KeyFileError, KeyFileInfo, OperatorKeys};
use crate::node::{Clock, SystemClock};

pub use self::operator::{UnlockClientError, UnlockPolicy, VerifiedChallenge, unlock_remote};

/// The unlock endpoint.
pub const UNLOCK_PATH: &str = "/unlock";
/// HKDF `info` of the passphrase encryption key.
pub const HKDF_INFO: &[u8] = b"EIGENKMS-UNLOCK-V1 aes-256-gcm";
/// Longest passphrase accepted (bytes).
pub const MAX_PASSPHRASE_BYTES: usize = 1024;
/// Largest `POST /unlock` body.
const MAX_BODY_BYTES: usize = 4 * 1024;

/// `GET /unlock`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockChallenge {
    /// The operator whose key file the node will open.
    pub operator_address: OperatorAddress,
    /// Its message-key scheme.
    pub scheme: SignatureScheme,
    /// The node's one-use X25519 public key (hex).
    pub public_key: String,
    /// The quote over `unlock_report_data(operator_address, public_key)`.
    pub evidence: Evidence,
    /// Whether the evidence is simulated (insecure-dev).
    pub simulated: bool,
}

/// `POST /unlock`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockRequest {
    /// The node key of the challenge this answers (hex).
    pub node_public_key: String,
    /// The operator's one-use X25519 public key (hex).
    pub public_key: String,
    /// AES-GCM nonce (hex, 12 bytes).
    pub nonce: String,
    /// The encrypted passphrase (hex).
    pub ciphertext: String,
}

/// The answer to a successful `POST /unlock`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UnlockResponse {
    /// The operator whose key the node opened.
    pub operator_address: OperatorAddress,
}

/// What a successful unlock yields: the opened keys and the passphrase (for the
/// node's other sealed files, such as its TLS key).
pub struct Unlocked {
    /// The operator's keys.
    pub keys: OperatorKeys,
    /// The passphrase that opened them.
    pub passphrase: Zeroizing<String>,
}

struct Locked {
    key_file: PathBuf,
    info: KeyFileInfo,
    provider: Arc<dyn QuoteProvider>,
    challenges: Mutex<Challenges>,
    admission: ChallengeAdmission,
    clock: Arc<dyn Clock>,
    attempt: tokio::sync::Mutex<()>,
    done: Mutex<Option<oneshot::Sender<Unlocked>>>,
    insecure_modes: Vec<String>,
}

/// A one-use X25519 key pair (either side of the exchange).
fn ephemeral_key() -> Option<(EphemeralPrivateKey, [u8; 32])> {
    let private = EphemeralPrivateKey::generate(&X25519, &ring::rand::SystemRandom::new()).ok()?;
    let public = private
        .compute_public_key()
        .ok()?
        .as_ref()
        .try_into()
        .ok()?;
    Some((private, public))
}

/// The AES-256-GCM key of one exchange.
fn exchange_key(shared: &[u8], node_public: &[u8; 32], operator_public: &[u8; 32]) -> [u8; 32] {
    let salt = [node_public.as_slice(), operator_public.as_slice()].concat();
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&salt), shared)
        .expand(HKDF_INFO, &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    key
}

fn exchange_aad(address: &OperatorAddress, node_public: &[u8; 32]) -> Vec<u8> {
    [address.as_bytes().as_slice(), node_public.as_slice()].concat()
}

fn decode_array<const N: usize>(field: &str, hex_text: &str) -> Result<[u8; N], ApiError> {
    hex::decode(hex_text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ApiError::bad_request(format!("{field}: expected {N} bytes in hex")))
}

/// Serves the locked node's endpoints on `server.listen` until the operator's
/// passphrase opens the key file (then returns it) or `stop` completes (then
/// returns `None`). The key file must be sealed.
pub async fn wait_for_unlock(
    cfg: &NodeConfig,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Option<Unlocked>> {
    let listener = tokio::net::TcpListener::bind(cfg.server.listen)
        .await
        .with_context(|| format!("server.listen {}", cfg.server.listen))?;
    wait_for_unlock_on(listener, cfg, stop).await
}

/// As [`wait_for_unlock`], on a listener the caller bound (tests, embedders). The
/// listener is closed when this returns.
pub async fn wait_for_unlock_on(
    listener: tokio::net::TcpListener,
    cfg: &NodeConfig,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Option<Unlocked>> {
    wait_for_unlock_with(listener, cfg, Arc::new(SystemClock), stop).await
}

/// As [`wait_for_unlock_on`], with the clock challenges expire by (tests).
pub async fn wait_for_unlock_with(
    listener: tokio::net::TcpListener,
    cfg: &NodeConfig,
    clock: Arc<dyn Clock>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Option<Unlocked>> {
    crate::install_crypto_provider();
    let info = OperatorKeys::peek(&cfg.operator.key_file)?;
    anyhow::ensure!(
        info.sealed,
        "{} is not sealed: nothing to unlock",
        cfg.operator.key_file.display()
    );
    let (done_tx, done_rx) = oneshot::channel();
    let state = Arc::new(Locked {
        key_file: cfg.operator.key_file.clone(),
        info,
        provider: crate::attest::quote_provider(&cfg.attestation)?,
        challenges: Mutex::new(Challenges::new()),
        admission: ChallengeAdmission::new(),
        clock,
        attempt: tokio::sync::Mutex::new(()),
        done: Mutex::new(Some(done_tx)),
        insecure_modes: cfg.insecure_modes(),
    });
    let local = listener.local_addr()?;
    let router = Router::new()
        .route(UNLOCK_PATH, get(challenge).post(unlock))
        .route("/health", get(health))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state.clone());
    info!(
        operator = %info.address,
        listen = %local,
        "operator key file is sealed: waiting for its passphrase (kms-node unlock --url http://<this host>:{})",
        local.port()
    );
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = shutdown_rx.await;
        })
        .await
    });
    let outcome = tokio::select! {
        unlocked = done_rx => unlocked.ok(),
        _ = stop => None,
    };
    let _ = shutdown_tx.send(());
    // The 200 answer is on its way; give the connection a moment to drain, then
    // free the port for the node itself.
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    if outcome.is_some() {
        info!(operator = %info.address, "operator key unlocked");
    }
    Ok(outcome)
}

async fn health(State(s): State<Arc<Locked>>) -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "locked".into(),
        operator_address: s.info.address,
        ready: false,
        active_version: None,
        session_in_progress: None,
        insecure_modes: s.insecure_modes.clone(),
    })
}

fn refused_challenge(r: Refused) -> ApiError {
    let message = match r {
        Refused::SourceRateLimited => "too many unlock challenges from this address; retry later",
        Refused::Full => "too many unlock challenges outstanding; retry later",
    };
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
}

async fn challenge(
    State(s): State<Arc<Locked>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
) -> Result<Json<UnlockChallenge>, ApiError> {
    let internal = |what: &str| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("{what} failed"),
        )
    };
    s.admission.admit(from.ip()).map_err(|r| {
        debug!(source = %from.ip(), reason = ?r, "unlock: challenge refused");
        refused_challenge(r)
    })?;
    let (private, public) = ephemeral_key().ok_or_else(|| internal("key generation"))?;
    // Issued before the quote, so that the slot is taken while the quote is made.
    s.challenges
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .issue(public, private, s.clock.now_ms())
        .map_err(refused_challenge)?;
    let withdraw = || {
        s.challenges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .withdraw(&public)
    };
    let report_data = unlock_report_data(s.info.address.as_bytes(), &public);
    let provider = s.provider.clone();
    let quoted = tokio::task::spawn_blocking(move || provider.quote(&report_data)).await;
    let evidence = match quoted {
        Ok(Ok(evidence)) => evidence,
        Ok(Err(e)) => {
            withdraw();
            warn!(error = %e, "unlock: this node's quote could not be generated");
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "quote_unavailable",
                format!("this node's quote could not be generated: {e}"),
            ));
        }
        Err(_) => {
            withdraw();
            return Err(internal("quote generation"));
        }
    };
    Ok(Json(UnlockChallenge {
        operator_address: s.info.address,
        scheme: s.info.scheme,
        public_key: hex::encode(public),
        evidence,
        simulated: s.provider.is_simulated(),
    }))
}

async fn unlock(
    State(s): State<Arc<Locked>>,
    ApiJson(req): ApiJson<UnlockRequest>,
) -> Result<Json<UnlockResponse>, ApiError> {
    let conflict = |code: &'static str, message: &str| {
        ApiError::new(StatusCode::CONFLICT, code, message.to_string())
    };
    let _attempt = s
        .attempt
        .try_lock()
        .map_err(|_| conflict("busy", "another unlock attempt is in progress"))?;
    let node_public = decode_array::<32>("node_public_key", &req.node_public_key)?;
    let operator_public = decode_array::<32>("public_key", &req.public_key)?;
    let nonce = decode_array::<12>("nonce", &req.nonce)?;
    let ciphertext = hex::decode(&req.ciphertext)
        .ok()
        .filter(|c| c.len() <= MAX_PASSPHRASE_BYTES + 16)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "ciphertext: hex, at most {MAX_PASSPHRASE_BYTES} bytes of passphrase"
            ))
        })?;
    let private = s
        .challenges
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .answer(&node_public, s.clock.now_ms())
        .map_err(|e| match e {
            Unanswerable::Unknown => conflict(
                "no_challenge",
                "no such challenge outstanding (never issued, or already used): GET /unlock",
            ),
            Unanswerable::Expired => {
                conflict("expired_challenge", "this challenge expired: GET /unlock")
            }
        })?;
    // From here on the challenge is spent, whatever happens.
    let key = Zeroizing::new(
        agree_ephemeral(
            private,
            &UnparsedPublicKey::new(&X25519, operator_public),
            |shared| exchange_key(shared, &node_public, &operator_public),
        )
        .map_err(|_| ApiError::bad_request("public_key: not a usable X25519 public key"))?,
    );
    let aad = exchange_aad(&s.info.address, &node_public);
    let plain = Aes256Gcm::new_from_slice(key.as_ref())
        .expect("32-byte key")
        .decrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &ciphertext,
                aad: &aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| {
            warn!("unlock: a request did not decrypt under its challenge");
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "undecryptable",
                "the ciphertext does not decrypt under this challenge",
            )
        })?;
    let passphrase = Zeroizing::new(
        String::from_utf8(plain.to_vec())
            .map_err(|_| ApiError::bad_request("the passphrase is not UTF-8"))?,
    );
    let path = s.key_file.clone();
    let opened = tokio::task::spawn_blocking(move || {
        OperatorKeys::read(&path, Some(passphrase.as_str()), false).map(|k| (k, passphrase))
    })
    .await
    .map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "key file check failed",
        )
    })?;
    let (keys, passphrase) = match opened {
        Ok(v) => v,
        Err(KeyFileError::Unseal(_)) => {
            warn!("unlock: wrong passphrase");
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "wrong_passphrase",
                "the passphrase does not open the key file; GET /unlock and try again",
            ));
        }
        Err(e) => {
            warn!(error = %e, "unlock: the key file cannot be opened");
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "key_file",
                e.to_string(),
            ));
        }
    };
    if keys.address() != s.info.address {
        return Err(conflict(
            "key_file_changed",
            "the key file changed since the challenge; GET /unlock again",
        ));
    }
    let operator_address = keys.address();
    let sender = s.done.lock().expect("done lock").take();
    match sender {
        Some(tx) => {
            let _ = tx.send(Unlocked { keys, passphrase });
            Ok(Json(UnlockResponse { operator_address }))
        }
        None => Err(conflict("already_unlocked", "the node is already unlocked")),
    }
}
