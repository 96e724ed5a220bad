//! A deterministic simulated network for the agreement: seeded randomness, a virtual
//! clock, per-message delay, drop and reordering, late validity verdicts, Byzantine
//! voters, and one observer. [`run`] returns what happened; the checks of safety and
//! termination are in [`Outcome`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};

use kms_crypto::OperatorAddress;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use super::super::*;
use super::outcome::Outcome;

/// A message on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Msg {
    Proposal(Proposal),
    Vote(Vote),
}

impl Msg {
    fn round(&self) -> Round {
        match self {
            Msg::Proposal(p) => p.round,
            Msg::Vote(v) => v.round,
        }
    }

    fn value(&self) -> Option<ValueId> {
        match self {
            Msg::Proposal(p) => Some(p.value),
            Msg::Vote(v) => v.value,
        }
    }
}

/// The sim's signed message: who signed what. Nobody can sign for another voter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Signed {
    signer: usize,
    msg: Msg,
}

/// How a Byzantine voter misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Byzantine {
    /// Sends nothing.
    Silent,
    /// As proposer, sends one value to half the nodes and another to the rest, with a
    /// made-up `valid_round` now and then, and votes both ways; otherwise votes the
    /// round's proposal to half the nodes and nil to the rest.
    Equivocator,
    /// Prevotes and precommits every value it hears of, in every round, to everyone;
    /// as proposer, proposes a value of its own.
    VotesForEverything,
}

/// Validity of the values Byzantine voters make up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ByzantineValues {
    /// Each value is valid everywhere or invalid everywhere, as hosts that check the
    /// same rules agree.
    Consistent,
    /// Each honest node judges each value on its own: safety must not care.
    Split,
}

/// Network and host behaviour.
#[derive(Clone, Copy, Debug)]
pub(super) struct Network {
    /// Delays are uniform in `1..=max_delay` ms.
    pub max_delay: u64,
    /// Before `gst`, a message is dropped with this probability (per mille) and, with
    /// the same probability, delayed to arrive around one of the timeouts.
    pub chaos_per_mille: u32,
    /// From this time on, delays stay within `max_delay`.
    pub gst: u64,
    /// Dropped messages are lost for good; otherwise they arrive shortly after `gst`
    /// (a host that retransmits).
    pub lossy: bool,
    /// Verdicts on a value arrive up to this long after the host is asked.
    pub max_verdict_delay: u64,
    /// Nodes start up to this long after round 0's start.
    pub max_start_skew: u64,
    /// A valid value is first judged invalid (then valid, within the verdict delay
    /// again) with this probability (per mille).
    pub flaky_verdicts_per_mille: u32,
}

/// One simulated session.
#[derive(Clone, Debug)]
pub(super) struct Scenario {
    pub n: usize,
    pub byzantine: Vec<(usize, Byzantine)>,
    pub values: ByzantineValues,
    pub network: Network,
    pub max_rounds: u32,
    pub seed: u64,
    /// Overrides [`quorum`] (to show what a smaller one breaks).
    pub quorum: Option<usize>,
}

pub(super) const TIMEOUTS: Timeouts = Timeouts {
    propose_ms: 40,
    prevote_ms: 20,
    precommit_ms: 20,
    increment_ms: 10,
};

/// Bounds each run, whatever the scenario.
const MAX_EVENTS: usize = 400_000;

