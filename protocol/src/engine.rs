//! The session engine: one per node per session, an I/O-free state machine fed with
//! signed messages and the time, returning the messages to send.
//!
//! Phases (each `schedule.phase_ms` long):
//!
//! | Feldman | Pedersen | what happens |
//! |---|---|---|
//! | – | 0 | coin flip: commit |
//! | – | 1 | coin flip: reveal; `H2 = hash(seed)` at its end |
//! | 0 | 2 | deal: commitments broadcast, shares sent; players verify (batched) |
//! | 1 | 3 | acks and complaints broadcast; dealers reveal shares of complainers |
//! | 2 | 4 | reveals; at its end QUAL is fixed (Feldman: finalize) |
//! | – | 5 | QUAL dealers publish Feldman commitments, players check them |
//! | – | 6 | shares of dealers that failed phase 5 are published and the dealers reconstructed; finalize |
//!
//! A dealer qualifies with at least `t` acks naming the commitment this node saw, no
//! proven fraud, and every "missing share" complaint answered by a public reveal.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kms_crypto::poly::{interpolate, lagrange_coefficients_at_zero, powers};
use kms_crypto::signer::bn254::verify_batch as verify_signature_batch;
use kms_crypto::signer::certified::verify_batch as verify_schnorr_batch;
use kms_crypto::signer::{
    Bn254PublicKey, OperatorPublicKey, OperatorSignature, OperatorSigner, PreparedBn254Key,
    ProtocolKeyCertificate,
};
use kms_crypto::vss::batch::{BatchItem, holds_with, verify_batch};
use kms_crypto::vss::coin::{self, CoinContribution};
use kms_crypto::vss::feldman::{self, FeldmanDealing};
use kms_crypto::vss::pedersen::{self, PedersenBase, PedersenDealing, PedersenShare};
use kms_crypto::{Commitment, G2Point, OperatorAddress, Scalar};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::certificates::CertificateCache;
use crate::error::ProtocolError;
use crate::evidence::FraudEvidence;
use crate::messages::{
    AckEntry, CoinCommit, CoinReveal, ComplaintReason, DealerCommitment, DealerShare, Payload,
    PlayerAcks, PlayerComplaint, SignedMessage, b256, commitment_words_hash,
    decode_commitment_deferred, decode_share, encode_commitment, from_address, share_hash,
    to_address,
};
use crate::outcome::{KeyShareVersion, SessionFailure, SessionOutcome};
use crate::session::{SessionKind, SessionParams, VssMode};

/// What the engine asks its host to do.
#[derive(Clone, Debug)]
pub enum Action {
    /// Deliver `message` to `to` ([`OperatorAddress::ZERO`] = every other participant).
    Send {
        /// Recipient, or the zero address for broadcast.
        to: OperatorAddress,
        /// The signed message.
        message: SignedMessage,
    },
    /// Fraud was proven; the host may submit it on-chain.
    Evidence(Box<FraudEvidence>),
    /// The session ended.
    Done(Result<SessionOutcome, SessionFailure>),
}

enum Dealing {
    Feldman(FeldmanDealing),
    Pedersen(PedersenDealing),
}

#[derive(Default)]
struct DealerView {
    commitment: Option<(SignedMessage, Commitment)>,
    commitment_hash: Option<[u8; 32]>,
    phase2: Option<(SignedMessage, Commitment)>,
    my_share: Option<(SignedMessage, PedersenShare)>,
    share_verified: Option<bool>,
    acks: BTreeMap<OperatorAddress, [u8; 32]>,
    missing_complaints: BTreeSet<OperatorAddress>,
    /// Valid shares of other players made public (reveals, reconstruction).
    public_shares: BTreeMap<OperatorAddress, (SignedMessage, PedersenShare)>,
    forwarded: bool,
    fraud: bool,
}

/// A commitment message's points, decoded once on arrival, and the hash of their
/// words (what shares and acks name).
struct Decoded {
    points: Commitment,
    hash: [u8; 32],
}

/// A message held for its phase's signature batch: everything else was checked.
struct Held {
    message: SignedMessage,
    payload: Payload,
    /// A commitment's points and hash.
    parsed: Option<Decoded>,
    /// The author's registered key.
    key: OperatorPublicKey,
}

/// The points and scalars of a multi-scalar multiplication.
type MsmTerms = Vec<(G2Point, Scalar)>;

/// The own signature of a commitment accepted on a share's word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OwnSignature {
    /// Not checked yet (it will be if the message is shown to anyone).
    Unchecked,
    /// Checked and failed: the message is not shown to anyone.
    Failed,
}

/// One node's engine for one session.
pub struct Engine {
    params: SessionParams,
    session_hash: [u8; 32],
    me: OperatorAddress,
    signer: Arc<dyn OperatorSigner>,
    /// Randomness of the checks (batch weights, complaint challenges).
    rng: ChaCha20Rng,
    /// Randomness of what this node deals: its coin contribution, its DKG secret and
    /// its polynomials. A stream of its own, so that the dealing is a function of the
    /// seed and the session alone, whatever was checked before it (see
    /// [`Engine::new`]).
    dealing_rng: ChaCha20Rng,
    current_share: Option<Scalar>,
    /// Reshare: each dealer's Lagrange coefficient at zero over all the session's
    /// dealers (`λ_D`); a dealer deals `λ_D·s_D`. Empty for a DKG.
    reshare_weights: BTreeMap<OperatorAddress, Scalar>,
    dealing: Option<Dealing>,
    my_commitment: Option<SignedMessage>,
    my_shares: BTreeMap<OperatorAddress, SignedMessage>,
    /// `keccak256` of each player's signed ack bundle that acknowledges this dealer.
    my_ack_messages: BTreeMap<OperatorAddress, [u8; 32]>,
    coin: Option<CoinContribution>,
    coin_commits: BTreeMap<OperatorAddress, [u8; 32]>,
    coin_reveals: BTreeMap<OperatorAddress, [u8; 32]>,
    base: Option<PedersenBase>,
    views: BTreeMap<OperatorAddress, DealerView>,
    evidence: Vec<FraudEvidence>,
    /// Authenticated messages waiting for something (the Pedersen base, a dealer's
    /// commitment); their signatures were checked.
    pending: Vec<SignedMessage>,
    /// Messages of the phase under way whose signatures are checked as one batch
    /// (see [`Engine::flush_inbox`]); everything but the signature was checked.
    inbox: Vec<Held>,
    /// The phase whose mid-point flush of the inbox was done.
    mid_flushed: Option<u64>,
    /// Participants' BN254 keys with their Miller-loop lines precomputed.
    prepared: BTreeMap<OperatorAddress, PreparedBn254Key>,
    /// Protocol-key certificates checked so far (shared with the host's other
    /// sessions, see [`Engine::with_certificates`]).
    certificates: Arc<CertificateCache>,
    /// The certificate each participant's messages were last found to carry validly
    /// (a comparison instead of a cache lookup, which hashes the certificate).
    known_certificates: BTreeMap<OperatorAddress, ProtocolKeyCertificate>,
    /// Messages accepted into the inbox whose signature then failed.
    bad_signatures: u64,
    /// Stored phase-1 commitments accepted on a signed share's word (see
    /// [`Engine::flush_inbox`]), by hash: whether their own signature is still
    /// unchecked or was checked and failed.
    vouched: BTreeMap<[u8; 32], OwnSignature>,
    /// Handling the inbox's messages: checks that can be batched wait for the end.
    flushing: bool,
    /// Dealers whose phase-2 commitment arrived and awaits the batched share check.
    phase2_unchecked: Vec<OperatorAddress>,
    /// Feldman reshare: dealers whose constant passed together with the share checks
    /// (see [`Engine::verify_pending_shares`]), with the commitment hash it was on.
    constants_checked: BTreeMap<OperatorAddress, [u8; 32]>,
    /// Pedersen: the subgroup-checked sum of these QUAL dealers' phase-2 commitments.
    phase2_sum: Option<(Vec<OperatorAddress>, Commitment)>,
    phases_done: u64,
    qualified: Option<Vec<OperatorAddress>>,
    outcome: Option<Result<SessionOutcome, SessionFailure>>,
    out: Vec<Action>,
}

impl Engine {
    /// Sets up this node's engine. `current_share` is required for a reshare dealer
    /// and is checked against the previous public polynomial (a node with a corrupt
    /// share must not deal). `seed` seeds the engine's randomness; what this node
    /// deals (coin contribution, polynomials) depends on nothing else besides the
    /// session, its share and, in Pedersen mode, the coin's outcome, so a host that
    /// derives the seed from the session can make a re-run deal exactly as before.
    pub fn new(
        params: SessionParams,
        me: OperatorAddress,
        signer: Arc<dyn OperatorSigner>,
        current_share: Option<Scalar>,
        seed: [u8; 32],
    ) -> Result<Self, ProtocolError> {
        if !params.dealers.contains(&me) && !params.players.contains(&me) {
            return Err(ProtocolError::InvalidSession(
                "this node is not in the session",
            ));
        }
        // A reshare dealer that lost its share (it missed the last session, or its
        // store was wiped) sits out dealing: the others see it as a silent dealer and
        // disqualify it, and it still receives its share of the new version.
        if params.kind == SessionKind::Reshare
            && params.dealers.contains(&me)
            && let Some(share) = current_share.as_ref()
        {
            let prev = params
                .previous
                .as_ref()
                .ok_or(ProtocolError::InvalidSession(
                    "reshare without a previous key",
                ))?;
            let x = params
                .dealers
                .evaluation_point(&me)
                .ok_or(ProtocolError::InvalidSession("no evaluation point"))?;
            if prev.evaluate(x) != G2Point::mul_generator(share) {
                return Err(ProtocolError::InvalidSession(
                    "current share does not match the previous key",
                ));
            }
        }
        let views = params
            .dealers
            .addresses()
            .map(|a| (*a, DealerView::default()))
            .collect();
        let reshare_weights = match params.kind {
            SessionKind::Reshare => params.dealers.lagrange_at_zero()?,
            SessionKind::Dkg => BTreeMap::new(),
        };
        Ok(Self {
            session_hash: params.session_hash(),
            params,
            me,
            signer,
            rng: ChaCha20Rng::from_seed(seed),
            dealing_rng: {
                let mut r = ChaCha20Rng::from_seed(seed);
                r.set_stream(1);
                r
            },
            current_share,
            reshare_weights,
            dealing: None,
            my_commitment: None,
            my_shares: BTreeMap::new(),
            my_ack_messages: BTreeMap::new(),
            coin: None,
            coin_commits: BTreeMap::new(),
            coin_reveals: BTreeMap::new(),
            base: None,
            views,
            evidence: Vec::new(),
            pending: Vec::new(),
            inbox: Vec::new(),
            mid_flushed: None,
            prepared: BTreeMap::new(),
            known_certificates: BTreeMap::new(),
            certificates: Arc::new(CertificateCache::new()),
            bad_signatures: 0,
            vouched: BTreeMap::new(),
            flushing: false,
            phase2_unchecked: Vec::new(),
            constants_checked: BTreeMap::new(),
            phase2_sum: None,
            phases_done: 0,
            qualified: None,
            outcome: None,
            out: Vec::new(),
        })
    }

