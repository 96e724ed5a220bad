//! Points of the BLS12-381 groups G1 (48-byte compressed) and G2 (96-byte compressed),
//! the pairing, and multi-scalar multiplication.
//!
//! Encodings are the ZCash/IETF compressed form. Decoding is strict: the flag bits
//! must be consistent, the x-coordinate reduced, the point on the curve *and* in the
//! prime-order subgroup (small-subgroup points would let a dealer forge share checks
//! or leak a share's residue), and only the one canonical byte string of a point is
//! accepted (we re-encode and compare). The point at infinity is refused by the
//! normal decoders because no protocol value may be the identity (an identity master
//! key or ciphertext component would make encryption transparent).

use std::fmt;

use blst::{
    BLST_ERROR, MultiPoint, blst_bendian_from_fp12, blst_fp12, blst_fp12_is_one, blst_hash_to_g1,
    blst_hash_to_g2, blst_p1, blst_p1_add_or_double, blst_p1_add_or_double_affine, blst_p1_affine,
    blst_p1_affine_compress, blst_p1_affine_in_g1, blst_p1_affine_is_inf, blst_p1_affine_serialize,
    blst_p1_cneg, blst_p1_deserialize, blst_p1_from_affine, blst_p1_generator, blst_p1_mult,
    blst_p1_to_affine, blst_p1_uncompress, blst_p2, blst_p2_add_or_double,
    blst_p2_add_or_double_affine, blst_p2_affine, blst_p2_affine_compress, blst_p2_affine_in_g2,
    blst_p2_affine_is_inf, blst_p2_affine_serialize, blst_p2_cneg, blst_p2_deserialize,
    blst_p2_double, blst_p2_from_affine, blst_p2_generator, blst_p2_is_inf, blst_p2_mult,
    blst_p2_to_affine, blst_p2_uncompress, blst_p2s_to_affine,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

mod comb;
mod fixed_base;
pub(crate) mod gls_msm;

pub use comb::Comb;
pub use fixed_base::FixedBase;

use crate::error::CryptoError;
use crate::hexser;
use crate::scalar::Scalar;

fn map_blst_error(e: BLST_ERROR) -> CryptoError {
    match e {
        BLST_ERROR::BLST_POINT_NOT_ON_CURVE => CryptoError::PointNotOnCurve,
        BLST_ERROR::BLST_POINT_NOT_IN_GROUP => CryptoError::PointNotInSubgroup,
        _ => CryptoError::InvalidEncoding("not a compressed curve point"),
    }
}

/// The scalars of an MSM over `npoints` points as consecutive 32-byte little-endian
/// words (what blst reads); `None` for an empty MSM, an error if the lengths differ.
fn msm_scalars(
    npoints: usize,
    scalars: &[Scalar],
) -> Result<Option<Zeroizing<Vec<u8>>>, CryptoError> {
    if npoints != scalars.len() {
        return Err(CryptoError::InvalidParameters("msm: length mismatch"));
    }
    if npoints == 0 {
        return Ok(None);
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(32 * scalars.len()));
    for s in scalars {
        bytes.extend_from_slice(&s.to_blst_scalar().b);
    }
    Ok(Some(bytes))
}

macro_rules! point_type {
    (
        $(#[$doc:meta])*
        $name:ident, $affine:ty, $proj:ty, $len:expr,
        compress = $compress:ident, uncompress = $uncompress:ident,
        in_group = $in_group:ident, is_inf = $is_inf:ident,
        from_affine = $from_affine:ident, to_affine = $to_affine:ident,
        add = $add:ident, add_affine = $add_affine:ident, cneg = $cneg:ident, mult = $mult:ident,
        generator = $generator:ident, hash = $hash:ident,
        pippenger = $pippenger:ident, scratch_sizeof = $scratch_sizeof:ident
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Default)]
        #[repr(transparent)]
        pub struct $name(pub(crate) $affine);

        impl $name {
            /// Length of the compressed encoding.
            pub const BYTES: usize = $len;

            /// The fixed generator of the group.
            pub fn generator() -> Self {
                // SAFETY: blst returns a pointer to a static point.
                Self::from_projective(unsafe { &*$generator() })
            }

            /// The identity (point at infinity).
            pub fn identity() -> Self {
                Self(<$affine>::default())
            }

            /// Whether this is the identity.
            pub fn is_identity(&self) -> bool {
                // SAFETY: reads one affine point.
                unsafe { $is_inf(&self.0) }
            }

            /// Decodes a compressed point, refusing the identity.
            pub fn from_compressed(bytes: &[u8; $len]) -> Result<Self, CryptoError> {
                let p = Self::from_compressed_allow_identity(bytes)?;
                if p.is_identity() {
                    return Err(CryptoError::PointAtInfinity);
                }
                Ok(p)
            }

            /// Decodes a compressed point, accepting the identity. Use only where the
            /// identity is a legitimate value.
            pub fn from_compressed_allow_identity(bytes: &[u8; $len]) -> Result<Self, CryptoError> {
                let mut p = <$affine>::default();
                // SAFETY: blst reads exactly $len bytes and writes one affine point.
                let rc = unsafe { $uncompress(&mut p, bytes.as_ptr()) };
                if rc != BLST_ERROR::BLST_SUCCESS {
                    return Err(map_blst_error(rc));
                }
                let p = Self(p);
                // blst already rejects x >= p and stray flag bits; comparing the
                // re-encoding closes any remaining gap (e.g. a sign bit on infinity).
                if p.to_compressed() != *bytes {
                    return Err(CryptoError::InvalidEncoding("non-canonical point encoding"));
                }
                // SAFETY: reads one affine point.
                if !p.is_identity() && !unsafe { $in_group(&p.0) } {
                    return Err(CryptoError::PointNotInSubgroup);
                }
                Ok(p)
            }

            /// Decodes from a slice, checking its length first; refuses the identity.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
                let arr: &[u8; $len] = bytes.try_into().map_err(|_| CryptoError::InvalidLength {
                    expected: $len,
                    got: bytes.len(),
                })?;
                Self::from_compressed(arr)
            }

            /// The compressed encoding.
            pub fn to_compressed(&self) -> [u8; $len] {
                let mut out = [0u8; $len];
                // SAFETY: writes exactly $len bytes.
                unsafe { $compress(out.as_mut_ptr(), &self.0) };
                out
            }

            pub(crate) fn from_projective(p: &$proj) -> Self {
                let mut a = <$affine>::default();
                // SAFETY: converts one valid projective point.
                unsafe { $to_affine(&mut a, p) };
                Self(a)
            }

            pub(crate) fn projective(&self) -> $proj {
                let mut p = <$proj>::default();
                // SAFETY: converts one valid affine point.
                unsafe { $from_affine(&mut p, &self.0) };
                p
            }

            /// `k · self` (constant time in `k`).
            pub fn mul(&self, k: &Scalar) -> Self {
                Self::from_projective(&self.mul_projective(k))
            }

            /// `k · self` (constant time in `k`), left in projective form.
            pub(crate) fn mul_projective(&self, k: &Scalar) -> $proj {
                let s = k.to_blst_scalar();
                let mut out = <$proj>::default();
                // SAFETY: the scalar is 32 little-endian bytes below r < 2^255.
                unsafe { $mult(&mut out, &self.projective(), s.b.as_ptr(), 255) };
                out
            }

            /// `self + other`.
            pub fn add(&self, other: &Self) -> Self {
                let mut out = <$proj>::default();
                // SAFETY: valid projective inputs; add_or_double handles P == Q.
                unsafe { $add(&mut out, &self.projective(), &other.projective()) };
                Self::from_projective(&out)
            }

            /// `-self`.
            pub fn neg(&self) -> Self {
                let mut p = self.projective();
                // SAFETY: negates one valid point in place.
                unsafe { $cneg(&mut p, true) };
                Self::from_projective(&p)
            }

            /// `self - other`.
            pub fn sub(&self, other: &Self) -> Self {
                self.add(&other.neg())
            }

            /// The sum of many points, accumulated in projective coordinates with a
            /// single conversion to affine at the end.
            pub fn sum<'a>(points: impl IntoIterator<Item = &'a Self>) -> Self {
                Self::from_projective(&Self::sum_projective(points))
            }

            /// [`Self::sum`] before the conversion to affine (mixed additions).
            pub(crate) fn sum_projective<'a>(points: impl IntoIterator<Item = &'a Self>) -> $proj {
                let mut acc = <$proj>::default();
                for p in points {
                    let prev = acc;
                    // SAFETY: valid inputs; the complete mixed addition (handles the
                    // identity on either side and P == Q).
                    unsafe { $add_affine(&mut acc, &prev, &p.0) };
                }
                acc
            }

            /// `Σ scalars[i] · points[i]` with blst's Pippenger multi-scalar
            /// multiplication. Variable time: use for public scalars only.
            pub fn msm(points: &[Self], scalars: &[Scalar]) -> Result<Self, CryptoError> {
                let Some(bytes) = msm_scalars(points.len(), scalars)? else {
                    return Ok(Self::identity());
                };
                Ok(Self::from_projective(&Self::pippenger(
                    Self::raw(points),
                    &bytes,
                    255,
                    points.len() >= 32,
                )))
            }

            /// `Σ scalars[i] · points[i]` with blst's Pippenger on the calling thread
            /// only. [`Self::msm`] spreads 32 points or more over blst's thread pool
            /// (lower latency, the same or more CPU); this is for many medium-sized
            /// MSMs in a row, such as the `t` columns of a Lagrange combination of
            /// commitments, where it costs less CPU. Variable time: public scalars only.
            pub fn msm_serial(points: &[Self], scalars: &[Scalar]) -> Result<Self, CryptoError> {
                let Some(bytes) = msm_scalars(points.len(), scalars)? else {
                    return Ok(Self::identity());
                };
                Ok(Self::from_projective(&Self::pippenger(
                    Self::raw(points),
                    &bytes,
                    255,
                    false,
                )))
            }

            /// The blst points under a slice of `Self`.
            fn raw(points: &[Self]) -> &[$affine] {
                // SAFETY: `$name` is repr(transparent) over the affine blst type.
                unsafe { std::slice::from_raw_parts(points.as_ptr().cast::<$affine>(), points.len()) }
            }

            /// blst's Pippenger over `points` (at least one) and their scalars,
            /// `nbits`-bit little-endian integers of `(nbits + 7) / 8` bytes each:
            /// spread over blst's thread pool if `threaded`, else on the calling thread.
            /// Never threaded below 32 points, where blst's threaded `mult` multiplies
            /// point by point in constant time (≈ 2× the CPU of a serial Pippenger,
            /// for scalars that are public here anyway).
            pub(crate) fn pippenger(points: &[$affine], scalars: &[u8], nbits: usize, threaded: bool) -> $proj {
                if threaded && points.len() >= 32 {
                    return points.mult(scalars, nbits);
                }
                let point_ptrs: [*const $affine; 2] = [points.as_ptr(), std::ptr::null()];
                let scalar_ptrs: [*const u8; 2] = [scalars.as_ptr(), std::ptr::null()];
                // SAFETY: blst reads the scratch size it asks for.
                let words = unsafe { blst::$scratch_sizeof(points.len()) } / 8;
                let mut scratch = vec![0u64; words + 1];
                let mut out = <$proj>::default();
                // SAFETY: with a null second pointer blst reads `npoints` consecutive
                // affine points and `npoints` consecutive scalars of
                // `(nbits + 7) / 8` bytes; scratch is as large as it asked for.
                unsafe {
                    blst::$pippenger(
                        &mut out,
                        point_ptrs.as_ptr(),
                        points.len(),
                        scalar_ptrs.as_ptr(),
                        nbits,
                        scratch.as_mut_ptr() as *mut blst::limb_t,
                    )
                };
                out
            }

            /// Hash to the curve per RFC 9380 (`_XMD:SHA-256_SSWU_RO_`) under `dst`.
            pub fn hash_to_curve(msg: &[u8], dst: &[u8]) -> Self {
                let mut out = <$proj>::default();
                // SAFETY: blst reads the given lengths; no augmentation string.
                unsafe {
                    $hash(
                        &mut out,
                        msg.as_ptr(),
                        msg.len(),
                        dst.as_ptr(),
                        dst.len(),
                        std::ptr::null(),
                        0,
                    )
                };
                Self::from_projective(&out)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(0x{})", stringify!($name), hex::encode(self.to_compressed()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "0x{}", hex::encode(self.to_compressed()))
            }
        }

        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.to_compressed().hash(state);
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                hexser::serialize_bytes(&self.to_compressed(), s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let bytes = hexser::deserialize_array::<D, $len>(d)?;
                Self::from_compressed(&bytes).map_err(serde::de::Error::custom)
            }
        }
    };
}

