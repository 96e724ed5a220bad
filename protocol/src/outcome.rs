//! What a session produces.

use kms_crypto::{Commitment, OperatorAddress, Scalar};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::session::{SessionTimestamp, VssMode};

/// One version of this operator's share of the master key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyShareVersion {
    /// The session that produced it (the version's name).
    pub session_timestamp: SessionTimestamp,
    /// This operator's secret share (zeroized on drop).
    pub share: Scalar,
    /// The public polynomial: `commitment.constant()` is the master public key.
    pub commitment: Commitment,
    /// The operators holding shares of this version.
    pub operator_set: Vec<OperatorAddress>,
    /// The reconstruction threshold.
    pub threshold: usize,
    /// The dealers whose contributions make up this version.
    pub qualified_dealers: Vec<OperatorAddress>,
    /// The VSS mode of the session.
    pub mode: VssMode,
}

/// How a session ended for this node.
#[derive(Clone, Debug)]
pub enum SessionOutcome {
    /// A new key version for this node (a player of the session).
    NewVersion(Box<KeyShareVersion>),
    /// This node dealt but is not in the new set (it is leaving): nothing to store.
    Departed {
        /// The qualified dealers as this node saw them.
        qualified_dealers: Vec<OperatorAddress>,
    },
}

/// A session that did not produce a usable key. The node keeps its previous version
/// and retries at the next interval.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum SessionFailure {
    /// Too few dealers qualified.
    #[error("only {qualified} dealers qualified, {needed} needed")]
    NotEnoughQualified {
        /// Qualified dealers.
        qualified: usize,
        /// Required.
        needed: usize,
    },
    /// This node's key is not in the agreed roster: no share was encrypted to it.
    #[error("this node's encryption key is not in the agreed roster")]
    NotInRoster,
    /// A qualified dealer's share for this node is missing or invalid.
    #[error("no valid share from qualified dealer {0}")]
    MissingShare(OperatorAddress),
    /// The coin flip for the Pedersen base could not be completed.
    #[error("coin flip failed: {0}")]
    CoinFlip(&'static str),
    /// A dealer could not be reconstructed after failing Pedersen phase 2.
    #[error("could not reconstruct dealer {0}")]
    Reconstruction(OperatorAddress),
    /// Reshare produced a public polynomial with another master public key.
    #[error("reshare would change the master public key; keeping the old version")]
    MasterKeyChanged,
    /// The session deadline passed in this phase without an outcome (no quorum was
    /// connected in time, or no certificate reached this node).
    #[error("session deadline passed in phase {0}")]
    Deadline(&'static str),
    /// Internal consistency check failed (a bug, not an attack).
    #[error("internal inconsistency: {0}")]
    Internal(&'static str),
}