    /// How many dealers' reshare constants were checked together with this node's
    /// shares (one MSM for both) rather than on their own at the end of the session.
    pub fn constants_checked_with_shares(&self) -> usize {
        self.constants_checked.len()
    }

    /// Shares the host's cache of checked protocol-key certificates, so that a peer's
    /// certificate is checked once per node rather than once per session.
    pub fn with_certificates(mut self, cache: Arc<CertificateCache>) -> Self {
        self.certificates = cache;
        self
    }

    /// The session parameters.
    pub fn params(&self) -> &SessionParams {
        &self.params
    }

    /// The session hash every message must carry.
    pub fn session_hash(&self) -> [u8; 32] {
        self.session_hash
    }

    /// The outcome, once the session ended.
    pub fn outcome(&self) -> Option<&Result<SessionOutcome, SessionFailure>> {
        self.outcome.as_ref()
    }

    /// All fraud evidence gathered so far.
    pub fn evidence(&self) -> &[FraudEvidence] {
        &self.evidence
    }

    /// What this node as a dealer records on-chain after the session: the hash of its
    /// phase-1 commitment and the hashes of the signed ack messages (ordered by
    /// player) that acknowledged it. `None` if it did not deal.
    pub fn dealer_record(&self) -> Option<([u8; 32], Vec<[u8; 32]>)> {
        let hash = self.views.get(&self.me)?.commitment_hash?;
        Some((hash, self.my_ack_messages.values().copied().collect()))
    }

    /// Every other dealer's signed phase-1 commitment as this node received it, with
    /// its hash: a player compares them with what the dealers record on-chain.
    /// Commitments whose own signature fails (see [`Engine::flush_inbox`]) are left
    /// out: they could not prove anything on-chain.
    pub fn received_commitments(&self) -> Vec<(OperatorAddress, SignedMessage, [u8; 32])> {
        self.views
            .iter()
            .filter(|(d, _)| **d != self.me)
            .filter_map(|(d, v)| {
                let (m, _) = v.commitment.as_ref()?;
                let shown = match self.vouched.get(&m.hash) {
                    None => true,
                    Some(OwnSignature::Unchecked) => self.authentic_now(m),
                    Some(OwnSignature::Failed) => false,
                };
                if !shown {
                    return None;
                }
                Some((*d, m.clone(), v.commitment_hash?))
            })
            .collect()
    }

    /// `f(0)·G2` of this node's own dealing, once dealt (for audits and tests: the
    /// master public key of a DKG is the sum of these over the qualified dealers).
    pub fn own_contribution(&self) -> Option<G2Point> {
        match self.dealing.as_ref()? {
            Dealing::Feldman(d) => Some(*d.commitment().constant()),
            Dealing::Pedersen(d) => Some(*d.feldman_commitment().constant()),
        }
    }

    /// The Pedersen base, once fixed.
    pub fn pedersen_base(&self) -> Option<&PedersenBase> {
        self.base.as_ref()
    }

    fn offset(&self) -> u64 {
        match self.params.mode {
            VssMode::Feldman => 0,
            VssMode::Pedersen => 2,
        }
    }

    fn is_dealer(&self) -> bool {
        self.params.dealers.contains(&self.me)
            && (self.params.kind == SessionKind::Dkg || self.current_share.is_some())
    }

    fn is_player(&self) -> bool {
        self.params.players.contains(&self.me)
    }

    /// Starts the session: deals (Feldman) or commits to a coin contribution (Pedersen).
    pub fn start(&mut self, now_ms: u64) -> Vec<Action> {
        match self.params.mode {
            VssMode::Feldman => self.deal(),
            VssMode::Pedersen => self.coin_commit(),
        }
        self.tick(now_ms)
    }