point_type!(
    /// A point of G1 (identity hashes, partial and full application keys).
    G1Point, blst_p1_affine, blst_p1, 48,
    compress = blst_p1_affine_compress, uncompress = blst_p1_uncompress,
    in_group = blst_p1_affine_in_g1, is_inf = blst_p1_affine_is_inf,
    from_affine = blst_p1_from_affine, to_affine = blst_p1_to_affine,
    add = blst_p1_add_or_double, add_affine = blst_p1_add_or_double_affine,
    cneg = blst_p1_cneg, mult = blst_p1_mult,
    generator = blst_p1_generator, hash = blst_hash_to_g1,
    pippenger = blst_p1s_mult_pippenger, scratch_sizeof = blst_p1s_mult_pippenger_scratch_sizeof
);

point_type!(
    /// A point of G2 (master public key, VSS commitments, IBE ciphertext `U`).
    G2Point, blst_p2_affine, blst_p2, 96,
    compress = blst_p2_affine_compress, uncompress = blst_p2_uncompress,
    in_group = blst_p2_affine_in_g2, is_inf = blst_p2_affine_is_inf,
    from_affine = blst_p2_from_affine, to_affine = blst_p2_to_affine,
    add = blst_p2_add_or_double, add_affine = blst_p2_add_or_double_affine,
    cneg = blst_p2_cneg, mult = blst_p2_mult,
    generator = blst_p2_generator, hash = blst_hash_to_g2,
    pippenger = blst_p2s_mult_pippenger, scratch_sizeof = blst_p2s_mult_pippenger_scratch_sizeof
);

