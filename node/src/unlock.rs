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
//!   [`kms_attestation::unlock_report_data`]`(address, public key)`. Each request
//!   replaces the previous key pair.
//! - `POST /unlock` `{node_public_key, public_key, nonce, ciphertext}`: the
//!   operator's side of an X25519 exchange with that key pair, and the passphrase
//!   under AES-256-GCM with the key HKDF-SHA256(shared secret, salt = node key ‖
//!   operator key, info = [`HKDF_INFO`]) and authenticated data address ‖ node key.
//!   The node key pair is used once, whatever the outcome. If the passphrase opens
//!   the key file the node answers 200 and starts; otherwise 403 and it stays locked.
//! - `GET /health`: `{"status": "locked", ...}`.
//!
//! `kms-node unlock` is the operator's side: it verifies the quote (a released node
//! image on an accepted platform, bound to the key pair and the expected address)
//! before it encrypts anything. A host relaying the exchange sees only a public key
//! and a ciphertext for a private key that never leaves the TD; a replay reaches a
//! key pair that no longer exists. Guessing is bounded by Argon2id (one attempt at
//! a time, each a fresh quote and a key derivation).

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::Context;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use hkdf::Hkdf;
use kms_attestation::{
    Evidence, Policy, QuoteProvider, Subject, VerifiedTd, Verifier, unlock_report_data,
};
use kms_crypto::OperatorAddress;
use kms_crypto::signer::SignatureScheme;
use kms_protocol::api::HealthResponse;
use rand_core::{OsRng, RngCore};
use ring::agreement::{EphemeralPrivateKey, UnparsedPublicKey, X25519, agree_ephemeral};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::sync::oneshot;
use tracing::{info, warn};
use zeroize::Zeroizing;

use crate::config::NodeConfig;
use crate::http::{ApiError, ApiJson};
use crate::keys::{KeyFileError, KeyFileInfo, OperatorKeys};

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

struct Challenge {
    private: EphemeralPrivateKey,
    public: [u8; 32],
}

