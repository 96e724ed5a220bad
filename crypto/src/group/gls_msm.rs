//! A variable-time G2 multi-scalar multiplication that splits every scalar with the
//! GLS endomorphism before blst's Pippenger, for the batched share checks.
//!
//! On G2, `ψ(P) = [z]P` with `z = −0xd201000000010000` (ψ is the "untwist–Frobenius–
//! twist" map, two multiplications in Fp2), and `r < z^4`, so every scalar
//! `k < r` is `d_0 + d_1·|z| + d_2·|z|² + d_3·|z|³` with 64-bit digits and
//! `k·P = d_0·P + d_1·(−ψ(P)) + d_2·ψ²(P) + d_3·(−ψ³(P))`: an MSM over `4m` points with
//! 64-bit scalars instead of `m` points with 255-bit ones. Pippenger's cost is about
//! `(bits / c)·(points + 2^c)` additions; a quarter of the bits over four times the
//! points, with the larger window that allows, costs 0.7–0.9× (fewer where `m` is
//! small, where the `2^c` bucket sums weigh most). blst uses this split for single
//! multiplications but not in its Pippenger, and exposes neither ψ nor the
//! decomposition; no crate offers them over blst's types, hence these lines.
//!
//! **Only for points of G2.** For a point with a component in the cofactor part of the
//! curve group (`G2 × T`), ψ does not act as `[z]` on that component, so the result's
//! `T` part is not `k` times the input's — its G2 part is exact. The share checks use
//! it only where that is all they rely on: a batch whose result is compared with the
//! identity (the G2 parts are what the batch argument is about, and a non-zero `T`
//! part only fails the batch, which then checks every item exactly).

use blst::{blst_fp, blst_fp_cneg, blst_fp2, blst_fp2_cneg, blst_fp2_mul, blst_p2_affine};

use super::G2Point;
use crate::scalar::Scalar;

/// `|z|`, the BLS parameter's absolute value (`z` is negative).
const Z_ABS: u64 = 0xd201_0000_0001_0000;

/// `1/(1 + i)^((p − 1)/3)` in Montgomery form (blst's `frobenius_x`, real part 0).
const PSI_X: blst_fp2 = blst_fp2 {
    fp: [
        blst_fp { l: [0; 6] },
        blst_fp {
            l: [
                0x890d_c9e4_8675_45c3,
                0x2af3_2253_3285_a5d5,
                0x5088_0866_309b_7e2c,
                0xa20d_1b8c_7e88_1024,
                0x14e4_f04f_e2db_9068,
                0x14e5_6d3f_1564_853a,
            ],
        },
    ],
};

/// `1/(1 + i)^((p − 1)/2)` in Montgomery form (blst's `frobenius_y`).
const PSI_Y: blst_fp2 = blst_fp2 {
    fp: [
        blst_fp {
            l: [
                0x3e2f_585d_a55c_9ad1,
                0x4294_213d_86c1_8183,
                0x3828_44c8_8b62_3732,
                0x92ad_2afd_1910_3e18,
                0x1d79_4e4f_ac7c_f0b9,
                0x0bd5_92fc_7d82_5ec8,
            ],
        },
        blst_fp {
            l: [
                0x7bcf_a7a2_5aa3_0fda,
                0xdc17_dec1_2a92_7e7c,
                0x2f08_8dd8_6b4e_bef1,
                0xd1ca_2087_da74_d4a7,
                0x2da2_5966_96ce_bc1d,
                0x0e2b_7eed_bbfd_87d2,
            ],
        },
    ],
};

/// `ψ(x, y) = (conj(x)·PSI_X, conj(y)·PSI_Y)` on an affine point (the identity, all
/// zeros, maps to itself).
fn psi(p: &blst_p2_affine) -> blst_p2_affine {
    let mut out = *p;
    for (c, k) in [(&mut out.x, &PSI_X), (&mut out.y, &PSI_Y)] {
        let im: *mut blst_fp = &mut c.fp[1];
        // SAFETY: in-place conjugation (negating the imaginary part) and
        // multiplication of valid field elements; blst allows aliasing output and input.
        unsafe {
            blst_fp_cneg(im, im, true);
            blst_fp2_mul(c, c, k);
        }
    }
    out
}

/// The four base-`|z|` digits of `k < r < |z|^4`, least significant first.
fn digits(k: &Scalar) -> [u64; 4] {
    let mut limbs = *k.to_le_limbs();
    let mut out = [0u64; 4];
    for d in out.iter_mut() {
        // Long division of the remaining value by |z|, top limb first (public data:
        // the hardware division's variable time is of no concern).
        let mut rem = 0u128;
        for l in limbs.iter_mut().rev() {
            let cur = (rem << 64) | u128::from(*l);
            *l = (cur / u128::from(Z_ABS)) as u64;
            rem = cur % u128::from(Z_ABS);
        }
        *d = rem as u64;
    }
    debug_assert!(limbs.iter().all(|l| *l == 0), "k < |z|^4");
    out
}

