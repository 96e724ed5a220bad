//! The node: shared state, the scheduler that starts a session at every interval
//! boundary, and what happens when a session ends.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use kms_crypto::OperatorAddress;
use kms_crypto::signer::OperatorSigner;
use kms_protocol::api::{BoundaryPlan, PubkeyResponse};
use kms_protocol::dkg::wire::{Body, open_unverified, verify_signature};
use kms_protocol::dkg::{Deployment, Engine, Evidence, Rejection, Setup};
use kms_protocol::messages::SignedMessage;
use kms_protocol::{
    CertificateCache, KeyShareVersion, Participant, Schedule, SessionFailure, SessionKind,
    SessionOutcome, SessionParams, SessionTimestamp,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use url::Url;

use crate::attest::{AttestationResponse, NodeAttestation};
use crate::complete::Completion;
use crate::config::NodeConfig;
use crate::dealing::{DealingGuard, EngineSeeds};
use crate::keys::{
    ENCRYPTION_KEY_LIFETIME_SECS, EncryptionKeys, OperatorKeys, PROTOCOL_KEY_LIFETIME_SECS,
    ProtocolKeys,
};
use crate::metrics::{Metrics, SessionLabels};
use crate::peering::{LocalPeeringDataFetcher, Peer, PeeringDataFetcher};
use crate::schedule::{Boundary, BoundarySource, WallClockBoundaries};
use crate::session::{RunningSession, kind_label};
use crate::store::{KeyStore, SealingKey};
use crate::tls::CertificateDigest;
use crate::transport::{PeerPin, Transport};

/// The share-encryption certificates of a session's players.
pub type EncryptionCertificates =
    BTreeMap<OperatorAddress, kms_crypto::vss::encryption::EncryptionKeyCertificate>;

/// Wall-clock time, injected so that tests can control it.
pub trait Clock: Send + Sync {
    /// Unix milliseconds.
    fn now_ms(&self) -> u64;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// Most bytes of early messages (for a session this node has not started yet) kept.
const EARLY_BUFFER_BYTES: usize = 64 * 1024 * 1024;

/// Versions a node reports at `GET /versions` and reads from each peer.
pub const MAX_REPORTED_VERSIONS: usize = 16;
/// The largest answer read from a peer (`/versions`, `/attestation`).
const MAX_PEER_ANSWER_BYTES: usize = 2 * 1024 * 1024;

/// State shared by the server, the scheduler and the sessions.
pub struct NodeShared {
    /// This operator.
    pub address: OperatorAddress,
    /// The configuration.
    pub cfg: NodeConfig,
    /// The operator key: certifies the protocol keys that sign protocol messages.
    pub signer: Arc<dyn OperatorSigner>,
    /// The protocol keys that sign this node's protocol messages, certified by the
    /// operator key.
    protocol_keys: ProtocolKeys,
    /// Peers' protocol-key certificates checked so far, for the node's lifetime.
    certificates: Arc<CertificateCache>,
    /// The share-encryption keys this node receives its shares under.
    pub encryption_keys: EncryptionKeys,
    /// The chain id, read once in chain mode (part of the deployment's identity).
    chain_id: Mutex<Option<u64>>,
    /// Engine seeds, derived per session from the operator secret.
    engine_seeds: EngineSeeds,
    store: Arc<KeyStore>,
    versions: RwLock<BTreeMap<u64, Arc<KeyShareVersion>>>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Outgoing messages.
    pub transport: Transport,
    peering: Arc<dyn PeeringDataFetcher>,
    peers: RwLock<Vec<Peer>>,
    /// When `peers` was last re-read because an unknown operator wrote to us.
    peers_refreshed: Mutex<Option<std::time::Instant>>,
    session: Mutex<Option<Arc<RunningSession>>>,
    /// The last session that finished, kept (until its deadline) to answer late
    /// messages that need it.
    finished: Mutex<Option<Arc<RunningSession>>>,
    last_started: Mutex<u64>,
    early: Mutex<(usize, BTreeMap<u64, Vec<SignedMessage>>)>,
    completions: Mutex<BTreeMap<u64, BTreeMap<OperatorAddress, [u8; 32]>>>,
    /// Fraud evidence this node produced, by session.
    pub evidence: Mutex<Vec<(u64, Evidence)>>,
    /// Transcripts (JSON) of the last sessions this node finished, for peers that
    /// missed them.
    transcripts: Mutex<BTreeMap<u64, Arc<Vec<u8>>>>,
    /// What rebuilds the current session's engine for a catch-up.
    pub(crate) replay_inputs: Mutex<Option<crate::catchup::ReplayInputs>>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Own evidence, verifier and policy.
    pub attestation: Arc<NodeAttestation>,
    /// Chain mode: commitments and fraud proofs go on-chain after each session.
    pub chain: Option<Arc<crate::chain::ChainClient>>,
    /// Test builds: rewrites what this node sends.
    pub fault: Option<Mutex<Fault>>,
    /// Test builds: how long every incoming protocol message is held before it is
    /// handled (a host that delays this node's inbound traffic).
    pub inbound_delay: std::time::Duration,
    /// The insecure modes this node runs with (logged at start, listed in `/health`).
    pub insecure_modes: Vec<String>,
}

/// A fault-injection behaviour ([`StartOptions::fault`]); uninhabited in builds
/// without the `fault-injection` feature, so that they cannot have one.
#[cfg(feature = "fault-injection")]
pub type Fault = Box<dyn kms_protocol::dkg::sim::Byzantine>;
/// A fault-injection behaviour; uninhabited in builds without `fault-injection`.
#[cfg(not(feature = "fault-injection"))]
pub type Fault = std::convert::Infallible;

/// How a node starts besides its configuration. `Default` is the production setup:
/// the system clock and the configured peering and boundary sources.
#[derive(Default)]
pub struct StartOptions {
    /// The clock (default: the system clock).
    pub clock: Option<Arc<dyn Clock>>,
    /// The operator set (default: the configured peering file or contract).
    pub peering: Option<Arc<dyn PeeringDataFetcher>>,
    /// Session boundaries (default: the chain in chain mode, the wall clock otherwise).
    pub boundaries: Option<Arc<dyn BoundarySource>>,
    /// The operator's passphrase, when other sealed files than the operator key are
    /// to be opened with it (a sealed `tls.key_file`).
    pub passphrase: Option<zeroize::Zeroizing<String>>,
    /// Fault injection for tests of Byzantine operators: every protocol message this
    /// node sends goes through the behaviour, which may rewrite, split, delay or drop
    /// it. Only in builds with the `fault-injection` feature; the node announces it in
    /// its log and in `/health` like any insecure mode.
    #[cfg(feature = "fault-injection")]
    pub fault: Option<Fault>,
    /// Fault injection for tests of slow hosts: every incoming protocol message is
    /// held this long before the node handles it (the sender's request waits, as
    /// behind a host that delays its packets). Only with `fault-injection`; announced
    /// like [`StartOptions::fault`].
    #[cfg(feature = "fault-injection")]
    pub inbound_delay: Option<std::time::Duration>,
}

/// Where an incoming protocol message went.
pub enum Delivery {
    /// The engine accepted it.
    Accepted,
    /// Kept for a session that starts soon.
    Buffered,
}

/// Why an incoming protocol message was refused.
pub enum Refusal {
    /// Refused by the engine (or its checks run before it).
    Protocol(Rejection),
    /// The sender is not an operator of the current set (403 `unknown_sender`).
    UnknownSender,
    /// Posted to the other session kind's endpoint (400).
    WrongEndpoint,
    /// For a session that ended or is too far in the future (409 `rejected`).
    OtherSession,
    /// The buffer of early messages is full (429 `rate_limited`).
    EarlyBufferFull,
    /// Its signer is not a participant of the session (403 `unknown_sender`).
    NotParticipant,
    /// Its shape cannot be the session's, seen before any point is decoded or any
    /// signature checked (400 `malformed`).
    Misshapen(&'static str),
    /// Its network source sent more than a session's worth (429 `rate_limited`).
    OverQuota,
}

impl NodeShared {
    /// The key that signs this node's protocol messages in the session at `ts`.
    pub fn protocol_signer(&self, ts: u64) -> Arc<dyn OperatorSigner> {
        self.protocol_keys.for_session(ts)
    }

    /// The versions this node holds, newest last.
    pub fn versions(&self) -> Vec<Arc<KeyShareVersion>> {
        self.versions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The active (newest) version.
    pub fn active_version(&self) -> Option<Arc<KeyShareVersion>> {
        self.versions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .next_back()
            .cloned()
    }

    /// The version active at `unix_secs`: the newest one that started at or before it.
    pub fn version_at(&self, unix_secs: u64) -> Option<Arc<KeyShareVersion>> {
        self.versions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .range(..=unix_secs)
            .next_back()
            .map(|(_, v)| v.clone())
    }

    /// The session in progress.
    pub fn current_session(&self) -> Option<Arc<RunningSession>> {
        self.session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The operators as last read from the peering source.
    pub fn peers(&self) -> Vec<Peer> {
        self.peers.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Operators that announced completing session `ts`, with the commitment hash.
    pub fn completions(&self, ts: u64) -> BTreeMap<OperatorAddress, [u8; 32]> {
        self.completions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&ts)
            .cloned()
            .unwrap_or_default()
    }

    /// Routes an incoming protocol message of a `kind` session to its engine, or keeps
    /// it for a session about to start.
    pub async fn deliver(
        self: &Arc<Self>,
        kind: SessionKind,
        message: SignedMessage,
        source: Option<std::net::IpAddr>,
    ) -> Result<Delivery, Refusal> {
        if !self.inbound_delay.is_zero() {
            tokio::time::sleep(self.inbound_delay).await;
        }
        let body = Body::decode(&message.payload).map_err(Refusal::Protocol)?;
        let (ts, session_hash) = body.session();
        // The running session, or the last finished one until its deadline: a
        // finished engine still helps a player recover a share (`engine::recover`).
        let finished = self
            .finished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .filter(|s| std::time::Instant::now() < s.deadline);
        if let Some(s) = self
            .current_session()
            .or(finished)
            .filter(|s| s.timestamp() == ts.0)
        {
            if s.kind() != kind {
                return Err(Refusal::WrongEndpoint);
            }
            s.admit(source, &body, &message)?;
            s.handle(self, message).await.map_err(Refusal::Protocol)?;
            return Ok(Delivery::Accepted);
        }
        let last = *self.last_started.lock().unwrap_or_else(|p| p.into_inner());
        let now_secs = self.clock.now_ms() / 1000;
        if ts.0 <= last {
            return Err(Refusal::OtherSession);
        }
        if ts.0 > now_secs + self.cfg.schedule.interval_secs {
            return Err(Refusal::OtherSession);
        }
        // Only operators of the current set may fill the buffer, with messages they
        // signed; the engine checks everything else when the session starts.
        let Some(peer) = self.known_peer(message.signer).await else {
            return Err(Refusal::UnknownSender);
        };
        // Canonical, the author's, and signed by it; the session's own checks wait.
        open_unverified(&message, ts, &session_hash).map_err(Refusal::Protocol)?;
        let set = kms_protocol::OperatorSet::new(vec![peer.participant()])
            .map_err(|_| Refusal::UnknownSender)?;
        verify_signature(&message, &[&set], ts).map_err(Refusal::Protocol)?;
        let size = message.payload.len() + 256;
        let mut early = self.early.lock().unwrap_or_else(|p| p.into_inner());
        if early.0 + size > EARLY_BUFFER_BYTES {
            return Err(Refusal::EarlyBufferFull);
        }
        early.0 += size;
        early.1.entry(ts.0).or_default().push(message);
        Ok(Delivery::Buffered)
    }

    /// The operator `address` of the current set. A sender this node does not know
    /// yet makes it re-read the operator set (at most once a second): at a boundary a
    /// peer may have read a newer set, and start writing to us, before we do.
    async fn known_peer(&self, address: OperatorAddress) -> Option<Peer> {
        let find = |peers: Vec<Peer>| peers.into_iter().find(|p| p.address == address);
        if let Some(p) = find(self.peers()) {
            return Some(p);
        }
        {
            let mut last = self
                .peers_refreshed
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                return None;
            }
            *last = Some(std::time::Instant::now());
        }
        match self.peering.operators().await {
            Ok(peers) => {
                debug!(
                    operators = peers.len(),
                    "operator set re-read for an unknown sender"
                );
                *self.peers.write().unwrap_or_else(|p| p.into_inner()) = peers.clone();
                find(peers)
            }
            Err(e) => {
                warn!(error = %e, "cannot read the operator set");
                None
            }
        }
    }

    /// Records a peer's signed completion statement.
    pub fn record_completion(&self, m: &SignedMessage) -> Result<(), &'static str> {
        let peer = self
            .peers()
            .into_iter()
            .find(|p| p.address == m.signer)
            .ok_or("sender is not an operator of the current set")?;
        let c = Completion::verify(m, &peer.public_key)?;
        let now_secs = self.clock.now_ms() / 1000;
        if c.session_timestamp > now_secs + 60 {
            return Err("completion for a future session");
        }
        let mut all = self.completions.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(c.session_timestamp)
            .or_default()
            .insert(c.operator, c.commitment_hash);
        while all.len() > 16 {
            all.pop_first();
        }
        Ok(())
    }

    /// Called by the session when its engine reports the end.
    pub async fn finish_session(
        self: Arc<Self>,
        session: Arc<RunningSession>,
        result: Result<SessionOutcome, SessionFailure>,
    ) {
        {
            let mut cur = self.session.lock().unwrap_or_else(|p| p.into_inner());
            if cur.as_ref().is_some_and(|s| Arc::ptr_eq(s, &session)) {
                *cur = None;
            }
        }
        *self.finished.lock().unwrap_or_else(|p| p.into_inner()) = Some(session.clone());
        let ts = session.timestamp();
        if let Some(chain) = self.chain.clone() {
            // Whatever the outcome: evidence against others is worth keeping even if
            // this node's session failed; an activated version is recorded.
            let activated = match (&result, session.agreed_value()) {
                (Ok(SessionOutcome::NewVersion(v)), Some(value)) => {
                    Some((v.commitment.hash(), value))
                }
                _ => None,
            };
            let evidence = session.take_evidence(&self.evidence);
            let record = crate::session::ChainRecord {
                activated,
                evidence,
                setup: session.setup.clone(),
                base: session.base_decision(),
            };
            let params = session.params.clone();
            tokio::spawn(async move { chain.after_session(&params, record).await });
        }
        match &result {
            Ok(_) => self.keep_transcript(ts, session.transcript()),
            Err(_) => {
                // A player that missed the outcome asks its peers for their transcript.
                if session.params.players.contains(&self.address) {
                    tokio::spawn(crate::catchup::catch_up(self.clone(), ts));
                }
            }
        }
        self.conclude(
            ts,
            session.kind(),
            session.session_hash(),
            session.deadline,
            result,
        )
        .await;
    }

    /// Keeps the transcript of a session this node finished, to serve to peers that
    /// missed it (the last few sessions).
    fn keep_transcript(&self, ts: u64, messages: Vec<SignedMessage>) {
        let Ok(json) = serde_json::to_vec(&messages) else {
            return;
        };
        let mut t = self.transcripts.lock().unwrap_or_else(|p| p.into_inner());
        t.insert(ts, Arc::new(json));
        while t.len() > 3 {
            t.pop_first();
        }
    }

    /// The last session this node started.
    pub(crate) fn last_started(&self) -> u64 {
        *self.last_started.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this node holds a version from session `ts`.
    pub(crate) fn has_version(&self, ts: u64) -> bool {
        self.versions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&ts)
    }

    /// The cache of checked protocol-key certificates its engines share.
    pub(crate) fn certificate_cache(&self) -> Arc<CertificateCache> {
        self.certificates.clone()
    }

    /// The transcript of session `ts` as JSON, if this node finished it recently.
    pub fn transcript(&self, ts: u64) -> Option<Arc<Vec<u8>>> {
        self.transcripts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&ts)
            .cloned()
    }

    /// Acts on a session's result, from the session itself or from a catch-up:
    /// stores and activates a new version, or keeps the previous one.
    pub(crate) async fn conclude(
        self: &Arc<Self>,
        ts: u64,
        session_kind: SessionKind,
        session_hash: [u8; 32],
        deadline: Instant,
        result: Result<SessionOutcome, SessionFailure>,
    ) {
        let kind = kind_label(session_kind);
        let label = |ok: bool| SessionLabels {
            kind: kind.to_string(),
            result: if ok { "ok" } else { "failed" }.to_string(),
        };
        match result {
            Ok(SessionOutcome::NewVersion(v)) => {
                let v: KeyShareVersion = *v;
                let store = self.store.clone();
                let to_store = v.clone();
                let stored = tokio::task::spawn_blocking(move || store.store(&to_store))
                    .await
                    .expect("store does not panic");
                if let Err(e) = stored {
                    warn!(session = ts, error = %e, "could not store the new key version; keeping the old one");
                    self.metrics.sessions.get_or_create(&label(false)).inc();
                    return;
                }
                let commitment_hash = v.commitment.hash();
                info!(
                    session = ts,
                    kind,
                    qualified = v.qualified_dealers.len(),
                    threshold = v.threshold,
                    master_public_key = %hex::encode(v.commitment.constant().to_compressed()),
                    "new key version active"
                );
                self.versions
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(ts, Arc::new(v));
                self.metrics.key_version.set(ts as i64);
                self.metrics.sessions.get_or_create(&label(true)).inc();
                self.prune().await;
                if session_kind == SessionKind::Reshare {
                    let statement = Completion {
                        session_timestamp: ts,
                        session_hash,
                        operator: self.address,
                        commitment_hash,
                    };
                    let m = statement.sign(self.signer.as_ref());
                    let _ = self.record_completion(&m);
                    let body = Arc::new(serde_json::to_vec(&m).expect("serializable"));
                    for p in self.peers().iter().filter(|p| p.address != self.address) {
                        self.transport.post_json(
                            &p.url,
                            "/reshare/complete",
                            body.clone(),
                            "complete",
                            deadline + Duration::from_secs(5),
                            Duration::ZERO,
                        );
                    }
                }
            }
            Ok(SessionOutcome::Departed { qualified_dealers }) => {
                info!(
                    session = ts,
                    qualified = qualified_dealers.len(),
                    "dealt in a reshare and left the operator set"
                );
                self.metrics.sessions.get_or_create(&label(true)).inc();
            }
            Err(f) => {
                warn!(session = ts, kind, reason = %f, "session failed; the previous version stays active");
                self.metrics.sessions.get_or_create(&label(false)).inc();
            }
        }
    }

    /// Forgets the versions superseded longer ago than `store.share_horizon_secs`
    /// (the proactive-security horizon), on disk and in memory.
    async fn prune(&self) {
        let now = self.clock.now_ms() / 1000;
        let horizon = self.cfg.store.share_horizon_secs;
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.prune(now, horizon)).await {
            Ok(Ok(n)) if n > 0 => {
                info!(
                    pruned = n,
                    horizon_secs = horizon,
                    "superseded key versions and their shares deleted"
                );
                self.reload_versions().await;
            }
            Ok(Err(e)) => warn!(error = %e, "pruning failed"),
            _ => {}
        }
    }

    async fn reload_versions(&self) {
        let store = self.store.clone();
        let loaded = tokio::task::spawn_blocking(
            move || -> Result<Vec<KeyShareVersion>, crate::store::StoreError> {
                let mut out = Vec::new();
                for ts in store.list_versions()? {
                    if let Some(v) = store.load_at_time(ts)? {
                        out.push(v);
                    }
                }
                Ok(out)
            },
        )
        .await
        .expect("store does not panic");
        match loaded {
            Ok(vs) => {
                let map = vs
                    .into_iter()
                    .map(|v| (v.session_timestamp.0, Arc::new(v)))
                    .collect::<BTreeMap<_, _>>();
                if let Some(ts) = map.keys().next_back() {
                    self.metrics.key_version.set(*ts as i64);
                }
                *self.versions.write().unwrap_or_else(|p| p.into_inner()) = map;
            }
            Err(e) => warn!(error = %e, "could not read the key store"),
        }
    }

    /// `GET` a peer's `path` as JSON over `http`, each step bounded by a phase (0.2 to
    /// 2 s). Returns the answer and the TLS certificate the peer presented (empty over
    /// plain HTTP), or why not: `bad_url`, `unreachable`, `bad_status` or `malformed`.
    fn get_from_peer<T: serde::de::DeserializeOwned>(
        &self,
        http: reqwest::Client,
        peer: &Peer,
        path: &str,
    ) -> impl std::future::Future<Output = Result<(T, Vec<u8>), &'static str>> + Send + 'static
    {
        let timeout = Duration::from_millis(self.cfg.schedule.phase_ms.clamp(200, 2_000));
        let url = peer.url.join(path);
        async move {
            let url = url.map_err(|_| "bad_url")?;
            let mut r = tokio::time::timeout(timeout, http.get(url).send())
                .await
                .map_err(|_| "unreachable")?
                .map_err(|_| "unreachable")?;
            if !r.status().is_success() {
                return Err("bad_status");
            }
            let cert = r
                .extensions()
                .get::<reqwest::tls::TlsInfo>()
                .and_then(|i| i.peer_certificate())
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            // A peer is not trusted with the size of its answer either.
            let read = kms_attestation::fetch::read_capped(&mut r, MAX_PEER_ANSWER_BYTES);
            let bytes = tokio::time::timeout(timeout, read)
                .await
                .map_err(|_| "unreachable")?
                .map_err(|e| match e {
                    kms_attestation::fetch::BodyError::TooLarge => "too_large",
                    kms_attestation::fetch::BodyError::Transport(_) => "unreachable",
                })?;
            let v: T = serde_json::from_slice(&bytes).map_err(|_| "malformed")?;
            Ok((v, cert))
        }
    }

    /// The peers whose attestation passes (this node always): each one's evidence must
    /// verify, show an allowed node image on an accepted platform, and bind the key
    /// the peering source lists and the TLS certificate the peer presented. The others
    /// are left out of the session, logged and counted. The kept peers are pinned to
    /// that certificate for the session ([`Transport::pin_session`]).
    async fn attested(
        &self,
        ts: u64,
        peers: Vec<Peer>,
        deployment: &Deployment,
    ) -> (Vec<Peer>, EncryptionCertificates) {
        let deployment_hash = deployment.hash().0;
        let mut certificates = EncryptionCertificates::new();
        // Releases approved since the last session (a rollout in progress).
        let attestation = self.attestation.clone();
        let _ = tokio::task::spawn_blocking(move || attestation.refresh_signed_releases()).await;
        let mut tasks = Vec::new();
        for p in peers.iter().filter(|p| p.address != self.address) {
            // Not pinned: this is the connection whose certificate the quote must bind.
            // Asked for this session's key: every node gets the same one.
            let get = self.get_from_peer::<AttestationResponse>(
                self.transport.http().clone(),
                p,
                &format!("/attestation?session={ts}"),
            );
            tasks.push(tokio::spawn(async move {
                get.await.map_err(|e| match e {
                    "bad_status" => "no_attestation",
                    other => other,
                })
            }));
        }
        let now = self.clock.now_ms() / 1000;
        let mut answers = BTreeMap::new();
        for (p, t) in peers
            .iter()
            .filter(|p| p.address != self.address)
            .zip(tasks)
        {
            answers.insert(p.address, t.await.unwrap_or(Err("unreachable")));
        }
        let mut kept = Vec::new();
        let mut pins = Vec::new();
        for p in peers {
            if p.address == self.address {
                let own = self.encryption_keys.for_session(ts, now, &deployment_hash);
                certificates.insert(p.address, own.certificate);
                kept.push(p);
                continue;
            }
            let verdict = match answers.remove(&p.address) {
                Some(Ok((a, cert))) if a.operator_address == p.address => self
                    .attestation
                    .check_peer_presenting(
                        &a.evidence,
                        &p.public_key,
                        &cert,
                        now,
                        a.release_approval.as_ref(),
                    )
                    .map_err(|e| e.kind())
                    .and_then(|_| {
                        // Its share-encryption key, certified by its operator key for
                        // this deployment and session, received on the attested
                        // connection: what dealers encrypt its shares to.
                        match a.encryption_key {
                            Some(k)
                                if k.operator == p.address
                                    && k.verify(&p.public_key, &deployment_hash, ts).is_ok() =>
                            {
                                certificates.insert(p.address, k);
                                Ok(cert)
                            }
                            Some(_) => Err("bad_encryption_key"),
                            None => Err("no_encryption_key"),
                        }
                    }),
                Some(Ok(_)) => Err("wrong_operator"),
                Some(Err(reason)) => Err(reason),
                None => Err("unreachable"),
            };
            match verdict {
                Ok(cert) => {
                    pins.push(PeerPin {
                        address: p.address,
                        url: p.url.clone(),
                        certificate: CertificateDigest::of(&cert),
                    });
                    kept.push(p);
                }
                Err(reason) => self.leave_out(ts, &p, reason),
            }
        }
        for (address, e) in self.transport.pin_session(ts, &pins) {
            if let Some(i) = kept.iter().position(|p| p.address == address) {
                let p = kept.remove(i);
                certificates.remove(&p.address);
                self.leave_out(ts, &p, e.kind());
            }
        }
        (kept, certificates)
    }

    /// The deployment this node's sessions belong to: in chain mode the chain id,
    /// the slashing contract, the AVS and the operator set; without a chain, the
    /// all-zero identity of a local cluster (which shares no keys with any other).
    pub async fn deployment(&self) -> Deployment {
        let Some(chain) = &self.chain else {
            return Deployment {
                chain_id: 0,
                registry: [0; 20],
                avs: [0; 20],
                operator_set_id: 0,
            };
        };
        let cached = *self.chain_id.lock().unwrap_or_else(|p| p.into_inner());
        let chain_id = match cached {
            Some(id) => id,
            None => match chain.chain_id().await {
                Ok(id) => {
                    *self.chain_id.lock().unwrap_or_else(|p| p.into_inner()) = Some(id);
                    id
                }
                Err(e) => {
                    warn!(error = %e, "cannot read the chain id");
                    0
                }
            },
        };
        let d = chain.deployment();
        Deployment {
            chain_id,
            registry: d.slashing.0.0,
            avs: d.avs.0.0,
            operator_set_id: d.operator_set_id,
        }
    }

    /// Logs and counts a peer left out of session `ts` for `reason`.
    fn leave_out(&self, ts: u64, p: &Peer, reason: &str) {
        warn!(session = ts, peer = %p.address, reason, "peer attestation failed; leaving it out of this session");
        self.metrics
            .peer_attestation_failures
            .get_or_create(&crate::metrics::ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Every version each peer holds (`GET /versions`), so that the newest version a
    /// threshold agrees on is found even when a later session diverged. Only answers
    /// in the peer's own name count, at most [`MAX_REPORTED_VERSIONS`] per peer.
    /// Returns the operators that answered (an empty list is an answer) and the
    /// versions they reported.
    async fn peer_versions(
        &self,
        peers: &[Peer],
    ) -> (BTreeSet<OperatorAddress>, Vec<PubkeyResponse>) {
        let mut tasks = Vec::new();
        for p in peers.iter().filter(|p| p.address != self.address) {
            let get = self.get_from_peer::<Vec<PubkeyResponse>>(
                self.transport.client_for(&p.url),
                p,
                "/versions",
            );
            let who = p.address;
            tasks.push((
                who,
                tokio::spawn(async move {
                    let (all, _) = get.await.ok()?;
                    Some(
                        all.into_iter()
                            .filter(|v| v.operator_address == who)
                            .take(MAX_REPORTED_VERSIONS)
                            .collect::<Vec<_>>(),
                    )
                }),
            ));
        }
        let mut answered = BTreeSet::new();
        let mut out = Vec::new();
        for (who, t) in tasks {
            if let Ok(Some(v)) = t.await {
                answered.insert(who);
                out.extend(v);
            }
        }
        (answered, out)
    }

    /// What this node reports at `GET /versions`: the versions it holds, newest first.
    pub fn version_reports(&self) -> Vec<PubkeyResponse> {
        self.versions()
            .iter()
            .rev()
            .take(MAX_REPORTED_VERSIONS)
            .enumerate()
            .map(|(i, v)| PubkeyResponse {
                is_active: i == 0,
                ..response_for(self.address, v)
            })
            .collect()
    }

    /// What to run at boundary `ts`.
    /// The session of boundary `ts` among the `listed` operators, from the versions
    /// the `attested` ones report.
    async fn plan(
        self: &Arc<Self>,
        ts: u64,
        listed: &[Peer],
        attested: &[Peer],
    ) -> Option<(SessionParams, Option<kms_crypto::Scalar>)> {
        let peers = listed;
        let schedule = Schedule {
            start_ms: (ts * 1000).saturating_add(self.cfg.schedule.setup_ms),
            phase_ms: self.cfg.schedule.phase_ms,
        };
        let mode = self.cfg.schedule.mode;
        let players: Vec<Participant> = peers.iter().map(Peer::participant).collect();
        let (mut answered, mut views) = self.peer_versions(attested).await;
        views.extend(self.version_reports());
        answered.insert(self.address);
        match kms_protocol::api::plan_boundary(&views, &answered) {
            plan @ (BoundaryPlan::Dkg | BoundaryPlan::RestartDkg) => {
                if matches!(plan, BoundaryPlan::Dkg) {
                    info!(
                        session = ts,
                        operators = players.len(),
                        "no operator holds a key: starting DKG"
                    );
                } else {
                    warn!(
                        session = ts,
                        operators = players.len(),
                        versions = views.len(),
                        "no key version is held by its threshold, and none can be (every possible holder answered): starting a new DKG"
                    );
                }
                match SessionParams::dkg(SessionTimestamp(ts), mode, players, schedule) {
                    Ok(p) => Some((p, None)),
                    Err(e) => {
                        warn!(session = ts, error = %e, "cannot run DKG with this operator set");
                        None
                    }
                }
            }
            BoundaryPlan::Wait => {
                warn!(
                    session = ts,
                    answered = answered.len(),
                    listed = peers.len(),
                    "operators hold keys but no version is reported by its threshold, and operators that did not answer may hold one; skipping this boundary"
                );
                None
            }
            BoundaryPlan::Reshare(vote) => {
                let (version, previous, holders) =
                    (&vote.version, &vote.commitment, &vote.operators);
                let dealers: Vec<Participant> = peers
                    .iter()
                    .filter(|p| holders.contains(&p.address))
                    .map(Peer::participant)
                    .collect();
                let my_share = self
                    .versions
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(version)
                    .filter(|v| v.commitment == *previous)
                    .map(|v| v.share.clone());
                info!(
                    session = ts,
                    from_version = version,
                    dealers = dealers.len(),
                    players = players.len(),
                    "starting reshare"
                );
                match SessionParams::reshare(
                    SessionTimestamp(ts),
                    mode,
                    dealers,
                    previous.clone(),
                    players,
                    schedule,
                ) {
                    Ok(p) => Some((p, my_share)),
                    Err(e) => {
                        warn!(session = ts, error = %e, "cannot reshare with this operator set");
                        None
                    }
                }
            }
        }
    }

    /// Runs the session of boundary `ts` (if this node is in the set and no other
    /// session is running).
    pub async fn on_boundary(self: &Arc<Self>, boundary: Boundary) {
        let ts = boundary.session_timestamp;
        // Also when sessions fail, so that no share outlives the horizon.
        self.prune().await;
        if let Some(s) = self.current_session() {
            warn!(
                session = ts,
                running = s.timestamp(),
                "previous session still running; skipping this boundary"
            );
            return;
        }
        let peers = match self.peering.operators_at(&boundary).await {
            Ok(p) => p,
            Err(e) => {
                warn!(session = ts, error = %e, "cannot read the operator set; skipping this boundary");
                return;
            }
        };
        *self.peers.write().unwrap_or_else(|p| p.into_inner()) = peers.clone();
        if !peers.iter().any(|p| p.address == self.address) {
            debug!(session = ts, "this operator is not in the current set");
            return;
        }
        let listed = peers.clone();
        let deployment = self.deployment().await;
        // Attestation decides whom this node talks to and whose keys it vouches for,
        // not what the session is: the sets come from the listing, the same at every
        // node, and the players' keys are agreed inside the session (its roster).
        let (peers, certificates) = self.attested(ts, peers, &deployment).await;
        // Leaving out more than n - t of the listed operators means this node is more
        // likely the odd one out (another image, a broken network) than they are.
        if peers.len() < kms_crypto::operator::threshold(listed.len()) {
            warn!(
                session = ts,
                attested = peers.len(),
                listed = listed.len(),
                "fewer than a threshold of the listed operators attested; not starting a session"
            );
            return;
        }
        let Some((params, share)) = self.plan(ts, &listed, &peers).await else {
            return;
        };
        if !params.dealers.contains(&self.address) && !params.players.contains(&self.address) {
            return;
        }
        // Dealing after the first phase has ended would only earn this node complaints
        // (and, as a player, make it complain about everyone): sit the session out.
        let now = self.clock.now_ms();
        let first_phase_end = params.schedule.phase_end(0);
        if now >= first_phase_end {
            warn!(
                session = ts,
                late_ms = now - params.schedule.start_ms,
                setup_ms = self.cfg.schedule.setup_ms,
                "ready only after the first phase ended; sitting this session out (raise schedule.setup_ms if this repeats)"
            );
            self.metrics.sessions_sat_out.inc();
            return;
        }
        // The keys this node vouches for in the roster: its own and those its
        // attestation of each peer bound.
        let admitted = certificates
            .iter()
            .filter(|(a, _)| params.players.contains(a))
            .map(|(a, c)| (*a, c.key))
            .collect();
        let setup = Setup::new(params.clone(), deployment);
        // Deterministic per operator and session descriptor, so that another process
        // on this key deals exactly the same (see `crate::dealing`).
        let session_hash = setup.hash();
        let seed = self.engine_seeds.for_session(&session_hash.0);
        let encryption = self
            .encryption_keys
            .for_session(ts, now / 1000, &deployment.hash().0);
        *self.replay_inputs.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(crate::catchup::ReplayInputs {
                ts,
                kind: params.kind,
                setup: setup.clone(),
                encryption: encryption.secret.clone(),
                share: share.clone(),
                seed: *seed,
                peers: peers.clone(),
            });
        let engine = match Engine::new(
            setup.clone(),
            self.address,
            self.protocol_keys.for_session(ts),
            encryption.secret,
            share,
            *seed,
        ) {
            Ok(e) => e
                .with_certificates(self.certificates.clone())
                .admitting(admitted),
            Err(e) => {
                warn!(session = ts, error = %e, "cannot join the session");
                return;
            }
        };
        // The session runs until the engine's own deadline, or until a phase before
        // the next boundary if that comes first (a session that has not finished by
        // then is given up: the node keeps its previous version), but never less
        // than the phases a healthy session needs.
        let engine_end = params
            .schedule
            .phase_end(kms_protocol::dkg::engine::SESSION_PHASES - 1);
        let next_boundary_ms = ts
            .saturating_add(self.cfg.schedule.interval_secs)
            .saturating_mul(1000);
        let end_ms = engine_end
            .min(next_boundary_ms.saturating_sub(self.cfg.schedule.phase_ms))
            .max(params.schedule.phase_end(self.cfg.schedule.phases() - 1));
        let urls = peers.iter().map(|p| (p.address, p.url.clone())).collect();
        let now = self.clock.now_ms();
        let guard = DealingGuard::new(self.store.clone(), self.address, ts, session_hash.0);
        let session = Arc::new(RunningSession::new(setup, engine, guard, urls, end_ms, now));
        {
            *self.last_started.lock().unwrap_or_else(|p| p.into_inner()) = ts;
            *self.session.lock().unwrap_or_else(|p| p.into_inner()) = Some(session.clone());
        }
        session.start(self).await;
        let early = {
            let mut e = self.early.lock().unwrap_or_else(|p| p.into_inner());
            let mine = e.1.remove(&ts).unwrap_or_default();
            // Anything older can never be used.
            e.1.retain(|k, _| *k > ts);
            e.0 = e.1.values().flatten().map(|m| m.payload.len() + 256).sum();
            mine
        };
        for m in early {
            if let Err(r) = session.handle(self, m).await {
                debug!(session = ts, reason = r.code(), "early message rejected");
            }
        }
    }

    /// Ticks the running session; ends one that is past its last deadline.
    async fn tick(self: &Arc<Self>) {
        if let Some(s) = self.current_session() {
            s.tick(self).await;
            // Watchdog: a session still running well past its last deadline is given up,
            // so that the next boundary is not skipped forever.
            let overdue = self.clock.now_ms() > s.end_ms + 2 * s.params.schedule.phase_ms;
            let still_current = self.current_session().is_some_and(|c| Arc::ptr_eq(&c, &s));
            if overdue && still_current {
                warn!(
                    session = s.timestamp(),
                    "session overran its deadline; giving it up"
                );
                self.clone()
                    .finish_session(
                        s,
                        Err(SessionFailure::Internal("session overran its deadline")),
                    )
                    .await;
            }
        }
    }
}

/// This node's view of a version as `/pubkey` reports it.
pub fn response_for(address: OperatorAddress, v: &KeyShareVersion) -> PubkeyResponse {
    PubkeyResponse {
        operator_address: address,
        commitments: v.commitment.coefficients().to_vec(),
        version: v.session_timestamp.0,
        is_active: true,
        threshold: v.threshold,
        operators: v.operator_set.clone(),
        mode: v.mode,
    }
}

/// A running node: its HTTP server, scheduler and ticker.
pub struct Node {
    shared: Arc<NodeShared>,
    local_addr: SocketAddr,
    /// `https` or, in a plain-HTTP development node, `http`.
    scheme: &'static str,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    /// Opens the store, binds the listener and starts serving and scheduling.
    pub async fn start(cfg: NodeConfig, keys: OperatorKeys) -> anyhow::Result<Node> {
        Self::start_with(cfg, keys, StartOptions::default()).await
    }

    /// As [`Node::start`], with a clock, a peering source or a boundary source other
    /// than the configured ones (embedders and tests).
    pub async fn start_with(
        cfg: NodeConfig,
        keys: OperatorKeys,
        options: StartOptions,
    ) -> anyhow::Result<Node> {
        let StartOptions {
            clock,
            peering,
            boundaries,
            passphrase,
            #[cfg(feature = "fault-injection")]
            fault,
            #[cfg(feature = "fault-injection")]
            inbound_delay,
        } = options;
        #[cfg(not(feature = "fault-injection"))]
        let (fault, inbound_delay): (Option<Fault>, Option<std::time::Duration>) = (None, None);
        let clock = clock.unwrap_or_else(|| Arc::new(SystemClock));
        crate::install_crypto_provider();
        let mut insecure = cfg.insecure_modes();
        if fault.is_some() {
            insecure.push("fault-injection".to_string());
            warn!(
                "FAULT INJECTION: this node rewrites the protocol messages it sends (Byzantine test node)"
            );
        }
        if let Some(d) = inbound_delay {
            insecure.push("fault-injection-inbound-delay".to_string());
            warn!(
                delay_ms = d.as_millis() as u64,
                "FAULT INJECTION: this node holds every incoming protocol message (slow-host test node)"
            );
        }
        if !insecure.is_empty() {
            warn!(modes = ?insecure, "INSECURE development modes are on: never run this configuration with real keys");
        }
        let address = keys.address();
        // The certificate this node serves: its quote binds it.
        let tls_cert_der = if cfg.tls.enabled() {
            crate::tls::read_certificates(&cfg.tls.cert_file)?
                .remove(0)
                .as_ref()
                .to_vec()
        } else {
            Vec::new()
        };
        let attestation = Arc::new(NodeAttestation::from_config(
            &cfg,
            &keys.public_key(),
            &tls_cert_der,
            clock.now_ms() / 1000,
        )?);
        if attestation.mode == crate::config::AttestationMode::InsecureDev {
            warn!(
                identity = %cfg.attestation.simulated_identity,
                "INSECURE: simulated attestation (insecure-dev): this node's quote proves nothing and it accepts simulated quotes from peers and apps"
            );
        }
        let sealing =
            SealingKey::derive_measured(keys.sealing_secret(), &attestation.sealing_identity());
        if let Some(dir) = cfg.store.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let store = Arc::new(KeyStore::open(&cfg.store.path, sealing)?);
        let metrics = Arc::new(Metrics::new());
        let transport = Transport::new(
            cfg.transport.clone(),
            &cfg.tls,
            cfg.insecure.plain_http,
            metrics.clone(),
        )?;
        let tls = if cfg.tls.enabled() {
            Some(crate::tls::server_config(
                &cfg.tls.cert_file,
                &cfg.tls.key_file,
                passphrase.as_deref().map(|p| p.as_str()),
                cfg.insecure.plaintext_keys,
            )?)
        } else {
            None
        };
        let chain = match cfg.peering.source {
            crate::config::PeeringSource::Contract => Some(Arc::new(
                crate::chain::ChainClient::from_config(&cfg.chain, &keys)?,
            )),
            crate::config::PeeringSource::Local => None,
        };
        let peering = peering.unwrap_or_else(|| match &chain {
            Some(c) => c.clone() as Arc<dyn PeeringDataFetcher>,
            None => Arc::new(LocalPeeringDataFetcher::new(cfg.peering.file.clone())),
        });
        let boundaries = boundaries.or_else(|| chain.clone().map(|c| c as Arc<dyn BoundarySource>));
        let listener = tokio::net::TcpListener::bind(cfg.server.listen).await?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(NodeShared {
            address,
            signer: keys.signer(),
            protocol_keys: ProtocolKeys::new(address, keys.signer(), PROTOCOL_KEY_LIFETIME_SECS),
            certificates: Arc::new(CertificateCache::new()),
            encryption_keys: EncryptionKeys::new(
                address,
                keys.signer(),
                ENCRYPTION_KEY_LIFETIME_SECS,
            ),
            chain_id: Mutex::new(None),
            engine_seeds: EngineSeeds::derive(keys.sealing_secret()),
            store,
            versions: RwLock::new(BTreeMap::new()),
            transcripts: Mutex::new(BTreeMap::new()),
            replay_inputs: Mutex::new(None),
            metrics,
            transport,
            peering,
            peers: RwLock::new(Vec::new()),
            peers_refreshed: Mutex::new(None),
            session: Mutex::new(None),
            finished: Mutex::new(None),
            last_started: Mutex::new(0),
            early: Mutex::new((0, BTreeMap::new())),
            completions: Mutex::new(BTreeMap::new()),
            evidence: Mutex::new(Vec::new()),
            clock,
            attestation,
            chain,
            fault: fault.map(Mutex::new),
            inbound_delay: inbound_delay.unwrap_or_default(),
            insecure_modes: insecure,
            cfg,
        });
        shared.reload_versions().await;
        shared.prune().await;
        if let Some(v) = shared.active_version() {
            *shared
                .last_started
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = v.session_timestamp.0;
            info!(
                version = v.session_timestamp.0,
                "serving the stored key version"
            );
        }
        if let Ok(p) = shared.peering.operators().await {
            *shared.peers.write().unwrap_or_else(|p| p.into_inner()) = p;
        }
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let app = crate::http::router(shared.clone())?;
        let mut rx = stop_rx.clone();
        let scheme = if tls.is_some() { "https" } else { "http" };
        match tls {
            Some(tls) => {
                let listener = listener.into_std()?;
                let handle = axum_server::Handle::new();
                let stopper = handle.clone();
                tasks.push(tokio::spawn(async move {
                    let _ = rx.wait_for(|s| *s).await;
                    stopper.graceful_shutdown(Some(Duration::from_secs(5)));
                }));
                let limits = crate::connections::ConnectionLimits::new(
                    &shared.cfg.limits,
                    shared.metrics.clone(),
                );
                let server = axum_server::from_tcp_rustls(
                    listener,
                    axum_server::tls_rustls::RustlsConfig::from_config(tls),
                )?
                .map(|tls| crate::connections::LimitedAcceptor::new(tls, limits))
                .handle(handle);
                tasks.push(tokio::spawn(async move {
                    if let Err(e) = server
                        .serve(app.into_make_service_with_connect_info::<SocketAddr>())
                        .await
                    {
                        warn!(error = %e, "HTTPS server stopped");
                    }
                }));
            }
            None => {
                tasks.push(tokio::spawn(async move {
                    let shutdown = async move {
                        let _ = rx.wait_for(|s| *s).await;
                    };
                    if let Err(e) = axum::serve(
                        listener,
                        app.into_make_service_with_connect_info::<SocketAddr>(),
                    )
                    .with_graceful_shutdown(shutdown)
                    .await
                    {
                        warn!(error = %e, "HTTP server stopped");
                    }
                }));
            }
        }
        // Scheduler: one session per boundary of the source.
        let s = shared.clone();
        let mut rx = stop_rx.clone();
        let boundaries = boundaries.unwrap_or_else(|| {
            Arc::new(WallClockBoundaries::new(
                shared.clock.clone(),
                shared.cfg.schedule.interval_secs,
            ))
        });
        tasks.push(tokio::spawn(async move {
            let mut last = 0;
            loop {
                let next = tokio::select! {
                    b = boundaries.next_boundary(last) => b,
                    _ = rx.wait_for(|s| *s) => return,
                };
                let Some(b) = next else {
                    warn!("the boundary source ended; no more sessions are scheduled");
                    return;
                };
                last = b.session_timestamp;
                let s2 = s.clone();
                tokio::spawn(async move { s2.on_boundary(b).await });
            }
        }));
        // Ticker: deadlines inside the running session.
        let s = shared.clone();
        let mut rx = stop_rx;
        tasks.push(tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(50));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = rx.wait_for(|s| *s) => return,
                }
                s.tick().await;
            }
        }));
        info!(%address, listen = %local_addr, scheme, "node started");
        Ok(Node {
            shared,
            local_addr,
            scheme,
            stop,
            tasks,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `https://<local address>` (`http://` for a plain-HTTP development node).
    pub fn url(&self) -> Url {
        format!("{}://{}", self.scheme, self.local_addr)
            .parse()
            .expect("valid URL")
    }

    /// The operator address.
    pub fn address(&self) -> OperatorAddress {
        self.shared.address
    }

    /// Shared state (for tests and the devnet).
    pub fn shared(&self) -> &Arc<NodeShared> {
        &self.shared
    }

    /// Stops serving and scheduling; the key store is closed when the last reference
    /// goes.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}
