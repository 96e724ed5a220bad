//! Protocol signing keys: a short-lived secp256k1 key per node, certified once by the
//! operator's registered key, that signs the node's protocol messages with Schnorr
//! signatures.
//!
//! Why: every protocol message must stay checkable by a contract (fraud proofs carry
//! the dealer's own signed messages), and with the operator's BN254 key each of the
//! `n − 1` signers a node hears from costs a Miller loop per batch, however the batch
//! is formed (`docs/protocol.md`). Schnorr signatures check in a batch as one
//! multi-scalar multiplication over secp256k1 (variable time, `certified/msm.rs`),
//! about a tenth of a Miller loop per signature (`docs/benchmarks.md`), and a
//! contract checks one with a single `ecrecover`. The operator key is then checked
//! once per certificate (a node caches certificates it has checked).
//!
//! Written here, not taken from a crate: the scheme must be checkable by `ecrecover`,
//! so its challenge hashes the *address* of the nonce point, which neither BIP-340
//! (SHA-256, the nonce's x coordinate) nor any Schnorr crate does. The group arithmetic
//! is k256's (constant-time scalar multiplication for signing).
//!
//! **Signature.** Key `x`, `P = x·G` with `P.x < n` (so that `P.x` is a valid
//! `ecrecover` `r`). To sign a 32-byte hash `m`: nonce `k` from the key, `m` and fresh
//! randomness; `R = k·G`; `e = keccak256(P_compressed ‖ m ‖ address(R)) mod n`;
//! `s = k + e·x`. The signature is `(R, s)`. Check: `s·G − e·P = R`.
//! On chain: `ecrecover(−s·P.x, 27 + parity(P), P.x, −e·P.x)` returns the address of
//! `P.x⁻¹·(−e·P.x·P + s·P.x·G) = s·G − e·P`, compared with `address(R)`.
//! Off chain, many signatures are checked at once with random 128-bit weights `z_i`:
//! `(Σ z_i·s_i)·G − Σ z_i·R_i − Σ_keys (Σ_{i by key} z_i·e_i)·P = O`.
//!
//! **Certificate.** The operator's registered key signs
//! `keccak256("EIGENKMS-PROTOCOL-KEY-V1" ‖ operator ‖ P_compressed ‖ not_before ‖ not_after)`
//! (times in seconds, big-endian u64). A certified signature is valid only for a
//! message whose session timestamp lies in `[not_before, not_after]`: a protocol key is
//! generated in memory by a running node and never stored, and the window bounds what
//! anyone holding it after the fact could sign.

use std::sync::Arc;

use k256::elliptic_curve::group::Group;
use k256::elliptic_curve::group::prime::PrimeCurveAffine;
use k256::elliptic_curve::ops::{MulByGenerator, Reduce};
use k256::elliptic_curve::point::AffineCoordinates;
use k256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use k256::elliptic_curve::{Field, PrimeField};
use k256::{AffinePoint, EncodedPoint, FieldBytes, ProjectivePoint, Scalar, U256};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha3::{Digest, Keccak256};
use zeroize::{Zeroize, Zeroizing};

use super::{
    OperatorPublicKey, OperatorSignature, OperatorSigner, SignatureError, SignatureScheme,
};
use crate::address::OperatorAddress;

mod msm;

/// Domain of the certificate digest.
pub const CERTIFICATE_DOMAIN: &[u8] = b"EIGENKMS-PROTOCOL-KEY-V1";

/// Domain of the nonce derivation.
const NONCE_DOMAIN: &[u8] = b"EIGENKMS-PROTOCOL-NONCE-V1";

/// The Ethereum address of a point: the last 20 bytes of keccak256(x ‖ y).
fn address_of(p: &AffinePoint) -> [u8; 20] {
    let enc = p.to_encoded_point(false);
    let h = Keccak256::digest(&enc.as_bytes()[1..]);
    let mut a = [0u8; 20];
    a.copy_from_slice(&h[12..]);
    a
}

