//! The agreement's vocabulary: rounds, values, messages, configuration, outputs and
//! certificates.

use std::fmt;

use kms_crypto::OperatorAddress;

use super::error::{CertificateError, ConfigError};

/// A voting round; rounds start at 0 and each has one proposer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Round(pub u32);

impl Round {
    /// The round after this one (saturating: rounds are bounded by `max_rounds`).
    pub fn next(self) -> Round {
        Round(self.0.saturating_add(1))
    }
}

impl fmt::Display for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "round {}", self.0)
    }
}

/// The hash of a candidate outcome. The agreement never sees the outcome itself.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ValueId(pub [u8; 32]);

impl fmt::Debug for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ValueId({}…)", hex::encode(&self.0[..6]))
    }
}

/// The host's verdict on a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// The value is well formed and acceptable as the session's outcome.
    Valid,
    /// The value must not be decided.
    Invalid,
}

/// The two kinds of vote in a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VoteKind {
    /// First vote: for the round's proposal, or nil.
    Prevote,
    /// Second vote: for a value that has a quorum of prevotes, or nil.
    Precommit,
}

/// The proposer's value for a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// The round proposed in.
    pub round: Round,
    /// The proposed value.
    pub value: ValueId,
    /// The earlier round in which the value had a quorum of prevotes, if the proposer
    /// re-proposes it: voters locked in rounds up to this one may prevote it.
    pub valid_round: Option<Round>,
}

/// A prevote or precommit; `value: None` is a vote for nil.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vote {
    /// The round voted in.
    pub round: Round,
    /// Prevote or precommit.
    pub kind: VoteKind,
    /// The value voted for, or `None` for nil.
    pub value: Option<ValueId>,
}

/// Step timeouts; each grows by `increment_ms` per round so that, once delays are
/// bounded, some round's timeouts exceed them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// How long to wait for the proposal (and its verdict) before prevoting nil.
    pub propose_ms: u64,
    /// How long to wait, after a quorum of mixed prevotes, before precommitting nil.
    pub prevote_ms: u64,
    /// How long to wait, after a quorum of precommits without a decision, before the
    /// next round.
    pub precommit_ms: u64,
    /// Added to each timeout per round.
    pub increment_ms: u64,
}

impl Timeouts {
    fn grown(&self, base: u64, round: Round) -> u64 {
        base.saturating_add(self.increment_ms.saturating_mul(u64::from(round.0)))
    }

    /// The propose timeout of `round`.
    pub fn propose(&self, round: Round) -> u64 {
        self.grown(self.propose_ms, round)
    }

    /// The prevote timeout of `round`.
    pub fn prevote(&self, round: Round) -> u64 {
        self.grown(self.prevote_ms, round)
    }

    /// The precommit timeout of `round`.
    pub fn precommit(&self, round: Round) -> u64 {
        self.grown(self.precommit_ms, round)
    }
}

/// One agreement session's parameters; every voter must use the same.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The voters, strictly increasing.
    pub voters: Vec<OperatorAddress>,
    /// This node, or `None` for an observer (follows and decides, never votes).
    pub me: Option<OperatorAddress>,
    /// Precommits (and prevotes) needed; see [`quorum`](super::quorum).
    pub quorum: usize,
    /// Rotates the proposer order: round `r`'s proposer is
    /// `voters[(r + offset) mod n]`. The host derives it from the session hash so that
    /// no voter chooses to propose first.
    pub offset: u64,
    /// When round 0 starts on every node; its propose timeout runs from here, so a
    /// node that starts late does not stretch round 0.
    pub start_ms: u64,
    /// Step timeouts.
    pub timeouts: Timeouts,
    /// Rounds tried before giving up; also bounds the rounds messages may name.
    pub max_rounds: u32,
}

