//! Variable-time multi-scalar multiplication on secp256k1, for checking signatures.
//!
//! k256's only multi-scalar routine, `lincomb`, is constant time: every point costs a
//! GLV split, two 8-entry tables, 66 additions and 66 masked table scans whatever its
//! scalar. A signature check has nothing to hide — the points, the scalars and the
//! batch weights (drawn fresh for each batch, after the signatures arrived) are not
//! secrets — and no crate offers a variable-time MSM over k256's arithmetic (k256 keeps
//! its GLV decomposition private), so this is Straus' method written here:
//!
//! - a prepared point's scalar (a key's `Σ z_i·e_i`, the generator's `Σ z_i·s_i`) is
//!   split with the GLV endomorphism `φ(x, y) = (β·x, y) = λ·P` into two halves of
//!   about 128 bits, `k = k₁ + k₂·λ`, and a fresh point's scalar is a 128-bit batch
//!   weight already (up to its sign), so one run of ~129 doublings is shared by all
//!   terms instead of 256 (a single check of an unprepared key still runs 256);
//! - each half is written in width-`w` NAF (odd digits, about one in `w + 1` non-zero)
//!   and costs one addition per non-zero digit;
//! - a point seen once (a signature's nonce `R`) gets an 8-entry table of odd
//!   multiples for width 5; a point seen in every batch (a peer's protocol key, the
//!   generator) is [`Prepared`] once: 64 odd multiples of `P` and of `φ(P)` for
//!   width 8 — ~15 additions per half and no per-batch table.

use std::sync::OnceLock;

use k256::elliptic_curve::PrimeField;
use k256::elliptic_curve::point::AffineCoordinates;
use k256::elliptic_curve::scalar::IsHigh;
use k256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use k256::elliptic_curve::{BatchNormalize, group::prime::PrimeCurveAffine};
use k256::{AffinePoint, EncodedPoint, FieldBytes, FieldElement, ProjectivePoint, Scalar};

/// NAF width for a point used once: digits odd and in `(−16, 16)`.
const FRESH_WIDTH: usize = 5;
/// NAF width for a prepared point: digits odd and in `(−128, 128)`.
const PREPARED_WIDTH: usize = 8;
/// A 256-bit scalar has at most 257 NAF digits (a GLV half about 130).
const DIGITS: usize = 257;

/// `λ`, a cube root of unity mod n, with `λ·P = φ(P) = (β·x, y)` for the `β` below.
const LAMBDA: [u8; 32] = hex32("5363ad4cc05c30e0a5261c028812645a122e22ea20816678df02967c1b23bd72");
/// `β`, the matching cube root of unity mod p.
const BETA: [u8; 32] = hex32("7ae96a2b657c07106e64479eac3434e99cf0497512f58995c1396c28719501ee");
/// The split's lattice constants (Gallant–Lambert–Vanstone, the values libsecp256k1
/// uses): `−b₁`, `−b₂` mod n, and `g_i = round(2^384·b_i / n)` (with their signs).
const MINUS_B1: [u8; 32] =
    hex32("00000000000000000000000000000000e4437ed6010e88286f547fa90abfe4c3");
const MINUS_B2: [u8; 32] =
    hex32("fffffffffffffffffffffffffffffffe8a280ac50774346dd765cda83db1562c");
const G1: [u8; 32] = hex32("3086d221a7d46bcde86c90e49284eb153daa8a1471e8ca7fe893209a45dbb031");
const G2: [u8; 32] = hex32("e4437ed6010e88286f547fa90abfe4c4221208ac9df506c61571b4ae8ac47f71");

/// 64 hex digits to 32 big-endian bytes, at compile time.
const fn hex32(s: &str) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a lowercase hex digit"),
        }
    }
    let b = s.as_bytes();
    assert!(b.len() == 64);
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

fn scalar(be: &[u8; 32]) -> Scalar {
    Option::from(Scalar::from_repr(FieldBytes::from(*be))).expect("constant below n")
}

