//! Feldman VSS: commitments `C_k = a_k·G2`.

use rand_core::{CryptoRng, RngCore};

use crate::error::CryptoError;
use crate::group::FixedBase;
use crate::poly::Polynomial;
use crate::scalar::Scalar;
use crate::vss::Commitment;
use crate::vss::batch::{self, BatchItem};

/// A dealer's polynomial and its Feldman commitment.
#[derive(Clone, Debug)]
pub struct FeldmanDealing {
    polynomial: Polynomial,
    commitment: Commitment,
}

impl FeldmanDealing {
    /// Shares `secret` with a fresh random polynomial of degree `threshold − 1`.
    pub fn new<R: RngCore + CryptoRng + ?Sized>(
        secret: Scalar,
        threshold: usize,
        rng: &mut R,
    ) -> Result<Self, CryptoError> {
        Ok(Self::from_polynomial(Polynomial::random(
            secret, threshold, rng,
        )?))
    }

    /// Commits to an existing polynomial.
    pub fn from_polynomial(polynomial: Polynomial) -> Self {
        let commitment = commit(&polynomial);
        Self {
            polynomial,
            commitment,
        }
    }

    /// The public commitment to broadcast.
    pub fn commitment(&self) -> &Commitment {
        &self.commitment
    }

    /// The secret polynomial.
    pub fn polynomial(&self) -> &Polynomial {
        &self.polynomial
    }

    /// The share for the player at evaluation point `x`.
    pub fn share(&self, x: &Scalar) -> Scalar {
        self.polynomial.evaluate(x)
    }
}

/// `a_k·G2` for every coefficient (constant time, from the generator's table).
pub fn commit(polynomial: &Polynomial) -> Commitment {
    let coeffs = FixedBase::generator().mul_many(polynomial.coefficients());
    // A polynomial always has at least one coefficient and a bounded degree.
    Commitment::new(coeffs).expect("polynomial has coefficients")
}

/// Whether `share·G2 == Σ x^k·C_k`: the share at `x` lies on the committed polynomial.
pub fn verify_share(x: &Scalar, share: &Scalar, commitment: &Commitment) -> bool {
    batch::check_one(x, &BatchItem::feldman(commitment, share), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::G2Point;
    use crate::poly::interpolate_at_zero;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn deal_verify_reconstruct() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let secret = Scalar::random(&mut rng);
        let d = FeldmanDealing::new(secret.clone(), 3, &mut rng).unwrap();
        assert_eq!(
            *d.commitment().constant(),
            G2Point::generator().mul(&secret)
        );
        let pts: Vec<(Scalar, Scalar)> = (1..=5u64)
            .map(|i| {
                let x = Scalar::from_u64(i);
                let s = d.share(&x);
                assert!(verify_share(&x, &s, d.commitment()));
                assert!(!verify_share(&x, &(&s + &Scalar::one()), d.commitment()));
                assert!(!verify_share(
                    &Scalar::from_u64(i + 100),
                    &s,
                    d.commitment()
                ));
                assert_eq!(d.commitment().evaluate(&x), G2Point::generator().mul(&s));
                (x, s)
            })
            .collect();
        assert_eq!(interpolate_at_zero(&pts[1..4]).unwrap(), secret);
    }

    #[test]
    fn sum_and_linear_combination_of_commitments() {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let a = FeldmanDealing::new(Scalar::random(&mut rng), 4, &mut rng).unwrap();
        let b = FeldmanDealing::new(Scalar::random(&mut rng), 4, &mut rng).unwrap();
        let x = Scalar::random(&mut rng);
        let sum = Commitment::sum([a.commitment(), b.commitment()]).unwrap();
        assert!(verify_share(&x, &(&a.share(&x) + &b.share(&x)), &sum));
        let (la, lb) = (Scalar::random(&mut rng), Scalar::random(&mut rng));
        let lin = Commitment::linear_combination(
            &[a.commitment(), b.commitment()],
            &[la.clone(), lb.clone()],
        )
        .unwrap();
        assert!(verify_share(
            &x,
            &(&(&la * &a.share(&x)) + &(&lb * &b.share(&x))),
            &lin
        ));
        let short = FeldmanDealing::new(Scalar::random(&mut rng), 3, &mut rng).unwrap();
        assert!(Commitment::sum([a.commitment(), short.commitment()]).is_err());
    }

    #[test]
    fn commitment_serde_roundtrip_and_hash() {
        let mut rng = ChaCha20Rng::seed_from_u64(13);
        let d = FeldmanDealing::new(Scalar::random(&mut rng), 3, &mut rng).unwrap();
        let json = serde_json::to_string(d.commitment()).unwrap();
        let back: Commitment = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, d.commitment());
        assert_eq!(back.hash(), d.commitment().hash());
        assert!(serde_json::from_str::<Commitment>("[]").is_err());
        let other = FeldmanDealing::new(Scalar::random(&mut rng), 3, &mut rng).unwrap();
        assert_ne!(other.commitment().hash(), d.commitment().hash());
    }
}
