//! The v2 session engine: one per node per session, an I/O-free state machine fed
//! with signed messages and the time. It routes each message to the role it concerns
//! — the roster of encryption keys ([`super::roster`]), dealer ([`super::dealer`]),
//! the dealings a player checks ([`super::dealings`]), the Pedersen base
//! ([`super::base`]), the agreement instances ([`super::instance`]) — and turns
//! agreed values into the outcome ([`super::combine`]). See `docs/protocol.md` for the properties and their
//! arguments.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kms_crypto::signer::OperatorSigner;
use kms_crypto::vss::coin::CoinContribution;
use kms_crypto::vss::encryption::{
    EncryptionPublicKey, EncryptionSecretKey, ShareContext, decrypt_share,
};
use kms_crypto::{OperatorAddress, Scalar};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha3::{Digest, Keccak256};

use super::base::{CoinCheck, CoinFlip};
use super::combine::{self, Final};
use super::dealings::{Dealings, check_complaint, decode_dealing};
use super::evidence::Evidence;
use super::ids::{MessageHash, Recipient, SessionHash};
use super::instance::{Instance, value_id};
use super::phase::{InstanceId, Phase};
use super::rejection::Rejection;
use super::roster::{Keys, Roster, RosterCheck};
use super::setup::Setup;
use super::shares::BaseTable;
use super::verify::{Held, Inbox, Wave, verify_all, verify_one};
use super::wire::{self, Body, Kind, open_unverified};
use crate::agreement::{self, Output, Validity, ValueId};
use crate::certificates::CertificateCache;
use crate::error::ProtocolError;
use crate::messages::SignedMessage;
use crate::outcome::{SessionFailure, SessionOutcome};
use crate::session::VssMode;

mod agree;
mod deal;
mod inbound;
mod recover;
mod replay;

/// What the engine asks its host to do.
#[derive(Clone, Debug)]
pub enum Action {
    /// Deliver `message` to `to`.
    Send {
        /// Recipient.
        to: Recipient,
        /// The signed message.
        message: SignedMessage,
    },
    /// Fraud was proven; the host may submit it on chain.
    Evidence(Box<Evidence>),
    /// The session ended at this node.
    Done(Result<SessionOutcome, SessionFailure>),
}

/// Session deadline in phases: past it, a node that has not finished gives up and
/// keeps its previous version (it can still catch up from a peer's certificate).
pub const SESSION_PHASES: u64 = 40;
/// Agreement rounds tried before giving up.
pub const MAX_ROUNDS: u32 = 12;
/// Messages kept per author: a session's worth with room for every round.
pub const MESSAGES_PER_AUTHOR: usize = 64 + 8 * MAX_ROUNDS as usize;

