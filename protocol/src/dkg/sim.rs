//! A deterministic simulated network for v2 engines: seeded randomness, a virtual
//! clock, per-message delay and loss, and a Byzantine hook that sees every outgoing
//! message of a node with its kind and recipient and may drop it, delay it per
//! recipient, duplicate it or replace it. The node runs the same engines over HTTPS.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kms_crypto::signer::OperatorSigner;
use kms_crypto::vss::encryption::{EncryptionPublicKey, EncryptionSecretKey};
use kms_crypto::{OperatorAddress, Scalar};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sha3::{Digest, Keccak256};

use super::engine::{Action, Engine};
use super::evidence::Evidence;
use super::ids::{MessageHash, Recipient};
use super::roster::Keys;
use super::setup::{Deployment, Setup};
use super::wire::{self, Body, Kind};
use crate::messages::SignedMessage;
use crate::outcome::{SessionFailure, SessionOutcome};
use crate::session::{Participant, SessionParams};
use crate::sim::{SimOperator, process_cpu_time};

/// The deployment every simulated session belongs to.
pub const SIM_DEPLOYMENT: Deployment = Deployment {
    chain_id: 31337,
    registry: [0x11; 20],
    avs: [0x22; 20],
    operator_set_id: 0,
};

/// A simulated operator with its encryption key, and every simulated member's public
/// encryption key (what the roster of a session of these members is made of).
#[derive(Clone)]
pub struct SimMember {
    /// Address, signer, certificate cache.
    pub operator: SimOperator,
    /// Its encryption key.
    pub encryption: Arc<EncryptionSecretKey>,
    /// The public encryption keys of all members generated with it.
    pub directory: Arc<BTreeMap<OperatorAddress, EncryptionPublicKey>>,
}

impl SimMember {
    /// `n` operators with certified protocol keys and encryption keys.
    pub fn generate(n: usize, seed: u64) -> Vec<SimMember> {
        let ops = SimOperator::generate(n, seed);
        SimOperator::know_each_other(&ops);
        Self::with_keys(ops, seed)
    }

    /// The operators with fresh encryption keys.
    pub fn with_keys(ops: Vec<SimOperator>, seed: u64) -> Vec<SimMember> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x656e_6372_7970_7421);
        let keys: Vec<Arc<EncryptionSecretKey>> = ops
            .iter()
            .map(|_| Arc::new(EncryptionSecretKey::generate(&mut rng)))
            .collect();
        let directory: Arc<BTreeMap<_, _>> = Arc::new(
            ops.iter()
                .zip(&keys)
                .map(|(o, k)| (o.address, k.public_key()))
                .collect(),
        );
        ops.into_iter()
            .zip(keys)
            .map(|(operator, encryption)| SimMember {
                operator,
                encryption,
                directory: directory.clone(),
            })
            .collect()
    }

    /// This member's key announcement in `setup`'s session (signed now; its hash,
    /// of the payload alone, is the same at every call).
    pub fn key_announcement(&self, setup: &Setup) -> SignedMessage {
        Body::Key(wire::KeyAnnouncement {
            sessionTimestamp: setup.params.timestamp.0,
            sessionHash: wire::word(setup.hash().0),
            player: wire::to_sol(&self.address()),
            key: wire::bytes(&self.encryption.public_key().to_eip2537()),
        })
        .sign(self.operator.signer.as_ref())
    }

    /// The roster of `setup`'s session when every player among the members is in
    /// it: what honest engines agree on with every announcement delivered.
    pub fn roster(&self, setup: &Setup) -> Keys {
        let ts = setup.params.timestamp.0;
        let session = wire::word(setup.hash().0);
        setup
            .params
            .players
            .addresses()
            .filter_map(|p| {
                let key = self.directory.get(p)?;
                let payload = Body::Key(wire::KeyAnnouncement {
                    sessionTimestamp: ts,
                    sessionHash: session,
                    player: wire::to_sol(p),
                    key: wire::bytes(&key.to_eip2537()),
                })
                .encode();
                let hash = MessageHash(Keccak256::digest(&payload).into());
                Some((*p, (hash, *key)))
            })
            .collect()
    }

    /// The participant record.
    pub fn participant(&self) -> Participant {
        self.operator.participant()
    }

    /// The address.
    pub fn address(&self) -> OperatorAddress {
        self.operator.address
    }
}

