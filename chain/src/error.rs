//! Errors of the chain layer.

use std::time::Duration;

use alloy::primitives::B256;
use thiserror::Error;

/// Why a chain operation failed.
#[derive(Debug, Error)]
pub enum ChainError {
    /// The RPC endpoint could not be reached or answered with an error.
    #[error("RPC: {0}")]
    Rpc(String),
    /// A call or transaction reverted; `reason` is the decoded custom error when the
    /// contract's ABI knows it (e.g. `ShareIsValid`), else the raw revert data.
    #[error("{contract} reverted: {reason}")]
    Reverted {
        /// The contract called.
        contract: &'static str,
        /// The decoded error name and arguments, or hex revert data.
        reason: String,
    },
    /// A transaction was mined but failed.
    #[error("transaction {0} failed on-chain")]
    TransactionFailed(B256),
    /// A bounded wait ran out.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, &'static str),
    /// The transaction signer refused or failed.
    #[error("signer: {0}")]
    Signer(String),
    /// Fraud evidence of a kind the contract cannot verify.
    #[error("evidence cannot be proven on-chain: {0}")]
    Unsupported(&'static str),
    /// Evidence or session data that does not fit together.
    #[error("invalid evidence: {0}")]
    InvalidEvidence(String),
    /// The chain returned data that violates the contracts' invariants.
    #[error("invalid data from the chain: {0}")]
    InvalidChainData(String),
    /// The chain already holds a different record (e.g. another commitment hash).
    #[error("conflicting on-chain record: {0}")]
    Conflict(String),
    /// A bad argument (URL, key file, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl ChainError {
    /// The decoded revert reason's error name (`ShareIsValid`), if this is a revert.
    pub fn revert_name(&self) -> Option<&str> {
        match self {
            Self::Reverted { reason, .. } => {
                Some(reason.split(['(', ' ', '{']).next().unwrap_or(reason))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revert_names() {
        let e = ChainError::Reverted {
            contract: "EigenKMSSlashing",
            reason: "NotMember(NotMember { complainer: 0x01 })".into(),
        };
        assert_eq!(e.revert_name(), Some("NotMember"));
        assert_eq!(ChainError::Rpc("x".into()).revert_name(), None);
    }
}
