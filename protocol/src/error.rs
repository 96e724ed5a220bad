//! Errors of the protocol engines.

use thiserror::Error;

/// Why a message was rejected or a session could not be set up. The reason strings
/// are stable and low-cardinality: the node counts rejections by them.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// Session parameters that cannot work.
    #[error("invalid session: {0}")]
    InvalidSession(&'static str),
    /// Bytes that do not decode.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// The signature does not verify against the signer's registered key.
    #[error("bad signature")]
    BadSignature,
    /// A well-formed, authentic message that does not belong here.
    #[error("rejected: {0}")]
    Rejected(&'static str),
}

impl ProtocolError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidSession(r) | Self::Malformed(r) | Self::Rejected(r) => r,
            Self::BadSignature => "bad signature",
        }
    }
}
