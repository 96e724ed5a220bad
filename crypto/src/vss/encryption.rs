//! End-to-end encryption of VSS shares to certified G1 keys, and openings of one
//! share proven with a DLEQ proof for complaints (protocol v2, after ETHDKG and
//! Ferveo). Everything a contract must recompute is keccak256 and the EIP-2537
//! precompiles.
//!
//! **Keys.** Each operator holds an [`EncryptionSecretKey`] `sk`, public key
//! `pk = sk·G1`, certified by its operator key for one deployment and a window of
//! sessions ([`EncryptionKeyCertificate`]). For each dealing the dealer draws a fresh
//! [`DealingKey`] `e` and publishes `E = e·G1` ([`EphemeralKey`]) in the dealing.
//!
//! **Encryption.** The key shared by the dealer and player `j` is
//! `K = e·pk_j = sk_j·E` ([`SharedKey`]). Its two pads are, for `i = 0` (value) and
//! `i = 1` (blinding),
//!
//! `H_{i,h} = keccak256("EIGENKMS-V2-SHARE-PAD" ‖ i ‖ h ‖ K ‖ session_hash ‖ dealer ‖ player)`
//!
//! for `h = 0, 1` (`i`, `h` one byte each, `K` the 128-byte EIP-2537 form, the hash 32
//! bytes, the addresses 20), and `pad_i = (H_{i,0}·2^256 + H_{i,1}) mod r`: the 64
//! bytes `H_{i,0} ‖ H_{i,1}` read as one big-endian integer ([`Scalar::from_bytes_wide`]),
//! so that the pad is within 2^-250 of uniform. A contract computes it as
//! `addmod(mulmod(H_{i,0}, R256, r), H_{i,1}, r)` with
//! `R256 = 2^256 mod r =` [`TWO_POW_256_MOD_R`]. A ciphertext word is the 32-byte
//! big-endian encoding of `share_i + pad_i mod r` ([`ShareCiphertext`]); a Feldman
//! share has blinding zero and its second word is `pad_1`. The pads are one-time:
//! `K` is fresh per dealing and per player, and the context binds them to the session
//! and to both parties, so a ciphertext replayed into another session or to another
//! player decrypts to noise. The ciphertext has no tag: a share is authenticated by
//! the dealer's signature on the dealing and checked against the dealer's commitment.
//!
//! **Complaint.** A player whose share does not match the commitment reveals `K` with
//! a Chaum–Pedersen proof that `log_G1 pk_j = log_E K` ([`reveal_shared_key`]).
//! Anyone holding the dealing then checks the proof ([`verify_shared_key`]), opens the
//! one share ([`open_share`]) and checks it against the commitment: the player is
//! right if it does not match, the dealer if it does. The proof is
//! `(challenge, z)` with `A1 = w·G1`, `A2 = w·E`,
//!
//! `challenge = keccak256("EIGENKMS-V2-DLEQ" ‖ pk ‖ E ‖ K ‖ A1 ‖ A2 ‖ session_hash ‖ dealer ‖ player)`
//!
//! (points 128 bytes each), `c = challenge mod r` and `z = w − c·sk mod r`.
//!
//! **On chain.** Given `pk` (from the certificate), `E` (from the signed dealing),
//! `K`, the context and the proof, a contract:
//! 1. requires `K` not all zeros and `z < r` (every proof has one encoding);
//! 2. computes `A1 = G1MSM(G1 ‖ z ‖ pk ‖ challenge)` and
//!    `A2 = G1MSM(E ‖ z ‖ K ‖ challenge)` with the EIP-2537 G1MSM precompile (pairs of a
//!    128-byte point and a 32-byte big-endian scalar). The precompile accepts scalars
//!    `≥ r` and multiplies subgroup points, which it checks, by them: the raw
//!    challenge works as `c` without reduction;
//! 3. requires `keccak256(abi.encodePacked("EIGENKMS-V2-DLEQ", pk, E, K, A1, A2,
//!    sessionHash, dealer, player)) == challenge` (an identity `A` is the precompile's
//!    128 zero bytes, as here);
//! 4. derives the pads as above and opens the share; a ciphertext word `≥ r` is the
//!    dealer's fault (no node accepts it either).
//!
//! **Why G1.** Keys, ephemeral keys and shared keys are never paired, so they can live
//! in either group; G1 points are 128 bytes in EIP-2537 form against 256 for G2, and a
//! G1 MSM costs about half the gas of a G2 one (12,000 against 22,500 for one point).
//!
//! **Why one ephemeral key per dealing.** With `K = sk_j·E` for a long-term `E`, the
//! key revealed in one complaint would open every share that dealer ever sent `j`.
//! With a fresh `E` it opens exactly one share, of one dealing; by CDH it says nothing
//! about `sk_j·E'` for another dealing's `E'`.
//!
//! **Constant time.** `sk`, `e`, the proof nonce `w` and the shares enter only
//! [`G1Point::mul`] (constant time in the scalar), keccak256 and field arithmetic;
//! `K` is treated as a secret until revealed (zeroized, redacted). Verification uses
//! the variable-time [`G1Point::msm`] over public data only. Decryption checks that
//! the ciphertext words are canonical, which depends on public data only.