/// One node's v2 engine for one session.
pub struct Engine {
    pub(super) setup: Setup,
    pub(super) hash: SessionHash,
    pub(super) me: OperatorAddress,
    signer: Arc<dyn OperatorSigner>,
    encryption: Arc<EncryptionSecretKey>,
    /// Protocol-key certificates this node has checked (kept across sessions).
    certificates: Arc<CertificateCache>,
    /// Randomness of checks and proofs.
    pub(super) rng: ChaCha20Rng,
    /// Randomness of what this node deals (a function of the seed and the session).
    dealing_rng: ChaCha20Rng,
    /// What this node deals: `λ_D·s_D` in a reshare, fresh in a DKG; `None` if it
    /// does not deal.
    secret: Option<Scalar>,
    /// Reshare: `λ_D` over all the session's dealers.
    pub(super) weights: BTreeMap<OperatorAddress, Scalar>,
    pub(super) quorum: usize,
    phase: Phase,
    deal_started_ms: u64,
    /// The encryption keys: announced, listed, agreed (instance 2).
    pub(super) roster: Roster,
    roster_instance: Instance,
    /// The keys this node lists (`None`: every player's first announcement): those
    /// its host's attestation of the peers bound.
    admitted: Option<BTreeMap<OperatorAddress, EncryptionPublicKey>>,
    /// Whether this node sent its list of keys.
    listed: bool,
    pub(super) base: Option<BaseTable>,
    coin: Option<CoinFlip>,
    revealed: bool,
    acked: BTreeSet<MessageHash>,
    complained: BTreeSet<MessageHash>,
    pub(super) dealings: Dealings,
    early_dealings: Vec<SignedMessage>,
    waiting_complaints: Vec<SignedMessage>,
    /// Authentic messages held, served to peers that fetch them.
    messages: BTreeMap<MessageHash, SignedMessage>,
    proposal_of: BTreeMap<ValueId, MessageHash>,
    per_author: BTreeMap<OperatorAddress, usize>,
    served: BTreeSet<(OperatorAddress, MessageHash)>,
    /// Fetches sent: `false` asked one peer, `true` asked everyone.
    fetched: BTreeMap<MessageHash, bool>,
    coin_instance: Option<Instance>,
    qual: Instance,
    pub(super) finals: Option<Final>,
    early_public: Vec<SignedMessage>,
    /// The last candidate set [`Engine::screen_candidate`] checked.
    screened: Option<Vec<MessageHash>>,
    /// Messages whose signatures wait for their batch.
    inbox: Inbox,
    /// Refusals of held messages, found when their batch was checked.
    refused: Vec<Rejection>,
    /// Catching up from a peer's transcript ([`Engine::replay`]): signs and sends
    /// nothing of its own.
    replaying: bool,
    /// Helpers' shares of agreed dealings this node proved faulty, by dealing.
    recovered: BTreeMap<
        MessageHash,
        BTreeMap<OperatorAddress, (Scalar, kms_crypto::vss::pedersen::PedersenShare)>,
    >,
    /// Recoveries this node sent: (dealing, victim).
    helped: BTreeSet<(MessageHash, OperatorAddress)>,
    now: u64,
    out: Vec<Action>,
}

fn agreement_config(
    setup: &Setup,
    me: Option<OperatorAddress>,
    quorum: usize,
) -> agreement::Config {
    let phase = setup.params.schedule.phase_ms.max(1);
    agreement::Config {
        voters: setup.params.players.addresses().copied().collect(),
        me,
        quorum,
        offset: setup.leader_offset() as u64,
        start_ms: setup.params.schedule.start_ms,
        timeouts: agreement::Timeouts {
            propose_ms: phase,
            prevote_ms: phase / 2 + 1,
            precommit_ms: phase / 2 + 1,
            increment_ms: phase / 2 + 1,
        },
        max_rounds: MAX_ROUNDS,
    }
}