fn next_engine_seed(rng: &mut ChaCha20Rng) -> [u8; 32] {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    seed
}

/// The engine seeds a [`Network`] over `net_seed` gives the session's participants,
/// in member order: what a single engine needs to replay one node of a recorded run.
pub fn engine_seeds(net_seed: u64, participants: usize) -> Vec<[u8; 32]> {
    let mut rng = ChaCha20Rng::seed_from_u64(net_seed);
    (0..participants)
        .map(|_| next_engine_seed(&mut rng))
        .collect()
}

/// A v2 setup over `params` in the simulated deployment.
pub fn setup(params: SessionParams) -> Setup {
    Setup::new(params, SIM_DEPLOYMENT)
}

/// One outgoing message of a Byzantine node, as its hook sees it.
pub struct Outgoing<'a> {
    /// The sender.
    pub from: OperatorAddress,
    /// The recipient (broadcasts are offered once per recipient).
    pub to: OperatorAddress,
    /// The message's kind.
    pub kind: Kind,
    /// The message.
    pub message: &'a SignedMessage,
    /// Virtual time of sending.
    pub now_ms: u64,
    /// The sender's signer, to forge replacements with.
    pub signer: &'a dyn OperatorSigner,
}

/// What becomes of one outgoing message: zero deliveries drop it, several duplicate
/// it; each names the message actually delivered (the original or a replacement) and
/// an extra delay.
pub type Deliveries = Vec<(SignedMessage, u64)>;

/// A Byzantine node's rewrite of what it sends.
pub trait Byzantine: Send {
    /// The fate of one outgoing message to one recipient.
    fn outgoing(&mut self, out: &Outgoing<'_>) -> Deliveries;
}

/// Any closure is a behaviour.
impl<F: FnMut(&Outgoing<'_>) -> Deliveries + Send> Byzantine for F {
    fn outgoing(&mut self, out: &Outgoing<'_>) -> Deliveries {
        self(out)
    }
}

/// Honest network conditions.
#[derive(Clone, Debug)]
pub struct Net {
    /// Seed of delays, loss and engine seeds.
    pub seed: u64,
    /// Minimum one-way delay.
    pub min_delay_ms: u64,
    /// Maximum one-way delay.
    pub max_delay_ms: u64,
    /// Loss probability in millionths.
    pub drop_ppm: u32,
    /// Hosts that delay their node's inbound traffic.
    pub slow: Vec<SlowInbound>,
    /// Keep every delivered message (for confidentiality checks).
    pub record: bool,
}

/// A host delaying every message to its node sent during a window (it controls the
/// node's network).
#[derive(Clone, Debug)]
pub struct SlowInbound {
    /// The node.
    pub node: OperatorAddress,
    /// Extra delay.
    pub extra_ms: u64,
    /// Messages sent from this time on...
    pub from_ms: u64,
    /// ...until this time.
    pub until_ms: u64,
}

impl Default for Net {
    fn default() -> Self {
        Self {
            seed: 1,
            min_delay_ms: 1,
            max_delay_ms: 20,
            drop_ppm: 0,
            slow: Vec::new(),
            record: false,
        }
    }
}

/// Per-node statistics.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Bytes sent (payload + signature, per recipient).
    pub bytes_sent: u64,
    /// Messages sent, per recipient.
    pub messages_sent: u64,
    /// Refusals by code.
    pub rejected: BTreeMap<&'static str, u64>,
    /// CPU time inside this node's engine.
    pub cpu: Duration,
    /// Wall time inside it.
    pub wall: Duration,
    /// Virtual time at which the node finished.
    pub done_at_ms: Option<u64>,
}

struct Node {
    engine: Engine,
    byzantine: Option<Box<dyn Byzantine>>,
    signer: Arc<dyn OperatorSigner>,
    stats: Stats,
    evidence: Vec<Evidence>,
    outcome: Option<Result<SessionOutcome, SessionFailure>>,
}

