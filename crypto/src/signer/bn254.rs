//! BLS signatures on BN254 in EigenLayer's convention: signature in G1, public key in
//! G2 with a G1 "twin", message hashed to G1 by the try-and-increment of `BN254.sol`.
//! Points are encoded as the EVM precompiles take them, so a contract can verify a
//! forwarded signature with `ecPairing` (EIP-197).

use ark_bn254::{Bn254, Fq, Fq2, Fr, G1Affine, G1Projective, G2Affine};
use ark_ec::pairing::Pairing;
use ark_ec::scalar_mul::glv::GLVConfig;
use ark_ec::{AdditiveGroup, AffineRepr, CurveGroup, VariableBaseMSM};
use ark_ff::{BigInteger, Field, One, PrimeField, UniformRand, Zero};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{
    OperatorPublicKey, OperatorSignature, OperatorSigner, SignatureError, SignatureScheme,
};

fn fq_to_be(x: &Fq) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&x.into_bigint().to_bytes_be());
    out
}

/// A base-field element from a 32-byte word, refusing values `≥ p` (the precompiles
/// refuse them too; accepting them would make encodings malleable).
fn fq_from_be(b: &[u8]) -> Result<Fq, SignatureError> {
    let x = Fq::from_be_bytes_mod_order(b);
    if fq_to_be(&x) != b {
        return Err(SignatureError::InvalidEncoding(
            "field element not below the modulus",
        ));
    }
    Ok(x)
}

/// G1 as 64 bytes `X ‖ Y`.
pub fn g1_to_evm(p: &G1Affine) -> [u8; 64] {
    let mut out = [0u8; 64];
    if let Some((x, y)) = p.xy() {
        out[..32].copy_from_slice(&fq_to_be(&x));
        out[32..].copy_from_slice(&fq_to_be(&y));
    }
    out
}

/// G2 as 128 bytes in EIP-197 order `X.c1 ‖ X.c0 ‖ Y.c1 ‖ Y.c0`.
pub fn g2_to_evm(p: &G2Affine) -> [u8; 128] {
    let mut out = [0u8; 128];
    if let Some((x, y)) = p.xy() {
        out[..32].copy_from_slice(&fq_to_be(&x.c1));
        out[32..64].copy_from_slice(&fq_to_be(&x.c0));
        out[64..96].copy_from_slice(&fq_to_be(&y.c1));
        out[96..].copy_from_slice(&fq_to_be(&y.c0));
    }
    out
}

/// Strict G1 decoding: reduced coordinates, on the curve, not the identity.
pub fn g1_from_evm(b: &[u8]) -> Result<G1Affine, SignatureError> {
    if b.len() != 64 {
        return Err(SignatureError::InvalidLength {
            expected: 64,
            got: b.len(),
        });
    }
    let (x, y) = (fq_from_be(&b[..32])?, fq_from_be(&b[32..])?);
    if x.is_zero() && y.is_zero() {
        return Err(SignatureError::InvalidPoint("point at infinity"));
    }
    let p = G1Affine::new_unchecked(x, y);
    // G1 of BN254 has cofactor 1: on the curve means in the group.
    if !p.is_on_curve() {
        return Err(SignatureError::InvalidPoint("not on the curve"));
    }
    Ok(p)
}

/// Strict G2 decoding: reduced coordinates, on the twist, in the prime-order subgroup
/// (the twist has a large cofactor; skipping this check breaks the pairing argument),
/// not the identity.
pub fn g2_from_evm(b: &[u8]) -> Result<G2Affine, SignatureError> {
    if b.len() != 128 {
        return Err(SignatureError::InvalidLength {
            expected: 128,
            got: b.len(),
        });
    }
    let x = Fq2::new(fq_from_be(&b[32..64])?, fq_from_be(&b[..32])?);
    let y = Fq2::new(fq_from_be(&b[96..])?, fq_from_be(&b[64..96])?);
    if x.is_zero() && y.is_zero() {
        return Err(SignatureError::InvalidPoint("point at infinity"));
    }
    let p = G2Affine::new_unchecked(x, y);
    if !p.is_on_curve() {
        return Err(SignatureError::InvalidPoint("not on the curve"));
    }
    if !p.is_in_correct_subgroup_assuming_on_curve() {
        return Err(SignatureError::InvalidPoint(
            "not in the prime-order subgroup",
        ));
    }
    Ok(p)
}