/// Little-endian 64-bit limbs of a scalar.
fn limbs(k: &Scalar) -> [u64; 4] {
    let be = k.to_repr();
    let mut out = [0u64; 4];
    for (i, limb) in out.iter_mut().enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&be[32 - 8 * (i + 1)..32 - 8 * i]);
        *limb = u64::from_be_bytes(w);
    }
    out
}

/// `round(a·b / 2^384)` for 256-bit `a`, `b` (the result has at most 128 bits here).
fn mul_shift_384(a: &[u64; 4], b: &[u64; 4]) -> Scalar {
    let mut wide = [0u64; 8];
    for i in 0..4 {
        let mut carry = 0u128;
        for j in 0..4 {
            let t = u128::from(a[i]) * u128::from(b[j]) + u128::from(wide[i + j]) + carry;
            wide[i + j] = t as u64;
            carry = t >> 64;
        }
        wide[i + 4] = carry as u64;
    }
    // Round: add bit 383, then keep bits 384 and up.
    let round = u128::from(wide[5] >> 63);
    let lo = u128::from(wide[6]) + round;
    let hi = u128::from(wide[7]) + (lo >> 64);
    // No carry out: the top limb of `k·g` is below that of `n·g`, far from 2^64 − 1
    // for both constants.
    debug_assert!(hi >> 64 == 0);
    Scalar::from(((hi as u64 as u128) << 64) | (lo as u64 as u128))
}

/// `k = k₁ + k₂·λ (mod n)` with `|k₁|, |k₂| < 2^128` (libsecp256k1's bound), each as a
/// magnitude and whether it is negative.
fn split(k: &Scalar) -> [(Scalar, bool); 2] {
    let kl = limbs(k);
    let c1 = mul_shift_384(&kl, &limbs(&scalar(&G1)));
    let c2 = mul_shift_384(&kl, &limbs(&scalar(&G2)));
    let k2 = c1 * scalar(&MINUS_B1) + c2 * scalar(&MINUS_B2);
    let k1 = *k - k2 * scalar(&LAMBDA);
    [signed(k1), signed(k2)]
}

/// `k` as a magnitude below n/2 and a sign.
fn signed(k: Scalar) -> (Scalar, bool) {
    if bool::from(k.is_high()) {
        (-k, true)
    } else {
        (k, false)
    }
}

/// The width-`width` non-adjacent form of `k` (`width ≤ 8`), least significant digit
/// first.
fn naf(k: &Scalar, width: usize) -> [i8; DIGITS] {
    // Little-endian limbs with two zero limbs of headroom for the reads past bit 255.
    let mut x = [0u64; 6];
    x[..4].copy_from_slice(&limbs(k));
    let full = 1u64 << width;
    let mask = full - 1;
    let mut out = [0i8; DIGITS];
    let mut carry = 0u64;
    let mut pos = 0;
    while pos < DIGITS {
        let (limb, bit) = (pos / 64, pos % 64);
        let bits = if bit + width <= 64 {
            x[limb] >> bit
        } else {
            (x[limb] >> bit) | (x[limb + 1] << (64 - bit))
        };
        let window = carry + (bits & mask);
        if window & 1 == 0 {
            pos += 1;
            continue;
        }
        if window < full / 2 {
            carry = 0;
            out[pos] = window as i8;
        } else {
            carry = 1;
            out[pos] = (window as i64 - full as i64) as i8;
        }
        pos += width;
    }
    out
}

/// `φ(P) = (β·x, y)`, which equals `λ·P`.
fn endomorphism(p: &AffinePoint) -> AffinePoint {
    if bool::from(p.is_identity()) {
        return *p;
    }
    let beta = Option::<FieldElement>::from(FieldElement::from_bytes(&FieldBytes::from(BETA)))
        .expect("β below p");
    let x = Option::<FieldElement>::from(FieldElement::from_bytes(&p.x()))
        .expect("an affine coordinate is below p");
    let encoded = p.to_encoded_point(false);
    let y = encoded.y().expect("an uncompressed finite point has y");
    let image = EncodedPoint::from_affine_coordinates(&(beta * x).normalize().to_bytes(), y, false);
    Option::from(AffinePoint::from_encoded_point(&image)).expect("φ maps the curve to itself")
}

