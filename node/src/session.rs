//! One running session: the protocol engine behind a lock, fed by the HTTP handlers
//! and by the clock, its actions sent through the transport.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kms_crypto::OperatorAddress;
use kms_protocol::messages::SignedMessage;
use kms_protocol::{Action, Engine, ProtocolError, SessionKind, SessionParams};
use url::Url;

use crate::metrics::PhaseLabels;
use crate::node::NodeShared;

/// A session in progress on this node.
pub struct RunningSession {
    /// Its parameters.
    pub params: SessionParams,
    engine: Mutex<Engine>,
    /// Where each other participant is reached.
    urls: BTreeMap<OperatorAddress, Url>,
    /// When the last phase ends (Unix ms).
    pub end_ms: u64,
    /// Monotonic deadline for deliveries (end of the session plus one phase).
    pub deadline: Instant,
}

impl RunningSession {
    /// Wraps a started engine.
    pub fn new(
        params: SessionParams,
        engine: Engine,
        urls: BTreeMap<OperatorAddress, Url>,
        end_ms: u64,
        now_ms: u64,
    ) -> Self {
        let remaining = end_ms.saturating_sub(now_ms) + params.schedule.phase_ms;
        Self {
            params,
            engine: Mutex::new(engine),
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
    /// hash and the hashes of the acks it received), and the fraud evidence it gathered.
    pub fn chain_record(&self) -> ChainRecord {
        let e = self.engine.lock().unwrap_or_else(|p| p.into_inner());
        ChainRecord {
            dealt: e.dealer_record(),
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