mod certificate;

use std::fmt;

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

pub use certificate::{ENCRYPTION_KEY_DOMAIN, EncryptionKeyCertificate};

use crate::address::OperatorAddress;
use crate::error::CryptoError;
use crate::group::G1Point;
use crate::scalar::Scalar;
use crate::vss::pedersen::PedersenShare;

/// Domain of the share pads.
pub const PAD_DOMAIN: &[u8] = b"EIGENKMS-V2-SHARE-PAD";

/// Domain of the DLEQ challenge.
pub const DLEQ_DOMAIN: &[u8] = b"EIGENKMS-V2-DLEQ";

/// Domain of the DLEQ nonce derivation (local to the prover, never checked).
const DLEQ_NONCE_DOMAIN: &[u8] = b"EIGENKMS-V2-DLEQ-NONCE";

/// `2^256 mod r`, big-endian: the factor a contract multiplies the first pad hash by.
pub const TWO_POW_256_MOD_R: [u8; 32] = [
    0x18, 0x24, 0xb1, 0x59, 0xac, 0xc5, 0x05, 0x6f, 0x99, 0x8c, 0x4f, 0xef, 0xec, 0xbc, 0x4f, 0xf5,
    0x58, 0x84, 0xb7, 0xfa, 0x00, 0x03, 0x48, 0x02, 0x00, 0x00, 0x00, 0x01, 0xff, 0xff, 0xff, 0xfe,
];

/// A non-zero scalar from the RNG (zero, probability 2^-254, would make a key the
/// identity, which no decoder accepts).
fn nonzero_scalar<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Scalar {
    loop {
        let s = Scalar::random(rng);
        if !s.is_zero() {
            return s;
        }
    }
}

/// A public G1 point newtype with the strict decoders of [`G1Point`].
macro_rules! g1_public_key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(G1Point);

        impl $name {
            /// The 128-byte EIP-2537 encoding (`x ‖ y`, 64-byte words).
            pub fn to_eip2537(&self) -> [u8; 128] {
                self.0.to_eip2537()
            }

            /// Strict decoding of the EIP-2537 form: refuses the identity, points off
            /// the curve and points outside G1.
            pub fn from_eip2537(bytes: &[u8]) -> Result<Self, CryptoError> {
                G1Point::from_eip2537(bytes).map(Self)
            }

            /// The point.
            pub fn point(&self) -> &G1Point {
                &self.0
            }
        }
    };
}

g1_public_key!(
    /// An operator's public encryption key `pk = sk·G1` (never the identity).
    EncryptionPublicKey
);

g1_public_key!(
    /// A dealing's ephemeral public key `E = e·G1` (never the identity).
    EphemeralKey
);

/// An operator's long-term decryption key `sk` (non-zero, zeroized on drop).
#[derive(ZeroizeOnDrop)]
pub struct EncryptionSecretKey {
    secret: Scalar,
    #[zeroize(skip)]
    public: EncryptionPublicKey,
}

