//! One running session: the protocol engine (v2, `kms_protocol::dkg`) behind a lock,
//! fed by the HTTP handlers and by the clock, its actions sent through the transport.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kms_crypto::OperatorAddress;
use kms_protocol::dkg::wire::Body;
use kms_protocol::dkg::{Action, Engine, Evidence, Recipient, Rejection, SessionHash, Setup};
use kms_protocol::messages::SignedMessage;
use kms_protocol::{SessionKind, SessionParams};
use url::Url;

use crate::dealing::{DealingGuard, DealingState};
use crate::metrics::PhaseLabels;
use crate::node::{NodeShared, Refusal};

/// A session in progress on this node.
pub struct RunningSession {
    /// Its parameters.
    pub params: SessionParams,
    /// Parameters, deployment and encryption keys.
    pub setup: Setup,
    engine: Mutex<Engine>,
    /// Lets this node's dealing out only once it is recorded, and never a second one.
    guard: DealingGuard,
    /// Where each other participant is reached.
    urls: BTreeMap<OperatorAddress, Url>,
    /// When the session gives up at the latest (Unix ms).
    pub end_ms: u64,
    /// Monotonic deadline for deliveries (end of the session plus one phase).
    pub deadline: Instant,
    /// `setup.hash()`, for the checks before the engine.
    session_hash: SessionHash,
    /// Messages and bytes admitted per network source.
    admitted: Mutex<BTreeMap<IpAddr, (usize, usize)>>,
    /// Set (under the node's evidence lock) once the session's chain record was
    /// taken: evidence found later, while the finished engine still answers late
    /// messages, is submitted on its own.
    concluded: std::sync::atomic::AtomicBool,
}

impl RunningSession {
    /// Wraps a started engine, whose dealing `guard` screens.
    pub fn new(
        setup: Setup,
        engine: Engine,
        guard: DealingGuard,
        urls: BTreeMap<OperatorAddress, Url>,
        end_ms: u64,
        now_ms: u64,
    ) -> Self {
        let params = setup.params.clone();
        let remaining = end_ms.saturating_sub(now_ms) + params.schedule.phase_ms;
        Self {
            session_hash: setup.hash(),
            admitted: Mutex::new(BTreeMap::new()),
            concluded: std::sync::atomic::AtomicBool::new(false),
            params,
            setup,
            engine: Mutex::new(engine),
            guard,
            urls,
            end_ms,
            deadline: Instant::now() + std::time::Duration::from_millis(remaining),
        }
    }

    /// Takes the fraud evidence gathered so far for the chain record; evidence
    /// found afterwards is submitted as it comes (see `dispatch`).
    pub fn take_evidence(&self, all: &Mutex<Vec<(u64, Evidence)>>) -> Vec<Evidence> {
        let all = all.lock().unwrap_or_else(|p| p.into_inner());
        self.concluded
            .store(true, std::sync::atomic::Ordering::Release);
        let ts = self.timestamp();
        all.iter()
            .filter(|(t, _)| *t == ts)
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// The session timestamp.
    pub fn timestamp(&self) -> u64 {
        self.params.timestamp.0
    }

    /// The session hash (v2: binds the deployment and the encryption keys).
    pub fn session_hash(&self) -> [u8; 32] {
        self.session_hash.0
    }

    /// DKG or reshare.
    pub fn kind(&self) -> SessionKind {
        self.params.kind
    }

    fn phase_label(&self, phase: &'static str) -> PhaseLabels {
        PhaseLabels {
            kind: kind_label(self.params.kind).to_string(),
            phase: phase.to_string(),
        }
    }

    /// Runs `f` on the engine on a blocking thread (verification can take a while),
    /// timing it into the phase histogram; returns its result and the actions.
    async fn with_engine<T: Send + 'static>(
        self: &Arc<Self>,
        shared: &Arc<NodeShared>,
        f: impl FnOnce(&mut Engine, u64) -> T + Send + 'static,
    ) -> (T, Vec<Action>) {
        let this = self.clone();
        let shared2 = shared.clone();
        tokio::task::spawn_blocking(move || {
            let now = shared2.clock.now_ms();
            let started = Instant::now();
            let mut engine = this.engine.lock().unwrap_or_else(|p| p.into_inner());
            let phase = engine.phase().label();
            let out = f(&mut engine, now);
            let actions = engine.drain();
            shared2
                .metrics
                .phase_seconds
                .get_or_create(&this.phase_label(phase))
                .observe(started.elapsed().as_secs_f64());
            (out, actions)
        })
        .await
        .expect("engine call does not panic")
    }