    /// Advances deadlines that passed by `now_ms`.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Action> {
        let last = self.offset()
            + if self.params.mode == VssMode::Pedersen {
                4
            } else {
                2
            };
        // Halfway through a phase, whatever has arrived is checked even if the phase
        // still waits for someone: complaints and forwarded proofs it produces must
        // reach the others before the deadline (Pedersen phase 2 decides who gets
        // reconstructed).
        let phase = self.phases_done;
        let mid = self
            .params
            .schedule
            .phase_end(phase)
            .saturating_sub(self.params.schedule.phase_ms / 2);
        if self.mid_flushed != Some(phase) && now_ms >= mid && self.outcome.is_none() {
            self.mid_flushed = Some(phase);
            self.flush_due();
        }
        while self.outcome.is_none()
            && self.phases_done <= last
            && now_ms >= self.params.schedule.phase_end(self.phases_done)
        {
            // What arrived before the deadline counts for it.
            self.flush_due();
            let phase = self.phases_done;
            self.phases_done += 1;
            self.end_of_phase(phase);
        }
        std::mem::take(&mut self.out)
    }

    /// Messages that were accepted (everything but the signature checked) and then
    /// dropped when their batch's signature check named them. A host counts these with
    /// the refusals [`Engine::handle`] returns.
    pub fn bad_signatures(&self) -> u64 {
        self.bad_signatures
    }

    /// Handles one message. `Err` says why it was rejected; rejected messages change
    /// nothing.
    pub fn handle(
        &mut self,
        now_ms: u64,
        message: &SignedMessage,
    ) -> Result<Vec<Action>, ProtocolError> {
        let mut actions = self.tick(now_ms);
        if let Err(e) = self.process(message) {
            // Keep what the deadlines produced for the next call.
            actions.append(&mut self.out);
            self.out = actions;
            return Err(e);
        }
        actions.append(&mut self.out);
        Ok(actions)
    }

    /// Checks everything about `m` but its signature; returns the payload and the
    /// author's registered key.
    fn authenticate(
        &self,
        m: &SignedMessage,
    ) -> Result<(Payload, &OperatorPublicKey), ProtocolError> {
        // Hash, canonical encoding and author, decoded once.
        let payload = m.open_unverified()?;
        let (ts, hash) = payload.session();
        if ts != self.params.timestamp || hash != self.session_hash {
            // A replay from another session, or a peer with another view of the set.
            return Err(ProtocolError::Rejected("message for another session"));
        }
        let author = payload.author();
        let participant = match payload {
            Payload::Commitment(_) | Payload::Share(_) => self.params.dealers.participant(&author),
            Payload::Ack(_) | Payload::Complaint(_) => self.params.players.participant(&author),
            Payload::CoinCommit(_) | Payload::CoinReveal(_) => self
                .params
                .players
                .participant(&author)
                .or_else(|| self.params.dealers.participant(&author)),
        }
        .ok_or(ProtocolError::Rejected(
            "sender is not a member of the session in this role",
        ))?;
        Ok((payload, &participant.public_key))
    }

    fn process(&mut self, m: &SignedMessage) -> Result<(), ProtocolError> {
        if self.outcome.is_some() {
            return Err(ProtocolError::Rejected("session already finished"));
        }
        let (payload, key) = self.authenticate(m)?;
        let key = key.clone();
        if matches!(payload, Payload::CoinCommit(_)) && self.phases_done > 0 {
            return Err(ProtocolError::Rejected(
                "coin commitment after its deadline",
            ));
        }
        if self.batches(&payload) {
            // Refuse what is malformed now; only the signature waits for the batch.
            let parsed = self.precheck(&payload)?;
            if self.inbox.len() >= self.inbox_cap() {
                self.flush_inbox();
            }
            self.inbox.push(Held {
                message: m.clone(),
                payload,
                parsed,
                key,
            });
            if self.inbox_complete() {
                self.flush_due();
            }
            return Ok(());
        }
        if !self.check_signature(m, &key) {
            return Err(ProtocolError::BadSignature);
        }
        self.dispatch(m, payload, None, true)
    }

    /// Checks one message's signature against its author's registered key; a
    /// certified signature's certificate is looked up in (or added to) the cache.
    /// The message was authenticated for this session (so its timestamp is the
    /// session's).
    fn check_signature(&self, m: &SignedMessage, key: &OperatorPublicKey) -> bool {
        match &m.signature {
            OperatorSignature::Certified(c) => {
                m.certificate_fits(&c.certificate, self.params.timestamp)
                    && self.certificates.check(key, &c.certificate)
                    && c.signature
                        .verify_prepared(&self.certificates.prepared(&c.certificate.key), &m.hash)
                        .is_ok()
            }
            _ => m.verify_signature(key).is_ok(),
        }
    }

    /// A participant's BN254 key with its Miller-loop lines, prepared once per session.
    fn prepared_key(&mut self, signer: OperatorAddress, pk: &Bn254PublicKey) -> PreparedBn254Key {
        self.prepared
            .entry(signer)
            .or_insert_with(|| pk.prepare())
            .clone()
    }

    /// For each held message, whether its certificate (if it has one) is valid: it
    /// names the signer, covers the session and verifies under the signer's
    /// registered key. Certificates not seen before are checked together — BN254
    /// ones as one batch — and remembered.
    fn check_certificates(&mut self, inbox: &[Held]) -> Vec<bool> {
        /// A held message's certificate.
        enum Status {
            /// Not certified, or a certificate checked before.
            Valid,
            /// Names another signer or does not cover the session.
            Unfit,
            /// The `i`-th certificate not seen before.
            Fresh(usize),
        }
        let mut fresh: Vec<(OperatorAddress, &OperatorPublicKey, &ProtocolKeyCertificate)> =
            Vec::new();
        let status: Vec<Status> = inbox
            .iter()
            .map(|h| {
                let OperatorSignature::Certified(c) = &h.message.signature else {
                    return Status::Valid;
                };
                let c = &c.certificate;
                if !h.message.certificate_fits(c, self.params.timestamp) {
                    Status::Unfit
                } else if self.known_certificates.get(&h.message.signer) == Some(c)
                    || self.certificates.contains(&h.key, c)
                {
                    Status::Valid
                } else if let Some(i) = fresh.iter().position(|(_, k, f)| *k == &h.key && *f == c) {
                    Status::Fresh(i)
                } else {
                    fresh.push((h.message.signer, &h.key, c));
                    Status::Fresh(fresh.len() - 1)
                }
            })
            .collect();
        let mut valid = vec![false; fresh.len()];
        let mut keys = Vec::new();
        let mut items = Vec::new();
        // The certificates in the BN254 batch (only those: the rest are checked alone).
        let mut in_batch = Vec::new();
        for (i, (signer, key, c)) in fresh.iter().enumerate() {
            match (key, &c.signature) {
                (OperatorPublicKey::Bn254(pk), OperatorSignature::Bn254(sig)) => {
                    in_batch.push(i);
                    keys.push(self.prepared_key(*signer, pk));
                    let digest = ProtocolKeyCertificate::digest(
                        &c.operator,
                        &c.key,
                        c.not_before,
                        c.not_after,
                    );
                    items.push((keys.len() - 1, digest, *sig));
                }
                _ => valid[i] = self.certificates.check(key, c),
            }
        }
        if !items.is_empty() {
            let batch_ok = verify_signature_batch(&keys, &items, &mut self.rng);
            for i in in_batch {
                let (_, key, c) = fresh[i];
                valid[i] = if batch_ok {
                    self.certificates.insert(key, c);
                    true
                } else {
                    self.certificates.check(key, c)
                };
            }
        }
        let valid: Vec<bool> = status
            .into_iter()
            .map(|s| match s {
                Status::Valid => true,
                Status::Unfit => false,
                Status::Fresh(i) => valid[i],
            })
            .collect();
        for (h, ok) in inbox.iter().zip(&valid) {
            if let (OperatorSignature::Certified(c), true) = (&h.message.signature, ok) {
                let known = self.known_certificates.get(&h.message.signer);
                if known != Some(&c.certificate) {
                    self.known_certificates
                        .insert(h.message.signer, c.certificate.clone());
                }
            }
        }
        valid
    }

    /// The content checks of a message that can be made before acting on it; returns
    /// a commitment's decoded points and hash so they are computed once.
    fn precheck(&self, payload: &Payload) -> Result<Option<Decoded>, ProtocolError> {
        match payload {
            Payload::Commitment(c) => self.parse_commitment(c).map(Some),
            Payload::Share(s) => {
                self.params
                    .players
                    .evaluation_point(&from_address(&s.player))
                    .ok_or(ProtocolError::Rejected("share for a non-member"))?;
                self.check_share_encoding(s)?;
                Ok(None)
            }
            Payload::Ack(a) => {
                self.check_ack(a)?;
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    fn parse_commitment(&self, c: &DealerCommitment) -> Result<Decoded, ProtocolError> {
        let points = decode_commitment_deferred(&c.commitment)?;
        if points.threshold() != self.params.players.threshold() {
            return Err(ProtocolError::Rejected("commitment has the wrong degree"));
        }
        if c.phase != 1 && !(c.phase == 2 && self.params.mode == VssMode::Pedersen) {
            return Err(ProtocolError::Rejected("unknown commitment phase"));
        }
        let hash = commitment_words_hash(&c.commitment);
        debug_assert_eq!(hash, points.hash());
        Ok(Decoded { points, hash })
    }

    fn check_share_encoding(&self, s: &DealerShare) -> Result<PedersenShare, ProtocolError> {
        let value = decode_share(s)?;
        if self.params.mode == VssMode::Feldman && !value.blinding.is_zero() {
            return Err(ProtocolError::Malformed(
                "Feldman share with a blinding value",
            ));
        }
        Ok(value)
    }

    fn check_ack(&self, a: &PlayerAcks) -> Result<(), ProtocolError> {
        if a.acks.len() > self.params.dealers.len() {
            return Err(ProtocolError::Malformed("more acks than dealers"));
        }
        if a.acks
            .iter()
            .any(|e| !self.views.contains_key(&from_address(&e.dealer)))
        {
            return Err(ProtocolError::Rejected("ack for a non-dealer"));
        }
        Ok(())
    }

    /// A message this node signed itself: no signature to check, no batching.
    fn process_own(&mut self, m: &SignedMessage) {
        if self.outcome.is_some() {
            return;
        }
        if let Ok((payload, _)) = self.authenticate(m) {
            // Rejections (e.g. duplicates) are fine.
            let _ = self.dispatch(m, payload, None, true);
        }
    }

    /// Whether `payload` belongs to the bulk of the phase under way (or one about to
    /// start), whose signatures are checked together: every dealer's commitment and
    /// share in the deal phase, every player's acks after it, the coin flip, the
    /// phase-2 commitments. Anything else (complaints, reveals, late messages) is
    /// checked on arrival.
    fn batches(&self, payload: &Payload) -> bool {
        let (off, done) = (self.offset(), self.phases_done);
        let pedersen = self.params.mode == VssMode::Pedersen;
        match payload {
            Payload::Commitment(c) if c.phase == 1 => done <= off,
            Payload::Commitment(_) => pedersen && done <= off + 3,
            Payload::Share(_) => done <= off,
            Payload::Ack(_) => done <= off + 1,
            Payload::CoinCommit(_) => pedersen && done == 0,
            Payload::CoinReveal(_) => pedersen && done <= 1,
            Payload::Complaint(_) => false,
        }
    }

    /// The inbox is flushed early when it holds everything the phase under way
    /// expects from the others (so a fast network is not held to the deadline).
    fn inbox_complete(&self) -> bool {
        let (off, done) = (self.offset(), self.phases_done);
        let others =
            |set: &crate::session::OperatorSet| set.len() - usize::from(set.contains(&self.me));
        let count =
            |f: &dyn Fn(&Payload) -> bool| self.inbox.iter().filter(|h| f(&h.payload)).count();
        let pedersen = self.params.mode == VssMode::Pedersen;
        if pedersen && done == 1 {
            return count(&|p| matches!(p, Payload::CoinReveal(_))) >= others(&self.params.players);
        }
        if done == off {
            let commitments = count(&|p| matches!(p, Payload::Commitment(c) if c.phase == 1));
            let shares =
                count(&|p| matches!(p, Payload::Share(s) if from_address(&s.player) == self.me));
            let dealers = others(&self.params.dealers);
            return commitments >= dealers && (!self.is_player() || shares >= dealers);
        }
        if done == off + 1 {
            return count(&|p| matches!(p, Payload::Ack(_))) >= others(&self.params.players);
        }
        if pedersen && done == off + 3 {
            let qual = self
                .qualified
                .as_ref()
                .map_or(0, |q| q.len() - usize::from(q.contains(&self.me)));
            return count(&|p| matches!(p, Payload::Commitment(c) if c.phase == 2)) >= qual;
        }
        false
    }

    /// Bounds the inbox: a flood of messages is checked (and dropped) in batches.
    fn inbox_cap(&self) -> usize {
        4 * (self.params.players.len() + self.params.dealers.len())
    }

    /// Flushes the inbox unless it is holding coin commitments: they are only needed
    /// when the reveals come, and one batch for both costs one Miller loop per
    /// operator instead of two. (A flood still flushes at [`Engine::inbox_cap`].)
    fn flush_due(&mut self) {
        if self.params.mode == VssMode::Pedersen && self.phases_done == 0 {
            return;
        }
        self.flush_inbox();
    }

    /// Checks the inbox's signatures as one batch — BN254 signatures with one
    /// multi-Miller loop over the distinct signers and one final exponentiation;
    /// one by one only if the batch fails — then handles the authentic messages in
    /// their order of arrival.
    fn flush_inbox(&mut self) {
        if self.inbox.is_empty() {
            return;
        }
        let inbox = std::mem::take(&mut self.inbox);
        let certified = self.check_certificates(&inbox);
        // Messages whose signatures go into a batch: BN254 ones, and certified ones
        // whose certificate holds (a Schnorr batch).
        let batched: Vec<bool> = inbox
            .iter()
            .zip(&certified)
            .map(|(h, ok)| match (&h.key, &h.message.signature) {
                (OperatorPublicKey::Bn254(_), OperatorSignature::Bn254(_)) => true,
                (_, OperatorSignature::Certified(_)) => *ok,
                _ => false,
            })
            .collect();
        // A phase-1 commitment needs no signature check of its own when a batch-signed
        // share to this node in the same batch names its hash: that signature covers
        // the hash of the commitment's points, and the rest of the commitment's
        // payload (session, dealer, phase) was checked against the session. It saves
        // a third of a deal phase's signature work. The commitment's own signature is
        // checked if the message is ever forwarded or becomes evidence
        // ([`Engine::authentic`]).
        let named: BTreeMap<OperatorAddress, [u8; 32]> = inbox
            .iter()
            .zip(&batched)
            .filter(|(_, b)| **b)
            .filter_map(|(h, _)| match &h.payload {
                Payload::Share(s) if from_address(&s.player) == self.me => {
                    Some((from_address(&s.dealer), s.commitmentHash.0))
                }
                _ => None,
            })
            .collect();
        // Likewise a coin reveal that opens its sender's coin commitment — one checked
        // before, or the only one from that operator in this batch — says nothing the
        // commitment's signature does not cover: the value is bound to the operator and
        // the session, and whoever relays it, it is the operator's.
        let mut inbox_commits: BTreeMap<OperatorAddress, Option<[u8; 32]>> = BTreeMap::new();
        for (h, b) in inbox.iter().zip(&batched) {
            if let (Payload::CoinCommit(c), true) = (&h.payload, b) {
                inbox_commits
                    .entry(from_address(&c.operator))
                    .and_modify(|seen| *seen = None)
                    .or_insert(Some(c.commitment.0));
            }
        }
        let coin_context = self.coin_context();
        // At most one per dealer: any other copy (a duplicate, say with a forged
        // signature) goes into the batch, and a checked copy replaces an unchecked one.
        let mut vouched_for = BTreeSet::new();
        let mut reveals_vouched_for = BTreeSet::new();
        let vouched: Vec<bool> = inbox
            .iter()
            .map(|h| match (&h.payload, &h.parsed) {
                (Payload::Commitment(c), Some(decoded)) if c.phase == 1 => {
                    let dealer = from_address(&c.dealer);
                    named.get(&dealer) == Some(&decoded.hash) && vouched_for.insert(dealer)
                }
                (Payload::CoinReveal(r), _) => {
                    let who = from_address(&r.operator);
                    let commitment = match self.coin_commits.get(&who) {
                        Some(c) => Some(*c),
                        None => inbox_commits.get(&who).copied().flatten(),
                    };
                    commitment
                        .is_some_and(|c| coin::verify_reveal(&c, &coin_context, &who, &r.value.0))
                        && reveals_vouched_for.insert(who)
                }
                _ => false,
            })
            .collect();
        let mut keys: Vec<PreparedBn254Key> = Vec::new();
        let mut key_index: BTreeMap<OperatorAddress, usize> = BTreeMap::new();
        let mut items = Vec::new();
        // Certified messages in the batch, with their (certificate-checked) keys'
        // tables from the host's cache.
        let mut certified_keys = Vec::new();
        for (i, h) in inbox.iter().enumerate() {
            if vouched[i] || !batched[i] {
                continue;
            }
            let m = &h.message;
            match (&h.key, &m.signature) {
                (_, OperatorSignature::Certified(c)) => {
                    certified_keys.push((self.certificates.prepared(&c.certificate.key), m, c));
                }
                (OperatorPublicKey::Bn254(pk), OperatorSignature::Bn254(sig)) => {
                    let k = match key_index.get(&m.signer) {
                        Some(k) => *k,
                        None => {
                            keys.push(self.prepared_key(m.signer, pk));
                            key_index.insert(m.signer, keys.len() - 1);
                            keys.len() - 1
                        }
                    };
                    items.push((k, m.hash, *sig));
                }
                _ => {}
            }
        }
        let schnorr: Vec<_> = certified_keys
            .iter()
            .map(|(k, m, c)| (k, &m.hash, &c.signature))
            .collect();
        let batch_ok = verify_signature_batch(&keys, &items, &mut self.rng)
            && verify_schnorr_batch(&schnorr, &mut self.rng);
        self.flushing = true;
        // Coin commitments before the reveals that open them; otherwise in order of
        // arrival.
        let mut order: Vec<(usize, Held)> = inbox.into_iter().enumerate().collect();
        order.sort_by_key(|(_, h)| !matches!(h.payload, Payload::CoinCommit(_)));
        for (i, h) in order {
            let unchecked = batch_ok && vouched[i];
            let authentic = certified[i]
                && (unchecked
                    || (batched[i] && batch_ok)
                    || self.check_signature(&h.message, &h.key));
            if !authentic {
                self.bad_signatures += 1;
                continue;
            }
            if self.outcome.is_some() {
                break;
            }
            let _ = self.dispatch(&h.message, h.payload, h.parsed, !unchecked);
        }
        self.flushing = false;
        self.check_phase2_batch();
    }

    /// Acts on an authenticated message: its signature was checked, or (only
    /// `signature_checked = false`) its content vouched for (see
    /// [`Engine::flush_inbox`]).
    fn dispatch(
        &mut self,
        m: &SignedMessage,
        payload: Payload,
        parsed: Option<Decoded>,
        signature_checked: bool,
    ) -> Result<(), ProtocolError> {
        match payload {
            Payload::Commitment(c) => self.on_commitment(m, c, parsed, signature_checked),
            Payload::Share(s) => self.on_share(m, s),
            Payload::Ack(a) => self.on_ack(m.hash, a),
            Payload::Complaint(c) => self.on_complaint(m, c),
            Payload::CoinCommit(c) => self.on_coin_commit(c),
            Payload::CoinReveal(r) => self.on_coin_reveal(r),
        }
    }

    fn sign(&self, payload: &Payload) -> SignedMessage {
        SignedMessage::sign(payload, self.me, self.signer.as_ref())
    }

    /// Broadcasts and processes locally (a node is a recipient of its own broadcasts).
    fn broadcast(&mut self, m: SignedMessage) {
        self.out.push(Action::Send {
            to: OperatorAddress::ZERO,
            message: m.clone(),
        });
        // Own messages are authentic by construction.
        self.process_own(&m);
    }

    fn send(&mut self, to: OperatorAddress, m: SignedMessage) {
        if to == self.me {
            self.process_own(&m);
        } else {
            self.out.push(Action::Send { to, message: m });
        }
    }

    /// Sends a stored message of someone else's (or this node's) to every other
    /// participant, if its signature holds (see [`Engine::authentic`]).
    fn forward(&mut self, m: SignedMessage) {
        if self.authentic(&m) {
            self.out.push(Action::Send {
                to: OperatorAddress::ZERO,
                message: m,
            });
        }
    }

    /// Whether `m`'s signature holds. Every stored message's signature was checked on
    /// arrival except phase-1 commitments vouched for by a signed share (see
    /// [`Engine::flush_inbox`]); those are checked here, once, before they are shown
    /// to anyone else or become evidence.
    fn authentic(&mut self, m: &SignedMessage) -> bool {
        match self.vouched.get(&m.hash) {
            None => true,
            Some(OwnSignature::Failed) => false,
            Some(OwnSignature::Unchecked) if self.authentic_now(m) => {
                self.vouched.remove(&m.hash);
                true
            }
            Some(OwnSignature::Unchecked) => {
                self.bad_signatures += 1;
                self.vouched.insert(m.hash, OwnSignature::Failed);
                false
            }
        }
    }

    /// Checks a dealer's message's signature on its own.
    fn authentic_now(&self, m: &SignedMessage) -> bool {
        self.params
            .dealers
            .participant(&m.signer)
            .is_some_and(|p| self.check_signature(m, &p.public_key))
    }

    fn convict(&mut self, evidence: FraudEvidence) {
        let dealer = evidence.dealer();
        if let Some(v) = self.views.get_mut(&dealer) {
            if v.fraud
                && self
                    .evidence
                    .iter()
                    .any(|e| e.dealer() == dealer && e.kind() == evidence.kind())
            {
                return;
            }
            v.fraud = true;
        }
        // The dealer's content is at fault either way (a vouched commitment's points
        // are the dealer's); but evidence whose own signatures fail would prove
        // nothing to anyone else, so it is not put out.
        if !evidence.messages().into_iter().all(|m| self.authentic(m)) {
            return;
        }
        self.out.push(Action::Evidence(Box::new(evidence.clone())));
        self.evidence.push(evidence);
    }

    /// Checks `dealer`'s commitment of `phase` for points outside G2 (exact, at most
    /// once per commitment: a success is remembered) and convicts on a violation.
    /// Called before blaming a dealer for a failed share or constant check, which
    /// torsion alone can break, and on the aggregate path. `true` = convicted.
    fn convict_torsion(&mut self, dealer: &OperatorAddress, phase: u8) -> bool {
        let Some(view) = self.views.get_mut(dealer) else {
            return false;
        };
        let slot = if phase == 1 {
            &mut view.commitment
        } else {
            &mut view.phase2
        };
        let Some((m, c)) = slot else {
            return false;
        };
        if c.check_subgroup().is_ok() {
            return false;
        }
        let commitment = m.clone();
        self.convict(FraudEvidence::InvalidCommitmentPoint { commitment });
        true
    }

    // ---- coin flip (Pedersen) ----

    fn coin_context(&self) -> Vec<u8> {
        self.session_hash.to_vec()
    }

    fn coin_commit(&mut self) {
        let c = CoinContribution::random(&mut self.dealing_rng);
        let commitment = c.commitment(&self.coin_context(), &self.me);
        self.coin = Some(c);
        let msg = self.sign(&Payload::CoinCommit(CoinCommit {
            sessionTimestamp: self.params.timestamp.0,
            sessionHash: b256(self.session_hash),
            operator: to_address(&self.me),
            commitment: b256(commitment),
        }));
        self.broadcast(msg);
    }

    /// Coin commitments that arrived in time (see [`Engine::process`]); they wait in
    /// the inbox for the reveals (see [`Engine::flush_due`]).
    fn on_coin_commit(&mut self, c: CoinCommit) -> Result<(), ProtocolError> {
        let who = from_address(&c.operator);
        if self.coin_commits.contains_key(&who) {
            return Err(ProtocolError::Rejected("duplicate coin commitment"));
        }
        self.coin_commits.insert(who, c.commitment.0);
        Ok(())
    }

    fn on_coin_reveal(&mut self, r: CoinReveal) -> Result<(), ProtocolError> {
        if self.phases_done != 1 {
            return Err(ProtocolError::Rejected("coin reveal outside its phase"));
        }
        let who = from_address(&r.operator);
        let commitment = self
            .coin_commits
            .get(&who)
            .ok_or(ProtocolError::Rejected("coin reveal without commitment"))?;
        if !coin::verify_reveal(commitment, &self.coin_context(), &who, &r.value.0) {
            return Err(ProtocolError::Rejected(
                "coin reveal does not open the commitment",
            ));
        }
        self.coin_reveals.entry(who).or_insert(r.value.0);
        Ok(())
    }

    // ---- dealing ----

    fn deal(&mut self) {
        if !self.is_dealer() {
            return;
        }
        let t = self.params.players.threshold();
        let secret = match self.params.kind {
            SessionKind::Dkg => Scalar::random(&mut self.dealing_rng),
            // Pre-weighted: if every dealer qualifies, the players just add up what
            // they receive, as in a DKG (see `finalize`).
            SessionKind::Reshare => match (&self.current_share, self.reshare_weights.get(&self.me))
            {
                (Some(share), Some(weight)) => share * weight,
                _ => return,
            },
        };
        let dealing = match (self.params.mode, self.base) {
            (VssMode::Feldman, _) => {
                FeldmanDealing::new(secret, t, &mut self.dealing_rng).map(Dealing::Feldman)
            }
            (VssMode::Pedersen, Some(base)) => {
                PedersenDealing::new(secret, t, &base, &mut self.dealing_rng).map(Dealing::Pedersen)
            }
            (VssMode::Pedersen, None) => return,
        };
        let Ok(dealing) = dealing else { return };
        let commitment = match &dealing {
            Dealing::Feldman(d) => d.commitment().clone(),
            Dealing::Pedersen(d) => d.commitment().clone(),
        };
        let commitment_hash = commitment.hash();
        let cmsg = self.sign(&Payload::Commitment(DealerCommitment {
            sessionTimestamp: self.params.timestamp.0,
            sessionHash: b256(self.session_hash),
            dealer: to_address(&self.me),
            phase: 1,
            commitment: encode_commitment(&commitment),
        }));
        let players: Vec<(OperatorAddress, Scalar)> = self
            .params
            .players
            .addresses()
            .map(|a| {
                (
                    *a,
                    self.params
                        .players
                        .evaluation_point(a)
                        .cloned()
                        .unwrap_or_default(),
                )
            })
            .collect();
        let mut shares = Vec::new();
        for (player, x) in players {
            let share = match &dealing {
                Dealing::Feldman(d) => PedersenShare {
                    value: d.share(&x),
                    blinding: Scalar::zero(),
                },
                Dealing::Pedersen(d) => d.share(&x),
            };
            let smsg = self.sign(&Payload::Share(DealerShare {
                sessionTimestamp: self.params.timestamp.0,
                sessionHash: b256(self.session_hash),
                dealer: to_address(&self.me),
                player: to_address(&player),
                commitmentHash: b256(commitment_hash),
                share: b256(share.value.to_bytes_be()),
                blinding: b256(share.blinding.to_bytes_be()),
            }));
            shares.push((player, smsg));
        }
        self.dealing = Some(dealing);
        self.my_commitment = Some(cmsg.clone());
        self.broadcast(cmsg);
        for (player, smsg) in shares {
            self.my_shares.insert(player, smsg.clone());
            self.send(player, smsg);
        }
    }

    fn on_commitment(
        &mut self,
        m: &SignedMessage,
        c: DealerCommitment,
        parsed: Option<Decoded>,
        signature_checked: bool,
    ) -> Result<(), ProtocolError> {
        let dealer = from_address(&c.dealer);
        let Decoded {
            points: parsed,
            hash: h,
        } = match parsed {
            Some(p) => p,
            None => self.parse_commitment(&c)?,
        };
        if c.phase == 1 && self.params.mode == VssMode::Pedersen && self.base.is_none() {
            // Pending messages count as checked when they come back.
            if !signature_checked && !self.authentic_now(m) {
                return Err(ProtocolError::BadSignature);
            }
            self.pending.push(m.clone());
            return Ok(());
        }
        let view = self
            .views
            .get_mut(&dealer)
            .ok_or(ProtocolError::Rejected("not a dealer"))?;
        let slot = if c.phase == 1 {
            &mut view.commitment
        } else {
            &mut view.phase2
        };
        if let Some((first, _)) = slot {
            if first.hash == m.hash {
                // The same payload again. If the stored copy's signature was never
                // checked and this one's was, keep this one.
                if signature_checked && self.vouched.remove(&m.hash).is_some() {
                    *first = m.clone();
                }
                return Ok(());
            }
            let first = first.clone();
            let forward = !view.forwarded;
            view.forwarded = true;
            if forward {
                // Let everyone see both versions, so every honest node holds the proof.
                self.forward(first.clone());
                self.forward(m.clone());
            }
            self.convict(FraudEvidence::Equivocation {
                first,
                second: m.clone(),
            });
            return Ok(());
        }
        *slot = Some((m.clone(), parsed.clone()));
        if !signature_checked {
            self.vouched.insert(m.hash, OwnSignature::Unchecked);
        }
        if c.phase == 2 {
            // This node's own phase-2 commitment and phase-1 share come from one
            // dealing: nothing to check (an MSM of its own otherwise, as it arrives
            // outside any batch).
            if dealer != self.me {
                self.phase2_unchecked.push(dealer);
                if !self.flushing {
                    self.check_phase2_batch();
                }
            }
            let public: Vec<(SignedMessage, OperatorAddress, PedersenShare)> = self.views[&dealer]
                .public_shares
                .iter()
                .map(|(p, (m, s))| (m.clone(), *p, s.clone()))
                .collect();
            for (smsg, p, share) in public {
                if let Some(x) = self.params.players.evaluation_point(&p).cloned() {
                    self.check_public_share_phase2(&dealer, &smsg, &x, &share);
                }
            }
        } else {
            let view = self.views.get_mut(&dealer).expect("exists");
            view.commitment_hash = Some(h);
            if !view.forwarded && view.acks.values().any(|a| *a != h) {
                view.forwarded = true;
                self.forward(m.clone());
            }
            self.check_share_against_commitment(&dealer);
        }
        self.retry_pending();
        Ok(())
    }

    fn on_share(&mut self, m: &SignedMessage, s: DealerShare) -> Result<(), ProtocolError> {
        let dealer = from_address(&s.dealer);
        let player = from_address(&s.player);
        let x = self
            .params
            .players
            .evaluation_point(&player)
            .cloned()
            .ok_or(ProtocolError::Rejected("share for a non-member"))?;
        let value = self.check_share_encoding(&s)?;
        let Some(view) = self.views.get(&dealer) else {
            return Err(ProtocolError::Rejected("not a dealer"));
        };
        if player == self.me {
            if view.my_share.is_some() {
                return Ok(());
            }
            let view = self.views.get_mut(&dealer).expect("checked above");
            view.my_share = Some((m.clone(), value));
            self.check_share_against_commitment(&dealer);
            return Ok(());
        }
        // A share addressed to someone else is public: a forwarded invalid share (the
        // proof of a complaint), a reveal answering a complaint, or a reconstruction
        // share. Only the first can occur before the deal phase ends.
        let Some((cmsg, commitment)) = view.commitment.clone() else {
            if self.pending.len() < 4 * self.params.players.len() * self.params.dealers.len() {
                self.pending.push(m.clone());
            }
            return Ok(());
        };
        // A forwarded share comes with a complaint or answers one: that is when the
        // dealer's commitment gets its exact subgroup check (a torsion component can
        // make the complainer's check fail while ours passes).
        if self.convict_torsion(&dealer, 1) {
            return Ok(());
        }
        if !self.verify_one(&x, &value, &commitment) {
            self.convict(FraudEvidence::InvalidShare {
                commitment: cmsg,
                share: m.clone(),
            });
            return Ok(());
        }
        if self.phases_done <= self.offset() {
            return Err(ProtocolError::Rejected("share addressed to another player"));
        }
        self.check_public_share_phase2(&dealer, m, &x, &value);
        let view = self.views.get_mut(&dealer).expect("checked above");
        let answers_complaint = view.missing_complaints.contains(&player);
        if view
            .public_shares
            .insert(player, (m.clone(), value))
            .is_none()
            && answers_complaint
        {
            // Echo reveals once: a dealer revealing to only some nodes must not split
            // the honest nodes' view of who answered their complaints.
            self.forward(m.clone());
        }
        Ok(())
    }

    /// Pedersen: a public phase-1 share that contradicts the dealer's phase-2
    /// commitment proves phase-2 fraud.
    fn check_public_share_phase2(
        &mut self,
        dealer: &OperatorAddress,
        smsg: &SignedMessage,
        x: &Scalar,
        share: &PedersenShare,
    ) {
        let Some(view) = self.views.get(dealer) else {
            return;
        };
        if let (Some((pmsg, _)), Some((fmsg, fc))) = (&view.commitment, &view.phase2)
            && !feldman::verify_share(x, &share.value, fc)
        {
            let ev = FraudEvidence::Phase2Inconsistency {
                pedersen: pmsg.clone(),
                feldman: fmsg.clone(),
                share: smsg.clone(),
            };
            if !self.convict_torsion(dealer, 2) && !self.convict_torsion(dealer, 1) {
                self.convict(ev);
            }
        }
    }

    fn verify_one(&self, x: &Scalar, share: &PedersenShare, commitment: &Commitment) -> bool {
        match (self.params.mode, self.base.as_ref()) {
            (VssMode::Feldman, _) => feldman::verify_share(x, &share.value, commitment),
            (VssMode::Pedersen, Some(base)) => pedersen::verify_share(x, share, commitment, base),
            (VssMode::Pedersen, None) => false,
        }
    }

    /// Once both the commitment and this node's share from `dealer` are known: check
    /// they refer to each other, then verify — batched while in the deal phase, one by
    /// one for late arrivals.
    fn check_share_against_commitment(&mut self, dealer: &OperatorAddress) {
        let Some(view) = self.views.get(dealer) else {
            return;
        };
        let (Some((cmsg, _)), Some((smsg, _))) = (&view.commitment, &view.my_share) else {
            return;
        };
        if view.share_verified.is_some() {
            return;
        }
        let Payload::Share(s) = smsg.peek().expect("stored messages decode") else {
            return;
        };
        if Some(s.commitmentHash.0) != view.commitment_hash {
            let ev = FraudEvidence::CommitmentInconsistency {
                commitment: cmsg.clone(),
                share: smsg.clone(),
            };
            let m = cmsg.clone();
            let view = self.views.get_mut(dealer).expect("exists");
            view.share_verified = Some(false);
            if !view.forwarded {
                // Others may have been shown another commitment: let them compare.
                view.forwarded = true;
                self.forward(m);
            }
            self.convict(ev);
            return;
        }
        let deal_phase = self.offset();
        let all_arrived = self
            .views
            .values()
            .all(|v| v.commitment.is_some() && v.my_share.is_some());
        if self.phases_done > deal_phase || all_arrived {
            self.verify_pending_shares();
        }
    }

    /// Verifies every received, not yet verified share in one batch.
    fn verify_pending_shares(&mut self) {
        let Some(x) = self.params.players.evaluation_point(&self.me).cloned() else {
            return;
        };
        let todo: Vec<(OperatorAddress, Commitment, PedersenShare)> = self
            .views
            .iter()
            .filter(|(_, v)| v.share_verified.is_none())
            .filter_map(|(d, v)| match (&v.commitment, &v.my_share) {
                (Some((_, c)), Some((_, s))) => Some((*d, c.clone(), s.clone())),
                _ => None,
            })
            .collect();
        if todo.is_empty() {
            return;
        }
        // This node's share of its own dealing needs no check (it made both): the
        // batch covers the other `n − 1` dealers.
        let others: Vec<usize> = (0..todo.len()).filter(|i| todo[*i].0 != self.me).collect();
        let items: Vec<BatchItem> = others
            .iter()
            .map(|i| {
                let (_, c, s) = &todo[*i];
                match self.params.mode {
                    VssMode::Feldman => BatchItem::feldman(c, &s.value),
                    VssMode::Pedersen => BatchItem::pedersen(c, s),
                }
            })
            .collect();
        // A Feldman reshare also checks the dealers' constants against the current
        // key (`check_reshare_constants`): those of the dealers in this batch ride
        // along on the constant terms already in this MSM, which costs `t` more
        // points here instead of an MSM of `n + t` points of their own.
        let constants = match self.params.mode {
            VssMode::Feldman => self.reshare_constant_terms(others.iter().map(|i| &todo[*i].0)),
            // Pedersen constants are on the phase-2 commitments, checked later.
            VssMode::Pedersen => None,
        };
        let both_hold = constants.as_ref().is_some_and(|(dealers, terms)| {
            let weights: Vec<Scalar> = dealers.iter().map(|(_, w)| w.clone()).collect();
            weights.len() == items.len()
                && holds_with(
                    &x,
                    &items,
                    self.base.as_ref(),
                    &weights,
                    terms,
                    &mut self.rng,
                )
        });
        let invalid: BTreeSet<usize> = if both_hold {
            BTreeSet::new()
        } else {
            match verify_batch(&x, &items, self.base.as_ref(), &mut self.rng) {
                Ok(()) => BTreeSet::new(),
                Err(f) => f.invalid.into_iter().map(|i| others[i]).collect(),
            }
        };
        drop(items);
        // This node's own constant is right by construction: it dealt `λ·s` after
        // checking its share `s` against the current key (`Engine::new`).
        let own = todo
            .iter()
            .any(|(d, _, _)| *d == self.me)
            .then_some(self.me);
        let checked = match constants {
            Some((dealers, _)) if both_hold => dealers.into_iter().map(|(d, _)| d).collect(),
            _ => Vec::new(),
        };
        if self.params.kind == SessionKind::Reshare && self.params.mode == VssMode::Feldman {
            for d in checked.into_iter().chain(own) {
                if let Some(h) = self.views.get(&d).and_then(|v| v.commitment_hash) {
                    self.constants_checked.insert(d, h);
                }
            }
        }
        let mut acks = Vec::new();
        for (i, (dealer, _, _)) in todo.iter().enumerate() {
            let ok = !invalid.contains(&i);
            let view = self.views.get_mut(dealer).expect("exists");
            view.share_verified = Some(ok);
            let (cmsg, _) = view.commitment.clone().expect("present");
            let (smsg, _) = view.my_share.clone().expect("present");
            if ok {
                let Payload::Share(s) = smsg.peek().expect("stored messages decode") else {
                    continue;
                };
                acks.push(AckEntry {
                    dealer: to_address(dealer),
                    shareHash: b256(share_hash(&s)),
                    commitmentHash: s.commitmentHash,
                });
            } else {
                if !self.convict_torsion(dealer, 1) {
                    self.convict(FraudEvidence::InvalidShare {
                        commitment: cmsg,
                        share: smsg.clone(),
                    });
                }
                self.complain(dealer, ComplaintReason::InvalidShare);
                // The signed share is the proof: let everyone check it.
                self.forward(smsg);
            }
        }
        if !acks.is_empty() {
            // One signature for the whole batch: n signatures per node to verify
            // instead of n², which is what keeps large sessions affordable.
            let msg = self.sign(&Payload::Ack(PlayerAcks {
                sessionTimestamp: self.params.timestamp.0,
                sessionHash: b256(self.session_hash),
                player: to_address(&self.me),
                acks,
            }));
            self.broadcast(msg);
        }
    }

    fn complain(&mut self, dealer: &OperatorAddress, reason: ComplaintReason) {
        let msg = self.sign(&Payload::Complaint(PlayerComplaint {
            sessionTimestamp: self.params.timestamp.0,
            sessionHash: b256(self.session_hash),
            dealer: to_address(dealer),
            player: to_address(&self.me),
            reason: reason as u8,
        }));
        self.broadcast(msg);
    }

    fn on_ack(&mut self, message_hash: [u8; 32], a: PlayerAcks) -> Result<(), ProtocolError> {
        let player = from_address(&a.player);
        self.check_ack(&a)?;
        for entry in &a.acks {
            let dealer = from_address(&entry.dealer);
            let view = self.views.get_mut(&dealer).expect("checked above");
            if view.acks.contains_key(&player) {
                continue;
            }
            view.acks.insert(player, entry.commitmentHash.0);
            if dealer == self.me {
                self.my_ack_messages.insert(player, message_hash);
            }
            // Another player saw another commitment: show ours to everyone so that the
            // two signed versions meet and the equivocation is proven.
            if let Some(h) = view.commitment_hash
                && h != entry.commitmentHash.0
                && !view.forwarded
                && let Some((cmsg, _)) = &view.commitment
            {
                view.forwarded = true;
                let m = cmsg.clone();
                self.forward(m);
            }
        }
        Ok(())
    }

    fn on_complaint(&mut self, m: &SignedMessage, c: PlayerComplaint) -> Result<(), ProtocolError> {
        let dealer = from_address(&c.dealer);
        let player = from_address(&c.player);
        let view = self
            .views
            .get_mut(&dealer)
            .ok_or(ProtocolError::Rejected("complaint about a non-dealer"))?;
        if c.reason == ComplaintReason::Missing as u8 {
            if view.missing_complaints.insert(player) && player != self.me {
                // Echo once, so that a complaint shown to only some nodes still binds
                // every honest node's decision about the dealer.
                self.forward(m.clone());
            }
            if dealer == self.me
                && let (Some(cm), Some(sm)) = (
                    self.my_commitment.clone(),
                    self.my_shares.get(&player).cloned(),
                )
            {
                // GJKR: answer a complaint by revealing the share publicly.
                self.forward(cm);
                self.broadcast(sm);
            }
        }
        Ok(())
    }

    fn retry_pending(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for m in pending {
            // Authenticated when first handled.
            if let Ok(payload) = m.peek() {
                let _ = self.dispatch(&m, payload, None, true);
            }
        }
    }

    // ---- deadlines ----

    fn end_of_phase(&mut self, phase: u64) {
        let off = self.offset();
        match (self.params.mode, phase) {
            (VssMode::Pedersen, 0) => self.coin_reveal(),
            (VssMode::Pedersen, 1) => {
                if let Err(f) = self.fix_base() {
                    self.finish(Err(f));
                    return;
                }
                self.deal();
                self.retry_pending();
            }
            (_, p) if p == off => self.end_of_deal_phase(),
            (_, p) if p == off + 1 => {}
            (VssMode::Feldman, p) if p == off + 2 => {
                self.check_reshare_constants();
                let qual = self.compute_qualified();
                let r = self.finalize(qual);
                self.finish(r);
            }
            (VssMode::Pedersen, p) if p == off + 2 => {
                let qual = self.compute_qualified();
                self.qualified = Some(qual.clone());
                if qual.contains(&self.me) {
                    self.publish_phase2();
                }
            }
            (VssMode::Pedersen, p) if p == off + 3 => {
                self.check_phase2_subgroup();
                self.check_reshare_constants();
                self.start_reconstruction();
            }
            (VssMode::Pedersen, p) if p == off + 4 => {
                let qual = self.qualified.clone().unwrap_or_default();
                let r = self.finalize(qual);
                self.finish(r);
            }
            _ => {}
        }
    }

    fn coin_reveal(&mut self) {
        let Some(c) = &self.coin else { return };
        let msg = self.sign(&Payload::CoinReveal(CoinReveal {
            sessionTimestamp: self.params.timestamp.0,
            sessionHash: b256(self.session_hash),
            operator: to_address(&self.me),
            value: b256(c.reveal()),
        }));
        self.broadcast(msg);
    }

    fn fix_base(&mut self) -> Result<(), SessionFailure> {
        let reveals: Vec<(OperatorAddress, [u8; 32])> =
            self.coin_reveals.iter().map(|(a, v)| (*a, *v)).collect();
        // Contributions of operators that committed but did not reveal are dropped;
        // a majority of the players must have contributed.
        if reveals.len() < self.params.players.threshold() {
            return Err(SessionFailure::CoinFlip("too few coin reveals"));
        }
        let seed = coin::combine(&self.coin_context(), &reveals)
            .map_err(|_| SessionFailure::CoinFlip("bad reveals"))?;
        self.base = Some(PedersenBase::from_seed(&seed));
        Ok(())
    }

    fn end_of_deal_phase(&mut self) {
        if !self.is_player() {
            return;
        }
        self.verify_pending_shares();
        let missing: Vec<OperatorAddress> = self
            .views
            .iter()
            .filter(|(_, v)| v.commitment.is_none() || v.my_share.is_none())
            .map(|(d, _)| *d)
            .collect();
        for d in missing {
            self.complain(&d, ComplaintReason::Missing);
        }
    }

    /// Reshare: every dealer's Feldman commitment must start at its weighted public
    /// share of the current key, `C_D,0 = λ_D·P(x_D)`, or it is trying to change the
    /// master secret. All dealers are checked with one MSM over `n + t` points,
    /// `Σ ρ_D·C_D,0 − Σ_k (Σ_D ρ_D λ_D x_D^k)·P_k = 0`, and one by one only if that
    /// fails.
    fn check_reshare_constants(&mut self) {
        let Some(previous) = self.params.previous.clone() else {
            return;
        };
        let pedersen = self.params.mode == VssMode::Pedersen;
        let todo: Vec<(OperatorAddress, SignedMessage, Commitment)> = self
            .views
            .iter()
            .filter(|(_, v)| !v.fraud)
            .filter_map(|(d, v)| {
                let (m, c) = if pedersen {
                    v.phase2.as_ref()?
                } else {
                    v.commitment.as_ref()?
                };
                if !pedersen
                    && v.commitment_hash.is_some()
                    && self.constants_checked.get(d) == v.commitment_hash.as_ref()
                {
                    return None;
                }
                Some((*d, m.clone(), c.clone()))
            })
            .collect();
        let Some((dealers, terms)) = self.reshare_constant_terms(todo.iter().map(|(d, _, _)| d))
        else {
            return;
        };
        let constants: BTreeMap<OperatorAddress, G2Point> =
            todo.iter().map(|(d, _, c)| (*d, *c.constant())).collect();
        let (points, scalars): (Vec<G2Point>, Vec<Scalar>) = dealers
            .into_iter()
            .map(|(d, w)| (constants[&d], w))
            .chain(terms)
            .unzip();
        if G2Point::msm(&points, &scalars).is_ok_and(|p| p.is_identity()) {
            return;
        }
        let phase = if pedersen { 2 } else { 1 };
        for (d, m, c) in todo {
            let (Some(x), Some(lambda)) = (
                self.params.dealers.evaluation_point(&d),
                self.reshare_weights.get(&d),
            ) else {
                continue;
            };
            if previous.evaluate(x).mul(lambda) != *c.constant() && !self.convict_torsion(&d, phase)
            {
                self.convict(FraudEvidence::WrongReshareConstant { commitment: m });
            }
        }
    }

    /// For a reshare, the relation `Σ ρ_D·C_D,0 − Σ_k (Σ_D ρ_D λ_D x_D^k)·P_k = 0` over
    /// `dealers` with fresh random 128-bit `ρ_D` (`P` the current key's polynomial),
    /// which holds exactly when every dealer's constant is `λ_D·P(x_D)`, except with
    /// probability 2^-128: the dealers it covers with their `ρ_D`, in order, and the
    /// `t` terms over `P`. `None` outside a reshare or for no dealer.
    fn reshare_constant_terms<'a>(
        &mut self,
        dealers: impl IntoIterator<Item = &'a OperatorAddress>,
    ) -> Option<(Vec<(OperatorAddress, Scalar)>, MsmTerms)> {
        let previous = self.params.previous.as_ref()?;
        let t = previous.threshold();
        let mut covered = Vec::new();
        let mut terms = Vec::new();
        let mut poly_weights = vec![Scalar::zero(); t];
        for d in dealers {
            let (Some(x), Some(lambda)) = (
                self.params.dealers.evaluation_point(d),
                self.reshare_weights.get(d),
            ) else {
                continue;
            };
            let rho = Scalar::random_u128(&mut self.rng);
            let rho_lambda = &rho * lambda;
            for (acc, xk) in poly_weights.iter_mut().zip(powers(x, t)) {
                *acc += &(&rho_lambda * &xk);
            }
            covered.push((*d, rho));
        }
        if covered.is_empty() {
            return None;
        }
        terms.extend(
            previous
                .coefficients()
                .iter()
                .zip(poly_weights)
                .map(|(p, w)| (*p, -w)),
        );
        Some((covered, terms))
    }

    fn compute_qualified(&self) -> Vec<OperatorAddress> {
        let t = self.params.players.threshold();
        self.views
            .iter()
            .filter(|(_, v)| !v.fraud)
            .filter(|(_, v)| {
                let Some(h) = v.commitment_hash else {
                    return false;
                };
                let acks = v.acks.values().filter(|a| **a == h).count();
                acks >= t
                    && v.missing_complaints
                        .iter()
                        .all(|p| v.public_shares.contains_key(p) || v.acks.get(p) == Some(&h))
            })
            .map(|(d, _)| *d)
            .collect()
    }

    fn publish_phase2(&mut self) {
        let Some(Dealing::Pedersen(d)) = &self.dealing else {
            return;
        };
        let fc = d.feldman_commitment();
        let msg = self.sign(&Payload::Commitment(DealerCommitment {
            sessionTimestamp: self.params.timestamp.0,
            sessionHash: b256(self.session_hash),
            dealer: to_address(&self.me),
            phase: 2,
            commitment: encode_commitment(&fc),
        }));
        self.broadcast(msg);
    }

    /// Checks this node's phase-1 share against the phase-2 commitments received since
    /// the last call, all in one batch (one MSM however many dealers; per dealer only
    /// if it fails).
    fn check_phase2_batch(&mut self) {
        let todo = std::mem::take(&mut self.phase2_unchecked);
        let Some(x) = self.params.players.evaluation_point(&self.me).cloned() else {
            return;
        };
        let ready: Vec<(OperatorAddress, Commitment, Scalar)> = todo
            .into_iter()
            .filter_map(|d| {
                let v = self.views.get(&d)?;
                match (&v.phase2, &v.my_share, v.share_verified) {
                    (Some((_, fc)), Some((_, share)), Some(true)) => {
                        Some((d, fc.clone(), share.value.clone()))
                    }
                    _ => None,
                }
            })
            .collect();
        let items: Vec<BatchItem> = ready
            .iter()
            .map(|(_, fc, s)| BatchItem::feldman(fc, s))
            .collect();
        let invalid = match verify_batch(&x, &items, None, &mut self.rng) {
            Ok(()) => return,
            Err(f) => f.invalid,
        };
        drop(items);
        for i in invalid {
            self.phase2_failed(&ready[i].0);
        }
    }

    /// This node's phase-1 share does not fit `dealer`'s phase-2 commitment.
    fn phase2_failed(&mut self, dealer: &OperatorAddress) {
        let Some(view) = self.views.get(dealer) else {
            return;
        };
        let (Some((pmsg, _)), Some((fmsg, _)), Some((smsg, _))) =
            (&view.commitment, &view.phase2, &view.my_share)
        else {
            return;
        };
        let ev = FraudEvidence::Phase2Inconsistency {
            pedersen: pmsg.clone(),
            feldman: fmsg.clone(),
            share: smsg.clone(),
        };
        let share_msg = smsg.clone();
        if !self.convict_torsion(dealer, 2) && !self.convict_torsion(dealer, 1) {
            self.convict(ev);
        }
        self.complain(dealer, ComplaintReason::InvalidPhase2);
        self.forward(share_msg);
    }

    /// Pedersen: the phase-2 (Feldman) commitments of QUAL make the public polynomial,
    /// so before the reconstruction round their sum gets the exact subgroup check the
    /// points were decoded without; if it fails, each is checked and a dealer with a
    /// torsion component counts as failing phase 2 — reconstructed, not dropped.
    fn check_phase2_subgroup(&mut self) {
        let qual = self.qualified.clone().unwrap_or_default();
        let with_phase2: Vec<OperatorAddress> = qual
            .into_iter()
            .filter(|d| {
                self.views
                    .get(d)
                    .is_some_and(|v| v.phase2.is_some() && !v.fraud)
            })
            .collect();
        let sum = {
            let items: Vec<&Commitment> = with_phase2
                .iter()
                .filter_map(|d| self.views[d].phase2.as_ref().map(|(_, c)| c))
                .collect();
            if items.is_empty() {
                return;
            }
            Commitment::sum(items)
        };
        if let Ok(mut sum) = sum
            && sum.check_subgroup().is_ok()
        {
            // `finalize` adds up the same commitments unless a dealer is rebuilt.
            self.phase2_sum = Some((with_phase2, sum));
            return;
        }
        for d in with_phase2 {
            self.convict_torsion(&d, 2);
        }
    }

    /// QUAL dealers without a valid phase-2 commitment are reconstructed from the
    /// players' phase-1 shares: aborting does not remove a dealer's contribution, so
    /// it cannot bias the key by choosing whether to take part.
    fn start_reconstruction(&mut self) {
        let qual = self.qualified.clone().unwrap_or_default();
        let failed = |v: &DealerView| v.phase2.is_none() || v.fraud;
        if self.params.kind == SessionKind::Reshare {
            // The secret of a reshare is fixed, so dropping a dealer cannot bias it;
            // reconstructing one that cheated in phase 1 would bring back its wrong
            // constant. Drop, and let the Lagrange combination use the others.
            let kept = qual
                .into_iter()
                .filter(|d| !self.views.get(d).is_some_and(failed))
                .collect();
            self.qualified = Some(kept);
            return;
        }
        for d in qual {
            if !self.views.get(&d).is_some_and(failed) {
                continue;
            }
            if let Some((smsg, share)) = self.views.get(&d).and_then(|v| v.my_share.clone()) {
                self.views
                    .get_mut(&d)
                    .expect("exists")
                    .public_shares
                    .insert(self.me, (smsg.clone(), share));
                self.forward(smsg);
            }
        }
    }

    /// Whether a Pedersen dealer's Feldman commitment is rebuilt from the players'
    /// shares (it failed or skipped phase 2) rather than its own.
    fn rebuilt(&self, d: &OperatorAddress) -> bool {
        self.params.mode == VssMode::Pedersen
            && self
                .views
                .get(d)
                .is_some_and(|v| v.phase2.is_none() || v.fraud)
    }

    fn dealer_feldman_commitment(&self, d: &OperatorAddress) -> Result<Commitment, SessionFailure> {
        let v = self
            .views
            .get(d)
            .ok_or(SessionFailure::Internal("unknown dealer"))?;
        match self.params.mode {
            VssMode::Feldman => v
                .commitment
                .as_ref()
                .map(|(_, c)| c.clone())
                .ok_or(SessionFailure::Internal("no commitment")),
            VssMode::Pedersen => {
                if let (Some((_, fc)), false) = (&v.phase2, v.fraud) {
                    return Ok(fc.clone());
                }
                let t = self.params.players.threshold();
                let points: Vec<(Scalar, Scalar)> = v
                    .public_shares
                    .iter()
                    .filter_map(|(p, (_, s))| {
                        self.params
                            .players
                            .evaluation_point(p)
                            .map(|x| (x.clone(), s.value.clone()))
                    })
                    .take(t)
                    .collect();
                if points.len() < t {
                    return Err(SessionFailure::Reconstruction(*d));
                }
                let poly = interpolate(&points).map_err(|_| SessionFailure::Reconstruction(*d))?;
                Ok(feldman::commit(&poly))
            }
        }
    }

    fn finalize(&mut self, qual: Vec<OperatorAddress>) -> Result<SessionOutcome, SessionFailure> {
        let needed = match self.params.kind {
            SessionKind::Dkg => self.params.players.threshold(),
            SessionKind::Reshare => self.params.dealers.threshold(),
        };
        if qual.len() < needed {
            return Err(SessionFailure::NotEnoughQualified {
                qualified: qual.len(),
                needed,
            });
        }
        // The dealers whose polynomials make the new one, and their weights. A DKG adds
        // up all of QUAL. Reshare dealers dealt `λ_D·s_D` with `λ_D` over all the
        // session's dealers, so when all of them qualified the new polynomial is the
        // plain sum too. Otherwise any `t_old` qualified dealers determine it (the
        // secret is fixed): the first, in address order (the same at every node),
        // re-weighted to their own Lagrange coefficients, `μ_D = λ'_D / λ_D` — `t`
        // multi-scalar multiplications of `t_old` points, which cost about as much as
        // all the share checks at n = 100, paid only when a dealer failed.
        let plain_sum =
            self.params.kind == SessionKind::Dkg || qual.len() == self.params.dealers.len();
        let combined: Vec<OperatorAddress> = if plain_sum {
            qual.clone()
        } else {
            qual.iter().take(needed).copied().collect()
        };
        let (mut public, weights) = match &self.phase2_sum {
            // Pedersen: the sum `check_phase2_subgroup` made (and checked) already, if
            // it is of the same commitments (no dealer has been rebuilt since).
            Some((dealers, sum))
                if plain_sum
                    && *dealers == combined
                    && !combined.iter().any(|d| self.rebuilt(d)) =>
            {
                (sum.clone(), vec![Scalar::one(); combined.len()])
            }
            _ => {
                let commitments = combined
                    .iter()
                    .map(|d| self.dealer_feldman_commitment(d))
                    .collect::<Result<Vec<_>, _>>()?;
                let weights: Vec<Scalar> = if plain_sum {
                    vec![Scalar::one(); combined.len()]
                } else {
                    self.reshare_reweighting(&combined)?
                };
                let refs: Vec<&Commitment> = commitments.iter().collect();
                let public = if plain_sum {
                    Commitment::sum(refs)
                } else {
                    Commitment::linear_combination(&refs, &weights)
                }
                .map_err(|_| SessionFailure::Internal("combine"))?;
                (public, weights)
            }
        };
        if public.check_subgroup().is_err() {
            // The dealers' points were decoded without their subgroup check; the
            // output gets it exactly. A torsion component that survived the share
            // checks is found dealer by dealer (every honest node holds the same
            // commitments, so every one drops the same dealers) and proven.
            let phase = match self.params.mode {
                VssMode::Feldman => 1,
                VssMode::Pedersen => 2,
            };
            let culprits: Vec<OperatorAddress> = combined
                .iter()
                .filter(|d| self.convict_torsion(d, phase))
                .copied()
                .collect();
            if culprits.is_empty() {
                return Err(SessionFailure::Internal(
                    "public polynomial outside G2 without a culprit",
                ));
            }
            let rest = qual.into_iter().filter(|d| !culprits.contains(d)).collect();
            return self.finalize(rest);
        }
        if let Some(prev) = &self.params.previous
            && public.constant() != prev.constant()
        {
            return Err(SessionFailure::MasterKeyChanged);
        }
        if !self.is_player() {
            return Ok(SessionOutcome::Departed {
                qualified_dealers: qual,
            });
        }
        let mut share = Scalar::zero();
        for (d, w) in combined.iter().zip(&weights) {
            let v = &self.views[d];
            match (&v.my_share, v.share_verified) {
                (Some((_, s)), Some(true)) => share += &(w * &s.value),
                _ => return Err(SessionFailure::MissingShare(*d)),
            }
        }
        let x = self
            .params
            .players
            .evaluation_point(&self.me)
            .ok_or(SessionFailure::Internal("no point"))?;
        // `public(x) = share·G` follows from the checks already made: every share summed
        // here passed `s_D·G = C_D(x)` — alone, or in a batch with random weights, which
        // leaves each `C_D(x) − s_D·G` at most a torsion point — or is this node's own,
        // right by construction; the sum of those differences is `public(x) − share·G`,
        // in G2 by the exact subgroup check above, hence zero.
        // Checking it again guards against a fault in this combining code, not against
        // anyone's input; it costs a `t`-point MSM and a constant-time multiplication
        // (about a seventh of a whole session's CPU per node at n = 7). It runs where
        // the combining is out of the ordinary (a reweighted reshare, a dealer rebuilt
        // from the others' shares) and always in debug builds, which the tests run.
        let unusual = !plain_sum || combined.iter().any(|d| self.rebuilt(d));
        if (cfg!(debug_assertions) || unusual)
            && public.evaluate(x) != G2Point::mul_generator(&share)
        {
            return Err(SessionFailure::Internal(
                "final share does not match the public polynomial",
            ));
        }
        Ok(SessionOutcome::NewVersion(Box::new(KeyShareVersion {
            session_timestamp: self.params.timestamp,
            share,
            commitment: public,
            operator_set: self.params.players.addresses().copied().collect(),
            threshold: self.params.players.threshold(),
            qualified_dealers: qual,
            mode: self.params.mode,
        })))
    }

    /// `μ_D = λ'_D / λ_D` for a reshare combined from `dealers` only: `λ'_D` is the
    /// Lagrange coefficient over `dealers`, `λ_D` the one over all the session's
    /// dealers that `D` dealt with.
    fn reshare_reweighting(
        &self,
        dealers: &[OperatorAddress],
    ) -> Result<Vec<Scalar>, SessionFailure> {
        let xs: Vec<Scalar> = dealers
            .iter()
            .filter_map(|d| self.params.dealers.evaluation_point(d).cloned())
            .collect();
        let mut dealt: Vec<Scalar> = dealers
            .iter()
            .filter_map(|d| self.reshare_weights.get(d).cloned())
            .collect();
        if xs.len() != dealers.len() || dealt.len() != dealers.len() {
            return Err(SessionFailure::Internal("dealer without a weight"));
        }
        let lambda =
            lagrange_coefficients_at_zero(&xs).map_err(|_| SessionFailure::Internal("lagrange"))?;
        Scalar::batch_invert(&mut dealt).map_err(|_| SessionFailure::Internal("zero weight"))?;
        Ok(lambda.iter().zip(&dealt).map(|(l, inv)| l * inv).collect())
    }

    fn finish(&mut self, r: Result<SessionOutcome, SessionFailure>) {
        self.outcome = Some(r.clone());
        self.out.push(Action::Done(r));
    }
}