/// `hashToG1` of EigenLayer's `BN254.sol`: `x = hash mod p`, then increment `x` until
/// `β = x³ + 3` is a square, returning `(x, β^((p+1)/4))` — that exact root, as the
/// contract does.
pub fn hash_to_g1(msg_hash: &[u8; 32]) -> G1Affine {
    let exp = sqrt_exponent();
    let mut x = Fq::from_be_bytes_mod_order(msg_hash);
    let three = Fq::from(3u64);
    loop {
        let beta = x * x * x + three;
        let y = beta.pow(exp);
        if y * y == beta {
            return G1Affine::new_unchecked(x, y);
        }
        x += Fq::one();
    }
}

/// `(p + 1) / 4` as little-endian limbs.
fn sqrt_exponent() -> <Fq as PrimeField>::BigInt {
    let mut e = Fq::MODULUS;
    e.add_with_carry(&<Fq as PrimeField>::BigInt::from(1u64));
    e.div2();
    e.div2();
    e
}

/// A BN254 secret key. Zeroized on drop, redacted in `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Bn254SecretKey(Fr);

impl Bn254SecretKey {
    /// A fresh random non-zero key.
    pub fn random<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Self {
        loop {
            let k = Fr::rand(rng);
            if !k.is_zero() {
                return Self(k);
            }
        }
    }

    /// Decodes 32 big-endian bytes, refusing zero and values `≥ r`.
    pub fn from_bytes_be(b: &[u8; 32]) -> Result<Self, SignatureError> {
        let k = Fr::from_be_bytes_mod_order(b);
        let back = Zeroizing::new(k.into_bigint().to_bytes_be());
        if back.as_slice() != b || k.is_zero() {
            return Err(SignatureError::InvalidEncoding("secret key not in [1, r)"));
        }
        Ok(Self(k))
    }

    /// The 32-byte big-endian encoding.
    pub fn to_bytes_be(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&self.0.into_bigint().to_bytes_be());
        out
    }

    /// The matching public key.
    pub fn public_key(&self) -> Bn254PublicKey {
        Bn254PublicKey {
            g1: (G1Affine::generator() * self.0).into_affine(),
            g2: (G2Affine::generator() * self.0).into_affine(),
        }
    }
}

impl std::fmt::Debug for Bn254SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bn254SecretKey(<redacted>)")
    }
}

/// A BN254 public key: the key in G2 and its G1 twin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bn254PublicKey {
    /// `sk·G1`.
    pub g1: G1Affine,
    /// `sk·G2`.
    pub g2: G2Affine,
}

impl Bn254PublicKey {
    /// Whether `g1` and `g2` share a discrete log: `e(g1, G2) == e(G1, g2)`. Checked at
    /// registration so the G1 form can be aggregated safely.
    pub fn verify_twin(&self) -> bool {
        Bn254::multi_pairing(
            [self.g1, -G1Affine::generator()],
            [G2Affine::generator(), self.g2],
        )
        .is_zero()
    }

    /// Checks a signature: `e(σ, −G2) · e(H(m), pk) == 1`.
    pub fn verify(&self, msg_hash: &[u8; 32], sig: &Bn254Signature) -> Result<(), SignatureError> {
        let h = hash_to_g1(msg_hash);
        let ml = Bn254::multi_miller_loop([sig.0, h], [neg_g2_prepared(), self.g2.into()]);
        if Bn254::final_exponentiation(ml).is_some_and(|r| r.is_zero()) {
            Ok(())
        } else {
            Err(SignatureError::Invalid)
        }
    }

    /// `g1 (64 B) ‖ g2 (128 B)` in EVM layout.
    pub fn to_bytes(&self) -> [u8; 192] {
        let mut out = [0u8; 192];
        out[..64].copy_from_slice(&g1_to_evm(&self.g1));
        out[64..].copy_from_slice(&g2_to_evm(&self.g2));
        out
    }

    /// Strict decoding of [`Bn254PublicKey::to_bytes`], including the twin check.
    pub fn from_bytes(b: &[u8]) -> Result<Self, SignatureError> {
        if b.len() != 192 {
            return Err(SignatureError::InvalidLength {
                expected: 192,
                got: b.len(),
            });
        }
        let pk = Self {
            g1: g1_from_evm(&b[..64])?,
            g2: g2_from_evm(&b[64..])?,
        };
        if !pk.verify_twin() {
            return Err(SignatureError::InvalidPoint("G1 and G2 keys differ"));
        }
        Ok(pk)
    }
}

