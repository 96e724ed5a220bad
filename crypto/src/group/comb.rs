//! Constant-time multiplication of a G2 point by a few secret scalars, from a small
//! comb table: what a Pedersen dealer needs for `b_k·H2`, where `H2` is new in every
//! session and only `t` multiplications follow.
//!
//! [`super::FixedBase`] needs no doubling but costs about seven multiplications to
//! build; blst's `blst_p2_mult` needs no table but scans 64 projective entries per
//! step. A comb (Lim–Lee, in the signed all-non-zero form of Hedabou, Pinel and
//! Bénéteau, 2004) sits between them: with `w = 5` teeth and `d = 52` columns,
//!
//! - the scalar is made odd (`k` or `r − k`, the result negated back for the latter,
//!   both selected without branches), and an odd `k < 2^260` is written with digits
//!   `s_j ∈ {−1, +1}` as `k = Σ s_j·2^j` (`s_j = 2c_j − 1` for the bits `c_j` of
//!   `c = (k − 1)/2 + 2^259`), so no column is ever zero;
//! - column `i` is `Σ_t s_{i+52t}·2^{52t}·H`, one of the 16 points
//!   `±(P_4 ± P_3 ± P_2 ± P_1 ± P_0)` (`P_t = 2^{52t}·H`) — the table holds the 16
//!   with `+P_4`, the column's top digit gives the sign;
//! - `k·H` is Horner's rule over the 52 columns: 51 doublings and 51 additions, each
//!   entry read by scanning all 16 with masked copies, negated with `cneg`, added
//!   with blst's branch-free mixed addition (the complete `add_or_double_affine` for
//!   the last column, the only one that can meet a doubling or the identity).
//!
//! Building it: 208 doublings, 30 additions and one batched inversion (about 1.3 of
//! blst's multiplications with `new`'s subgroup check, about one without); each
//! multiplication then costs 0.6 of blst's (criterion and interleaved runs; the
//! generator's fixed-base table: 0.5).

use blst::{
    blst_fp2, blst_fp2_cneg, blst_p2, blst_p2_add_affine, blst_p2_add_or_double,
    blst_p2_add_or_double_affine, blst_p2_affine, blst_p2_cneg, blst_p2_double,
    blst_p2_from_affine,
};
use subtle::{Choice, ConditionallySelectable};
use zeroize::Zeroize;

use super::G2Point;
use super::fixed_base::{select, wipe};
use crate::error::CryptoError;
use crate::scalar::Scalar;

/// Teeth: the table has `2^(TEETH − 1)` entries.
const TEETH: usize = 5;
/// Columns: `TEETH·COLUMNS = 260 ≥ 256` digits cover any odd scalar below `2^255`
/// (`r − k` included).
const COLUMNS: usize = 52;
const ENTRIES: usize = 1 << (TEETH - 1);

/// The group order r, little-endian 64-bit limbs.
const R: [u64; 4] = [
    0xffff_ffff_0000_0001,
    0x53bd_a402_fffe_5bfe,
    0x3339_d808_09a1_d805,
    0x73ed_a753_299d_7d48,
];

/// A comb table of one G2 point (16 affine points, 3 KiB).
pub struct Comb {
    table: [blst_p2_affine; ENTRIES],
}

impl Comb {
    /// Builds the comb of `point`, which must be in G2 and not the identity (the
    /// entries are then non-zero multiples below the order: none is the identity).
    pub fn new(point: &G2Point) -> Result<Self, CryptoError> {
        if !point.in_subgroup() {
            return Err(CryptoError::PointNotInSubgroup);
        }
        Self::of_g2_point(point)
    }

