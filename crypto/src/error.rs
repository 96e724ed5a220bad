//! The one error type of `kms-crypto`.

use thiserror::Error;

/// Everything that can go wrong in the cryptographic core. Messages never carry
/// secret material: they name the check that failed, not the values involved.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CryptoError {
    /// A byte string has the wrong length for the type being decoded.
    #[error("invalid length: expected {expected} bytes, got {got}")]
    InvalidLength {
        /// Required length.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// Bytes that are not the canonical encoding of a value of the expected type.
    #[error("invalid encoding: {0}")]
    InvalidEncoding(&'static str),
    /// A decoded point is not on the curve.
    #[error("point is not on the curve")]
    PointNotOnCurve,
    /// A decoded point is on the curve but outside the prime-order subgroup.
    #[error("point is not in the prime-order subgroup")]
    PointNotInSubgroup,
    /// The point at infinity where a non-identity point is required.
    #[error("point at infinity is not allowed here")]
    PointAtInfinity,
    /// A scalar is not reduced modulo the group order.
    #[error("scalar is not canonical (>= group order)")]
    ScalarNotCanonical,
    /// A value that must be non-zero is zero (an evaluation point, an inverse).
    #[error("zero value not allowed: {0}")]
    Zero(&'static str),
    /// Interpolation or Lagrange coefficients over points that are not distinct.
    #[error("duplicate evaluation point")]
    DuplicatePoint,
    /// An operation that needs at least `needed` inputs was given `got`.
    #[error("not enough inputs: need {needed}, got {got}")]
    NotEnough {
        /// How many are required.
        needed: usize,
        /// How many were given.
        got: usize,
    },
    /// Parameters that do not fit together (lengths, degrees, thresholds).
    #[error("invalid parameters: {0}")]
    InvalidParameters(&'static str),
    /// A signature, share or key that does not verify.
    #[error("verification failed: {0}")]
    VerificationFailed(&'static str),
    /// Decryption failed: wrong key, wrong identity, or tampered ciphertext.
    #[error("decryption failed")]
    DecryptionFailed,
}
