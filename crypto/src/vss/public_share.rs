//! Public shares: how Pedersen mode v2 gets the Feldman commitment of the joint
//! polynomial without GJKR's phase 2 and without publishing any plaintext share.
//!
//! Once the qualified dealers are agreed, player `j` holds `s_j = F(x_j)` and
//! `b_j = F'(x_j)` (the sums of the value and blinding shares it received) and the
//! agreed sum `C` of the qualified dealers' Pedersen commitments, `C_k = A_k + B_k·H2`
//! with `A_k = a_k·G2`. It publishes a [`PublicShare`]: `S_j = s_j·G2`, `b_j` (public
//! from now on), and a Schnorr proof of knowledge of `s_j` to base `G2`. An entry is
//! valid if the proof holds and `C(x_j) = S_j + b_j·H2`.
//!
//! **Why that suffices.** A player that publishes a valid entry with `b ≠ F'(x_j)`
//! knows `s` with `s·G2 + b·H2 = C(x_j) = s_j·G2 + b_j·H2` (the proof's extractor gives
//! `s`) and its own `s_j, b_j`, hence `log_G2 H2 = (s_j − s)/(b − b_j)`, which nobody
//! knows (`H2` is a hash to G2). So every valid `b_j` is `F'(x_j)`, any `t` valid
//! entries interpolate the same blinding polynomial `F'` with coefficients `B_k`, and
//! the Feldman commitment `A_k = C_k − B_k·H2` ([`feldman_from_public_shares`]) is the
//! same at every node whichever `t` entries it uses. Without the proof a player could
//! publish any `b` with `S = C(x_j) − b·H2` and shift everyone's public key.
//!
//! **Proof.** `R = k·G2`, `c = (H_0·2^256 + H_1) mod r` with
//! `H_h = keccak256("EIGENKMS-V2-PUBLIC-SHARE" ‖ h ‖ S ‖ R ‖ context)` (`h` one byte,
//! points in the 256-byte EIP-2537 form, `context` the caller's: the session hash and
//! the player's address, so that a proof is not replayed into another session or by
//! another player), `z = k + c·s`. Check: `z·G2 = R + c·S`.
//!
//! **Batch.** All entries are checked with one MSM: with independent random 128-bit
//! weights `ρ_j`, `ρ'_j`,
//!
//! `(Σ ρ_j z_j)·G2 − Σ ρ_j R_j − Σ (ρ_j c_j + ρ'_j)·S_j + Σ_k (Σ_j ρ'_j x_j^k)·C_k − (Σ ρ'_j b_j)·H2 = 0`
//!
//! over `t + 2 + 2n` points; a false relation survives with probability at most
//! 2^-128. Only a failing batch is checked entry by entry.
//!
//! **Subgroups.** The aggregate `C` must be subgroup-checked
//! ([`Commitment::check_subgroup`], as every output of a session must be): both
//! functions refuse one that is not. The points `S_j`, `R_j` of each entry are trusted
//! to lie in G2: the strict decoders ([`G2Point::from_compressed`], serde,
//! [`G2Point::from_eip2537`]) check it; never build them with
//! [`G2Point::from_eip2537_on_curve`].
//!
//! **Constant time.** `s_j` and the nonce `k` enter only [`G2Point::mul_generator`]
//! and field arithmetic; verification works on public values with the variable-time
//! [`G2Point::msm`].

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::error::CryptoError;
use crate::group::{Comb, G2Point};
use crate::poly::{interpolate, powers};
use crate::scalar::Scalar;
use crate::vss::Commitment;
use crate::vss::pedersen::{PedersenBase, PedersenShare};

/// Domain of the proof's challenge.
pub const PUBLIC_SHARE_DOMAIN: &[u8] = b"EIGENKMS-V2-PUBLIC-SHARE";

/// Domain of the nonce derivation (local to the prover, never checked).
const NONCE_DOMAIN: &[u8] = b"EIGENKMS-V2-PUBLIC-SHARE-NONCE";

/// A Schnorr proof of knowledge of `log_G2 S`: `R = k·G2` and `z = k + c·s`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnowledgeProof {
    /// `R`.
    pub commitment: G2Point,
    /// `z`.
    pub response: Scalar,
}

/// A player's published final share: `S = s·G2`, its aggregate blinding share `b` and
/// a proof of knowledge of `s`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicShare {
    /// `S = s·G2`, the player's public share of the joint key.
    pub point: G2Point,
    /// `b = F'(x)`, the player's share of the joint blinding polynomial.
    pub blinding: Scalar,
    /// The proof of knowledge of `s`.
    pub proof: KnowledgeProof,
}

