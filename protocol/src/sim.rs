//! A deterministic simulated network that drives `n` engines in one process: seeded
//! randomness, a virtual clock, per-message delay, drop, reordering and partitions,
//! and hooks to make a node Byzantine. The node runs the same engines over HTTP.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kms_crypto::OperatorAddress;
use kms_crypto::signer::{Bn254SecretKey, Bn254Signer, CertifiedSigner, OperatorSigner};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::certificates::CertificateCache;
use crate::engine::{Action, Engine};
use crate::evidence::FraudEvidence;
use crate::messages::SignedMessage;
use crate::outcome::{SessionFailure, SessionOutcome};
use crate::session::{Participant, SessionParams};

/// A node's operator identity for simulations: address and BN254 signer.
#[derive(Clone)]
pub struct SimOperator {
    /// The address.
    pub address: OperatorAddress,
    /// Its signer.
    pub signer: Arc<dyn OperatorSigner>,
    /// The protocol-key certificates its node has checked (kept across sessions, as
    /// a node keeps them for its lifetime).
    pub certificates: Arc<CertificateCache>,
}

impl SimOperator {
    /// `n` operators with deterministic BN254 keys and addresses, signing their
    /// messages with certified protocol keys, as nodes do.
    pub fn generate(n: usize, seed: u64) -> Vec<SimOperator> {
        // A stream of its own: the operator keys and addresses come from `seed`.
        let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x7072_6f74_6f63_6f6c);
        Self::generate_uncertified(n, seed)
            .into_iter()
            .map(|o| SimOperator {
                signer: Arc::new(CertifiedSigner::generate(
                    o.address,
                    o.signer.as_ref(),
                    0,
                    u64::MAX,
                    &mut rng,
                )),
                ..o
            })
            .collect()
    }

    /// Every operator's certificate checked once against its operator key and then
    /// remembered by every other operator: the state of nodes that have run a session
    /// together before (a node checks a peer's certificate the first time it hears
    /// from it, then never again while the certificate lasts). Operators that do not
    /// sign with a certified key are left alone.
    pub fn know_each_other(ops: &[SimOperator]) {
        for o in ops {
            let Some(c) = o.signer.protocol_certificate() else {
                continue;
            };
            let key = o.signer.public_key();
            assert!(
                c.verify(&key).is_ok(),
                "a simulated operator's certificate verifies"
            );
            for peer in ops.iter().filter(|p| p.address != o.address) {
                peer.certificates.insert(&key, c);
            }
        }
    }

    /// `n` operators with deterministic BN254 keys and addresses that sign their
    /// messages with the operator key itself.
    pub fn generate_uncertified(n: usize, seed: u64) -> Vec<SimOperator> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut ops: Vec<SimOperator> = (0..n)
            .map(|_| {
                let mut a = [0u8; 20];
                rng.fill_bytes(&mut a);
                let signer: Arc<dyn OperatorSigner> =
                    Arc::new(Bn254Signer::new(Bn254SecretKey::random(&mut rng)));
                SimOperator {
                    address: OperatorAddress::from_bytes(a),
                    signer,
                    certificates: Arc::default(),
                }
            })
            .collect();
        ops.sort_by_key(|o| o.address);
        ops
    }

    /// The session participant record.
    pub fn participant(&self) -> Participant {
        Participant {
            address: self.address,
            public_key: self.signer.public_key(),
        }
    }
}

/// Rewrites what a Byzantine node sends. Gets each outgoing `(recipient, message)`
/// (recipient zero = broadcast) and returns what actually goes out, with delays.
pub trait Behaviour: Send {
    /// Transforms one outgoing message into zero or more deliveries
    /// `(recipient, message, extra delay in ms)`.
    fn outgoing(
        &mut self,
        to: OperatorAddress,
        message: SignedMessage,
    ) -> Vec<(OperatorAddress, SignedMessage, u64)>;
}

