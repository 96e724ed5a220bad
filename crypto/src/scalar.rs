//! Elements of the BLS12-381 scalar field `Fr` (integers modulo the group order `r`).

use std::fmt;
use std::ops::{Add, AddAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use blst::{
    blst_bendian_from_scalar, blst_fr, blst_fr_add, blst_fr_cneg, blst_fr_from_scalar,
    blst_fr_from_uint64, blst_fr_inverse, blst_fr_mul, blst_fr_sub, blst_scalar,
    blst_scalar_fr_check, blst_scalar_from_be_bytes, blst_scalar_from_bendian, blst_scalar_from_fr,
};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::CryptoError;
use crate::hexser;

/// An element of `Fr`. Used for secrets (shares, polynomial coefficients) and for
/// public values (evaluation points, Lagrange coefficients) alike, so it is treated as
/// secret everywhere: zeroized on drop, compared in constant time, redacted in `Debug`.
#[derive(Clone, Default)]
pub struct Scalar(pub(crate) blst_fr);

impl Scalar {
    /// Length of the canonical big-endian encoding.
    pub const BYTES: usize = 32;

    /// The additive identity.
    pub fn zero() -> Self {
        Self(blst_fr::default())
    }

    /// The multiplicative identity.
    pub fn one() -> Self {
        Self::from_u64(1)
    }

    /// The scalar `v mod r`.
    pub fn from_u64(v: u64) -> Self {
        let limbs = [v, 0, 0, 0];
        let mut out = blst_fr::default();
        // SAFETY: blst reads four limbs from the pointer and writes one blst_fr.
        unsafe { blst_fr_from_uint64(&mut out, limbs.as_ptr()) };
        Self(out)
    }

    /// A uniformly random scalar: 64 random bytes reduced modulo `r`, so the bias is
    /// below 2^-250.
    pub fn random<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut wide = Zeroizing::new([0u8; 64]);
        rng.fill_bytes(wide.as_mut());
        Self::from_bytes_wide(wide.as_ref())
    }

    /// A uniformly random scalar below 2^128: enough for the coefficients of a random
    /// linear combination (soundness error 2^-128) at half the cost of a full scalar
    /// in multi-scalar multiplication.
    pub fn random_u128<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        Self::from_bytes_wide(&b)
    }

    /// Interprets any big-endian byte string as an integer and reduces it modulo `r`.
    /// Used for hashing into the field (e.g. `keccak256(address) mod r`).
    pub fn from_bytes_wide(bytes: &[u8]) -> Self {
        let mut s = blst_scalar::default();
        let mut out = blst_fr::default();
        // SAFETY: blst reads `len` bytes from the pointer; both outputs are valid.
        unsafe {
            blst_scalar_from_be_bytes(&mut s, bytes.as_ptr(), bytes.len());
            blst_fr_from_scalar(&mut out, &s);
        }
        s.b.zeroize();
        Self(out)
    }

    /// Decodes the canonical 32-byte big-endian encoding; values `>= r` are rejected
    /// so that every scalar has exactly one encoding (no malleable shares or proofs).
    pub fn from_bytes_be(bytes: &[u8; 32]) -> Result<Self, CryptoError> {
        let mut s = blst_scalar::default();
        // SAFETY: blst reads 32 bytes and writes one blst_scalar.
        let ok = unsafe {
            blst_scalar_from_bendian(&mut s, bytes.as_ptr());
            blst_scalar_fr_check(&s)
        };
        if !ok {
            s.b.zeroize();
            return Err(CryptoError::ScalarNotCanonical);
        }
        let mut out = blst_fr::default();
        // SAFETY: `s` is a valid, reduced scalar.
        unsafe { blst_fr_from_scalar(&mut out, &s) };
        s.b.zeroize();
        Ok(Self(out))
    }

    /// Decodes from a slice, checking its length first.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: &[u8; 32] = bytes.try_into().map_err(|_| CryptoError::InvalidLength {
            expected: 32,
            got: bytes.len(),
        })?;
        Self::from_bytes_be(arr)
    }

    /// The canonical 32-byte big-endian encoding.
    pub fn to_bytes_be(&self) -> [u8; 32] {
        let s = self.to_blst_scalar();
        let mut out = [0u8; 32];
        // SAFETY: writes 32 bytes.
        unsafe { blst_bendian_from_scalar(out.as_mut_ptr(), &s.0) };
        out
    }

    /// The little-endian integer form that blst's point multiplication expects.
    pub(crate) fn to_blst_scalar(&self) -> Zeroizing<ScalarBytes> {
        let mut s = ScalarBytes(blst_scalar::default());
        // SAFETY: converts one field element out of Montgomery form.
        unsafe { blst_scalar_from_fr(&mut s.0, &self.0) };
        Zeroizing::new(s)
    }

    /// The integer form as four little-endian 64-bit limbs (zeroized on drop, for
    /// the tables' digit recodings).
    pub(crate) fn to_le_limbs(&self) -> Zeroizing<[u64; 4]> {
        let le = self.to_blst_scalar();
        let mut out = Zeroizing::new([0u64; 4]);
        for (i, limb) in out.iter_mut().enumerate() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&le.b[8 * i..8 * i + 8]);
            *limb = u64::from_le_bytes(w);
            w.zeroize();
        }
        out
    }

    /// Whether this is zero (constant time).
    pub fn is_zero(&self) -> bool {
        bool::from(self.ct_eq(&Self::zero()))
    }

    /// The multiplicative inverse, or an error for zero. Constant time (Fermat).
    pub fn invert(&self) -> Result<Self, CryptoError> {
        if self.is_zero() {
            return Err(CryptoError::Zero("inverse of zero"));
        }
        let mut out = blst_fr::default();
        // SAFETY: valid input and output field elements.
        unsafe { blst_fr_inverse(&mut out, &self.0) };
        Ok(Self(out))
    }

    /// `self^e` for a small public exponent.
    pub fn pow(&self, mut e: u64) -> Self {
        let mut base = self.clone();
        let mut acc = Self::one();
        while e > 0 {
            if e & 1 == 1 {
                acc *= &base;
            }
            base = &base * &base;
            e >>= 1;
        }
        acc
    }

    /// Inverts every element of `values` in place with one field inversion
    /// (Montgomery's trick). Fails, changing nothing, if any element is zero.
    pub fn batch_invert(values: &mut [Scalar]) -> Result<(), CryptoError> {
        if values.iter().any(Scalar::is_zero) {
            return Err(CryptoError::Zero("inverse of zero"));
        }
        let mut prefix = Vec::with_capacity(values.len());
        let mut acc = Scalar::one();
        for v in values.iter() {
            prefix.push(acc.clone());
            acc *= v;
        }
        let mut inv = acc.invert()?;
        for (v, p) in values.iter_mut().zip(prefix.iter()).rev() {
            let next = &inv * &*v;
            *v = &inv * p;
            inv = next;
        }
        Ok(())
    }
}