impl EncryptionSecretKey {
    /// A fresh key.
    pub fn generate<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::with_secret(nonzero_scalar(rng))
    }

    /// Wraps an existing secret (a key restored from sealed storage, tests); zero
    /// is refused.
    pub fn from_scalar(secret: Scalar) -> Result<Self, CryptoError> {
        if secret.is_zero() {
            return Err(CryptoError::Zero("encryption secret key"));
        }
        Ok(Self::with_secret(secret))
    }

    fn with_secret(secret: Scalar) -> Self {
        let public = EncryptionPublicKey(G1Point::generator().mul(&secret));
        Self { secret, public }
    }

    /// `sk·G1` (computed once, in constant time).
    pub fn public_key(&self) -> EncryptionPublicKey {
        self.public
    }
}

impl fmt::Debug for EncryptionSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionSecretKey({}, <redacted>)", self.public.0)
    }
}

/// A dealer's one-dealing secret `e` (non-zero, zeroized on drop). Deliberately not
/// `Clone` nor serializable: it must be used for one dealing and then dropped.
#[derive(ZeroizeOnDrop)]
pub struct DealingKey {
    secret: Scalar,
    #[zeroize(skip)]
    public: EphemeralKey,
}

impl DealingKey {
    /// A fresh key for one dealing.
    pub fn generate<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let secret = nonzero_scalar(rng);
        let public = EphemeralKey(G1Point::generator().mul(&secret));
        Self { secret, public }
    }

    /// `E = e·G1`, published in the dealing.
    pub fn public(&self) -> EphemeralKey {
        self.public
    }
}

impl fmt::Debug for DealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DealingKey({}, <redacted>)", self.public.0)
    }
}

/// Everything a pad and a proof are bound to: the session and both parties.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShareContext {
    /// The hash that identifies the session.
    pub session_hash: [u8; 32],
    /// The dealer that encrypted the share.
    pub dealer: OperatorAddress,
    /// The player the share is for.
    pub player: OperatorAddress,
}

impl ShareContext {
    /// `session_hash (32) ‖ dealer (20) ‖ player (20)`, the tail of every hash here.
    fn absorb(&self, h: &mut Keccak256) {
        h.update(self.session_hash);
        h.update(self.dealer.as_bytes());
        h.update(self.player.as_bytes());
    }
}

/// The key `K = e·pk = sk·E` shared by a dealer and a player for one dealing. Secret
/// until a complaint reveals it: zeroized on drop and redacted in `Debug`. Never the
/// identity (both factors are non-zero in a group of prime order).
#[derive(Clone)]
pub struct SharedKey(G1Point);

impl SharedKey {
    /// The 128-byte EIP-2537 encoding (what a complaint carries).
    pub fn to_eip2537(&self) -> Zeroizing<[u8; 128]> {
        Zeroizing::new(self.0.to_eip2537())
    }

    /// Strict decoding of the EIP-2537 form: refuses the identity, points off the
    /// curve and points outside G1.
    pub fn from_eip2537(bytes: &[u8]) -> Result<Self, CryptoError> {
        G1Point::from_eip2537(bytes).map(Self)
    }

    /// `pad_0` (value) and `pad_1` (blinding), see the module docs.
    fn pads(&self, ctx: &ShareContext) -> [Scalar; 2] {
        let key = self.to_eip2537();
        [0u8, 1].map(|i| {
            let mut wide = Zeroizing::new([0u8; 64]);
            for (h, half) in wide.chunks_exact_mut(32).enumerate() {
                let mut hasher = Keccak256::new();
                hasher.update(PAD_DOMAIN);
                hasher.update([i, h as u8]);
                hasher.update(key.as_slice());
                ctx.absorb(&mut hasher);
                half.copy_from_slice(Zeroizing::new(hasher.finalize()).as_slice());
            }
            Scalar::from_bytes_wide(wide.as_slice())
        })
    }
}