/// Network conditions.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Seed of all randomness (delays, drops, engine seeds).
    pub seed: u64,
    /// Minimum one-way delay.
    pub min_delay_ms: u64,
    /// Maximum one-way delay (uniform; a spread reorders messages).
    pub max_delay_ms: u64,
    /// Probability of dropping a message, in millionths.
    pub drop_ppm: u32,
    /// Partitions: `(from_ms, until_ms, side)`; messages between `side` and the rest
    /// are dropped during the window.
    pub partitions: Vec<(u64, u64, Vec<OperatorAddress>)>,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            min_delay_ms: 5,
            max_delay_ms: 50,
            drop_ppm: 0,
            partitions: Vec::new(),
        }
    }
}

/// Per-node statistics of a run.
#[derive(Clone, Debug, Default)]
pub struct NodeStats {
    /// Bytes this node put on the wire (payload + signature, per recipient).
    pub bytes_sent: u64,
    /// Messages sent (per recipient).
    pub messages_sent: u64,
    /// Messages this node rejected, by reason.
    pub rejected: BTreeMap<&'static str, u64>,
    /// Wall-clock time spent inside this node's engine.
    pub wall: Duration,
    /// CPU time of the process (every thread: blst runs large multi-scalar
    /// multiplications on a pool) while inside this node's engine. The engines run one
    /// at a time, so this is the node's CPU time, unaffected by time the machine gave
    /// to others.
    pub cpu: Duration,
}

/// CPU time used by this process so far, all threads.
pub fn process_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec; CLOCK_PROCESS_CPUTIME_ID exists on every platform
    // the project builds for (Linux).
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

struct SimNode {
    engine: Engine,
    behaviour: Option<Box<dyn Behaviour>>,
    stats: NodeStats,
    evidence: Vec<FraudEvidence>,
}

/// The simulated network.
pub struct Network {
    nodes: BTreeMap<OperatorAddress, SimNode>,
    queue: BinaryHeap<Reverse<(u64, u64, OperatorAddress, usize)>>,
    in_flight: Vec<Option<SignedMessage>>,
    seq: u64,
    now: u64,
    rng: ChaCha20Rng,
    config: NetConfig,
}

impl Network {
    /// One engine per operator of `params`; `shares` gives reshare dealers their
    /// current share.
    pub fn new(
        params: &SessionParams,
        operators: &[SimOperator],
        mut shares: BTreeMap<OperatorAddress, kms_crypto::Scalar>,
        config: NetConfig,
    ) -> Result<Self, crate::ProtocolError> {
        let mut rng = ChaCha20Rng::seed_from_u64(config.seed);
        let mut nodes = BTreeMap::new();
        for op in operators {
            if !params.dealers.contains(&op.address) && !params.players.contains(&op.address) {
                continue;
            }
            let mut seed = [0u8; 32];
            rng.fill_bytes(&mut seed);
            let engine = Engine::new(
                params.clone(),
                op.address,
                op.signer.clone(),
                shares.remove(&op.address),
                seed,
            )?
            .with_certificates(op.certificates.clone());
            nodes.insert(
                op.address,
                SimNode {
                    engine,
                    behaviour: None,
                    stats: NodeStats::default(),
                    evidence: Vec::new(),
                },
            );
        }
        Ok(Self {
            nodes,
            queue: BinaryHeap::new(),
            in_flight: Vec::new(),
            seq: 0,
            now: params.schedule.start_ms,
            rng,
            config,
        })
    }

    /// Makes `node` Byzantine.
    pub fn set_behaviour(&mut self, node: OperatorAddress, b: Box<dyn Behaviour>) {
        if let Some(n) = self.nodes.get_mut(&node) {
            n.behaviour = Some(b);
        }
    }

    fn partitioned(&self, a: &OperatorAddress, b: &OperatorAddress) -> bool {
        self.config.partitions.iter().any(|(from, until, side)| {
            self.now >= *from && self.now < *until && (side.contains(a) != side.contains(b))
        })
    }

