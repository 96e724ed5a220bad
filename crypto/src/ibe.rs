//! Boneh–Franklin identity-based encryption with identities in G1, keyed by the
//! threshold master key. Anyone encrypts to `(MPK, appID)`; only the holder of the
//! app key `s·H1(appID)` (or `t` colluding operators) decrypts.
//!
//! Byte layout (normative description in `docs/wire-format.md`):
//!
//! ```text
//! ciphertext = "EKMS" ‖ 0x01 ‖ U (96 B, compressed G2) ‖ nonce (12 B) ‖ AES-256-GCM(ct ‖ tag)
//! U          = r·G2,  r uniform in [1, r)
//! ikm        = e(r·H1(appID), MPK) = e(sk_app, U), 576 B (blst_bendian_from_fp12)
//! key        = HKDF-SHA256(salt = "EIGENKMS-V1-IBE", ikm, info = appID), 32 B
//! aad        = "EKMS" ‖ 0x01 ‖ U ‖ appID
//! ```

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use rand_core::{CryptoRng, RngCore};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::CryptoError;
use crate::group::{G2Point, pairing_bytes};
use crate::scalar::Scalar;
use crate::tbls::{AppPrivateKey, hash_app_id};

/// Magic bytes opening every ciphertext.
pub const MAGIC: &[u8; 4] = b"EKMS";
/// The only format version this code writes and reads.
pub const VERSION: u8 = 0x01;
/// HKDF salt of the key derivation.
pub const HKDF_SALT: &[u8] = b"EIGENKMS-V1-IBE";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = MAGIC.len() + 1 + G2Point::BYTES + NONCE_LEN;
/// Bytes a ciphertext adds to its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

fn derive_key(ikm: &[u8], app_id: &[u8]) -> Zeroizing<[u8; 32]> {
    let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), ikm);
    let mut okm = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit.
    hk.expand(app_id, okm.as_mut())
        .expect("32-byte HKDF output");
    okm
}

fn aad(u: &[u8; 96], app_id: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(MAGIC.len() + 1 + u.len() + app_id.len());
    a.extend_from_slice(MAGIC);
    a.push(VERSION);
    a.extend_from_slice(u);
    a.extend_from_slice(app_id);
    a
}

/// Encrypts `plaintext` to the application `app_id` under the master public key.
pub fn encrypt<R: RngCore + CryptoRng + ?Sized>(
    master_public_key: &G2Point,
    app_id: &[u8],
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, CryptoError> {
    if master_public_key.is_identity() {
        return Err(CryptoError::PointAtInfinity);
    }
    let r = loop {
        let r = Scalar::random(rng);
        if !r.is_zero() {
            break r;
        }
    };
    let u = G2Point::mul_generator(&r).to_compressed();
    let ikm = pairing_bytes(&hash_app_id(app_id).mul(&r), master_public_key);
    let key = derive_key(ikm.as_ref(), app_id);
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let cipher = Aes256Gcm::new_from_slice(key.as_ref()).expect("32-byte key");
    let body = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad(&u, app_id),
            },
        )
        .map_err(|_| CryptoError::InvalidParameters("plaintext too long for AES-GCM"))?;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&u);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decrypts a ciphertext for `app_id` with the app's private key. Format errors are
