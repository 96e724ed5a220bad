//! An adversarial sweep of v2 sessions in the simulator ([`super::sim`]): for every
//! message kind, one Byzantine operator mistreats its own messages of that kind —
//! withholds them from some peers, delays them per peer across the deadlines,
//! duplicates them, or (proposals and votes) equivocates — in DKG and reshare,
//! Feldman and Pedersen, at several sizes. Every run is a function of its seed.
//!
//! Each run is judged twice: *agreement* ([`Finished::check`]: one commitment and one
//! qualified set at every honest node that activated, shares on it, the master key
//! kept by a reshare) must hold in every run whatever the adversary does; a *stall*
//! (an honest node that failed or has no new version at the time limit) must not
//! happen with a single Byzantine operator, which is within every size's fault bound.
//!
//! A kind the adversary never sends makes its cases vacuous: [`RunReport::affected`]
//! counts the messages it actually mistreated. Complaints are sent only against an
//! invalid share, so for [`Kind::Complaint`] the adversary also corrupts its own share
//! in its dealing and sends a valid complaint against itself — the complaint it
//! then mistreats.
//!
//! Withholding, delaying and duplicating apply to every message of the kind the
//! operator sends, its own and those it relays (certificates, fetch answers);
//! equivocation to its own only.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kms_crypto::vss::encryption::{EphemeralKey, ShareContext, reveal_shared_key};
use kms_crypto::{Commitment, OperatorAddress, Scalar};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::setup::Setup;
use super::sim::{Byzantine, Deliveries, Finished, Net, Outgoing, Scenario, SimMember};
use super::wire::{self, Body, Kind};
use crate::messages::SignedMessage;
use crate::outcome::SessionOutcome;
use crate::session::{Schedule, SessionParams, SessionTimestamp, VssMode};

/// The phase length of every swept session.
pub const PHASE_MS: u64 = 1_000;
/// Virtual time limit of a run: past the session deadline
/// ([`super::engine::SESSION_PHASES`]), so a stall shows as a failure.
pub const UNTIL_MS: u64 = 60 * PHASE_MS;
/// The sizes the sweep covers by default.
pub const SIZES: [usize; 4] = [4, 6, 7, 10];
/// Slack around each deadline: `k·phase/2 ± ε`.
const EPSILONS: [u64; 3] = [1, 5, 50];

/// What the Byzantine operator does with its messages of the swept kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Behaviour {
    /// Withholds them from a per-run random subset of the peers.
    Withhold,
    /// Delays them per peer by `k·phase/2 ± ε` (k = 1..6, ε ∈ {1, 5, 50} ms).
    Delay,
    /// Sends each two or three times, one copy after the others have decided.
    Duplicate,
    /// Sends a second, different signed message for the same slot to half of the
    /// peers (proposals and votes only).
    Equivocate,
}

impl Behaviour {
    /// Every behaviour.
    pub const ALL: [Behaviour; 4] = [
        Self::Withhold,
        Self::Delay,
        Self::Duplicate,
        Self::Equivocate,
    ];

    /// Stable label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Withhold => "withhold",
            Self::Delay => "delay",
            Self::Duplicate => "duplicate",
            Self::Equivocate => "equivocate",
        }
    }

    /// Whether the behaviour means something for `kind`: only agreement messages
    /// have a slot to equivocate in (a second dealing or coin commit is refused as
    /// equivocation by other checks, outside this sweep).
    pub fn applies_to(self, kind: Kind) -> bool {
        self != Self::Equivocate || matches!(kind, Kind::Proposal | Kind::Vote)
    }
}

/// Which session is swept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// A DKG among all members.
    Dkg,
    /// A reshare among the same members, from an all-honest DKG's shares.
    Reshare,
}

impl Protocol {
    /// Stable label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Dkg => "dkg",
            Self::Reshare => "reshare",
        }
    }
}