impl Config {
    /// Checks the fields that every node must get right for the rules to hold.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let n = self.voters.len();
        if n == 0 {
            return Err(ConfigError::NoVoters);
        }
        if self.voters.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ConfigError::VotersNotSorted);
        }
        if let Some(me) = self.me
            && self.voters.binary_search(&me).is_err()
        {
            return Err(ConfigError::MeNotAVoter);
        }
        // Two quorums must at least intersect; `quorum(n, t)` gives one that
        // intersects in an honest voter.
        if self.quorum > n || 2 * self.quorum <= n {
            return Err(ConfigError::QuorumOutOfRange {
                quorum: self.quorum,
                voters: n,
            });
        }
        if self.max_rounds == 0 {
            return Err(ConfigError::NoRounds);
        }
        Ok(())
    }
}

/// What the host must do after an input; collected with
/// [`drain`](super::Agreement::drain).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output<E> {
    /// This node proposes in `round` and holds no valid value: answer with
    /// [`propose`](super::Agreement::propose).
    NeedProposal {
        /// The round to propose in.
        round: Round,
    },
    /// Sign and broadcast this proposal together with its justification, and deliver
    /// it back to this node.
    SendProposal {
        /// The proposal.
        proposal: Proposal,
        /// For a re-proposal, the signed prevotes for its value in its `valid_round`
        /// (at least a quorum, sorted by voter); empty for a fresh value. Receivers
        /// pass their signers to [`on_proposal`](super::Agreement::on_proposal).
        justification: Vec<(OperatorAddress, E)>,
    },
    /// Sign and broadcast this vote, and deliver it back to this node.
    SendVote(Vote),
    /// A proposal names a value the host has not judged: answer with
    /// [`set_validity`](super::Agreement::set_validity). Asked once per value.
    NeedValidity(ValueId),
    /// The session's outcome, with its proof. Final.
    Decided(Certificate<E>),
    /// One voter signed two different proposals, or two different votes of one kind,
    /// in one round: proof of misbehaviour. Reported once per voter, round and kind.
    Equivocation {
        /// The equivocating voter.
        voter: OperatorAddress,
        /// The message that counts.
        first: E,
        /// The conflicting message, ignored.
        second: E,
    },
    /// `max_rounds` rounds passed without a decision. A certificate received later
    /// is still taken.
    GaveUp,
}

/// Proof of a decision: precommits for `value` in `round` from a quorum of voters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate<E> {
    /// The round in which the quorum precommitted.
    pub round: Round,
    /// The decided value.
    pub value: ValueId,
    /// Each signer with its signed precommit, sorted by signer.
    pub precommits: Vec<(OperatorAddress, E)>,
}

impl<E> Certificate<E> {
    /// The signers, in certificate order.
    pub fn signers(&self) -> Vec<OperatorAddress> {
        self.precommits.iter().map(|(a, _)| *a).collect()
    }

    /// [`check_certificate_shape`] on this certificate's signers.
    pub fn check_shape(
        &self,
        voters: &[OperatorAddress],
        quorum: usize,
    ) -> Result<(), CertificateError> {
        check_certificate_shape(voters, quorum, &self.signers())
    }
}

/// Checks that `signers` are distinct voters and at least `quorum` of them. With the
/// host's check that each signature is a precommit for the certificate's round and
/// value, this makes a certificate received from a peer a proof of decision.
/// `voters` must be sorted, as in [`Config`].
pub fn check_certificate_shape(
    voters: &[OperatorAddress],
    quorum: usize,
    signers: &[OperatorAddress],
) -> Result<(), CertificateError> {
    let mut seen = vec![false; voters.len()];
    for s in signers {
        let i = voters
            .binary_search(s)
            .map_err(|_| CertificateError::NotAVoter)?;
        if std::mem::replace(&mut seen[i], true) {
            return Err(CertificateError::DuplicateSigner);
        }
    }
    if signers.len() < quorum {
        return Err(CertificateError::BelowQuorum {
            signers: signers.len(),
            quorum,
        });
    }
    Ok(())
}