impl Serialize for Bn254PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::hexser::serialize_bytes(&self.to_bytes(), s)
    }
}

impl<'de> Deserialize<'de> for Bn254PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let b = crate::hexser::deserialize_array::<D, 192>(d)?;
        Self::from_bytes(&b).map_err(serde::de::Error::custom)
    }
}

/// A BN254 signature: a G1 point, 64 bytes in EVM layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bn254Signature(pub G1Affine);

impl Bn254Signature {
    /// `X ‖ Y`.
    pub fn to_bytes(&self) -> [u8; 64] {
        g1_to_evm(&self.0)
    }

    /// Strict decoding.
    pub fn from_slice(b: &[u8]) -> Result<Self, SignatureError> {
        g1_from_evm(b).map(Self)
    }
}

impl Serialize for Bn254Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::hexser::serialize_bytes(&self.to_bytes(), s)
    }
}

impl<'de> Deserialize<'de> for Bn254Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let b = crate::hexser::deserialize_array::<D, 64>(d)?;
        Self::from_slice(&b).map_err(serde::de::Error::custom)
    }
}

/// A public key with its G2 line coefficients precomputed (a third of a pairing's
/// cost), for verifying many signatures by the same key.
#[derive(Clone, Debug)]
pub struct PreparedBn254Key(<Bn254 as Pairing>::G2Prepared);

impl Bn254PublicKey {
    /// Precomputes the Miller-loop lines of the G2 key.
    pub fn prepare(&self) -> PreparedBn254Key {
        PreparedBn254Key(self.g2.into())
    }
}

fn neg_g2_prepared() -> <Bn254 as Pairing>::G2Prepared {
    // −G2 is prepared once per process.
    static NEG_G2: std::sync::OnceLock<<Bn254 as Pairing>::G2Prepared> = std::sync::OnceLock::new();
    NEG_G2
        .get_or_init(|| (-G2Affine::generator()).into())
        .clone()
}

/// Verifies many signatures at once: `items` are `(index into keys, message hash,
/// signature)`. With independent random weights `r_i` it checks
///
/// `e(Σ r_i·σ_i, −G2) · Π_k e(Σ_{i signed by k} r_i·H(m_i), pk_k) == 1`
///
/// — one Miller loop per distinct key plus one, and a single final exponentiation,
/// instead of two Miller loops and a final exponentiation per signature. If every
/// signature is valid the product is one; if any is not, it is one with probability
/// at most 2^-128 over the weights (G1 of BN254 has prime order and the signatures
/// were decoded onto it). `false` says only that some item is invalid: check them one
/// by one to find which. An index out of range is invalid.
///
/// Each weight is drawn as `r = k1 + k2·λ` with independent uniform 64-bit `k1`, `k2`
/// and `λ` the eigenvalue of G1's endomorphism `φ(x, y) = (βx, y) = λ·(x, y)` (GLV).
/// The map `(k1, k2) ↦ r` is injective: a collision would be a non-zero vector of the
/// GLV lattice `{(a, b) : a + b·λ ≡ 0 mod r}` with both coordinates below 2^64, and
/// that lattice's shortest vectors have length 2^126.8 (its Gauss-reduced basis is
/// arkworks' `SCALAR_DECOMP_COEFFS`). So the weights take 2^128 distinct values,
/// uniformly, which is what the 2^-128 bound needs, while `r·P = k1·P + k2·φ(P)`
/// costs 64 doublings instead of 128. (arkworks' own GLV multiplication first
/// decomposes a full scalar with big-integer division; drawing the halves directly
/// avoids that.)
pub fn verify_batch<R: RngCore + CryptoRng + ?Sized>(
    keys: &[PreparedBn254Key],
    items: &[(usize, [u8; 32], Bn254Signature)],
    rng: &mut R,
) -> bool {
    if items.is_empty() {
        return true;
    }
    if items.iter().any(|(k, _, _)| *k >= keys.len()) {
        return false;
    }
    let weights: Vec<(u64, u64)> = items
        .iter()
        .map(|_| {
            let k1 = rng.next_u64() | 1; // r ≠ 0
            (k1, rng.next_u64())
        })
        .collect();
    // Σ r_i·σ_i as one MSM over (σ_i, φ(σ_i)) with 64-bit scalars.
    let mut sig_points = Vec::with_capacity(2 * items.len());
    let mut sig_scalars = Vec::with_capacity(2 * items.len());
    for ((_, _, s), (k1, k2)) in items.iter().zip(&weights) {
        sig_points.push(s.0);
        sig_points.push(endomorphism(&s.0));
        sig_scalars.push(Fr::from(*k1));
        sig_scalars.push(Fr::from(*k2));
    }
    let sig_sum = G1Projective::msm(&sig_points, &sig_scalars).expect("lengths match");
    let mut per_key: std::collections::BTreeMap<usize, G1Projective> = Default::default();
    for ((k, h, _), (k1, k2)) in items.iter().zip(&weights) {
        *per_key.entry(*k).or_default() += mul_glv_halves(&hash_to_g1(h), *k1, *k2);
    }
    let mut g1 = Vec::with_capacity(per_key.len() + 1);
    let mut g2 = Vec::with_capacity(per_key.len() + 1);
    g1.push(sig_sum.into_affine());
    g2.push(neg_g2_prepared());
    let sums: Vec<G1Projective> = per_key.values().copied().collect();
    g1.extend(G1Projective::normalize_batch(&sums));
    g2.extend(per_key.keys().map(|k| keys[*k].0.clone()));
    let ml = Bn254::multi_miller_loop(g1, g2);
    Bn254::final_exponentiation(ml).is_some_and(|r| r.is_zero())
}

