//! Fraud evidence of protocol v2: signed messages that prove a fault to anyone with
//! the session's public data ([`Evidence::verify`]) and, on chain, to
//! `EigenKMSSlashing` (`kms_chain::fraud_v2`), which runs the same checks.

use kms_crypto::vss::coin;
use kms_crypto::vss::encryption::EncryptionPublicKey;
use kms_crypto::vss::pedersen::PedersenBase;
use kms_crypto::{OperatorAddress, Scalar};
use sha3::{Digest, Keccak256};
use thiserror::Error;

use super::dealings::{DecodedDealing, Opening, decode_dealing, open_complaint};
use super::ids::MessageHash;
use super::instance::value_id;
use super::phase::InstanceId;
use super::rejection::Rejection;
use super::setup::Setup;
use super::shares::{BaseTable, check_one};
use super::wire::{self, Body, Complaint, Dealing, Kind};
use crate::messages::SignedMessage;
use crate::session::{OperatorSet, VssMode};

/// A proven fault.
#[derive(Clone, Debug)]
pub enum Evidence {
    /// A dealer's share for a player does not verify: the dealing, the player's
    /// complaint (the pair's Diffie–Hellman key with its DLEQ proof) and the player's
    /// key announcement that the dealing names as the share's recipient (the dealer
    /// signed its hash, so the announcement's own signature is not needed).
    InvalidShare {
        /// The signed dealing.
        dealing: SignedMessage,
        /// The signed complaint.
        complaint: SignedMessage,
        /// The complainer's key announcement.
        key: SignedMessage,
    },
    /// Two different signed messages where one is allowed (two dealings, two votes
    /// of one kind in one round, two proposals in one round).
    Equivocation {
        /// The first.
        first: SignedMessage,
        /// The second.
        second: SignedMessage,
    },
    /// A reshare dealing whose constant is not the dealer's weighted public share.
    WrongReshareConstant {
        /// The signed dealing.
        dealing: SignedMessage,
    },
}

/// Why evidence does not prove a fault. Each variant is one check of
/// [`Evidence::verify`]; the contract refuses the same proofs (its revert names are
/// in `contracts/README.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum EvidenceError {
    /// A message does not decode canonically, is not this session's, is not signed by
    /// its author's registered key, or its author has no role that sends it.
    #[error("message refused: {0}")]
    Message(Rejection),
    /// The key announcement is not the one the dealing names for the complainer
    /// (another hash, another player or session, or the complainer has no share).
    #[error("the key announcement is not the dealing's recipient for the complainer")]
    KeyNotNamed,
    /// The messages are of another kind than the evidence needs.
    #[error("wrong message kind")]
    WrongKind,
    /// The complaint accuses another dealing or dealer.
    #[error("the complaint is about another dealing")]
    OtherDealing,
    /// The complaint's DLEQ proof does not verify: the revealed key is not the
    /// complainer's.
    #[error("the complaint's proof does not verify")]
    InvalidProof,
    /// The opened share lies on the commitment: a false complaint.
    #[error("the share is valid")]
    ShareIsValid,
    /// Two messages that may both be sent: another kind, author or slot, or a kind
    /// sent several times (acks, complaints, fetches).
    #[error("the messages do not conflict")]
    NoConflict,
    /// The same message twice.
    #[error("the two messages are one")]
    SameMessage,
    /// Not a reshare, or the dealing's constant is right.
    #[error("the reshare constant is right")]
    ConstantIsRight,
    /// A Pedersen session's evidence checked without its base `H2`.
    #[error("the session's Pedersen base is needed")]
    NeedsBase,
    /// A [`BaseDecision`] that does not prove the session's base: fewer precommits
    /// than the quorum, voters not ascending, a precommit of another instance, step,
    /// round or value, no reveals, reveals out of order or of one author twice.
    #[error("the base decision does not prove an agreed base")]
    BaseNotAgreed,
}

impl From<Rejection> for EvidenceError {
    fn from(r: Rejection) -> Self {
        Self::Message(r)
    }
}

