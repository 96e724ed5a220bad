//! Why a v2 engine refuses a message: one enum with a stable code, mapped to an HTTP
//! status and a metric label here and nowhere else.

use thiserror::Error;

/// A refused message. `code()` is stable (metric labels, API error codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Error)]
pub enum Rejection {
    /// Bytes that are not one canonical encoding of a known message.
    #[error("malformed message")]
    Malformed,
    /// Too large for its kind.
    #[error("message too large")]
    TooLarge,
    /// A point that is not a canonical curve point of the right group.
    #[error("invalid curve point")]
    InvalidPoint,
    /// A scalar or ciphertext word that is not reduced.
    #[error("non-canonical scalar")]
    NonCanonicalScalar,
    /// Another session or another deployment.
    #[error("wrong session")]
    WrongSession,
    /// The signer is not the payload's author.
    #[error("signer is not the author")]
    SignerMismatch,
    /// The author has no role that sends this kind of message.
    #[error("author has no such role in the session")]
    WrongRole,
    /// The signature does not verify against the author's registered key.
    #[error("bad signature")]
    BadSignature,
    /// A commitment of the wrong degree, or ciphertexts for another player set.
    #[error("wrong shape for the session")]
    WrongShape,
    /// A vote or proposal outside the rounds this session keeps.
    #[error("round out of range")]
    RoundOutOfRange,
    /// A second, different message of a kind an author sends once.
    #[error("equivocation")]
    Equivocation,
    /// Already received.
    #[error("duplicate")]
    Duplicate,
    /// The phase this message belongs to was decided: nothing may change it now.
    #[error("phase already decided")]
    PhaseClosed,
    /// Refers to a dealing this node does not hold (fetched, and retried on arrival).
    #[error("unknown dealing")]
    UnknownDealing,
    /// A complaint whose proof does not verify or whose share is in fact valid.
    #[error("invalid complaint")]
    InvalidComplaint,
    /// A reshare dealing whose constant is not the dealer's weighted public share.
    #[error("wrong reshare constant")]
    WrongReshareConstant,
    /// A Pedersen public share that does not verify.
    #[error("invalid public share")]
    InvalidPublicShare,
    /// A recovery share that does not lie on its dealing's commitment.
    #[error("invalid recovery share")]
    InvalidRecovery,
    /// A dealing whose recipients are not the agreed roster's keys.
    #[error("dealing not encrypted to the agreed roster")]
    WrongRecipients,
    /// More messages from this author than a session needs.
    #[error("too many messages")]
    RateLimited,
}

impl Rejection {
    /// Every rejection, for metrics registered at zero.
    pub const ALL: [Rejection; 20] = [
        Self::Malformed,
        Self::TooLarge,
        Self::InvalidPoint,
        Self::NonCanonicalScalar,
        Self::WrongSession,
        Self::SignerMismatch,
        Self::WrongRole,
        Self::BadSignature,
        Self::WrongShape,
        Self::RoundOutOfRange,
        Self::Equivocation,
        Self::Duplicate,
        Self::PhaseClosed,
        Self::UnknownDealing,
        Self::InvalidComplaint,
        Self::WrongReshareConstant,
        Self::InvalidPublicShare,
        Self::InvalidRecovery,
        Self::WrongRecipients,
        Self::RateLimited,
    ];

    /// Stable snake-case code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::TooLarge => "too_large",
            Self::InvalidPoint => "invalid_point",
            Self::NonCanonicalScalar => "non_canonical_scalar",
            Self::WrongSession => "wrong_session",
            Self::SignerMismatch => "signer_mismatch",
            Self::WrongRole => "wrong_role",
            Self::BadSignature => "bad_signature",
            Self::WrongShape => "wrong_shape",
            Self::RoundOutOfRange => "round_out_of_range",
            Self::Equivocation => "equivocation",
            Self::Duplicate => "duplicate",
            Self::PhaseClosed => "phase_closed",
            Self::UnknownDealing => "unknown_dealing",
            Self::InvalidComplaint => "invalid_complaint",
            Self::WrongReshareConstant => "wrong_reshare_constant",
            Self::InvalidPublicShare => "invalid_public_share",
            Self::InvalidRecovery => "invalid_recovery",
            Self::WrongRecipients => "wrong_recipients",
            Self::RateLimited => "rate_limited",
        }
    }

    /// The HTTP status the node answers with: 401 for authentication, 409 for a
    /// message that is authentic but conflicts with what was decided or received,
    /// 429 for quotas, 400 otherwise.
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadSignature | Self::SignerMismatch => 401,
            Self::WrongRole => 403,
            Self::Duplicate | Self::Equivocation | Self::PhaseClosed => 409,
            Self::RateLimited => 429,
            Self::TooLarge => 413,
            _ => 400,
        }
    }

    /// Whether the sender may simply have been early or late (not evidence of a
    /// fault): such refusals are counted but not logged as warnings.
    pub fn is_benign(self) -> bool {
        matches!(
            self,
            Self::Duplicate | Self::PhaseClosed | Self::UnknownDealing | Self::RoundOutOfRange
        )
    }
}

impl From<crate::agreement::Rejection> for Rejection {
    /// The agreement's refusals in this module's terms: one mapping, so that every
    /// code keeps its meaning (a proposal of the wrong proposer is a role error, not
    /// a benign late round).
    fn from(r: crate::agreement::Rejection) -> Self {
        use crate::agreement::Rejection as A;
        match r {
            A::NotAVoter | A::NotTheProposer => Self::WrongRole,
            A::RoundOutOfRange => Self::RoundOutOfRange,
            A::Duplicate => Self::Duplicate,
            A::Equivocation | A::ConflictsWithDecision => Self::Equivocation,
            A::ValidRoundNotEarlier | A::NotRequested | A::Certificate(_) => Self::WrongShape,
            A::Finished => Self::PhaseClosed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn codes_are_distinct_and_every_variant_is_listed() {
        let codes: BTreeSet<_> = Rejection::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), Rejection::ALL.len());
        for r in Rejection::ALL {
            assert!(
                (400..500).contains(&r.http_status()),
                "{r:?} is a client error"
            );
        }
    }
}