impl G1Point {
    /// The 128-byte uncompressed encoding of the EIP-2537 BLS12-381 precompiles:
    /// `x ‖ y`, each a 64-byte big-endian word (16 zero bytes, then 48); the identity
    /// is all zeros. Lets a contract check fraud proofs over the same points.
    pub fn to_eip2537(&self) -> [u8; 128] {
        let mut out = [0u8; 128];
        if self.is_identity() {
            return out;
        }
        let mut raw = [0u8; 96];
        // SAFETY: writes exactly 96 bytes.
        unsafe { blst_p1_affine_serialize(raw.as_mut_ptr(), &self.0) };
        out[16..64].copy_from_slice(&raw[..48]);
        out[80..128].copy_from_slice(&raw[48..]);
        out
    }

    /// Decodes the EIP-2537 form with the same strictness as the compressed decoder
    /// (padding zero, coordinates reduced, on curve, in G1, not the identity).
    pub fn from_eip2537(bytes: &[u8]) -> Result<Self, CryptoError> {
        let raw: [u8; 96] = eip2537_words::<2, 96>(bytes, &[0, 1])?;
        let mut p = blst_p1_affine::default();
        // SAFETY: reads 96 bytes, writes one affine point.
        let rc = unsafe { blst_p1_deserialize(&mut p, raw.as_ptr()) };
        finish_eip2537(
            Self(p),
            rc,
            |q| q.to_eip2537() == *bytes,
            |q| unsafe {
                // SAFETY: reads one affine point.
                blst_p1_affine_in_g1(&q.0)
            },
        )
    }
}