/// blst's little-endian scalar, zeroized when dropped through `Zeroizing`.
pub(crate) struct ScalarBytes(pub(crate) blst_scalar);

impl Zeroize for ScalarBytes {
    fn zeroize(&mut self) {
        self.0.b.zeroize();
    }
}

impl std::ops::Deref for ScalarBytes {
    type Target = blst_scalar;
    fn deref(&self) -> &blst_scalar {
        &self.0
    }
}

impl Zeroize for Scalar {
    fn zeroize(&mut self) {
        self.0.l.zeroize();
    }
}

impl Drop for Scalar {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for Scalar {}

impl ConstantTimeEq for Scalar {
    fn ct_eq(&self, other: &Self) -> Choice {
        // Montgomery form is canonical (fully reduced), so limb equality is value equality.
        self.0.l.ct_eq(&other.0.l)
    }
}

impl PartialEq for Scalar {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.ct_eq(other))
    }
}

impl Eq for Scalar {}

impl fmt::Debug for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Scalar(<redacted>)")
    }
}

macro_rules! binop {
    ($trait:ident, $method:ident, $assign_trait:ident, $assign_method:ident, $ffi:ident) => {
        impl $trait<&Scalar> for &Scalar {
            type Output = Scalar;
            fn $method(self, rhs: &Scalar) -> Scalar {
                let mut out = blst_fr::default();
                // SAFETY: valid input and output field elements.
                unsafe { $ffi(&mut out, &self.0, &rhs.0) };
                Scalar(out)
            }
        }
        impl $trait<Scalar> for Scalar {
            type Output = Scalar;
            fn $method(self, rhs: Scalar) -> Scalar {
                (&self).$method(&rhs)
            }
        }
        impl $trait<&Scalar> for Scalar {
            type Output = Scalar;
            fn $method(self, rhs: &Scalar) -> Scalar {
                (&self).$method(rhs)
            }
        }
        impl $assign_trait<&Scalar> for Scalar {
            fn $assign_method(&mut self, rhs: &Scalar) {
                let lhs = self.0;
                // SAFETY: valid input and output field elements.
                unsafe { $ffi(&mut self.0, &lhs, &rhs.0) };
            }
        }
    };
}

binop!(Add, add, AddAssign, add_assign, blst_fr_add);
binop!(Sub, sub, SubAssign, sub_assign, blst_fr_sub);
binop!(Mul, mul, MulAssign, mul_assign, blst_fr_mul);

