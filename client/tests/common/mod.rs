//! Fake operator nodes for the client tests: axum servers on 127.0.0.1 serving
//! `/pubkey` and `/app/sign` from a key dealt in the test, each with a behaviour
//! (honest, down, lying, slow, oversized, …).

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kms_client::{Authority, KmsClient};
use kms_crypto::signer::ecdsa::EcdsaSigner;
use kms_crypto::tbls::{hash_app_id, sign_partial};
use kms_crypto::vss::feldman::FeldmanDealing;
use kms_crypto::{Commitment, G1Point, G2Point, OperatorAddress, Scalar, evaluation_point};
use kms_protocol::api::{
    ErrorDetail, ErrorResponse, PubkeyResponse, SealedSignResponse, SignRequest,
};
use kms_protocol::release::{Authorization, owner_request_hash, partial_aad};
use kms_protocol::session::VssMode;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::task::JoinHandle;
use url::Url;

/// The version the fake cluster's key has.
pub const VERSION: u64 = 1_700_000_000;

/// How long any test may take end to end.
pub const TEST_BUDGET: Duration = Duration::from_secs(60);

/// How one fake node behaves.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// Answers from its share of the key.
    Honest,
    /// Nothing listens on its port.
    Down,
    /// Reports the key honestly, signs with a wrong share.
    InvalidPartial,
    /// Claims a newer version with another polynomial, and signs with that.
    OtherKey,
    /// Signs with a newer version unless asked for [`VERSION`] by name (a reshare
    /// completed after it answered `/pubkey`).
    MovedOn,
    /// Answers only after this long.
    Slow(Duration),
    /// 404 with an error body: no key yet.
    NoKey,
    /// A 200 body just over 1 MiB, with a Content-Length.
    Oversized,
    /// A 200 body just over 1 MiB, chunked (no Content-Length).
    OversizedChunked,
    /// Claims to be operator `j` (reports the key honestly, signs garbage).
    Impersonate(usize),
}

struct NodeState {
    operator: OperatorAddress,
    share: Scalar,
    commitments: Vec<G2Point>,
    operators: Vec<OperatorAddress>,
    behaviour: Behaviour,
    /// A second, unrelated key at a newer version (for `OtherKey` and `MovedOn`).
    other_share: Scalar,
    other_commitments: Vec<G2Point>,
    /// The app owner whose signed requests the node answers.
    owner: OperatorAddress,
}

/// `n` fake nodes sharing one key with threshold `t = ceil(2n/3)`.
pub struct FakeCluster {
    /// The operators, node `i` being operator `i`.
    pub operators: Vec<OperatorAddress>,
    /// The public polynomial.
    pub commitment: Commitment,
    /// The node URLs, in order.
    pub urls: Vec<Url>,
    secret: Scalar,
    tasks: Vec<JoinHandle<()>>,
    owner: Arc<EcdsaSigner>,
    owner_dir: TempDir,
}

impl FakeCluster {
    /// Starts one node per behaviour; the key is dealt from `seed`.
    pub async fn start(behaviours: &[Behaviour], seed: u64) -> Self {
        let n = behaviours.len();
        let t = kms_crypto::threshold(n);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let operators: Vec<OperatorAddress> = (0..n)
            .map(|i| OperatorAddress::from_bytes([i as u8 + 1; 20]))
            .collect();
        let secret = Scalar::random(&mut rng);
        let dealing = FeldmanDealing::new(secret.clone(), t, &mut rng).unwrap();
        let other = FeldmanDealing::new(Scalar::random(&mut rng), t, &mut rng).unwrap();
        let owner = Arc::new(EcdsaSigner::random(&mut rng));
        let mut urls = Vec::new();
        let mut tasks = Vec::new();
        // A down node's port is held until every node has its own: released at once,
        // the next bind could get it again and two nodes would share a URL.
        let mut down = Vec::new();
        for (i, behaviour) in behaviours.iter().enumerate() {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            urls.push(
                format!("http://{}", listener.local_addr().unwrap())
                    .parse()
                    .unwrap(),
            );
            if matches!(behaviour, Behaviour::Down) {
                down.push(listener);
                continue;
            }
            let x = evaluation_point(&operators[i]).unwrap();
            let operator = match behaviour {
                Behaviour::Impersonate(j) => operators[*j],
                _ => operators[i],
            };
            let state = Arc::new(NodeState {
                operator,
                share: dealing.share(&x),
                commitments: dealing.commitment().coefficients().to_vec(),
                operators: operators.clone(),
                behaviour: *behaviour,
                other_share: other.share(&x),
                other_commitments: other.commitment().coefficients().to_vec(),
                owner: owner.address(),
            });
            let app = axum::Router::new()
                .route("/pubkey", get(pubkey))
                .route("/app/sign", post(sign))
                .with_state(state);
            tasks.push(tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }));
        }
        // Closed now: connections to a down node are refused.
        drop(down);
        let owner_dir = TempDir::new();
        std::fs::write(
            owner_dir.file("owner.key"),
            format!("0x{}\n", hex::encode(*owner.secret_bytes())),
        )
        .unwrap();
        Self {
            operators,
            commitment: dealing.commitment().clone(),
            urls,
            secret,
            tasks,
            owner,
            owner_dir,
        }
    }

    /// The threshold.
    pub fn threshold(&self) -> usize {
        self.commitment.threshold()
    }

    /// The master public key.
    pub fn master_public_key(&self) -> G2Point {
        *self.commitment.constant()
    }

    /// `s·H1(appID)`, computed from the dealt secret.
    pub fn expected_app_key(&self, app_id: &str) -> G1Point {
        hash_app_id(app_id.as_bytes()).mul(&self.secret)
    }

    /// The app owner whose requests the nodes answer.
    pub fn owner(&self) -> Authority {
        Authority::Owner(self.owner.clone())
    }

    /// The owner's key file (for the CLI's `--owner-key`).
    pub fn owner_key_file(&self) -> String {
        self.owner_dir.file("owner.key")
    }

    /// A client of every node with the given timeout.
    pub fn client(&self, timeout: Duration) -> KmsClient {
        KmsClient::with_timeout(self.urls.clone(), timeout).unwrap()
    }
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn misbehave(s: &NodeState) -> Option<Response> {
    match &s.behaviour {
        Behaviour::Slow(d) => {
            tokio::time::sleep(*d).await;
            None
        }
        Behaviour::NoKey => Some(
            (
                StatusCode::NOT_FOUND,
                Json(ErrorResponse {
                    error: ErrorDetail {
                        code: "not_found".into(),
                        message: "no key version yet".into(),
                    },
                }),
            )
                .into_response(),
        ),
        Behaviour::Oversized => Some(
            " ".repeat(kms_client::MAX_RESPONSE_BYTES + 1)
                .into_response(),
        ),
        Behaviour::OversizedChunked => {
            let chunk = Bytes::from(vec![b' '; 64 * 1024]);
            let chunks = (0..17).map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
            Some(Body::from_stream(futures::stream::iter(chunks)).into_response())
        }
        _ => None,
    }
}