/// `h2·r / 13²`, big-endian (`13²` divides the cofactor `h2`): multiplying a curve
/// point by it leaves only its component in the 13-part of the group.
const TO_13_PART: &str = "04005449cda731a7136c440a0c65b728ba1c1fa6b6708356f3b9bdc84396cab33907d71557a7d33677f5d45f7cedb8cfdac10ff1fc5b48d6461e907737d78e96568f2d18c750b4b3ca5c33c3fd8ff8a70629888281914529f4e3380941cfdd";

impl G2Point {
    /// `a + b` in projective form.
    pub(crate) fn add_projective(a: &blst_p2, b: &blst_p2) -> blst_p2 {
        let mut out = blst_p2::default();
        // SAFETY: valid projective inputs; add_or_double handles a == b.
        unsafe { blst_p2_add_or_double(&mut out, a, b) };
        out
    }

    /// Many projective points to affine with one shared inversion.
    pub(crate) fn batch_from_projective(points: &[blst_p2]) -> Vec<Self> {
        if points.is_empty() {
            return Vec::new();
        }
        let mut out = vec![blst_p2_affine::default(); points.len()];
        let ptrs: [*const blst_p2; 2] = [points.as_ptr(), std::ptr::null()];
        // SAFETY: with a null second pointer blst reads `len` consecutive
        // projective points and writes as many affine ones (the identity as
        // all zeros).
        unsafe { blst_p2s_to_affine(out.as_mut_ptr(), ptrs.as_ptr(), points.len()) };
        out.into_iter().map(Self).collect()
    }

    /// `k·G` for the generator `G`, constant time in `k`, from a table of the
    /// generator's multiples built on first use (see [`FixedBase`]).
    pub fn mul_generator(k: &Scalar) -> Self {
        FixedBase::generator().mul(k)
    }

    /// The 256-byte uncompressed EIP-2537 encoding: `x.c0 ‖ x.c1 ‖ y.c0 ‖ y.c1`, each
    /// a 64-byte word. Note the order differs from the ZCash serialization, which puts
    /// `c1` first. The identity is all zeros.
    pub fn to_eip2537(&self) -> [u8; 256] {
        let mut out = [0u8; 256];
        if self.is_identity() {
            return out;
        }
        let mut raw = [0u8; 192];
        // SAFETY: writes exactly 192 bytes: x.c1, x.c0, y.c1, y.c0.
        unsafe { blst_p2_affine_serialize(raw.as_mut_ptr(), &self.0) };
        for (word, part) in [1usize, 0, 3, 2].into_iter().enumerate() {
            out[word * 64 + 16..word * 64 + 64].copy_from_slice(&raw[part * 48..part * 48 + 48]);
        }
        out
    }

