//! A dealer's public commitment to its polynomial: one G2 point per coefficient.

use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};

use crate::error::CryptoError;
use crate::group::G2Point;
use crate::poly::powers;
use crate::scalar::Scalar;

/// Commitments `C_0 … C_{t-1}` in G2 (Feldman: `a_k·G2`; Pedersen: `a_k·G2 + b_k·H2`).
/// The sum of the qualified dealers' Feldman commitments is the public polynomial of
/// the shared key: its constant term is the master public key, its value at an
/// operator's point is that operator's public share.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<G2Point>", into = "Vec<G2Point>")]
pub struct Commitment {
    coeffs: Vec<G2Point>,
}

impl Commitment {
    /// Upper bound on coefficients accepted from the network: a threshold above this
    /// would mean more than 1,500 operators and is treated as hostile input.
    pub const MAX_COEFFICIENTS: usize = 1024;

    /// Wraps coefficients (lowest degree first). Must be non-empty and bounded; the
    /// points were already subgroup-checked when they were decoded.
    pub fn new(coeffs: Vec<G2Point>) -> Result<Self, CryptoError> {
        if coeffs.is_empty() {
            return Err(CryptoError::InvalidParameters(
                "commitment has no coefficients",
            ));
        }
        if coeffs.len() > Self::MAX_COEFFICIENTS {
            return Err(CryptoError::InvalidParameters(
                "commitment has too many coefficients",
            ));
        }
        Ok(Self { coeffs })
    }

    /// The coefficient commitments, lowest degree first.
    pub fn coefficients(&self) -> &[G2Point] {
        &self.coeffs
    }

    /// The threshold the committed polynomial implies (degree + 1).
    pub fn threshold(&self) -> usize {
        self.coeffs.len()
    }

    /// `C_0`. For a Feldman commitment this is the public image of the secret.
    pub fn constant(&self) -> &G2Point {
        &self.coeffs[0]
    }

    /// `Σ x^k·C_k`: the public image of the share at `x` (one MSM).
    pub fn evaluate(&self, x: &Scalar) -> G2Point {
        let xs = powers(x, self.coeffs.len());
        // Lengths match by construction.
        G2Point::msm(&self.coeffs, &xs).unwrap_or_else(|_| G2Point::identity())
    }

    /// The coefficient-wise sum of commitments of equal length (the public polynomial
    /// of a sum of secret polynomials).
    pub fn sum<'a>(items: impl IntoIterator<Item = &'a Commitment>) -> Result<Self, CryptoError> {
        let items: Vec<&Commitment> = items.into_iter().collect();
        let first = items
            .first()
            .ok_or(CryptoError::NotEnough { needed: 1, got: 0 })?;
        let t = first.threshold();
        if items.iter().any(|c| c.threshold() != t) {
            return Err(CryptoError::InvalidParameters(
                "commitments of different degrees",
            ));
        }
        let coeffs = (0..t)
            .map(|k| G2Point::sum(items.iter().map(|c| &c.coeffs[k])))
            .collect();
        Self::new(coeffs)
    }

    /// `Σ λ_i·C_i` coefficient-wise: the public polynomial of a Lagrange combination
    /// of secret polynomials (reshare: `f'(x) = Σ λ_i f'_i(x)`).
    pub fn linear_combination(
        items: &[&Commitment],
        weights: &[Scalar],
    ) -> Result<Self, CryptoError> {
        if items.len() != weights.len() || items.is_empty() {
            return Err(CryptoError::InvalidParameters(
                "linear combination: length mismatch",
            ));
        }
        let t = items[0].threshold();
        if items.iter().any(|c| c.threshold() != t) {
            return Err(CryptoError::InvalidParameters(
                "commitments of different degrees",
            ));
        }
        let coeffs = (0..t)
            .map(|k| {
                let column: Vec<G2Point> = items.iter().map(|c| c.coeffs[k]).collect();
                G2Point::msm(&column, weights)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(coeffs)
    }

    /// `keccak256(C_0 ‖ C_1 ‖ …)` over the 256-byte EIP-2537 encodings, the value acks
    /// and the on-chain registry commit to. Using the precompile encoding lets a
    /// contract recompute the hash from the points it feeds to the precompiles.
    pub fn hash(&self) -> [u8; 32] {
        let mut h = Keccak256::new();
        for c in &self.coeffs {
            h.update(c.to_eip2537());
        }
        h.finalize().into()
    }
}

impl TryFrom<Vec<G2Point>> for Commitment {
    type Error = CryptoError;
    fn try_from(v: Vec<G2Point>) -> Result<Self, CryptoError> {
        Self::new(v)
    }
}

impl From<Commitment> for Vec<G2Point> {
    fn from(c: Commitment) -> Self {
        c.coeffs
    }
}
