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
///
/// # Deferred subgroup checks
///
/// A commitment built from checked points ([`Commitment::new`], serde, dealing) is in
/// G2 throughout. One decoded from the network with
/// [`Commitment::from_eip2537_deferred`] is only known to be on the curve: checking
/// each of a session's `n·t` received points for subgroup membership would cost about
/// three times the batched share verification itself. That is sound because of how
/// the points are used. The curve group is `G2 × T` with `T` the cofactor torsion,
/// orders coprime, so every equation splits into a G2 part and a `T` part:
///
/// - batched and single share checks compare G2 parts exactly (a share is consistent
///   with the G2 part of the commitment); a torsion part can only make a check fail;
/// - whatever becomes an output — the public polynomial of a session, a sum or a
///   combination of commitments — must pass [`Commitment::check_subgroup`], which is
///   exact, before it is used; if it fails, the dealers' own commitments are checked
///   one by one and the culprit's signed commitment is the evidence;
/// - a commitment named in fraud evidence is checked exactly first.
///
/// Torsion components are never relied upon: share checks may or may not see them (a
/// dealer can solve the few linear conditions mod 13 that one player's check imposes,
/// and blst's fast multiplications treat points as if they were in G2). A dealer
/// hiding torsion therefore changes nothing an honest node outputs, and a batch that
/// fails for torsion alone names the dealer (see [`crate::vss::batch`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "Vec<G2Point>", into = "Vec<G2Point>")]
pub struct Commitment {
    coeffs: Vec<G2Point>,
    /// Every coefficient is known to lie in G2.
    in_g2: bool,
}

impl PartialEq for Commitment {
    fn eq(&self, other: &Self) -> bool {
        self.coeffs == other.coeffs
    }
}

impl Eq for Commitment {}

impl std::hash::Hash for Commitment {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.coeffs.hash(state);
    }
}

impl Commitment {
    /// Upper bound on coefficients accepted from the network: a threshold above this
    /// would mean more than 1,500 operators and is treated as hostile input.
    pub const MAX_COEFFICIENTS: usize = 1024;

    /// Wraps coefficients (lowest degree first). Must be non-empty and bounded; the
    /// points come from the strict decoders or from arithmetic on such points.
    pub fn new(coeffs: Vec<G2Point>) -> Result<Self, CryptoError> {
        Self::check_len(coeffs.len())?;
        Ok(Self {
            coeffs,
            in_g2: true,
        })
    }

    fn check_len(len: usize) -> Result<(), CryptoError> {
        if len == 0 {
            return Err(CryptoError::InvalidParameters(
                "commitment has no coefficients",
            ));
        }
        if len > Self::MAX_COEFFICIENTS {
            return Err(CryptoError::InvalidParameters(
                "commitment has too many coefficients",
            ));
        }
        Ok(())
    }