    /// Decodes the EIP-2537 form with the same strictness as the compressed decoder.
    pub fn from_eip2537(bytes: &[u8]) -> Result<Self, CryptoError> {
        let p = Self::from_eip2537_on_curve(bytes)?;
        if !p.in_subgroup() {
            return Err(CryptoError::PointNotInSubgroup);
        }
        Ok(p)
    }

    /// Decodes the EIP-2537 form like [`G2Point::from_eip2537`] — padding zero,
    /// coordinates reduced, canonical, on the curve, not the identity — but **without
    /// the subgroup check**, which costs about three times a point's share of a large
    /// multi-scalar multiplication. Only for VSS commitments, whose check is deferred
    /// to the aggregate: see [`crate::vss::Commitment::from_eip2537_deferred`]. The
    /// result may lie outside G2 until [`G2Point::in_subgroup`] says otherwise.
    pub fn from_eip2537_on_curve(bytes: &[u8]) -> Result<Self, CryptoError> {
        let raw: [u8; 192] = eip2537_words::<4, 192>(bytes, &[1, 0, 3, 2])?;
        let mut p = blst_p2_affine::default();
        // SAFETY: reads 192 bytes, writes one affine point.
        let rc = unsafe { blst_p2_deserialize(&mut p, raw.as_ptr()) };
        // No re-encoding to compare: `eip2537_words` refused non-zero padding and the
        // three flag bits, and blst refuses a coordinate ≥ p, so these bytes are the
        // point's only encoding. (Re-encoding converted four coordinates out of
        // Montgomery form: a tenth of a session's decoding time at n = 100.)
        if rc != BLST_ERROR::BLST_SUCCESS {
            return Err(map_blst_error(rc));
        }
        Ok(Self(p))
    }

    /// Whether the point lies in the prime-order subgroup (blst's endomorphism test,
    /// exact). Always true for points from the strict decoders or from arithmetic on
    /// such points.
    pub fn in_subgroup(&self) -> bool {
        // SAFETY: reads one affine point.
        unsafe { blst_p2_affine_in_g2(&self.0) }
    }

    /// A point of order 13 on the G2 curve, outside the prime-order subgroup. Public
    /// math, exposed for tests and simulations that play a hostile dealer hiding a
    /// torsion component in its commitment; no protocol path produces one.
    pub fn small_order_point() -> Self {
        let m = hex::decode(TO_13_PART).expect("constant is hex");
        // Try compressed x-coordinates 1, 2, … until one is on the curve; blst's
        // uncompress does not test the subgroup, so the point is generic.
        for x in 1u8..=u8::MAX {
            let mut enc = [0u8; 96];
            enc[0] = 0x80;
            enc[95] = x;
            let mut a = blst_p2_affine::default();
            // SAFETY: reads 96 bytes, writes one affine point.
            if unsafe { blst_p2_uncompress(&mut a, enc.as_ptr()) } != BLST_ERROR::BLST_SUCCESS {
                continue;
            }
            let mut q = mul_generic(&Self(a).projective(), &m);
            let q13 = mul_generic(&q, &[13]);
            // SAFETY: reads one projective point.
            if !unsafe { blst_p2_is_inf(&q13) } {
                q = q13; // the component had order 169
            }
            let q = Self::from_projective(&q);
            if !q.is_identity() {
                return q;
            }
        }
        unreachable!("a curve point with a 13-torsion component exists among 255 tries")
    }
}

/// A scalar from 32 little-endian bytes below r (the tables' tests write scalars by
/// their bits).
#[cfg(test)]
fn scalar_from_le(le: [u8; 32]) -> Scalar {
    let mut be = le;
    be.reverse();
    Scalar::from_bytes_be(&be).expect("below r")
}

/// `k·p` by plain double-and-add over big-endian `k` of any length: correct for every
/// curve point (blst's fast multiplications assume the prime-order subgroup).
/// Variable time; public inputs only.
fn mul_generic(p: &blst_p2, k: &[u8]) -> blst_p2 {
    let mut acc = blst_p2::default();
    for byte in k {
        for bit in (0..8).rev() {
            let prev = acc;
            // SAFETY: valid projective inputs.
            unsafe { blst_p2_double(&mut acc, &prev) };
            if byte >> bit & 1 == 1 {
                let prev = acc;
                // SAFETY: valid projective inputs; add_or_double handles P == Q.
                unsafe { blst_p2_add_or_double(&mut acc, &prev, p) };
            }
        }
    }
    acc
}

