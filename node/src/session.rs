//! One running session: the protocol engine behind a lock, fed by the HTTP handlers
//! and by the clock, its actions sent through the transport.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kms_crypto::OperatorAddress;
use kms_protocol::messages::{Payload, SignedMessage};
use kms_protocol::{Action, Engine, ProtocolError, SessionKind, SessionParams};
use url::Url;

use crate::dealing::{DealingGuard, DealingState};
use crate::metrics::PhaseLabels;
use crate::node::{NodeShared, Refusal};

/// A session in progress on this node.
pub struct RunningSession {
    /// Its parameters.
    pub params: SessionParams,
    engine: Mutex<Engine>,
    /// Lets this node's dealing out only once it is recorded, and never a second one.
    guard: DealingGuard,
    /// Where each other participant is reached.
    urls: BTreeMap<OperatorAddress, Url>,
    /// When the last phase ends (Unix ms).
    pub end_ms: u64,
    /// Monotonic deadline for deliveries (end of the session plus one phase).
    pub deadline: Instant,
    /// `params.session_hash()`, for the checks before the engine.
    session_hash: [u8; 32],
    /// Messages and bytes admitted per network source.
    admitted: Mutex<BTreeMap<IpAddr, (usize, usize)>>,
}

impl RunningSession {
    /// Wraps a started engine, whose dealing `guard` screens.
    pub fn new(
        params: SessionParams,
        engine: Engine,
        guard: DealingGuard,
        urls: BTreeMap<OperatorAddress, Url>,
        end_ms: u64,
        now_ms: u64,
    ) -> Self {
        let remaining = end_ms.saturating_sub(now_ms) + params.schedule.phase_ms;
        let session_hash = params.session_hash();
        Self {
            session_hash,
            admitted: Mutex::new(BTreeMap::new()),
            params,
            engine: Mutex::new(engine),
            guard,
            urls,
            end_ms,
            deadline: Instant::now() + std::time::Duration::from_millis(remaining),
        }
    }

    /// The session timestamp.
    pub fn timestamp(&self) -> u64 {
        self.params.timestamp.0
    }

    /// DKG or reshare.
    pub fn kind(&self) -> SessionKind {
        self.params.kind
    }

    fn phase_label(&self, now_ms: u64) -> PhaseLabels {
        let s = self.params.schedule;
        let phase = now_ms.saturating_sub(s.start_ms) / s.phase_ms.max(1);
        PhaseLabels {
            kind: kind_label(self.params.kind).to_string(),
            phase: phase.to_string(),
        }
    }