/// One decision an author makes once per session: its kind and, for agreement
/// messages, the instance, round and step. Two different messages of one author in
/// one slot are an equivocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The message kind (dealing, proposal or vote).
    pub kind: Kind,
    /// The author.
    pub author: OperatorAddress,
    /// Agreement instance (0 for a dealing).
    pub instance: u8,
    /// Agreement round (0 for a dealing).
    pub round: u32,
    /// Vote step (1 prevote, 2 precommit; 0 otherwise).
    pub step: u8,
}

impl Slot {
    /// The slot of a message of a kind that may appear once, `None` for the others.
    pub fn of(body: &Body) -> Option<Slot> {
        let (instance, round, step) = match body {
            Body::Dealing(_) => (0, 0, 0),
            Body::Proposal(p) if p.instance <= 2 => (p.instance, p.round, 0),
            Body::Vote(v) if v.instance <= 2 && matches!(v.step, 1 | 2) => {
                (v.instance, v.round, v.step)
            }
            _ => return None,
        };
        Some(Slot {
            kind: body.kind(),
            author: body.author(),
            instance,
            round,
            step,
        })
    }
}

/// Opens a signed message of this session: canonical, signed by its author's
/// registered key (a certified key must cover the session), the author in `role`.
fn open(setup: &Setup, m: &SignedMessage, role: &OperatorSet) -> Result<Body, EvidenceError> {
    let ts = setup.params.timestamp;
    let body = wire::open_unverified(m, ts, &setup.hash())?;
    wire::verify_signature(m, &[role], ts)?;
    Ok(body)
}

fn open_dealing(setup: &Setup, m: &SignedMessage) -> Result<Dealing, EvidenceError> {
    match open(setup, m, &setup.params.dealers)? {
        Body::Dealing(d) => Ok(d),
        _ => Err(EvidenceError::WrongKind),
    }
}

/// The dealing decoded as every node decodes it, and with every commitment point in
/// G2: the contract's precompiles refuse the others, so evidence over such a dealing
/// would be valid here and refused there.
fn decode(
    setup: &Setup,
    m: &SignedMessage,
    d: &Dealing,
    weight: Option<&Scalar>,
    base: Option<&BaseTable>,
) -> Result<DecodedDealing, EvidenceError> {
    // Exact: the batched reshare-constant check is the engine's shortcut only. The
    // roster is not public data: the recipients are checked where they matter (the
    // complainer's, against its announcement).
    let decoded = decode_dealing(setup, None, m.clone(), d, weight, base, false)?;
    if decoded.commitment.subgroup_violation().is_some() {
        return Err(Rejection::InvalidPoint.into());
    }
    Ok(decoded)
}

/// The public proof of a Pedersen session's base `H2`: the decision certificate of
/// the coin agreement (instance 0: a quorum of players' signed precommits for one
/// round and value, ascending by voter) and the coin reveals that value names (in
/// its order, ascending by hash). `H2 = hash_to_G2(seed)` with the seed of those
/// reveals, as every node computes it. What `EigenKMSSlashing` takes as `BaseProof`
/// (`kms_chain::fraud_v2`); a node gets it from `Engine::base_decision`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseDecision {
    /// The certificate's precommits, ascending by voter.
    pub precommits: Vec<SignedMessage>,
    /// The agreed coin reveals, ascending by hash.
    pub reveals: Vec<SignedMessage>,
}