pub(super) fn addr(i: usize) -> OperatorAddress {
    let mut b = [0u8; 20];
    b[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    OperatorAddress::from_bytes(b)
}

pub(super) fn index(a: &OperatorAddress) -> usize {
    let b: [u8; 8] = a.as_bytes()[..8].try_into().unwrap();
    u64::from_be_bytes(b) as usize - 1
}

/// Value ids carry their origin: byte 0 is 1 for honest values, 2 for Byzantine ones.
fn value(origin: u8, node: usize, round: Round, variant: u8) -> ValueId {
    let mut b = [0u8; 32];
    b[0] = origin;
    b[1..9].copy_from_slice(&(node as u64).to_be_bytes());
    b[9..13].copy_from_slice(&round.0.to_be_bytes());
    b[13] = variant;
    ValueId(b)
}

/// What the host's signature checks leave of a proposal's justification: the
/// signers of genuine prevotes for its value in its `valid_round`.
fn polka_signers(p: &Proposal, justification: &[Signed]) -> Vec<OperatorAddress> {
    let Some(vr) = p.valid_round else {
        return vec![];
    };
    let prevote = Msg::Vote(Vote {
        round: vr,
        kind: VoteKind::Prevote,
        value: Some(p.value),
    });
    justification
        .iter()
        .filter(|s| s.msg == prevote)
        .map(|s| addr(s.signer))
        .collect()
}

enum Event {
    Start,
    /// A message; a proposal comes with the signed prevotes that justify it.
    Deliver {
        from: usize,
        signed: Signed,
        justification: Vec<Signed>,
    },
    Certificate(Certificate<Signed>),
    Verdict(ValueId, Validity),
    Propose(Round),
    Timer,
}

struct Byz {
    kind: Byzantine,
    rounds: BTreeSet<Round>,
    voted: BTreeSet<(Round, ValueId)>,
}

struct World {
    s: Scenario,
    q: usize,
    rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: BTreeMap<u64, Event>,
    /// Honest voters and the observer (index n); `None` for Byzantine voters.
    nodes: Vec<Option<Agreement<Signed>>>,
    byz: BTreeMap<usize, Byz>,
    timers: Vec<Option<u64>>,
    /// Consistent validity of Byzantine values, decided on first use.
    byz_validity: BTreeMap<ValueId, Validity>,
    out: Outcome,
}

/// Runs one scenario to quiescence (or the event bound).
pub(super) fn run(s: Scenario) -> Outcome {
    let q = s
        .quorum
        .unwrap_or_else(|| quorum(s.n, (2 * s.n).div_ceil(3)).unwrap());
    let byzantine: BTreeSet<usize> = s.byzantine.iter().map(|b| b.0).collect();
    let voters: Vec<_> = (0..s.n).map(addr).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
    let offset = rng.next_u64();
    let nodes = (0..=s.n)
        .map(|i| {
            (!byzantine.contains(&i)).then(|| {
                Agreement::new(Config {
                    voters: voters.clone(),
                    me: (i < s.n).then(|| addr(i)),
                    quorum: q,
                    offset,
                    start_ms: 0,
                    timeouts: TIMEOUTS,
                    max_rounds: s.max_rounds,
                })
                .unwrap()
            })
        })
        .collect();
    let byz = s
        .byzantine
        .iter()
        .map(|&(i, kind)| {
            let b = Byz {
                kind,
                rounds: BTreeSet::new(),
                voted: BTreeSet::new(),
            };
            (i, b)
        })
        .collect();
    let out = Outcome {
        n: s.n,
        quorum: q,
        byzantine,
        ..Outcome::default()
    };
    let mut w = World {
        timers: vec![None; s.n + 1],
        s,
        q,
        rng,
        now: 0,
        seq: 0,
        queue: BinaryHeap::new(),
        events: BTreeMap::new(),
        nodes,
        byz,
        byz_validity: BTreeMap::new(),
        out,
    };
    for i in 0..=w.s.n {
        let at = w.below(w.s.network.max_start_skew + 1);
        w.push(at, i, Event::Start);
    }
    while let Some(Reverse((at, seq, to))) = w.queue.pop() {
        w.out.events += 1;
        if w.out.events > MAX_EVENTS || w.settled() {
            break;
        }
        w.now = at;
        let event = w.events.remove(&seq).expect("queued event");
        if w.nodes[to].is_some() {
            w.honest(to, event);
        } else {
            w.byzantine(to, event);
        }
    }
    w.out
}

impl World {
    fn below(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n.max(1)
    }

    fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < u64::from(per_mille)
    }

    fn push(&mut self, at: u64, to: usize, e: Event) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, to)));
        self.events.insert(self.seq, e);
    }

    /// Every honest node has decided: nothing more can change the outcome.
    fn settled(&self) -> bool {
        (0..=self.s.n).all(|i| self.nodes[i].is_none() || self.out.decisions.contains_key(&i))
    }

    /// Queues `e` for `to` after a network delay, or drops it.
    fn send(&mut self, to: usize, e: Event) {
        let net = self.s.network;
        let mut delay = 1 + self.below(net.max_delay);
        if self.now < net.gst && self.chance(net.chaos_per_mille) {
            if net.lossy {
                return;
            }
            delay = net.gst - self.now + 1 + self.below(net.max_delay);
        } else if self.now < net.gst && self.chance(net.chaos_per_mille) {
            // Land around a timeout of a round near the message's.
            let r = Round(self.below(4) as u32);
            let t = match self.below(3) {
                0 => TIMEOUTS.propose(r),
                1 => TIMEOUTS.prevote(r),
                _ => TIMEOUTS.precommit(r),
            };
            delay = (t + self.below(5)).saturating_sub(2).max(1);
        }
        self.push(self.now + delay, to, e);
    }

    fn broadcast(&mut self, from: usize, signed: &Signed, justification: &[Signed]) {
        for to in (0..=self.s.n).filter(|&to| to != from) {
            let signed = signed.clone();
            let justification = justification.to_vec();
            let e = Event::Deliver {
                from,
                signed,
                justification,
            };
            self.send(to, e);
        }
    }

    fn honest(&mut self, i: usize, event: Event) {
        let now = self.now;
        let a = self.nodes[i].as_mut().unwrap();
        let result = match event {
            Event::Start => {
                a.start(now);
                Ok(())
            }
            Event::Deliver {
                from,
                signed,
                justification,
            } => {
                assert_eq!(from, signed.signer, "the host checks the signature");
                match signed.msg {
                    Msg::Proposal(p) => {
                        let signers = polka_signers(&p, &justification);
                        a.on_proposal(addr(from), p, signed, &signers, now)
                    }
                    Msg::Vote(v) => a.on_vote(addr(from), v, signed, now),
                }
                .map_err(|e| (from, e))
            }
            Event::Certificate(c) => {
                let genuine = c.precommits.iter().all(|(who, e)| {
                    *e == Signed {
                        signer: index(who),
                        msg: Msg::Vote(Vote {
                            round: c.round,
                            kind: VoteKind::Precommit,
                            value: Some(c.value),
                        }),
                    }
                });
                assert!(genuine, "certificates carry only the signers' precommits");
                // The certificate's sender is honest: only "finished" may refuse it.
                a.on_certificate(c).map_err(|e| (i, e))
            }
            Event::Verdict(v, validity) => {
                a.set_validity(v, validity, now);
                Ok(())
            }
            Event::Propose(r) => {
                // The request may be stale (the round moved on): then it is refused.
                let _ = a.propose(r, value(1, i, r, 0), now);
                Ok(())
            }
            Event::Timer => {
                a.tick(now);
                Ok(())
            }
        };
        if let Err((from, e)) = result
            && !self.out.byzantine.contains(&from)
        {
            *self.out.honest_rejections.entry(e.code()).or_default() += 1;
        }
        self.drain(i);
        let next = self.nodes[i].as_ref().unwrap().next_deadline();
        if let Some(at) = next
            && next != self.timers[i]
        {
            self.timers[i] = next;
            self.push(at.max(now), i, Event::Timer);
        }
    }

    /// Carries out node `i`'s outputs, delivering its own messages back at once.
    fn drain(&mut self, i: usize) {
        let now = self.now;
        let mut pending: VecDeque<_> = self.nodes[i].as_mut().unwrap().drain().into();
        while let Some(o) = pending.pop_front() {
            let own = match o {
                Output::SendProposal {
                    proposal,
                    justification,
                } => Some((Msg::Proposal(proposal), justification)),
                Output::SendVote(v) => Some((Msg::Vote(v), vec![])),
                Output::NeedProposal { round } => {
                    let at = now + self.below(6);
                    self.push(at, i, Event::Propose(round));
                    None
                }
                Output::NeedValidity(v) => {
                    let net = self.s.network;
                    let validity = self.validity(v);
                    let mut at = now + self.below(net.max_verdict_delay + 1);
                    if validity == Validity::Valid && self.chance(net.flaky_verdicts_per_mille) {
                        // A host that cannot check the value yet says no, then yes.
                        self.push(at, i, Event::Verdict(v, Validity::Invalid));
                        at += 1 + self.below(net.max_verdict_delay + 1);
                    }
                    self.push(at, i, Event::Verdict(v, validity));
                    None
                }
                Output::Decided(c) => {
                    c.check_shape(&(0..self.s.n).map(addr).collect::<Vec<_>>(), self.q)
                        .expect("a decision's certificate has a quorum");
                    let signers = c.signers();
                    assert_eq!(signers.len(), self.q, "exactly the first quorum");
                    assert!(signers.windows(2).all(|w| w[0] < w[1]), "sorted");
                    self.out.decisions.insert(i, (now, c.round, c.value));
                    if i < self.s.n {
                        for to in (0..=self.s.n).filter(|&to| to != i) {
                            self.send(to, Event::Certificate(c.clone()));
                        }
                    }
                    None
                }
                Output::Equivocation {
                    voter,
                    first,
                    second,
                } => {
                    assert!(first != second && first.signer == index(&voter));
                    assert_eq!(first.msg.round(), second.msg.round());
                    self.out.accused.insert(voter);
                    None
                }
                Output::GaveUp => {
                    self.out.gave_up.insert(i);
                    None
                }
            };
            if let Some((msg, justification)) = own {
                let justification: Vec<Signed> =
                    justification.into_iter().map(|(_, e)| e).collect();
                assert!(i < self.s.n, "observers never send");
                if let Msg::Vote(v) = msg
                    && let (VoteKind::Precommit, Some(value)) = (v.kind, v.value)
                {
                    let voters = self.out.honest_precommits.entry((v.round, value));
                    voters.or_default().insert(i);
                }
                let signed = Signed { signer: i, msg };
                let a = self.nodes[i].as_mut().unwrap();
                let r = match msg {
                    Msg::Proposal(p) => {
                        let signers = polka_signers(&p, &justification);
                        a.on_proposal(addr(i), p, signed.clone(), &signers, now)
                    }
                    Msg::Vote(v) => a.on_vote(addr(i), v, signed.clone(), now),
                };
                if let Err(e) = r {
                    *self.out.honest_rejections.entry(e.code()).or_default() += 1;
                }
                pending.extend(a.drain());
                self.broadcast(i, &signed, &justification);
            }
        }
    }

    /// The host's verdict on `v`: honest values are valid everywhere.
    fn validity(&mut self, v: ValueId) -> Validity {
        if v.0[0] == 1 {
            return Validity::Valid;
        }
        let pick = |rng: &mut ChaCha8Rng| {
            if rng.next_u32().is_multiple_of(3) {
                Validity::Invalid
            } else {
                Validity::Valid
            }
        };
        match self.s.values {
            ByzantineValues::Split => pick(&mut self.rng),
            ByzantineValues::Consistent => {
                if let Some(known) = self.byz_validity.get(&v) {
                    return *known;
                }
                let verdict = pick(&mut self.rng);
                self.byz_validity.insert(v, verdict);
                verdict
            }
        }
    }

    fn proposer(&self, r: Round) -> usize {
        let a = self.nodes.iter().flatten().next().unwrap();
        index(&a.proposer(r))
    }

    fn byzantine(&mut self, i: usize, event: Event) {
        let kind = self.byz[&i].kind;
        let heard = match (&event, kind) {
            (_, Byzantine::Silent) => return,
            (Event::Start, _) => None,
            (Event::Deliver { signed, .. }, _) => Some(signed.msg),
            _ => return,
        };
        let round = heard.map_or(Round(0), |m| m.round());
        if self.byz.get_mut(&i).unwrap().rounds.insert(round) && self.proposer(round) == i {
            let a = value(2, i, round, 0);
            let b = value(2, i, round, 1);
            let valid_round = match (round.0, self.below(3)) {
                (0, _) | (_, 0) => None,
                (r, _) => Some(Round(self.below(u64::from(r)) as u32)),
            };
            let prop = |value| {
                Msg::Proposal(Proposal {
                    round,
                    value,
                    valid_round,
                })
            };
            if kind == Byzantine::Equivocator {
                self.split(i, prop(a), prop(b));
                self.split_votes(i, round, Some(a), Some(b));
            } else {
                self.send_all(i, prop(a));
            }
        }
        match (kind, heard) {
            (Byzantine::Equivocator, Some(Msg::Proposal(p))) if p.round == round => {
                self.split_votes(i, round, Some(p.value), None);
            }
            (Byzantine::VotesForEverything, Some(m)) => {
                let vote_for = m.value().into_iter().chain(Some(value(2, i, round, 0)));
                for v in vote_for.collect::<Vec<_>>() {
                    if self.byz.get_mut(&i).unwrap().voted.insert((round, v)) {
                        for kind in [VoteKind::Prevote, VoteKind::Precommit] {
                            let vote = Vote {
                                round,
                                kind,
                                value: Some(v),
                            };
                            self.send_all(i, Msg::Vote(vote));
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn send_all(&mut self, i: usize, msg: Msg) {
        self.broadcast(i, &Signed { signer: i, msg }, &[]);
    }

    /// Sends `first` to the lower half of the nodes and `second` to the rest.
    fn split(&mut self, i: usize, first: Msg, second: Msg) {
        for to in (0..=self.s.n).filter(|&to| to != i) {
            let msg = if to <= self.s.n / 2 { first } else { second };
            let signed = Signed { signer: i, msg };
            let justification = vec![];
            let e = Event::Deliver {
                from: i,
                signed,
                justification,
            };
            self.send(to, e);
        }
    }

    fn split_votes(&mut self, i: usize, round: Round, a: Option<ValueId>, b: Option<ValueId>) {
        for kind in [VoteKind::Prevote, VoteKind::Precommit] {
            let vote = |value| Msg::Vote(Vote { round, kind, value });
            self.split(i, vote(a), vote(b));
        }
    }
}