/// `c` for a statement `S`, a commitment `R` and the caller's context.
fn challenge(point: &G2Point, commitment: &G2Point, context: &[u8]) -> Scalar {
    let (s, r) = (point.to_eip2537(), commitment.to_eip2537());
    let mut wide = [0u8; 64];
    for (h, half) in wide.chunks_exact_mut(32).enumerate() {
        let mut hasher = Keccak256::new();
        hasher.update(PUBLIC_SHARE_DOMAIN);
        hasher.update([h as u8]);
        hasher.update(s);
        hasher.update(r);
        hasher.update(context);
        half.copy_from_slice(&hasher.finalize());
    }
    Scalar::from_bytes_wide(&wide)
}

impl PublicShare {
    /// The entry for a player whose final share is `share` (`value` the sum `s` of
    /// the value shares, `blinding` the sum `b` of the blinding shares), bound to
    /// `context` (session hash ‖ player address). Constant time in `s` and the nonce,
    /// which hashes `s`, the context and 32 fresh random bytes (unique even with a
    /// weak generator).
    pub fn new<R: RngCore + CryptoRng + ?Sized>(
        share: &PedersenShare,
        context: &[u8],
        rng: &mut R,
    ) -> Self {
        let point = G2Point::mul_generator(&share.value);
        let secret = Zeroizing::new(share.value.to_bytes_be());
        loop {
            let mut fresh = Zeroizing::new([0u8; 32]);
            rng.fill_bytes(fresh.as_mut());
            let mut wide = Zeroizing::new([0u8; 64]);
            for (h, half) in wide.chunks_exact_mut(32).enumerate() {
                let mut hasher = Keccak256::new();
                hasher.update(NONCE_DOMAIN);
                hasher.update([h as u8]);
                hasher.update(secret.as_slice());
                hasher.update(context);
                hasher.update(fresh.as_slice());
                half.copy_from_slice(Zeroizing::new(hasher.finalize()).as_slice());
            }
            // Zeroized on drop, like every scalar.
            let k = Scalar::from_bytes_wide(wide.as_slice());
            if k.is_zero() {
                continue;
            }
            let commitment = G2Point::mul_generator(&k);
            let c = challenge(&point, &commitment, context);
            let response = &k + &(&c * &share.value);
            return Self {
                point,
                blinding: share.blinding.clone(),
                proof: KnowledgeProof {
                    commitment,
                    response,
                },
            };
        }
    }
}

/// Why a set of public shares was refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum PublicShareError {
    /// The aggregate commitment has a point outside G2: a dealer's torsion, to be
    /// found among the dealers' own commitments; no player is to blame.
    #[error("aggregate commitment is not in G2")]
    AggregateOutsideG2,
    /// The entries at these indices (into the input) fail on their own.
    #[error("invalid public shares at {0:?}")]
    Invalid(Vec<usize>),
}

/// Checks every `(x_j, context_j, entry_j)` against the aggregate Pedersen commitment
/// `sum` with one MSM (see the module docs); on failure names every invalid entry.
pub fn verify_public_shares<R: RngCore + CryptoRng + ?Sized>(
    sum: &Commitment,
    base: &PedersenBase,
    items: &[(Scalar, &[u8], &PublicShare)],
    rng: &mut R,
) -> Result<(), PublicShareError> {
    if sum.subgroup_violation().is_some() {
        return Err(PublicShareError::AggregateOutsideG2);
    }
    if items.is_empty() {
        return Ok(());
    }
    let weights: Vec<(Scalar, Scalar)> = items
        .iter()
        .map(|_| (Scalar::random_u128(rng), Scalar::random_u128(rng)))
        .collect();
    if combined_check(sum, base, items, &weights) {
        return Ok(());
    }
    let one = [(Scalar::one(), Scalar::one())];
    let invalid: Vec<usize> = (0..items.len())
        .filter(|&j| !combined_check(sum, base, std::slice::from_ref(&items[j]), &one))
        .collect();
    if invalid.is_empty() {
        // Individually valid entries in G2 always sum to zero: an inconsistency we
        // refuse to paper over.
        return Err(PublicShareError::Invalid((0..items.len()).collect()));
    }
    Err(PublicShareError::Invalid(invalid))
}