fn scalar_from_canonical(b: &[u8]) -> Option<Scalar> {
    let bytes: [u8; 32] = b.try_into().ok()?;
    Option::from(Scalar::from_repr(FieldBytes::from(bytes)))
}

/// A protocol public key: a secp256k1 point whose x coordinate is below the group
/// order. 33 bytes, SEC1 compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtocolPublicKey {
    point: AffinePoint,
    compressed: [u8; 33],
}

impl ProtocolPublicKey {
    fn from_point(point: AffinePoint) -> Result<Self, SignatureError> {
        if bool::from(point.is_identity()) {
            return Err(SignatureError::InvalidPoint("identity"));
        }
        // `ecrecover` needs `r = P.x < n`.
        if scalar_from_canonical(&point.x()).is_none() {
            return Err(SignatureError::InvalidPoint(
                "x coordinate not below the order",
            ));
        }
        let mut compressed = [0u8; 33];
        compressed.copy_from_slice(point.to_encoded_point(true).as_bytes());
        Ok(Self { point, compressed })
    }

    /// Strict decoding of the 33-byte compressed form.
    pub fn from_bytes(b: &[u8]) -> Result<Self, SignatureError> {
        if b.len() != 33 {
            return Err(SignatureError::InvalidLength {
                expected: 33,
                got: b.len(),
            });
        }
        if b[0] != 2 && b[0] != 3 {
            return Err(SignatureError::InvalidEncoding("compressed point tag"));
        }
        let enc =
            EncodedPoint::from_bytes(b).map_err(|_| SignatureError::InvalidEncoding("point"))?;
        let point: Option<AffinePoint> = AffinePoint::from_encoded_point(&enc).into();
        Self::from_point(point.ok_or(SignatureError::InvalidPoint("not on secp256k1"))?)
    }

    /// The 33-byte compressed form.
    pub fn to_bytes(&self) -> [u8; 33] {
        self.compressed
    }

    /// The x coordinate (what a contract passes to `ecrecover` as `r`).
    pub fn x(&self) -> [u8; 32] {
        self.point.x().into()
    }

    /// Whether y is odd (`v = 27 + parity`).
    pub fn y_is_odd(&self) -> bool {
        self.point.y_is_odd().into()
    }
}

impl Serialize for ProtocolPublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::hexser::serialize_bytes(&self.compressed, s)
    }
}

impl<'de> Deserialize<'de> for ProtocolPublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let b: [u8; 33] = crate::hexser::deserialize_array(d)?;
        Self::from_bytes(&b).map_err(serde::de::Error::custom)
    }
}

/// A protocol secret key (zeroized on drop).
pub struct ProtocolSecretKey {
    x: Scalar,
    public: ProtocolPublicKey,
}

impl Drop for ProtocolSecretKey {
    fn drop(&mut self) {
        self.x.zeroize();
    }
}

impl std::fmt::Debug for ProtocolSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ProtocolSecretKey({}, <redacted>)",
            hex::encode(self.public.compressed)
        )
    }
}

impl ProtocolSecretKey {
    /// A fresh key (redrawn in the rare case, about 2^-128, that `P.x ≥ n`).
    pub fn random<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Self {
        loop {
            let x = Scalar::random(&mut *rng);
            if bool::from(x.is_zero()) {
                continue;
            }
            let point = ProjectivePoint::mul_by_generator(&x).to_affine();
            if let Ok(public) = ProtocolPublicKey::from_point(point) {
                return Self { x, public };
            }
        }
    }

    /// The public key.
    pub fn public_key(&self) -> ProtocolPublicKey {
        self.public
    }

