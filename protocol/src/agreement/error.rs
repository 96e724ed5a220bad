//! Errors of the agreement: configurations that cannot work, inputs it refuses, and
//! certificates of the wrong shape. Each has a stable [`code`](Rejection::code) for
//! metrics and logs.

use thiserror::Error;

/// A [`Config`](super::Config) (or quorum parameters) that cannot work.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// The voter list is empty.
    #[error("no voters")]
    NoVoters,
    /// The voter list is not strictly increasing (unsorted or with duplicates), so
    /// proposer order and vote indices would differ between nodes.
    #[error("voters are not sorted and distinct")]
    VotersNotSorted,
    /// This node is neither a voter nor configured as an observer.
    #[error("this node is not among the voters")]
    MeNotAVoter,
    /// Two quorums would not intersect (`2q ≤ n`), or a quorum larger than `n`.
    #[error("quorum {quorum} out of range for {voters} voters")]
    QuorumOutOfRange {
        /// The configured quorum.
        quorum: usize,
        /// The number of voters.
        voters: usize,
    },
    /// The threshold is not in `1..=n`.
    #[error("threshold {threshold} out of range for {voters} voters")]
    ThresholdOutOfRange {
        /// The threshold asked for.
        threshold: usize,
        /// The number of voters.
        voters: usize,
    },
    /// `max_rounds` is zero: no round could ever run.
    #[error("max_rounds is zero")]
    NoRounds,
}

impl ConfigError {
    /// A stable label for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoVoters => "no_voters",
            Self::VotersNotSorted => "voters_not_sorted",
            Self::MeNotAVoter => "me_not_a_voter",
            Self::QuorumOutOfRange { .. } => "quorum_out_of_range",
            Self::ThresholdOutOfRange { .. } => "threshold_out_of_range",
            Self::NoRounds => "no_rounds",
        }
    }
}

/// Why a certificate does not have the shape of a decision.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum CertificateError {
    /// A signer is not a voter: its precommit proves nothing about the quorum.
    #[error("signer is not a voter")]
    NotAVoter,
    /// A voter signs twice: counting it twice would let fewer than a quorum decide.
    #[error("duplicate signer")]
    DuplicateSigner,
    /// Fewer distinct signers than the quorum.
    #[error("{signers} signers, quorum is {quorum}")]
    BelowQuorum {
        /// Distinct signers present.
        signers: usize,
        /// The quorum required.
        quorum: usize,
    },
}

impl CertificateError {
    /// A stable label for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAVoter => "certificate_not_a_voter",
            Self::DuplicateSigner => "certificate_duplicate_signer",
            Self::BelowQuorum { .. } => "certificate_below_quorum",
        }
    }
}

/// Why an input was not taken into account. Nothing here changes the state machine;
/// the host may count and log them by [`code`](Self::code).
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The sender is not a voter.
    #[error("sender is not a voter")]
    NotAVoter,
    /// A proposal from a voter that is not the round's proposer.
    #[error("sender is not the proposer of the round")]
    NotTheProposer,
    /// A round at or beyond `max_rounds`: refused to bound memory.
    #[error("round out of range")]
    RoundOutOfRange,
    /// The same message again.
    #[error("duplicate message")]
    Duplicate,
    /// A second, different proposal or vote of one kind in one round from one voter:
    /// only the first counts, so an equivocator cannot vote twice (reported once as
    /// [`Output::Equivocation`](super::Output::Equivocation)).
    #[error("conflicts with an earlier message of the same voter")]
    Equivocation,
    /// A proposal whose `valid_round` is not earlier than its round: no polka can
    /// justify it.
    #[error("valid_round is not earlier than the round")]
    ValidRoundNotEarlier,
    /// The agreement has decided or given up.
    #[error("agreement finished")]
    Finished,
    /// `propose` for a round in which no proposal was requested, or twice.
    #[error("no proposal requested for this round")]
    NotRequested,
    /// A certificate of the wrong shape.
    #[error("bad certificate: {0}")]
    Certificate(CertificateError),
    /// A certificate for another value than the one decided: more than `n − t`
    /// voters are Byzantine, or the host verified signatures wrongly.
    #[error("certificate conflicts with the decision")]
    ConflictsWithDecision,
}

impl Rejection {
    /// A stable label for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAVoter => "not_a_voter",
            Self::NotTheProposer => "not_the_proposer",
            Self::RoundOutOfRange => "round_out_of_range",
            Self::Duplicate => "duplicate",
            Self::Equivocation => "equivocation",
            Self::ValidRoundNotEarlier => "valid_round_not_earlier",
            Self::Finished => "finished",
            Self::NotRequested => "not_requested",
            Self::Certificate(e) => e.code(),
            Self::ConflictsWithDecision => "conflicts_with_decision",
        }
    }
}

impl From<CertificateError> for Rejection {
    fn from(e: CertificateError) -> Self {
        Self::Certificate(e)
    }
}
