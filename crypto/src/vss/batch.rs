//! Batched share verification for one receiver.
//!
//! A receiver at point `x` holding shares from `m` dealers must check, for every
//! dealer `j`, `s_j·G2 (+ s'_j·H2) == Σ_k x^k·C_{j,k}`. Instead of `m` separate
//! multi-scalar multiplications we draw independent random 128-bit weights `ρ_j` and
//! check the single equation
//!
//! `Σ_j Σ_k (ρ_j·x^k)·C_{j,k} − (Σ_j ρ_j s_j)·G2 − (Σ_j ρ_j s'_j)·H2 == 0`
//!
//! with one MSM over `m·t + 2` points. If every individual check holds the sum is zero;
//! if any fails, the sum is zero only if the weights hit a root of a non-zero linear
//! form, probability ≤ 2^-128. The weights come from the verifier's own RNG after the
//! dealers committed, so a dealer cannot choose errors that cancel. Only when the batch
//! fails do we fall back to per-dealer checks, to name the culprits.
//!
//! Commitments may arrive with their subgroup check deferred
//! ([`Commitment::from_eip2537_deferred`]). The curve group is `G2 × T` with `T` of
//! order coprime to `r`, so the sum is zero only if its G2 part is: the argument above
//! holds for the G2 parts of the commitments exactly (a torsion component can let a
//! dealer's errors cancel only in `T`, never in G2). A passing batch therefore says
//! every share lies on the G2 part of its commitment; that a commitment has no torsion
//! is established where it matters, on the aggregate (see [`Commitment`]). A failing
//! batch tests the commitments exactly, so a dealer whose torsion alone broke the
//! batch is the one named.
//!
//! The batch's MSM splits every scalar with ψ (`group::gls_msm`), which is exact on
//! G2 parts only: by the argument above that is all a passing batch says anything
//! about, and the single checks behind a failing batch, and so any evidence, use the
//! exact MSM.

use rand_core::{CryptoRng, RngCore};

use crate::group::G2Point;
use crate::poly::powers;
use crate::scalar::Scalar;
use crate::vss::Commitment;
use crate::vss::pedersen::{PedersenBase, PedersenShare};

/// One (commitment, share) pair to check for the receiver.
#[derive(Clone, Copy, Debug)]
pub struct BatchItem<'a> {
    commitment: &'a Commitment,
    value: &'a Scalar,
    blinding: Option<&'a Scalar>,
}

impl<'a> BatchItem<'a> {
    /// A Feldman share against a Feldman commitment.
    pub fn feldman(commitment: &'a Commitment, share: &'a Scalar) -> Self {
        Self {
            commitment,
            value: share,
            blinding: None,
        }
    }

    /// A Pedersen share against a Pedersen commitment.
    pub fn pedersen(commitment: &'a Commitment, share: &'a PedersenShare) -> Self {
        Self {
            commitment,
            value: &share.value,
            blinding: Some(&share.blinding),
        }
    }
}

/// The batch did not verify; `invalid` lists the indices of the failing items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchFailure {
    /// Indices into the input slice of every item whose individual check fails.
    pub invalid: Vec<usize>,
}

/// Verifies all `items` for the receiver at `x` with one MSM; on failure names every
/// invalid item. `base` is required for Pedersen items (a Pedersen item without it
/// counts as invalid).
pub fn verify_batch<R: RngCore + CryptoRng + ?Sized>(
    x: &Scalar,
    items: &[BatchItem<'_>],
    base: Option<&PedersenBase>,
    rng: &mut R,
) -> Result<(), BatchFailure> {
    if items.is_empty() {
        return Ok(());
    }
    let weights: Vec<Scalar> = items.iter().map(|_| Scalar::random_u128(rng)).collect();
    if combined_check_with(x, items, &weights, base, &[], &[], Msm::Split) {
        return Ok(());
    }
    // An item fails if its share is off its commitment or if its commitment has a
    // torsion component: the batch may have failed for torsion alone, which single
    // checks need not see, and must then blame the dealer that sent it, not everyone.
    let invalid: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, item)| {
            item.commitment.subgroup_violation().is_some() || !check_one(x, item, base)
        })
        .map(|(i, _)| i)
        .collect();
    if invalid.is_empty() {
        // Individually valid items in G2 always sum to zero; reaching this means the
        // combination itself is inconsistent, which we refuse to paper over.
        return Err(BatchFailure {
            invalid: (0..items.len()).collect(),
        });
    }
    Err(BatchFailure { invalid })
}