    /// Signs a 32-byte hash. The nonce is keccak256 of the key, the hash and 32 fresh
    /// random bytes, reduced mod n (bias below 2^-127): unique per signature even with
    /// a weak generator, and never repeated for two hashes.
    pub fn sign<R: RngCore + CryptoRng + ?Sized>(
        &self,
        msg_hash: &[u8; 32],
        rng: &mut R,
    ) -> SchnorrSignature {
        loop {
            let mut fresh = Zeroizing::new([0u8; 32]);
            rng.fill_bytes(fresh.as_mut());
            let mut h = Keccak256::new();
            h.update(NONCE_DOMAIN);
            h.update(Zeroizing::new(self.x.to_bytes()).as_slice());
            h.update(msg_hash);
            h.update(fresh.as_slice());
            let digest = Zeroizing::new(h.finalize());
            let mut k = <Scalar as Reduce<U256>>::reduce_bytes(&digest);
            if bool::from(k.is_zero()) {
                continue;
            }
            // Constant time (k256's precomputed generator table, selected in constant time).
            let r = ProjectivePoint::mul_by_generator(&k).to_affine();
            let e = challenge(&self.public, msg_hash, &r);
            let s = k + e * self.x;
            k.zeroize();
            if bool::from(s.is_zero()) {
                continue;
            }
            return SchnorrSignature { r, s };
        }
    }
}

/// `e = keccak256(P_compressed ‖ m ‖ address(R)) mod n`.
fn challenge(key: &ProtocolPublicKey, msg_hash: &[u8; 32], r: &AffinePoint) -> Scalar {
    let mut h = Keccak256::new();
    h.update(key.compressed);
    h.update(msg_hash);
    h.update(address_of(r));
    <Scalar as Reduce<U256>>::reduce_bytes(&h.finalize())
}

/// A Schnorr signature `(R, s)`: 96 bytes, `R.x ‖ R.y ‖ s` (uncompressed `R`, so a
/// contract hashes it to an address without a square root).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchnorrSignature {
    r: AffinePoint,
    s: Scalar,
}

impl SchnorrSignature {
    /// Encoded length.
    pub const LEN: usize = 96;

    /// `R.x ‖ R.y ‖ s`.
    pub fn to_bytes(&self) -> [u8; 96] {
        let mut out = [0u8; 96];
        out[..64].copy_from_slice(&self.r.to_encoded_point(false).as_bytes()[1..]);
        out[64..].copy_from_slice(&self.s.to_bytes());
        out
    }

    /// Strict decoding: `R` on the curve (coordinates below p), `0 < s < n`.
    pub fn from_slice(b: &[u8]) -> Result<Self, SignatureError> {
        if b.len() != Self::LEN {
            return Err(SignatureError::InvalidLength {
                expected: Self::LEN,
                got: b.len(),
            });
        }
        let mut enc = [0u8; 65];
        enc[0] = 4;
        enc[1..].copy_from_slice(&b[..64]);
        let enc =
            EncodedPoint::from_bytes(enc).map_err(|_| SignatureError::InvalidEncoding("R"))?;
        let r: Option<AffinePoint> = AffinePoint::from_encoded_point(&enc).into();
        let r = r.ok_or(SignatureError::InvalidPoint("R not on secp256k1"))?;
        let s = scalar_from_canonical(&b[64..]).ok_or(SignatureError::InvalidEncoding("s ≥ n"))?;
        if bool::from(s.is_zero()) {
            return Err(SignatureError::InvalidEncoding("s = 0"));
        }
        Ok(Self { r, s })
    }

    /// Checks the signature on its own.
    pub fn verify(
        &self,
        key: &ProtocolPublicKey,
        msg_hash: &[u8; 32],
    ) -> Result<(), SignatureError> {
        let e = challenge(key, msg_hash, &self.r);
        let lhs = msm::msm_vartime(&self.s, &[(ProjectivePoint::from(key.point), -e)], &[]);
        if lhs == ProjectivePoint::from(self.r) {
            Ok(())
        } else {
            Err(SignatureError::Invalid)
        }
    }