/// The simulated network of one session.
pub struct Network {
    nodes: BTreeMap<OperatorAddress, Node>,
    queue: BinaryHeap<Reverse<(u64, u64, OperatorAddress)>>,
    in_flight: BTreeMap<u64, SignedMessage>,
    seq: u64,
    now: u64,
    rng: ChaCha20Rng,
    net: Net,
    transcript: Vec<(OperatorAddress, OperatorAddress, SignedMessage)>,
}

impl Network {
    /// One engine per participant; `shares` gives reshare dealers their share.
    pub fn new(
        setup: &Setup,
        members: &[SimMember],
        shares: &BTreeMap<OperatorAddress, Scalar>,
        net: Net,
    ) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(net.seed);
        let params = &setup.params;
        let mut nodes = BTreeMap::new();
        for m in members {
            let a = m.address();
            if !params.dealers.contains(&a) && !params.players.contains(&a) {
                continue;
            }
            let seed = next_engine_seed(&mut rng);
            let engine = Engine::new(
                setup.clone(),
                a,
                m.operator.signer.clone(),
                m.encryption.clone(),
                shares.get(&a).cloned(),
                seed,
            )
            .expect("simulated engines start")
            .with_certificates(m.operator.certificates.clone());
            nodes.insert(
                a,
                Node {
                    engine,
                    byzantine: None,
                    signer: m.operator.signer.clone(),
                    stats: Stats::default(),
                    evidence: Vec::new(),
                    outcome: None,
                },
            );
        }
        Self {
            nodes,
            queue: BinaryHeap::new(),
            in_flight: BTreeMap::new(),
            seq: 0,
            now: params.schedule.start_ms,
            rng,
            net,
            transcript: Vec::new(),
        }
    }

    /// Makes a node Byzantine: its outgoing messages go through `b`.
    pub fn set_byzantine(&mut self, node: OperatorAddress, b: Box<dyn Byzantine>) {
        if let Some(n) = self.nodes.get_mut(&node) {
            n.byzantine = Some(b);
        }
    }

    /// Runs until every node finished or `until_ms`, bounded in events.
    pub fn run(&mut self, until_ms: u64) {
        self.run_observed(until_ms, || {});
    }

    /// [`Network::run`], calling `observe` between events (outside every node's
    /// timed work): a benchmark samples its floor there, alongside the session.
    pub fn run_observed(&mut self, until_ms: u64, mut observe: impl FnMut()) {
        let addrs: Vec<_> = self.nodes.keys().copied().collect();
        let start = self.now;
        for a in &addrs {
            self.with_engine(a, |e| e.start(start));
        }
        for _ in 0..2_000_000u64 {
            if self.nodes.values().all(|n| n.outcome.is_some()) {
                break;
            }
            observe();
            let next_msg = self.queue.peek().map(|Reverse((t, _, _))| *t);
            let next_tick = self
                .nodes
                .values()
                .filter(|n| n.outcome.is_none())
                .filter_map(|n| n.engine.next_deadline())
                .min();
            let next = match (next_msg, next_tick) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            if next > until_ms {
                break;
            }
            self.now = next.max(self.now);
            if next_msg == Some(next) {
                let Some(Reverse((_, seq, to))) = self.queue.pop() else {
                    break;
                };
                let Some(m) = self.in_flight.remove(&seq) else {
                    continue;
                };
                let now = self.now;
                let mut refused = None;
                self.with_engine(&to, |e| {
                    if let Err(r) = e.handle(now, m) {
                        refused = Some(r);
                    }
                });
                if let (Some(r), Some(n)) = (refused, self.nodes.get_mut(&to)) {
                    *n.stats.rejected.entry(r.code()).or_default() += 1;
                }
            } else {
                let now = self.now;
                for a in &addrs {
                    if self.nodes[a].outcome.is_none()
                        && self.nodes[a]
                            .engine
                            .next_deadline()
                            .is_some_and(|d| d <= now)
                    {
                        self.with_engine(a, |e| e.tick(now));
                    }
                }
            }
        }
    }

    fn with_engine(&mut self, a: &OperatorAddress, f: impl FnOnce(&mut Engine)) {
        let Some(node) = self.nodes.get_mut(a) else {
            return;
        };
        if node.outcome.is_some() {
            // A finished node still answers fetches and relays: keep feeding it.
        }
        let cpu0 = process_cpu_time();
        let wall0 = Instant::now();
        f(&mut node.engine);
        let actions = node.engine.drain();
        for r in node.engine.take_refused() {
            *node.stats.rejected.entry(r.code()).or_default() += 1;
        }
        node.stats.cpu += process_cpu_time().saturating_sub(cpu0);
        node.stats.wall += wall0.elapsed();
        for action in actions {
            match action {
                Action::Send { to, message } => self.send(*a, to, message),
                Action::Evidence(e) => {
                    if let Some(n) = self.nodes.get_mut(a) {
                        n.evidence.push(*e);
                    }
                }
                Action::Done(r) => {
                    let now = self.now;
                    if let Some(n) = self.nodes.get_mut(a)
                        && n.outcome.is_none()
                    {
                        n.outcome = Some(r);
                        n.stats.done_at_ms = Some(now);
                    }
                }
            }
        }
    }

    fn send(&mut self, from: OperatorAddress, to: Recipient, message: SignedMessage) {
        let recipients: Vec<OperatorAddress> = match to {
            Recipient::All => self.nodes.keys().copied().filter(|a| *a != from).collect(),
            Recipient::One(a) => vec![a],
        };
        let kind = Body::decode(&message.payload).map(|b| b.kind()).ok();
        for r in recipients {
            let deliveries = match (self.nodes.get_mut(&from), kind) {
                (Some(node), Some(kind)) if node.byzantine.is_some() => {
                    let signer = node.signer.clone();
                    let out = Outgoing {
                        from,
                        to: r,
                        kind,
                        message: &message,
                        now_ms: self.now,
                        signer: signer.as_ref(),
                    };
                    node.byzantine
                        .as_mut()
                        .map(|b| b.outgoing(&out))
                        .unwrap_or_default()
                }
                _ => vec![(message.clone(), 0)],
            };
            for (m, extra) in deliveries {
                if self.net.drop_ppm > 0 && self.rng.next_u32() % 1_000_000 < self.net.drop_ppm {
                    continue;
                }
                let spread = self.net.max_delay_ms.saturating_sub(self.net.min_delay_ms) + 1;
                let slow: u64 = self
                    .net
                    .slow
                    .iter()
                    .filter(|s| s.node == r && (s.from_ms..s.until_ms).contains(&self.now))
                    .map(|s| s.extra_ms)
                    .sum();
                let delay = self.net.min_delay_ms + self.rng.next_u64() % spread + extra + slow;
                if self.net.record {
                    self.transcript.push((from, r, m.clone()));
                }
                if let Some(n) = self.nodes.get_mut(&from) {
                    n.stats.bytes_sent += (m.payload.len() + 64) as u64;
                    n.stats.messages_sent += 1;
                }
                self.seq += 1;
                self.in_flight.insert(self.seq, m);
                self.queue.push(Reverse((self.now + delay, self.seq, r)));
            }
        }
    }

    /// A node's outcome.
    pub fn outcome(&self, a: &OperatorAddress) -> Option<&Result<SessionOutcome, SessionFailure>> {
        self.nodes.get(a).and_then(|n| n.outcome.as_ref())
    }

    /// Every node's outcome.
    pub fn outcomes(
        &self,
    ) -> BTreeMap<OperatorAddress, Option<&Result<SessionOutcome, SessionFailure>>> {
        self.nodes
            .iter()
            .map(|(a, n)| (*a, n.outcome.as_ref()))
            .collect()
    }

    /// A node's statistics.
    pub fn stats(&self, a: &OperatorAddress) -> Option<&Stats> {
        self.nodes.get(a).map(|n| &n.stats)
    }

    /// The evidence a node produced.
    pub fn evidence(&self, a: &OperatorAddress) -> &[Evidence] {
        self.nodes.get(a).map_or(&[], |n| n.evidence.as_slice())
    }

    /// The engine of a node.
    pub fn engine(&self, a: &OperatorAddress) -> Option<&Engine> {
        self.nodes.get(a).map(|n| &n.engine)
    }

    /// Every message put on the wire (with `Net::record`).
    pub fn transcript(&self) -> &[(OperatorAddress, OperatorAddress, SignedMessage)] {
        &self.transcript
    }

    /// Virtual time now.
    pub fn now(&self) -> u64 {
        self.now
    }
}

