//! Polynomials over `Fr`: secret sharing polynomials, Lagrange coefficients,
//! interpolation.

use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::CryptoError;
use crate::scalar::Scalar;

/// A polynomial `a_0 + a_1 x + … + a_{d} x^d` with secret coefficients. Zeroized on
/// drop; its `Debug` shows only the degree.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Polynomial {
    coeffs: Vec<Scalar>,
}

impl Polynomial {
    /// A random polynomial of degree `threshold - 1` with the given constant term: any
    /// `threshold` evaluations determine it, fewer reveal nothing about `constant`.
    pub fn random<R: RngCore + CryptoRng + ?Sized>(
        constant: Scalar,
        threshold: usize,
        rng: &mut R,
    ) -> Result<Self, CryptoError> {
        if threshold == 0 {
            return Err(CryptoError::InvalidParameters(
                "threshold must be at least 1",
            ));
        }
        let mut coeffs = Vec::with_capacity(threshold);
        coeffs.push(constant);
        coeffs.extend((1..threshold).map(|_| Scalar::random(rng)));
        Ok(Self { coeffs })
    }

    /// A polynomial from explicit coefficients, lowest degree first.
    pub fn from_coefficients(coeffs: Vec<Scalar>) -> Result<Self, CryptoError> {
        if coeffs.is_empty() {
            return Err(CryptoError::InvalidParameters(
                "polynomial needs a coefficient",
            ));
        }
        Ok(Self { coeffs })
    }

    /// The coefficients, lowest degree first.
    pub fn coefficients(&self) -> &[Scalar] {
        &self.coeffs
    }

    /// The constant term `f(0)`: the shared secret.
    pub fn constant(&self) -> &Scalar {
        &self.coeffs[0]
    }

    /// The number of coefficients (degree + 1), i.e. the reconstruction threshold.
    pub fn threshold(&self) -> usize {
        self.coeffs.len()
    }

    /// `f(x)` by Horner's rule.
    pub fn evaluate(&self, x: &Scalar) -> Scalar {
        let mut acc = Scalar::zero();
        for c in self.coeffs.iter().rev() {
            acc = &(&acc * x) + c;
        }
        acc
    }
}

impl std::fmt::Debug for Polynomial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Polynomial(degree {}, <redacted>)",
            self.coeffs.len() - 1
        )
    }
}

/// `1, x, x^2, …, x^{n-1}`.
pub fn powers(x: &Scalar, n: usize) -> Vec<Scalar> {
    let mut out = Vec::with_capacity(n);
    let mut acc = Scalar::one();
    for _ in 0..n {
        let next = &acc * x;
        out.push(acc);
        acc = next;
    }
    out
}

fn check_points(xs: &[Scalar]) -> Result<(), CryptoError> {
    if xs.is_empty() {
        return Err(CryptoError::NotEnough { needed: 1, got: 0 });
    }
    if xs.iter().any(Scalar::is_zero) {
        // f(0) is the secret: a share "at zero" would be the secret itself.
        return Err(CryptoError::Zero("evaluation point"));
    }
    let mut sorted: Vec<[u8; 32]> = xs.iter().map(Scalar::to_bytes_be).collect();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(CryptoError::DuplicatePoint);
    }
    Ok(())
}

/// Lagrange coefficients `λ_i = Π_{j≠i} x_j / (x_j − x_i)` at zero, so that
/// `f(0) = Σ λ_i f(x_i)` for any polynomial of degree `< xs.len()`. The points must be
/// distinct and non-zero. One field inversion for the whole set.
pub fn lagrange_coefficients_at_zero(xs: &[Scalar]) -> Result<Vec<Scalar>, CryptoError> {
    lagrange_coefficients_at(&Scalar::zero(), xs)
}

/// Lagrange coefficients for evaluating at `at`: `λ_i = Π_{j≠i} (at − x_j) / (x_i − x_j)`.
/// Evaluating at one of the `xs` itself is allowed (the basis is then a unit vector).
pub fn lagrange_coefficients_at(at: &Scalar, xs: &[Scalar]) -> Result<Vec<Scalar>, CryptoError> {
    check_points(xs)?;
    if let Some(k) = xs.iter().position(|x| x == at) {
        return Ok((0..xs.len())
            .map(|i| {
                if i == k {
                    Scalar::one()
                } else {
                    Scalar::zero()
                }
            })
            .collect());
    }
    let diffs: Vec<Scalar> = xs.iter().map(|x| at - x).collect();
    let full: Scalar = diffs.iter().fold(Scalar::one(), |acc, d| &acc * d);
    // denominator_i = (at − x_i) · Π_{j≠i} (x_i − x_j)
    let mut denominators: Vec<Scalar> = xs
        .iter()
        .enumerate()
        .map(|(i, xi)| {
            xs.iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .fold(diffs[i].clone(), |acc, (_, xj)| &acc * &(xi - xj))
        })
        .collect();
    Scalar::batch_invert(&mut denominators)?;
    Ok(denominators.into_iter().map(|d| &full * &d).collect())
}

