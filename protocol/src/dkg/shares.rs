//! Checking a player's decrypted shares against the dealers' commitments without
//! letting a secret into variable-time code: the multi-scalar multiplication runs
//! over public points and public scalars only (the commitments, the random weights
//! and powers of the public evaluation point), and the secret side — the weighted sum
//! of the shares times `G2` (and of the blindings times `H2`) — is one constant-time
//! multiplication each. A failing batch falls back to item-by-item checks of the same
//! shape, so a dealer that sends one bad share learns nothing from the timing of the
//! honest ones.

use kms_crypto::group::{Comb, FixedBase};
use kms_crypto::poly::powers;
use kms_crypto::vss::pedersen::{PedersenBase, PedersenShare};
use kms_crypto::{Commitment, G2Point, Scalar};
use rand_core::{CryptoRng, RngCore};

/// `k·H2` in constant time: a comb built for this session's base.
pub struct BaseTable {
    comb: Option<Comb>,
    base: PedersenBase,
}

impl BaseTable {
    /// The table for `base`.
    pub fn new(base: PedersenBase) -> Self {
        Self {
            comb: Comb::new(base.point()).ok(),
            base,
        }
    }

    /// `k·H2`, constant time in `k`.
    pub fn mul(&self, k: &Scalar) -> G2Point {
        match &self.comb {
            Some(c) => c.mul(k),
            None => self.base.point().mul(k),
        }
    }

    /// The base.
    pub fn base(&self) -> &PedersenBase {
        &self.base
    }
}

/// `s·G2 (+ s'·H2)`: the secret side of a share check, constant time.
fn secret_side(share: &PedersenShare, base: Option<&BaseTable>) -> G2Point {
    let g = FixedBase::generator().mul(&share.value);
    match base {
        Some(b) => g.add(&b.mul(&share.blinding)),
        None => g,
    }
}

/// Whether one share lies on its commitment at `x`: `C(x)` from public data,
/// compared with the constant-time secret side. Exact (no random weights), so every
/// node reaches the same verdict on the same share.
pub fn check_one(
    x: &Scalar,
    commitment: &Commitment,
    share: &PedersenShare,
    base: Option<&BaseTable>,
) -> bool {
    commitment.evaluate(x) == secret_side(share, base)
}

/// Why items of a failed [`verify_shares`] batch fail.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Failures {
    /// Items whose share is off its commitment (exact check): provable by a
    /// complaint, which opens that one share.
    pub invalid: Vec<usize>,
    /// Items whose commitment has a coefficient outside G2: invalid for everyone,
    /// from public data alone, so never complained about (a complaint would open a
    /// share for nothing).
    pub outside_g2: Vec<usize>,
}

/// Checks every `(commitment, share)` for the player at `x` with one MSM of public
/// scalars. On failure every item gets its exact verdict: its commitment in G2
/// (public) and its share on it (exact check). A batch can fail while every share
/// lies on its commitment only when some commitment is outside G2 (the MSM is a
/// linear combination only over the group); such items are named as `outside_g2`,
/// never as `invalid`, so a dealer that plants torsion in its commitment cannot make
/// an honest player complain about (and so open) the shares of honest dealers.
pub fn verify_shares<R: RngCore + CryptoRng + ?Sized>(
    x: &Scalar,
    items: &[(&Commitment, &PedersenShare)],
    base: Option<&BaseTable>,
    rng: &mut R,
) -> Result<(), Failures> {
    if items.is_empty() {
        return Ok(());
    }
    let t = items.iter().map(|(c, _)| c.threshold()).max().unwrap_or(0);
    let xs = powers(x, t);
    let mut points = Vec::with_capacity(items.len() * t);
    let mut scalars = Vec::with_capacity(items.len() * t);
    let mut value = Scalar::zero();
    let mut blinding = Scalar::zero();
    for (c, s) in items {
        let rho = Scalar::random_u128(rng);
        for (p, xk) in c.coefficients().iter().zip(&xs) {
            points.push(*p);
            scalars.push(&rho * xk);
        }
        value = &value + &(&rho * &s.value);
        blinding = &blinding + &(&rho * &s.blinding);
    }
    let combined = PedersenShare { value, blinding };
    let lhs = G2Point::msm(&points, &scalars);
    if lhs.is_ok_and(|l| l == secret_side(&combined, base)) {
        return Ok(());
    }
    let mut failures = Failures::default();
    for (i, (c, s)) in items.iter().enumerate() {
        if c.subgroup_violation().is_some() {
            failures.outside_g2.push(i);
        } else if !check_one(x, c, s, base) {
            failures.invalid.push(i);
        }
    }
    if failures.invalid.is_empty() && failures.outside_g2.is_empty() {
        // Every item passed its exact checks: the exact verdicts are the ones every
        // node and the contract reach, so they stand.
        return Ok(());
    }
    Err(failures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kms_crypto::vss::feldman::FeldmanDealing;
    use kms_crypto::vss::pedersen::PedersenDealing;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn a_batch_of_valid_shares_passes_and_a_bad_one_is_named() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let x = Scalar::from_u64(3);
        let ds: Vec<_> = (0..4)
            .map(|_| FeldmanDealing::new(Scalar::random(&mut rng), 3, &mut rng).unwrap())
            .collect();
        let mut shares: Vec<_> = ds
            .iter()
            .map(|d| PedersenShare {
                value: d.share(&x),
                blinding: Scalar::zero(),
            })
            .collect();
        let items: Vec<_> = ds
            .iter()
            .map(|d| d.commitment())
            .zip(shares.iter())
            .collect();
        assert!(verify_shares(&x, &items, None, &mut rng).is_ok());
        shares[2].value = &shares[2].value + &Scalar::one();
        let items: Vec<_> = ds
            .iter()
            .map(|d| d.commitment())
            .zip(shares.iter())
            .collect();
        assert_eq!(
            verify_shares(&x, &items, None, &mut rng),
            Err(Failures {
                invalid: vec![2],
                outside_g2: vec![]
            })
        );
    }

    #[test]
    fn pedersen_shares_are_checked_with_their_blinding() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let base = PedersenBase::from_seed(&[5; 32]);
        let table = BaseTable::new(base);
        let x = Scalar::from_u64(2);
        let ds: Vec<_> = (0..3)
            .map(|_| PedersenDealing::new(Scalar::random(&mut rng), 2, &base, &mut rng).unwrap())
            .collect();
        let mut shares: Vec<_> = ds.iter().map(|d| d.share(&x)).collect();
        let items: Vec<_> = ds
            .iter()
            .map(|d| d.commitment())
            .zip(shares.iter())
            .collect();
        assert!(verify_shares(&x, &items, Some(&table), &mut rng).is_ok());
        shares[0].blinding = &shares[0].blinding + &Scalar::one();
        let items: Vec<_> = ds
            .iter()
            .map(|d| d.commitment())
            .zip(shares.iter())
            .collect();
        assert_eq!(
            verify_shares(&x, &items, Some(&table), &mut rng),
            Err(Failures {
                invalid: vec![0],
                outside_g2: vec![]
            })
        );
    }
}