/// `φ(x, y) = (βx, y)`, which is `λ·(x, y)` on G1.
fn endomorphism(p: &G1Affine) -> G1Affine {
    <ark_bn254::g1::Config as GLVConfig>::endomorphism_affine(p)
}

/// `(k1 + k2·λ)·P = k1·P + k2·φ(P)` by one joint double-and-add over 64 bits
/// (Shamir's trick). Variable time: for the verifier's public-after-the-fact batch
/// weights only. Written here because arkworks offers GLV only for full scalars
/// (decomposed by big-integer division) and its short-scalar multiplication does not
/// use the endomorphism.
fn mul_glv_halves(p: &G1Affine, k1: u64, k2: u64) -> G1Projective {
    let q = endomorphism(p);
    let pq = G1Projective::from(*p) + q;
    let mut acc = G1Projective::zero();
    let top = 64 - (k1 | k2).leading_zeros();
    for i in (0..top).rev() {
        acc.double_in_place();
        match ((k1 >> i) & 1, (k2 >> i) & 1) {
            (1, 1) => acc += pq,
            (1, 0) => acc += p,
            (0, 1) => acc += q,
            _ => {}
        }
    }
    acc
}

/// An operator signer holding a BN254 key.
#[derive(Debug)]
pub struct Bn254Signer {
    sk: Bn254SecretKey,
    pk: Bn254PublicKey,
}

impl Bn254Signer {
    /// Wraps a secret key.
    pub fn new(sk: Bn254SecretKey) -> Self {
        let pk = sk.public_key();
        Self { sk, pk }
    }

    /// The public key.
    pub fn bn254_public_key(&self) -> Bn254PublicKey {
        self.pk
    }

    /// `sk·H(m)`.
    pub fn sign_hash(&self, msg_hash: &[u8; 32]) -> Bn254Signature {
        let p: G1Projective = hash_to_g1(msg_hash) * self.sk.0;
        Bn254Signature(p.into_affine())
    }
}

impl OperatorSigner for Bn254Signer {
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::Bn254
    }
    fn public_key(&self) -> OperatorPublicKey {
        OperatorPublicKey::Bn254(self.pk)
    }
    fn sign(&self, msg_hash: &[u8; 32]) -> OperatorSignature {
        OperatorSignature::Bn254(self.sign_hash(msg_hash))
    }
}