    fn enqueue(
        &mut self,
        from: OperatorAddress,
        to: OperatorAddress,
        m: SignedMessage,
        extra: u64,
    ) {
        let recipients: Vec<OperatorAddress> = if to.is_zero() {
            self.nodes.keys().copied().filter(|a| *a != from).collect()
        } else {
            vec![to]
        };
        let size = (m.payload.len() + m.signature.to_bytes().len() + 20) as u64;
        for r in recipients {
            if let Some(n) = self.nodes.get_mut(&from) {
                n.stats.bytes_sent += size;
                n.stats.messages_sent += 1;
            }
            if self.partitioned(&from, &r)
                || (self.rng.next_u32() % 1_000_000) < self.config.drop_ppm
            {
                continue;
            }
            let span = self
                .config
                .max_delay_ms
                .saturating_sub(self.config.min_delay_ms)
                + 1;
            let delay = self.config.min_delay_ms + self.rng.next_u64() % span + extra;
            self.seq += 1;
            self.in_flight.push(Some(m.clone()));
            self.queue.push(Reverse((
                self.now + delay,
                self.seq,
                r,
                self.in_flight.len() - 1,
            )));
        }
    }

    fn apply(&mut self, from: OperatorAddress, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Send { to, message } => {
                    let out = match self.nodes.get_mut(&from).and_then(|n| n.behaviour.as_mut()) {
                        Some(b) => b.outgoing(to, message),
                        None => vec![(to, message, 0)],
                    };
                    for (to, m, extra) in out {
                        self.enqueue(from, to, m, extra);
                    }
                }
                Action::Evidence(e) => {
                    if let Some(n) = self.nodes.get_mut(&from) {
                        n.evidence.push(*e);
                    }
                }
                Action::Done(_) => {}
            }
        }
    }

    fn timed<T>(&mut self, who: OperatorAddress, f: impl FnOnce(&mut Engine, u64) -> T) -> T {
        let now = self.now;
        let node = self.nodes.get_mut(&who).expect("node exists");
        let (t0, c0) = (Instant::now(), process_cpu_time());
        let r = f(&mut node.engine, now);
        node.stats.cpu += process_cpu_time().saturating_sub(c0);
        node.stats.wall += t0.elapsed();
        r
    }

    /// Runs until every engine finished or the virtual clock passes `until_ms`.
    pub fn run(&mut self, until_ms: u64) {
        self.run_observed(until_ms, || {});
    }

    /// [`Network::run`], calling `observe` between any two steps (a delivery or a
    /// round of ticks), outside the nodes' timed work — a benchmark samples the
    /// machine's speed there while the session runs.
    pub fn run_observed(&mut self, until_ms: u64, mut observe: impl FnMut()) {
        let addrs: Vec<OperatorAddress> = self.nodes.keys().copied().collect();
        for a in &addrs {
            let actions = self.timed(*a, |e, now| e.start(now));
            self.apply(*a, actions);
        }
        let schedule = self
            .nodes
            .values()
            .next()
            .map(|n| n.engine.params().schedule);
        let Some(schedule) = schedule else { return };
        // Nodes tick at every deadline and halfway through every phase (a real node
        // ticks every 50 ms; the engine acts on deadlines and phase mid-points).
        let mut next_phase = 0u64;
        let mut half_done = false;
        loop {
            if self.nodes.values().all(|n| n.engine.outcome().is_some()) || self.now > until_ms {
                break;
            }
            let end = schedule.phase_end(next_phase);
            let deadline = if half_done {
                end
            } else {
                end.saturating_sub(schedule.phase_ms / 2)
            };
            let next_msg = self.queue.peek().map(|Reverse((t, ..))| *t);
            match next_msg {
                Some(t) if t < deadline => {
                    let Reverse((t, _, to, idx)) = self.queue.pop().expect("peeked");
                    self.now = t;
                    let m = self.in_flight[idx].take().expect("delivered once");
                    let r = self.timed(to, |e, now| e.handle(now, &m));
                    match r {
                        Ok(actions) => self.apply(to, actions),
                        Err(e) => {
                            if let Some(n) = self.nodes.get_mut(&to) {
                                *n.stats.rejected.entry(e.reason()).or_default() += 1;
                            }
                        }
                    }
                    observe();
                }
                _ => {
                    self.now = deadline;
                    if half_done {
                        next_phase += 1;
                    }
                    half_done = !half_done;
                    for a in &addrs {
                        let actions = self.timed(*a, |e, now| e.tick(now));
                        self.apply(*a, actions);
                    }
                    observe();
                    if next_phase > 16 {
                        break;
                    }
                }
            }
        }
    }

    /// The outcome of `node`.
    pub fn outcome(
        &self,
        node: &OperatorAddress,
    ) -> Option<&Result<SessionOutcome, SessionFailure>> {
        self.nodes.get(node).and_then(|n| n.engine.outcome())
    }

    /// The engine of `node`.
    pub fn engine(&self, node: &OperatorAddress) -> Option<&Engine> {
        self.nodes.get(node).map(|n| &n.engine)
    }

    /// Statistics of `node`.
    pub fn stats(&self, node: &OperatorAddress) -> Option<&NodeStats> {
        self.nodes.get(node).map(|n| &n.stats)
    }

    /// Evidence `node` produced.
    pub fn evidence(&self, node: &OperatorAddress) -> &[FraudEvidence] {
        self.nodes
            .get(node)
            .map(|n| n.evidence.as_slice())
            .unwrap_or(&[])
    }

    /// Injects a message as if `to` received it now (replay tests).
    pub fn deliver_now(
        &mut self,
        to: OperatorAddress,
        m: &SignedMessage,
    ) -> Result<Vec<Action>, crate::ProtocolError> {
        self.timed(to, |e, now| e.handle(now, m))
    }
}