struct Locked {
    key_file: PathBuf,
    info: KeyFileInfo,
    provider: Arc<dyn QuoteProvider>,
    challenge: Mutex<Option<Challenge>>,
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
        challenge: Mutex::new(None),
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
        axum::serve(listener, router)
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

async fn challenge(State(s): State<Arc<Locked>>) -> Result<Json<UnlockChallenge>, ApiError> {
    let internal = |what: &str| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("{what} failed"),
        )
    };
    let (private, public) = ephemeral_key().ok_or_else(|| internal("key generation"))?;
    let report_data = unlock_report_data(s.info.address.as_bytes(), &public);
    let provider = s.provider.clone();
    let evidence = tokio::task::spawn_blocking(move || provider.quote(&report_data))
        .await
        .map_err(|_| internal("quote generation"))?
        .map_err(|e| {
            warn!(error = %e, "unlock: this node's quote could not be generated");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "quote_unavailable",
                format!("this node's quote could not be generated: {e}"),
            )
        })?;
    *s.challenge.lock().expect("challenge lock") = Some(Challenge { private, public });
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
    let challenge = {
        let mut slot = s.challenge.lock().expect("challenge lock");
        match slot.as_ref() {
            Some(c) if c.public == node_public => slot.take().expect("present"),
            Some(_) => {
                return Err(conflict(
                    "stale_challenge",
                    "this challenge was replaced by a newer one: GET /unlock again",
                ));
            }
            None => {
                return Err(conflict(
                    "no_challenge",
                    "no challenge outstanding: GET /unlock first",
                ));
            }
        }
    };
    // From here on the challenge is spent, whatever happens.
    let key = Zeroizing::new(
        agree_ephemeral(
            challenge.private,
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

/// What `kms-node unlock` checks before it sends the passphrase.
pub struct UnlockPolicy {
    /// Verifies the node's evidence.
    pub verifier: Verifier,
    /// Which node images and platforms are acceptable.
    pub policy: Policy,
    /// The operator the key file must belong to, when known.
    pub expect_address: Option<OperatorAddress>,
}

/// Why `kms-node unlock` failed.
#[derive(Debug, thiserror::Error)]
pub enum UnlockClientError {
    /// The node could not be reached or answered something unreadable.
    #[error("{0}")]
    Transport(String),
    /// The node refused (status, code, message).
    #[error("the node answered {status} {code}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The error code.
        code: String,
        /// The node's explanation.
        message: String,
    },
    /// The node's evidence did not pass: nothing was sent.
    #[error("the node's attestation was refused ({kind}): {detail}; the passphrase was not sent")]
    Attestation {
        /// The error kind.
        kind: &'static str,
        /// Details.
        detail: String,
    },
    /// The key file belongs to another operator: nothing was sent.
    #[error("the node holds the key file of {found}, not {expected}; the passphrase was not sent")]
    WrongOperator {
        /// The expected operator.
        expected: OperatorAddress,
        /// The one the node named.
        found: OperatorAddress,
    },
}

async fn refused(resp: reqwest::Response) -> UnlockClientError {
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    UnlockClientError::Refused {
        status,
        code: body["error"]["code"].as_str().unwrap_or("").to_string(),
        message: body["error"]["message"].as_str().unwrap_or("").to_string(),
    }
}

/// The operator's side: fetches a challenge from the locked node at `base`,
/// verifies its evidence at time `now` against `policy`, and sends `passphrase`
/// encrypted to the attested key. Returns the opened operator and the verified TD.
pub async fn unlock_remote(
    base: &url::Url,
    passphrase: &str,
    policy: &UnlockPolicy,
    now: u64,
) -> Result<(OperatorAddress, VerifiedTd), UnlockClientError> {
    if passphrase.is_empty() || passphrase.len() > MAX_PASSPHRASE_BYTES {
        return Err(UnlockClientError::Transport(format!(
            "the passphrase must have 1 to {MAX_PASSPHRASE_BYTES} bytes"
        )));
    }
    crate::install_crypto_provider();
    let transport = |e: reqwest::Error| UnlockClientError::Transport(e.to_string());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(transport)?;
    let endpoint = base
        .join(UNLOCK_PATH.trim_start_matches('/'))
        .map_err(|e| UnlockClientError::Transport(format!("{base}: {e}")))?;
    let resp = http.get(endpoint.clone()).send().await.map_err(transport)?;
    if !resp.status().is_success() {
        return Err(refused(resp).await);
    }
    let challenge: UnlockChallenge = resp.json().await.map_err(transport)?;
    let node_public: [u8; 32] = hex::decode(&challenge.public_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| UnlockClientError::Transport("public_key: not 32 bytes of hex".into()))?;
    let td = policy
        .verifier
        .verify(&challenge.evidence, now)
        .map_err(|e| UnlockClientError::Attestation {
            kind: e.kind(),
            detail: e.to_string(),
        })?;
    let expected = unlock_report_data(challenge.operator_address.as_bytes(), &node_public);
    policy
        .policy
        .appraise(&td, Subject::NodeImage, &expected)
        .map_err(|e| UnlockClientError::Attestation {
            kind: e.kind(),
            detail: e.to_string(),
        })?;
    if let Some(expected) = policy.expect_address
        && expected != challenge.operator_address
    {
        return Err(UnlockClientError::WrongOperator {
            expected,
            found: challenge.operator_address,
        });
    }
    let failed = || UnlockClientError::Transport("X25519 key exchange failed".into());
    let (private, operator_public) = ephemeral_key().ok_or_else(failed)?;
    let key = Zeroizing::new(
        agree_ephemeral(
            private,
            &UnparsedPublicKey::new(&X25519, node_public),
            |shared| exchange_key(shared, &node_public, &operator_public),
        )
        .map_err(|_| failed())?,
    );
    let mut nonce = [0u8; 12];
    OsRng.fill_bytes(&mut nonce);
    let ciphertext = Aes256Gcm::new_from_slice(key.as_ref())
        .expect("32-byte key")
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: passphrase.as_bytes(),
                aad: &exchange_aad(&challenge.operator_address, &node_public),
            },
        )
        .expect("in-memory encryption cannot fail");
    let request = UnlockRequest {
        node_public_key: challenge.public_key,
        public_key: hex::encode(operator_public),
        nonce: hex::encode(nonce),
        ciphertext: hex::encode(ciphertext),
    };
    let resp = http
        .post(endpoint)
        .json(&request)
        .send()
        .await
        .map_err(transport)?;
    if !resp.status().is_success() {
        return Err(refused(resp).await);
    }
    let ok: UnlockResponse = resp.json().await.map_err(transport)?;
    Ok((ok.operator_address, td))
}