impl Engine {
    /// Sets up this node's engine. `current_share` is required for a reshare dealer
    /// (checked against the previous public polynomial: a node with a corrupt share
    /// sits out dealing rather than deal a wrong constant). `seed` seeds the engine's
    /// randomness; what it deals depends on nothing else but the session and its
    /// share (and, in Pedersen mode, the agreed base).
    pub fn new(
        setup: Setup,
        me: OperatorAddress,
        signer: Arc<dyn OperatorSigner>,
        encryption: Arc<EncryptionSecretKey>,
        current_share: Option<Scalar>,
        seed: [u8; 32],
    ) -> Result<Self, ProtocolError> {
        let params = &setup.params;
        let is_dealer = params.dealers.contains(&me);
        let is_player = params.players.contains(&me);
        if !is_dealer && !is_player {
            return Err(ProtocolError::InvalidSession(
                "this node is not in the session",
            ));
        }
        let hash = setup.hash();
        let mut dealing_seed = Keccak256::new();
        dealing_seed.update(b"EIGENKMS-V2-DEALING-RNG");
        dealing_seed.update(seed);
        dealing_seed.update(hash.0);
        let mut dealing_rng = ChaCha20Rng::from_seed(dealing_seed.finalize().into());
        let mut weights = BTreeMap::new();
        let secret = if !is_dealer {
            None
        } else if let Some(previous) = &params.previous {
            weights = params.dealers.lagrange_at_zero()?;
            match (current_share, params.dealers.evaluation_point(&me)) {
                (Some(s), Some(x))
                    if previous.evaluate(x) == kms_crypto::G2Point::mul_generator(&s) =>
                {
                    Some(&weights[&me] * &s)
                }
                _ => None,
            }
        } else {
            Some(Scalar::random(&mut dealing_rng))
        };
        let t = params.players.threshold();
        let quorum = agreement::quorum(params.players.len(), t)
            .map_err(|_| ProtocolError::InvalidSession("threshold"))?;
        let voter = is_player.then_some(me);
        let qual = Instance::new(InstanceId::Qual, agreement_config(&setup, voter, quorum))?;
        let roster_instance =
            Instance::new(InstanceId::Roster, agreement_config(&setup, voter, quorum))?;
        let (coin, coin_instance) = match params.mode {
            VssMode::Feldman => (None, None),
            VssMode::Pedersen => (
                Some(CoinFlip::new(
                    hash,
                    CoinContribution::random(&mut dealing_rng),
                )),
                Some(Instance::new(
                    InstanceId::Coin,
                    agreement_config(&setup, voter, quorum),
                )?),
            ),
        };
        let mut rng_seed = Keccak256::new();
        rng_seed.update(b"EIGENKMS-V2-CHECK-RNG");
        rng_seed.update(seed);
        rng_seed.update(hash.0);
        let start = params.schedule.start_ms;
        Ok(Self {
            hash,
            me,
            signer,
            encryption,
            certificates: Arc::new(CertificateCache::new()),
            rng: ChaCha20Rng::from_seed(rng_seed.finalize().into()),
            dealing_rng,
            secret,
            weights,
            quorum,
            phase: Phase::Setup,
            deal_started_ms: start,
            roster: Roster::default(),
            roster_instance,
            admitted: None,
            listed: false,
            base: None,
            coin,
            revealed: false,
            acked: BTreeSet::new(),
            complained: BTreeSet::new(),
            dealings: Dealings::default(),
            early_dealings: Vec::new(),
            waiting_complaints: Vec::new(),
            messages: BTreeMap::new(),
            proposal_of: BTreeMap::new(),
            per_author: BTreeMap::new(),
            served: BTreeSet::new(),
            fetched: BTreeMap::new(),
            coin_instance,
            qual,
            finals: None,
            early_public: Vec::new(),
            screened: None,
            inbox: Inbox::new(
                4 * (params.players.len() + params.dealers.len()),
                (params.schedule.phase_ms / 10).max(1),
            ),
            refused: Vec::new(),
            replaying: false,
            recovered: BTreeMap::new(),
            helped: BTreeSet::new(),
            now: start,
            out: Vec::new(),
            setup,
        })
    }

    /// Shares the host's cache of checked protocol-key certificates (a node keeps one
    /// for its lifetime; a fresh engine starts with an empty one).
    pub fn with_certificates(mut self, cache: Arc<CertificateCache>) -> Self {
        self.certificates = cache;
        self
    }

    /// Lists in this node's roster list only the announcements of `keys` (the players
    /// its host attested, with the encryption key each attestation bound; this
    /// node's own included); the roster still takes every player an agreed list names.
    pub fn admitting(mut self, keys: BTreeMap<OperatorAddress, EncryptionPublicKey>) -> Self {
        self.admitted = Some(keys);
        self
    }

    /// The agreed roster: each player's key announcement and key.
    pub fn roster(&self) -> Option<&Keys> {
        self.roster.decided()
    }

    /// The session hash.
    pub fn session_hash(&self) -> SessionHash {
        self.hash
    }

    /// The phase this node is in.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The qualified set's agreed value id (what its certificate's precommits sign).
    pub fn agreed_value(&self) -> Option<ValueId> {
        self.qual.decided.as_ref().map(|(v, _)| *v)
    }