/// `f(0)` of the unique polynomial of degree `< points.len()` through `points`.
pub fn interpolate_at_zero(points: &[(Scalar, Scalar)]) -> Result<Scalar, CryptoError> {
    let xs: Vec<Scalar> = points.iter().map(|(x, _)| x.clone()).collect();
    let lambdas = lagrange_coefficients_at_zero(&xs)?;
    Ok(lambdas.iter().zip(points).map(|(l, (_, y))| l * y).sum())
}

/// The unique polynomial of degree `< points.len()` through `points` (coefficient form).
pub fn interpolate(points: &[(Scalar, Scalar)]) -> Result<Polynomial, CryptoError> {
    let xs: Vec<Scalar> = points.iter().map(|(x, _)| x.clone()).collect();
    check_points(&xs)?;
    let n = points.len();
    let mut coeffs = vec![Scalar::zero(); n];
    for (i, (xi, yi)) in points.iter().enumerate() {
        // basis_i(x) = Π_{j≠i} (x − x_j) / (x_i − x_j), built up coefficient-wise.
        let mut basis = vec![Scalar::zero(); n];
        basis[0] = Scalar::one();
        let mut deg = 0;
        let mut denom = Scalar::one();
        for (j, (xj, _)) in points.iter().enumerate() {
            if j == i {
                continue;
            }
            for k in (0..=deg).rev() {
                let shifted = basis[k].clone();
                basis[k + 1] = &basis[k + 1] + &shifted;
                basis[k] = &basis[k] * &(-xj);
            }
            deg += 1;
            denom *= &(xi - xj);
        }
        let scale = yi * &denom.invert()?;
        for (c, b) in coeffs.iter_mut().zip(basis.iter()) {
            *c = &*c + &(b * &scale);
        }
    }
    Polynomial::from_coefficients(coeffs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    fn shares(seed: u64, t: usize, n: usize) -> (Scalar, Vec<(Scalar, Scalar)>) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let secret = Scalar::random(&mut rng);
        let f = Polynomial::random(secret.clone(), t, &mut rng).unwrap();
        let pts = (1..=n as u64)
            .map(|i| {
                let x = Scalar::from_u64(i * 7919 + 3);
                let y = f.evaluate(&x);
                (x, y)
            })
            .collect();
        (secret, pts)
    }

    #[test]
    fn rejects_zero_and_duplicates() {
        let one = Scalar::one();
        assert_eq!(
            lagrange_coefficients_at_zero(&[one.clone(), Scalar::zero()]),
            Err(CryptoError::Zero("evaluation point"))
        );
        assert_eq!(
            lagrange_coefficients_at_zero(&[one.clone(), one.clone()]),
            Err(CryptoError::DuplicatePoint)
        );
        assert!(lagrange_coefficients_at_zero(&[]).is_err());
        assert!(Polynomial::random(Scalar::one(), 0, &mut ChaCha20Rng::seed_from_u64(0)).is_err());
    }

    #[test]
    fn debug_redacts_coefficients() {
        let f = Polynomial::random(Scalar::one(), 3, &mut ChaCha20Rng::seed_from_u64(0)).unwrap();
        assert_eq!(format!("{f:?}"), "Polynomial(degree 2, <redacted>)");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Any t of n shares reconstruct the secret.
        #[test]
        fn any_t_of_n_reconstruct(seed in any::<u64>(), n in 1usize..20, pick in any::<u64>()) {
            let t = crate::operator::threshold(n);
            let (secret, mut pts) = shares(seed, t, n);
            let mut r = ChaCha20Rng::seed_from_u64(pick);
            // Fisher–Yates with the test rng: a random subset of size t.
            for i in (1..pts.len()).rev() {
                let j = (r.next_u64() % (i as u64 + 1)) as usize;
                pts.swap(i, j);
            }
            prop_assert_eq!(interpolate_at_zero(&pts[..t]).unwrap(), secret.clone());
            prop_assert_eq!(interpolate_at_zero(&pts).unwrap(), secret);
        }

        /// Fewer than t shares give a value unrelated to the secret (for a random
        /// polynomial it is uniformly distributed; here: it differs).
        #[test]
        fn fewer_than_t_do_not(seed in any::<u64>(), t in 2usize..15) {
            let (secret, pts) = shares(seed, t, t + 3);
            prop_assert_ne!(interpolate_at_zero(&pts[..t - 1]).unwrap(), secret);
        }

        /// Full interpolation recovers every coefficient.
        #[test]
        fn interpolation_recovers_polynomial(seed in any::<u64>(), t in 1usize..12) {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let f = Polynomial::random(Scalar::random(&mut rng), t, &mut rng).unwrap();
            let pts: Vec<_> = (1..=t as u64).map(|i| { let x = Scalar::from_u64(i); let y = f.evaluate(&x); (x, y) }).collect();
            let g = interpolate(&pts).unwrap();
            prop_assert_eq!(g.coefficients(), f.coefficients());
            let at = Scalar::random(&mut rng);
            let xs: Vec<Scalar> = pts.iter().map(|p| p.0.clone()).collect();
            let l = lagrange_coefficients_at(&at, &xs).unwrap();
            let v: Scalar = l.iter().zip(&pts).map(|(l, p)| l * &p.1).sum();
            prop_assert_eq!(v, f.evaluate(&at));
        }
    }
}