impl BaseDecision {
    /// The base this decision proves agreed in `setup`'s (Pedersen) session, with the
    /// contract's checks: the reveals are this session's (their payloads only: the
    /// certificate names them by hash), the precommits this session's, signed by
    /// distinct players, a quorum, for one round of the coin instance and the value of
    /// the reveals.
    pub fn verify(&self, setup: &Setup) -> Result<PedersenBase, EvidenceError> {
        if setup.params.mode != VssMode::Pedersen {
            return Err(EvidenceError::BaseNotAgreed);
        }
        let ts = setup.params.timestamp;
        let session = setup.hash();
        let mut hashes: Vec<MessageHash> = Vec::with_capacity(self.reveals.len());
        let mut reveals = Vec::with_capacity(self.reveals.len());
        for m in &self.reveals {
            let body = Body::decode(&m.payload)?;
            if body.session() != (ts, session) {
                return Err(Rejection::WrongSession.into());
            }
            let Body::CoinReveal(r) = body else {
                return Err(EvidenceError::WrongKind);
            };
            let h = MessageHash(Keccak256::digest(&m.payload).into());
            if hashes.last().is_some_and(|last| *last >= h) {
                return Err(EvidenceError::BaseNotAgreed);
            }
            hashes.push(h);
            reveals.push((wire::from_sol(&r.operator), r.value.0));
        }
        if hashes.is_empty() {
            return Err(EvidenceError::BaseNotAgreed);
        }
        let value = value_id(&session, InstanceId::Coin, &hashes);
        let players = &setup.params.players;
        let quorum = crate::agreement::quorum(players.len(), players.threshold())
            .map_err(|_| EvidenceError::BaseNotAgreed)?;
        if self.precommits.len() < quorum {
            return Err(EvidenceError::BaseNotAgreed);
        }
        let mut round = None;
        let mut last: Option<OperatorAddress> = None;
        for m in &self.precommits {
            let Body::Vote(v) = open(setup, m, players)? else {
                return Err(EvidenceError::WrongKind);
            };
            let voter = wire::from_sol(&v.voter);
            if v.instance != InstanceId::Coin as u8
                || v.step != 2
                || v.value.0 != value.0
                || *round.get_or_insert(v.round) != v.round
                || last.is_some_and(|l| l >= voter)
            {
                return Err(EvidenceError::BaseNotAgreed);
            }
            last = Some(voter);
        }
        let seed = coin::combine(&session.0, &reveals).map_err(|_| EvidenceError::BaseNotAgreed)?;
        Ok(PedersenBase::from_seed(&seed))
    }
}

impl Evidence {
    /// Stable label.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidShare { .. } => "invalid_share",
            Self::Equivocation { .. } => "equivocation",
            Self::WrongReshareConstant { .. } => "wrong_reshare_constant",
        }
    }

    /// The accused operator (the dealer, or the equivocating author).
    pub fn accused(&self) -> OperatorAddress {
        match self {
            Self::InvalidShare { dealing, .. } | Self::WrongReshareConstant { dealing } => {
                dealing.signer
            }
            Self::Equivocation { first, .. } => first.signer,
        }
    }

    /// Re-verifies the evidence with public data only, for a Feldman session or
    /// evidence that does not involve `H2` (see [`Evidence::verify_with_base`]).
    pub fn verify(&self, setup: &Setup) -> Result<(), EvidenceError> {
        self.verify_with_base(setup, None)
    }

    /// Re-verifies the evidence as `EigenKMSSlashing` does: with public data only, in a
    /// Pedersen session the base proven by `decision` (ignored in Feldman sessions and
    /// by equivocations, which need no base).
    pub fn verify_with_decision(
        &self,
        setup: &Setup,
        decision: Option<&BaseDecision>,
    ) -> Result<(), EvidenceError> {
        let base = match decision {
            Some(d)
                if setup.params.mode == VssMode::Pedersen
                    && !matches!(self, Self::Equivocation { .. }) =>
            {
                Some(d.verify(setup)?)
            }
            _ => None,
        };
        self.verify_with_base(setup, base.as_ref())
    }

    /// Re-verifies the evidence with public data only: the session's setup and, in a
    /// Pedersen session, its agreed base `H2` (invalid shares and reshare constants
    /// are checked against it).
    pub fn verify_with_base(
        &self,
        setup: &Setup,
        base: Option<&PedersenBase>,
    ) -> Result<(), EvidenceError> {
        let pedersen = setup.params.mode == VssMode::Pedersen;
        let table = match (pedersen, base) {
            (true, Some(b)) => Some(BaseTable::new(*b)),
            _ => None,
        };
        match self {
            Self::InvalidShare {
                dealing,
                complaint,
                key,
            } => {
                let d = open_dealing(setup, dealing)?;
                let c = match open(setup, complaint, &setup.params.players)? {
                    Body::Complaint(c) => c,
                    _ => return Err(EvidenceError::WrongKind),
                };
                if c.dealing.0 != dealing.hash || c.dealer != d.dealer {
                    return Err(EvidenceError::OtherDealing);
                }
                if pedersen && table.is_none() {
                    return Err(EvidenceError::NeedsBase);
                }
                let decoded = decode(setup, dealing, &d, None, table.as_ref())?;
                let pk = named_key(setup, &decoded, &c, key)?;
                check_opening(setup, &decoded, &c, &pk, table.as_ref())
            }
            Self::Equivocation { first, second } => {
                let role = |b: &Body| match b.kind() {
                    Kind::Dealing => &setup.params.dealers,
                    _ => &setup.params.players,
                };
                let ts = setup.params.timestamp;
                let a = wire::open_unverified(first, ts, &setup.hash())?;
                let b = wire::open_unverified(second, ts, &setup.hash())?;
                let slot = Slot::of(&a).ok_or(EvidenceError::NoConflict)?;
                if Slot::of(&b) != Some(slot) {
                    return Err(EvidenceError::NoConflict);
                }
                if first.hash == second.hash {
                    return Err(EvidenceError::SameMessage);
                }
                open(setup, first, role(&a))?;
                open(setup, second, role(&b))?;
                Ok(())
            }
            Self::WrongReshareConstant { dealing } => {
                let d = open_dealing(setup, dealing)?;
                if setup.params.previous.is_none() {
                    return Err(EvidenceError::ConstantIsRight);
                }
                if pedersen && table.is_none() {
                    return Err(EvidenceError::NeedsBase);
                }
                let dealer = wire::from_sol(&d.dealer);
                let weights = setup
                    .params
                    .dealers
                    .lagrange_at_zero()
                    .map_err(|_| Rejection::WrongRole)?;
                let weight = weights.get(&dealer).ok_or(Rejection::WrongRole)?;
                match decode(setup, dealing, &d, Some(weight), table.as_ref()) {
                    Err(EvidenceError::Message(Rejection::WrongReshareConstant)) => {
                        // Held to the same point checks as a dealing that decodes.
                        decode(setup, dealing, &d, None, table.as_ref())?;
                        Ok(())
                    }
                    Err(e) => Err(e),
                    Ok(_) => Err(EvidenceError::ConstantIsRight),
                }
            }
        }
    }
}

