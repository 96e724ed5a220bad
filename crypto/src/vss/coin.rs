//! Commit–reveal coin flip that fixes the seed of the Pedersen base `H2`.
//!
//! Every operator commits to a random 32-byte contribution, then reveals it; the seed
//! is the hash of all revealed contributions in address order. Nobody can choose the
//! seed, and since `H2` is a hash-to-curve output of it, nobody learns `log_G2 H2`.
//! An operator that commits but does not reveal can only abort (its contribution is
//! dropped and it is reported); it gains at most a choice between two outcomes, which
//! does not help it learn a discrete logarithm.

use rand_core::{CryptoRng, RngCore};
use sha3::{Digest, Keccak256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::address::OperatorAddress;
use crate::error::CryptoError;

const COMMIT_DOMAIN: &[u8] = b"EIGENKMS-V1-COIN-COMMIT";
const SEED_DOMAIN: &[u8] = b"EIGENKMS-V1-COIN-SEED";

/// One operator's secret contribution until it is revealed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct CoinContribution([u8; 32]);

impl CoinContribution {
    /// A fresh random contribution.
    pub fn random<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        Self(b)
    }

    /// Wraps a revealed value.
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }

    /// The value to reveal in the second round.
    pub fn reveal(&self) -> [u8; 32] {
        self.0
    }

    /// The commitment to publish in the first round, bound to the session context and
    /// the contributor so it cannot be replayed by another operator or in another session.
    pub fn commitment(&self, context: &[u8], contributor: &OperatorAddress) -> [u8; 32] {
        let mut h = Keccak256::new();
        h.update(COMMIT_DOMAIN);
        h.update((context.len() as u64).to_be_bytes());
        h.update(context);
        h.update(contributor.as_bytes());
        h.update(self.0);
        h.finalize().into()
    }
}

impl std::fmt::Debug for CoinContribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CoinContribution(<redacted>)")
    }
}

/// Whether `revealed` opens `commitment` for this context and contributor.
pub fn verify_reveal(
    commitment: &[u8; 32],
    context: &[u8],
    contributor: &OperatorAddress,
    revealed: &[u8; 32],
) -> bool {
    use subtle::ConstantTimeEq;
    let expected = CoinContribution::from_bytes(*revealed).commitment(context, contributor);
    bool::from(expected.ct_eq(commitment))
}

/// The seed from all verified reveals, independent of their order. Duplicate
/// contributors are refused.
pub fn combine(
    context: &[u8],
    reveals: &[(OperatorAddress, [u8; 32])],
) -> Result<[u8; 32], CryptoError> {
    if reveals.is_empty() {
        return Err(CryptoError::NotEnough { needed: 1, got: 0 });
    }
    let mut sorted: Vec<&(OperatorAddress, [u8; 32])> = reveals.iter().collect();
    sorted.sort_by_key(|(a, _)| *a);
    if sorted.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(CryptoError::InvalidParameters("duplicate coin contributor"));
    }
    let mut h = Keccak256::new();
    h.update(SEED_DOMAIN);
    h.update((context.len() as u64).to_be_bytes());
    h.update(context);
    for (addr, value) in sorted {
        h.update(addr.as_bytes());
        h.update(value);
    }
    Ok(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_reveal_binds_context_and_contributor() {
        let a = OperatorAddress::from_bytes([1; 20]);
        let b = OperatorAddress::from_bytes([2; 20]);
        let c = CoinContribution::from_bytes([9; 32]);
        let com = c.commitment(b"session-1", &a);
        assert!(verify_reveal(&com, b"session-1", &a, &c.reveal()));
        assert!(!verify_reveal(&com, b"session-2", &a, &c.reveal()));
        assert!(!verify_reveal(&com, b"session-1", &b, &c.reveal()));
        assert!(!verify_reveal(&com, b"session-1", &a, &[8; 32]));
    }

    #[test]
    fn seed_is_order_independent_and_rejects_duplicates() {
        let a = OperatorAddress::from_bytes([1; 20]);
        let b = OperatorAddress::from_bytes([2; 20]);
        let s1 = combine(b"ctx", &[(a, [1; 32]), (b, [2; 32])]).unwrap();
        let s2 = combine(b"ctx", &[(b, [2; 32]), (a, [1; 32])]).unwrap();
        assert_eq!(s1, s2);
        assert_ne!(s1, combine(b"ctx", &[(a, [1; 32]), (b, [3; 32])]).unwrap());
        assert!(combine(b"ctx", &[(a, [1; 32]), (a, [2; 32])]).is_err());
        assert!(combine(b"ctx", &[]).is_err());
    }
}