impl Zeroize for SharedKey {
    fn zeroize(&mut self) {
        self.0.0.x.l.zeroize();
        self.0.0.y.l.zeroize();
    }
}

impl Drop for SharedKey {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for SharedKey {}

impl fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedKey(<redacted>)")
    }
}

/// An encrypted [`PedersenShare`]: `value ‖ blinding`, each the 32-byte big-endian
/// encoding of the share plus its pad mod r. Decoding checks only the length, so that
/// a dealer's non-canonical word (`≥ r`) reaches decryption, which refuses it, and can
/// be complained about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShareCiphertext {
    /// `value + pad_0 mod r`.
    #[serde(with = "crate::signer::hex65")]
    pub value: [u8; 32],
    /// `blinding + pad_1 mod r`.
    #[serde(with = "crate::signer::hex65")]
    pub blinding: [u8; 32],
}

impl ShareCiphertext {
    /// Encoded length.
    pub const LEN: usize = 64;

    /// `value ‖ blinding`.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.value);
        out[32..].copy_from_slice(&self.blinding);
        out
    }

    /// Splits 64 bytes (length checked; canonicity is checked on decryption).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != Self::LEN {
            return Err(CryptoError::InvalidLength {
                expected: Self::LEN,
                got: bytes.len(),
            });
        }
        let mut value = [0u8; 32];
        let mut blinding = [0u8; 32];
        value.copy_from_slice(&bytes[..32]);
        blinding.copy_from_slice(&bytes[32..]);
        Ok(Self { value, blinding })
    }
}

/// Encrypts `share` for the holder of `recipient` (constant time in `e` and `share`).
pub fn encrypt_share(
    e: &DealingKey,
    recipient: &EncryptionPublicKey,
    ctx: &ShareContext,
    share: &PedersenShare,
) -> ShareCiphertext {
    let key = SharedKey(recipient.0.mul(&e.secret));
    let [pad_value, pad_blinding] = key.pads(ctx);
    ShareCiphertext {
        value: (&share.value + &pad_value).to_bytes_be(),
        blinding: (&share.blinding + &pad_blinding).to_bytes_be(),
    }
}

/// Decrypts a share sent under `ephemeral` (constant time in `sk` and the share).
/// Refuses non-canonical ciphertext words. Success says nothing about the share's
/// correctness: check it against the dealer's commitment.
pub fn decrypt_share(
    sk: &EncryptionSecretKey,
    ephemeral: &EphemeralKey,
    ctx: &ShareContext,
    ct: &ShareCiphertext,
) -> Result<PedersenShare, CryptoError> {
    let words = canonical_words(ct)?;
    Ok(unmask(&SharedKey(ephemeral.0.mul(&sk.secret)), ctx, words))
}

/// Opens a share with a revealed key, for anyone who checked the key's proof with
/// [`verify_shared_key`].
pub fn open_share(
    key: &SharedKey,
    ctx: &ShareContext,
    ct: &ShareCiphertext,
) -> Result<PedersenShare, CryptoError> {
    Ok(unmask(key, ctx, canonical_words(ct)?))
}

fn canonical_words(ct: &ShareCiphertext) -> Result<[Scalar; 2], CryptoError> {
    Ok([
        Scalar::from_bytes_be(&ct.value)?,
        Scalar::from_bytes_be(&ct.blinding)?,
    ])
}

fn unmask(key: &SharedKey, ctx: &ShareContext, words: [Scalar; 2]) -> PedersenShare {
    let [pad_value, pad_blinding] = key.pads(ctx);
    PedersenShare {
        value: &words[0] - &pad_value,
        blinding: &words[1] - &pad_blinding,
    }
}

/// A Chaum–Pedersen proof that `log_G1 pk = log_E K`: the raw 32-byte challenge hash
/// (see the module docs) and the response `z = w − c·sk mod r`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DleqProof {
    /// `keccak256(DLEQ_DOMAIN ‖ pk ‖ E ‖ K ‖ A1 ‖ A2 ‖ context)`, unreduced.
    #[serde(with = "crate::signer::hex65")]
    pub challenge: [u8; 32],
    /// `z`, canonical.
    pub response: Scalar,
}