    /// [`SchnorrSignature::verify`] with the key's tables (half the doublings).
    pub fn verify_prepared(
        &self,
        key: &PreparedProtocolKey,
        msg_hash: &[u8; 32],
    ) -> Result<(), SignatureError> {
        let e = challenge(&key.key, msg_hash, &self.r);
        let lhs = msm::msm_vartime(&self.s, &[], &[(&key.tables, -e)]);
        if lhs == ProjectivePoint::from(self.r) {
            Ok(())
        } else {
            Err(SignatureError::Invalid)
        }
    }
}

/// A protocol key with its tables for batch checks (see `certified/msm.rs`): built
/// once per key (about 64 point additions) and kept by whoever checks its signatures
/// often; a clone shares the tables.
#[derive(Clone, Debug)]
pub struct PreparedProtocolKey {
    key: ProtocolPublicKey,
    tables: Arc<msm::Prepared>,
}

impl PreparedProtocolKey {
    /// Builds the tables of `key`.
    pub fn new(key: &ProtocolPublicKey) -> Self {
        Self {
            key: *key,
            tables: Arc::new(msm::Prepared::new(&key.point)),
        }
    }

    /// The key.
    pub fn key(&self) -> &ProtocolPublicKey {
        &self.key
    }
}

/// Checks many signatures as one multi-scalar multiplication (see the module docs).
/// `true` only if all hold, except with probability 2^-128 over the weights;
/// `false` says only that some item fails: check them one by one to find which.
pub fn verify_batch<R: RngCore + CryptoRng + ?Sized>(
    items: &[(&PreparedProtocolKey, &[u8; 32], &SchnorrSignature)],
    rng: &mut R,
) -> bool {
    match items {
        [] => return true,
        [(k, m, s)] => return s.verify_prepared(k, m).is_ok(),
        _ => {}
    }
    let mut g = Scalar::ZERO;
    let mut nonces: Vec<(ProjectivePoint, Scalar)> = Vec::with_capacity(items.len());
    let mut keys: Vec<(&PreparedProtocolKey, Scalar)> = Vec::new();
    for (key, msg, sig) in items {
        let mut w = [0u8; 32];
        rng.fill_bytes(&mut w[16..]);
        let z = <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(w));
        let e = challenge(&key.key, msg, &sig.r);
        g += z * sig.s;
        nonces.push((ProjectivePoint::from(sig.r), -z));
        match keys.iter_mut().find(|(k, _)| k.key == key.key) {
            Some((_, acc)) => *acc -= z * e,
            None => keys.push((key, -(z * e))),
        }
    }
    let keys: Vec<(&msm::Prepared, Scalar)> = keys.iter().map(|(k, w)| (&*k.tables, *w)).collect();
    bool::from(msm::msm_vartime(&g, &nonces, &keys).is_identity())
}

/// The operator's statement that `key` signs protocol messages on its behalf for
/// sessions in `[not_before, not_after]` (seconds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolKeyCertificate {
    /// The operator.
    pub operator: OperatorAddress,
    /// The certified protocol key.
    pub key: ProtocolPublicKey,
    /// First session timestamp it may sign for.
    pub not_before: u64,
    /// Last session timestamp it may sign for.
    pub not_after: u64,
    /// The operator's signature over [`ProtocolKeyCertificate::digest`] (BN254 or
    /// ECDSA; never itself certified).
    pub signature: OperatorSignature,
}

impl ProtocolKeyCertificate {
    /// What the operator key signs.
    pub fn digest(
        operator: &OperatorAddress,
        key: &ProtocolPublicKey,
        not_before: u64,
        not_after: u64,
    ) -> [u8; 32] {
        let mut h = Keccak256::new();
        h.update(CERTIFICATE_DOMAIN);
        h.update(operator.as_bytes());
        h.update(key.compressed);
        h.update(not_before.to_be_bytes());
        h.update(not_after.to_be_bytes());
        h.finalize().into()
    }