/// One configuration of the sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Case {
    /// DKG or reshare.
    pub protocol: Protocol,
    /// Feldman or Pedersen.
    pub mode: VssMode,
    /// Number of operators (`t = ⌈2n/3⌉`).
    pub n: usize,
    /// The kind the Byzantine operator mistreats.
    pub kind: Kind,
    /// How.
    pub behaviour: Behaviour,
}

impl Case {
    /// Every meaningful case at the sizes `ns`: kinds a mode never sends (the coin
    /// and public shares in Feldman) and equivocation outside agreement messages are
    /// left out.
    pub fn all(ns: &[usize]) -> Vec<Case> {
        let mut cases = Vec::new();
        for &n in ns {
            for protocol in [Protocol::Dkg, Protocol::Reshare] {
                for mode in [VssMode::Feldman, VssMode::Pedersen] {
                    for kind in Kind::ALL {
                        if mode == VssMode::Feldman && !kind_in_feldman(kind) {
                            continue;
                        }
                        for behaviour in Behaviour::ALL {
                            if behaviour.applies_to(kind) {
                                cases.push(Case {
                                    protocol,
                                    mode,
                                    n,
                                    kind,
                                    behaviour,
                                });
                            }
                        }
                    }
                }
            }
        }
        cases
    }

    /// `protocol/mode/n/kind/behaviour`, e.g. `dkg/pedersen/7/vote/equivocate`.
    pub fn label(&self) -> String {
        let mode = match self.mode {
            VssMode::Feldman => "feldman",
            VssMode::Pedersen => "pedersen",
        };
        format!(
            "{}/{mode}/{}/{}/{}",
            self.protocol.label(),
            self.n,
            self.kind.label(),
            self.behaviour.label()
        )
    }
}

fn kind_in_feldman(kind: Kind) -> bool {
    !matches!(
        kind,
        Kind::CoinCommit | Kind::CoinReveal | Kind::PublicShare
    )
}

/// The CI-sized selection: every case at the smallest size, and each (protocol,
/// mode, kind, behaviour) once more at one larger size chosen by `base` — every
/// configuration meets a quorum larger than `t` (n = 6) or the largest set across
/// base seeds, at a quarter of the full sweep's cost.
pub fn ci_cases(base: u64) -> Vec<Case> {
    let larger: Vec<usize> = SIZES[1..].to_vec();
    Case::all(&SIZES[..1])
        .into_iter()
        .flat_map(|c| {
            let n = larger[(run_seed(base, &c, 0) % larger.len() as u64) as usize];
            [c, Case { n, ..c }]
        })
        .collect()
}