    /// The value the session agreed on (the id its certificate's precommits sign).
    pub fn agreed_value(&self) -> Option<[u8; 32]> {
        self.engine
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .agreed_value()
            .map(|v| v.0)
    }

    /// The signed messages the engine holds (all public), for peers that missed the
    /// session.
    pub fn transcript(&self) -> Vec<SignedMessage> {
        self.engine
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .transcript()
    }

    /// The public proof of a Pedersen session's base, once decided (what on-chain
    /// proofs about its shares need).
    pub fn base_decision(&self) -> Option<kms_protocol::dkg::BaseDecision> {
        self.engine
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .base_decision()
    }

    /// Whether this node's dealing went out.
    pub fn dealt(&self) -> bool {
        self.guard.state() == DealingState::Recorded
    }

    /// Starts the engine.
    pub async fn start(self: &Arc<Self>, shared: &Arc<NodeShared>) {
        let ((), actions) = self.with_engine(shared, |e, now| e.start(now)).await;
        self.dispatch(shared, actions).await;
    }

    /// Advances the clock.
    pub async fn tick(self: &Arc<Self>, shared: &Arc<NodeShared>) {
        let ((), actions) = self.with_engine(shared, |e, now| e.tick(now)).await;
        self.dispatch(shared, actions).await;
    }

    /// Checks that cost nothing, before a message reaches the engine (where its points
    /// are decoded and its signature checked): its signer is a participant and its
    /// author, it names this session's hash, a dealing has exactly the session's
    /// number of coefficients and ciphertexts, and its network source has not sent
    /// more than [`source_quota`] messages or [`SOURCE_QUOTA_BYTES`] into the session.
    /// The quota is per source address, not per claimed signer, so that a forger
    /// cannot use up an honest operator's allowance by sending in its name.
    pub fn admit(
        &self,
        source: Option<IpAddr>,
        body: &Body,
        message: &SignedMessage,
    ) -> Result<(), Refusal> {
        let p = &self.params;
        let signer = message.signer;
        if !p.dealers.contains(&signer) && !p.players.contains(&signer) {
            return Err(Refusal::NotParticipant);
        }
        if body.author() != signer {
            return Err(Refusal::Misshapen("the signer is not the payload's author"));
        }
        if body.session().1 != self.session_hash {
            return Err(Refusal::Misshapen("the message names another session hash"));
        }
        if let Body::Dealing(d) = body
            && (d.commitment.len() != p.players.threshold()
                || d.shareValues.len() != p.players.len())
        {
            return Err(Refusal::Misshapen(
                "a dealing of another shape than the session's (coefficients, ciphertexts)",
            ));
        }
        if let Some(ip) = source {
            let mut admitted = self.admitted.lock().unwrap_or_else(|p| p.into_inner());
            let entry = admitted.entry(ip).or_insert((0, 0));
            let bytes = message.payload.len();
            if entry.0 >= source_quota(p) || entry.1 + bytes > SOURCE_QUOTA_BYTES {
                return Err(Refusal::OverQuota);
            }
            entry.0 += 1;
            entry.1 += bytes;
        }
        Ok(())
    }

    /// Handles one incoming message.
    pub async fn handle(
        self: &Arc<Self>,
        shared: &Arc<NodeShared>,
        message: SignedMessage,
    ) -> Result<(), Rejection> {
        let (result, actions) = self
            .with_engine(shared, move |e, now| e.handle(now, message))
            .await;
        self.dispatch(shared, actions).await;
        result
    }

