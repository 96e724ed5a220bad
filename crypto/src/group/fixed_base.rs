//! Constant-time multiplication of a fixed G2 point by a secret scalar, from a table
//! of its multiples.
//!
//! blst multiplies an arbitrary point in constant time (`blst_p2_mult`: GLS
//! decomposition, 4-bit windows, about 250 point operations). Its only fixed-base
//! routine, `blst_p2s_mult_wbits`, reads the table at an index made of the scalar's
//! bits, so it leaks the scalar through the cache and may not touch a secret. No crate
//! offers a constant-time fixed-base table for BLS12-381 G2 over blst's arithmetic,
//! hence these few lines on blst's primitives:
//!
//! - the scalar is recoded into 64 signed radix-16 digits `d_i ∈ [−8, 8]`,
//!   `k = Σ d_i·16^i`, without branches;
//! - the table holds `j·16^i·P` for `j = 1..=8` and every `i` (512 affine points,
//!   96 KiB), so `k·P = Σ ±T[i][|d_i|]` needs no doubling at all;
//! - each `T[i][|d_i|]` is read by scanning the whole row of eight entries with masked
//!   copies (never an address made of the digit), negated or not with blst's
//!   constant-time `cneg`, and added with blst's `add_or_double_affine`, which has no
//!   branch on its inputs (infinity and doubling are selected, not tested).
//!
//! 64 mixed additions instead of ~250 operations: about half the CPU of
//! `blst_p2_mult` for a commitment coefficient (criterion, `primitives/g2_generator_*`:
//! 97 µs against 205 µs). Building a table costs about seven of blst's multiplications
//! (1.5 ms): the generator's is built once per process, a Pedersen base's by a dealer
//! with fifteen or more coefficients to commit.

use std::sync::OnceLock;