/// `Σ scalars[i]·points[i]` for points of G2 (see the module docs), variable time.
/// The caller guarantees equal lengths.
pub(crate) fn msm(points: &[G2Point], scalars: &[Scalar]) -> G2Point {
    debug_assert_eq!(points.len(), scalars.len());
    if points.is_empty() {
        return G2Point::identity();
    }
    let mut expanded = Vec::with_capacity(4 * points.len());
    let mut bytes = Vec::with_capacity(32 * points.len());
    for (p, k) in points.iter().zip(scalars) {
        let d = digits(k);
        let mut q = p.0;
        for (i, d) in d.iter().enumerate() {
            if i > 0 {
                q = psi(&q);
            }
            let mut term = q;
            if i % 2 == 1 {
                // |z|^i = (−1)^i·z^i: odd powers of ψ enter negated.
                let y: *mut blst_fp2 = &mut term.y;
                // SAFETY: negates one valid coordinate in place (the identity's zero
                // stays zero).
                unsafe { blst_fp2_cneg(y, y, true) };
            }
            expanded.push(term);
            bytes.extend_from_slice(&d.to_le_bytes());
        }
    }
    debug_assert_eq!(bytes.len(), 8 * expanded.len());
    G2Point::from_projective(&G2Point::pippenger(&expanded, &bytes, 64, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn psi_is_multiplication_by_z_on_g2() {
        let mut rng = ChaCha20Rng::seed_from_u64(21);
        let z_abs = Scalar::from_u64(Z_ABS);
        for _ in 0..5 {
            let p = G2Point::generator().mul(&Scalar::random(&mut rng));
            // ψ(P) = [z]P = −[|z|]P.
            assert_eq!(G2Point(psi(&p.0)), p.mul(&z_abs).neg());
        }
        assert!(G2Point(psi(&G2Point::identity().0)).is_identity());
    }

    #[test]
    fn digits_recompose() {
        let mut rng = ChaCha20Rng::seed_from_u64(22);
        let z = Scalar::from_u64(Z_ABS);
        let mut cases = vec![Scalar::zero(), Scalar::one(), -&Scalar::one(), z.clone()];
        cases.extend((0..200).map(|_| Scalar::random(&mut rng)));
        for k in cases {
            let d = digits(&k);
            let back = d.iter().rev().fold(Scalar::zero(), |acc, d| {
                &(&acc * &z) + &Scalar::from_u64(*d)
            });
            assert_eq!(back, k);
            assert!(d.iter().all(|d| *d < Z_ABS));
        }
    }

    #[test]
    fn matches_blst_msm_for_points_of_g2() {
        let mut rng = ChaCha20Rng::seed_from_u64(23);
        for m in [1usize, 2, 7, 33, 100] {
            let mut points: Vec<G2Point> = (0..m)
                .map(|_| G2Point::generator().mul(&Scalar::random(&mut rng)))
                .collect();
            let mut scalars: Vec<Scalar> = (0..m).map(|_| Scalar::random(&mut rng)).collect();
            if m >= 7 {
                // The identity, a zero scalar, a repeated point, a point and its negation,
                // scalars 1 and −1.
                points[0] = G2Point::identity();
                scalars[1] = Scalar::zero();
                points[2] = points[3];
                points[5] = points[4].neg();
                scalars[5] = scalars[4].clone();
                scalars[6] = -&Scalar::one();
            }
            assert_eq!(
                msm(&points, &scalars),
                G2Point::msm_serial(&points, &scalars).unwrap(),
                "m = {m}"
            );
        }
        assert!(msm(&[], &[]).is_identity());
    }

    #[test]
    fn outside_g2_only_the_cofactor_part_is_off() {
        // For a point with an order-13 component the result is k times its G2 part
        // plus something of order 13 (ψ maps the 13-torsion into itself) — not the
        // exact product, which is why only identity-compared batches use it.
        let mut rng = ChaCha20Rng::seed_from_u64(24);
        let q = G2Point::small_order_point();
        let p = G2Point::generator().mul(&Scalar::random(&mut rng));
        let k = Scalar::random(&mut rng);
        let fast = msm(&[p.add(&q)], std::slice::from_ref(&k));
        let off = fast.sub(&p.mul(&k));
        assert!(!off.in_subgroup() || off.is_identity());
        let thirteen = Scalar::from_u64(13).to_bytes_be();
        let killed =
            G2Point::from_projective(&super::super::mul_generic(&off.projective(), &thirteen));
        assert!(killed.is_identity());
    }
}
