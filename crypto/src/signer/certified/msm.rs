//! Variable-time multi-scalar multiplication on secp256k1, for checking signatures.
//!
//! k256's only multi-scalar routine, `lincomb`, is constant time: every point costs a
//! GLV split, two 8-entry tables, 66 additions and 66 masked table scans whatever its
//! scalar. A signature check has nothing to hide — the points, the scalars and the
//! batch weights (drawn fresh for each batch, after the signatures arrived) are not
//! secrets — and no crate offers a variable-time MSM over k256's arithmetic, so this
//! is Straus' method with width-5 NAF digits written here: one shared run of doublings,
//! an 8-entry table of odd multiples per point, and one addition per non-zero digit
//! (about 1 in 6). A 128-bit batch weight then costs ~22 additions instead of 66. The
//! `s·G` term uses k256's precomputed generator table.

use k256::elliptic_curve::PrimeField;
use k256::elliptic_curve::ops::MulByGenerator;
use k256::{ProjectivePoint, Scalar};

/// NAF width: digits are odd and in `(−16, 16)`.
const WIDTH: usize = 5;
/// Odd multiples `P, 3P, …, 15P` per point.
const TABLE: usize = 1 << (WIDTH - 2);
/// A 256-bit scalar has at most 257 NAF digits.
const DIGITS: usize = 257;

/// The width-5 non-adjacent form of `k`, least significant digit first.
fn naf(k: &Scalar) -> [i8; DIGITS] {
    let be = k.to_repr();
    // Little-endian limbs with two zero limbs of headroom for the reads past bit 255.
    let mut x = [0u64; 6];
    for (i, limb) in x.iter_mut().take(4).enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&be[32 - 8 * (i + 1)..32 - 8 * i]);
        *limb = u64::from_be_bytes(w);
    }
    let width = 1u64 << WIDTH;
    let mask = width - 1;
    let mut out = [0i8; DIGITS];
    let mut carry = 0u64;
    let mut pos = 0;
    while pos < DIGITS {
        let (limb, bit) = (pos / 64, pos % 64);
        let bits = if bit + WIDTH <= 64 {
            x[limb] >> bit
        } else {
            (x[limb] >> bit) | (x[limb + 1] << (64 - bit))
        };
        let window = carry + (bits & mask);
        if window & 1 == 0 {
            pos += 1;
            continue;
        }
        if window < width / 2 {
            carry = 0;
            out[pos] = window as i8;
        } else {
            carry = 1;
            out[pos] = (window as i64 - width as i64) as i8;
        }
        pos += WIDTH;
    }
    out
}

/// `g·G + Σ k_i·P_i`, variable time.
pub(super) fn msm_vartime(g: &Scalar, terms: &[(ProjectivePoint, Scalar)]) -> ProjectivePoint {
    let mut tables = Vec::with_capacity(terms.len());
    let mut digits = Vec::with_capacity(terms.len());
    let mut top = 0;
    for (p, k) in terms {
        let d = naf(k);
        let Some(last) = d.iter().rposition(|d| *d != 0) else {
            continue;
        };
        top = top.max(last + 1);
        let double = p.double();
        let mut table = [*p; TABLE];
        for j in 1..TABLE {
            table[j] = table[j - 1] + double;
        }
        tables.push(table);
        digits.push(d);
    }
    let mut acc = ProjectivePoint::IDENTITY;
    for i in (0..top).rev() {
        acc = acc.double();
        for (table, d) in tables.iter().zip(&digits) {
            let d = d[i];
            if d > 0 {
                acc += table[(d / 2) as usize];
            } else if d < 0 {
                acc -= table[(-d / 2) as usize];
            }
        }
    }
    acc + ProjectivePoint::mul_by_generator(g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::elliptic_curve::Field;
    use k256::elliptic_curve::ops::LinearCombinationExt;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn naf_digits_recompose_and_are_odd_and_sparse() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let mut cases = vec![Scalar::ZERO, Scalar::ONE, -Scalar::ONE, Scalar::from(31u64)];
        cases.extend((0..200).map(|_| Scalar::random(&mut rng)));
        for k in cases {
            let d = naf(&k);
            let mut acc = Scalar::ZERO;
            for digit in d.iter().rev() {
                acc = acc.double();
                let m = Scalar::from(digit.unsigned_abs() as u64);
                acc = if *digit < 0 { acc - m } else { acc + m };
            }
            assert_eq!(acc, k);
            for (i, digit) in d.iter().enumerate() {
                if *digit != 0 {
                    assert!(digit % 2 != 0 && (-15..=15).contains(digit));
                    assert!(d[i + 1..].iter().take(WIDTH - 1).all(|x| *x == 0));
                }
            }
        }
    }

    #[test]
    fn matches_k256_linear_combination() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let g = ProjectivePoint::GENERATOR;
        for n in [0usize, 1, 2, 5, 17] {
            let mut terms: Vec<(ProjectivePoint, Scalar)> = (0..n)
                .map(|_| (g * Scalar::random(&mut rng), Scalar::random(&mut rng)))
                .collect();
            if n >= 5 {
                // A zero scalar, the identity, a repeated point, a point and its negation.
                terms[0].1 = Scalar::ZERO;
                terms[1].0 = ProjectivePoint::IDENTITY;
                terms[2].0 = terms[3].0;
                terms[4] = (-terms[3].0, terms[3].1);
            }
            let s = Scalar::random(&mut rng);
            let mut expected_terms = terms.clone();
            expected_terms.push((g, s));
            let expected = ProjectivePoint::lincomb_ext(expected_terms.as_slice());
            assert_eq!(msm_vartime(&s, &terms), expected, "n = {n}");
        }
        assert_eq!(msm_vartime(&Scalar::ZERO, &[]), ProjectivePoint::IDENTITY);
    }
}