use blst::{
    blst_fp2, blst_fp2_cneg, blst_p2, blst_p2_add_affine, blst_p2_add_or_double,
    blst_p2_add_or_double_affine, blst_p2_affine, blst_p2_double,
};
use subtle::{ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroize;

use super::G2Point;
use crate::error::CryptoError;
use crate::scalar::Scalar;

/// Windows of four bits: 64 of them cover a scalar below `r < 2^255`.
const WINDOWS: usize = 64;
/// Entries per window: the multiples `1..=8` (signed digits reach ±8).
const ROW: usize = 8;

/// A table of multiples of one G2 point for constant-time multiplication.
pub struct FixedBase {
    /// `rows[i][j] = (j + 1)·16^i·P`, affine; the identity is all zeros (blst's form).
    rows: Box<[[blst_p2_affine; ROW]; WINDOWS]>,
}

impl FixedBase {
    /// Builds the table of `point` (≈ 450 point additions and one batched inversion,
    /// about seven of blst's multiplications: worth it from about fifteen
    /// multiplications on). The point must lie in G2 (the additions rely on its prime
    /// order); the identity is allowed.
    pub fn new(point: &G2Point) -> Result<Self, CryptoError> {
        if !point.in_subgroup() {
            return Err(CryptoError::PointNotInSubgroup);
        }
        let mut proj = vec![blst_p2::default(); WINDOWS * ROW];
        let mut base = point.projective();
        for i in 0..WINDOWS {
            let row = &mut proj[i * ROW..(i + 1) * ROW];
            row[0] = base;
            for j in 1..ROW {
                // SAFETY: valid projective inputs; add_or_double handles equal points.
                unsafe { blst_p2_add_or_double(&mut row[j], &row[j - 1], &base) };
            }
            // 16·base = 2·(8·base).
            // SAFETY: one valid projective point in and out.
            unsafe { blst_p2_double(&mut base, &row[ROW - 1]) };
        }
        let flat = G2Point::batch_from_projective(&proj);
        let mut rows = Box::new([[blst_p2_affine::default(); ROW]; WINDOWS]);
        for (row, chunk) in rows.iter_mut().zip(flat.chunks_exact(ROW)) {
            for (entry, p) in row.iter_mut().zip(chunk) {
                *entry = p.0;
            }
        }
        Ok(Self { rows })
    }

    /// The table of the G2 generator, built on first use.
    pub fn generator() -> &'static Self {
        static TABLE: OnceLock<FixedBase> = OnceLock::new();
        TABLE.get_or_init(|| Self::new(&G2Point::generator()).expect("the generator is in G2"))
    }

    /// `k·P` in constant time in `k`.
    pub fn mul(&self, k: &Scalar) -> G2Point {
        G2Point::from_projective(&self.mul_projective(k))
    }

    /// `k·P` for each `k`, constant time, converted to affine together (one
    /// inversion for all).
    pub fn mul_many(&self, ks: &[Scalar]) -> Vec<G2Point> {
        let proj: Vec<blst_p2> = ks.iter().map(|k| self.mul_projective(k)).collect();
        G2Point::batch_from_projective(&proj)
    }

    pub(crate) fn mul_projective(&self, k: &Scalar) -> blst_p2 {
        let mut digits = signed_digits(&k.to_blst_scalar().b);
        let mut acc = blst_p2::default();
        for (i, (row, d)) in self.rows.iter().zip(digits.iter()).enumerate() {
            let negative = (*d as u8) >> 7;
            // |d| without a branch: (d ^ s) − s with s = d >> 7 (all ones if negative).
            let sign = d >> 7;
            let magnitude = ((d ^ sign) - sign) as u8;
            let mut entry = select(row, magnitude);
            let y: *mut blst_fp2 = &mut entry.y;
            // SAFETY: negates one valid coordinate in place (blst allows the output to
            // be the input); cneg is constant time.
            unsafe { blst_fp2_cneg(y, y, negative == 1) };
            let prev = acc;
            if i < WINDOWS - 1 {
                // SAFETY: valid inputs; blst selects the infinity cases instead of
                // branching on them. No doubling case: the partial sum is a multiple
                // of P below 16^i·(8/15) in absolute value, the entry one of at least
                // 16^i, and both are far below the order r of P.
                unsafe { blst_p2_add_affine(&mut acc, &prev, &entry) };
            } else {
                // The top window is the exception: `16^63·7 − r` is small enough to be
                // a partial sum, so `k = 14·16^63 − r` meets a doubling there. The
                // complete addition (constant time too) costs one window's worth more.
                // SAFETY: valid inputs.
                unsafe { blst_p2_add_or_double_affine(&mut acc, &prev, &entry) };
            }
            wipe(&mut entry);
        }
        digits.zeroize();
        acc
    }
}

/// `row[m − 1]`, or the identity for `m = 0`, read without a secret-dependent address:
/// every entry is visited and masked in.
pub(super) fn select(row: &[blst_p2_affine], m: u8) -> blst_p2_affine {
    let mut out = [0u64; 24];
    for (j, entry) in row.iter().enumerate() {
        let hit = m.ct_eq(&(j as u8 + 1));
        for (o, w) in out.iter_mut().zip(words(entry)) {
            o.conditional_assign(w, hit);
        }
    }
    // SAFETY: blst_p2_affine is repr(C), two Fp2 coordinates of 2 × 6 u64 limbs: 24
    // u64 words with no padding, and every bit pattern is a value.
    unsafe { std::mem::transmute::<[u64; 24], blst_p2_affine>(out) }
}

fn words(p: &blst_p2_affine) -> &[u64; 24] {
    // SAFETY: as in `select`: the same size and alignment, no padding.
    unsafe { &*(p as *const blst_p2_affine).cast::<[u64; 24]>() }
}

/// Zeroes a secret-dependent point (a table entry chosen by a digit).
pub(super) fn wipe(p: &mut blst_p2_affine) {
    // SAFETY: as in `select`; all zeros is a valid value (the identity).
    let w = unsafe { &mut *(p as *mut blst_p2_affine).cast::<[u64; 24]>() };
    w.zeroize();
}

