//! ECDSA on secp256k1 over a keccak256 hash, Ethereum style: 65-byte `r ‖ s ‖ v`
//! signatures, identity = the Ethereum address of the key.

use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};

use super::{
    OperatorPublicKey, OperatorSignature, OperatorSigner, SignatureError, SignatureScheme,
};
use crate::address::OperatorAddress;

/// The Ethereum address of a public key: the last 20 bytes of the keccak256 of the
/// uncompressed point without its `0x04` prefix.
pub fn address_of(vk: &VerifyingKey) -> OperatorAddress {
    let point = vk.to_encoded_point(false);
    let hash = Keccak256::digest(&point.as_bytes()[1..]);
    let mut a = [0u8; 20];
    a.copy_from_slice(&hash[12..]);
    OperatorAddress::from_bytes(a)
}

/// A recoverable ECDSA signature, `r ‖ s ‖ v` with `v ∈ {27, 28}` and low `s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcdsaSignature(#[serde(with = "super::hex65")] [u8; 65]);

impl EcdsaSignature {
    /// The 65 bytes.
    pub fn to_bytes(&self) -> [u8; 65] {
        self.0
    }

    /// Decodes 65 bytes, refusing a bad `v`, zero or out-of-range `r`/`s` and high `s`
    /// (malleability: `(r, n − s)` would be a second valid signature of the same hash).
    pub fn from_slice(b: &[u8]) -> Result<Self, SignatureError> {
        let arr: [u8; 65] = b.try_into().map_err(|_| SignatureError::InvalidLength {
            expected: 65,
            got: b.len(),
        })?;
        let s = Self(arr);
        s.parts()?;
        Ok(s)
    }

    fn parts(&self) -> Result<(Signature, RecoveryId), SignatureError> {
        let sig = Signature::from_slice(&self.0[..64])
            .map_err(|_| SignatureError::InvalidEncoding("r or s out of range"))?;
        if sig.normalize_s().is_some() {
            return Err(SignatureError::HighS);
        }
        let v = match self.0[64] {
            27 | 28 => self.0[64] - 27,
            _ => return Err(SignatureError::InvalidEncoding("v must be 27 or 28")),
        };
        let recid =
            RecoveryId::from_byte(v).ok_or(SignatureError::InvalidEncoding("recovery id"))?;
        Ok((sig, recid))
    }

    /// Recovers the signer and compares its address with `expected`.
    pub fn verify(
        &self,
        msg_hash: &[u8; 32],
        expected: &OperatorAddress,
    ) -> Result<(), SignatureError> {
        let (sig, recid) = self.parts()?;
        let vk = VerifyingKey::recover_from_prehash(msg_hash, &sig, recid)
            .map_err(|_| SignatureError::Invalid)?;
        if address_of(&vk) != *expected {
            return Err(SignatureError::Invalid);
        }
        Ok(())
    }
}

/// An operator signer holding a secp256k1 key (zeroized on drop by k256).
pub struct EcdsaSigner {
    key: SigningKey,
    address: OperatorAddress,
}

impl EcdsaSigner {
    /// A fresh random key.
    pub fn random<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Self {
        loop {
            let mut b = zeroize::Zeroizing::new([0u8; 32]);
            rng.fill_bytes(b.as_mut());
            if let Ok(s) = Self::from_bytes(&b) {
                return s;
            }
        }
    }

    /// From a 32-byte big-endian secret (must be in `[1, n)`).
    pub fn from_bytes(b: &[u8; 32]) -> Result<Self, SignatureError> {
        let key = SigningKey::from_slice(b)
            .map_err(|_| SignatureError::InvalidEncoding("secret key not in [1, n)"))?;
        let address = address_of(key.verifying_key());
        Ok(Self { key, address })
    }

    /// The 32-byte big-endian secret, for writing a key file (zeroized on drop).
    pub fn secret_bytes(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.key.to_bytes().into())
    }

    /// The signer's Ethereum address.
    pub fn address(&self) -> OperatorAddress {
        self.address
    }

    /// Signs a hash as a prehash, low-`s` normalized.
    pub fn sign_hash(&self, msg_hash: &[u8; 32]) -> EcdsaSignature {
        let (mut sig, mut recid) = self
            .key
            .sign_prehash_recoverable(msg_hash)
            .expect("signing a 32-byte prehash cannot fail");
        if let Some(low) = sig.normalize_s() {
            sig = low;
            recid = RecoveryId::new(!recid.is_y_odd(), recid.is_x_reduced());
        }
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&sig.to_bytes());
        out[64] = 27 + recid.to_byte();
        EcdsaSignature(out)
    }
}

impl std::fmt::Debug for EcdsaSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EcdsaSigner({}, <redacted>)", self.address)
    }
}

impl OperatorSigner for EcdsaSigner {
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::Ecdsa
    }
    fn public_key(&self) -> OperatorPublicKey {
        OperatorPublicKey::Ecdsa(self.address)
    }
    fn sign(&self, msg_hash: &[u8; 32]) -> OperatorSignature {
        OperatorSignature::Ecdsa(self.sign_hash(msg_hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::OperatorVerifier;
    use proptest::prelude::*;

    #[test]
    fn known_address() {
        // The EIP-155 example key.
        let s = EcdsaSigner::from_bytes(&[0x46; 32]).unwrap();
        assert_eq!(
            s.address().to_checksum(),
            "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F"
        );
    }

    #[test]
    fn sign_verify_and_rejections() {
        let s = EcdsaSigner::from_bytes(&[7u8; 32]).unwrap();
        let h: [u8; 32] = Keccak256::digest(b"payload").into();
        let sig = s.sign_hash(&h);
        assert_eq!(sig.verify(&h, &s.address()), Ok(()));
        let pk = s.public_key();
        assert_eq!(pk.verify(&h, &s.sign(&h)), Ok(()));
        let other: [u8; 32] = Keccak256::digest(b"other").into();
        assert_eq!(
            sig.verify(&other, &s.address()),
            Err(SignatureError::Invalid)
        );
        // High-s twin: (r, n − s) with v flipped is a valid curve signature we refuse.
        let parsed = Signature::from_slice(&sig.to_bytes()[..64]).unwrap();
        let (r, low_s) = parsed.split_scalars();
        let high = Signature::from_scalars(r, -*low_s).unwrap();
        let mut b = sig.to_bytes();
        b[..64].copy_from_slice(&high.to_bytes());
        b[64] ^= 1;
        assert_eq!(EcdsaSignature::from_slice(&b), Err(SignatureError::HighS));
        let mut b = sig.to_bytes();
        b[64] = 29;
        assert!(EcdsaSignature::from_slice(&b).is_err());
        assert!(EcdsaSignature::from_slice(&[0u8; 65]).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn roundtrip(key in any::<[u8; 32]>(), h in any::<[u8; 32]>()) {
            if let Ok(s) = EcdsaSigner::from_bytes(&key) {
                let sig = s.sign_hash(&h);
                prop_assert_eq!(EcdsaSignature::from_slice(&sig.to_bytes()).unwrap(), sig);
                prop_assert!(sig.verify(&h, &s.address()).is_ok());
            }
        }

        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = OperatorSignature::from_bytes(SignatureScheme::Ecdsa, &b);
            let _ = OperatorSignature::from_bytes(SignatureScheme::Bn254, &b);
            let _ = crate::signer::Bn254PublicKey::from_bytes(&b);
        }
    }
}