/// The weighted relation of the module docs, `weights[j] = (ρ_j, ρ'_j)`.
fn combined_check(
    sum: &Commitment,
    base: &PedersenBase,
    items: &[(Scalar, &[u8], &PublicShare)],
    weights: &[(Scalar, Scalar)],
) -> bool {
    let t = sum.threshold();
    let n = items.len();
    let mut points = Vec::with_capacity(t + 2 + 2 * n);
    let mut scalars = Vec::with_capacity(t + 2 + 2 * n);
    let mut g = Scalar::zero();
    let mut h = Scalar::zero();
    let mut column = vec![Scalar::zero(); t];
    for ((x, context, entry), (rho, rho2)) in items.iter().zip(weights) {
        let c = challenge(&entry.point, &entry.proof.commitment, context);
        g += &(rho * &entry.proof.response);
        h -= &(rho2 * &entry.blinding);
        for (acc, xk) in column.iter_mut().zip(powers(x, t)) {
            *acc += &(rho2 * &xk);
        }
        points.push(entry.proof.commitment);
        scalars.push(-rho);
        points.push(entry.point);
        scalars.push(-(&(rho * &c) + rho2));
    }
    points.extend_from_slice(sum.coefficients());
    scalars.extend(column);
    points.push(G2Point::generator());
    scalars.push(g);
    points.push(*base.point());
    scalars.push(h);
    match G2Point::msm(&points, &scalars) {
        Ok(p) => p.is_identity(),
        Err(_) => false,
    }
}