    /// The public proof of this Pedersen session's base, once the coin is decided and
    /// its reveals are held (what a fraud proof about shares or a reshare constant
    /// needs on chain: [`super::evidence::BaseDecision`]).
    pub fn base_decision(&self) -> Option<super::evidence::BaseDecision> {
        let inst = self.coin_instance.as_ref()?;
        let (_, cert) = inst.decided.as_ref()?;
        let reveals = inst
            .decided_entries()?
            .iter()
            .map(|h| self.messages.get(h).cloned())
            .collect::<Option<Vec<_>>>()?;
        Some(super::evidence::BaseDecision {
            precommits: cert.precommits.iter().map(|(_, m)| m.clone()).collect(),
            reveals,
        })
    }

    /// The agreement quorum of this session.
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// Messages this engine holds: its store plus those queued until they can be
    /// used. Each was accepted under its author's [`MESSAGES_PER_AUTHOR`] and sits in
    /// the store and at most one queue, so this stays below
    /// `2 · MESSAGES_PER_AUTHOR` per session participant whatever peers send.
    pub fn held_messages(&self) -> usize {
        let early = [
            self.coin_instance.as_ref(),
            Some(&self.roster_instance),
            Some(&self.qual),
        ]
        .into_iter()
        .flatten()
        .map(|i| i.early.len())
        .sum::<usize>();
        self.messages.len()
            + self.early_dealings.len()
            + self.waiting_complaints.len()
            + self.early_public.len()
            + self.inbox.len()
            + early
    }

    /// Whether this node is a player (receives a share, votes).
    fn is_player(&self) -> bool {
        self.setup.params.players.contains(&self.me)
    }

    /// Whether this node is in the agreed roster (its shares are encrypted to it).
    pub(super) fn in_roster(&self) -> bool {
        self.roster
            .decided()
            .is_some_and(|k| k.contains_key(&self.me))
    }

    /// Whether dealings can be decoded: the roster is agreed, and in Pedersen mode
    /// the base.
    pub(super) fn ready_to_deal(&self) -> bool {
        self.roster.decided().is_some()
            && (self.setup.params.mode == VssMode::Feldman || self.base.is_some())
    }