    async fn dispatch(self: &Arc<Self>, shared: &Arc<NodeShared>, actions: Vec<Action>) {
        // Before the fault injection of test builds, which may equivocate on purpose.
        let actions = self.guard.screen(actions).await;
        for a in actions {
            match a {
                Action::Send { to, message } => {
                    for (to, message, delay) in self.outgoing(shared, to, message) {
                        let urls: Vec<Url> = self.urls.get(&to).cloned().into_iter().collect();
                        shared.transport.send(
                            self.params.kind,
                            &message,
                            &urls,
                            self.deadline,
                            delay,
                        );
                    }
                }
                Action::Evidence(ev) => {
                    let ts = self.timestamp();
                    if ev.accused() == shared.address {
                        // Only a message signed with this node's key can accuse it:
                        // that key signs somewhere else too (or, in a test build,
                        // fault injection rewrote what this node sent).
                        tracing::error!(
                            session = ts,
                            kind = ev.kind(),
                            "fraud evidence against this node's own signed messages"
                        );
                        continue;
                    }
                    shared.metrics.fraud_evidence.inc();
                    tracing::warn!(session = ts, kind = ev.kind(), "fraud evidence");
                    let late = {
                        let mut all = shared.evidence.lock().unwrap_or_else(|p| p.into_inner());
                        all.push((ts, (*ev).clone()));
                        // Bounded: a session's engine emits at most one piece per
                        // kind and accused slot, and only recent sessions matter.
                        let excess = all.len().saturating_sub(MAX_KEPT_EVIDENCE);
                        all.drain(..excess);
                        self.concluded.load(std::sync::atomic::Ordering::Acquire)
                    };
                    if let (true, Some(chain)) = (late, shared.chain.clone()) {
                        let (setup, base) = (self.setup.clone(), self.base_decision());
                        tokio::spawn(async move {
                            chain.submit_evidence(ts, &ev, &setup, base.as_ref()).await
                        });
                    }
                }
                Action::Done(result) => {
                    shared.clone().finish_session(self.clone(), result).await;
                }
            }
        }
    }

    /// The recipients of one engine send, each with what it gets and after what
    /// delay: the message itself at once, or what the fault-injection behaviour of a
    /// test build makes of it.
    fn outgoing(
        &self,
        shared: &NodeShared,
        to: Recipient,
        message: SignedMessage,
    ) -> Vec<(OperatorAddress, SignedMessage, Duration)> {
        let recipients: Vec<OperatorAddress> = match to {
            Recipient::All => self
                .urls
                .keys()
                .filter(|a| **a != shared.address)
                .copied()
                .collect(),
            Recipient::One(a) => vec![a],
        };
        let Some(fault) = &shared.fault else {
            return recipients
                .into_iter()
                .map(|r| (r, message.clone(), Duration::ZERO))
                .collect();
        };
        let mut fault = fault.lock().unwrap_or_else(|p| p.into_inner());
        rewrite(shared, &mut fault, self.timestamp(), recipients, message)
    }
}

#[cfg(feature = "fault-injection")]
fn rewrite(
    shared: &NodeShared,
    fault: &mut crate::node::Fault,
    ts: u64,
    recipients: Vec<OperatorAddress>,
    message: SignedMessage,
) -> Vec<(OperatorAddress, SignedMessage, Duration)> {
    let Ok(body) = Body::decode(&message.payload) else {
        return Vec::new();
    };
    let signer = shared.protocol_signer(ts);
    let now_ms = shared.clock.now_ms();
    let mut out = Vec::new();
    for to in recipients {
        let o = kms_protocol::dkg::sim::Outgoing {
            from: shared.address,
            to,
            kind: body.kind(),
            message: &message,
            now_ms,
            signer: signer.as_ref(),
        };
        out.extend(
            fault
                .outgoing(&o)
                .into_iter()
                .map(|(m, delay_ms)| (to, m, Duration::from_millis(delay_ms))),
        );
    }
    out
}

#[cfg(not(feature = "fault-injection"))]
fn rewrite(
    _: &NodeShared,
    fault: &mut crate::node::Fault,
    _: u64,
    _: Vec<OperatorAddress>,
    _: SignedMessage,
) -> Vec<(OperatorAddress, SignedMessage, Duration)> {
    match *fault {}
}

/// Fraud evidence a node keeps for its recent sessions (oldest dropped first).
const MAX_KEPT_EVIDENCE: usize = 1024;

/// What a session leaves for the chain.
pub struct ChainRecord {
    /// The activated version's public-polynomial hash and the agreed value id.
    pub activated: Option<([u8; 32], [u8; 32])>,
    /// Fraud evidence gathered in the session.
    pub evidence: Vec<kms_protocol::dkg::Evidence>,
    /// The session the evidence belongs to.
    pub setup: Setup,
    /// Pedersen: the agreed base's proof, which proofs about shares carry.
    pub base: Option<kms_protocol::dkg::BaseDecision>,
}

/// `dkg` / `reshare`.
pub fn kind_label(k: SessionKind) -> &'static str {
    match k {
        SessionKind::Dkg => "dkg",
        SessionKind::Reshare => "reshare",
    }
}

/// Most payload bytes one network source may send into a session: far above what all
/// participants together send at `n = 100`, and a bound on what a flood can make the
/// engine hold.
pub const SOURCE_QUOTA_BYTES: usize = 64 * 1024 * 1024;