    /// Runs `f` on the engine on a blocking thread (verification can take a while),
    /// timing it into the phase histogram.
    async fn with_engine<T: Send + 'static>(
        self: &Arc<Self>,
        shared: &Arc<NodeShared>,
        f: impl FnOnce(&mut Engine, u64) -> T + Send + 'static,
    ) -> T {
        let this = self.clone();
        let shared2 = shared.clone();
        tokio::task::spawn_blocking(move || {
            let now = shared2.clock.now_ms();
            let started = Instant::now();
            let mut engine = this.engine.lock().unwrap_or_else(|p| p.into_inner());
            let out = f(&mut engine, now);
            shared2
                .metrics
                .phase_seconds
                .get_or_create(&this.phase_label(now))
                .observe(started.elapsed().as_secs_f64());
            out
        })
        .await
        .expect("engine call does not panic")
    }

    /// What this node records on-chain as a dealer of this session (its commitment
    /// hash and the hashes of the acks it received; nothing if its dealing was not
    /// sent), and the fraud evidence it gathered.
    pub fn chain_record(&self) -> ChainRecord {
        let e = self.engine.lock().unwrap_or_else(|p| p.into_inner());
        let sent = self.guard.state() == DealingState::Recorded;
        ChainRecord {
            dealt: e.dealer_record().filter(|_| sent),
            evidence: e.evidence().to_vec(),
            received: e.received_commitments(),
        }
    }

    /// Messages the engine took into a batch and then dropped for a bad signature.
    pub fn bad_signatures(&self) -> u64 {
        self.engine
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .bad_signatures()
    }

    /// Starts the engine.
    pub async fn start(self: &Arc<Self>, shared: &Arc<NodeShared>) {
        let actions = self.with_engine(shared, |e, now| e.start(now)).await;
        self.dispatch(shared, actions).await;
    }

    /// Advances the clock.
    pub async fn tick(self: &Arc<Self>, shared: &Arc<NodeShared>) {
        let actions = self.with_engine(shared, |e, now| e.tick(now)).await;
        self.dispatch(shared, actions).await;
    }

    /// Checks that cost nothing, before a message reaches the engine (where its points
    /// are decoded and its signature checked): its signer is a participant and its
    /// author, it names this session's hash, a commitment has exactly the session's
    /// number of coefficients, and its network source has not sent more than
    /// [`source_quota`] messages or [`SOURCE_QUOTA_BYTES`] into the session. The quota
    /// is per source address, not per claimed signer, so that a forger cannot use up
    /// an honest operator's allowance by sending in its name.
    pub fn admit(
        &self,
        source: Option<IpAddr>,
        payload: &Payload,
        message: &SignedMessage,
    ) -> Result<(), Refusal> {
        let p = &self.params;
        let signer = message.signer;
        if !p.dealers.contains(&signer) && !p.players.contains(&signer) {
            return Err(Refusal::NotParticipant);
        }
        if payload.author() != signer {
            return Err(Refusal::Misshapen("the signer is not the payload's author"));
        }
        if payload.session().1 != self.session_hash {
            return Err(Refusal::Misshapen("the message names another session hash"));
        }
        if let Payload::Commitment(c) = payload
            && c.commitment.len() != p.players.threshold()
        {
            return Err(Refusal::Misshapen(
                "a commitment with another number of coefficients than the session's threshold",
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
    ) -> Result<(), ProtocolError> {
        let (result, actions) = self
            .with_engine(shared, move |e, now| match e.handle(now, &message) {
                Ok(a) => (Ok(()), a),
                Err(err) => (Err(err), e.tick(now)),
            })
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
                    for (to, message) in outgoing(shared, to, message) {
                        let urls: Vec<Url> = if to.is_zero() {
                            self.urls
                                .iter()
                                .filter(|(a, _)| **a != shared.address)
                                .map(|(_, u)| u.clone())
                                .collect()
                        } else {
                            self.urls.get(&to).cloned().into_iter().collect()
                        };
                        shared
                            .transport
                            .send(self.params.kind, &message, &urls, self.deadline);
                    }
                }
                Action::Evidence(ev) => {
                    shared.metrics.fraud_evidence.inc();
                    tracing::warn!(
                        session = self.timestamp(),
                        dealer = %ev.dealer(),
                        kind = ev.kind(),
                        "fraud evidence against a dealer"
                    );
                    shared
                        .evidence
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((self.timestamp(), *ev));
                }
                Action::Done(result) => {
                    shared.clone().finish_session(self.clone(), result).await;
                }
            }
        }
    }
}

/// What actually goes out for one engine send: the message itself, or what the
/// fault-injection behaviour of a test build makes of it.
fn outgoing(
    shared: &NodeShared,
    to: OperatorAddress,
    message: SignedMessage,
) -> Vec<(OperatorAddress, SignedMessage)> {
    let Some(fault) = &shared.fault else {
        return vec![(to, message)];
    };
    let mut fault = fault.lock().unwrap_or_else(|p| p.into_inner());
    rewrite(&mut fault, to, message)
}

#[cfg(feature = "fault-injection")]
fn rewrite(
    fault: &mut crate::node::Fault,
    to: OperatorAddress,
    message: SignedMessage,
) -> Vec<(OperatorAddress, SignedMessage)> {
    fault
        .outgoing(to, message)
        .into_iter()
        .map(|(to, m, _delay)| (to, m))
        .collect()
}

#[cfg(not(feature = "fault-injection"))]
fn rewrite(
    fault: &mut crate::node::Fault,
    _: OperatorAddress,
    _: SignedMessage,
) -> Vec<(OperatorAddress, SignedMessage)> {
    match *fault {}
}

/// A dealer's on-chain record: its phase-1 commitment hash and the ack message hashes.
pub type DealerRecord = ([u8; 32], Vec<[u8; 32]>);

