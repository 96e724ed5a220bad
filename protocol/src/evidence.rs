//! Fraud evidence: a dealer's own signed messages that prove it cheated, checkable by
//! anyone with public data only (the dealer's registered key, the session's public
//! parameters). This is what a node submits to the slashing contract.

use kms_crypto::signer::OperatorPublicKey;
use kms_crypto::vss::pedersen::PedersenShare;
use kms_crypto::vss::pedersen::{self, PedersenBase};
use kms_crypto::vss::{Commitment, feldman};
use kms_crypto::{OperatorAddress, Scalar, evaluation_point};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::messages::{
    DealerCommitment, DealerShare, Payload, SignedMessage, decode_commitment,
    decode_commitment_deferred, decode_share, from_address,
};
use crate::session::SessionParams;

/// Proof that a dealer misbehaved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FraudEvidence {
    /// A signed share that does not lie on the dealer's signed (phase-1) commitment.
    /// `pedersen_base` is the session's `H2` for Pedersen sessions.
    InvalidShare {
        /// The dealer's signed commitment.
        commitment: SignedMessage,
        /// The dealer's signed share for some player.
        share: SignedMessage,
    },
    /// Two different signed commitments for the same session and phase.
    Equivocation {
        /// One signed commitment.
        first: SignedMessage,
        /// Another, with a different commitment hash.
        second: SignedMessage,
    },
    /// A signed share naming a commitment hash that differs from the hash of the
    /// dealer's signed commitment.
    CommitmentInconsistency {
        /// The dealer's signed commitment.
        commitment: SignedMessage,
        /// The dealer's signed share naming another commitment.
        share: SignedMessage,
    },
    /// Reshare: the dealer's Feldman commitment does not start from its weighted
    /// public share of the current key, `λ_D·P(x_D)` (it tried to change the master
    /// secret).
    WrongReshareConstant {
        /// The dealer's signed Feldman commitment (phase 1 in Feldman mode, phase 2 in
        /// Pedersen mode).
        commitment: SignedMessage,
    },
    /// A signed commitment with a point outside the prime-order subgroup (on the
    /// curve, canonical, but with a torsion component). Honest dealers cannot produce
    /// one; commitments are decoded with their subgroup check deferred (see
    /// [`kms_crypto::Commitment`]), and this is what a failed check proves.
    InvalidCommitmentPoint {
        /// The dealer's signed commitment (either phase).
        commitment: SignedMessage,
    },
    /// Pedersen phase 2: the dealer's Feldman commitment contradicts a phase-1 share
    /// that is valid against its Pedersen commitment.
    Phase2Inconsistency {
        /// The signed phase-1 Pedersen commitment.
        pedersen: SignedMessage,
        /// The signed phase-2 Feldman commitment.
        feldman: SignedMessage,
        /// The signed share that fits the first but not the second.
        share: SignedMessage,
    },
}

/// Why evidence does not hold up.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EvidenceError {
    /// A message's signature or encoding is bad, or it is not the dealer's.
    #[error("message does not authenticate: {0}")]
    Unauthentic(String),
    /// The messages are authentic but do not show misbehaviour.
    #[error("no fraud shown: {0}")]
    NoFraud(&'static str),
}

/// Public context an evidence check needs.
pub struct EvidenceContext<'a> {
    /// The accused dealer's registered key.
    pub dealer_key: &'a OperatorPublicKey,
    /// `H2` of the session (Pedersen sessions).
    pub pedersen_base: Option<&'a PedersenBase>,
    /// Reshare: the session's parameters — the public polynomial of the key being
    /// reshared, and the dealers, over whom each dealer's Lagrange weight is taken
    /// (a reshare dealer deals `λ_D·s_D`). The evidence must name this session.
    pub reshare: Option<&'a SessionParams>,
}

/// A dealer's authentic commitment message, points not decoded.
fn open_commitment_message(
    m: &SignedMessage,
    key: &OperatorPublicKey,
) -> Result<DealerCommitment, EvidenceError> {
    match m
        .open(key)
        .map_err(|e| EvidenceError::Unauthentic(e.to_string()))?
    {
        Payload::Commitment(c) => Ok(c),
        _ => Err(EvidenceError::Unauthentic(
            "expected a commitment message".into(),
        )),
    }
}