/// The complainer's key from its announcement, which must be this session's, the
/// complainer's, and the one the dealing names as its share's recipient.
fn named_key(
    setup: &Setup,
    dealing: &DecodedDealing,
    c: &Complaint,
    key: &SignedMessage,
) -> Result<EncryptionPublicKey, EvidenceError> {
    let player = wire::from_sol(&c.player);
    let index = setup.player_index(&player).ok_or(Rejection::WrongRole)?;
    let hash = MessageHash(Keccak256::digest(&key.payload).into());
    let Ok(Body::Key(k)) = Body::decode(&key.payload) else {
        return Err(EvidenceError::KeyNotNamed);
    };
    if dealing.recipients[index] != hash
        || hash == MessageHash::default()
        || wire::from_sol(&k.player) != player
        || k.sessionTimestamp != setup.params.timestamp.0
        || k.sessionHash.0 != setup.hash().0
    {
        return Err(EvidenceError::KeyNotNamed);
    }
    EncryptionPublicKey::from_eip2537(&k.key).map_err(|_| Rejection::InvalidPoint.into())
}

/// The complaint's key is proven to be the complainer's and opens a share that is
/// off the commitment.
fn check_opening(
    setup: &Setup,
    dealing: &DecodedDealing,
    c: &Complaint,
    pk: &EncryptionPublicKey,
    base: Option<&BaseTable>,
) -> Result<(), EvidenceError> {
    match open_complaint(setup, dealing, c, pk)? {
        Opening::BadProof => Err(EvidenceError::InvalidProof),
        // `decode_dealing` refused non-canonical ciphertext words: the share opens.
        Opening::Opened { share: Err(_), .. } => Err(Rejection::NonCanonicalScalar.into()),
        Opening::Opened {
            x,
            share: Ok(share),
        } if check_one(&x, &dealing.commitment, &share, base) => Err(EvidenceError::ShareIsValid),
        Opening::Opened { .. } => Ok(()),
    }
}

#[cfg(test)]
#[path = "evidence_tests.rs"]
mod tests;