    /// Issues a certificate with `operator_signer` (which must not be certified itself).
    pub fn issue(
        operator: OperatorAddress,
        operator_signer: &dyn OperatorSigner,
        key: ProtocolPublicKey,
        not_before: u64,
        not_after: u64,
    ) -> Self {
        let signature = operator_signer.sign(&Self::digest(&operator, &key, not_before, not_after));
        Self {
            operator,
            key,
            not_before,
            not_after,
            signature,
        }
    }

    /// Whether it covers a session at `timestamp`.
    pub fn covers(&self, timestamp: u64) -> bool {
        (self.not_before..=self.not_after).contains(&timestamp)
    }

    /// Checks the operator's signature with its registered key: what a node caches.
    pub fn verify(&self, operator_key: &OperatorPublicKey) -> Result<(), SignatureError> {
        if matches!(self.signature, OperatorSignature::Certified(_)) {
            return Err(SignatureError::SchemeMismatch);
        }
        if self.not_before > self.not_after {
            return Err(SignatureError::InvalidEncoding("empty validity window"));
        }
        let digest = Self::digest(&self.operator, &self.key, self.not_before, self.not_after);
        super::OperatorVerifier::verify(operator_key, &digest, &self.signature)
    }
}

/// A message signature by a certified protocol key, with its certificate: what a
/// node puts on protocol messages and what a fraud proof carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertifiedSignature {
    /// The certificate of the signing key.
    pub certificate: ProtocolKeyCertificate,
    /// The Schnorr signature over the message hash.
    pub signature: SchnorrSignature,
}

impl CertifiedSignature {
    /// The bytes a contract takes: `operator (20) ‖ key (33) ‖ not_before (8) ‖
    /// not_after (8) ‖ operator signature (64 BN254 or 65 ECDSA) ‖ R.x ‖ R.y ‖ s (96)`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let c = &self.certificate;
        let mut out = Vec::with_capacity(Self::LEN_BN254 + 1);
        out.extend_from_slice(c.operator.as_bytes());
        out.extend_from_slice(&c.key.compressed);
        out.extend_from_slice(&c.not_before.to_be_bytes());
        out.extend_from_slice(&c.not_after.to_be_bytes());
        out.extend_from_slice(&c.signature.to_bytes());
        out.extend_from_slice(&self.signature.to_bytes());
        out
    }

    /// Length with a BN254 certificate signature.
    pub const LEN_BN254: usize = 20 + 33 + 16 + 64 + SchnorrSignature::LEN;
    /// Length with an ECDSA certificate signature.
    pub const LEN_ECDSA: usize = Self::LEN_BN254 + 1;

    /// Strict decoding (the certificate's scheme follows from the length).
    pub fn from_slice(b: &[u8]) -> Result<Self, SignatureError> {
        let scheme = match b.len() {
            Self::LEN_BN254 => SignatureScheme::Bn254,
            Self::LEN_ECDSA => SignatureScheme::Ecdsa,
            got => {
                return Err(SignatureError::InvalidLength {
                    expected: Self::LEN_BN254,
                    got,
                });
            }
        };
        let operator = OperatorAddress::from_bytes(b[..20].try_into().expect("20 bytes"));
        let key = ProtocolPublicKey::from_bytes(&b[20..53])?;
        let not_before = u64::from_be_bytes(b[53..61].try_into().expect("8 bytes"));
        let not_after = u64::from_be_bytes(b[61..69].try_into().expect("8 bytes"));
        let split = b.len() - SchnorrSignature::LEN;
        let signature = OperatorSignature::from_bytes(scheme, &b[69..split])?;
        Ok(Self {
            certificate: ProtocolKeyCertificate {
                operator,
                key,
                not_before,
                not_after,
                signature,
            },
            signature: SchnorrSignature::from_slice(&b[split..])?,
        })
    }

    /// Checks everything with the operator's registered key: the certificate and the
    /// Schnorr signature (the validity window is the caller's, who knows the session).
    pub fn verify(
        &self,
        operator_key: &OperatorPublicKey,
        msg_hash: &[u8; 32],
    ) -> Result<(), SignatureError> {
        self.certificate.verify(operator_key)?;
        self.signature.verify(&self.certificate.key, msg_hash)
    }
}

