//! How operators map onto the sharing: evaluation points and the threshold.

use sha3::{Digest, Keccak256};

use crate::address::OperatorAddress;
use crate::error::CryptoError;
use crate::scalar::Scalar;

/// The reconstruction threshold for `n` operators: `t = ceil(2n/3)`. The one
/// definition used everywhere (DKG, reshare, signing, clients). Any `t` operators can
/// act; `n − t` may be down or lying, and fewer than `t` colluders learn nothing.
pub const fn threshold(n: usize) -> usize {
    (2 * n).div_ceil(3)
}

/// The operator's evaluation point `x = keccak256(address) mod r`. Derived from the
/// address alone so every node computes the same point without coordination. `x = 0`
/// is refused: the share at zero is the secret itself.
pub fn evaluation_point(address: &OperatorAddress) -> Result<Scalar, CryptoError> {
    let digest = Keccak256::digest(address.as_bytes());
    let x = Scalar::from_bytes_wide(&digest);
    if x.is_zero() {
        return Err(CryptoError::Zero("evaluation point of operator"));
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_values() {
        let expected = [
            (1, 1),
            (2, 2),
            (3, 2),
            (4, 3),
            (5, 4),
            (7, 5),
            (10, 7),
            (15, 10),
            (50, 34),
            (64, 43),
            (100, 67),
        ];
        for (n, t) in expected {
            assert_eq!(threshold(n), t, "n = {n}");
        }
        for n in 1..500 {
            let t = threshold(n);
            assert!(3 * t >= 2 * n && 3 * (t - 1) < 2 * n, "n = {n}");
        }
    }

    #[test]
    fn evaluation_point_is_keccak_mod_r() {
        let addr: OperatorAddress = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
            .parse()
            .unwrap();
        let x = evaluation_point(&addr).unwrap();
        // keccak256 of the 20 raw bytes, reduced: recompute the reduction independently
        // by subtracting r until below it (keccak < 2^256 < 3r... so at most twice).
        let d = Keccak256::digest(addr.as_bytes());
        let mut v = num_from_be(&d);
        let r = num_from_be(
            &hex::decode("73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001")
                .unwrap(),
        );
        while ge(&v, &r) {
            v = sub(&v, &r);
        }
        assert_eq!(x.to_bytes_be().to_vec(), be_from_num(&v));
        assert_ne!(evaluation_point(&OperatorAddress::ZERO).unwrap(), x);
    }

    // Tiny 256-bit big-endian arithmetic for the independent check above.
    fn num_from_be(b: &[u8]) -> [u64; 4] {
        let mut l = [0u64; 4];
        for (i, chunk) in b.rchunks(8).enumerate() {
            let mut w = [0u8; 8];
            w[8 - chunk.len()..].copy_from_slice(chunk);
            l[i] = u64::from_be_bytes(w);
        }
        l
    }
    fn be_from_num(l: &[u64; 4]) -> Vec<u8> {
        l.iter().rev().flat_map(|w| w.to_be_bytes()).collect()
    }
    fn ge(a: &[u64; 4], b: &[u64; 4]) -> bool {
        for i in (0..4).rev() {
            if a[i] != b[i] {
                return a[i] > b[i];
            }
        }
        true
    }
    fn sub(a: &[u64; 4], b: &[u64; 4]) -> [u64; 4] {
        let mut out = [0u64; 4];
        let mut borrow = 0u64;
        for i in 0..4 {
            let (d1, o1) = a[i].overflowing_sub(b[i]);
            let (d2, o2) = d1.overflowing_sub(borrow);
            out[i] = d2;
            borrow = (o1 || o2) as u64;
        }
        out
    }
}