async fn pubkey(State(s): State<Arc<NodeState>>) -> Response {
    if let Some(r) = misbehave(&s).await {
        return r;
    }
    let (commitments, version) = match s.behaviour {
        Behaviour::OtherKey => (s.other_commitments.clone(), VERSION + 1_000),
        _ => (s.commitments.clone(), VERSION),
    };
    Json(PubkeyResponse {
        operator_address: s.operator,
        threshold: commitments.len(),
        commitments,
        version,
        is_active: true,
        operators: s.operators.clone(),
        mode: VssMode::Feldman,
    })
    .into_response()
}

fn refuse(status: StatusCode, code: &str) -> Response {
    (
        status,
        Json(ErrorResponse {
            error: ErrorDetail {
                code: code.into(),
                message: code.into(),
            },
        }),
    )
        .into_response()
}

async fn sign(State(s): State<Arc<NodeState>>, Json(req): Json<SignRequest>) -> Response {
    if let Some(r) = misbehave(&s).await {
        return r;
    }
    // As a real node: only the registered owner's request, signed for this node,
    // sealed to its one-time key.
    let Some(Authorization::Owner(auth)) = &req.auth else {
        return refuse(StatusCode::UNAUTHORIZED, "unauthorized");
    };
    let digest = owner_request_hash(&req.app_id, req.attestation_time.unwrap_or(0), auth);
    if auth.node != s.operator || auth.signature.verify(&digest, &s.owner).is_err() {
        return refuse(StatusCode::UNAUTHORIZED, "bad_signature");
    }
    let app = req.app_id.as_bytes();
    let honest = || sign_partial(&s.share, app);
    let (partial_signature, version) = match s.behaviour {
        Behaviour::InvalidPartial => (honest().add(&G1Point::generator()), VERSION),
        Behaviour::Impersonate(_) => (hash_app_id(b"garbage"), VERSION),
        Behaviour::OtherKey => (sign_partial(&s.other_share, app), VERSION + 1_000),
        Behaviour::MovedOn if req.attestation_time != Some(VERSION) => {
            (sign_partial(&s.other_share, app), VERSION + 600)
        }
        _ => (honest(), VERSION),
    };
    let key = kms_crypto::sealed::OneTimePublicKey::from_bytes(auth.response_key.0).unwrap();
    let sealed = kms_crypto::sealed::seal(
        &key,
        kms_crypto::sealed::APP_SIGN_INFO,
        &partial_aad(&req.app_id, version, &s.operator),
        &partial_signature.to_compressed(),
        &mut rand_core::OsRng,
    )
    .unwrap();
    Json(SealedSignResponse {
        operator_address: s.operator,
        version,
        encrypted_partial_signature: format!("0x{}", hex::encode(sealed)),
    })
    .into_response()
}

/// Runs a test body within [`TEST_BUDGET`].
pub async fn bounded<F: Future<Output = ()>>(body: F) {
    tokio::time::timeout(TEST_BUDGET, body)
        .await
        .expect("test exceeded its time budget");
}

/// A directory removed on drop (no `tempfile` in this crate's dependencies).
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh, empty directory under the system temp dir.
    pub fn new() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!(
            "kms-client-test-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    /// A path inside the directory, as a string for the CLI.
    pub fn file(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