/// reported as such; a wrong key, a wrong app ID or any tampering all give
/// [`CryptoError::DecryptionFailed`] (indistinguishable on purpose).
pub fn decrypt(
    key: &AppPrivateKey,
    app_id: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if ciphertext.len() < OVERHEAD {
        return Err(CryptoError::InvalidLength {
            expected: OVERHEAD,
            got: ciphertext.len(),
        });
    }
    if &ciphertext[..4] != MAGIC {
        return Err(CryptoError::InvalidEncoding(
            "not an EigenKMS ciphertext (bad magic)",
        ));
    }
    if ciphertext[4] != VERSION {
        return Err(CryptoError::InvalidEncoding(
            "unsupported ciphertext version",
        ));
    }
    let mut u = [0u8; 96];
    u.copy_from_slice(&ciphertext[5..101]);
    // Subgroup and identity checks: an identity or small-order U would make the
    // pairing value predictable without the key.
    let u_point = G2Point::from_compressed(&u)?;
    let nonce = &ciphertext[101..HEADER_LEN];
    let ikm = pairing_bytes(key.point(), &u_point);
    let sym = derive_key(ikm.as_ref(), app_id);
    let cipher = Aes256Gcm::new_from_slice(sym.as_ref()).expect("32-byte key");
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: &ciphertext[HEADER_LEN..],
                aad: &aad(&u, app_id),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::DecryptionFailed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn keys(seed: u64, app: &[u8]) -> (G2Point, AppPrivateKey) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let s = Scalar::random(&mut rng);
        (
            G2Point::generator().mul(&s),
            AppPrivateKey::from_point(hash_app_id(app).mul(&s)),
        )
    }

    #[test]
    fn roundtrip_and_clean_errors() {
        let (mpk, sk) = keys(1, b"app");
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let ct = encrypt(&mpk, b"app", b"hello", &mut rng).unwrap();
        assert_eq!(ct.len(), 5 + OVERHEAD);
        assert_eq!(&decrypt(&sk, b"app", &ct).unwrap()[..], b"hello");
        assert_eq!(
            decrypt(&sk, b"app2", &ct),
            Err(CryptoError::DecryptionFailed)
        );
        let (_, other) = keys(3, b"app");
        assert_eq!(
            decrypt(&other, b"app", &ct),
            Err(CryptoError::DecryptionFailed)
        );
        let (_, wrong_app_key) = keys(1, b"app2");
        assert_eq!(
            decrypt(&wrong_app_key, b"app", &ct),
            Err(CryptoError::DecryptionFailed)
        );
        let mut bad = ct.clone();
        bad[4] = 2;
        assert!(matches!(
            decrypt(&sk, b"app", &bad),
            Err(CryptoError::InvalidEncoding(_))
        ));
        bad = ct.clone();
        bad[0] = b'X';
        assert!(matches!(
            decrypt(&sk, b"app", &bad),
            Err(CryptoError::InvalidEncoding(_))
        ));
        assert!(matches!(
            decrypt(&sk, b"app", &ct[..OVERHEAD - 1]),
            Err(CryptoError::InvalidLength { .. })
        ));
        // U replaced by the identity.
        bad = ct.clone();
        bad[5..101].copy_from_slice(&G2Point::identity().to_compressed());
        assert_eq!(
            decrypt(&sk, b"app", &bad),
            Err(CryptoError::PointAtInfinity)
        );
        assert!(encrypt(&G2Point::identity(), b"app", b"x", &mut rng).is_err());
    }

    #[test]
    fn every_byte_is_authenticated() {
        let (mpk, sk) = keys(4, b"app");
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let ct = encrypt(&mpk, b"app", b"secret payload", &mut rng).unwrap();
        for i in 0..ct.len() {
            let mut bad = ct.clone();
            bad[i] ^= 0x01;
            assert!(
                decrypt(&sk, b"app", &bad).is_err(),
                "flip at byte {i} went unnoticed"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn roundtrip_any_message(msg in proptest::collection::vec(any::<u8>(), 0..300), app in proptest::collection::vec(any::<u8>(), 0..40), seed in any::<u64>()) {
            let (mpk, sk) = keys(seed, &app);
            let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 1);
            let ct = encrypt(&mpk, &app, &msg, &mut rng).unwrap();
            prop_assert_eq!(&decrypt(&sk, &app, &ct).unwrap()[..], &msg[..]);
        }

        #[test]
        fn decrypt_random_bytes_never_panics(ct in proptest::collection::vec(any::<u8>(), 0..400)) {
            let (_, sk) = keys(9, b"app");
            let mut ct = ct;
            if ct.len() > 5 { ct[..5].copy_from_slice(b"EKMS\x01"); }
            prop_assert!(decrypt(&sk, b"app", &ct).is_err());
        }
    }
}