/// The input `BN254.sol`'s `pairing(a1, a2, b1, b2)` hands to the `ecPairing`
/// precompile: per pair, `a.X, a.Y, b.X[0], b.X[1], b.Y[0], b.Y[1]` with
/// `X[0]` the imaginary part.
pub fn pairing_precompile_input(pairs: &[(G1Affine, G2Affine)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(192 * pairs.len());
    for (a, b) in pairs {
        out.extend_from_slice(&g1_to_evm(a));
        out.extend_from_slice(&g2_to_evm(b));
    }
    out
}

/// The precompile input of the contract-side check
/// `pairing(σ, negGeneratorG2(), hashToG1(msgHash), pkG2)`.
pub fn signature_check_precompile_input(
    msg_hash: &[u8; 32],
    pk: &Bn254PublicKey,
    sig: &Bn254Signature,
) -> Vec<u8> {
    pairing_precompile_input(&[
        (sig.0, -G2Affine::generator()),
        (hash_to_g1(msg_hash), pk.g2),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_bn254::Fq12;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use sha3::{Digest, Keccak256};

    #[test]
    fn batch_weights_multiply_by_their_glv_halves() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let lambda = <ark_bn254::g1::Config as GLVConfig>::LAMBDA;
        let p = (G1Affine::generator() * Fr::rand(&mut rng)).into_affine();
        assert_eq!(G1Projective::from(endomorphism(&p)), p * lambda);
        let mut cases = vec![
            (0, 0),
            (1, 0),
            (0, 1),
            (1, 1),
            (u64::MAX, u64::MAX),
            (u64::MAX, 0),
        ];
        cases.extend((0..20).map(|_| (rng.next_u64(), rng.next_u64() >> (rng.next_u32() % 64))));
        for (k1, k2) in cases {
            let r = Fr::from(k1) + Fr::from(k2) * lambda;
            assert_eq!(mul_glv_halves(&p, k1, k2), p * r, "k1 = {k1}, k2 = {k2}");
        }
    }

    fn dec(s: &str) -> [u8; 32] {
        let v = Fq::from_str_radix_dec(s);
        fq_to_be(&v)
    }

    trait FromDec {
        fn from_str_radix_dec(s: &str) -> Self;
    }
    impl FromDec for Fq {
        fn from_str_radix_dec(s: &str) -> Self {
            s.chars().fold(Fq::zero(), |acc, c| {
                acc * Fq::from(10u64) + Fq::from(c.to_digit(10).unwrap() as u64)
            })
        }
    }

    #[test]
    fn batch_verification_accepts_valid_sets_and_refuses_any_bad_item() {
        let mut rng = ChaCha20Rng::seed_from_u64(77);
        let signers: Vec<Bn254Signer> = (0..4)
            .map(|_| Bn254Signer::new(Bn254SecretKey::random(&mut rng)))
            .collect();
        let keys: Vec<PreparedBn254Key> = signers
            .iter()
            .map(|s| s.bn254_public_key().prepare())
            .collect();
        // Several messages per key, as a dealer's commitment and share.
        let items: Vec<(usize, [u8; 32], Bn254Signature)> = (0..11)
            .map(|i| {
                let k = i % 4;
                let h: [u8; 32] = Keccak256::digest([i as u8]).into();
                (k, h, signers[k].sign_hash(&h))
            })
            .collect();
        assert!(verify_batch(&keys, &items, &mut rng));
        assert!(verify_batch(&keys, &[], &mut rng));
        for bad in 0..items.len() {
            // Wrong message, wrong key, another valid signature swapped in.
            let mut wrong_msg = items.clone();
            wrong_msg[bad].1[0] ^= 1;
            assert!(
                !verify_batch(&keys, &wrong_msg, &mut rng),
                "item {bad}: message"
            );
            let mut wrong_key = items.clone();
            wrong_key[bad].0 = (wrong_key[bad].0 + 1) % 4;
            assert!(
                !verify_batch(&keys, &wrong_key, &mut rng),
                "item {bad}: key"
            );
            let mut swapped = items.clone();
            swapped[bad].2 = items[(bad + 1) % items.len()].2;
            assert!(!verify_batch(&keys, &swapped, &mut rng), "item {bad}: swap");
        }
        // Two bad signatures whose errors cancel without weights still fail.
        let mut pair = items.clone();
        let delta = G1Affine::generator();
        pair[0].2 = Bn254Signature((pair[0].2.0 + delta).into_affine());
        pair[4].2 = Bn254Signature((pair[4].2.0 - delta).into_affine());
        assert_eq!((pair[0].0, pair[4].0), (0, 0), "same key: the sums cancel");
        assert!(!verify_batch(&keys, &pair, &mut rng));
        let mut out_of_range = items.clone();
        out_of_range[3].0 = 4;
        assert!(!verify_batch(&keys, &out_of_range, &mut rng));
    }

    /// Independent model of the EIP-197 `ecPairing` precompile.
    fn precompile(input: &[u8]) -> Option<bool> {
        if !input.len().is_multiple_of(192) {
            return None;
        }
        let mut g1s = Vec::new();
        let mut g2s = Vec::new();
        for chunk in input.chunks(192) {
            let w = |i: usize| fq_from_be(&chunk[i * 32..i * 32 + 32]).ok();
            let (ax, ay) = (w(0)?, w(1)?);
            let a = if ax.is_zero() && ay.is_zero() {
                G1Affine::identity()
            } else {
                let p = G1Affine::new_unchecked(ax, ay);
                if !p.is_on_curve() {
                    return None;
                }
                p
            };
            // EIP-197: (a, b) encodes a·i + b, imaginary part first.
            let bx = Fq2::new(w(3)?, w(2)?);
            let by = Fq2::new(w(5)?, w(4)?);
            let b = if bx.is_zero() && by.is_zero() {
                G2Affine::identity()
            } else {
                let p = G2Affine::new_unchecked(bx, by);
                if !p.is_on_curve() || !p.is_in_correct_subgroup_assuming_on_curve() {
                    return None;
                }
                p
            };
            g1s.push(a);
            g2s.push(b);
        }
        Some(Bn254::multi_pairing(g1s, g2s).0 == Fq12::one())
    }

    #[test]
    fn g2_generator_matches_bn254_sol_constants() {
        let enc = g2_to_evm(&G2Affine::generator());
        assert_eq!(
            enc[..32],
            dec("11559732032986387107991004021392285783925812861821192530917403151452391805634")
        );
        assert_eq!(
            enc[32..64],
            dec("10857046999023057135944570762232829481370756359578518086990519993285655852781")
        );
        assert_eq!(
            enc[64..96],
            dec("4082367875863433681332203403145435568316851327593401208105741076214120093531")
        );
        assert_eq!(
            enc[96..],
            dec("8495653923123431417604973247489272438418190587263600148770280649306958101930")
        );
        let neg = g2_to_evm(&-G2Affine::generator());
        assert_eq!(
            neg[64..96],
            dec("17805874995975841540914202342111839520379459829704422454583296818431106115052")
        );
        assert_eq!(
            neg[96..],
            dec("13392588948715843804641432497768002650278120570034223513918757245338268106653")
        );
    }

    #[test]
    fn sqrt_exponent_is_bn254_sol_constant() {
        let e = sqrt_exponent().to_bytes_be();
        assert_eq!(
            hex::encode(e),
            "0c19139cb84c680a6e14116da060561765e05aa45a1c72a34f082305b61f3f52"
        );
    }

    #[test]
    fn hash_to_g1_follows_try_and_increment() {
        for i in 0u8..20 {
            let h: [u8; 32] = Keccak256::digest([i]).into();
            let p = hash_to_g1(&h);
            assert!(p.is_on_curve());
            // x is the first value ≥ hash mod p with a square β, and y = β^((p+1)/4).
            let mut x = Fq::from_be_bytes_mod_order(&h);
            while (x * x * x + Fq::from(3u64)).legendre().is_qnr() {
                x += Fq::one();
            }
            let (px, py) = p.xy().unwrap();
            assert_eq!(px, x);
            assert_eq!(py, (x * x * x + Fq::from(3u64)).pow(sqrt_exponent()));
        }
    }

    #[test]
    fn signature_verifies_natively_and_in_the_precompile_model() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let signer = Bn254Signer::new(Bn254SecretKey::random(&mut rng));
        let pk = signer.bn254_public_key();
        assert!(pk.verify_twin());
        let h: [u8; 32] = Keccak256::digest(b"payload").into();
        let sig = signer.sign_hash(&h);
        assert_eq!(pk.verify(&h, &sig), Ok(()));
        assert_eq!(
            precompile(&signature_check_precompile_input(&h, &pk, &sig)),
            Some(true)
        );
        let other: [u8; 32] = Keccak256::digest(b"other").into();
        assert!(pk.verify(&other, &sig).is_err());
        assert_eq!(
            precompile(&signature_check_precompile_input(&other, &pk, &sig)),
            Some(false)
        );
        let other_pk = Bn254Signer::new(Bn254SecretKey::random(&mut rng)).bn254_public_key();
        assert_eq!(
            precompile(&signature_check_precompile_input(&h, &other_pk, &sig)),
            Some(false)
        );
        // Swapping c0/c1 (the classic encoding mistake) is not the same check.
        let mut input = signature_check_precompile_input(&h, &pk, &sig);
        let (a, b) = (
            input[192 + 64..192 + 96].to_vec(),
            input[192 + 96..192 + 128].to_vec(),
        );
        input[192 + 64..192 + 96].copy_from_slice(&b);
        input[192 + 96..192 + 128].copy_from_slice(&a);
        assert_ne!(precompile(&input), Some(true));
    }

    /// The BLSSignatureChecker form: `pairing(σ + apk·γ, −G2, H(m) + G1·γ, apkG2)`.
    #[test]
    fn eigenlayer_gamma_check_accepts_our_signature() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let signer = Bn254Signer::new(Bn254SecretKey::random(&mut rng));
        let pk = signer.bn254_public_key();
        let h: [u8; 32] = Keccak256::digest(b"msg").into();
        let sig = signer.sign_hash(&h);
        let mut pre = Vec::new();
        pre.extend_from_slice(&h);
        pre.extend_from_slice(&g1_to_evm(&pk.g1));
        pre.extend_from_slice(&g2_to_evm(&pk.g2));
        pre.extend_from_slice(&g1_to_evm(&sig.0));
        let gamma = Fr::from_be_bytes_mod_order(&Keccak256::digest(&pre));
        let a = (sig.0 + pk.g1 * gamma).into_affine();
        let b = (hash_to_g1(&h) + G1Affine::generator() * gamma).into_affine();
        let input = pairing_precompile_input(&[(a, -G2Affine::generator()), (b, pk.g2)]);
        assert_eq!(precompile(&input), Some(true));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]
        #[test]
        fn sign_verify_roundtrip(seed in proptest::prelude::any::<u64>(), h in proptest::prelude::any::<[u8; 32]>()) {
            let signer = Bn254Signer::new(Bn254SecretKey::random(&mut ChaCha20Rng::seed_from_u64(seed)));
            let sig = signer.sign(&h);
            let pk = signer.public_key();
            proptest::prop_assert!(crate::signer::OperatorVerifier::verify(&pk, &h, &sig).is_ok());
            let bytes = sig.to_bytes();
            proptest::prop_assert_eq!(OperatorSignature::from_bytes(SignatureScheme::Bn254, &bytes).unwrap(), sig);
            let json = serde_json::to_string(&pk).unwrap();
            proptest::prop_assert_eq!(serde_json::from_str::<OperatorPublicKey>(&json).unwrap(), pk);
        }
    }

    #[test]
    fn decoders_are_strict() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let pk = Bn254SecretKey::random(&mut rng).public_key();
        assert_eq!(Bn254PublicKey::from_bytes(&pk.to_bytes()).unwrap(), pk);
        let mut bad = pk.to_bytes();
        bad[191] ^= 1;
        assert!(Bn254PublicKey::from_bytes(&bad).is_err());
        let mut twin = pk.to_bytes();
        twin[..64].copy_from_slice(&g1_to_evm(&G1Affine::generator()));
        assert_eq!(
            Bn254PublicKey::from_bytes(&twin),
            Err(SignatureError::InvalidPoint("G1 and G2 keys differ"))
        );
        assert!(Bn254Signature::from_slice(&[0u8; 64]).is_err());
        assert!(Bn254Signature::from_slice(&[0xff; 64]).is_err());
        assert!(Bn254SecretKey::from_bytes_be(&[0u8; 32]).is_err());
        assert!(Bn254SecretKey::from_bytes_be(&[0xff; 32]).is_err());
        let sk = Bn254SecretKey::random(&mut rng);
        assert_eq!(
            Bn254SecretKey::from_bytes_be(&sk.to_bytes_be())
                .unwrap()
                .public_key(),
            sk.public_key()
        );
        assert_eq!(format!("{sk:?}"), "Bn254SecretKey(<redacted>)");
    }
}