impl Serialize for SchnorrSignature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::hexser::serialize_bytes(&self.to_bytes(), s)
    }
}

impl<'de> Deserialize<'de> for SchnorrSignature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let b: [u8; 96] = crate::hexser::deserialize_array(d)?;
        Self::from_slice(&b).map_err(serde::de::Error::custom)
    }
}

/// Signs protocol messages with a certified protocol key: the operator identity and
/// registered key stay those of the operator, signatures are [`CertifiedSignature`]s.
pub struct CertifiedSigner {
    operator_key: OperatorPublicKey,
    scheme: SignatureScheme,
    key: ProtocolSecretKey,
    certificate: ProtocolKeyCertificate,
}

impl CertifiedSigner {
    /// A fresh protocol key certified by `operator_signer` for `[not_before, not_after]`.
    pub fn generate<R: RngCore + CryptoRng + ?Sized>(
        operator: OperatorAddress,
        operator_signer: &dyn OperatorSigner,
        not_before: u64,
        not_after: u64,
        rng: &mut R,
    ) -> Self {
        let key = ProtocolSecretKey::random(rng);
        let certificate = ProtocolKeyCertificate::issue(
            operator,
            operator_signer,
            key.public_key(),
            not_before,
            not_after,
        );
        Self {
            operator_key: operator_signer.public_key(),
            scheme: operator_signer.scheme(),
            key,
            certificate,
        }
    }

    /// The certificate.
    pub fn certificate(&self) -> &ProtocolKeyCertificate {
        &self.certificate
    }
}

impl std::fmt::Debug for CertifiedSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CertifiedSigner({}, {:?})",
            self.certificate.operator, self.key
        )
    }
}