    /// Takes the actions produced so far.
    pub fn drain(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.out)
    }

    /// Takes the refusals of messages that [`Engine::handle`] accepted for a batched
    /// signature check and that then failed it or a later check (a host counts
    /// these with the refusals `handle` returns).
    pub fn take_refused(&mut self) -> Vec<Rejection> {
        std::mem::take(&mut self.refused)
    }

    /// The earliest time at which [`Engine::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.phase == Phase::Done {
            return None;
        }
        let phase = self.setup.params.schedule.phase_ms;
        let mut d = vec![self.session_deadline()];
        d.extend(self.inbox.deadline());
        if self.phase == Phase::Setup {
            let start = self.setup.params.schedule.start_ms;
            d.push(start + phase / 2);
            d.push(start + phase);
        }
        if self.phase == Phase::Deal {
            d.push(self.deal_started_ms + phase);
            d.push(self.deal_started_ms + 2 * phase);
        }
        for i in [
            self.coin_instance.as_ref(),
            Some(&self.roster_instance),
            Some(&self.qual),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(t) = i.agreement.next_deadline() {
                d.push(t);
            }
        }
        d.into_iter().filter(|t| *t > self.now).min()
    }

    fn session_deadline(&self) -> u64 {
        let s = self.setup.params.schedule;
        s.start_ms + SESSION_PHASES * s.phase_ms
    }

    /// Starts the session: the first messages of this node.
    pub fn start(&mut self, now: u64) {
        self.now = now;
        if self.is_player() {
            let body = Body::Key(wire::KeyAnnouncement {
                sessionTimestamp: self.setup.params.timestamp.0,
                sessionHash: wire::word(self.hash.0),
                player: wire::to_sol(&self.me),
                key: wire::bytes(&self.encryption.public_key().to_eip2537()),
            });
            self.broadcast(body);
        }
        if let Some(coin) = &self.coin
            && self.is_player()
        {
            let body = Body::CoinCommit(wire::CoinCommit {
                sessionTimestamp: self.setup.params.timestamp.0,
                sessionHash: wire::word(self.hash.0),
                operator: wire::to_sol(&self.me),
                commitment: wire::word(coin.my_commitment(&self.me)),
            });
            self.broadcast(body);
        }
        self.progress();
    }

    /// Advances the clock.
    pub fn tick(&mut self, now: u64) {
        self.now = now.max(self.now);
        // What arrived before a deadline counts for it.
        self.flush();
        if self.phase == Phase::Done {
            return;
        }
        for i in [
            self.coin_instance.as_mut(),
            Some(&mut self.roster_instance),
            Some(&mut self.qual),
        ]
        .into_iter()
        .flatten()
        {
            if i.started {
                i.agreement.tick(self.now);
            }
        }
        self.progress();
        if self.phase != Phase::Done && self.now >= self.session_deadline() {
            self.fail(SessionFailure::Deadline(self.phase.label()));
        }
    }

    /// Dealings an outcome needs: `t` in a DKG, the old threshold in a reshare.
    pub(super) fn needed(&self) -> usize {
        match &self.setup.params.previous {
            Some(_) => self.setup.params.dealers.threshold(),
            None => self.setup.params.players.threshold(),
        }
    }

    /// Feeds one signed message. Everything is checked — session, role, signature —
    /// before anything depends on it.
    pub fn handle(&mut self, now: u64, message: SignedMessage) -> Result<(), Rejection> {
        if now > self.now {
            // Timeouts due by `now` fire first. [`Engine::next_deadline`] reports only
            // deadlines after the clock, so one that merely moving the clock passed
            // (a message landing in its very millisecond) would never fire, and an
            // agreement round waiting on it would wait forever.
            self.tick(now);
        }
        let (author, hash, body) = self.admit(&message)?;
        if let Some(wave) = Wave::of(&body) {
            if self.inbox.holds(&message) {
                return Err(Rejection::Duplicate);
            }
            let params = &self.setup.params;
            let members = if wave.from_dealers() {
                params.dealers.len()
            } else {
                params.players.len()
            };
            // A message this node asked for is needed now.
            let wanted = self.fetched.contains_key(&hash);
            let held = Held {
                message,
                body,
                author,
                hash,
                wave,
            };
            if self.inbox.hold(held, members, self.now) || wanted {
                self.flush();
                self.progress();
            }
            return Ok(());
        }
        let params = &self.setup.params;
        if !verify_one(
            &self.certificates,
            &message,
            &[&params.players, &params.dealers],
            params.timestamp,
        ) {
            return Err(Rejection::BadSignature);
        }
        // A proposal or complaint sees everything that arrived before it (the
        // dealings it names, say).
        if matches!(body.kind(), Kind::Proposal | Kind::Complaint) {
            self.flush();
        }
        let r = self.accept(author, hash, message, body);
        self.progress();
        r
    }

    /// Enters a phase.
    pub(super) fn set_phase(&mut self, p: Phase) {
        self.phase = p;
    }

    /// Public shares that arrived before the qualified set was agreed.
    pub(super) fn take_early_public(&mut self) -> Vec<SignedMessage> {
        std::mem::take(&mut self.early_public)
    }

    pub(super) fn fail(&mut self, f: SessionFailure) {
        if self.phase != Phase::Done {
            self.phase = Phase::Done;
            self.out.push(Action::Done(Err(f)));
        }
    }

    pub(super) fn finish(&mut self, o: SessionOutcome) {
        if self.phase != Phase::Done {
            self.phase = Phase::Done;
            self.out.push(Action::Done(Ok(o)));
        }
    }

    /// Runs every step whose inputs are in, until nothing changes.
    fn progress(&mut self) {
        for _ in 0..16 {
            let before = (self.phase, self.out.len(), self.revealed, self.acked.len());
            self.step();
            if (self.phase, self.out.len(), self.revealed, self.acked.len()) == before {
                break;
            }
        }
    }

    fn step(&mut self) {
        match self.phase {
            Phase::Setup => self.step_setup(),
            Phase::Deal | Phase::Agree => self.step_deal(),
            Phase::PublicShares => {
                self.help_recover();
                combine::step_public_shares(self)
            }
            // Finished nodes still help victims of a faulty agreed dealing.
            Phase::Done => self.help_recover(),
        }
    }
}