/// The 64 signed radix-16 digits of a 255-bit little-endian scalar: `d_i ∈ [−8, 7]`
/// for `i < 63` and `d_63 ∈ [0, 8]`, with `k = Σ d_i·16^i`. Branch-free.
fn signed_digits(le: &[u8; 32]) -> [i8; WINDOWS] {
    let mut out = [0i8; WINDOWS];
    let mut carry = 0u8;
    for (i, d) in out.iter_mut().enumerate() {
        let nibble = (le[i / 2] >> (4 * (i % 2))) & 0x0f;
        let v = nibble + carry; // 0..=16
        if i == WINDOWS - 1 {
            // The top nibble of a scalar below 2^255 is at most 7: v ≤ 8, kept as is.
            *d = v as i8;
        } else {
            carry = (v + 8) >> 4; // 1 iff v ≥ 8
            *d = v as i8 - ((carry << 4) as i8);
        }
    }
    carry.zeroize();
    out
}

#[cfg(test)]
mod tests {
    use super::super::mul_generic;
    use super::super::scalar_from_le as from_le;
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn digits_recompose_the_scalar() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        for _ in 0..200 {
            let k = Scalar::random(&mut rng);
            let d = signed_digits(&k.to_blst_scalar().b);
            assert!(d[..63].iter().all(|d| (-8..=7).contains(d)));
            assert!((0..=8).contains(&d[63]));
            let mut acc = Scalar::zero();
            for d in d.iter().rev() {
                acc = &acc * &Scalar::from_u64(16);
                let m = Scalar::from_u64(d.unsigned_abs() as u64);
                acc = if *d < 0 { &acc - &m } else { &acc + &m };
            }
            assert_eq!(acc, k);
        }
    }

    #[test]
    fn matches_blst_multiplication_on_edge_and_random_scalars() {
        let g = G2Point::generator();
        let table = FixedBase::generator();
        let mut edge = vec![Scalar::zero(), Scalar::one(), -&Scalar::one()];
        // Every nibble 8 (all digits carry), every nibble 7, 0x0f…, 2^254.
        for fill in [0x88u8, 0x77, 0xff, 0x0f, 0xf0] {
            let mut le = [fill; 32];
            le[31] &= 0x3f;
            edge.push(from_le(le));
        }
        let mut top = [0u8; 32];
        top[31] = 0x40;
        edge.push(from_le(top));
        // 14·16^63 − r: the partial sum below the top window equals its entry (the
        // one doubling a fixed-base addition can meet).
        let sixteen_63 = (0..63).fold(Scalar::one(), |acc, _| &acc * &Scalar::from_u64(16));
        edge.push(&Scalar::from_u64(14) * &sixteen_63);
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        edge.extend((0..50).map(|_| Scalar::random(&mut rng)));
        for k in &edge {
            assert_eq!(table.mul(k), g.mul(k), "k = {k:?}");
        }
    }

    #[test]
    fn tables_of_other_points_and_the_identity_but_not_points_outside_g2() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let p = G2Point::generator().mul(&Scalar::random(&mut rng));
        let table = FixedBase::new(&p).expect("in G2");
        for k in (0..20u64)
            .map(Scalar::from_u64)
            .chain((0..10).map(|_| Scalar::random(&mut rng)))
        {
            let expected =
                G2Point::from_projective(&mul_generic(&p.projective(), &k.to_bytes_be()));
            assert_eq!(table.mul(&k), expected);
        }
        let zero = FixedBase::new(&G2Point::identity()).expect("the identity is in G2");
        assert!(zero.mul(&Scalar::random(&mut rng)).is_identity());
        let q = G2Point::small_order_point();
        assert!(matches!(
            FixedBase::new(&q),
            Err(CryptoError::PointNotInSubgroup)
        ));
        assert!(FixedBase::new(&p.add(&q)).is_err());
    }

    #[test]
    fn many_at_once_match_one_by_one() {
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let ks: Vec<Scalar> = (0..9).map(|_| Scalar::random(&mut rng)).collect();
        let table = FixedBase::generator();
        let one_by_one: Vec<G2Point> = ks.iter().map(|k| table.mul(k)).collect();
        assert_eq!(table.mul_many(&ks), one_by_one);
        assert!(table.mul_many(&[]).is_empty());
    }
}