/// The Feldman commitment `A_k = C_k − B_k·H2` of the joint polynomial from exactly
/// `sum.threshold()` verified entries' `(x_j, b_j)` (distinct, non-zero points).
pub fn feldman_from_public_shares(
    sum: &Commitment,
    base: &PedersenBase,
    blindings: &[(Scalar, Scalar)],
) -> Result<Commitment, CryptoError> {
    let t = sum.threshold();
    if blindings.len() < t {
        return Err(CryptoError::NotEnough {
            needed: t,
            got: blindings.len(),
        });
    }
    if blindings.len() > t {
        return Err(CryptoError::InvalidParameters(
            "feldman_from_public_shares: more entries than the threshold",
        ));
    }
    // The result claims to lie in G2 (`Commitment::new`): so must the input.
    if sum.subgroup_violation().is_some() {
        return Err(CryptoError::PointNotInSubgroup);
    }
    let blinding = interpolate(blindings)?;
    // `H2` is in G2 and not the identity (a hash to G2), so its comb exists; a plain
    // multiplication would do otherwise.
    let comb = Comb::of_g2_point(base.point()).ok();
    let proj: Vec<_> = sum
        .coefficients()
        .iter()
        .zip(blinding.coefficients())
        .map(|(c, b)| {
            let minus_b = -b;
            let hb = match &comb {
                Some(comb) => comb.mul_projective(&minus_b),
                None => base.point().mul_projective(&minus_b),
            };
            G2Point::add_projective(&c.projective(), &hb)
        })
        .collect();
    Commitment::new(G2Point::batch_from_projective(&proj))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vss::pedersen::PedersenDealing;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    /// A session: `m` Pedersen dealings among `n` players at threshold `t`; returns
    /// the aggregate commitment, the expected Feldman commitment, and per player its
    /// point, context and summed share.
    struct Session {
        base: PedersenBase,
        sum: Commitment,
        feldman: Commitment,
        players: Vec<(Scalar, Vec<u8>, PedersenShare)>,
    }

    fn session(seed: u64, m: usize, n: usize, t: usize) -> Session {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let base = PedersenBase::from_seed(&[seed as u8; 32]);
        let dealings: Vec<PedersenDealing> = (0..m)
            .map(|_| PedersenDealing::new(Scalar::random(&mut rng), t, &base, &mut rng).unwrap())
            .collect();
        let sum = Commitment::sum(dealings.iter().map(PedersenDealing::commitment)).unwrap();
        let feldmans: Vec<Commitment> = dealings.iter().map(|d| d.feldman_commitment()).collect();
        let feldman = Commitment::sum(&feldmans).unwrap();
        let players = (1..=n as u64)
            .map(|i| {
                let x = Scalar::from_u64(1000 + i);
                let shares: Vec<PedersenShare> = dealings.iter().map(|d| d.share(&x)).collect();
                let share = PedersenShare {
                    value: shares.iter().map(|s| &s.value).sum(),
                    blinding: shares.iter().map(|s| &s.blinding).sum(),
                };
                let mut context = [0x5a; 32].to_vec();
                context.extend_from_slice(&i.to_be_bytes());
                (x, context, share)
            })
            .collect();
        Session {
            base,
            sum,
            feldman,
            players,
        }
    }

    fn entries(s: &Session, rng: &mut ChaCha20Rng) -> Vec<PublicShare> {
        s.players
            .iter()
            .map(|(_, ctx, share)| PublicShare::new(share, ctx, rng))
            .collect()
    }

    fn items<'a>(s: &'a Session, e: &'a [PublicShare]) -> Vec<(Scalar, &'a [u8], &'a PublicShare)> {
        s.players
            .iter()
            .zip(e)
            .map(|((x, ctx, _), p)| (x.clone(), ctx.as_slice(), p))
            .collect()
    }

    fn verify(s: &Session, e: &[PublicShare], seed: u64) -> Result<(), PublicShareError> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        verify_public_shares(&s.sum, &s.base, &items(s, e), &mut rng)
    }

    #[test]
    fn honest_entries_verify_and_give_the_dealers_feldman_commitment() {
        let s = session(1, 4, 7, 5);
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let e = entries(&s, &mut rng);
        assert_eq!(verify(&s, &e, 3), Ok(()));
        assert_eq!(verify(&s, &e[..1], 3), Ok(()));
        assert_eq!(verify(&s, &[], 3), Ok(()));
        // Entry j's point is s_j·G2, and two different t-subsets agree.
        for (p, (_, _, share)) in e.iter().zip(&s.players) {
            assert_eq!(p.point, G2Point::generator().mul(&share.value));
        }
        for subset in [[0usize, 1, 2, 3, 4], [6, 5, 3, 2, 0]] {
            let blindings: Vec<(Scalar, Scalar)> = subset
                .iter()
                .map(|&j| (s.players[j].0.clone(), e[j].blinding.clone()))
                .collect();
            let f = feldman_from_public_shares(&s.sum, &s.base, &blindings).unwrap();
            assert_eq!(f, s.feldman, "subset {subset:?}");
            assert!(f.is_subgroup_checked());
        }
        let json = serde_json::to_string(&e[0]).unwrap();
        assert_eq!(serde_json::from_str::<PublicShare>(&json).unwrap(), e[0]);
    }

    #[test]
    fn a_shifted_blinding_with_a_matching_point_has_no_valid_proof() {
        let s = session(4, 3, 7, 5);
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let mut e = entries(&s, &mut rng);
        // Entry 4: b' = b + 1 and S' = C(x) − b'·H2, so C(x) = S' + b'·H2 holds.
        let (x, ctx, share) = &s.players[4];
        let b = &share.blinding + &Scalar::one();
        let point = s.sum.evaluate(x).sub(&s.base.point().mul(&b));
        assert_eq!(point.add(&s.base.point().mul(&b)), s.sum.evaluate(x));
        // Its old proof, and a fresh proof of the true s (for the wrong S), both fail.
        let mut forged = e[4].clone();
        forged.point = point;
        forged.blinding = b.clone();
        e[4] = forged.clone();
        assert_eq!(verify(&s, &e, 6), Err(PublicShareError::Invalid(vec![4])));
        let honest = PublicShare::new(share, ctx, &mut rng);
        forged.proof = honest.proof;
        e[4] = forged;
        assert_eq!(verify(&s, &e, 7), Err(PublicShareError::Invalid(vec![4])));
    }

    #[test]
    fn tampered_proofs_wrong_contexts_and_foreign_shares_are_named() {
        let s = session(8, 3, 6, 4);
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let honest = entries(&s, &mut rng);
        let tamper: [fn(&mut PublicShare); 4] = [
            |p| p.proof.response = &p.proof.response + &Scalar::one(),
            |p| p.proof.commitment = p.proof.commitment.add(&G2Point::generator()),
            |p| p.blinding = &p.blinding + &Scalar::one(),
            |p| p.point = p.point.add(&G2Point::generator()),
        ];
        for (i, f) in tamper.iter().enumerate() {
            let mut e = honest.clone();
            f(&mut e[i + 1]);
            assert_eq!(
                verify(&s, &e, i as u64),
                Err(PublicShareError::Invalid(vec![i + 1])),
                "tamper {i}"
            );
        }
        // Proofs swapped between two players, each for its own context.
        let mut e = honest.clone();
        e.swap(0, 5);
        assert_eq!(
            verify(&s, &e, 10),
            Err(PublicShareError::Invalid(vec![0, 5]))
        );
        // A valid proof for a share that is not on the aggregate.
        let mut e = honest.clone();
        let stranger = PedersenShare {
            value: Scalar::random(&mut rng),
            blinding: Scalar::random(&mut rng),
        };
        e[2] = PublicShare::new(&stranger, &s.players[2].1, &mut rng);
        assert_eq!(verify(&s, &e, 11), Err(PublicShareError::Invalid(vec![2])));
        // The right entry under another player's context.
        let mut it = items(&s, &honest);
        it[3].1 = &s.players[4].1;
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        assert_eq!(
            verify_public_shares(&s.sum, &s.base, &it, &mut rng),
            Err(PublicShareError::Invalid(vec![3]))
        );
        // Another H2: nothing verifies.
        let other = PedersenBase::from_seed(&[0xaa; 32]);
        assert_eq!(
            verify_public_shares(&s.sum, &other, &items(&s, &honest), &mut rng),
            Err(PublicShareError::Invalid((0..6).collect()))
        );
    }

    #[test]
    fn an_aggregate_outside_g2_and_wrong_counts_are_refused() {
        let s = session(13, 2, 4, 3);
        let mut rng = ChaCha20Rng::seed_from_u64(14);
        let e = entries(&s, &mut rng);
        let mut words: Vec<[u8; 256]> = s
            .sum
            .coefficients()
            .iter()
            .map(G2Point::to_eip2537)
            .collect();
        words[1] = s.sum.coefficients()[1]
            .add(&G2Point::small_order_point())
            .to_eip2537();
        let tainted =
            Commitment::from_eip2537_deferred(words.iter().map(|w| w.as_slice())).unwrap();
        assert_eq!(
            verify_public_shares(&tainted, &s.base, &items(&s, &e), &mut rng),
            Err(PublicShareError::AggregateOutsideG2)
        );
        let blindings: Vec<(Scalar, Scalar)> = (0..3)
            .map(|j| (s.players[j].0.clone(), e[j].blinding.clone()))
            .collect();
        assert_eq!(
            feldman_from_public_shares(&tainted, &s.base, &blindings),
            Err(CryptoError::PointNotInSubgroup)
        );
        assert_eq!(
            feldman_from_public_shares(&s.sum, &s.base, &blindings[..2]),
            Err(CryptoError::NotEnough { needed: 3, got: 2 })
        );
        let four: Vec<(Scalar, Scalar)> = (0..4)
            .map(|j| (s.players[j].0.clone(), e[j].blinding.clone()))
            .collect();
        assert!(feldman_from_public_shares(&s.sum, &s.base, &four).is_err());
        let dup = vec![
            blindings[0].clone(),
            blindings[0].clone(),
            blindings[1].clone(),
        ];
        assert_eq!(
            feldman_from_public_shares(&s.sum, &s.base, &dup),
            Err(CryptoError::DuplicatePoint)
        );
    }

    #[test]
    fn challenge_preimage_is_the_documented_one() {
        let mut rng = ChaCha20Rng::seed_from_u64(15);
        let share = PedersenShare {
            value: Scalar::random(&mut rng),
            blinding: Scalar::random(&mut rng),
        };
        let p = PublicShare::new(&share, b"context", &mut rng);
        let mut wide = Vec::new();
        for h in 0..2u8 {
            let mut pre = b"EIGENKMS-V2-PUBLIC-SHARE".to_vec();
            pre.push(h);
            pre.extend_from_slice(&p.point.to_eip2537());
            pre.extend_from_slice(&p.proof.commitment.to_eip2537());
            pre.extend_from_slice(b"context");
            wide.extend_from_slice(&Keccak256::digest(&pre));
        }
        let c = Scalar::from_bytes_wide(&wide);
        assert_eq!(
            G2Point::generator().mul(&p.proof.response),
            p.proof.commitment.add(&p.point.mul(&c))
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(6))]

        /// Any t valid entries of n give the dealers' summed Feldman commitment.
        #[test]
        fn any_t_entries_give_the_same_feldman_commitment(seed in any::<u64>(), n in 2usize..7, pick in any::<u64>()) {
            let t = crate::operator::threshold(n);
            let s = session(seed, 3, n, t);
            let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 1);
            let e = entries(&s, &mut rng);
            prop_assert!(verify(&s, &e, seed).is_ok());
            let mut order: Vec<usize> = (0..n).collect();
            let mut r = ChaCha20Rng::seed_from_u64(pick);
            for i in (1..n).rev() {
                order.swap(i, (r.next_u64() % (i as u64 + 1)) as usize);
            }
            let blindings: Vec<(Scalar, Scalar)> = order[..t]
                .iter()
                .map(|&j| (s.players[j].0.clone(), e[j].blinding.clone()))
                .collect();
            prop_assert_eq!(feldman_from_public_shares(&s.sum, &s.base, &blindings).unwrap(), s.feldman);
        }
    }
}