/// Whether every item holds *and* the caller's relation
/// `Σ_i constant_weights[i]·C_i,0 + Σ extra = 0` does (`C_i,0` the constant term of
/// item `i`'s commitment), with one MSM: the relation rides along with the share
/// checks for the price of `extra`'s points in a larger MSM (the constant terms are in
/// it already), instead of an MSM of its own. The caller weighs its relation with its
/// own fresh random weights (independent of the items' ones, drawn here), so that both
/// parts hold except with probability 2^-128. `constant_weights` is empty or has one
/// weight per item. `false` says only that something fails: check the items with
/// [`verify_batch`] and the relation on its own to learn what.
pub fn holds_with<R: RngCore + CryptoRng + ?Sized>(
    x: &Scalar,
    items: &[BatchItem<'_>],
    base: Option<&PedersenBase>,
    constant_weights: &[Scalar],
    extra: &[(G2Point, Scalar)],
    rng: &mut R,
) -> bool {
    if !constant_weights.is_empty() && constant_weights.len() != items.len() {
        return false;
    }
    let weights: Vec<Scalar> = items.iter().map(|_| Scalar::random_u128(rng)).collect();
    combined_check_with(
        x,
        items,
        &weights,
        base,
        constant_weights,
        extra,
        Msm::Split,
    )
}

/// Checks a single item (weight 1): one MSM over `t + 1` (or `t + 2`) points.
/// Exact (blst's Pippenger, right for any curve point): what a single item's verdict,
/// and so evidence, rests on.
pub(crate) fn check_one(x: &Scalar, item: &BatchItem<'_>, base: Option<&PedersenBase>) -> bool {
    combined_check_with(
        x,
        std::slice::from_ref(item),
        &[Scalar::one()],
        base,
        &[],
        &[],
        Msm::Exact,
    )
}

/// How the combined check's MSM is computed.
#[derive(Clone, Copy)]
enum Msm {
    /// blst's Pippenger: exact for every curve point.
    Exact,
    /// Scalars split with ψ first (`group::gls_msm`, 0.7–0.9× the cost): exact on the
    /// G2 parts, which is all a batch compared with the identity relies on (see the
    /// module docs); a point with torsion can only make the batch fail, and a failed
    /// batch is checked item by item exactly.
    Split,
}

fn combined_check_with(
    x: &Scalar,
    items: &[BatchItem<'_>],
    weights: &[Scalar],
    base: Option<&PedersenBase>,
    constant_weights: &[Scalar],
    extra: &[(G2Point, Scalar)],
    msm: Msm,
) -> bool {
    let max_t = items
        .iter()
        .map(|i| i.commitment.threshold())
        .max()
        .unwrap_or(0);
    let total: usize = items.iter().map(|i| i.commitment.threshold()).sum();
    let x_pows = powers(x, max_t);
    let mut points = Vec::with_capacity(total + 2 + extra.len());
    let mut scalars = Vec::with_capacity(total + 2 + extra.len());
    for (p, k) in extra {
        points.push(*p);
        scalars.push(k.clone());
    }
    let mut value_sum = Scalar::zero();
    let mut blinding_sum = Scalar::zero();
    let mut any_blinding = false;
    for (i, (item, rho)) in items.iter().zip(weights).enumerate() {
        for (c, xk) in item.commitment.coefficients().iter().zip(&x_pows) {
            points.push(*c);
            scalars.push(rho * xk);
        }
        if let Some(w) = constant_weights.get(i) {
            // The constant term's scalar is `ρ·x^0 = ρ`, first of the item's.
            let k = scalars.len() - item.commitment.threshold();
            scalars[k] += w;
        }
        value_sum += &(rho * item.value);
        if let Some(b) = item.blinding {
            any_blinding = true;
            blinding_sum += &(rho * b);
        }
    }
    points.push(G2Point::generator());
    scalars.push(-value_sum);
    if any_blinding {
        let Some(base) = base else { return false };
        points.push(*base.point());
        scalars.push(-blinding_sum);
    }
    match msm {
        Msm::Split => crate::group::gls_msm::msm(&points, &scalars).is_identity(),
        Msm::Exact => match G2Point::msm(&points, &scalars) {
            Ok(p) => p.is_identity(),
            Err(_) => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vss::{feldman::FeldmanDealing, pedersen::PedersenDealing};
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn feldman_setup(seed: u64, m: usize, t: usize) -> (Scalar, Vec<Commitment>, Vec<Scalar>) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let x = Scalar::random(&mut rng);
        let dealings: Vec<FeldmanDealing> = (0..m)
            .map(|_| FeldmanDealing::new(Scalar::random(&mut rng), t, &mut rng).unwrap())
            .collect();
        let commitments = dealings.iter().map(|d| d.commitment().clone()).collect();
        let shares = dealings.iter().map(|d| d.share(&x)).collect();
        (x, commitments, shares)
    }

    #[test]
    fn a_relation_on_the_constant_terms_rides_along_and_fails_alone() {
        // Relation: Σ w_i·C_i,0 − Σ w_i·C_i,0 = 0 — the weights on the constant terms
        // must land on exactly those points for it to hold.
        let (x, commitments, shares) = feldman_setup(9, 5, 3);
        let items: Vec<BatchItem> = commitments
            .iter()
            .zip(&shares)
            .map(|(c, s)| BatchItem::feldman(c, s))
            .collect();
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        let w: Vec<Scalar> = (0..5).map(|_| Scalar::random_u128(&mut rng)).collect();
        let relation: Vec<(G2Point, Scalar)> = commitments
            .iter()
            .zip(&w)
            .map(|(c, w)| (*c.constant(), -w.clone()))
            .collect();
        assert!(holds_with(&x, &items, None, &w, &relation, &mut rng));
        // A false relation with valid items, a valid relation with an invalid item,
        // and weights that do not match the items: all fail.
        let mut wrong = relation.clone();
        wrong[3].1 = &wrong[3].1 + &Scalar::one();
        assert!(!holds_with(&x, &items, None, &w, &wrong, &mut rng));
        let bad_share = &shares[2] + &Scalar::one();
        let mut bad_items = items.clone();
        bad_items[2] = BatchItem::feldman(&commitments[2], &bad_share);
        assert!(!holds_with(&x, &bad_items, None, &w, &relation, &mut rng));
        assert!(!holds_with(&x, &items, None, &w[..4], &relation, &mut rng));
        // No relation at all: the items alone.
        assert!(holds_with(&x, &items, None, &[], &[], &mut rng));
    }

    #[test]
    fn one_bad_share_among_100_is_named() {
        let (x, commitments, mut shares) = feldman_setup(1, 100, 5);
        shares[42] = &shares[42] + &Scalar::one();
        let items: Vec<BatchItem> = commitments
            .iter()
            .zip(&shares)
            .map(|(c, s)| BatchItem::feldman(c, s))
            .collect();
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        assert_eq!(
            verify_batch(&x, &items, None, &mut rng),
            Err(BatchFailure { invalid: vec![42] })
        );
    }

    #[test]
    fn swapped_commitments_are_caught_and_pedersen_needs_base() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let base = PedersenBase::from_seed(&[7u8; 32]);
        let x = Scalar::random(&mut rng);
        let d: Vec<PedersenDealing> = (0..4)
            .map(|_| PedersenDealing::new(Scalar::random(&mut rng), 3, &base, &mut rng).unwrap())
            .collect();
        let shares: Vec<PedersenShare> = d.iter().map(|d| d.share(&x)).collect();
        let mut commitments: Vec<Commitment> = d.iter().map(|d| d.commitment().clone()).collect();
        let items = |c: &[Commitment]| -> Vec<(Commitment, PedersenShare)> {
            c.iter().cloned().zip(shares.iter().cloned()).collect()
        };
        let ok = items(&commitments);
        let ok_items: Vec<BatchItem> = ok.iter().map(|(c, s)| BatchItem::pedersen(c, s)).collect();
        assert!(verify_batch(&x, &ok_items, Some(&base), &mut rng).is_ok());
        assert!(verify_batch(&x, &ok_items, None, &mut rng).is_err());
        // Wrong H2: nothing verifies.
        let other = PedersenBase::from_seed(&[8u8; 32]);
        assert_eq!(
            verify_batch(&x, &ok_items, Some(&other), &mut rng)
                .unwrap_err()
                .invalid,
            vec![0, 1, 2, 3]
        );
        commitments.swap(1, 3);
        let bad = items(&commitments);
        let bad_items: Vec<BatchItem> =
            bad.iter().map(|(c, s)| BatchItem::pedersen(c, s)).collect();
        assert_eq!(
            verify_batch(&x, &bad_items, Some(&base), &mut rng)
                .unwrap_err()
                .invalid,
            vec![1, 3]
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// The batch accepts exactly when every single check accepts, and the failure
        /// names exactly the items whose single check fails.
        #[test]
        fn batch_agrees_with_single_checks(
            seed in any::<u64>(),
            m in 1usize..12,
            t in 1usize..6,
            corrupt in proptest::collection::vec(any::<bool>(), 12),
            blind in any::<bool>(),
        ) {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let base = PedersenBase::from_seed(&[1u8; 32]);
            let x = Scalar::random(&mut rng);
            let mut commitments = Vec::new();
            let mut shares = Vec::new();
            for (j, &bad) in corrupt.iter().enumerate().take(m) {
                let (c, mut s) = if blind {
                    let d = PedersenDealing::new(Scalar::random(&mut rng), t, &base, &mut rng).unwrap();
                    (d.commitment().clone(), d.share(&x))
                } else {
                    let d = FeldmanDealing::new(Scalar::random(&mut rng), t, &mut rng).unwrap();
                    (d.commitment().clone(), PedersenShare { value: d.share(&x), blinding: Scalar::zero() })
                };
                if bad {
                    if blind && j % 2 == 0 { s.blinding = &s.blinding + &Scalar::one(); }
                    else { s.value = &s.value - &Scalar::one(); }
                }
                commitments.push(c);
                shares.push(s);
            }
            let items: Vec<BatchItem> = commitments.iter().zip(&shares).map(|(c, s)| {
                if blind { BatchItem::pedersen(c, s) } else { BatchItem::feldman(c, &s.value) }
            }).collect();
            let singles: Vec<usize> = items.iter().enumerate()
                .filter(|(_, it)| !check_one(&x, it, Some(&base))).map(|(i, _)| i).collect();
            let expected: Vec<usize> = (0..m).filter(|j| corrupt[*j]).collect();
            prop_assert_eq!(&singles, &expected);
            match verify_batch(&x, &items, Some(&base), &mut rng) {
                Ok(()) => prop_assert!(expected.is_empty()),
                Err(f) => prop_assert_eq!(f.invalid, expected),
            }
        }
    }

    #[test]
    fn a_batch_broken_by_torsion_alone_names_that_dealer() {
        let (x, commitments, shares) = feldman_setup(7, 6, 4);
        let torsion = G2Point::small_order_point();
        let mut failures = 0;
        for seed in 0..8u64 {
            // Dealer 2's shares stay right for the G2 part of its commitment.
            let mut words: Vec<[u8; 256]> = commitments[2]
                .coefficients()
                .iter()
                .map(G2Point::to_eip2537)
                .collect();
            words[(seed % 4) as usize] = commitments[2].coefficients()[(seed % 4) as usize]
                .add(&torsion)
                .to_eip2537();
            let tainted =
                Commitment::from_eip2537_deferred(words.iter().map(|w| w.as_slice())).unwrap();
            let mut cs = commitments.clone();
            cs[2] = tainted;
            let items: Vec<BatchItem> = cs
                .iter()
                .zip(&shares)
                .map(|(c, s)| BatchItem::feldman(c, s))
                .collect();
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            match verify_batch(&x, &items, None, &mut rng) {
                // Torsion the weights happened to cancel changes no G2 part.
                Ok(()) => {}
                Err(f) => {
                    failures += 1;
                    assert_eq!(f.invalid, vec![2], "seed {seed}");
                }
            }
        }
        assert!(failures >= 4, "torsion broke only {failures} of 8 batches");
    }
}