/// A point with its tables for many checks: the odd multiples `P, 3P, …, 127P` and
/// their images under `φ` (64 + 64 points, 15 KiB; built with 64 additions, one
/// batched inversion and 64 multiplications by `β`). Kept in k256's projective form:
/// its mixed (projective + affine) addition is no faster than the general one.
pub(crate) struct Prepared {
    multiples: Vec<ProjectivePoint>,
    images: Vec<ProjectivePoint>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("point", &self.multiples[0])
            .finish()
    }
}

impl Prepared {
    pub(crate) fn new(p: &AffinePoint) -> Self {
        let p = ProjectivePoint::from(*p);
        let double = p.double();
        let mut proj = vec![p; 1 << (PREPARED_WIDTH - 2)];
        for j in 1..proj.len() {
            proj[j] = proj[j - 1] + double;
        }
        let affine = <ProjectivePoint as BatchNormalize<[ProjectivePoint]>>::batch_normalize(
            proj.as_slice(),
        );
        let images = affine
            .iter()
            .map(|p| ProjectivePoint::from(endomorphism(p)))
            .collect();
        Self {
            multiples: proj,
            images,
        }
    }

    /// The generator's tables, built on first use.
    pub(crate) fn generator() -> &'static Self {
        static TABLE: OnceLock<Prepared> = OnceLock::new();
        TABLE.get_or_init(|| Self::new(&AffinePoint::GENERATOR))
    }
}

/// One run of NAF digits and the odd multiples they index.
struct Run<'a> {
    digits: [i8; DIGITS],
    top: usize,
    negate: bool,
    table: &'a [ProjectivePoint],
}

fn run<'a>(
    k: &Scalar,
    negate: bool,
    width: usize,
    table: &'a [ProjectivePoint],
) -> Option<Run<'a>> {
    let digits = naf(k, width);
    let top = digits.iter().rposition(|d| *d != 0)? + 1;
    Some(Run {
        digits,
        top,
        negate,
        table,
    })
}