/// A finished session: who held what.
pub struct Finished {
    /// The network after the run (outcomes, stats, evidence, transcript).
    pub network: Network,
    /// The members.
    pub members: Vec<SimMember>,
    /// The setup.
    pub setup: Setup,
}

/// A v2 session scenario: the set, the mode, the network, the Byzantine nodes.
pub struct Scenario {
    /// Session parameters.
    pub params: SessionParams,
    /// The members (a superset of the session's participants).
    pub members: Vec<SimMember>,
    /// Reshare dealers' current shares.
    pub shares: BTreeMap<OperatorAddress, Scalar>,
    /// Network conditions.
    pub net: Net,
    /// Byzantine nodes and their behaviour.
    pub byzantine: Vec<(OperatorAddress, Box<dyn Byzantine>)>,
    /// Virtual time limit.
    pub until_ms: u64,
}

impl Scenario {
    /// Runs it.
    pub fn run(self) -> Finished {
        let setup = setup(self.params);
        let mut network = Network::new(&setup, &self.members, &self.shares, self.net);
        for (a, b) in self.byzantine {
            network.set_byzantine(a, b);
        }
        network.run(self.until_ms);
        Finished {
            network,
            members: self.members,
            setup,
        }
    }
}

/// What the honest nodes of a finished session ended with.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Honest nodes with a new version.
    pub activated: usize,
    /// Honest nodes that failed (kept their previous version).
    pub failed: usize,
    /// Honest nodes still running at the time limit.
    pub unfinished: usize,
}

