//! Pedersen VSS: commitments `C_k = a_k·G2 + b_k·H2`, where nobody knows `log_G2 H2`.

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::CryptoError;
use crate::group::{Comb, FixedBase, G2Point};
use crate::poly::Polynomial;
use crate::scalar::Scalar;
use crate::vss::Commitment;
use crate::vss::batch::{self, BatchItem};

/// Domain separation tag for hashing the coin-flip seed to `H2`.
pub const PEDERSEN_BASE_DST: &[u8] = b"EIGENKMS-V1-PEDERSEN-H_BLS12381G2_XMD:SHA-256_SSWU_RO_";

/// The second generator `H2`, hashed to G2 from a seed fixed by the coin flip. Being
/// a hash output, its discrete logarithm to `G2` is unknown to everyone; if a dealer
/// knew it, Pedersen commitments would not bind and it could open to any share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PedersenBase(G2Point);

impl PedersenBase {
    /// `H2 = hash_to_G2(seed)` under [`PEDERSEN_BASE_DST`].
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(G2Point::hash_to_curve(seed, PEDERSEN_BASE_DST))
    }

    /// The point `H2`.
    pub fn point(&self) -> &G2Point {
        &self.0
    }
}

/// A player's Pedersen share: `f(x)` and the blinding value `f'(x)`.
#[derive(Clone, Debug, PartialEq, Eq, Zeroize, ZeroizeOnDrop, Serialize, Deserialize)]
pub struct PedersenShare {
    /// `f(x)`, the share of the secret.
    pub value: Scalar,
    /// `f'(x)`, the share of the blinding polynomial.
    pub blinding: Scalar,
}

/// A dealer's secret and blinding polynomials and their Pedersen commitment.
#[derive(Clone, Debug)]
pub struct PedersenDealing {
    secret: Polynomial,
    blinding: Polynomial,
    commitment: Commitment,
    feldman: Commitment,
}

impl PedersenDealing {
    /// Shares `secret` with fresh random secret and blinding polynomials.
    pub fn new<R: RngCore + CryptoRng + ?Sized>(
        secret: Scalar,
        threshold: usize,
        base: &PedersenBase,
        rng: &mut R,
    ) -> Result<Self, CryptoError> {
        let secret = Polynomial::random(secret, threshold, rng)?;
        let blinding = Polynomial::random(Scalar::random(rng), threshold, rng)?;
        let h = base.point();
        // The Feldman commitment `a_k·G2` is kept for phase 2; the Pedersen one adds
        // `b_k·H2`. Both products are constant-time multiplications (the coefficients
        // are secret; `msm` is variable time); all 2t points become affine with one
        // shared inversion.
        let g = FixedBase::generator();
        let t = secret.coefficients().len();
        let mut proj: Vec<_> = secret
            .coefficients()
            .iter()
            .map(|a| g.mul_projective(a))
            .collect();
        // `H2` is new in each session and multiplied t times: a comb (about one of
        // blst's multiplications to build, half of one per use) at any t; a
        // fixed-base table would cost seven to build. `H2` is in G2 (a hash to G2,
        // the only way to make a `PedersenBase`) and not the identity (nobody can
        // hash to it; blst's multiplication would do then).
        let comb = Comb::of_g2_point(h).ok();
        for (k, b) in blinding.coefficients().iter().enumerate() {
            let hb = match &comb {
                Some(comb) => comb.mul_projective(b),
                None => h.mul_projective(b),
            };
            let sum = G2Point::add_projective(&proj[k], &hb);
            proj.push(sum);
        }
        let mut points = G2Point::batch_from_projective(&proj);
        let coeffs = points.split_off(t);
        Ok(Self {
            secret,
            blinding,
            commitment: Commitment::new(coeffs)?,
            feldman: Commitment::new(points)?,
        })
    }

    /// The Pedersen commitment broadcast in phase 1.
    pub fn commitment(&self) -> &Commitment {
        &self.commitment
    }

    /// The Feldman commitment `a_k·G2` of the same secret polynomial, published in
    /// phase 2 by qualified dealers; it yields the public key.
    pub fn feldman_commitment(&self) -> Commitment {
        self.feldman.clone()
    }

    /// The secret polynomial `f`.
    pub fn polynomial(&self) -> &Polynomial {
        &self.secret
    }

    /// The blinding polynomial `f'` (its constant is published by a reshare dealer,
    /// which reveals only `f(0)·G2`, public there anyway).
    pub fn blinding_polynomial(&self) -> &Polynomial {
        &self.blinding
    }

    /// The share for the player at `x`.
    pub fn share(&self, x: &Scalar) -> PedersenShare {
        PedersenShare {
            value: self.secret.evaluate(x),
            blinding: self.blinding.evaluate(x),
        }
    }
}

/// Whether `s·G2 + s'·H2 == Σ x^k·C_k`.
pub fn verify_share(
    x: &Scalar,
    share: &PedersenShare,
    commitment: &Commitment,
    base: &PedersenBase,
) -> bool {
    batch::check_one(x, &BatchItem::pedersen(commitment, share), Some(base))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vss::feldman;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn deal_verify_and_phase_two_consistency() {
        let mut rng = ChaCha20Rng::seed_from_u64(21);
        let base = PedersenBase::from_seed(&[3u8; 32]);
        assert_ne!(*base.point(), G2Point::generator());
        let secret = Scalar::random(&mut rng);
        let d = PedersenDealing::new(secret.clone(), 4, &base, &mut rng).unwrap();
        // The Pedersen commitment hides the secret: C_0 != secret·G2.
        assert_ne!(
            *d.commitment().constant(),
            G2Point::generator().mul(&secret)
        );
        let fc = d.feldman_commitment();
        assert_eq!(*fc.constant(), G2Point::generator().mul(&secret));
        for i in 1..=6u64 {
            let x = Scalar::from_u64(i);
            let s = d.share(&x);
            assert!(verify_share(&x, &s, d.commitment(), &base));
            assert!(feldman::verify_share(&x, &s.value, &fc));
            let mut bad = s.clone();
            bad.blinding = &bad.blinding + &Scalar::one();
            assert!(!verify_share(&x, &bad, d.commitment(), &base));
        }
    }

    #[test]
    fn commitments_match_plain_multiplications() {
        let mut rng = ChaCha20Rng::seed_from_u64(22);
        let base = PedersenBase::from_seed(&[4u8; 32]);
        let (g, h) = (G2Point::generator(), *base.point());
        for t in [1, 3, 16, 21] {
            let d = PedersenDealing::new(Scalar::random(&mut rng), t, &base, &mut rng).unwrap();
            let coeffs = d
                .secret
                .coefficients()
                .iter()
                .zip(d.blinding.coefficients());
            for (k, (a, b)) in coeffs.enumerate() {
                assert_eq!(d.feldman.coefficients()[k], g.mul(a), "t = {t}, k = {k}");
                assert_eq!(
                    d.commitment.coefficients()[k],
                    g.mul(a).add(&h.mul(b)),
                    "t = {t}, k = {k}"
                );
            }
        }
    }
}