/// Checks the 64-byte words of an EIP-2537 encoding (16 zero bytes of padding, a
/// 48-byte value whose top three bits are clear) and lays the values out in blst's
/// uncompressed ZCash order `order` (word indices).
fn eip2537_words<const W: usize, const N: usize>(
    bytes: &[u8],
    order: &[usize],
) -> Result<[u8; N], CryptoError> {
    if bytes.len() != W * 64 {
        return Err(CryptoError::InvalidLength {
            expected: W * 64,
            got: bytes.len(),
        });
    }
    if bytes.iter().all(|b| *b == 0) {
        return Err(CryptoError::PointAtInfinity);
    }
    let mut raw = [0u8; N];
    for (slot, &word) in order.iter().enumerate() {
        let w = &bytes[word * 64..word * 64 + 64];
        if w[..16].iter().any(|b| *b != 0) || w[16] & 0xe0 != 0 {
            return Err(CryptoError::InvalidEncoding(
                "EIP-2537 word not a reduced field element",
            ));
        }
        raw[slot * 48..slot * 48 + 48].copy_from_slice(&w[16..]);
    }
    Ok(raw)
}

fn finish_eip2537<P>(
    p: P,
    rc: BLST_ERROR,
    canonical: impl Fn(&P) -> bool,
    in_group: impl Fn(&P) -> bool,
) -> Result<P, CryptoError> {
    if rc != BLST_ERROR::BLST_SUCCESS {
        return Err(map_blst_error(rc));
    }
    if !canonical(&p) {
        return Err(CryptoError::InvalidEncoding("non-canonical point encoding"));
    }
    if !in_group(&p) {
        return Err(CryptoError::PointNotInSubgroup);
    }
    Ok(p)
}

/// Whether `Π e(p_i, q_i) == 1`, with one shared final exponentiation.
pub fn pairing_product_is_one(pairs: &[(G1Point, G2Point)]) -> bool {
    if pairs.is_empty() {
        return true;
    }
    let (ps, qs): (Vec<blst_p1_affine>, Vec<blst_p2_affine>) =
        pairs.iter().map(|(p, q)| (p.0, q.0)).unzip();
    let gt = blst_fp12::miller_loop_n(&qs, &ps).final_exp();
    // SAFETY: reads one fp12 element.
    unsafe { blst_fp12_is_one(&gt) }
}