impl Finished {
    /// Checks agreement among the honest nodes (every honest node that activated
    /// holds the same public polynomial and qualified set, and its share lies on the
    /// polynomial) and that any `t` honest shares give the master key. `Err` names
    /// the violation.
    pub fn check(&self, honest: &[OperatorAddress]) -> Result<Verdict, String> {
        let mut v = Verdict::default();
        let mut seen: Option<(kms_crypto::Commitment, Vec<OperatorAddress>)> = None;
        let mut shares = Vec::new();
        for a in honest {
            match self.network.outcome(a) {
                None => v.unfinished += 1,
                Some(Err(_)) => v.failed += 1,
                Some(Ok(SessionOutcome::Departed { .. })) => {}
                Some(Ok(SessionOutcome::NewVersion(k))) => {
                    v.activated += 1;
                    let x = self
                        .setup
                        .params
                        .players
                        .evaluation_point(a)
                        .ok_or("a non-player activated")?;
                    if k.commitment.evaluate(x) != kms_crypto::G2Point::mul_generator(&k.share) {
                        return Err(format!("{a}: share off its polynomial"));
                    }
                    shares.push((x.clone(), k.share.clone()));
                    match &seen {
                        None => seen = Some((k.commitment.clone(), k.qualified_dealers.clone())),
                        Some((c, q)) => {
                            if *c != k.commitment || *q != k.qualified_dealers {
                                return Err(format!("{a}: activated a different version"));
                            }
                        }
                    }
                }
            }
        }
        let t = self.setup.params.players.threshold();
        if let Some((c, _)) = &seen
            && shares.len() >= t
        {
            let s =
                kms_crypto::poly::interpolate_at_zero(&shares[..t]).map_err(|e| e.to_string())?;
            if kms_crypto::G2Point::mul_generator(&s) != *c.constant() {
                return Err("honest shares do not give the master key".into());
            }
        }
        Ok(v)
    }

    /// The honest nodes' shares, by address (for a following reshare).
    pub fn shares(&self) -> BTreeMap<OperatorAddress, Scalar> {
        self.network
            .outcomes()
            .into_iter()
            .filter_map(|(a, o)| match o {
                Some(Ok(SessionOutcome::NewVersion(k))) => Some((a, k.share.clone())),
                _ => None,
            })
            .collect()
    }

    /// The agreed public polynomial, if anyone activated.
    pub fn commitment(&self) -> Option<kms_crypto::Commitment> {
        self.network.outcomes().into_values().find_map(|o| match o {
            Some(Ok(SessionOutcome::NewVersion(k))) => Some(k.commitment.clone()),
            _ => None,
        })
    }
}