/// Most messages one network source may send into a session: what one participant's
/// engine keeps from an author ([`kms_protocol::dkg::engine::MESSAGES_PER_AUTHOR`])
/// plus fetch requests and retries, for every participant (nodes may share an
/// address: a cluster on one host, a NAT).
pub fn source_quota(p: &SessionParams) -> usize {
    let per = kms_protocol::dkg::engine::MESSAGES_PER_AUTHOR + 2 * p.players.len() + 64;
    per * (p.dealers.len() + p.players.len())
}

#[cfg(test)]
mod tests {
    use kms_protocol::dkg::sim::{SimMember, setup as sim_setup};
    use kms_protocol::{Schedule, SessionTimestamp, VssMode};

    use super::*;

    /// A session of four simulated operators at operator 1, and operator 0's dealing.
    fn setup() -> (
        RunningSession,
        SignedMessage,
        Vec<SimMember>,
        tempfile::TempDir,
    ) {
        let members = SimMember::generate(4, 9);
        let schedule = Schedule {
            start_ms: 1_000_000,
            phase_ms: 1_000,
        };
        let params = SessionParams::dkg(
            SessionTimestamp(1_000),
            VssMode::Feldman,
            members.iter().map(SimMember::participant).collect(),
            schedule,
        )
        .unwrap();
        let setup = sim_setup(params.clone());
        // Operator 0's dealing to the roster every member would agree on.
        let dealing = kms_protocol::dkg::dealer::deal(
            &setup,
            &members[0].roster(&setup),
            members[0].address(),
            members[0].operator.signer.as_ref(),
            kms_crypto::Scalar::from_u64(5),
            None,
            &mut rand_core::OsRng,
        )
        .unwrap();
        let engine = Engine::new(
            setup.clone(),
            members[1].address(),
            members[1].operator.signer.clone(),
            members[1].encryption.clone(),
            None,
            [2; 32],
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::KeyStore::open(
            &dir.path().join("keys.redb"),
            crate::store::SealingKey::derive(b"operator", b"test"),
        )
        .unwrap();
        let guard = DealingGuard::new(
            Arc::new(store),
            members[1].address(),
            params.timestamp.0,
            setup.hash().0,
        );
        let session =
            RunningSession::new(setup, engine, guard, BTreeMap::new(), 1_010_000, 1_000_000);
        (session, dealing, members, dir)
    }

    fn reason(r: Result<(), Refusal>) -> &'static str {
        match r {
            Ok(()) => "ok",
            Err(Refusal::NotParticipant) => "not_participant",
            Err(Refusal::Misshapen(_)) => "misshapen",
            Err(Refusal::OverQuota) => "over_quota",
            Err(_) => "other",
        }
    }

    #[test]
    fn forged_shapes_are_refused_before_the_engine_and_sources_are_bounded() {
        let (s, dealing, members, _dir) = setup();
        let body = Body::decode(&dealing.payload).unwrap();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(reason(s.admit(Some(ip), &body, &dealing)), "ok");

        // Too many coefficients (a 1,024-point forgery): refused undecoded.
        let Body::Dealing(mut d) = body.clone() else {
            unreachable!()
        };
        let word = d.commitment[0].clone();
        d.commitment = vec![word; 1_024];
        let long = Body::Dealing(d);
        let mut forged = dealing.clone();
        forged.payload = long.encode();
        assert_eq!(reason(s.admit(Some(ip), &long, &forged)), "misshapen");

        // Another session's hash, another author than the signer, a stranger.
        let Body::Dealing(mut d) = body.clone() else {
            unreachable!()
        };
        d.sessionHash = [9u8; 32].into();
        assert_eq!(
            reason(s.admit(Some(ip), &Body::Dealing(d), &dealing)),
            "misshapen"
        );
        let mut renamed = dealing.clone();
        renamed.signer = members[2].address();
        assert_eq!(reason(s.admit(Some(ip), &body, &renamed)), "misshapen");
        let stranger = SimMember::generate(1, 99).remove(0);
        let mut foreign = dealing.clone();
        foreign.signer = stranger.address();
        assert_eq!(
            reason(s.admit(Some(ip), &body, &foreign)),
            "not_participant"
        );

        // One source gets a session's worth of messages, then 429; another source is
        // not affected.
        let quota = source_quota(&s.params);
        for _ in 1..quota {
            assert_eq!(reason(s.admit(Some(ip), &body, &dealing)), "ok");
        }
        assert_eq!(reason(s.admit(Some(ip), &body, &dealing)), "over_quota");
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(reason(s.admit(Some(other), &body, &dealing)), "ok");
    }
}