    /// [`Comb::new`] for a point known to be in G2 (a hash to G2), without the
    /// subgroup check (about a third of a multiplication).
    pub(crate) fn of_g2_point(point: &G2Point) -> Result<Self, CryptoError> {
        debug_assert!(point.in_subgroup());
        if point.is_identity() {
            return Err(CryptoError::InvalidParameters("comb of the identity"));
        }
        // P_t = 2^(52t)·H.
        let mut teeth = [blst_p2::default(); TEETH];
        teeth[0] = point.projective();
        for t in 1..TEETH {
            let mut p = teeth[t - 1];
            for _ in 0..COLUMNS {
                let prev = p;
                // SAFETY: one valid projective point in and out.
                unsafe { blst_p2_double(&mut p, &prev) };
            }
            teeth[t] = p;
        }
        // Entry m = P_4 + Σ_{t<4} (bit t of m ? +P_t : −P_t), built tooth by tooth
        // from the top: after tooth t the first 2^(4−t) entries hold every sign choice
        // of the teeth above t.
        let mut entries = vec![teeth[TEETH - 1]];
        for t in (0..TEETH - 1).rev() {
            let mut negated = teeth[t];
            // SAFETY: negates a valid point in place.
            unsafe { blst_p2_cneg(&mut negated, true) };
            let mut next = Vec::with_capacity(2 * entries.len());
            for e in &entries {
                for p in [&negated, &teeth[t]] {
                    let mut sum = blst_p2::default();
                    // SAFETY: valid projective inputs; the complete addition.
                    unsafe { blst_p2_add_or_double(&mut sum, e, p) };
                    next.push(sum);
                }
            }
            entries = next;
        }
        // Tooth t was added last-but-t: bit t of an entry's index is P_t's sign.
        let affine = G2Point::batch_from_projective(&entries);
        let mut table = [blst_p2_affine::default(); ENTRIES];
        for (entry, p) in table.iter_mut().zip(&affine) {
            *entry = p.0;
        }
        Ok(Self { table })
    }

    /// `k·P` in constant time in `k`.
    pub fn mul(&self, k: &Scalar) -> G2Point {
        G2Point::from_projective(&self.mul_projective(k))
    }

    pub(crate) fn mul_projective(&self, k: &Scalar) -> blst_p2 {
        let (mut bits, negate) = recode(k);
        let mut acc = blst_p2::default();
        for i in (0..COLUMNS).rev() {
            let top = bit(&bits, i + (TEETH - 1) * COLUMNS);
            let mut m = 0u8;
            for t in 0..TEETH - 1 {
                // Bit t is set when digit t has the top digit's sign.
                m |= (1 ^ bit(&bits, i + t * COLUMNS) ^ top) << t;
            }
            // `select` reads entry m − 1 for m ≥ 1.
            let mut entry = select(&self.table, m + 1);
            let y: *mut blst_fp2 = &mut entry.y;
            // SAFETY: negates one valid coordinate in place, in constant time; the
            // column is negative when its top digit is −1 (bit 0).
            unsafe { blst_fp2_cneg(y, y, top == 0) };
            if i == COLUMNS - 1 {
                // SAFETY: a valid affine point (never the identity, see `new`).
                unsafe { blst_p2_from_affine(&mut acc, &entry) };
            } else {
                let prev = acc;
                // SAFETY: valid projective input and output.
                unsafe { blst_p2_double(&mut acc, &prev) };
                let prev = acc;
                if i > 0 {
                    // SAFETY: valid inputs. No doubling or infinity case (see
                    // `NO_COLLISION_ABOVE_COLUMN_0` below).
                    unsafe { blst_p2_add_affine(&mut acc, &prev, &entry) };
                } else {
                    // SAFETY: valid inputs; blst selects the infinity and doubling
                    // cases instead of branching on them (`k = 0` ends here at
                    // `r·H`, the identity).
                    unsafe { blst_p2_add_or_double_affine(&mut acc, &prev, &entry) };
                }
            }
            wipe(&mut entry);
            m.zeroize();
        }
        // SAFETY: negates a valid point in place, in constant time.
        unsafe { blst_p2_cneg(&mut acc, bool::from(negate)) };
        bits.zeroize();
        acc
    }
}

// NO_COLLISION_ABOVE_COLUMN_0. Before column `c ≥ 1` is added, the accumulator is
// `m·H` with `m = Σ_{c' > c} 2^{c'−c−1}·v_{c'}` (`v_{c'}` the integer value of column
// `c'`, `|v| < 2^208·(1 + 2^-51)`), and the addition meets a doubling or the identity
// only if `2m ≡ ±v_c (mod r)`.
// - As integers, `2m ∓ v_c` is `2^{−c}` times a signed sum `Σ ±2^j` over the digit
//   positions of columns `≥ c` — non-empty, every sign ±1, so its largest term
//   outweighs all others together: never zero.
// - Its size: `2^{c+1}·m = k' − Σ_{c' ≤ c} 2^{c'}·v_{c'}` with the odd `k' < 2^255`, so
//   `|2m| < 2^{255−c} + 2^{209}(1 + ε)`, and for `c ≥ 1`
//   `|2m ∓ v_c| < 2^254 + 2^210 < r ≈ 1.81·2^254`: zero mod r only if zero.
// So only column 0 needs the complete addition (there `k = 0` does reach `r·H`). The
// same argument says the accumulator is never the identity before column 0.