fn open_commitment(
    m: &SignedMessage,
    key: &OperatorPublicKey,
) -> Result<(DealerCommitment, Commitment), EvidenceError> {
    let c = open_commitment_message(m, key)?;
    let parsed =
        decode_commitment(&c.commitment).map_err(|e| EvidenceError::Unauthentic(e.to_string()))?;
    Ok((c, parsed))
}

fn open_share(m: &SignedMessage, key: &OperatorPublicKey) -> Result<DealerShare, EvidenceError> {
    match m
        .open(key)
        .map_err(|e| EvidenceError::Unauthentic(e.to_string()))?
    {
        Payload::Share(s) => Ok(s),
        _ => Err(EvidenceError::Unauthentic(
            "expected a share message".into(),
        )),
    }
}

fn same_session(a: (u64, [u8; 32]), b: (u64, [u8; 32])) -> Result<(), EvidenceError> {
    if a != b {
        return Err(EvidenceError::NoFraud(
            "messages are from different sessions",
        ));
    }
    Ok(())
}

/// Opens a dealer's signed commitment and signed share, which must belong to the same
/// session and dealer.
fn open_pair(
    commitment: &SignedMessage,
    share: &SignedMessage,
    key: &OperatorPublicKey,
) -> Result<(DealerCommitment, Commitment, DealerShare), EvidenceError> {
    let (c, parsed) = open_commitment(commitment, key)?;
    let s = open_share(share, key)?;
    same_session(
        (c.sessionTimestamp, c.sessionHash.0),
        (s.sessionTimestamp, s.sessionHash.0),
    )?;
    if s.dealer != c.dealer {
        return Err(EvidenceError::NoFraud("messages of different dealers"));
    }
    Ok((c, parsed, s))
}

/// The player's evaluation point and the share values of a share message.
fn share_at(s: &DealerShare) -> Result<(Scalar, PedersenShare), EvidenceError> {
    let x = evaluation_point(&from_address(&s.player))
        .map_err(|_| EvidenceError::NoFraud("player has no evaluation point"))?;
    let v = decode_share(s).map_err(|e| EvidenceError::Unauthentic(e.to_string()))?;
    Ok((x, v))
}

impl FraudEvidence {
    /// The accused dealer.
    pub fn dealer(&self) -> OperatorAddress {
        let m = match self {
            Self::InvalidShare { commitment, .. }
            | Self::CommitmentInconsistency { commitment, .. }
            | Self::WrongReshareConstant { commitment }
            | Self::InvalidCommitmentPoint { commitment } => commitment,
            Self::Equivocation { first, .. } => first,
            Self::Phase2Inconsistency { feldman, .. } => feldman,
        };
        m.signer
    }

    /// The signed messages the evidence consists of.
    pub fn messages(&self) -> Vec<&SignedMessage> {
        match self {
            Self::InvalidShare { commitment, share }
            | Self::CommitmentInconsistency { commitment, share } => vec![commitment, share],
            Self::Equivocation { first, second } => vec![first, second],
            Self::WrongReshareConstant { commitment }
            | Self::InvalidCommitmentPoint { commitment } => vec![commitment],
            Self::Phase2Inconsistency {
                pedersen,
                feldman,
                share,
            } => vec![pedersen, feldman, share],
        }
    }