impl DleqProof {
    /// Encoded length.
    pub const LEN: usize = 64;

    /// `challenge ‖ z` (z big-endian).
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.challenge);
        out[32..].copy_from_slice(&self.response.to_bytes_be());
        out
    }

    /// Strict decoding: 64 bytes, `z < r`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != Self::LEN {
            return Err(CryptoError::InvalidLength {
                expected: Self::LEN,
                got: bytes.len(),
            });
        }
        let mut challenge = [0u8; 32];
        challenge.copy_from_slice(&bytes[..32]);
        Ok(Self {
            challenge,
            response: Scalar::from_slice(&bytes[32..])?,
        })
    }
}

/// The challenge hash over the statement, the commitments and the context.
fn dleq_challenge(
    pk: &EncryptionPublicKey,
    ephemeral: &EphemeralKey,
    key: &SharedKey,
    a1: &G1Point,
    a2: &G1Point,
    ctx: &ShareContext,
) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update(DLEQ_DOMAIN);
    h.update(pk.to_eip2537());
    h.update(ephemeral.to_eip2537());
    h.update(key.to_eip2537().as_slice());
    h.update(a1.to_eip2537());
    h.update(a2.to_eip2537());
    ctx.absorb(&mut h);
    h.finalize().into()
}

/// Reveals the key of one share with a proof that it is `sk·E` (for a complaint).
/// The nonce hashes `sk`, the statement and 32 fresh random bytes: unique even with a
/// weak generator, and never repeated for two statements (a repeat would leak `sk`).
pub fn reveal_shared_key<R: RngCore + CryptoRng + ?Sized>(
    sk: &EncryptionSecretKey,
    ephemeral: &EphemeralKey,
    ctx: &ShareContext,
    rng: &mut R,
) -> (SharedKey, DleqProof) {
    let key = SharedKey(ephemeral.0.mul(&sk.secret));
    loop {
        let mut fresh = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(fresh.as_mut());
        let secret = Zeroizing::new(sk.secret.to_bytes_be());
        let mut wide = Zeroizing::new([0u8; 64]);
        for (h, half) in wide.chunks_exact_mut(32).enumerate() {
            let mut hasher = Keccak256::new();
            hasher.update(DLEQ_NONCE_DOMAIN);
            hasher.update([h as u8]);
            hasher.update(secret.as_slice());
            hasher.update(ephemeral.to_eip2537());
            ctx.absorb(&mut hasher);
            hasher.update(fresh.as_slice());
            half.copy_from_slice(Zeroizing::new(hasher.finalize()).as_slice());
        }
        let w = Scalar::from_bytes_wide(wide.as_slice());
        if w.is_zero() {
            continue;
        }
        let a1 = G1Point::generator().mul(&w);
        let a2 = ephemeral.0.mul(&w);
        let challenge = dleq_challenge(&sk.public, ephemeral, &key, &a1, &a2, ctx);
        let c = Scalar::from_bytes_wide(&challenge);
        let response = &w - &(&c * &sk.secret);
        return (
            key,
            DleqProof {
                challenge,
                response,
            },
        );
    }
}

/// Whether `proof` shows `key = sk·E` for the `sk` behind `pk`, in this context.
/// Variable time (public data only).
pub fn verify_shared_key(
    pk: &EncryptionPublicKey,
    ephemeral: &EphemeralKey,
    key: &SharedKey,
    ctx: &ShareContext,
    proof: &DleqProof,
) -> bool {
    let c = Scalar::from_bytes_wide(&proof.challenge);
    let z = &proof.response;
    let scalars = [z.clone(), c];
    let (Ok(a1), Ok(a2)) = (
        G1Point::msm(&[G1Point::generator(), pk.0], &scalars),
        G1Point::msm(&[ephemeral.0, key.0], &scalars),
    ) else {
        return false;
    };
    dleq_challenge(pk, ephemeral, key, &a1, &a2, ctx) == proof.challenge
}

#[cfg(test)]
mod tests;
