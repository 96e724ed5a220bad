//! Key material released to one caller, sealed to a one-time X25519 key that the
//! caller made: RFC 9180 HPKE in base mode with the suite DHKEM(X25519, HKDF-SHA256),
//! HKDF-SHA256, AES-256-GCM. Whoever carries the answer (a TLS terminator, a proxy,
//! the node's host) cannot read it; only the holder of the one-time secret can.
//!
//! Wire form of a sealed value: `enc (32 bytes) ‖ AES-256-GCM ciphertext ‖ tag (16)`.
//! The `info` string names what is sealed (one per kind of release, so a sealed value
//! of one kind never opens as another) and the `aad` binds the context the caller
//! checks (app ID, key version, operator): see `docs/wire-format.md`.

use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::error::CryptoError;

type Kem = X25519HkdfSha256;

/// Length of a one-time public key and of HPKE's encapsulated key.
pub const KEY_LEN: usize = 32;
/// Bytes a sealed value adds to its plaintext (`enc` and the tag).
pub const OVERHEAD: usize = KEY_LEN + 16;

/// `info` of a partial signature released by `/app/sign`.
pub const APP_SIGN_INFO: &[u8] = b"EIGENKMS-V1-APP-SIGN-PARTIAL";

/// A one-time X25519 public key to which a release is sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OneTimePublicKey([u8; KEY_LEN]);

impl OneTimePublicKey {
    /// Wraps 32 bytes. Refuses the all-zero key and keys of small order, whose
    /// Diffie–Hellman output is all zero (anyone could open what is sealed to them).
    pub fn from_bytes(b: [u8; KEY_LEN]) -> Result<Self, CryptoError> {
        <Kem as hpke::Kem>::PublicKey::from_bytes(&b)
            .map_err(|_| CryptoError::InvalidEncoding("not an X25519 public key"))?;
        // The DH of a small-order point with any clamped scalar is zero: check it
        // once with a fixed scalar instead of waiting for the seal to fail.
        let probe = x25519_dalek::StaticSecret::from([1u8; 32]);
        let shared = probe.diffie_hellman(&x25519_dalek::PublicKey::from(b));
        if !shared.was_contributory() {
            return Err(CryptoError::InvalidEncoding(
                "one-time key of small order (its shared secret would be zero)",
            ));
        }
        Ok(Self(b))
    }

    /// The 32 bytes.
    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.0
    }
}

/// The secret half of a one-time key. Zeroized on drop, redacted in `Debug`.
pub struct OneTimeSecretKey {
    sk: <Kem as hpke::Kem>::PrivateKey,
    public: OneTimePublicKey,
}

impl std::fmt::Debug for OneTimeSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "OneTimeSecretKey({}, <redacted>)",
            hex::encode(self.public.0)
        )
    }
}

impl OneTimeSecretKey {
    /// A fresh key pair.
    pub fn generate<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut ikm = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(ikm.as_mut());
        let (sk, pk) = Kem::derive_keypair(ikm.as_ref());
        let public = OneTimePublicKey(pk.to_bytes().into());
        Self { sk, public }
    }

    /// The public half.
    pub fn public_key(&self) -> OneTimePublicKey {
        self.public
    }

    /// Opens a value sealed to this key with the same `info` and `aad`.
    pub fn open(
        &self,
        sealed: &[u8],
        info: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.len() < OVERHEAD {
            return Err(CryptoError::InvalidLength {
                expected: OVERHEAD,
                got: sealed.len(),
            });
        }
        let (enc, ct) = sealed.split_at(KEY_LEN);
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc)
            .map_err(|_| CryptoError::InvalidEncoding("sealed value: bad encapsulated key"))?;
        hpke::single_shot_open::<AesGcm256, HkdfSha256, Kem>(
            &OpModeR::Base,
            &self.sk,
            &enc,
            info,
            ct,
            aad,
        )
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::DecryptionFailed)
    }
}

/// Seals `plaintext` to `to` under `info` and `aad`: `enc ‖ ciphertext ‖ tag`.
pub fn seal<R: RngCore + CryptoRng + ?Sized>(
    to: &OneTimePublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, CryptoError> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(&to.0)
        .map_err(|_| CryptoError::InvalidEncoding("not an X25519 public key"))?;
    let (enc, ct) = hpke::single_shot_seal::<AesGcm256, HkdfSha256, Kem, _>(
        &OpModeS::Base,
        &pk,
        info,
        plaintext,
        aad,
        &mut Rng09(rng),
    )
    .map_err(|_| CryptoError::InvalidEncoding("cannot seal to this key"))?;
    let mut out = Vec::with_capacity(KEY_LEN + ct.len());
    out.extend_from_slice(&enc.to_bytes());
    out.extend_from_slice(&ct);
    Ok(out)
}

/// hpke 0.13 takes rand_core 0.9 generators; the project's are rand_core 0.6. This
/// forwards one to the other (no state of its own).
struct Rng09<'a, R: ?Sized>(&'a mut R);

impl<R: RngCore + ?Sized> rand_core_09::RngCore for Rng09<'_, R> {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest)
    }
}

impl<R: RngCore + CryptoRng + ?Sized> rand_core_09::CryptoRng for Rng09<'_, R> {}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_info_and_aad() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let sk = OneTimeSecretKey::generate(&mut rng);
        let ct = seal(&sk.public_key(), b"info", b"aad", b"secret", &mut rng).unwrap();
        assert_eq!(ct.len(), 6 + OVERHEAD);
        assert_eq!(&sk.open(&ct, b"info", b"aad").unwrap()[..], b"secret");
        let other = OneTimeSecretKey::generate(&mut rng);
        assert!(other.open(&ct, b"info", b"aad").is_err());
        assert!(sk.open(&ct, b"other info", b"aad").is_err());
        assert!(sk.open(&ct, b"info", b"other aad").is_err());
        let mut tampered = ct.clone();
        tampered[KEY_LEN + 1] ^= 1;
        assert!(sk.open(&tampered, b"info", b"aad").is_err());
        assert!(sk.open(&ct[..OVERHEAD - 1], b"info", b"aad").is_err());
    }

    #[test]
    fn small_order_keys_are_refused() {
        assert!(OneTimePublicKey::from_bytes([0; 32]).is_err());
        // The point of order 8 with u = 1 and the order-4 point u = 0's sibling.
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(OneTimePublicKey::from_bytes(one).is_err());
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let pk = OneTimeSecretKey::generate(&mut rng).public_key();
        assert_eq!(OneTimePublicKey::from_bytes(pk.to_bytes()).unwrap(), pk);
    }

    #[test]
    fn debug_output_redacts_the_secret() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let sk = OneTimeSecretKey::generate(&mut rng);
        let text = format!("{sk:?}");
        assert!(text.contains("redacted"));
    }
}