    /// A short name of the fraud type.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidShare { .. } => "invalid_share",
            Self::Equivocation { .. } => "equivocation",
            Self::CommitmentInconsistency { .. } => "commitment_inconsistency",
            Self::WrongReshareConstant { .. } => "wrong_reshare_constant",
            Self::InvalidCommitmentPoint { .. } => "invalid_commitment_point",
            Self::Phase2Inconsistency { .. } => "phase2_inconsistency",
        }
    }

    /// Re-verifies the evidence from scratch with public data only.
    pub fn verify(&self, ctx: &EvidenceContext<'_>) -> Result<(), EvidenceError> {
        let key = ctx.dealer_key;
        match self {
            Self::InvalidShare { commitment, share } => {
                let (c, parsed, s) = open_pair(commitment, share, key)?;
                if c.phase != 1 {
                    return Err(EvidenceError::NoFraud("not a phase-1 commitment"));
                }
                let (x, v) = share_at(&s)?;
                let valid = match ctx.pedersen_base {
                    Some(base) => pedersen::verify_share(&x, &v, &parsed, base),
                    None => feldman::verify_share(&x, &v.value, &parsed),
                };
                if valid {
                    return Err(EvidenceError::NoFraud("the share is valid"));
                }
                Ok(())
            }
            Self::Equivocation { first, second } => {
                let (a, _) = open_commitment(first, key)?;
                let (b, _) = open_commitment(second, key)?;
                same_session(
                    (a.sessionTimestamp, a.sessionHash.0),
                    (b.sessionTimestamp, b.sessionHash.0),
                )?;
                if a.phase != b.phase || a.dealer != b.dealer {
                    return Err(EvidenceError::NoFraud("different phases or dealers"));
                }
                if first.hash == second.hash {
                    return Err(EvidenceError::NoFraud("the two messages are identical"));
                }
                Ok(())
            }
            Self::CommitmentInconsistency { commitment, share } => {
                let (c, parsed, s) = open_pair(commitment, share, key)?;
                if c.phase != 1 {
                    return Err(EvidenceError::NoFraud("not a phase-1 commitment"));
                }
                if s.commitmentHash.0 == parsed.hash() {
                    return Err(EvidenceError::NoFraud("the share names this commitment"));
                }
                Ok(())
            }
            Self::WrongReshareConstant { commitment } => {
                let params = ctx.reshare.ok_or(EvidenceError::NoFraud("not a reshare"))?;
                let previous = params
                    .previous
                    .as_ref()
                    .ok_or(EvidenceError::NoFraud("not a reshare"))?;
                let (c, parsed) = open_commitment(commitment, key)?;
                same_session(
                    (c.sessionTimestamp, c.sessionHash.0),
                    (params.timestamp.0, params.session_hash()),
                )?;
                let feldman_phase = if ctx.pedersen_base.is_some() { 2 } else { 1 };
                if c.phase != feldman_phase {
                    return Err(EvidenceError::NoFraud(
                        "not the dealer's Feldman commitment",
                    ));
                }
                let dealer = from_address(&c.dealer);
                let x = params
                    .dealers
                    .evaluation_point(&dealer)
                    .ok_or(EvidenceError::NoFraud("not a dealer of the session"))?;
                let weights = params
                    .dealers
                    .lagrange_at_zero()
                    .map_err(|_| EvidenceError::NoFraud("invalid dealer set"))?;
                let weight = weights
                    .get(&dealer)
                    .ok_or(EvidenceError::NoFraud("not a dealer of the session"))?;
                if *parsed.constant() == previous.evaluate(x).mul(weight) {
                    return Err(EvidenceError::NoFraud(
                        "the constant is the dealer's weighted public share",
                    ));
                }
                Ok(())
            }
            Self::InvalidCommitmentPoint { commitment } => {
                let c = open_commitment_message(commitment, key)?;
                let parsed = decode_commitment_deferred(&c.commitment)
                    .map_err(|e| EvidenceError::Unauthentic(e.to_string()))?;
                if parsed.subgroup_violation().is_none() {
                    return Err(EvidenceError::NoFraud("every point is in G2"));
                }
                Ok(())
            }
            Self::Phase2Inconsistency {
                pedersen: ped,
                feldman: fel,
                share,
            } => {
                let base = ctx
                    .pedersen_base
                    .ok_or(EvidenceError::NoFraud("not a Pedersen session"))?;
                let (p, pc, s) = open_pair(ped, share, key)?;
                let (f, fc, _) = open_pair(fel, share, key)?;
                if p.phase != 1 || f.phase != 2 {
                    return Err(EvidenceError::NoFraud("wrong phases"));
                }
                let (x, v) = share_at(&s)?;
                if !pedersen::verify_share(&x, &v, &pc, base) {
                    return Err(EvidenceError::NoFraud(
                        "share is invalid in phase 1 already",
                    ));
                }
                if feldman::verify_share(&x, &v.value, &fc) {
                    return Err(EvidenceError::NoFraud("share fits the phase-2 commitment"));
                }
                Ok(())
            }
        }
    }
}