/// A run's seed from the sweep's base seed, the case and the run's index: a stable
/// function, so one run can be replayed alone ([`Harness::run`]).
pub fn run_seed(base: u64, case: &Case, index: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ base;
    for b in case.label().bytes().chain(index.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// What one run showed.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The case.
    pub case: Case,
    /// The run's seed ([`Harness::run`] with it reproduces the run).
    pub seed: u64,
    /// The Byzantine operator.
    pub byzantine: OperatorAddress,
    /// An agreement violation, named.
    pub violation: Option<String>,
    /// Honest nodes that failed or had no new version at the time limit.
    pub stalled: usize,
    /// Virtual time at which the last honest node activated (no stall only).
    pub completion_ms: Option<u64>,
    /// Messages of the kind the adversary mistreated (0: the case was vacuous).
    pub affected: u64,
}

/// An all-honest DKG whose shares a reshare case starts from.
struct BaseKey {
    commitment: Commitment,
    shares: BTreeMap<OperatorAddress, Scalar>,
}

/// Runs cases, caching the members of each size and the base DKG of each (size,
/// mode) that reshare cases start from.
#[derive(Default)]
pub struct Harness {
    members: BTreeMap<usize, Vec<SimMember>>,
    bases: BTreeMap<(usize, bool), BaseKey>,
}

fn schedule() -> Schedule {
    Schedule {
        start_ms: 0,
        phase_ms: PHASE_MS,
    }
}

fn participants(members: &[SimMember]) -> Vec<crate::session::Participant> {
    members.iter().map(SimMember::participant).collect()
}

impl Harness {
    /// An empty harness.
    pub fn new() -> Self {
        Self::default()
    }

    fn members(&mut self, n: usize) -> Vec<SimMember> {
        self.members
            .entry(n)
            .or_insert_with(|| SimMember::generate(n, 0x5357_4545_5000 + n as u64))
            .clone()
    }

    fn base(&mut self, n: usize, mode: VssMode) -> Result<&BaseKey, String> {
        let key = (n, mode == VssMode::Pedersen);
        if !self.bases.contains_key(&key) {
            let members = self.members(n);
            let params = SessionParams::dkg(
                SessionTimestamp(600),
                mode,
                participants(&members),
                schedule(),
            )
            .map_err(|e| e.to_string())?;
            let honest: Vec<_> = members.iter().map(SimMember::address).collect();
            let run = scenario(params, members, BTreeMap::new(), 7).run();
            let v = run.check(&honest)?;
            if v.activated != n {
                return Err(format!("base DKG of n = {n}: {v:?}"));
            }
            let commitment = run.commitment().ok_or("base DKG activated nothing")?;
            self.bases.insert(
                key,
                BaseKey {
                    commitment,
                    shares: run.shares(),
                },
            );
        }
        Ok(&self.bases[&key])
    }

    /// Runs `case` with `seed`: everything random in it (the Byzantine operator,
    /// network delays, the adversary's choices) follows from the seed.
    pub fn run(&mut self, case: &Case, seed: u64) -> RunReport {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let members = self.members(case.n);
        let byzantine = members[(rng.next_u64() % case.n as u64) as usize].address();
        let mut report = RunReport {
            case: *case,
            seed,
            byzantine,
            violation: None,
            stalled: 0,
            completion_ms: None,
            affected: 0,
        };
        let built = match case.protocol {
            Protocol::Dkg => SessionParams::dkg(
                SessionTimestamp(600),
                case.mode,
                participants(&members),
                schedule(),
            )
            .map(|p| (p, BTreeMap::new(), None)),
            Protocol::Reshare => match self.base(case.n, case.mode) {
                Ok(base) => {
                    let (c, s) = (base.commitment.clone(), base.shares.clone());
                    SessionParams::reshare(
                        SessionTimestamp(1200),
                        case.mode,
                        participants(&members),
                        c.clone(),
                        participants(&members),
                        schedule(),
                    )
                    .map(|p| (p, s, Some(c)))
                }
                Err(e) => {
                    report.violation = Some(e);
                    return report;
                }
            },
        };
        let (params, shares, previous) = match built {
            Ok(x) => x,
            Err(e) => {
                report.violation = Some(format!("parameters: {e}"));
                return report;
            }
        };
        let setup = super::sim::setup(params.clone());
        let affected = Arc::new(AtomicU64::new(0));
        let me = members
            .iter()
            .find(|m| m.address() == byzantine)
            .expect("the Byzantine operator is a member")
            .clone();
        let adversary = Adversary::new(case, &setup, &me, &mut rng, affected.clone());
        let honest: Vec<_> = members
            .iter()
            .map(SimMember::address)
            .filter(|a| *a != byzantine)
            .collect();
        let mut s = scenario(params, members, shares, rng.next_u64());
        s.byzantine.push((byzantine, Box::new(adversary)));
        let run = s.run();
        report.affected = affected.load(Ordering::Relaxed);
        judge(&run, &honest, previous.as_ref(), &mut report);
        report
    }
}

fn scenario(
    params: SessionParams,
    members: Vec<SimMember>,
    shares: BTreeMap<OperatorAddress, Scalar>,
    seed: u64,
) -> Scenario {
    Scenario {
        params,
        members,
        shares,
        net: Net {
            seed,
            ..Net::default()
        },
        byzantine: Vec::new(),
        until_ms: UNTIL_MS,
    }
}

/// Agreement, the master key kept, stalls and completion time of a finished run.
fn judge(
    run: &Finished,
    honest: &[OperatorAddress],
    previous: Option<&Commitment>,
    report: &mut RunReport,
) {
    match run.check(honest) {
        Ok(v) => report.stalled = v.failed + v.unfinished,
        Err(e) => report.violation = Some(e),
    }
    if let (Some(p), Some(c)) = (previous, run.commitment())
        && p.constant() != c.constant()
        && report.violation.is_none()
    {
        report.violation = Some("the reshare changed the master key".into());
    }
    if report.stalled == 0 && report.violation.is_none() {
        report.completion_ms = honest
            .iter()
            .filter(|a| {
                matches!(
                    run.network.outcome(a),
                    Some(Ok(SessionOutcome::NewVersion(_)))
                )
            })
            .filter_map(|a| run.network.stats(a).and_then(|s| s.done_at_ms))
            .max();
    }
}

fn shuffle<T>(v: &mut [T], rng: &mut ChaCha20Rng) {
    for i in (1..v.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

/// How an equivocating operator sends its twin to a peer of the chosen half.
#[derive(Clone, Copy)]
enum TwinOrder {
    /// The twin instead of the original.
    Instead,
    /// The twin, then the original.
    Before,
    /// The original, then the twin.
    After,
}

/// The Byzantine operator of one run.
struct Adversary {
    kind: Kind,
    behaviour: Behaviour,
    rng: ChaCha20Rng,
    /// Withhold: the peers that never get the kind.
    withheld: BTreeSet<OperatorAddress>,
    /// Delay: each peer's extra delay.
    delays: BTreeMap<OperatorAddress, u64>,
    /// Equivocate: the peers that get the twin, and how.
    twin_to: BTreeSet<OperatorAddress>,
    twin_order: TwinOrder,
    /// Twins by original message hash: every chosen peer gets the same twin.
    twins: BTreeMap<[u8; 32], SignedMessage>,
    /// Complaint cases: the self-accusation, made from the first dealing sent.
    accusation: Option<Accusation>,
    /// Originals mistreated so far.
    touched: BTreeSet<[u8; 32]>,
    affected: Arc<AtomicU64>,
}

/// What the adversary needs to accuse itself: its corrupt dealing (sent to all) and
/// the complaint that proves it.
struct Accusation {
    member: SimMember,
    session: [u8; 32],
    index: usize,
    forged: Option<(SignedMessage, SignedMessage)>,
}

impl Adversary {
    fn new(
        case: &Case,
        setup: &Setup,
        me: &SimMember,
        rng: &mut ChaCha20Rng,
        affected: Arc<AtomicU64>,
    ) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(rng.next_u64());
        let mut peers: Vec<OperatorAddress> = setup
            .params
            .players
            .addresses()
            .copied()
            .filter(|a| *a != me.address())
            .collect();
        // Withhold from a nonempty random subset (sometimes everyone).
        shuffle(&mut peers, &mut rng);
        let k = 1 + (rng.next_u64() % peers.len() as u64) as usize;
        let withheld = peers[..k].iter().copied().collect();
        // Every peer a different deadline-straddling delay.
        let mut choices: Vec<u64> = (1..=6u64)
            .flat_map(|k| {
                EPSILONS
                    .iter()
                    .flat_map(move |e| [k * PHASE_MS / 2 - e, k * PHASE_MS / 2 + e])
            })
            .collect();
        shuffle(&mut choices, &mut rng);
        let delays = peers.iter().copied().zip(choices).collect();
        shuffle(&mut peers, &mut rng);
        let twin_to = peers[..peers.len().div_ceil(2)].iter().copied().collect();
        let twin_order = match rng.next_u64() % 3 {
            0 => TwinOrder::Instead,
            1 => TwinOrder::Before,
            _ => TwinOrder::After,
        };
        let accusation = (case.kind == Kind::Complaint).then(|| Accusation {
            member: me.clone(),
            session: setup.hash().0,
            index: setup
                .player_index(&me.address())
                .expect("the adversary is a player"),
            forged: None,
        });
        Self {
            kind: case.kind,
            behaviour: case.behaviour,
            rng,
            withheld,
            delays,
            twin_to,
            twin_order,
            twins: BTreeMap::new(),
            accusation,
            touched: BTreeSet::new(),
            affected,
        }
    }

    fn touch(&mut self, m: &SignedMessage) {
        if self.touched.insert(m.hash) {
            self.affected.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The behaviour applied to one message of the swept kind.
    fn mistreat(&mut self, o: &Outgoing<'_>, m: SignedMessage) -> Deliveries {
        self.touch(&m);
        match self.behaviour {
            Behaviour::Withhold if self.withheld.contains(&o.to) => vec![],
            Behaviour::Withhold => vec![(m, 0)],
            Behaviour::Delay => {
                let d = self.delays.get(&o.to).copied().unwrap_or(PHASE_MS);
                vec![(m, d)]
            }
            Behaviour::Duplicate => {
                let mut out = vec![(m.clone(), 0), (m.clone(), self.rng.next_u64() % 30)];
                if self.rng.next_u64().is_multiple_of(2) {
                    out.push((m, 3 * PHASE_MS + self.rng.next_u64() % (2 * PHASE_MS)));
                }
                out
            }
            Behaviour::Equivocate => {
                if !self.twin_to.contains(&o.to) {
                    return vec![(m, 0)];
                }
                let twin = match self.twins.get(&m.hash) {
                    Some(t) => t.clone(),
                    None => match self.twin(&m, o) {
                        Some(t) => {
                            self.twins.insert(m.hash, t.clone());
                            t
                        }
                        None => return vec![(m, 0)],
                    },
                };
                match self.twin_order {
                    TwinOrder::Instead => vec![(twin, 0)],
                    TwinOrder::Before => vec![(twin, 0), (m, 3)],
                    TwinOrder::After => vec![(m, 0), (twin, 3)],
                }
            }
        }
    }

    /// A second, different message for the same agreement slot, signed.
    fn twin(&mut self, m: &SignedMessage, o: &Outgoing<'_>) -> Option<SignedMessage> {
        // Only its own messages: a relayed peer's vote cannot be re-signed.
        if m.signer != o.from {
            return None;
        }
        let mut random = [0u8; 32];
        self.rng.fill_bytes(&mut random);
        let body = match Body::decode(&m.payload).ok()? {
            Body::Vote(mut v) => {
                // Nil for a value, another value for nil or a value.
                v.value = if v.value.0 != [0; 32] && self.rng.next_u64().is_multiple_of(2) {
                    wire::word([0; 32])
                } else {
                    wire::word(random)
                };
                Body::Vote(v)
            }
            Body::Proposal(mut p) => {
                // A smaller set (still a valid value if large enough), or the set
                // with an entry nobody holds.
                if p.entries.len() > 1 && self.rng.next_u64().is_multiple_of(2) {
                    let i = (self.rng.next_u64() % p.entries.len() as u64) as usize;
                    p.entries.remove(i);
                } else {
                    p.entries.push(wire::word(random));
                    p.entries.sort();
                    p.entries.dedup();
                }
                Body::Proposal(p)
            }
            _ => return None,
        };
        Some(body.sign(o.signer))
    }

    /// Complaint cases: the corrupt dealing (to every peer alike) and the
    /// complaint that goes with it.
    fn accuse(&mut self, o: &Outgoing<'_>) -> Option<(SignedMessage, SignedMessage)> {
        let a = self.accusation.as_mut()?;
        if a.forged.is_none() {
            let Ok(Body::Dealing(mut d)) = Body::decode(&o.message.payload) else {
                return None;
            };
            let w = Scalar::from_bytes_be(&d.shareValues[a.index].0).ok()?;
            d.shareValues[a.index] = wire::word((&w + &Scalar::one()).to_bytes_be());
            let dealing = Body::Dealing(d.clone()).sign(o.signer);
            let eph = EphemeralKey::from_eip2537(&d.ephemeralKey).ok()?;
            let me = a.member.address();
            let ctx = ShareContext {
                session_hash: a.session,
                dealer: me,
                player: me,
            };
            let (key, proof) = reveal_shared_key(&a.member.encryption, &eph, &ctx, &mut self.rng);
            let complaint = Body::Complaint(wire::Complaint {
                sessionTimestamp: d.sessionTimestamp,
                sessionHash: d.sessionHash,
                player: d.dealer,
                dealer: d.dealer,
                dealing: wire::word(dealing.hash),
                sharedKey: wire::bytes(&key.to_eip2537()[..]),
                challenge: wire::word(proof.challenge),
                response: wire::word(proof.response.to_bytes_be()),
            })
            .sign(o.signer);
            a.forged = Some((dealing, complaint));
        }
        a.forged.clone()
    }
}

impl Byzantine for Adversary {
    fn outgoing(&mut self, o: &Outgoing<'_>) -> Deliveries {
        if self.accusation.is_some() && o.kind == Kind::Dealing && o.message.signer == o.from {
            let Some((dealing, complaint)) = self.accuse(o) else {
                return vec![(o.message.clone(), 0)];
            };
            // The complaint follows the dealing within a few milliseconds, as an
            // honest victim's would, and then gets the behaviour.
            let lag = 1 + self.rng.next_u64() % 20;
            let mut out = vec![(dealing, 0)];
            out.extend(
                self.mistreat(o, complaint)
                    .into_iter()
                    .map(|(m, d)| (m, d + lag)),
            );
            return out;
        }
        if o.kind == self.kind && self.accusation.is_none() {
            return self.mistreat(o, o.message.clone());
        }
        vec![(o.message.clone(), 0)]
    }
}

/// One line of the sweep's table: the runs of one case.
#[derive(Clone, Debug)]
pub struct Row {
    /// The case.
    pub case: Case,
    /// Runs.
    pub runs: usize,
    /// Runs with an agreement violation.
    pub violations: usize,
    /// Runs in which some honest node stalled.
    pub stalls: usize,
    /// Median virtual completion time of the runs without a stall.
    pub median_ms: Option<u64>,
    /// Largest virtual completion time of the runs without a stall.
    pub max_ms: Option<u64>,
    /// Mean number of messages mistreated per run.
    pub affected: f64,
}

/// Groups reports by case, in the order the cases first appear.
pub fn summarize(reports: &[RunReport]) -> Vec<Row> {
    let mut by_case: Vec<(Case, Vec<&RunReport>)> = Vec::new();
    for r in reports {
        match by_case.iter_mut().find(|(c, _)| *c == r.case) {
            Some((_, rs)) => rs.push(r),
            None => by_case.push((r.case, vec![r])),
        }
    }
    by_case
        .into_iter()
        .map(|(case, rs)| {
            let mut times: Vec<u64> = rs.iter().filter_map(|r| r.completion_ms).collect();
            times.sort_unstable();
            Row {
                case,
                runs: rs.len(),
                violations: rs.iter().filter(|r| r.violation.is_some()).count(),
                stalls: rs.iter().filter(|r| r.stalled > 0).count(),
                median_ms: times.get(times.len() / 2).copied(),
                max_ms: times.last().copied(),
                affected: rs.iter().map(|r| r.affected as f64).sum::<f64>() / rs.len() as f64,
            }
        })
        .collect()
}

/// The rows as a Markdown table.
pub fn table(rows: &[Row]) -> String {
    let ms = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    let mut out = String::from(
        "| configuration | runs | agreement violations | stalls | median ms | max ms | mistreated/run |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {:.1} |\n",
            r.case.label(),
            r.runs,
            r.violations,
            r.stalls,
            ms(r.median_ms),
            ms(r.max_ms),
            r.affected
        ));
    }
    out
}