/// Byzantine behaviours for fault-injection tests: the simulated network and the node
/// (through its test hook) use the same ones, so a misbehaviour tested in-process is
/// the one tested over HTTP and on-chain.
pub mod byzantine {
    use std::sync::Arc;

    use kms_crypto::signer::OperatorSigner;
    use kms_crypto::vss::feldman::FeldmanDealing;
    use kms_crypto::{G2Point, OperatorAddress, Scalar};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::Behaviour;
    use crate::messages::{Payload, SignedMessage, commitment_words_hash, encode_commitment};

    type Deliveries = Vec<(OperatorAddress, SignedMessage, u64)>;

    /// Sends a corrupted (but correctly signed) share, `s + 1`, to every player in
    /// `victims`; the others get the honest one.
    pub struct InvalidShares {
        /// The Byzantine dealer.
        pub me: OperatorAddress,
        /// Its signer (the corrupted share is signed like any other).
        pub signer: Arc<dyn OperatorSigner>,
        /// Who gets a bad share.
        pub victims: Vec<OperatorAddress>,
    }

    impl Behaviour for InvalidShares {
        fn outgoing(&mut self, to: OperatorAddress, m: SignedMessage) -> Deliveries {
            if let Ok(Payload::Share(mut s)) = m.peek()
                && m.signer == self.me
                && self.victims.contains(&to)
                && let Ok(v) = Scalar::from_bytes_be(&s.share.0)
            {
                s.share = (&v + &Scalar::one()).to_bytes_be().into();
                let forged = SignedMessage::sign(&Payload::Share(s), self.me, self.signer.as_ref());
                return vec![(to, forged, 0)];
            }
            vec![(to, m, 0)]
        }
    }

    /// Shows the players in `fooled` a commitment to another polynomial than the one
    /// everyone else sees (both signed): equivocation.
    pub struct Equivocator {
        /// The Byzantine dealer.
        pub me: OperatorAddress,
        /// Its signer.
        pub signer: Arc<dyn OperatorSigner>,
        /// Every member of the session (the broadcast is split per recipient).
        pub everyone: Vec<OperatorAddress>,
        /// Who sees the other commitment.
        pub fooled: Vec<OperatorAddress>,
    }