/// `g·G + Σ k_i·P_i + Σ k_j·Q_j` over fresh points `P_i` and prepared points `Q_j`,
/// variable time.
pub(super) fn msm_vartime(
    g: &Scalar,
    fresh: &[(ProjectivePoint, Scalar)],
    prepared: &[(&Prepared, Scalar)],
) -> ProjectivePoint {
    let fresh_tables: Vec<Vec<ProjectivePoint>> = fresh
        .iter()
        .map(|(p, _)| {
            let double = p.double();
            let mut table = vec![*p; 1 << (FRESH_WIDTH - 2)];
            for j in 1..table.len() {
                table[j] = table[j - 1] + double;
            }
            table
        })
        .collect();
    let mut runs = Vec::with_capacity(2 * (fresh.len() + prepared.len() + 1));
    for ((_, k), table) in fresh.iter().zip(&fresh_tables) {
        // Not split: a fresh point's φ-image would need its affine form, and a fresh
        // point's scalar is a 128-bit batch weight (up to sign) but for a single check.
        let (k, negate) = signed(*k);
        runs.extend(run(&k, negate, FRESH_WIDTH, table));
    }
    let generator = (Prepared::generator(), *g);
    for (q, k) in prepared.iter().chain(std::iter::once(&generator)) {
        let [(k1, n1), (k2, n2)] = split(k);
        runs.extend(run(&k1, n1, PREPARED_WIDTH, &q.multiples));
        runs.extend(run(&k2, n2, PREPARED_WIDTH, &q.images));
    }
    let top = runs.iter().map(|r| r.top).max().unwrap_or(0);
    let mut acc = ProjectivePoint::IDENTITY;
    for i in (0..top).rev() {
        acc = acc.double();
        for r in &runs {
            let d = r.digits[i];
            if d == 0 {
                continue;
            }
            let index = (d.unsigned_abs() / 2) as usize;
            if (d < 0) != r.negate {
                acc -= r.table[index];
            } else {
                acc += r.table[index];
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::elliptic_curve::Field;
    use k256::elliptic_curve::ops::LinearCombinationExt;
    use rand::{RngCore, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    fn edge_scalars(rng: &mut ChaCha20Rng) -> Vec<Scalar> {
        let lambda = scalar(&LAMBDA);
        let mut cases = vec![
            Scalar::ZERO,
            Scalar::ONE,
            -Scalar::ONE,
            Scalar::from(31u64),
            lambda,
            -lambda,
            lambda * lambda,
            Scalar::from(u128::MAX),
            -Scalar::from(u128::MAX),
        ];
        cases.extend((0..300).map(|_| Scalar::random(&mut *rng)));
        cases
    }

    #[test]
    fn naf_digits_recompose_and_are_odd_and_sparse() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        for width in [FRESH_WIDTH, PREPARED_WIDTH] {
            for k in edge_scalars(&mut rng) {
                let d = naf(&k, width);
                let mut acc = Scalar::ZERO;
                for digit in d.iter().rev() {
                    acc = acc.double();
                    let m = Scalar::from(digit.unsigned_abs() as u64);
                    acc = if *digit < 0 { acc - m } else { acc + m };
                }
                assert_eq!(acc, k);
                let bound = (1i16 << (width - 1)) - 1;
                for (i, digit) in d.iter().enumerate() {
                    if *digit != 0 {
                        assert!(digit % 2 != 0 && (-bound..=bound).contains(&i16::from(*digit)));
                        assert!(d[i + 1..].iter().take(width - 1).all(|x| *x == 0));
                    }
                }
            }
        }
    }

    #[test]
    fn the_endomorphism_is_multiplication_by_lambda() {
        let lambda = scalar(&LAMBDA);
        assert_ne!(lambda, Scalar::ONE);
        assert_eq!(lambda * lambda * lambda, Scalar::ONE);
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        for _ in 0..5 {
            let p = (ProjectivePoint::GENERATOR * Scalar::random(&mut rng)).to_affine();
            assert_eq!(ProjectivePoint::from(endomorphism(&p)), p * lambda);
        }
        assert_eq!(endomorphism(&AffinePoint::IDENTITY), AffinePoint::IDENTITY);
    }

    #[test]
    fn split_recomposes_into_halves_below_2_128() {
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        let lambda = scalar(&LAMBDA);
        let half = |(m, negative): (Scalar, bool)| {
            // The magnitude has at most 128 bits.
            assert!(limbs(&m)[2..].iter().all(|l| *l == 0), "{m:?}");
            if negative { -m } else { m }
        };
        for k in edge_scalars(&mut rng) {
            let [a, b] = split(&k);
            assert_eq!(half(a) + half(b) * lambda, k);
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
            // As many prepared points, some equal to fresh ones, with short and
            // negative scalars among them.
            let keys: Vec<AffinePoint> = (0..n)
                .map(|i| match i % 3 {
                    0 => terms[i].0.to_affine(),
                    _ => (g * Scalar::random(&mut rng)).to_affine(),
                })
                .collect();
            let tables: Vec<Prepared> = keys.iter().map(Prepared::new).collect();
            let weights: Vec<Scalar> = (0..n)
                .map(|i| match i % 4 {
                    0 => Scalar::from(u128::from(rng.next_u64()) << 60),
                    1 => -Scalar::random(&mut rng),
                    2 => Scalar::ZERO,
                    _ => Scalar::random(&mut rng),
                })
                .collect();
            let prepared: Vec<(&Prepared, Scalar)> =
                tables.iter().zip(weights.iter().copied()).collect();
            let s = Scalar::random(&mut rng);
            let mut expected_terms = terms.clone();
            expected_terms.push((g, s));
            expected_terms.extend(
                keys.iter()
                    .map(|k| ProjectivePoint::from(*k))
                    .zip(weights.iter().copied()),
            );
            let expected = ProjectivePoint::lincomb_ext(expected_terms.as_slice());
            assert_eq!(msm_vartime(&s, &terms, &prepared), expected, "n = {n}");
        }
        assert_eq!(
            msm_vartime(&Scalar::ZERO, &[], &[]),
            ProjectivePoint::IDENTITY
        );
        let one = msm_vartime(&Scalar::ONE, &[], &[]);
        assert_eq!(one, g);
    }
}