/// What a session leaves for the chain.
pub struct ChainRecord {
    /// This node's own record as a dealer.
    pub dealt: Option<DealerRecord>,
    /// Fraud evidence gathered.
    pub evidence: Vec<kms_protocol::FraudEvidence>,
    /// The other dealers' signed phase-1 commitments and their hashes, to compare
    /// with what they record.
    pub received: Vec<(OperatorAddress, SignedMessage, [u8; 32])>,
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

/// Most messages one network source may send into a session. A participant sends each
/// other one at most a commitment per phase, a share, its acks, a complaint per dealer
/// and its coin messages, and retries repeat some: `4·(n + 16)` per participant. Nodes
/// may share an address (a cluster on one host, a NAT), so a source is allowed that
/// for every participant.
pub fn source_quota(p: &SessionParams) -> usize {
    let n = p.dealers.len().max(p.players.len());
    4 * (n + 16) * (p.dealers.len() + p.players.len())
}

#[cfg(test)]
mod tests {
    use kms_protocol::sim::SimOperator;
    use kms_protocol::{Schedule, SessionTimestamp, VssMode};

    use super::*;

    /// A session of four simulated operators at operator 1, and operator 0's first
    /// messages (its commitment and shares).
    fn setup() -> (
        RunningSession,
        Vec<SignedMessage>,
        Vec<SimOperator>,
        tempfile::TempDir,
    ) {
        let ops = SimOperator::generate(4, 9);
        let schedule = Schedule {
            start_ms: 1_000_000,
            phase_ms: 1_000,
        };
        let params = SessionParams::dkg(
            SessionTimestamp(1_000),
            VssMode::Feldman,
            ops.iter().map(SimOperator::participant).collect(),
            schedule,
        )
        .unwrap();
        let dealer = Engine::new(
            params.clone(),
            ops[0].address,
            ops[0].signer.clone(),
            None,
            [1; 32],
        )
        .unwrap()
        .start(1_000_000);
        let sent: Vec<SignedMessage> = dealer
            .into_iter()
            .filter_map(|a| match a {
                Action::Send { message, .. } => Some(message),
                _ => None,
            })
            .collect();
        let engine = Engine::new(
            params.clone(),
            ops[1].address,
            ops[1].signer.clone(),
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
            ops[1].address,
            params.timestamp.0,
            params.session_hash(),
        );
        let session =
            RunningSession::new(params, engine, guard, BTreeMap::new(), 1_010_000, 1_000_000);
        (session, sent, ops, dir)
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
        let (s, sent, ops, _dir) = setup();
        let commitment = sent
            .iter()
            .find(|m| matches!(m.peek(), Ok(Payload::Commitment(_))))
            .unwrap()
            .clone();
        let payload = commitment.peek().unwrap();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(reason(s.admit(Some(ip), &payload, &commitment)), "ok");

        // Too many coefficients (the 1,024-point forgery): refused undecoded.
        let Payload::Commitment(mut c) = payload.clone() else {
            unreachable!()
        };
        let word = c.commitment[0].clone();
        c.commitment = vec![word; 1_024];
        let long = Payload::Commitment(c);
        let mut forged = commitment.clone();
        forged.payload = long.encode();
        assert_eq!(reason(s.admit(Some(ip), &long, &forged)), "misshapen");

        // Another session's hash, another author than the signer, a stranger.
        let Payload::Commitment(mut c) = payload.clone() else {
            unreachable!()
        };
        c.sessionHash = [9u8; 32].into();
        assert_eq!(
            reason(s.admit(Some(ip), &Payload::Commitment(c), &commitment)),
            "misshapen"
        );
        let mut renamed = commitment.clone();
        renamed.signer = ops[2].address;
        assert_eq!(reason(s.admit(Some(ip), &payload, &renamed)), "misshapen");
        let stranger = SimOperator::generate(1, 99).remove(0);
        let mut foreign = commitment.clone();
        foreign.signer = stranger.address;
        assert_eq!(
            reason(s.admit(Some(ip), &payload, &foreign)),
            "not_participant"
        );

        // One source gets a session's worth of messages, then 429; another source is
        // not affected.
        let quota = source_quota(&s.params);
        for _ in 1..quota {
            assert_eq!(reason(s.admit(Some(ip), &payload, &commitment)), "ok");
        }
        assert_eq!(
            reason(s.admit(Some(ip), &payload, &commitment)),
            "over_quota"
        );
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(reason(s.admit(Some(other), &payload, &commitment)), "ok");
    }
}