/// `e(p, q)` serialized as 576 big-endian bytes in blst's `blst_bendian_from_fp12`
/// order: the IKM of the IBE key derivation (see `docs/wire-format.md`).
pub fn pairing_bytes(p: &G1Point, q: &G2Point) -> Zeroizing<[u8; 576]> {
    let gt = blst_fp12::miller_loop(&q.0, &p.0).final_exp();
    let mut out = Zeroizing::new([0u8; 576]);
    // SAFETY: writes exactly 576 bytes.
    unsafe { blst_bendian_from_fp12(out.as_mut_ptr(), &gt) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn small_order_point_is_on_the_curve_outside_g2_and_of_order_13() {
        let q = G2Point::small_order_point();
        assert!(!q.is_identity());
        assert!(!q.in_subgroup());
        assert!(G2Point::generator().in_subgroup());
        let enc = q.to_eip2537();
        assert_eq!(G2Point::from_eip2537_on_curve(&enc).unwrap(), q);
        assert_eq!(
            G2Point::from_eip2537(&enc),
            Err(CryptoError::PointNotInSubgroup)
        );
        assert!(G2Point::from_compressed(&q.to_compressed()).is_err());
        let mut k = G2Point::identity();
        for i in 1..=13 {
            k = k.add(&q);
            assert_eq!(k.is_identity(), i == 13, "[{i}]Q");
        }
        // Adding it to a G2 point leaves G2, and the decoders see the difference.
        let p = G2Point::generator().add(&q);
        assert!(!p.in_subgroup());
        assert!(G2Point::from_eip2537_on_curve(&p.to_eip2537()).is_ok());
        assert!(G2Point::from_eip2537(&p.to_eip2537()).is_err());
    }

    #[test]
    fn serial_msm_matches_the_pooled_one() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let g = G2Point::generator();
        for n in [1usize, 2, 7, 31, 32, 67, 100] {
            let pts: Vec<G2Point> = (0..n).map(|_| g.mul(&Scalar::random(&mut rng))).collect();
            let sc: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut rng)).collect();
            assert_eq!(
                G2Point::msm_serial(&pts, &sc).unwrap(),
                G2Point::msm(&pts, &sc).unwrap(),
                "n = {n}"
            );
        }
        assert!(G2Point::msm_serial(&[], &[]).unwrap().is_identity());
        assert!(G2Point::msm_serial(&[g], &[]).is_err());
    }

    #[test]
    fn on_curve_decoder_keeps_the_other_checks() {
        let g = G2Point::generator().to_eip2537();
        let mut off = g;
        off[255] ^= 1; // y changed: off the curve
        assert_eq!(
            G2Point::from_eip2537_on_curve(&off),
            Err(CryptoError::PointNotOnCurve)
        );
        let mut padded = g;
        padded[0] = 1;
        assert!(G2Point::from_eip2537_on_curve(&padded).is_err());
        assert_eq!(
            G2Point::from_eip2537_on_curve(&[0u8; 256]),
            Err(CryptoError::PointAtInfinity)
        );
        assert!(G2Point::from_eip2537_on_curve(&g[..255]).is_err());
    }

    #[test]
    fn generator_roundtrip_and_identity() {
        let g = G2Point::generator();
        assert_eq!(G2Point::from_compressed(&g.to_compressed()).unwrap(), g);
        let inf = G2Point::identity().to_compressed();
        assert_eq!(inf[0], 0xc0);
        assert_eq!(
            G2Point::from_compressed(&inf),
            Err(CryptoError::PointAtInfinity)
        );
        assert!(
            G2Point::from_compressed_allow_identity(&inf)
                .unwrap()
                .is_identity()
        );
        let inf1 = G1Point::identity().to_compressed();
        assert_eq!(
            G1Point::from_compressed(&inf1),
            Err(CryptoError::PointAtInfinity)
        );
    }

    #[test]
    fn rejects_infinity_with_stray_bits_and_uncompressed_flag() {
        let mut inf = G1Point::identity().to_compressed();
        inf[0] |= 0x20; // sign bit on infinity
        assert!(G1Point::from_compressed_allow_identity(&inf).is_err());
        let mut g = G1Point::generator().to_compressed();
        g[0] &= 0x7f; // clear the compression flag
        assert!(G1Point::from_compressed(&g).is_err());
        let mut inf = G1Point::identity().to_compressed();
        inf[47] = 1; // junk after the infinity flag
        assert!(G1Point::from_compressed_allow_identity(&inf).is_err());
    }

    #[test]
    fn rejects_x_not_reduced() {
        // x = p (the base-field modulus) with the compression flag set.
        let p = hex::decode(
            "1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab",
        )
        .unwrap();
        let mut b = [0u8; 48];
        b.copy_from_slice(&p);
        b[0] |= 0x80;
        assert!(G1Point::from_compressed(&b).is_err());
    }

    /// Finds an x whose curve point exists but lies outside G1 (the cofactor of G1 is
    /// large, so almost every curve point qualifies), proving the subgroup check runs.
    #[test]
    fn rejects_points_outside_subgroup() {
        let mut found_g1 = false;
        for x in 1u8..=50 {
            let mut b = [0u8; 48];
            b[0] = 0x80;
            b[47] = x;
            match G1Point::from_compressed(&b) {
                Err(CryptoError::PointNotInSubgroup) => found_g1 = true,
                Err(CryptoError::PointNotOnCurve) | Err(CryptoError::InvalidEncoding(_)) => {}
                other => panic!("unexpected decode of small x: {other:?}"),
            }
        }
        assert!(found_g1, "no off-subgroup G1 point among small x");
        let mut found_g2 = false;
        for x in 1u8..=50 {
            let mut b = [0u8; 96];
            b[0] = 0x80;
            b[95] = x;
            if let Err(CryptoError::PointNotInSubgroup) = G2Point::from_compressed(&b) {
                found_g2 = true;
            }
        }
        assert!(found_g2, "no off-subgroup G2 point among small x");
    }

    #[test]
    fn msm_matches_naive_including_identity_and_zero() {
        // Σ s_i·P_i one multiplication at a time.
        macro_rules! naive_msm {
            ($t:ty, $points:expr, $scalars:expr) => {
                <$t>::sum(
                    $points
                        .iter()
                        .zip(&$scalars)
                        .map(|(p, s)| p.mul(s))
                        .collect::<Vec<_>>()
                        .iter(),
                )
            };
        }
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        for n in [1usize, 2, 5, 31, 33, 70] {
            let mut points: Vec<G2Point> = (0..n)
                .map(|_| G2Point::generator().mul(&Scalar::random(&mut rng)))
                .collect();
            let mut scalars: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut rng)).collect();
            points[0] = G2Point::identity();
            if n > 1 {
                scalars[1] = Scalar::zero();
            }
            let naive = naive_msm!(G2Point, points, scalars);
            assert_eq!(G2Point::msm(&points, &scalars).unwrap(), naive, "n = {n}");
        }
        // G1: the serial path (below 32 points) and the pooled one.
        for n in [1usize, 5, 31, 33] {
            let points: Vec<G1Point> = (0..n)
                .map(|_| G1Point::generator().mul(&Scalar::random(&mut rng)))
                .collect();
            let scalars: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut rng)).collect();
            let naive = naive_msm!(G1Point, points, scalars);
            assert_eq!(
                G1Point::msm(&points, &scalars).unwrap(),
                naive,
                "G1, n = {n}"
            );
            assert_eq!(
                G1Point::msm_serial(&points, &scalars).unwrap(),
                naive,
                "G1, n = {n}"
            );
        }
        assert!(G1Point::msm(&[], &[]).unwrap().is_identity());
        assert!(G1Point::msm(&[G1Point::generator()], &[]).is_err());
    }

    #[test]
    fn pairing_bilinear() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let a = Scalar::random(&mut rng);
        let b = Scalar::random(&mut rng);
        let p = G1Point::generator().mul(&a);
        let q = G2Point::generator().mul(&b);
        let pq = G1Point::generator().mul(&(&a * &b));
        assert_eq!(
            *pairing_bytes(&p, &q),
            *pairing_bytes(&pq, &G2Point::generator())
        );
        assert!(pairing_product_is_one(&[
            (p, q),
            (pq.neg(), G2Point::generator())
        ]));
        assert!(!pairing_product_is_one(&[
            (p, q),
            (pq, G2Point::generator())
        ]));
    }

    #[test]
    fn eip2537_generator_layout() {
        // The G2 generator as EIP-2537 writes it (x.c0, x.c1, y.c0, y.c1).
        let words = [
            "024aa2b2f08f0a91260805272dc51051c6e47ad4fa403b02b4510b647ae3d1770bac0326a805bbefd48056c8c121bdb8",
            "13e02b6052719f607dacd3a088274f65596bd0d09920b61ab5da61bbdc7f5049334cf11213945d57e5ac7d055d042b7e",
            "0ce5d527727d6e118cc9cdc6da2e351aadfd9baa8cbdd3a76d429a695160d12c923ac9cc3baca289e193548608b82801",
            "0606c4a02ea734cc32acd2b02bc28b99cb3e287e85a763af267492ab572e99ab3f370d275cec1da1aaa9075ff05f79be",
        ];
        let enc = G2Point::generator().to_eip2537();
        for (i, w) in words.iter().enumerate() {
            assert_eq!(&enc[i * 64..i * 64 + 16], &[0u8; 16]);
            assert_eq!(hex::encode(&enc[i * 64 + 16..i * 64 + 64]), *w, "word {i}");
        }
        let g1 = G1Point::generator().to_eip2537();
        assert_eq!(
            hex::encode(&g1[16..64]),
            "17f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb"
        );
        assert_eq!(G2Point::identity().to_eip2537(), [0u8; 256]);
    }

    #[test]
    fn eip2537_decoding_is_strict() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let p = G2Point::generator().mul(&Scalar::random(&mut rng));
        let e = p.to_eip2537();
        assert_eq!(G2Point::from_eip2537(&e).unwrap(), p);
        let q = G1Point::generator().mul(&Scalar::random(&mut rng));
        assert_eq!(G1Point::from_eip2537(&q.to_eip2537()).unwrap(), q);
        assert_eq!(
            G2Point::from_eip2537(&[0u8; 256]),
            Err(CryptoError::PointAtInfinity)
        );
        assert!(G2Point::from_eip2537(&e[..255]).is_err());
        let mut bad = e;
        bad[3] = 1; // padding
        assert!(G2Point::from_eip2537(&bad).is_err());
        let mut bad = e;
        bad[255] ^= 1; // y no longer on the curve
        assert!(G2Point::from_eip2537(&bad).is_err());
        // Swapping c0 and c1 of x (the ZCash order) must not decode to the same point.
        let mut swapped = e;
        swapped[..64].copy_from_slice(&e[64..128]);
        swapped[64..128].copy_from_slice(&e[..64]);
        assert_ne!(G2Point::from_eip2537(&swapped).ok(), Some(p));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn g1_encode_decode(seed in any::<u64>()) {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let p = G1Point::generator().mul(&Scalar::random(&mut rng));
            prop_assert_eq!(G1Point::from_compressed(&p.to_compressed()).unwrap(), p);
            let json = serde_json::to_string(&p).unwrap();
            prop_assert_eq!(serde_json::from_str::<G1Point>(&json).unwrap(), p);
        }

        #[test]
        fn g2_encode_decode(seed in any::<u64>()) {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let p = G2Point::generator().mul(&Scalar::random(&mut rng));
            prop_assert_eq!(G2Point::from_compressed(&p.to_compressed()).unwrap(), p);
        }

        #[test]
        fn decode_random_bytes_never_panics(b1 in any::<[u8; 48]>(), b2 in proptest::collection::vec(any::<u8>(), 96)) {
            if let Ok(p) = G1Point::from_compressed(&b1) {
                prop_assert_eq!(p.to_compressed(), b1);
            }
            let arr: [u8; 96] = b2.clone().try_into().unwrap();
            if let Ok(p) = G2Point::from_compressed(&arr) {
                prop_assert_eq!(p.to_compressed(), arr);
            }
            let _ = G2Point::from_slice(&b2[..50]);
        }
    }
}