fn bit(bits: &[u64; 5], j: usize) -> u8 {
    ((bits[j / 64] >> (j % 64)) & 1) as u8
}

/// The bits `c_j` of `c = (k' − 1)/2 + 2^259` for the odd `k'` among `k` and `r − k`,
/// and whether `k' = r − k` (the product is then negated). Branch-free.
fn recode(k: &Scalar) -> ([u64; 5], Choice) {
    let x = k.to_le_limbs();
    // r − k, limb by limb with borrow (k < r, so no final borrow).
    let mut neg = [0u64; 4];
    let mut borrow = 0u64;
    for i in 0..4 {
        let (d, b1) = R[i].overflowing_sub(x[i]);
        let (d, b2) = d.overflowing_sub(borrow);
        neg[i] = d;
        borrow = u64::from(b1 | b2);
    }
    let even = Choice::from(((x[0] & 1) ^ 1) as u8);
    let mut odd = [0u64; 4];
    for i in 0..4 {
        odd[i] = u64::conditional_select(&x[i], &neg[i], even);
    }
    // (k' − 1)/2 = k' >> 1 for odd k'; then set bit 259.
    let mut c = [0u64; 5];
    for i in 0..4 {
        c[i] = (odd[i] >> 1) | if i < 3 { odd[i + 1] << 63 } else { 0 };
    }
    c[4] = 1 << (259 - 256);
    neg.zeroize();
    odd.zeroize();
    (c, even)
}

#[cfg(test)]
mod tests {
    use super::super::scalar_from_le as from_le;
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn recoding_gives_the_odd_scalar_in_signed_digits() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let mut cases = vec![
            Scalar::zero(),
            Scalar::one(),
            -&Scalar::one(),
            Scalar::from_u64(2),
        ];
        cases.extend((0..200).map(|_| Scalar::random(&mut rng)));
        for k in cases {
            let (c, negated) = recode(&k);
            // Σ (2c_j − 1)·2^j, reduced mod r.
            let mut acc = Scalar::zero();
            for j in (0..TEETH * COLUMNS).rev() {
                acc = &acc + &acc;
                acc = if bit(&c, j) == 1 {
                    &acc + &Scalar::one()
                } else {
                    &acc - &Scalar::one()
                };
            }
            let expected = if bool::from(negated) { -&k } else { k.clone() };
            assert_eq!(acc, expected);
            assert_eq!(bool::from(negated), k.to_blst_scalar().b[0] & 1 == 0);
        }
    }

    #[test]
    fn matches_blst_on_edge_and_random_scalars() {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let h = G2Point::generator().mul(&Scalar::random(&mut rng));
        let comb = Comb::new(&h).expect("in G2");
        let mut edge = vec![
            Scalar::zero(),
            Scalar::one(),
            -&Scalar::one(),
            Scalar::from_u64(2),
            -&Scalar::from_u64(2),
        ];
        for fill in [0xffu8, 0x55, 0xaa, 0x01, 0x80] {
            let mut le = [fill; 32];
            le[31] &= 0x3f;
            edge.push(from_le(le));
        }
        // A single bit in each tooth's first and last column.
        for j in [0usize, 51, 52, 103, 104, 155, 156, 207, 208, 254] {
            let mut le = [0u8; 32];
            le[j / 8] |= 1 << (j % 8);
            edge.push(from_le(le));
        }
        edge.extend((0..60).map(|_| Scalar::random(&mut rng)));
        for k in &edge {
            assert_eq!(comb.mul(k), h.mul(k), "k = {k:?}");
        }
    }

    #[test]
    fn refuses_the_identity_and_points_outside_g2() {
        assert!(Comb::new(&G2Point::identity()).is_err());
        let q = G2Point::small_order_point();
        assert!(matches!(
            Comb::new(&q),
            Err(CryptoError::PointNotInSubgroup)
        ));
        assert!(Comb::new(&G2Point::generator().add(&q)).is_err());
    }
}