    impl Behaviour for Equivocator {
        fn outgoing(&mut self, to: OperatorAddress, m: SignedMessage) -> Deliveries {
            let c = match m.peek() {
                Ok(Payload::Commitment(c))
                    if to.is_zero() && m.signer == self.me && c.phase == 1 =>
                {
                    c
                }
                _ => return vec![(to, m, 0)],
            };
            let mut rng = ChaCha20Rng::seed_from_u64(99);
            let Ok(other) =
                FeldmanDealing::new(Scalar::random(&mut rng), c.commitment.len(), &mut rng)
            else {
                return vec![(to, m, 0)];
            };
            let mut c2 = c.clone();
            c2.commitment = encode_commitment(other.commitment());
            let forged =
                SignedMessage::sign(&Payload::Commitment(c2), self.me, self.signer.as_ref());
            self.everyone
                .iter()
                .filter(|a| **a != self.me)
                .map(|a| {
                    let msg = if self.fooled.contains(a) {
                        forged.clone()
                    } else {
                        m.clone()
                    };
                    (*a, msg, 0)
                })
                .collect()
        }
    }

    /// Adds a point of order 13 to coefficient `coefficient` of its commitment of
    /// `phase` and re-signs the shares to name the tainted commitment: every share
    /// still lies on the G2 part, so only the torsion is wrong. Commitments are decoded
    /// with their subgroup check deferred; this is the dealer that tests it.
    pub struct TorsionCommitment {
        /// The Byzantine dealer.
        pub me: OperatorAddress,
        /// Its signer.
        pub signer: Arc<dyn OperatorSigner>,
        /// Which commitment: 1 (Feldman, or Pedersen phase 1) or 2 (Pedersen phase 2).
        pub phase: u8,
        /// Which coefficient gets the torsion.
        pub coefficient: usize,
        /// Hash of the genuine commitment → hash of the tainted one.
        pub renamed: Vec<([u8; 32], [u8; 32])>,
    }

    impl Behaviour for TorsionCommitment {
        fn outgoing(&mut self, to: OperatorAddress, m: SignedMessage) -> Deliveries {
            if m.signer != self.me {
                return vec![(to, m, 0)];
            }
            match m.peek() {
                Ok(Payload::Commitment(mut c)) if c.phase == self.phase => {
                    let Some(word) = c.commitment.get(self.coefficient) else {
                        return vec![(to, m, 0)];
                    };
                    let Ok(p) = G2Point::from_eip2537(word) else {
                        return vec![(to, m, 0)];
                    };
                    let before = commitment_words_hash(&c.commitment);
                    c.commitment[self.coefficient] = p
                        .add(&G2Point::small_order_point())
                        .to_eip2537()
                        .to_vec()
                        .into();
                    self.renamed
                        .push((before, commitment_words_hash(&c.commitment)));
                    let forged =
                        SignedMessage::sign(&Payload::Commitment(c), self.me, self.signer.as_ref());
                    vec![(to, forged, 0)]
                }
                Ok(Payload::Share(mut s)) if self.phase == 1 => {
                    let Some((_, a)) = self.renamed.iter().find(|(b, _)| *b == s.commitmentHash.0)
                    else {
                        return vec![(to, m, 0)];
                    };
                    s.commitmentHash = (*a).into();
                    let forged =
                        SignedMessage::sign(&Payload::Share(s), self.me, self.signer.as_ref());
                    vec![(to, forged, 0)]
                }
                _ => vec![(to, m, 0)],
            }
        }
    }

    /// Several behaviours in a row: what the first sends goes through the second, and
    /// so on (delays add up).
    pub struct Compose(pub Vec<Box<dyn Behaviour>>);

    impl Behaviour for Compose {
        fn outgoing(&mut self, to: OperatorAddress, m: SignedMessage) -> Deliveries {
            let mut out = vec![(to, m, 0)];
            for b in &mut self.0 {
                out = out
                    .into_iter()
                    .flat_map(|(to, m, delay)| {
                        b.outgoing(to, m)
                            .into_iter()
                            .map(move |(t, m, d)| (t, m, delay + d))
                    })
                    .collect();
            }
            out
        }
    }
}