    /// Decodes 256-byte EIP-2537 words strictly except for the subgroup check, which
    /// is deferred (see the type's documentation): canonical, on the curve, not the
    /// identity, bounded length.
    pub fn from_eip2537_deferred<'a>(
        words: impl ExactSizeIterator<Item = &'a [u8]>,
    ) -> Result<Self, CryptoError> {
        Self::check_len(words.len())?;
        let coeffs = words
            .map(G2Point::from_eip2537_on_curve)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            coeffs,
            in_g2: false,
        })
    }

    /// Whether every coefficient is already known to lie in G2.
    pub fn is_subgroup_checked(&self) -> bool {
        self.in_g2
    }

    /// The first coefficient outside G2, if any (exact: up to `t` endomorphism tests,
    /// none if the commitment is already known to be in G2).
    pub fn subgroup_violation(&self) -> Option<usize> {
        if self.in_g2 {
            return None;
        }
        self.coeffs.iter().position(|c| !c.in_subgroup())
    }

    /// Like [`Commitment::subgroup_violation`], remembering a success so that the
    /// points are tested at most once. `Err(k)` names the first coefficient outside G2.
    pub fn check_subgroup(&mut self) -> Result<(), usize> {
        match self.subgroup_violation() {
            Some(k) => Err(k),
            None => {
                self.in_g2 = true;
                Ok(())
            }
        }
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
    /// of a sum of secret polynomials). Subgroup-checked if every input is.
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
        let sums: Vec<_> = (0..t)
            .map(|k| G2Point::sum_projective(items.iter().map(|c| &c.coeffs[k])))
            .collect();
        // One inversion for all t coefficients.
        let coeffs = G2Point::batch_from_projective(&sums);
        Ok(Self {
            coeffs,
            in_g2: items.iter().all(|c| c.in_g2),
        })
    }

    /// `Σ λ_i·C_i` coefficient-wise: the public polynomial of a Lagrange combination
    /// of secret polynomials (reshare: `f'(x) = Σ λ_i f'_i(x)`). Subgroup-checked if
    /// every input is.
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
                // t medium-sized MSMs in a row: Pippenger on this thread costs less
                // CPU than the pool's split (and than point-by-point below 32).
                if column.len() >= 8 {
                    G2Point::msm_serial(&column, weights)
                } else {
                    G2Point::msm(&column, weights)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            coeffs,
            in_g2: items.iter().all(|c| c.in_g2),
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vss::feldman::FeldmanDealing;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn dealt(seed: u64, t: usize) -> Commitment {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        FeldmanDealing::new(Scalar::random(&mut rng), t, &mut rng)
            .unwrap()
            .commitment()
            .clone()
    }

    fn words(c: &Commitment) -> Vec<[u8; 256]> {
        c.coefficients().iter().map(G2Point::to_eip2537).collect()
    }

    fn deferred(words: &[[u8; 256]]) -> Result<Commitment, CryptoError> {
        Commitment::from_eip2537_deferred(words.iter().map(|w| w.as_slice()))
    }

    #[test]
    fn deferred_decoding_checks_the_subgroup_once_asked() {
        let c = dealt(1, 5);
        let mut d = deferred(&words(&c)).unwrap();
        assert_eq!(d, c);
        assert_eq!(d.hash(), c.hash());
        assert!(!d.is_subgroup_checked());
        assert_eq!(d.subgroup_violation(), None);
        assert_eq!(d.check_subgroup(), Ok(()));
        assert!(d.is_subgroup_checked());

        let torsion = G2Point::small_order_point();
        let mut w = words(&c);
        w[3] = c.coefficients()[3].add(&torsion).to_eip2537();
        let mut bad = deferred(&w).unwrap();
        assert_eq!(bad.subgroup_violation(), Some(3));
        assert_eq!(bad.check_subgroup(), Err(3));
        assert!(!bad.is_subgroup_checked());
    }

    #[test]
    fn deferred_decoding_refuses_what_the_strict_decoder_refuses_but_torsion() {
        let c = dealt(2, 3);
        let mut w = words(&c);
        w[1] = [0u8; 256];
        assert_eq!(deferred(&w), Err(CryptoError::PointAtInfinity));
        assert!(deferred(&[]).is_err());
        let many = vec![words(&c)[0]; Commitment::MAX_COEFFICIENTS + 1];
        assert!(deferred(&many).is_err());
    }

    #[test]
    fn aggregates_are_checked_unless_every_input_was() {
        let (a, b) = (dealt(3, 4), dealt(4, 4));
        assert!(Commitment::sum([&a, &b]).unwrap().is_subgroup_checked());
        // Two dealers hiding opposite torsion: the sum is clean, and the check of the
        // aggregate (not of each dealer) is what the output needs.
        let torsion = G2Point::small_order_point();
        let mut wa = words(&a);
        wa[2] = a.coefficients()[2].add(&torsion).to_eip2537();
        let mut wb = words(&b);
        wb[2] = b.coefficients()[2].sub(&torsion).to_eip2537();
        let (ta, tb) = (deferred(&wa).unwrap(), deferred(&wb).unwrap());
        let mut sum = Commitment::sum([&ta, &tb]).unwrap();
        assert!(!sum.is_subgroup_checked());
        assert_eq!(sum.check_subgroup(), Ok(()));
        assert_eq!(sum, Commitment::sum([&a, &b]).unwrap());
        // One of them alone poisons the aggregate.
        let mut half = Commitment::sum([&ta, &b]).unwrap();
        assert_eq!(half.check_subgroup(), Err(2));
    }
}