impl OperatorSigner for CertifiedSigner {
    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
    fn public_key(&self) -> OperatorPublicKey {
        self.operator_key.clone()
    }
    fn sign(&self, msg_hash: &[u8; 32]) -> OperatorSignature {
        OperatorSignature::Certified(Box::new(CertifiedSignature {
            certificate: self.certificate.clone(),
            signature: self.key.sign(msg_hash, &mut rand_core::OsRng),
        }))
    }
    fn protocol_certificate(&self) -> Option<&ProtocolKeyCertificate> {
        Some(&self.certificate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::{Bn254SecretKey, Bn254Signer, EcdsaSigner, OperatorVerifier};
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn keys(n: usize, rng: &mut ChaCha20Rng) -> Vec<ProtocolSecretKey> {
        (0..n).map(|_| ProtocolSecretKey::random(rng)).collect()
    }

    #[test]
    fn sign_verify_and_tamper() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let k = ProtocolSecretKey::random(&mut rng);
        let m = [7u8; 32];
        let sig = k.sign(&m, &mut rng);
        assert_eq!(sig.verify(&k.public_key(), &m), Ok(()));
        assert_eq!(SchnorrSignature::from_slice(&sig.to_bytes()), Ok(sig));
        assert_eq!(
            sig.verify(&k.public_key(), &[8u8; 32]),
            Err(SignatureError::Invalid)
        );
        let other = ProtocolSecretKey::random(&mut rng).public_key();
        assert_eq!(sig.verify(&other, &m), Err(SignatureError::Invalid));
        let mut b = sig.to_bytes();
        b[95] ^= 1;
        let tweaked = SchnorrSignature::from_slice(&b).unwrap();
        assert_eq!(
            tweaked.verify(&k.public_key(), &m),
            Err(SignatureError::Invalid)
        );
        // R off the curve, s = 0, s ≥ n.
        let mut b = sig.to_bytes();
        b[63] ^= 1;
        assert!(SchnorrSignature::from_slice(&b).is_err());
        let mut b = sig.to_bytes();
        b[64..].fill(0);
        assert!(SchnorrSignature::from_slice(&b).is_err());
        let mut b = sig.to_bytes();
        b[64..].fill(0xff);
        assert!(SchnorrSignature::from_slice(&b).is_err());
        // Two signatures of one hash use different nonces.
        assert_ne!(k.sign(&m, &mut rng).to_bytes(), sig.to_bytes());
    }

    #[test]
    fn public_key_decoding_is_strict() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let pk = ProtocolSecretKey::random(&mut rng).public_key();
        assert_eq!(ProtocolPublicKey::from_bytes(&pk.to_bytes()), Ok(pk));
        let mut b = pk.to_bytes();
        b[0] = 4;
        assert!(ProtocolPublicKey::from_bytes(&b).is_err());
        assert!(ProtocolPublicKey::from_bytes(&b[..32]).is_err());
        // x = p − 1 has no point; x ≥ n is refused even when a point exists.
        let mut b = [0xffu8; 33];
        b[0] = 2;
        assert!(ProtocolPublicKey::from_bytes(&b).is_err());
        // x = n (the group order) + 1 … search the first x ≥ n on the curve.
        let n_plus: [u8; 32] =
            hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
                .unwrap()
                .try_into()
                .unwrap();
        let mut found = false;
        for i in 0..64u8 {
            let mut x = n_plus;
            x[31] = x[31].wrapping_add(i);
            let mut b = [2u8; 33];
            b[1..].copy_from_slice(&x);
            if let Ok(enc) = EncodedPoint::from_bytes(b)
                && Option::<AffinePoint>::from(AffinePoint::from_encoded_point(&enc)).is_some()
            {
                assert_eq!(
                    ProtocolPublicKey::from_bytes(&b),
                    Err(SignatureError::InvalidPoint(
                        "x coordinate not below the order"
                    ))
                );
                found = true;
                break;
            }
        }
        assert!(found, "some x in [n, n + 64) is on the curve");
    }