impl Neg for &Scalar {
    type Output = Scalar;
    fn neg(self) -> Scalar {
        let mut out = blst_fr::default();
        // SAFETY: valid input and output field elements.
        unsafe { blst_fr_cneg(&mut out, &self.0, true) };
        Scalar(out)
    }
}

impl Neg for Scalar {
    type Output = Scalar;
    fn neg(self) -> Scalar {
        -&self
    }
}

impl std::iter::Sum for Scalar {
    fn sum<I: Iterator<Item = Scalar>>(iter: I) -> Self {
        iter.fold(Scalar::zero(), |acc, x| acc + x)
    }
}

impl<'a> std::iter::Sum<&'a Scalar> for Scalar {
    fn sum<I: Iterator<Item = &'a Scalar>>(iter: I) -> Self {
        iter.fold(Scalar::zero(), |acc, x| acc + x)
    }
}

impl Serialize for Scalar {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let bytes = Zeroizing::new(self.to_bytes_be());
        hexser::serialize_bytes(bytes.as_ref(), s)
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = Zeroizing::new(hexser::deserialize_array::<D, 32>(d)?);
        Scalar::from_bytes_be(&bytes).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// r, the order of the BLS12-381 prime-order subgroups.
    const R_BE: [u8; 32] = [
        0x73, 0xed, 0xa7, 0x53, 0x29, 0x9d, 0x7d, 0x48, 0x33, 0x39, 0xd8, 0x08, 0x09, 0xa1, 0xd8,
        0x05, 0x53, 0xbd, 0xa4, 0x02, 0xff, 0xfe, 0x5b, 0xfe, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00,
        0x00, 0x01,
    ];

    #[test]
    fn rejects_non_canonical() {
        assert_eq!(
            Scalar::from_bytes_be(&R_BE),
            Err(CryptoError::ScalarNotCanonical)
        );
        assert_eq!(
            Scalar::from_bytes_be(&[0xff; 32]),
            Err(CryptoError::ScalarNotCanonical)
        );
        let mut r_minus_1 = R_BE;
        r_minus_1[31] = 0;
        let s = Scalar::from_bytes_be(&r_minus_1).unwrap();
        assert_eq!(s, -Scalar::one());
        assert_eq!(s.to_bytes_be(), r_minus_1);
    }

    #[test]
    fn wide_reduction_of_r_is_zero() {
        assert!(Scalar::from_bytes_wide(&R_BE).is_zero());
        let mut r_plus_5 = R_BE;
        r_plus_5[31] = 6;
        assert_eq!(Scalar::from_bytes_wide(&r_plus_5), Scalar::from_u64(5));
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(format!("{:?}", Scalar::from_u64(42)), "Scalar(<redacted>)");
    }

    #[test]
    fn inverse_of_zero_fails() {
        assert!(Scalar::zero().invert().is_err());
        let mut v = vec![Scalar::one(), Scalar::zero()];
        assert!(Scalar::batch_invert(&mut v).is_err());
        assert_eq!(v[0], Scalar::one());
    }

    fn arb_scalar() -> impl Strategy<Value = Scalar> {
        any::<[u8; 64]>().prop_map(|b| Scalar::from_bytes_wide(&b))
    }

    proptest! {
        #[test]
        fn encode_decode_roundtrip(s in arb_scalar()) {
            prop_assert_eq!(Scalar::from_bytes_be(&s.to_bytes_be()).unwrap(), s);
        }

        #[test]
        fn decode_random_bytes_never_panics(b in any::<[u8; 32]>()) {
            if let Ok(s) = Scalar::from_bytes_be(&b) {
                prop_assert_eq!(s.to_bytes_be(), b);
            }
        }

        #[test]
        fn field_laws(a in arb_scalar(), b in arb_scalar(), c in arb_scalar()) {
            prop_assert_eq!(&(&a + &b) * &c, &(&a * &c) + &(&b * &c));
            prop_assert_eq!(&(&a - &b) + &b, a.clone());
            if !a.is_zero() {
                prop_assert_eq!(&a * &a.invert().unwrap(), Scalar::one());
            }
        }

        #[test]
        fn batch_invert_matches_single(v in proptest::collection::vec(arb_scalar(), 1..20)) {
            prop_assume!(v.iter().all(|x| !x.is_zero()));
            let mut inv = v.clone();
            Scalar::batch_invert(&mut inv).unwrap();
            for (x, y) in v.iter().zip(inv.iter()) {
                prop_assert_eq!(x.invert().unwrap(), y.clone());
            }
        }

        #[test]
        fn pow_matches_repeated_mul(a in arb_scalar(), e in 0u64..40) {
            let mut acc = Scalar::one();
            for _ in 0..e { acc *= &a; }
            prop_assert_eq!(a.pow(e), acc);
        }
    }
}