    #[test]
    fn batches_accept_valid_and_catch_any_invalid_item() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let ks = keys(5, &mut rng);
        let msgs: Vec<[u8; 32]> = (0..12u8).map(|i| [i; 32]).collect();
        // Several messages per key, as a node's batch has.
        let sigs: Vec<SchnorrSignature> = msgs
            .iter()
            .enumerate()
            .map(|(i, m)| ks[i % 5].sign(m, &mut rng))
            .collect();
        let pks: Vec<PreparedProtocolKey> = ks
            .iter()
            .map(|k| PreparedProtocolKey::new(&k.public_key()))
            .collect();
        let items: Vec<_> = (0..12).map(|i| (&pks[i % 5], &msgs[i], &sigs[i])).collect();
        for i in 0..12 {
            // One at a time with the tables, as without them.
            assert!(sigs[i].verify_prepared(&pks[i % 5], &msgs[i]).is_ok());
            assert!(sigs[i].verify(pks[i % 5].key(), &msgs[i]).is_ok());
            assert!(
                sigs[i]
                    .verify_prepared(&pks[(i + 1) % 5], &msgs[i])
                    .is_err()
            );
            assert!(
                sigs[i]
                    .verify_prepared(&pks[i % 5], &msgs[(i + 1) % 12])
                    .is_err()
            );
        }
        assert!(verify_batch(&items, &mut rng));
        assert!(verify_batch(&items[..1], &mut rng));
        assert!(verify_batch(&[], &mut rng));
        for bad in 0..12 {
            let mut items = items.clone();
            // Wrong message, then a signature of another key.
            items[bad].1 = &msgs[(bad + 1) % 12];
            assert!(!verify_batch(&items, &mut rng));
            let mut items2: Vec<_> = (0..12).map(|i| (&pks[i % 5], &msgs[i], &sigs[i])).collect();
            items2[bad].0 = &pks[(bad + 1) % 5];
            assert!(!verify_batch(&items2, &mut rng));
        }
        // Two invalid signatures in one batch: (R + D, s) and (R − D, s).
        let d = ProjectivePoint::GENERATOR * Scalar::from(5u64);
        let mut a = sigs[0];
        let mut b = sigs[5];
        a.r = (ProjectivePoint::from(a.r) + d).to_affine();
        b.r = (ProjectivePoint::from(b.r) - d).to_affine();
        let mut items = items.clone();
        items[0].2 = &a;
        items[5].2 = &b;
        assert!(!verify_batch(&items, &mut rng));
    }

    #[test]
    fn certificates_bind_operator_key_window_and_scheme() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let bn = Bn254Signer::new(Bn254SecretKey::random(&mut rng));
        let ec = EcdsaSigner::random(&mut rng);
        let who = OperatorAddress::from_bytes([9u8; 20]);
        for (operator, signer) in [(who, &bn as &dyn OperatorSigner), (ec.address(), &ec)] {
            let s = CertifiedSigner::generate(operator, signer, 100, 200, &mut rng);
            let m = [1u8; 32];
            let OperatorSignature::Certified(sig) = s.sign(&m) else {
                panic!("certified")
            };
            let key = signer.public_key();
            assert_eq!(s.public_key(), key);
            assert_eq!(sig.verify(&key, &m), Ok(()));
            assert_eq!(key.verify(&m, &s.sign(&m)), Ok(()));
            assert!(sig.certificate.covers(100) && sig.certificate.covers(200));
            assert!(!sig.certificate.covers(99) && !sig.certificate.covers(201));
            // Bytes round trip, and the length names the certificate's scheme.
            let bytes = sig.to_bytes();
            assert_eq!(CertifiedSignature::from_slice(&bytes).as_ref(), Ok(&*sig));
            assert!(CertifiedSignature::from_slice(&bytes[1..]).is_err());
            // Any change to the certificate breaks it.
            let mut c = (*sig).clone();
            c.certificate.not_after += 1;
            assert!(c.verify(&key, &m).is_err());
            let mut c = (*sig).clone();
            c.certificate.operator = OperatorAddress::from_bytes([1u8; 20]);
            assert!(c.verify(&key, &m).is_err());
            let mut c = (*sig).clone();
            c.certificate.key = ProtocolSecretKey::random(&mut rng).public_key();
            assert!(c.verify(&key, &m).is_err());
            // Another operator's key does not check it; nor does a wrong message.
            let stranger = Bn254Signer::new(Bn254SecretKey::random(&mut rng)).public_key();
            assert!(sig.verify(&stranger, &m).is_err());
            assert!(sig.verify(&key, &[2u8; 32]).is_err());
            // A certificate signed by a certified key is refused.
            let mut c = (*sig).clone();
            c.certificate.signature = s.sign(&[3u8; 32]);
            assert_eq!(
                c.certificate.verify(&key),
                Err(SignatureError::SchemeMismatch)
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn decoders_never_panic(b in proptest::collection::vec(any::<u8>(), 0..240)) {
            let _ = SchnorrSignature::from_slice(&b);
            let _ = ProtocolPublicKey::from_bytes(&b);
            let _ = CertifiedSignature::from_slice(&b);
        }

        #[test]
        fn any_key_signs_any_hash(seed in any::<u64>(), m in any::<[u8; 32]>()) {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let k = ProtocolSecretKey::random(&mut rng);
            let sig = k.sign(&m, &mut rng);
            prop_assert!(sig.verify(&k.public_key(), &m).is_ok());
        }
    }
}
